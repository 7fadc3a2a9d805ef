// fleetctl help [COMMAND]: the same text as `fleetctl --help` or
// `fleetctl COMMAND --help`, as fleet's `fleetctl help` printed.

#include <memory>
#include <string>
#include <vector>

#include "fleetctl/commands/commands.h"

namespace fleet::ctl {

CommandRunner DefineHelp(CLI::App& app) {
  CLI::App* help = app.add_subcommand("help", "Show the list of commands, or one command's help");
  auto command = std::make_shared<std::string>();
  help->add_option("command", *command, "The command to explain");
  const CLI::App* root = &app;
  return [root, command](Context& context) {
    if (command->empty()) {
      // App::help() would print the parsed subcommand's (help's own) text.
      context.out() << root->get_formatter()->make_help(root, root->get_name(),
                                                        CLI::AppFormatMode::Normal);
      return kExitOk;
    }
    std::vector<const CLI::App*> verbs = root->get_subcommands(
        [&command](const CLI::App* verb) { return verb->get_name() == *command; });
    if (verbs.empty() || *command == "help") {
      context.err() << "Error: unknown command \"" << *command << "\"; see fleetctl help\n";
      return kExitUsage;
    }
    context.out() << root->get_formatter()->make_help(
        verbs.front(), root->get_name() + " " + *command, CLI::AppFormatMode::Normal);
    return kExitOk;
  };
}

}  // namespace fleet::ctl
