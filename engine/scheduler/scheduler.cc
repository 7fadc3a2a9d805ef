#include "engine/scheduler/scheduler.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fleet {
namespace {

constexpr int kNoMachine = -1;
constexpr std::string_view kGlobChars = "*?[\\";

// fnmatch(3) without flags: `*` and `?` match any character, as Go's
// path.Match does for names without '/' (unit names never contain one).
bool GlobMatch(const std::string& glob, const SharedName& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

bool AnyGlobMatches(const std::vector<std::string>& globs, const SharedName& name) {
  for (const std::string& glob : globs) {
    if (GlobMatch(glob, name)) return true;
  }
  return false;
}

// The part of `glob` before its first special character: every name the glob
// matches starts with it.
std::string_view LiteralPrefix(std::string_view glob) {
  size_t special = glob.find_first_of(kGlobChars);
  return special == std::string_view::npos ? glob : glob.substr(0, special);
}

// Submission order: lower create_revision first, then name.
bool Earlier(const UnitView& a, const UnitView& b) {
  if (a.create_revision != b.create_revision) return a.create_revision < b.create_revision;
  return a.name < b.name;
}

bool MetadataMatches(const FleetOptions& options, const MachineView& machine) {
  for (const auto& [key, accepted] : options.machine_metadata) {
    auto it = machine.metadata.find(key);
    if (it == machine.metadata.end()) return false;
    if (std::find(accepted.begin(), accepted.end(), it->second) == accepted.end()) return false;
  }
  return true;
}

// "region=east role=db|web"
std::string DescribeMetadata(const std::map<std::string, std::vector<std::string>>& metadata) {
  std::vector<std::string> parts;
  for (const auto& [key, accepted] : metadata) {
    parts.push_back(absl::StrCat(key, "=", absl::StrJoin(accepted, "|")));
  }
  return absl::StrJoin(parts, " ");
}

// MachineID= and MachineMetadata=: what depends on the machine alone.
bool StaticFit(const FleetOptions& options, const MachineView& machine) {
  return (options.machine_id.empty() || options.machine_id == machine.id) &&
         MetadataMatches(options, machine);
}

// Whether `a` and `b` may never share a machine because of Conflicts= or
// Replaces=, declared on either side.
bool Clash(const UnitView& a, const UnitView& b) {
  return AnyGlobMatches(a.options->conflicts, b.name) ||
         AnyGlobMatches(b.options->conflicts, a.name) ||
         AnyGlobMatches(a.options->replaces, b.name) || AnyGlobMatches(b.options->replaces, a.name);
}

// Calls fn(x) for every unit x != u of the snapshot that u replaces. Names
// without glob characters are looked up; globs scan every unit (Replaces=
// with a glob is rare).
template <typename Fn>
void ForEachReplaced(const ClusterSnapshot& snapshot, const UnitView& u, Fn fn) {
  absl::flat_hash_set<std::string_view> seen;
  for (const std::string& glob : u.options->replaces) {
    if (glob.find_first_of(kGlobChars) == std::string::npos) {
      auto it = snapshot.units.find(glob);
      if (it != snapshot.units.end() && it->second.name != u.name && seen.insert(glob).second) {
        fn(it->second);
      }
      continue;
    }
    for (const auto& [name, x] : snapshot.units) {
      if (name != u.name && GlobMatch(glob, name) && seen.insert(name).second) fn(x);
    }
  }
}

// The earliest-submitted unit that `u` replaces and that replaces `u` too, if
// it was submitted before `u` (then `u` is never placed).
const UnitView* MutualReplaceWinner(const ClusterSnapshot& snapshot, const UnitView& u) {
  const UnitView* winner = nullptr;
  ForEachReplaced(snapshot, u, [&](const UnitView& x) {
    if (AnyGlobMatches(x.options->replaces, u.name) && Earlier(x, u) &&
        (winner == nullptr || Earlier(x, *winner))) {
      winner = &x;
    }
  });
  return winner;
}

std::string MutualReplaceReason(const UnitView& winner) {
  return absl::StrCat("replaces ", winner.name.view(), ", which replaces it too; ", winner.name.view(),
                      " was submitted first and wins");
}

}  // namespace

// What a Reconcile derives from the snapshot's units alone: it stays right
// while their names, submission order and [X-Fleet] options do, whatever
// happens to machines and the schedule (Reconciler keeps it between passes).
struct UnitIndex {
  explicit UnitIndex(const ClusterSnapshot& snapshot)
      : version(snapshot.units_version.value()), globals(snapshot) {}

  uint64_t version;  // ClusterSnapshot::units_version it was built from
  GlobalSet globals;  // depends on the global units' views only
  std::vector<const UnitView*> order;  // every unit, in submission order
  // Per unit (positions in order): Global=true. The planner asks it of every
  // unit several times a pass; here it costs no trip to the unit's options.
  std::vector<bool> global;
  absl::flat_hash_map<std::string_view, int> by_name;  // -> position in order
  // Conflicts= globs, interned, and per unit (positions in order) the ids of
  // its own globs and of the globs that match its name, as spans of a pool.
  std::vector<const std::string*> globs;
  std::vector<uint32_t> glob_pool;
  std::vector<uint32_t> own_begin;   // units + 1 offsets into glob_pool
  std::vector<uint32_t> name_begin;  // units + 1 offsets into glob_pool
  // Replaces= relations (rare), and the units that lose a mutual Replaces=
  // (-> the winner).
  absl::flat_hash_map<int, std::vector<int>> replaced;
  absl::flat_hash_map<int, std::vector<int>> replaced_by;
  absl::flat_hash_map<int, int> superseded;
  // MachineOf= peer -> units that name it.
  absl::flat_hash_map<int, std::vector<int>> dependents;

