#include "agent/systemd/fake_manager.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/systemd/unit_name.h"

namespace fleet::agent {

FakeManager::FakeManager(const Clock* clock) : clock_(clock) {}

absl::Status FakeManager::TakeFailure(absl::string_view op) {
  auto it = failures_.find(op);
  if (it == failures_.end()) return absl::OkStatus();
  absl::Status s = std::move(it->second);
  failures_.erase(it);
  return s;
}

UnitStatus FakeManager::StatusLocked(absl::string_view name) const {
  auto it = units_.find(name);
  if (it != units_.end()) return it->second.status;
  UnitStatus s;
  s.name = std::string(name);
  s.load_state = "not-found";
  s.active_state = "inactive";
  s.sub_state = "dead";
  return s;
}

void FakeManager::MarkChanged(absl::string_view name) {
  if (tracked_.contains(name)) changed_.insert(std::string(name));
}

void FakeManager::SetState(absl::string_view name, std::string active, std::string sub,
                           uint32_t pid) {
  UnitStatus& s = units_[std::string(name)].status;
  if (s.active_state != active) s.since = clock_->Now();
  s.active_state = std::move(active);
  s.sub_state = std::move(sub);
  s.main_pid = pid;
  MarkChanged(name);
}

absl::Status FakeManager::InstallUnit(absl::string_view name, absl::string_view contents) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("install"); !s.ok()) return s;
  files_[std::string(name)] = std::string(contents);
  return absl::OkStatus();
}

absl::Status FakeManager::RemoveUnit(absl::string_view name) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("remove"); !s.ok()) return s;
  files_.erase(std::string(name));
  return absl::OkStatus();
}

absl::Status FakeManager::Reload() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("reload"); !s.ok()) return s;
  ++reloads_;
  for (auto& [name, unit] : units_) {
    auto f = files_.find(name);
    bool was_loaded = unit.loaded;
    unit.loaded = f != files_.end();
    if (unit.loaded) unit.loaded_contents = f->second;
    if (unit.loaded != was_loaded) {
      unit.status.load_state = unit.loaded ? "loaded" : "not-found";
      MarkChanged(name);
    }
  }
  for (const auto& [name, contents] : files_) {
    if (units_.contains(name)) continue;
    Unit& u = units_[name];
    u.loaded = true;
    u.loaded_contents = contents;
    u.status = StatusLocked(name);
    u.status.name = name;
    u.status.load_state = "loaded";
    u.status.active_state = "inactive";
    u.status.sub_state = "dead";
    MarkChanged(name);
  }
  return absl::OkStatus();
}

absl::Status FakeManager::StartUnit(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("start"); !s.ok()) return s;
  auto it = units_.find(name);
  if (it == units_.end() || !it->second.loaded) {
    return absl::NotFoundError(absl::StrCat("Unit ", name, " not found."));
  }
  if (!IsRunningState(it->second.status.active_state)) {
    SetState(name, "active", "running", next_pid_++);
  }
  ++starts_[std::string(name)];
  return absl::OkStatus();
}

absl::Status FakeManager::StopUnit(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("stop"); !s.ok()) return s;
  auto it = units_.find(name);
  if (it == units_.end()) return absl::NotFoundError(absl::StrCat("Unit ", name, " not loaded."));
  if (it->second.status.active_state != "inactive") SetState(name, "inactive", "dead", 0);
  ++stops_[std::string(name)];
  return absl::OkStatus();
}

absl::Status FakeManager::RestartUnit(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure("restart"); !s.ok()) return s;
  auto it = units_.find(name);
  if (it == units_.end() || !it->second.loaded) {
    return absl::NotFoundError(absl::StrCat("Unit ", name, " not found."));
  }
  SetState(name, "active", "running", next_pid_++);
  ++restarts_[std::string(name)];
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> FakeManager::ListInstalled() {
  absl::MutexLock lock(&mu_);
  return files_;
}

absl::StatusOr<std::vector<UnitStatus>> FakeManager::GetStatus(
    const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  std::vector<UnitStatus> out;
  for (const std::string& name : names) {
    tracked_.insert(name);
    out.push_back(StatusLocked(name));
  }
  return out;
}

void FakeManager::Untrack(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (auto it = tracked_.find(name); it != tracked_.end()) tracked_.erase(it);
  if (auto it = changed_.find(name); it != changed_.end()) changed_.erase(it);
}

absl::StatusOr<std::vector<UnitStatus>> FakeManager::WaitForChanges(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return woken_ || !changed_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  woken_ = false;
  std::vector<UnitStatus> out;
  for (const std::string& name : changed_) out.push_back(StatusLocked(name));
  changed_.clear();
  return out;
}

void FakeManager::Wake() {
  {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }
  if (wake_listener_) wake_listener_();
}

void FakeManager::SimulateExit(absl::string_view name, int exit_status) {
  absl::MutexLock lock(&mu_);
  units_[std::string(name)].status.exit_status = exit_status;
  if (exit_status == 0) {
    SetState(name, "inactive", "dead", 0);
  } else {
    SetState(name, "failed", "failed", 0);
  }
}

void FakeManager::SimulateRestart(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  SetState(name, "active", "running", next_pid_++);
}

void FakeManager::FailNext(absl::string_view op, absl::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[std::string(op)] = std::move(status);
}

int FakeManager::starts(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = starts_.find(name);
  return it == starts_.end() ? 0 : it->second;
}

int FakeManager::stops(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = stops_.find(name);
  return it == stops_.end() ? 0 : it->second;
}

int FakeManager::restarts(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = restarts_.find(name);
  return it == restarts_.end() ? 0 : it->second;
}

int FakeManager::reloads() const {
  absl::MutexLock lock(&mu_);
  return reloads_;
}

std::optional<std::string> FakeManager::file(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(std::string(name));
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

UnitStatus FakeManager::status(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  return StatusLocked(name);
}

absl::StatusOr<UnitDetails> FakeManager::GetUnitDetails(absl::string_view name) {
  if (absl::Status s = ValidateUnitName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  UnitDetails details;
  details.status = StatusLocked(name);
  auto it = units_.find(name);
  if (it == units_.end() || !it->second.loaded) return details;
  const Unit& unit = it->second;
  details.fragment_path = absl::StrCat("/fake/units/", name);
  details.unit_file_state = "linked-runtime";
  for (absl::string_view line : absl::StrSplit(unit.loaded_contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "Description=")) details.description = std::string(line);
  }
  if (IsRunningState(unit.status.active_state)) {
    details.memory_bytes = unit.memory_bytes;
    details.tasks = unit.tasks;
  }
  return details;
}

void FakeManager::SetAccounting(absl::string_view name, uint64_t memory_bytes, uint64_t tasks) {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(name);
  if (it == units_.end()) return;
  it->second.memory_bytes = memory_bytes;
  it->second.tasks = tasks;
}

}  // namespace fleet::agent
