// fleetctl: the command-line client of a fleet cluster.

#include "CLI/CLI.hpp"
#include "common/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"fleetctl: submit, start, stop and inspect the units of a fleet cluster"};
  fleet::AddVersionFlag(app, "fleetctl");
  if (int code = fleet::ParseCommandLine(app, argc, argv); code >= 0) return code;
  return 0;
}
