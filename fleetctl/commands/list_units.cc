// fleetctl list-units: the state of units on the cluster's machines.

#include "fleetctl/commands/commands.h"
#include "fleetctl/commands/listings.h"

namespace fleet::ctl {

CommandRunner DefineListUnits(CLI::App& app) {
  auto flags = std::make_shared<ListingFlags>();
  CLI::App* command =
      app.add_subcommand("list-units", "List the current state of units in the cluster");
  flags->Add(*command, "unit,machine,active,sub");
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto states = (*client)->ListUnitStates("");
    if (!states.ok()) return context.Fail(states.status());
    std::vector<v1::UnitStatus> shown;
    for (auto& s : *states) {
      // As fleet: units that are on a machine, or that should be and cannot.
      if (!s.machine_id().empty() || !s.unscheduled_reason().empty()) shown.push_back(s);
    }
    auto text = flags->Render(UnitStatesListing(shown, FetchMachineIps(**client), flags->full));
    if (!text.ok()) return context.Fail(text.status());
    context.out() << *text;
    return kExitOk;
  };
}

}  // namespace fleet::ctl