  int Find(std::string_view name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? -1 : it->second;
  }
  std::span<const uint32_t> OwnGlobs(int u) const {
    return {glob_pool.data() + own_begin[u], glob_pool.data() + own_begin[u + 1]};
  }
  std::span<const uint32_t> NameGlobs(int u) const {
    return {glob_pool.data() + name_begin[u], glob_pool.data() + name_begin[u + 1]};
  }
};

namespace {

// One Reconcile: a working copy of the schedule, with indexes that make each
// placement cheap, changed step by step and turned into a Plan at the end.
class Planner {
 public:
  // `index` is of `snapshot`'s units; both must outlive the Planner.
  Planner(const ClusterSnapshot& snapshot, const UnitIndex& index);
  Plan Run();

 private:
  enum class Misfit { kNone, kMachineId, kMetadata, kPeer, kFull, kConflict, kReplace };
  enum class Visit : uint8_t { kNew, kActive, kDone };

  struct MachineState {
    const MachineView* view = nullptr;
    SharedName id;               // view->id, made when a plan first names it
    int count = 0;               // non-global units placed here + globals running here
    std::vector<int> units;      // non-global units placed here
    std::vector<int> globals;    // global units running here
    std::vector<int> classes;    // metadata classes this machine belongs to
  };
  struct UnitState {
    const SharedName* stored_id = nullptr;  // machine id in the stored schedule, if any
    int stored = kNoMachine;   // alive machine of the stored schedule
    int machine = kNoMachine;  // working placement (non-global units)
    Visit visit = Visit::kNew;
  };
  // The machines matching one MachineMetadata= constraint, by load then id.
  struct MetadataClass {
    absl::btree_set<std::pair<int, int>> by_load;  // (count, machine index)
  };
  // Why the machines scanned for a unit did not fit it.
  struct ScanStats {
    int full = 0;
    int conflict = 0;
    int replace = 0;
    int peer = 0;
    std::vector<int> conflict_machines;  // the first few, for the reason
    int replace_machine = kNoMachine;
    int peer_machine = kNoMachine;
  };

  const UnitView& View(int u) const { return *index_.order[u]; }
  bool IsGlobal(int u) const { return index_.global[u]; }
  int FindMachine(std::string_view id) const {
    auto it = machine_index_.find(id);
    return it == machine_index_.end() ? kNoMachine : it->second;
  }
  static uint64_t CountKey(uint32_t glob, int machine) {
    return (uint64_t{glob} << 32) | static_cast<uint32_t>(machine);
  }
  static int Lookup(const absl::flat_hash_map<uint64_t, int>& counts, uint64_t key) {
    auto it = counts.find(key);
    return it == counts.end() ? 0 : it->second;
  }

  void PlaceGlobals();
  // The class of the machines matching options' MachineMetadata= (0: every
  // machine), made when first asked for.
  int ClassFor(const FleetOptions& options);
  void SetCount(int m, int count);
  void BuildLoadOrder();  // every class's by_load from the machines' counts
  void AddToMachine(int u, int m, int delta);
  void Place(int u, int m);
  void Unplace(int u);
  void Evict(int u, int m);

  Misfit Check(int u, int m, bool check_static) const;
  bool ConflictOn(int u, int m) const;
  int ConflictingUnitOn(int u, int m) const;
  int ReplaceClashOn(int u, int m) const;
  std::string Describe(int u, int m, Misfit misfit) const;
  std::string ScanReason(int u, const ScanStats& stats) const;

  void Keep(int u);
  void PlaceUnit(int u);
  void Decide(int u);
  bool TryPlaceAt(int u, int m);

  const ClusterSnapshot& snapshot_;
  const UnitIndex& index_;
  const GlobalSet& globals_;  // index_.globals
  std::vector<UnitState> units_;  // every unit of the snapshot, in index_.order
  std::vector<MachineState> machines_;  // alive machines, by id
  absl::flat_hash_map<std::string_view, int> machine_index_;
  std::vector<MetadataClass> classes_;  // classes_[0]: every machine
  absl::flat_hash_map<std::string, int> class_index_;
  // The engine's units share one FleetOptions per distinct [X-Fleet] section,
  // so most ClassFor calls are answered here without building a key.
  absl::flat_hash_map<const FleetOptions*, int> class_of_options_;

  // Per (Conflicts= glob of index_.globs, machine): how many units there
  // match the glob, and how many declare it.
  absl::flat_hash_map<uint64_t, int> match_count_;
  absl::flat_hash_map<uint64_t, int> declare_count_;

