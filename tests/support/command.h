#pragma once

// Runs a shell command for tests and returns what it printed.

#include <string>

namespace fleet::test {

struct CommandOutput {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string text;    // stdout and stderr together
};

// Runs `command` with /bin/sh, waits for it, and captures its output.
CommandOutput RunCommand(const std::string& command);

// `s` in single quotes for /bin/sh, whatever it holds.
std::string ShellQuote(const std::string& s);

}  // namespace fleet::test
