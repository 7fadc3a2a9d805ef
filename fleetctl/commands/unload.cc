// fleetctl unload UNIT...: take units off their machines; they stay submitted.

#include "fleetctl/commands/state_change.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineUnload(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    BlockFlags block;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand("unload", "Unschedule one or more units in the cluster");
  command->add_option("units", flags->units, "Unit names or globs")->required();
  flags->block.Add(*command);
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, flags->units, Templates::kSkip);
    if (!names.ok()) return context.Fail(names.status());
    return SetStateAndWait(context, *names, v1::DESIRED_STATE_INACTIVE, Goal::kUnloaded,
                           "unload", flags->block);
  };
}

}  // namespace fleet::ctl
