#include "agent/agent.h"

#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/systemd/unit_name.h"

namespace fleet::agent {
namespace {

absl::Status AddDesired(const fleet::v1::ScheduledUnit& unit,
                        std::map<std::string, DesiredUnit>* desired,
                        std::vector<std::string>* refused) {
  if (absl::Status s = ValidateUnitName(unit.name()); !s.ok()) {
    refused->push_back(std::string(s.message()));
    return s;
  }
  DesiredUnit want{unit.contents(), unit.hash(), Target::kLoaded};
  switch (unit.desired_state()) {
    case fleet::v1::DESIRED_STATE_LOADED:
      break;
    case fleet::v1::DESIRED_STATE_LAUNCHED:
      want.target = Target::kLaunched;
      break;
    case fleet::v1::DESIRED_STATE_INACTIVE:
    case fleet::v1::DESIRED_STATE_UNSPECIFIED:
    default:
      refused->push_back(absl::StrCat(unit.name(), ": desired state ",
                                      fleet::v1::DesiredState_Name(unit.desired_state()),
                                      " is not a state for a machine"));
      return absl::InvalidArgumentError("bad desired state");
  }
  (*desired)[unit.name()] = std::move(want);
  return absl::OkStatus();
}

// Never 0, which means "never sent". Equal states have equal fingerprints
// (protobuf's serialization of one message is deterministic within a
// process); a collision of two different states (1 in 2^64) would delay one
// report until the unit's next change or the next Register.
size_t Fingerprint(const fleet::v1::UnitState& state) {
  size_t hash = absl::HashOf(state.SerializeAsString());
  return hash == 0 ? 1 : hash;
}

absl::Status Refused(const std::vector<std::string>& refused) {
  if (refused.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("refused scheduled units: ", absl::StrJoin(refused, "; ")));
}

}  // namespace

Agent::Agent(SystemdManager* manager, std::string machine_id)
    : manager_(manager), machine_id_(std::move(machine_id)) {}

absl::Status Agent::Adopt() {
  absl::StatusOr<std::map<std::string, std::string>> files = manager_->ListInstalled();
  if (!files.ok()) return files.status();
  std::vector<std::string> names;
  for (auto& [name, contents] : *files) {
    installed_[name].contents = std::move(contents);
    names.push_back(name);
  }
  absl::StatusOr<std::vector<UnitStatus>> states = manager_->GetStatus(names);
  if (!states.ok()) return states.status();
  for (UnitStatus& s : *states) {
    installed_[s.name].launched = IsRunningState(s.active_state);
    dirty_.insert(s.name);
    records_[s.name].status = std::move(s);
  }
  return absl::OkStatus();
}

absl::Status Agent::ApplyFull(const fleet::v1::ScheduleFull& full) {
  std::map<std::string, DesiredUnit> desired;
  std::vector<std::string> refused;
  for (const auto& unit : full.units()) AddDesired(unit, &desired, &refused).IgnoreError();
  desired_ = std::move(desired);
  return Refused(refused);
}

absl::Status Agent::ApplyDelta(const fleet::v1::ScheduleDelta& delta) {
  if (!desired_.has_value()) {
    return absl::FailedPreconditionError("schedule delta before the full schedule");
  }
  std::vector<std::string> refused;
  for (const std::string& name : delta.removes()) desired_->erase(name);
  for (const auto& unit : delta.upserts()) AddDesired(unit, &*desired_, &refused).IgnoreError();
  return Refused(refused);
}

std::vector<Task> Agent::Plan() const {
  if (!desired_.has_value()) return {};
  return PlanTasks(*desired_, installed_, reload_pending_);
}

absl::Status Agent::RunTask(const Task& task) {
  switch (task.kind) {
    case TaskKind::kUnload: {
      if (installed_[task.unit].launched) {
        absl::Status s = manager_->StopUnit(task.unit);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
      }
      if (absl::Status s = manager_->RemoveUnit(task.unit); !s.ok()) return s;
      manager_->Untrack(task.unit);
      installed_.erase(task.unit);
      dirty_.erase(task.unit);
      if (auto it = records_.find(task.unit); it != records_.end()) {
        if (it->second.reported != 0) removed_.insert(task.unit);
        records_.erase(it);
      }
      reload_pending_ = true;
      return absl::OkStatus();
    }
    case TaskKind::kLoad: {
      if (absl::Status s = manager_->InstallUnit(task.unit, task.contents.str()); !s.ok()) return s;
      installed_[task.unit].contents = task.contents;
      loaded_.push_back(task.unit);
      reload_pending_ = true;
      return absl::OkStatus();
    }
    case TaskKind::kReload: {
      if (absl::Status s = manager_->Reload(); !s.ok()) return s;
      reload_pending_ = false;
      std::vector<std::string> loaded;
      for (std::string& name : loaded_) {
        if (installed_.contains(name)) loaded.push_back(std::move(name));
      }
      loaded_.clear();
      absl::StatusOr<std::vector<UnitStatus>> states = manager_->GetStatus(loaded);
      if (!states.ok()) return states.status();
      Observe(*states);
      return absl::OkStatus();
    }
    case TaskKind::kStop: {
      absl::Status s = manager_->StopUnit(task.unit);
      if (!s.ok() && !absl::IsNotFound(s)) return s;  // not loaded = not running
      installed_[task.unit].launched = false;
      return absl::OkStatus();
    }
    case TaskKind::kRestart: {
      if (absl::Status s = manager_->RestartUnit(task.unit); !s.ok()) return s;
      installed_[task.unit].launched = true;
      return absl::OkStatus();
    }
    case TaskKind::kStart: {
      if (absl::Status s = manager_->StartUnit(task.unit); !s.ok()) return s;
      installed_[task.unit].launched = true;
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown task kind");
}

absl::Status Agent::Reconcile() {
  if (!desired_.has_value()) return absl::OkStatus();
  // The engine's hash names the file we have when the contents agree
  // (adopted units arrive without one).
  for (const auto& [name, want] : *desired_) {
    auto it = installed_.find(name);
    if (it == installed_.end() || it->second.contents != want.contents) continue;
    if (std::string& hash = records_[name].hash; hash != want.hash) {
      hash = want.hash;
      dirty_.insert(name);
    }
  }
  for (const Task& task : Plan()) {
    if (absl::Status s = RunTask(task); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(TaskKindName(task.kind), " ", task.unit, ": ",
                                                 s.message()));
    }
    if (task.kind == TaskKind::kLoad) {
      records_[task.unit].hash = (*desired_)[task.unit].hash;
      dirty_.insert(task.unit);
    }
  }
  return absl::OkStatus();
}

void Agent::Observe(const std::vector<UnitStatus>& changes) {
  for (const UnitStatus& s : changes) {
    if (!installed_.contains(s.name)) continue;
    records_[s.name].status = s;
    dirty_.insert(s.name);
  }
}

absl::Status Agent::Resync() {
  std::vector<std::string> names;
  for (const auto& [name, unit] : installed_) names.push_back(name);
  absl::StatusOr<std::vector<UnitStatus>> states = manager_->GetStatus(names);
  if (!states.ok()) return states.status();
  Observe(*states);
  return absl::OkStatus();
}

fleet::v1::UnitState Agent::ToProto(const std::string& name) const {
  fleet::v1::UnitState out;
  out.set_name(name);
  out.set_machine_id(machine_id_);
  auto it = records_.find(name);
  if (it == records_.end()) return out;
  if (!it->second.hash.empty()) out.set_unit_hash(it->second.hash);
  if (!it->second.status.has_value()) return out;
  const UnitStatus& s = *it->second.status;
  out.set_load_state(s.load_state);
  out.set_active_state(s.active_state);
  out.set_sub_state(s.sub_state);
  out.set_main_pid(s.main_pid);
  out.set_exit_status(s.exit_status);
  if (s.since != absl::InfinitePast()) out.set_since_unix_micros(absl::ToUnixMicros(s.since));
  return out;
}

std::optional<fleet::v1::StateReport> Agent::TakeReport() {
  fleet::v1::StateReport report;
  for (const std::string& name : dirty_) {
    if (!installed_.contains(name)) continue;
    fleet::v1::UnitState state = ToProto(name);
    size_t fingerprint = Fingerprint(state);
    size_t& last = records_[name].reported;
    if (last == fingerprint) continue;
    last = fingerprint;
    *report.add_states() = std::move(state);
  }
  dirty_.clear();
  for (const std::string& name : removed_) report.add_removed(name);
  removed_.clear();
  if (report.states().empty() && report.removed().empty()) return std::nullopt;
  return report;
}

fleet::v1::Register Agent::MakeRegister(const fleet::v1::Machine& machine) {
  fleet::v1::Register reg;
  *reg.mutable_machine() = machine;
  for (const auto& [name, unit] : installed_) {
    fleet::v1::UnitState state = ToProto(name);
    records_[name].reported = Fingerprint(state);
    *reg.add_units() = std::move(state);
  }
  dirty_.clear();
  removed_.clear();
  return reg;
}

}  // namespace fleet::agent
