#include "fleetctl/commands/state_change.h"

#include <memory>

#include "fleetctl/unit_args.h"

namespace fleet::ctl {

void BlockFlags::Add(CLI::App& command) {
  command.add_option("--block-attempts", block_attempts,
                     "Wait until the units reach the state, polling up to N times "
                     "(0 = forever)")
      ->capture_default_str();
  command.add_flag("--no-block", no_block, "Do not wait for the units to reach the state");
}

int SetStateAndWait(Context& context, const std::vector<std::string>& names,
                    v1::DesiredState state, Goal goal, const char* verb,
                    const BlockFlags& block) {
  auto client = context.client();
  if (!client.ok()) return context.Fail(client.status());
  // The engine's message names the unit that could not change.
  if (absl::Status set = (*client)->SetDesiredStates(names, state); !set.ok()) {
    context.err() << "Error: " << set.message() << "\n";
    return kExitFailed;
  }
  if (block.no_block) {
    for (const auto& name : names) {
      context.out() << "Triggered unit " << name << " " << verb << "\n";
    }
    return kExitOk;
  }
  return WaitForUnits(context, names, goal, WaitOptions{.block_attempts = block.block_attempts});
}

CommandRunner DefineStateChange(CLI::App& app, const StateChange& change) {
  struct Flags {
    std::vector<std::string> units;
    bool replace = false;
    BlockFlags block;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(change.verb, change.description);
  command->add_option("units", flags->units,
                      change.submits ? "Unit files or names" : "Unit names or globs")
      ->required();
  if (change.submits) {
    command->add_flag("--replace", flags->replace,
                      "Replace a unit that is on the cluster with other contents");
  }
  flags->block.Add(*command);
  return [flags, change](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = change.submits
                     ? SubmitArgs(**client, flags->units,
                                  flags->replace ? ExistingUnit::kReplace : ExistingUnit::kKeep)
                     : ExpandNames(**client, flags->units, Templates::kSkip);
    if (!names.ok()) return context.Fail(names.status());
    return SetStateAndWait(context, *names, change.state, change.goal, change.verb,
                           flags->block);
  };
}

}  // namespace fleet::ctl
