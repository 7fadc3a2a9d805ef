// fleetctl stop UNIT...: stop units; they stay loaded on their machines.

#include "fleetctl/commands/state_change.h"

namespace fleet::ctl {

CommandRunner DefineStop(CLI::App& app) {
  return DefineStateChange(
      app, {.verb = "stop",
            .description =
                "Instruct systemd to stop one or more units in the cluster",
            .state = v1::DESIRED_STATE_LOADED,
            .goal = Goal::kLoaded,
            .submits = false});
}

}  // namespace fleet::ctl
