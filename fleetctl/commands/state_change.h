#pragma once

// What load, start, stop and unload share: set the desired state of units,
// then wait (or not) for agents to report it.

#include <string>
#include <vector>

#include "fleetctl/commands/commands.h"
#include "fleetctl/wait.h"

namespace fleet::ctl {

// Sets `state` on every unit in `names`, then waits for `goal` unless
// --no-block. With --no-block prints fleet's "Triggered unit NAME VERB" lines
// (`verb` is the command: "start", "load", ...).
int SetStateAndWait(Context& context, const std::vector<std::string>& names,
                    v1::DesiredState state, Goal goal, const char* verb,
                    const BlockFlags& block);

}  // namespace fleet::ctl