  std::vector<int> queue_;  // units to place, processed in order; evictions appended
  // A safety net: evictions allowed in this Reconcile (one per unit). Evicting
  // only older units already makes chains of Replaces= end.
  int64_t evictions_left_ = 0;
  bool load_order_deferred_ = false;  // SetCount leaves by_load to BuildLoadOrder
  absl::flat_hash_map<int, std::string> reasons_;       // unplaced unit -> why
  absl::flat_hash_map<int, std::string> global_reasons_;  // global running nowhere -> why
};

void IndexConflictGlobs(UnitIndex* index) {
  const size_t n = index->order.size();
  absl::flat_hash_map<std::string_view, uint32_t> ids;  // every glob; exact names match themselves
  absl::flat_hash_map<std::string_view, std::vector<uint32_t>> by_prefix;  // globs with wildcards
  index->own_begin.assign(n + 1, 0);
  for (size_t u = 0; u < n; ++u) {
    index->own_begin[u] = static_cast<uint32_t>(index->glob_pool.size());
    for (const std::string& glob : index->order[u]->options->conflicts) {
      auto [it, inserted] = ids.emplace(glob, index->globs.size());
      if (inserted) {
        index->globs.push_back(&glob);
        if (glob.find_first_of(kGlobChars) != std::string::npos) {
          by_prefix[LiteralPrefix(glob)].push_back(it->second);
        }
      }
      auto own = index->glob_pool.begin() + index->own_begin[u];
      if (std::find(own, index->glob_pool.end(), it->second) == index->glob_pool.end()) {
        index->glob_pool.push_back(it->second);
      }
    }
  }
  index->own_begin[n] = static_cast<uint32_t>(index->glob_pool.size());
  index->name_begin.assign(n + 1, index->own_begin[n]);
  if (index->globs.empty()) return;
  std::vector<size_t> lengths;
  for (const auto& [prefix, ids_of_prefix] : by_prefix) lengths.push_back(prefix.size());
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  for (size_t u = 0; u < n; ++u) {
    index->name_begin[u] = static_cast<uint32_t>(index->glob_pool.size());
    const SharedName& name = index->order[u]->name;
    if (auto exact = ids.find(name);
        exact != ids.end() && std::string_view(name).find_first_of(kGlobChars) == std::string_view::npos) {
      index->glob_pool.push_back(exact->second);
    }
    for (size_t length : lengths) {
      if (length > name.view().size()) break;
      auto it = by_prefix.find(std::string_view(name).substr(0, length));
      if (it == by_prefix.end()) continue;
      for (uint32_t glob : it->second) {
        if (GlobMatch(*index->globs[glob], name)) index->glob_pool.push_back(glob);
      }
    }
  }
  index->name_begin[n] = static_cast<uint32_t>(index->glob_pool.size());
}

void IndexReplaces(const ClusterSnapshot& snapshot, UnitIndex* index) {
  for (size_t u = 0; u < index->order.size(); ++u) {
    const UnitView& view = *index->order[u];
    if (view.options->replaces.empty()) continue;
    ForEachReplaced(snapshot, view, [&](const UnitView& x) {
      const int xi = index->Find(x.name);
      index->replaced[static_cast<int>(u)].push_back(xi);
      index->replaced_by[xi].push_back(static_cast<int>(u));
    });
  }
  for (auto& [u, list] : index->replaced) std::sort(list.begin(), list.end());
  for (auto& [x, list] : index->replaced_by) std::sort(list.begin(), list.end());
  // Mutual Replaces=: the later-submitted (higher index) one loses.
  for (const auto& [u, list] : index->replaced) {
    for (int x : list) {
      if (x > u) continue;  // each pair once, from its later unit
      auto back = index->replaced.find(x);
      if (back == index->replaced.end() ||
          !std::binary_search(back->second.begin(), back->second.end(), u)) {
        continue;
      }
      auto [it, inserted] = index->superseded.emplace(u, x);
      if (!inserted) it->second = std::min(it->second, x);
    }
  }
}

std::unique_ptr<UnitIndex> BuildUnitIndex(const ClusterSnapshot& snapshot) {
  auto index = std::make_unique<UnitIndex>(snapshot);
  // Sort (revision, unit) pairs: most comparisons never touch the UnitView.
  std::vector<std::pair<int64_t, const UnitView*>> order;
  order.reserve(snapshot.units.size());
  for (const auto& [name, unit] : snapshot.units) order.emplace_back(unit.create_revision, &unit);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->name < b.second->name;
  });
  index->order.reserve(order.size());
  for (const auto& [revision, unit] : order) index->order.push_back(unit);
  index->by_name.reserve(order.size());
  for (size_t i = 0; i < index->order.size(); ++i) index->by_name.emplace(index->order[i]->name, i);
  index->global.reserve(index->order.size());
  for (size_t u = 0; u < index->order.size(); ++u) {
    const UnitView& view = *index->order[u];
    index->global.push_back(view.options->global);
    if (view.options->global) continue;
    for (const std::string& peer : view.options->machine_of) {
      int p = index->Find(peer);
      if (p >= 0) index->dependents[p].push_back(static_cast<int>(u));
    }
  }
  IndexConflictGlobs(index.get());
  IndexReplaces(snapshot, index.get());
  return index;
}

Planner::Planner(const ClusterSnapshot& snapshot, const UnitIndex& index)
    : snapshot_(snapshot), index_(index), globals_(index.globals) {
  units_.resize(index.order.size());
  std::vector<const MachineView*> machines;
  machines.reserve(snapshot.machines.size());
  for (const auto& [id, machine] : snapshot.machines) machines.push_back(&machine);
  std::sort(machines.begin(), machines.end(),
            [](const MachineView* a, const MachineView* b) { return a->id < b->id; });
  machines_.resize(machines.size());
  machine_index_.reserve(machines.size());
  classes_.emplace_back();
  for (size_t m = 0; m < machines.size(); ++m) {
    machines_[m].view = machines[m];
    machines_[m].classes.push_back(0);
    machine_index_.emplace(machines[m]->id, m);
    classes_[0].by_load.emplace(0, m);
  }
  for (size_t u = 0; u < units_.size(); ++u) {
    if (IsGlobal(u)) continue;
    auto it = snapshot.schedule.find(index.order[u]->name);
    if (it != snapshot.schedule.end()) {
      units_[u].stored_id = &it->second;
      units_[u].stored = FindMachine(it->second);
    }
  }
}

