#include "fleetctl/commands/state_change.h"

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
  for (const auto& name : names) {
    auto set = (*client)->SetDesiredState(name, state);
    if (!set.ok()) {
      context.err() << "Error: unit " << name << ": " << set.status().message() << "\n";
      return kExitFailed;
    }
  }
  if (block.no_block) {
    for (const auto& name : names) {
      context.out() << "Triggered unit " << name << " " << verb << "\n";
    }
    return kExitOk;
  }
  return WaitForUnits(context, names, goal, WaitOptions{.block_attempts = block.block_attempts});
}

}  // namespace fleet::ctl
