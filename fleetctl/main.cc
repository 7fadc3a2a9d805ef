// fleetctl: the command-line client of a fleet cluster.

#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "fleetctl/app.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return fleet::ctl::RunFleetctl(args, std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1);
}