void Planner::PlaceGlobals() {
  std::vector<bool> runs_somewhere(globals_.size(), false);
  for (size_t m = 0; m < machines_.size(); ++m) {
    for (size_t g : globals_.RunningOn(*machines_[m].view)) {
      runs_somewhere[g] = true;
      int u = index_.Find(globals_.unit(g).name);
      machines_[m].globals.push_back(u);
      AddToMachine(u, m, +1);
    }
  }
  for (size_t g = 0; g < globals_.size(); ++g) {
    if (!runs_somewhere[g]) {
      global_reasons_[index_.Find(globals_.unit(g).name)] = globals_.WhyNowhere(g, snapshot_);
    }
  }
}

int Planner::ClassFor(const FleetOptions& options) {
  if (options.machine_metadata.empty()) return 0;
  if (auto known = class_of_options_.find(&options); known != class_of_options_.end()) {
    return known->second;
  }
  std::string key;
  for (const auto& [k, accepted] : options.machine_metadata) {
    absl::StrAppend(&key, k.size(), ":", k);
    for (const std::string& value : accepted) absl::StrAppend(&key, ",", value.size(), ":", value);
    key.push_back(';');
  }
  auto [it, inserted] = class_index_.emplace(std::move(key), classes_.size());
  class_of_options_.emplace(&options, it->second);
  if (!inserted) return it->second;
  MetadataClass& created = classes_.emplace_back();
  for (size_t m = 0; m < machines_.size(); ++m) {
    if (!MetadataMatches(options, *machines_[m].view)) continue;
    created.by_load.emplace(machines_[m].count, m);
    machines_[m].classes.push_back(it->second);
  }
  return it->second;
}

void Planner::SetCount(int m, int count) {
  MachineState& machine = machines_[m];
  if (load_order_deferred_) {
    machine.count = count;
    return;
  }
  for (int c : machine.classes) {
    classes_[c].by_load.erase({machine.count, m});
    classes_[c].by_load.emplace(count, m);
  }
  machine.count = count;
}

// Adds (delta=+1) or removes (-1) what unit `u` contributes to machine `m`:
// its load and its Conflicts= counts.
void Planner::AddToMachine(int u, int m, int delta) {
  SetCount(m, machines_[m].count + delta);
  for (uint32_t glob : index_.OwnGlobs(u)) declare_count_[CountKey(glob, m)] += delta;
  for (uint32_t glob : index_.NameGlobs(u)) match_count_[CountKey(glob, m)] += delta;
}

void Planner::Place(int u, int m) {
  units_[u].machine = m;
  machines_[m].units.push_back(u);
  AddToMachine(u, m, +1);
  reasons_.erase(u);
}

void Planner::Unplace(int u) {
  int m = units_[u].machine;
  std::vector<int>& here = machines_[m].units;
  here.erase(std::find(here.begin(), here.end(), u));
  AddToMachine(u, m, -1);
  units_[u].machine = kNoMachine;
}

// `u`, already unplaced from `m` by Replaces=, goes back to the queue, with
// the units that follow it to `m` with MachineOf=.
void Planner::Evict(int u, int m) {
  --evictions_left_;
  units_[u].visit = Visit::kNew;
  queue_.push_back(u);
  std::vector<int> followers = {u};
  while (!followers.empty()) {
    int peer = followers.back();
    followers.pop_back();
    auto it = index_.dependents.find(peer);
    if (it == index_.dependents.end()) continue;
    for (int d : it->second) {
      if (units_[d].machine != m) continue;
      Unplace(d);
      units_[d].visit = Visit::kNew;
      queue_.push_back(d);
      followers.push_back(d);
    }
  }
}

bool Planner::ConflictOn(int u, int m) const {
  for (uint32_t glob : index_.OwnGlobs(u)) {
    if (Lookup(match_count_, CountKey(glob, m)) > 0) return true;
  }
  for (uint32_t glob : index_.NameGlobs(u)) {
    if (Lookup(declare_count_, CountKey(glob, m)) > 0) return true;
  }
  return false;
}

// The first-submitted unit on `m` that `u` conflicts with (slow; for reasons
// only), or -1.
int Planner::ConflictingUnitOn(int u, int m) const {
  const UnitView& unit = View(u);
  int first = -1;
  for (const std::vector<int>* list : {&machines_[m].globals, &machines_[m].units}) {
    for (int x : *list) {
      if (x == u || (first >= 0 && x > first)) continue;
      if (AnyGlobMatches(unit.options->conflicts, View(x).name) ||
          AnyGlobMatches(View(x).options->conflicts, unit.name)) {
        first = x;
      }
    }
  }
  return first;
}

