// fleetctl cat UNIT...: print unit files exactly as they were submitted.

#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineCat(CLI::App& app) {
  auto units = std::make_shared<std::vector<std::string>>();
  CLI::App* command = app.add_subcommand("cat", "Output the contents of submitted units");
  command->add_option("units", *units, "Unit names or globs")->required();
  return [units](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, *units, Templates::kInclude);
    if (!names.ok()) return context.Fail(names.status());
    for (size_t i = 0; i < names->size(); ++i) {
      auto unit = (*client)->GetUnit((*names)[i]);
      if (!unit.ok()) {
        return context.Fail(absl::Status(unit.status().code(),
                                         "unit " + (*names)[i] + ": " +
                                             std::string(unit.status().message())));
      }
      if (i > 0) context.out() << "\n";
      context.out() << unit->contents();
    }
    return kExitOk;
  };
}

}  // namespace fleet::ctl
