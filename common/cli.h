#pragma once

// Command-line conventions shared by fleet-engine, fleet-agent and fleetctl.
// CLI11 (Debian's libcli11-dev) parses flags: it gives subcommands, --help
// text, environment-variable fallbacks and config-file merging that absl's
// global flags do not.

#include <string>

#include "CLI/CLI.hpp"

namespace fleet {

// Adds --version, which prints "<program> <version>" and exits 0.
void AddVersionFlag(CLI::App& app, const std::string& program);

// Parses argv; on --help, --version or a usage error prints what CLI11 prints
// and returns the exit code to end with (0 or 2). Returns -1 to go on.
int ParseCommandLine(CLI::App& app, int argc, char** argv);

}  // namespace fleet
