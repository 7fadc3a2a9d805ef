// fleetctl destroy UNIT...: remove units from the cluster (stopped and
// uninstalled everywhere).

#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineDestroy(CLI::App& app) {
  auto units = std::make_shared<std::vector<std::string>>();
  CLI::App* command =
      app.add_subcommand("destroy", "Destroy one or more units in the cluster");
  command->add_option("units", *units, "Unit names or globs")->required();
  return [units](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, *units, Templates::kInclude);
    if (!names.ok()) return context.Fail(names.status());
    int exit_code = kExitOk;
    for (const auto& name : *names) {
      absl::Status destroyed = (*client)->DestroyUnit(name);
      if (destroyed.ok() || destroyed.code() == absl::StatusCode::kNotFound) {
        // fleet says "Destroyed" for a unit that was already gone too.
        context.out() << "Destroyed " << name << "\n";
        continue;
      }
      context.err() << "Error: unit " << name << ": " << destroyed.message() << "\n";
      exit_code = kExitFailed;
    }
    return exit_code;
  };
}

}  // namespace fleet::ctl
