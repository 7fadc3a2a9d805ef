#pragma once

// Agent: the agent's state and decisions around one SystemdManager. Holds the
// desired set from the engine and what is installed here, runs the planner's
// tasks, and turns systemd's state changes into batched reports. No threads
// and no network: AgentRunner drives it. Not thread-safe.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/systemd/systemd_manager.h"
#include "agent/task_planner.h"
#include "fleet/v1/agent.pb.h"

namespace fleet::agent {

class Agent {
 public:
  // `manager` is not owned and must outlive the agent.
  Agent(SystemdManager* manager, std::string machine_id);

  // Adopts the units already in the unit dir: they count as installed, those
  // that run count as launched (nothing is started or restarted), and their
  // state is read from systemd. Call once before anything else. Errors from
  // the manager are returned as they are (the agent then knows nothing).
  absl::Status Adopt();

  // Replaces the desired set (ScheduleFull) or changes it (ScheduleDelta).
  // Entries with a bad unit name or a desired state other than LOADED or
  // LAUNCHED are refused: InvalidArgument naming them; the rest is applied.
  absl::Status ApplyFull(const fleet::v1::ScheduleFull& full);
  absl::Status ApplyDelta(const fleet::v1::ScheduleDelta& delta);

  // Plans and runs the tasks that bring systemd in line with the desired set,
  // stopping at the first failing task (returned; the next call retries).
  // Does nothing until the first ApplyFull: a restarted agent keeps what runs
  // until the engine said what it wants.
  absl::Status Reconcile();

  // The tasks Reconcile would run now (for logs and tests).
  std::vector<Task> Plan() const;

  // Takes state changes from the manager (WaitForChanges) into account.
  void Observe(const std::vector<UnitStatus>& changes);

  // Reads the state of every installed unit from systemd again (the slow
  // safety-net resync). Errors from the manager are returned.
  absl::Status Resync();

  // The states that changed since the last report (or Register), and the
  // units removed since; nullopt when nothing changed.
  std::optional<fleet::v1::StateReport> TakeReport();

  // A Register message with every installed unit's state; what it carries
  // counts as reported. `machine` is copied into it.
  fleet::v1::Register MakeRegister(const fleet::v1::Machine& machine);

  // What the agent believes is installed (for tests).
  const std::map<std::string, InstalledUnit>& installed() const { return installed_; }

 private:
  fleet::v1::UnitState ToProto(const std::string& name) const;
  absl::Status RunTask(const Task& task);

  SystemdManager* manager_;
  const std::string machine_id_;
  std::optional<std::map<std::string, DesiredUnit>> desired_;  // nullopt: no schedule yet
  std::map<std::string, InstalledUnit> installed_;
  // What the agent knows of each installed unit beyond the planner's view:
  // one record, so that a unit costs one map node here, not one per fact
  // (the agent's memory per unit is the product's promise).
  struct UnitRecord {
    std::string hash;                 // the engine's hash of the installed file ("" = not named yet)
    std::optional<UnitStatus> status;  // last known systemd state
    // A fingerprint of the UnitState last sent (absl::HashOf of its bytes):
    // a unit is reported again only when it differs. 0 = never sent.
    size_t reported = 0;
  };
  std::map<std::string, UnitRecord> records_;        // installed units only
  std::set<std::string> dirty_;                      // units whose state may differ from the last sent
  std::set<std::string> removed_;                    // removed since the last report
  bool reload_pending_ = false;                      // files changed since the last Reload
  std::vector<std::string> loaded_;                  // units loaded since the last Reload
};

}  // namespace fleet::agent
