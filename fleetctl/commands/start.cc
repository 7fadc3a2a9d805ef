// fleetctl start UNIT...: schedule and start units, submitting them (or their
// template's instances) first when needed.

#include "fleetctl/commands/state_change.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineStart(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    bool replace = false;
    BlockFlags block;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "start", "Instruct systemd to start one or more units in the cluster, first submitting "
               "and loading if necessary");
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
    return SetStateAndWait(context, *names, v1::DESIRED_STATE_LAUNCHED, Goal::kLaunched,
                           "start", flags->block);
  };
}

}  // namespace fleet::ctl
