// fleetctl load UNIT...: schedule units to machines and install them, not started.

#include "fleetctl/commands/state_change.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineLoad(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    bool replace = false;
    BlockFlags block;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand("load", "Schedule one or more units in the cluster, "
                                                 "first submitting them if necessary");
  command->add_option("units", flags->units, "Unit files or names")->required();
  command->add_flag("--replace", flags->replace,
                    "Replace a unit that is on the cluster with other contents");
  flags->block.Add(*command);
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = SubmitArgs(**client, flags->units,
                            flags->replace ? ExistingUnit::kReplace : ExistingUnit::kKeep);
    if (!names.ok()) return context.Fail(names.status());
    return SetStateAndWait(context, *names, v1::DESIRED_STATE_LOADED, Goal::kLoaded, "load",
                           flags->block);
  };
}

}  // namespace fleet::ctl
