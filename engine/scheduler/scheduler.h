#pragma once

// The scheduler: pure functions from a snapshot of the cluster to the changes
// the leader must write to the schedule. No I/O, no clock, no globals;
// deterministic (the same snapshot always gives the same plan, whatever the
// iteration order of its hash maps). Every function here is thread-compatible:
// it only reads its arguments, so concurrent calls on snapshots that nobody
// writes at the same time are safe.
//
// Semantics of the [X-Fleet] options (CoreOS fleet's, see DESIGN.md
// "Scheduling"). A non-global unit U fits a machine M when all of these hold:
//   - MachineID=: M's id is that id.
//   - MachineMetadata=: for every key, M's value for the key is one of the
//     accepted values (a machine without the key does not match).
//   - MachineOf=: every peer runs on M (a non-global peer is scheduled to M, a
//     global peer runs on M). A unit whose peer is not scheduled waits, and its
//     unplaceable reason says which peer it waits for; chains A->B->C resolve
//     in one Reconcile; a cycle of MachineOf= is unplaceable.
//   - Conflicts=: no unit on M matches one of U's globs and U matches none of
//     the globs of the units on M (symmetric: declared on one side is enough).
//     Globs are fnmatch(3) patterns (`*`, `?`, `[...]`), as fleet's path.Match.
//   - Replaces=: U never shares a machine with a unit it replaces or that
//     replaces it. When U is placed, it goes first to a machine that runs a
//     unit it replaces (fewest units first, ties by id), provided U fits there
//     once the replaced units are gone; the replaced units (and the units that
//     follow them with MachineOf=) are evicted and placed elsewhere if
//     possible. U evicts only units submitted before it (the new version
//     replaces the old one), so rings of Replaces= end and the schedule does
//     not rotate from one Reconcile to the next. Replaces= only acts when U
//     is placed: a unit already running on a live machine is not moved to
//     evict anyone.
//     Two units that replace each other: the one submitted first (lower
//     create_revision, then name) wins and the other is never placed (it is
//     unplaceable with a reason naming the winner), so exactly one runs.
//   - capacity: M runs fewer units than its capacity (0 = unlimited); the
//     count includes the global units that run on M.
// Among the machines that fit, the one running the fewest units wins (the
// count includes global units, as fleet's AgentState did), ties by id.
// Units are placed in submission order (create_revision, then name), a unit's
// MachineOf= peers before the unit; placements made earlier in the same plan
// count (load, conflicts, peers).
//
// Global=true units are never written to the schedule. A global unit runs on
// every alive machine that matches its MachineID= (if any) and
// MachineMetadata=, unless a global unit submitted earlier that runs there
// conflicts with it (Conflicts= or Replaces=, either direction): the first
// submitted wins, on every machine. Globals ignore capacity (but count
// toward it) and take precedence over non-global units: a non-global unit
// does not fit a machine where a global it conflicts with runs. A global with
// MachineOf= runs nowhere (fleet refuses that combination) and is reported
// unplaceable.
//
// A scheduled unit stays on its machine while the machine is alive and still
// fits it (checked against the global units there and the units kept before
// it, in submission order). If a live machine no longer fits (its metadata
// changed, its capacity went down, a conflicting global now runs there), the
// unit is moved, as fleet's reconciler did ("target Machine unable to run
// unit"). Moving instead of keeping means the schedule always satisfies the
// options the operator wrote; the later-submitted of two clashing units moves.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/shared_name.h"
#include "common/unit/fleet_options.h"

namespace fleet {

struct MachineView {
  std::string id;
  std::map<std::string, std::string> metadata;
  uint32_t capacity = 0;  // max units, 0 = unlimited
};

struct UnitView {
  SharedName name;  // the same block as the snapshot's key and the engine's
  // Shared with the engine's record of the unit (two copies were 14 MB at
  // 100,000 units).
  SharedFleetOptions options = ShareFleetOptions({});
  // Submission order: lower = submitted first (breaks ties, e.g. conflicting
  // globals: first submitted wins).
  int64_t create_revision = 0;
};

// Names one state of a snapshot's units, and no other state of any snapshot's:
// a fresh number when made, copied, assigned or bumped.
class UnitsVersion {
 public:
  UnitsVersion() : value_(Next()) {}
  UnitsVersion(const UnitsVersion&) : value_(Next()) {}
  UnitsVersion& operator=(const UnitsVersion&) {
    value_ = Next();
    return *this;
  }
  void Bump() { value_ = Next(); }
  uint64_t value() const { return value_; }

