// fleetctl start UNIT...: schedule and start units, submitting them (or their
// template's instances) first when needed.

#include "fleetctl/commands/state_change.h"

namespace fleet::ctl {

CommandRunner DefineStart(CLI::App& app) {
  return DefineStateChange(
      app, {.verb = "start",
            .description =
                "Instruct systemd to start one or more units in the cluster, "
                "first submitting and loading if necessary",
            .state = v1::DESIRED_STATE_LAUNCHED,
            .goal = Goal::kLaunched,
            .submits = true});
}

}  // namespace fleet::ctl
