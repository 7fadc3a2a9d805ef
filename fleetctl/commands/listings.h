#pragma once

// The listings' rows, built from what the engine returns. Pure, so golden
// tests cover every field in every format without an engine.

#include <map>
#include <string>
#include <vector>

#include "fleet/v1/fleet.pb.h"
#include "fleetctl/client.h"
#include "fleetctl/output.h"

namespace fleet::ctl {

using MachineIps = std::map<std::string, std::string>;  // machine id -> public IP

// Machine id -> public IP for the MACHINE legends; an error leaves the
// legends without IPs, as fleet did.
MachineIps FetchMachineIps(Client& client);

// list-units: fleet's fields unit, machine, active, sub, load, hash, plus
// pid, dstate and reason (why a unit is not placed). One row per unit and
// machine (a global unit has one per machine).
Listing UnitStatesListing(const std::vector<v1::UnitStatus>& states, const MachineIps& ips,
                          bool full);

// list-unit-files: fleet's fields unit, hash, dstate, state, target, global,
// desc. `states` gives STATE (what the agents run) and TARGET.
Listing UnitFilesListing(const std::vector<v1::Unit>& units,
                         const std::vector<v1::UnitStatus>& states, const MachineIps& ips,
                         bool full);

// list-machines: fleet's fields machine, ip, metadata, plus units and version.
Listing MachinesListing(const std::vector<v1::Machine>& machines, bool full);

// "inactive", "loaded", "launched" (fleet's words), "-" when unset.
std::string DesiredStateWord(v1::DesiredState state);

}  // namespace fleet::ctl
