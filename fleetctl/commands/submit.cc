// fleetctl submit UNIT...: put unit files on the cluster without scheduling them.

#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineSubmit(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    bool replace = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand("submit", "Upload one or more units to the cluster "
                                                   "without starting them");
  command->add_option("units", flags->units, "Unit files or names")->required();
  command->add_flag("--replace", flags->replace,
                    "Replace a unit that is on the cluster with other contents");
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = SubmitArgs(**client, flags->units,
                            flags->replace ? ExistingUnit::kReplace : ExistingUnit::kRefuse);
    if (!names.ok()) return context.Fail(names.status());
    return kExitOk;
  };
}

}  // namespace fleet::ctl
