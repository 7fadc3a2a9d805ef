#pragma once

// The SystemdManager seam: everything the agent asks of the local systemd.
// Two implementations: SdBusManager (sd-bus, the real manager) and FakeManager
// (in memory, for unit tests and hollow agents). Both keep unit files only in
// their own unit dir and refuse any name that is not a valid systemd unit name,
// so nothing is ever written outside that dir.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet::agent {

// One unit as systemd sees it. Strings are systemd's own words
// (LoadState "loaded"/"not-found", ActiveState "active"/"failed"/...).
struct UnitStatus {
  std::string name;
  std::string load_state;
  std::string active_state;
  std::string sub_state;
  uint32_t main_pid = 0;     // 0 when no main process (or not a service)
  int32_t exit_status = 0;   // ExecMainStatus of the last main process
  absl::Time since = absl::InfinitePast();  // StateChangeTimestamp; InfinitePast = never

  bool operator==(const UnitStatus&) const = default;
};

// What `systemctl status` shows of one unit, beyond UnitStatus.
struct UnitDetails {
  UnitStatus status;
  std::string description;      // Description=
  std::string fragment_path;    // FragmentPath: the file systemd loaded
  std::string unit_file_state;  // UnitFileState: enabled, linked-runtime, ...
  std::optional<uint64_t> memory_bytes;  // MemoryCurrent, when accounted
  std::optional<uint64_t> tasks;         // TasksCurrent, when accounted
};

// True for the states in which systemd runs (or is bringing up) the unit:
// active, activating, reloading.
bool IsRunningState(absl::string_view active_state);

// Not thread-safe unless a method says so: one thread (the agent's loop) owns it.
class SystemdManager {
 public:
  virtual ~SystemdManager() = default;

  // Writes `contents` as the file `name` in the unit dir (replacing an older
  // one). The next Reload() links it into the manager at runtime and, when it
  // has an [Install] section, enables it at runtime; systemd sees it after that.
  // Errors: InvalidArgument for a bad name; Internal for I/O failures (nothing
  // is left half-written: the file is renamed into place).
  virtual absl::Status InstallUnit(absl::string_view name, absl::string_view contents) = 0;

  // Deletes `name`'s file from the unit dir; the next Reload() disables and
  // unlinks it. OK if it was not installed. Errors as InstallUnit. The unit
  // should be stopped first.
  virtual absl::Status RemoveUnit(absl::string_view name) = 0;

  // Applies the batch of Install/Remove since the last Reload (one
  // LinkUnitFiles, EnableUnitFiles and DisableUnitFiles call each, for all
  // units of the batch) and then daemon-reloads, once. On failure the batch is
  // kept and the next Reload() applies it again. Unavailable on bus failure.
  virtual absl::Status Reload() = 0;

  // Queue a start/stop job with mode "replace". Returns once systemd accepted
  // the job; its completion shows up as state changes (WaitForChanges).
  // NotFound when systemd does not know the unit.
  virtual absl::Status StartUnit(absl::string_view name) = 0;
  virtual absl::Status StopUnit(absl::string_view name) = 0;
  // One restart job (stop, then start with the unit file as last reloaded);
  // starts the unit if it was not running.
  virtual absl::Status RestartUnit(absl::string_view name) = 0;

  // The unit files in the unit dir: name -> contents. Files whose names are
  // not valid unit names are skipped.
  virtual absl::StatusOr<std::map<std::string, std::string>> ListInstalled() = 0;

  // Asks systemd for the state of each of `names` now (a unit systemd does not
  // know comes back as load_state "not-found", active_state "inactive").
  // SdBusManager reads main PID, exit status and since only for units that are
  // not inactive (cheap for big batches); for an inactive unit they are 0 until
  // its next change arrives by signal.
  // Starts tracking those units: their later changes come from WaitForChanges.
  virtual absl::StatusOr<std::vector<UnitStatus>> GetStatus(
      const std::vector<std::string>& names) = 0;

  // Stops tracking `name` (after RemoveUnit).
  virtual void Untrack(absl::string_view name) = 0;

  // Blocks until a tracked unit changed state, Wake() was called, or `timeout`
  // passed. Returns the new status of every tracked unit that changed since the
  // last call (possibly none). Unavailable when the connection to systemd broke.
  virtual absl::StatusOr<std::vector<UnitStatus>> WaitForChanges(absl::Duration timeout) = 0;

  // Makes a blocked (or the next) WaitForChanges return. Thread-safe.
  virtual void Wake() = 0;

  // --- For `fleetctl status`.
  // Reads `name`'s status and details from systemd now (one round trip per
  // interface; does not change what is tracked). A unit systemd does not know
  // comes back with load_state "not-found". Errors: InvalidArgument for a bad
  // name, Unavailable when the bus broke.
  virtual absl::StatusOr<UnitDetails> GetUnitDetails(absl::string_view name) = 0;
};

}  // namespace fleet::agent