// The first-submitted unit on `m` that `u` replaces or that replaces `u`, or -1.
int Planner::ReplaceClashOn(int u, int m) const {
  int first = -1;
  for (const auto* relation : {&index_.replaced, &index_.replaced_by}) {
    auto it = relation->find(u);
    if (it == relation->end()) continue;
    for (int x : it->second) {  // ascending
      if (first >= 0 && x > first) break;
      const std::vector<int>& here = machines_[m].globals;
      if (IsGlobal(x) ? std::find(here.begin(), here.end(), x) != here.end()
                      : units_[x].machine == m) {
        first = x;
        break;
      }
    }
  }
  return first;
}

Planner::Misfit Planner::Check(int u, int m, bool check_static) const {
  const FleetOptions& options = *View(u).options;
  const MachineState& machine = machines_[m];
  if (check_static) {
    if (!options.machine_id.empty() && options.machine_id != machine.view->id) {
      return Misfit::kMachineId;
    }
    if (!MetadataMatches(options, *machine.view)) return Misfit::kMetadata;
  }
  for (const std::string& peer : options.machine_of) {
    int p = index_.Find(peer);
    if (p < 0) return Misfit::kPeer;
    if (IsGlobal(p)) {
      if (std::find(machine.globals.begin(), machine.globals.end(), p) == machine.globals.end()) {
        return Misfit::kPeer;
      }
    } else if (units_[p].machine != m) {
      return Misfit::kPeer;
    }
  }
  if (machine.view->capacity != 0 && machine.count >= static_cast<int64_t>(machine.view->capacity)) {
    return Misfit::kFull;
  }
  if (ConflictOn(u, m)) return Misfit::kConflict;
  if (ReplaceClashOn(u, m) >= 0) return Misfit::kReplace;
  return Misfit::kNone;
}

std::string Planner::Describe(int u, int m, Misfit misfit) const {
  const MachineView& machine = *machines_[m].view;
  const FleetOptions& options = *View(u).options;
  switch (misfit) {
    case Misfit::kNone:
      return absl::StrCat("machine ", machine.id, " fits");
    case Misfit::kMachineId:
      return absl::StrCat("machine ", machine.id, " is not MachineID=", options.machine_id);
    case Misfit::kMetadata:
      return absl::StrCat("machine ", machine.id, " does not match MachineMetadata ",
                          DescribeMetadata(options.machine_metadata));
    case Misfit::kPeer:
      for (const std::string& peer : options.machine_of) {
        int p = index_.Find(peer);
        if (p < 0) return absl::StrCat("waits for MachineOf=", peer, ", which is not loaded");
        if (IsGlobal(p)) {
          const std::vector<int>& here = machines_[m].globals;
          if (std::find(here.begin(), here.end(), p) == here.end()) {
            return absl::StrCat("machine ", machine.id, " does not run MachineOf=", peer);
          }
        } else if (units_[p].machine != m) {
          return absl::StrCat("MachineOf=", peer, " is not on machine ", machine.id);
        }
      }
      return absl::StrCat("machine ", machine.id, " lacks a MachineOf= peer");
    case Misfit::kFull:
      return absl::StrCat("machine ", machine.id, " is at capacity (", machine.capacity,
                          " units)");
    case Misfit::kConflict: {
      int x = ConflictingUnitOn(u, m);
      return absl::StrCat("conflicts with ", x < 0 ? "a unit" : View(x).name.view(), " on machine ",
                          machine.id);
    }
    case Misfit::kReplace: {
      int x = ReplaceClashOn(u, m);
      return absl::StrCat("cannot share machine ", machine.id, " with ",
                          x < 0 ? "a unit" : View(x).name.view(), " (Replaces=)");
    }
  }
  std::abort();  // unreachable: the switch is exhaustive
}

std::string Planner::ScanReason(int u, const ScanStats& stats) const {
  const int categories =
      (stats.full > 0) + (stats.conflict > 0) + (stats.replace > 0) + (stats.peer > 0);
  std::vector<int> conflicting_units;  // in submission order
  for (int m : stats.conflict_machines) {
    int x = ConflictingUnitOn(u, m);
    if (x >= 0) conflicting_units.push_back(x);
  }
  std::sort(conflicting_units.begin(), conflicting_units.end());
  conflicting_units.erase(std::unique(conflicting_units.begin(), conflicting_units.end()),
                          conflicting_units.end());
  std::vector<std::string> conflicting;
  for (int x : conflicting_units) conflicting.push_back(View(x).name.str());
  if (stats.conflict > static_cast<int>(stats.conflict_machines.size())) {
    conflicting.push_back("...");
  }
  const std::string conflict_names = absl::StrJoin(conflicting, ", ");
  const std::string replace_name =
      stats.replace_machine == kNoMachine ? ""
                                          : View(ReplaceClashOn(u, stats.replace_machine)).name.str();
  const std::string peer_text = stats.peer_machine == kNoMachine
                                    ? ""
                                    : Describe(u, stats.peer_machine, Misfit::kPeer);
  if (categories == 1) {
    if (stats.conflict > 0) {
      return absl::StrCat("conflicts with ", conflict_names, " on every fitting machine");
    }
    if (stats.full > 0) return "every fitting machine is at capacity";
    if (stats.replace > 0) {
      return absl::StrCat("cannot share a machine with ", replace_name,
                          " (Replaces=) on any fitting machine");
    }
    return absl::StrCat("no fitting machine runs its MachineOf= peers (e.g. ", peer_text, ")");
  }
  std::vector<std::string> parts;
  if (stats.full > 0) parts.push_back(absl::StrCat(stats.full, " at capacity"));
  if (stats.conflict > 0) {
    parts.push_back(absl::StrCat(stats.conflict, " with conflicting units (", conflict_names, ")"));
  }
  if (stats.replace > 0) {
    parts.push_back(absl::StrCat(stats.replace, " with ", replace_name, " (Replaces=)"));
  }
  if (stats.peer > 0) {
    parts.push_back(absl::StrCat(stats.peer, " without its MachineOf= peers (", peer_text, ")"));
  }
  return absl::StrCat("no fitting machine: ", absl::StrJoin(parts, "; "));
}

