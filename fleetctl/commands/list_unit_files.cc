// fleetctl list-unit-files: every unit submitted to the cluster.

#include "fleetctl/commands/commands.h"
#include "fleetctl/commands/listings.h"

namespace fleet::ctl {

CommandRunner DefineListUnitFiles(CLI::App& app) {
  auto flags = std::make_shared<ListingFlags>();
  CLI::App* command =
      app.add_subcommand("list-unit-files", "List the units that exist in the cluster");
  flags->Add(*command, "unit,hash,dstate,state,target");
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto units = (*client)->ListUnits("", /*omit_contents=*/false);
    if (!units.ok()) return context.Fail(units.status());
    auto states = (*client)->ListUnitStates("");
    if (!states.ok()) return context.Fail(states.status());
    auto text = flags->Render(
        UnitFilesListing(*units, *states, FetchMachineIps(**client), flags->full));
    if (!text.ok()) return context.Fail(text.status());
    context.out() << *text;
    return kExitOk;
  };
}

}  // namespace fleet::ctl
