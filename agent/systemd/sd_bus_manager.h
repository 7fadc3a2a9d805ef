#pragma once

// SdBusManager: the real SystemdManager, libsystemd's sd-bus against
// org.freedesktop.systemd1 on the system bus (a real host) or the user bus
// (the sandbox). Unit files are written under the unit dir and linked with
// LinkUnitFiles(runtime, force); units with an [Install] section are enabled
// with EnableUnitFiles(runtime, force), as fleet did. State comes from
// Subscribe + PropertiesChanged (Unit and Service interfaces) and JobRemoved
// signals: WaitForChanges blocks on the bus socket, never polls.
//
// Not thread-safe except Wake(): one thread (the agent loop) owns it.

#include <systemd/sd-bus.h>
#include <sys/types.h>

#include <memory>
#include <set>
#include <string>

#include "agent/systemd/systemd_manager.h"


namespace fleet::agent {

enum class BusKind { kSystem, kUser };

// The default unit dir: /run/fleet/units for the system manager,
// $XDG_RUNTIME_DIR/fleet/units for a user manager (error if the variable is unset).
absl::StatusOr<std::string> DefaultUnitDir(BusKind kind);

class SdBusManager final : public SystemdManager {
 public:
  // Connects to the manager on `kind`'s bus, creates `unit_dir` (mode 0755,
  // with parents) and subscribes to its signals. Unavailable when the bus
  // cannot be reached; Internal when the dir cannot be created.
  static absl::StatusOr<std::unique_ptr<SdBusManager>> Create(BusKind kind, std::string unit_dir);
  ~SdBusManager() override;
  SdBusManager(const SdBusManager&) = delete;
  SdBusManager& operator=(const SdBusManager&) = delete;

  absl::Status InstallUnit(absl::string_view name, absl::string_view contents) override;
  absl::Status RemoveUnit(absl::string_view name) override;
  absl::Status Reload() override;
  absl::Status StartUnit(absl::string_view name) override;
  absl::Status StopUnit(absl::string_view name) override;
  absl::Status RestartUnit(absl::string_view name) override;
  absl::StatusOr<std::map<std::string, std::string>> ListInstalled() override;
  absl::StatusOr<std::vector<UnitStatus>> GetStatus(const std::vector<std::string>& names) override;
  void Untrack(absl::string_view name) override;
  absl::StatusOr<std::vector<UnitStatus>> WaitForChanges(absl::Duration timeout) override;
  void Wake() override;

  const std::string& unit_dir() const { return unit_dir_; }

  // For `fleetctl status`: GetAll of the Unit and,
  // for services, Service interfaces.
  absl::StatusOr<UnitDetails> GetUnitDetails(absl::string_view name) override;

 private:
  SdBusManager(sd_bus* bus, std::string unit_dir, int wake_fd);
  absl::Status Subscribe();
  absl::StatusOr<UnitStatus> Fetch(const std::string& name);
  // Manager.`method` (StartUnit, StopUnit, RestartUnit) for `name` in mode
  // "replace", then the signals that arrived meanwhile.
  absl::Status QueueJob(const char* method, absl::string_view name);
  // Calls Manager.`method` with an array of strings and then `args` (b...);
  // nothing when `items` is empty.
  absl::Status CallWithArray(const char* method, const std::set<std::string>& items, int runtime,
                             int force);
  // Dispatches every message already received; Unavailable if the bus broke.
  // Called after each Start/Stop/RestartUnit too: a synchronous call queues every
  // signal that arrives while it waits, and a batch of 1,000 starts would
  // otherwise pile up thousands of signals (megabytes of heap) before the
  // loop reads them.
  absl::Status ProcessPending();
  static int OnPropertiesChanged(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error* error);

  sd_bus* bus_;
  const std::string unit_dir_;
  const int wake_fd_;  // eventfd: Wake() writes, WaitForChanges() polls it
  sd_bus_slot* properties_slot_ = nullptr;
  sd_bus_slot* jobs_slot_ = nullptr;
  std::map<std::string, UnitStatus, std::less<>> tracked_;  // name -> last known status
  std::set<std::string> changed_;   // tracked units whose status changed
  std::set<std::string> refetch_;   // tracked units whose job ended: ask systemd
  // The batch for the next Reload().
  std::set<std::string> to_link_;     // paths of written files
  std::set<std::string> to_enable_;   // names with an [Install] section
  std::set<std::string> to_disable_;  // names of removed files
};

}  // namespace fleet::agent
