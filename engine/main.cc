// fleet-engine: composition root. Wires the store, scheduler, registry and
// gRPC servers together; everything else takes its dependencies as arguments.

#include "CLI/CLI.hpp"
#include "common/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"fleet-engine: the API, durable desired state and scheduler of a fleet cluster"};
  fleet::AddVersionFlag(app, "fleet-engine");
  if (int code = fleet::ParseCommandLine(app, argc, argv); code >= 0) return code;
  return 0;
}
