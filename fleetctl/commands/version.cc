// fleetctl version: print the client's version.

#include "common/version.h"
#include "fleetctl/commands/commands.h"

namespace fleet::ctl {

CommandRunner DefineVersion(CLI::App& app) {
  app.add_subcommand("version", "Print the version and exit");
  return [](Context& context) {
    context.out() << "fleetctl version " << kVersion << "\n";
    return kExitOk;
  };
}

}  // namespace fleet::ctl
