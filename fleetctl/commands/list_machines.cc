// fleetctl list-machines: the machines whose agents are connected.

#include "fleetctl/commands/commands.h"
#include "fleetctl/commands/listings.h"

namespace fleet::ctl {

MachineIps FetchMachineIps(Client& client) {
  MachineIps ips;
  auto machines = client.ListMachines();
  if (machines.ok()) {
    for (const auto& m : *machines) ips[m.id()] = m.public_ip();
  }
  return ips;
}

CommandRunner DefineListMachines(CLI::App& app) {
  auto flags = std::make_shared<ListingFlags>();
  CLI::App* command =
      app.add_subcommand("list-machines", "Enumerate the current hosts in the cluster");
  flags->Add(*command, "machine,ip,metadata");
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto machines = (*client)->ListMachines();
    if (!machines.ok()) return context.Fail(machines.status());
    auto text = flags->Render(MachinesListing(*machines, flags->full));
    if (!text.ok()) return context.Fail(text.status());
    context.out() << *text;
    return kExitOk;
  };
}

}  // namespace fleet::ctl
