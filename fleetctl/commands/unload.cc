// fleetctl unload UNIT...: take units off their machines; they stay submitted.

#include "fleetctl/commands/state_change.h"

namespace fleet::ctl {

CommandRunner DefineUnload(CLI::App& app) {
  return DefineStateChange(
      app, {.verb = "unload",
            .description =
                "Unschedule one or more units in the cluster",
            .state = v1::DESIRED_STATE_INACTIVE,
            .goal = Goal::kUnloaded,
            .submits = false});
}

}  // namespace fleet::ctl
