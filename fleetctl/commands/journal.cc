// fleetctl journal UNIT [--lines N] [-f]: the unit's journal from its
// machine, read by its agent with sd-journal and streamed through the engine
// (no SSH). As in fleet, 10 lines by default; -f follows until Ctrl-C or
// until the unit's machine goes away (then exit 1 with the reason).

#include <memory>
#include <string>

#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {

CommandRunner DefineJournal(CLI::App& app) {
  struct Flags {
    std::string unit;
    int lines = 10;
    bool follow = false;
    std::string machine;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "journal", "Print the journal of a unit from its machine (through the engine)");
  command->add_option("unit", flags->unit, "Unit name")->required();
  command->add_option("-n,--lines", flags->lines, "Number of recent lines to print (0 to 10000)")
      ->capture_default_str();
  command->add_flag("-f,--follow", flags->follow,
                    "Keep printing new lines until interrupted or the machine goes away");
  command->add_option("--machine", flags->machine,
                      "For a global unit: the machine (id or unique prefix) to read");
  return [flags](Context& context) {
    if (flags->lines < 0 || flags->lines > 10000) {
      context.err() << "Error: --lines " << flags->lines << " is out of range (0 to 10000)\n";
      return kExitUsage;
    }
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    v1::ReadJournalRequest request;
    request.set_name(MangleUnitName(flags->unit));
    request.set_lines(flags->lines);
    request.set_follow(flags->follow);
    request.set_machine_id(flags->machine);
    absl::Status status = (*client)->ReadJournal(request, [&context](const v1::JournalEntry& entry) {
      context.out() << (entry.line().empty() ? entry.message() : entry.line()) << "\n";
      // Followed lines appear as they come, also in a pipe.
      context.out().flush();
    });
    if (!status.ok()) return context.Fail(status);
    return kExitOk;
  };
}

}  // namespace fleet::ctl