// Keeps `u` on its stored machine if that machine is alive and still fits,
// deciding its non-global MachineOf= peers first.
void Planner::Keep(int u) {
  UnitState& unit = units_[u];
  unit.visit = Visit::kActive;
  for (const std::string& peer : View(u).options->machine_of) {
    int p = index_.Find(peer);
    if (p >= 0 && !IsGlobal(p) && units_[p].stored != kNoMachine &&
        units_[p].visit == Visit::kNew) {
      Keep(p);
    }
  }
  unit.visit = Visit::kDone;
  if (index_.superseded.contains(u)) return;
  if (Check(u, unit.stored, /*check_static=*/true) == Misfit::kNone) Place(u, unit.stored);
}

// Places `u` (after its unplaced MachineOf= peers), or records why it cannot.
void Planner::PlaceUnit(int u) {
  UnitState& unit = units_[u];
  if (unit.machine != kNoMachine || unit.visit != Visit::kNew) return;
  unit.visit = Visit::kActive;
  std::string cycle_peer;
  for (const std::string& peer : View(u).options->machine_of) {
    int p = index_.Find(peer);
    if (p < 0 || IsGlobal(p) || units_[p].machine != kNoMachine) continue;
    if (units_[p].visit == Visit::kActive) {
      cycle_peer = peer;
    } else {
      PlaceUnit(p);
    }
  }
  unit.visit = Visit::kDone;  // (units_ never resizes: `unit` stays valid)
  if (!cycle_peer.empty()) {
    reasons_[u] = absl::StrCat("MachineOf= forms a cycle through ", cycle_peer);
    return;
  }
  Decide(u);
}

// Tries `u` on `m`, evicting the units it replaces there (if they were all
// submitted before `u`, none is a MachineOf= peer of `u`, and the eviction
// budget is not spent). On failure everything is as before.
bool Planner::TryPlaceAt(int u, int m) {
  std::vector<int> victims;
  auto it = index_.replaced.find(u);
  if (it != index_.replaced.end()) {
    const std::vector<std::string>& peers = View(u).options->machine_of;
    for (int x : it->second) {
      if (IsGlobal(x) || units_[x].machine != m) continue;
      if (x > u || evictions_left_ < 1 ||
          std::find(peers.begin(), peers.end(), View(x).name) != peers.end()) {
        victims.clear();  // x stays, so u cannot go to m
        break;
      }
      victims.push_back(x);
    }
  }
  for (int x : victims) Unplace(x);
  if (Check(u, m, /*check_static=*/true) == Misfit::kNone) {
    Place(u, m);
    for (int x : victims) Evict(x, m);
    return true;
  }
  for (int x : victims) Place(x, m);
  return false;
}

