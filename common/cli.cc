#include "common/cli.h"

#include <iostream>

#include "common/version.h"

namespace fleet {

void AddVersionFlag(CLI::App& app, const std::string& program) {
  app.set_version_flag("--version", program + " " + kVersion);
}

int ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here as "successful" parse errors (code 0).
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return -1;
}

}  // namespace fleet
