// fleetctl verify FILE...: check unit files locally, without an engine, and
// print every error as FILE:LINE: reason.

#include <fstream>
#include <sstream>

#include "common/unit/unit.h"
#include "common/unit/unit_file.h"
#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineVerify(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* command = app.add_subcommand(
      "verify", "Check unit files (syntax, name, [X-Fleet] options) without an engine");
  command->add_option("files", *files, "Unit files")->required();
  return [files](Context& context) {
    int exit_code = kExitOk;
    for (const auto& path : *files) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        context.err() << path << ": cannot read the file\n";
        exit_code = kExitFailed;
        continue;
      }
      std::stringstream buf;
      buf << in.rdbuf();
      std::string name = std::filesystem::path(path).filename().string();
      std::vector<UnitError> errors = VerifyUnit(name, buf.str());
      for (const auto& error : errors) {
        context.err() << path << ":" << error.line << ": " << error.message << "\n";
      }
      if (!errors.empty()) exit_code = kExitFailed;
    }
    return exit_code;
  };
}

}  // namespace fleet::ctl
