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

// One of the verbs that set a desired state and wait for it.
struct StateChange {
  const char* verb;         // "load", "start", "stop", "unload"
  const char* description;  // for --help
  v1::DesiredState state;
  Goal goal;
  // true: arguments are unit files or names, put on the cluster first
  // (--replace replaces other contents); false: names or globs of units
  // already on the cluster (a glob never stands for a template).
  bool submits;
};

// Defines the subcommand for `change`, with --block-attempts and --no-block.
CommandRunner DefineStateChange(CLI::App& app, const StateChange& change);

}  // namespace fleet::ctl
