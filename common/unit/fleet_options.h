#pragma once

// The [X-Fleet] section of a unit, parsed into typed options with CoreOS
// fleet's meaning. Produced by the unit parser (common/unit/unit.h), read by the
// scheduler. Specifiers (%n %N %p %i) are already expanded for the unit's name.

#include <map>
#include <string>
#include <vector>

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
};

}  // namespace fleet
