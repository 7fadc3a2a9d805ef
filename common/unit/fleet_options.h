#pragma once

// The [X-Fleet] section of a unit, parsed into typed options with CoreOS
// fleet's meaning. Produced by the unit parser (common/unit/unit.h), read by the
// scheduler. Specifiers (%n %N %p %i) are already expanded for the unit's name.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/intern_pool.h"

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

// Interns options: the instances of a template mostly have equal ones (at
// 100,000 units in bench/scale one copy per unit was 16 MB).
using FleetOptionsPool = InternPool<FleetOptions>;

}  // namespace fleet
