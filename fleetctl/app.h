#pragma once

// fleetctl's command line: global flags (each also from the environment as
// FLEETCTL_<FLAG>, as in fleet) and the verbs of commands/commands.h.

#include <iostream>
#include <string>
#include <vector>

namespace fleet::ctl {

// Runs fleetctl with `args` (args[0] is the program name), printing to `out`
// and `err`. Returns the process exit code. `out_is_terminal` turns on
// progress lines while waiting.
int RunFleetctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                bool out_is_terminal);

}  // namespace fleet::ctl
