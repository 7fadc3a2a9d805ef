#pragma once

// FakeManager: an in-memory systemd with the observable behaviour of
// SdBusManager, for unit tests and hollow agents. Unit files live in a map (no
// disk); Reload() makes installed files "loaded" and removed ones "not-found";
// Start/Stop change state at once and report the change through
// WaitForChanges; tests drive crashes and exits with the Simulate* hooks.
// Thread-safe (one mutex), unlike the interface requires.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/systemd/systemd_manager.h"
#include "common/clock.h"

namespace fleet::agent {

class FakeManager final : public SystemdManager {
 public:
  // `clock` gives the since-timestamps; not owned, must outlive this.
  explicit FakeManager(const Clock* clock);

  absl::Status InstallUnit(absl::string_view name, absl::string_view contents) override;
  absl::Status RemoveUnit(absl::string_view name) override;
  absl::Status Reload() override;
  absl::Status StartUnit(absl::string_view name) override;
  absl::Status StopUnit(absl::string_view name) override;
  absl::Status RestartUnit(absl::string_view name) override;
  absl::StatusOr<std::map<std::string, std::string>> ListInstalled() override;
  absl::StatusOr<std::vector<UnitStatus>> GetStatus(const std::vector<std::string>& names) override;
  void Untrack(absl::string_view name) override;
  // Never blocks on time: returns at once when changes are pending or Wake()
  // was called, otherwise waits on a condition for up to `timeout` real time.
  absl::StatusOr<std::vector<UnitStatus>> WaitForChanges(absl::Duration timeout) override;
  // Also calls the wake listener, if any.
  void Wake() override;
  // Called by every Wake() (a message for the agent, a shutdown) after the
  // flag is set, for a caller that turns the agent on its own threads instead
  // of waiting in WaitForChanges (bench/scale's hollow agents). Set it before
  // anything calls Wake().
  void SetWakeListener(std::function<void()> listener) { wake_listener_ = std::move(listener); }
  // The unit's status; description from the loaded file's Description=,
  // fragment path "/fake/units/NAME" when loaded, memory and tasks set for
  // running units (as SetAccounting left them).
  absl::StatusOr<UnitDetails> GetUnitDetails(absl::string_view name) override;

  // Test hooks.
  // Memory and tasks GetUnitDetails reports for `name` (a unit it knows) while it runs.
  void SetAccounting(absl::string_view name, uint64_t memory_bytes, uint64_t tasks);
  // The main process of a running unit exits with `exit_status`: the unit
  // becomes failed (non-zero) or inactive (zero).
  void SimulateExit(absl::string_view name, int exit_status);
  // systemd restarted the unit (Restart=): a new main PID, active again.
  void SimulateRestart(absl::string_view name);
  // The next call of `op` ("install", "remove", "reload", "start", "stop",
  // "restart")
  // fails with `status`.
  void FailNext(absl::string_view op, absl::Status status);
  // How many StartUnit / StopUnit / RestartUnit / Reload calls succeeded (per
  // unit for start/stop/restart).
  int starts(absl::string_view name) const;
  int stops(absl::string_view name) const;
  int restarts(absl::string_view name) const;
  int reloads() const;
  // The installed file of `name`, if any.
  std::optional<std::string> file(absl::string_view name) const;
  // The current status of `name` (not-found when unknown).
  UnitStatus status(absl::string_view name) const;

 private:
  struct Unit {
    std::string loaded_contents;  // as of the last Reload
    bool loaded = false;
    UnitStatus status;
    std::optional<uint64_t> memory_bytes;
    std::optional<uint64_t> tasks;
  };
  absl::Status TakeFailure(absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  UnitStatus StatusLocked(absl::string_view name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetState(absl::string_view name, std::string active, std::string sub, uint32_t pid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkChanged(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* clock_;
  std::function<void()> wake_listener_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Unit, std::less<>> units_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> tracked_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> changed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status, std::less<>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int, std::less<>> starts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int, std::less<>> stops_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int, std::less<>> restarts_ ABSL_GUARDED_BY(mu_);
  int reloads_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t next_pid_ ABSL_GUARDED_BY(mu_) = 1000;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::agent
