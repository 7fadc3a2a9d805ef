// fleetctl load UNIT...: schedule units to machines and install them, not started.

#include "fleetctl/commands/state_change.h"

namespace fleet::ctl {

CommandRunner DefineLoad(CLI::App& app) {
  return DefineStateChange(
      app, {.verb = "load",
            .description =
                "Schedule one or more units in the cluster, "
                "first submitting them if necessary",
            .state = v1::DESIRED_STATE_LOADED,
            .goal = Goal::kLoaded,
            .submits = true});
}

}  // namespace fleet::ctl
