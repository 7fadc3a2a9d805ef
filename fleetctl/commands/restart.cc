// fleetctl restart UNIT...: a rolling restart, one unit after another; each
// is stopped and started again, and the next waits until it is active.

#include "fleetctl/commands/state_change.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineRestart(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    int block_attempts = 0;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "restart", "Restart one or more units in the cluster, one after another");
  command->add_option("units", flags->units, "Unit names or globs")->required();
  command->add_option("--block-attempts", flags->block_attempts,
                      "Poll up to N times for each step (0 = forever)")
      ->capture_default_str();
  return [flags](Context& context) {
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, flags->units, Templates::kSkip);
    if (!names.ok()) return context.Fail(names.status());
    BlockFlags block{.block_attempts = flags->block_attempts, .no_block = false};
    for (const auto& name : *names) {
      std::vector<std::string> one = {name};
      if (int code = SetStateAndWait(context, one, v1::DESIRED_STATE_LOADED, Goal::kLoaded,
                                     "stop", block);
          code != kExitOk) {
        return code;
      }
      if (int code = SetStateAndWait(context, one, v1::DESIRED_STATE_LAUNCHED, Goal::kLaunched,
                                     "start", block);
          code != kExitOk) {
        return code;
      }
    }
    return kExitOk;
  };
}

}  // namespace fleet::ctl