 private:
  static uint64_t Next() {
    static std::atomic<uint64_t> last{0};
    return ++last;
  }
  uint64_t value_;
};

// The engine keeps one of these up to date incrementally and passes it by
// const reference.
struct ClusterSnapshot {
  absl::flat_hash_map<std::string, MachineView> machines;  // alive machines only, by id
  // Units whose desired state is loaded or launched, by name. A node map: a
  // UnitView is about 200 bytes, and a flat map moves every one of them each
  // time it grows (a launch of 100,000 units paid half a second for that,
  // under the engine lock).
  NodeNameMap<UnitView> units;
  // Whoever changes `units` (adds, removes or changes a view) bumps this;
  // Reconciler keeps what it derives from the units while it stays the same.
  UnitsVersion units_version;
  // Non-global unit -> machine id, as stored now (may name dead machines or
  // units no longer in `units`). Both are SharedNames: one pointer each.
  NameMap<SharedName> schedule;
};

struct Plan {
  // unit -> machine: new placements and moves (never a unit's stored
  // machine), sorted by unit name.
  std::vector<std::pair<SharedName, SharedName>> assign;
  // Units to take out of the schedule (each one is in it), sorted by name.
  // No unit is in both lists.
  // The unit names in both are the snapshot's own (shared, not copied: a
  // launch of 200,000 units places them all in a few plans).
  std::vector<SharedName> unassign;
  // unit -> human-readable reason, for every unit of the snapshot that runs
  // nowhere after the plan (non-global units left unscheduled, global units
  // that fit no machine), e.g. "no machine matches MachineMetadata region=east"
  // or "conflicts with web@1.service on every fitting machine".
  absl::flat_hash_map<std::string, std::string> unplaceable;

  bool operator==(const Plan&) const = default;
};

// Everything the leader must change so the schedule is right for `snapshot`:
// unschedules units that are gone or inactive (in `schedule` but not in
// `units`), global units found in `schedule`, and units that can be placed
// nowhere; places unscheduled units and units whose machine is not alive or
// no longer fits; moves units evicted by Replaces=. A unit keeps its machine
// while that machine is alive and fits it (see above). Applying the plan and
// calling Reconcile again gives a plan with empty `assign` and `unassign`.
// Cost: O(N log N) for N units on an unchanged snapshot; each placement is
// O(log M) for M machines plus the machines skipped because they do not fit.
Plan Reconcile(const ClusterSnapshot& snapshot);

struct UnitIndex;  // scheduler.cc

// Reconcile for a caller that runs it again and again on one snapshot it keeps
// up to date (the engine). It keeps what it derives from the snapshot's units
// alone (submission order, names, Conflicts=/Replaces=/MachineOf= relations)
// while ClusterSnapshot::units_version stays the same, so a pass after
// machines died or the schedule changed does not rebuild those indexes for
// every unit (at 200,000 units that was most of a pass). Gives the plan
// Reconcile gives. Holds pointers into the snapshot's units between calls:
// they are used again only under the same units_version.
class Reconciler {
 public:
  Reconciler();
  ~Reconciler();
  Plan Reconcile(const ClusterSnapshot& snapshot);

 private:
  std::unique_ptr<UnitIndex> index_;
};

// Writes `plan` into `snapshot->schedule` (assign, then unassign), as the
// engine does after storing it. `snapshot` must not be null.
void ApplyPlan(const Plan& plan, ClusterSnapshot* snapshot);

// The Global=true units of a snapshot, in submission order, and the rule that
// decides which of them run on a machine (see the top of this file).
// Reconcile and UnitsForMachine both use it, so they always agree. It holds
// copies of the globals' views, so it does not refer to the snapshot once
// built, and it stays right while no global unit enters, leaves or changes in
// the snapshot's units; machines and other units may come and go. (A global
// with Replaces= would depend on the units it replaces too; the unit parser
// refuses that combination.) Built in O(units + G^2) for G global units.
class GlobalSet {
 public:
  explicit GlobalSet(const ClusterSnapshot& snapshot);

  size_t size() const { return globals_.size(); }
  const UnitView& unit(size_t i) const { return globals_[i]; }
  // Indices of the globals that run on `machine`, ascending. O(G^2).
  std::vector<size_t> RunningOn(const MachineView& machine) const;
  // Why global `i` runs on none of `snapshot.machines`. Only meaningful when
  // it runs nowhere.
  std::string WhyNowhere(size_t i, const ClusterSnapshot& snapshot) const;

 private:
  const UnitView* BlockerOn(size_t i, const std::vector<size_t>& running) const;

  std::vector<UnitView> globals_;
  std::vector<std::optional<std::string>> excluded_;  // why global i runs nowhere at all
  std::vector<bool> clash_;                           // n x n
};

// Names of the units `machine_id` must run, sorted: the units of `units`
// scheduled to it in `schedule` (non-global), plus the Global=true units that
// run on it (only when the machine is in `machines`, whose metadata decides).
// Call it after applying the plan of Reconcile. O(size of schedule + units +
// G^2); a caller that asks for many machines keeps an index and uses the
// overload below.
std::vector<SharedName> UnitsForMachine(const ClusterSnapshot& snapshot,
                                        const std::string& machine_id);

// The same list from parts the caller keeps: `scheduled_here`, the units that
// `snapshot.schedule` maps to `machine_id` (an index of the schedule), and
// `globals`, a GlobalSet of `snapshot` that is still right. O(k log k + G^2)
// for the k units scheduled there, whatever the size of the cluster.
std::vector<SharedName> UnitsForMachine(const ClusterSnapshot& snapshot,
                                        const std::string& machine_id, const NameSet& scheduled_here,
                                        const GlobalSet& globals);

// Whether `unit` is one of the names the overload above returns, without
// building the list: O(1) for a non-global unit, O(G^2) for a global one.
// Lets a caller that keeps each machine's list update it unit by unit.
bool RunsOnMachine(const ClusterSnapshot& snapshot, const std::string& machine_id,
                   const NameSet& scheduled_here, const GlobalSet& globals, absl::string_view unit);

}  // namespace fleet