void Planner::Decide(int u) {
  const UnitView& view = View(u);
  const FleetOptions& options = *view.options;
  if (auto it = index_.superseded.find(u); it != index_.superseded.end()) {
    reasons_[u] = MutualReplaceReason(View(it->second));
    return;
  }
  // MachineOf=: the machine of the non-global peers, all the same.
  int target = kNoMachine;
  std::string prefix;
  for (const std::string& peer : options.machine_of) {
    int p = index_.Find(peer);
    if (p < 0) {
      reasons_[u] = absl::StrCat("waits for MachineOf=", peer, ", which is not loaded");
      return;
    }
    if (IsGlobal(p)) continue;
    int m = units_[p].machine;
    if (m == kNoMachine) {
      reasons_[u] = absl::StrCat("waits for MachineOf=", peer, ", which is not scheduled");
      return;
    }
    if (target != kNoMachine && target != m) {
      reasons_[u] = absl::StrCat("MachineOf= peers are on different machines (", peer, " is on ",
                                 machines_[m].view->id, ", ", prefix, ")");
      return;
    }
    target = m;
    prefix = absl::StrCat("MachineOf=", peer, " is on ", machines_[m].view->id);
  }
  if (!options.machine_id.empty()) {
    int m = FindMachine(options.machine_id);
    if (m == kNoMachine) {
      reasons_[u] = absl::StrCat("MachineID=", options.machine_id, ": the machine is not alive");
      return;
    }
    if (target != kNoMachine && target != m) {
      reasons_[u] = absl::StrCat(prefix, ", not on MachineID=", options.machine_id);
      return;
    }
    target = m;
    prefix = absl::StrCat("MachineID=", options.machine_id);
  }
  if (target != kNoMachine) {
    if (!TryPlaceAt(u, target)) {
      reasons_[u] = absl::StrCat(prefix, ": ", Describe(u, target, Check(u, target, true)));
    }
    return;
  }
  // Replaces=: first the machines that run a unit it replaces, by load then id.
  if (auto it = index_.replaced.find(u); it != index_.replaced.end()) {
    std::vector<std::pair<int, int>> candidates;
    for (int x : it->second) {
      int m = units_[x].machine;
      if (!IsGlobal(x) && m != kNoMachine) candidates.emplace_back(machines_[m].count, m);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (const auto& [count, m] : candidates) {
      if (TryPlaceAt(u, m)) return;
    }
  }
  const int c = ClassFor(options);
  if (classes_[c].by_load.empty()) {
    reasons_[u] = machines_.empty() ? "no machine is alive"
                                    : absl::StrCat("no machine matches MachineMetadata ",
                                                   DescribeMetadata(options.machine_metadata));
    return;
  }
  ScanStats stats;
  for (const auto& [count, m] : classes_[c].by_load) {
    switch (Check(u, m, /*check_static=*/false)) {
      case Misfit::kNone: {
        const int chosen = m;  // Place() reorders by_load: stop iterating first
        Place(u, chosen);
        return;
      }
      case Misfit::kMachineId:
      case Misfit::kMetadata:
        break;  // not checked while scanning a class
      case Misfit::kPeer:
        if (stats.peer++ == 0) stats.peer_machine = m;
        break;
      case Misfit::kFull:
        ++stats.full;
        break;
      case Misfit::kConflict:
        if (stats.conflict++ < 3) stats.conflict_machines.push_back(m);
        break;
      case Misfit::kReplace:
        if (stats.replace++ == 0) stats.replace_machine = m;
        break;
    }
  }
  reasons_[u] = ScanReason(u, stats);
}

void Planner::BuildLoadOrder() {
  for (MetadataClass& c : classes_) c.by_load.clear();
  for (size_t m = 0; m < machines_.size(); ++m) {
    for (int c : machines_[m].classes) classes_[c].by_load.emplace(machines_[m].count, m);
  }
}

Plan Planner::Run() {
  // Nothing reads the machines' load order while globals are placed and the
  // stored schedule is kept: the counts are summed first and the order built
  // once, not moved in the btree for every unit kept.
  load_order_deferred_ = true;
  PlaceGlobals();
  evictions_left_ = static_cast<int64_t>(units_.size());
  // Keep what is stored on live machines that still fit.
  for (size_t u = 0; u < units_.size(); ++u) {
    if (!IsGlobal(u) && units_[u].stored != kNoMachine && units_[u].visit == Visit::kNew) Keep(u);
  }
  load_order_deferred_ = false;
  BuildLoadOrder();
  for (UnitState& unit : units_) unit.visit = Visit::kNew;
  // Place the rest in submission order; evicted units come back at the end.
  // Then try the units left over again, until a pass places nothing: an
  // eviction may have made room for a unit tried before it. The last pass
  // runs on the final schedule, so every reason describes the plan's result
  // (and the next Reconcile gives the same reasons).
  for (bool placed_some = true; placed_some;) {
    queue_.clear();
    for (size_t u = 0; u < units_.size(); ++u) {
      if (!IsGlobal(u) && units_[u].machine == kNoMachine) {
        units_[u].visit = Visit::kNew;
        queue_.push_back(u);
      }
    }
    const size_t left = queue_.size();
    for (size_t i = 0; i < queue_.size(); ++i) PlaceUnit(queue_[i]);
    size_t still_left = 0;
    for (size_t u = 0; u < units_.size(); ++u) {
      still_left += !IsGlobal(u) && units_[u].machine == kNoMachine;
    }
    placed_some = still_left < left || queue_.size() > left;
  }

  Plan plan;
  size_t scheduled_units = 0;  // non-global units of the snapshot found in the schedule
  for (size_t u = 0; u < units_.size(); ++u) {
    const UnitState& unit = units_[u];
    if (IsGlobal(u)) {
      if (auto it = global_reasons_.find(u); it != global_reasons_.end()) {
        plan.unplaceable[View(u).name.str()] = it->second;
      }
      continue;
    }
    scheduled_units += unit.stored_id != nullptr;
    const int m = unit.machine;
    if (m != kNoMachine) {
      if (unit.stored == m) continue;  // kept where the schedule has it
      MachineState& machine = machines_[m];
      if (machine.id.empty()) machine.id = machine.view->id;
      plan.assign.emplace_back(View(u).name, machine.id);
      continue;
    }
    const SharedName& name = View(u).name;
    if (unit.stored_id != nullptr) plan.unassign.push_back(name);
    auto reason = reasons_.find(u);
    if (reason == reasons_.end()) std::abort();  // invariant: the last pass gave every one a reason
    plan.unplaceable[name.str()] = reason->second;
  }
  // The other schedule entries (units gone, inactive or global) come out. A
  // lookup per entry is 100,000 string hashes at that many units: skipped
  // when no entry is left over.
  if (scheduled_units < snapshot_.schedule.size()) {
    for (const auto& [name, machine] : snapshot_.schedule) {
      auto it = snapshot_.units.find(name);
      if (it == snapshot_.units.end() || it->second.options->global) plan.unassign.push_back(name);
    }
  }
  std::sort(plan.assign.begin(), plan.assign.end());
  std::sort(plan.unassign.begin(), plan.unassign.end());
  return plan;
}

}  // namespace

Plan Reconcile(const ClusterSnapshot& snapshot) {
  std::unique_ptr<UnitIndex> index = BuildUnitIndex(snapshot);
  return Planner(snapshot, *index).Run();
}

Reconciler::Reconciler() = default;
Reconciler::~Reconciler() = default;

