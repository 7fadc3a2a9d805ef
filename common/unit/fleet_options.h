#pragma once

// The [X-Fleet] section of a unit, parsed into typed options with CoreOS
// fleet's meaning. Produced by the unit parser (common/unit/unit.h), read by the
// scheduler. Specifiers (%n %N %p %i) are already expanded for the unit's name.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace fleet {

struct FleetOptions {
  // MachineID=: the unit runs only on the machine with this id (empty = any).
  std::string machine_id;
  // MachineOf=: the unit runs on the machine that runs each of these units.
  std::vector<std::string> machine_of;
  // MachineMetadata=: key -> accepted values. A machine fits when, for every
  // key, its value for that key is one of the accepted values.
  std::map<std::string, std::vector<std::string>> machine_metadata;
  // Conflicts=: globs of unit names this unit never shares a machine with.
  std::vector<std::string> conflicts;
  // Global=: run on every machine that fits (MachineMetadata only).
  bool global = false;
  // Replaces=: units this unit evicts from the machine it is placed on.
  std::vector<std::string> replaces;

  bool operator==(const FleetOptions&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const FleetOptions& o) {
    return H::combine(std::move(h), o.machine_id, o.machine_of, o.machine_metadata, o.conflicts,
                      o.global, o.replaces);
  }
};

// Options held by many records at once (the engine's record of a unit and the
// scheduler's view of it). Never null.
using SharedFleetOptions = std::shared_ptr<const FleetOptions>;

// `options` as a SharedFleetOptions; every unit without [X-Fleet] options
// shares one instance.
SharedFleetOptions ShareFleetOptions(FleetOptions options);

// Interns options, so units whose options are equal share one copy (the
// instances of a template mostly are: at 100,000 units in bench/scale one
// copy per unit was 16 MB). Forgets options that no one else holds any more
// each time its size doubles. Not thread-safe.
class FleetOptionsPool {
 public:
  SharedFleetOptions Share(FleetOptions options);
  size_t size() const { return pool_.size(); }

 private:
  // Hash and equality by value, also against a plain FleetOptions.
  struct ByValue {
    using is_transparent = void;
    static const FleetOptions& Of(const FleetOptions& o) { return o; }
    static const FleetOptions& Of(const SharedFleetOptions& o) { return *o; }
    template <typename T>
    size_t operator()(const T& o) const {
      return absl::Hash<FleetOptions>()(Of(o));
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Of(a) == Of(b);
    }
  };
  absl::flat_hash_set<SharedFleetOptions, ByValue, ByValue> pool_;
  size_t sweep_at_ = 64;
};

}  // namespace fleet
