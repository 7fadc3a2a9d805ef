// fleet-agent: composition root. Wires the systemd manager, reconciler and
// engine connection together; everything else takes its dependencies as arguments.

#include "CLI/CLI.hpp"
#include "common/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"fleet-agent: runs this machine's share of a fleet cluster on its systemd"};
  fleet::AddVersionFlag(app, "fleet-agent");
  if (int code = fleet::ParseCommandLine(app, argc, argv); code >= 0) return code;
  return 0;
}