Plan Reconciler::Reconcile(const ClusterSnapshot& snapshot) {
  // The size is a cheap guard against an owner that changed units without
  // a Bump; the version is the rule.
  if (index_ == nullptr || index_->version != snapshot.units_version.value() ||
      index_->order.size() != snapshot.units.size()) {
    index_ = BuildUnitIndex(snapshot);
  }
  return Planner(snapshot, *index_).Run();
}

void ApplyPlan(const Plan& plan, ClusterSnapshot* snapshot) {
  for (const auto& [unit, machine] : plan.assign) snapshot->schedule[unit] = machine;
  for (const SharedName& unit : plan.unassign) snapshot->schedule.erase(unit);
}

GlobalSet::GlobalSet(const ClusterSnapshot& snapshot) {
  for (const auto& [name, unit] : snapshot.units) {
    if (unit.options->global) globals_.push_back(unit);
  }
  std::sort(globals_.begin(), globals_.end(), Earlier);
  const size_t n = globals_.size();
  excluded_.resize(n);
  clash_.assign(n * n, false);
  for (size_t i = 0; i < n; ++i) {
    const UnitView& g = globals_[i];
    if (!g.options->machine_of.empty()) {
      excluded_[i] = "Global=true units cannot use MachineOf=";
    } else if (const UnitView* winner = MutualReplaceWinner(snapshot, g)) {
      excluded_[i] = MutualReplaceReason(*winner);
    }
    for (size_t j = 0; j < i; ++j) {
      if (Clash(g, globals_[j])) clash_[i * n + j] = clash_[j * n + i] = true;
    }
  }
}

std::vector<size_t> GlobalSet::RunningOn(const MachineView& machine) const {
  std::vector<size_t> running;
  for (size_t i = 0; i < globals_.size(); ++i) {
    if (excluded_[i] || !StaticFit(*globals_[i].options, machine)) continue;
    if (BlockerOn(i, running) == nullptr) running.push_back(i);
  }
  return running;
}

std::string GlobalSet::WhyNowhere(size_t i, const ClusterSnapshot& snapshot) const {
  if (excluded_[i]) return *excluded_[i];
  const FleetOptions& options = *globals_[i].options;
  if (snapshot.machines.empty()) return "no machine is alive";
  if (!options.machine_id.empty()) {
    auto it = snapshot.machines.find(options.machine_id);
    if (it == snapshot.machines.end()) {
      return absl::StrCat("MachineID=", options.machine_id, ": the machine is not alive");
    }
    if (!MetadataMatches(options, it->second)) {
      return absl::StrCat("MachineID=", options.machine_id,
                          ": the machine does not match MachineMetadata ",
                          DescribeMetadata(options.machine_metadata));
    }
  }
  // Some machine fits statically: an earlier global blocks it everywhere.
  // Name the blocker on the first such machine, by id.
  std::vector<const MachineView*> fitting;
  for (const auto& [id, machine] : snapshot.machines) {
    if (StaticFit(options, machine)) fitting.push_back(&machine);
  }
  if (fitting.empty()) {
    return absl::StrCat("no machine matches MachineMetadata ",
                        DescribeMetadata(options.machine_metadata));
  }
  const MachineView* first = *std::min_element(
      fitting.begin(), fitting.end(),
      [](const MachineView* a, const MachineView* b) { return a->id < b->id; });
  const UnitView* blocker = BlockerOn(i, RunningOn(*first));
  return absl::StrCat("conflicts with global ", blocker == nullptr ? "units" : blocker->name.view(),
                      " on every matching machine");
}

const UnitView* GlobalSet::BlockerOn(size_t i, const std::vector<size_t>& running) const {
  for (size_t j : running) {
    if (clash_[i * globals_.size() + j]) return &globals_[j];
  }
  return nullptr;
}

std::vector<SharedName> UnitsForMachine(const ClusterSnapshot& snapshot,
                                        const std::string& machine_id) {
  NameSet scheduled_here;
  for (const auto& [unit, machine] : snapshot.schedule) {
    if (machine == machine_id) scheduled_here.insert(unit);
  }
  return UnitsForMachine(snapshot, machine_id, scheduled_here, GlobalSet(snapshot));
}

std::vector<SharedName> UnitsForMachine(const ClusterSnapshot& snapshot,
                                        const std::string& machine_id, const NameSet& scheduled_here,
                                        const GlobalSet& globals) {
  std::vector<SharedName> names;
  for (const SharedName& unit : scheduled_here) {
    auto it = snapshot.units.find(unit);
    if (it != snapshot.units.end() && !it->second.options->global) names.push_back(unit);
  }
  if (auto it = snapshot.machines.find(machine_id); it != snapshot.machines.end()) {
    for (size_t g : globals.RunningOn(it->second)) names.push_back(globals.unit(g).name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool RunsOnMachine(const ClusterSnapshot& snapshot, const std::string& machine_id,
                   const NameSet& scheduled_here, const GlobalSet& globals, absl::string_view unit) {
  auto view = snapshot.units.find(unit);
  if (view == snapshot.units.end()) return false;
  if (!view->second.options->global) return scheduled_here.contains(unit);
  auto machine = snapshot.machines.find(machine_id);
  if (machine == snapshot.machines.end()) return false;
  for (size_t g : globals.RunningOn(machine->second)) {
    if (globals.unit(g).name == unit) return true;
  }
  return false;
}

}  // namespace fleet
