// fleetctl stop UNIT...: stop units; they stay loaded on their machines.

#include "fleetctl/commands/state_change.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineStop(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    BlockFlags block;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command =
      app.add_subcommand("stop", "Instruct systemd to stop one or more units in the cluster");
  command->add_option("units", flags->units, "Unit names or globs")->required();
  flags->block.Add(*command);
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, flags->units, Templates::kSkip);
    if (!names.ok()) return context.Fail(names.status());
    return SetStateAndWait(context, *names, v1::DESIRED_STATE_LOADED, Goal::kLoaded, "stop",
                           flags->block);
  };
}

}  // namespace fleet::ctl
