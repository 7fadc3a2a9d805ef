// fleetctl ssh MACHINE|UNIT [-- CMD...]: run the system's ssh to a machine's
// public address, or to the machine a unit runs on (fleet's fleetctl ssh).
// fleetctl replaces itself with ssh (execvp), so the terminal, the agent
// forwarding and the exit code are ssh's own; ssh's configuration
// (~/.ssh/config: keys, known hosts, ProxyJump) applies as usual.

#include "fleetctl/commands/ssh.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {
namespace {

// The machine whose id starts with `prefix` (an exact id wins).
absl::StatusOr<const v1::Machine*> FindMachine(const std::vector<v1::Machine>& machines,
                                               const std::string& prefix) {
  std::vector<const v1::Machine*> matches;
  for (const auto& m : machines) {
    if (m.id() == prefix) return &m;
    if (absl::StartsWith(m.id(), prefix)) matches.push_back(&m);
  }
  if (matches.empty()) {
    return absl::NotFoundError(absl::StrCat("no machine id starts with \"", prefix, "\""));
  }
  if (matches.size() > 1) {
    std::vector<std::string> ids;
    for (const auto* m : matches) ids.push_back(m->id());
    std::sort(ids.begin(), ids.end());
    return absl::InvalidArgumentError(absl::StrCat("machine id prefix \"", prefix,
                                                   "\" is ambiguous; it matches ",
                                                   absl::StrJoin(ids, ", ")));
  }
  return matches.front();
}

// The machine the unit `name` is scheduled to.
absl::StatusOr<const v1::Machine*> FindUnitMachine(const std::vector<v1::Machine>& machines,
                                                   const std::vector<v1::UnitStatus>& states,
                                                   const std::string& name) {
  bool known = false;
  std::string reason;
  std::vector<std::string> scheduled;
  for (const auto& s : states) {
    if (s.name() != name) continue;
    known = true;
    if (!s.machine_id().empty()) scheduled.push_back(s.machine_id());
    if (reason.empty()) reason = s.unscheduled_reason();
  }
  if (!known) return absl::NotFoundError(absl::StrCat("unit ", name, " does not exist"));
  if (scheduled.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("unit ", name, " is not scheduled to any machine",
                     reason.empty() ? "" : absl::StrCat(": ", reason)));
  }
  if (scheduled.size() > 1) {
    std::sort(scheduled.begin(), scheduled.end());
    return absl::FailedPreconditionError(
        absl::StrCat("unit ", name, " runs on ", scheduled.size(),
                     " machines (a global unit); name one of them instead: ",
                     absl::StrJoin(scheduled, ", ")));
  }
  for (const auto& m : machines) {
    if (m.id() == scheduled.front()) return &m;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "unit ", name, " is scheduled to machine ", scheduled.front(), ", which is not connected"));
}

// Replaces fleetctl with `argv`; returns only when that failed.
int ExecSsh(Context& context, const std::vector<std::string>& argv) {
  context.out().flush();
  context.err().flush();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int error = errno;
  return context.Fail(absl::FailedPreconditionError(
      absl::StrCat("cannot run ", argv[0], ": ", std::strerror(error))));
}

}  // namespace

absl::StatusOr<SshTarget> ResolveSshTarget(const std::vector<v1::Machine>& machines,
                                           const std::vector<v1::UnitStatus>& states,
                                           const std::string& arg, SshLookup lookup) {
  if (arg.empty()) return absl::InvalidArgumentError("name a machine or a unit to ssh to");
  const std::string unit = MangleUnitName(arg);
  absl::StatusOr<const v1::Machine*> chosen;
  switch (lookup) {
    case SshLookup::kMachine:
      chosen = FindMachine(machines, arg);
      break;
    case SshLookup::kUnit:
      chosen = FindUnitMachine(machines, states, unit);
      break;
    case SshLookup::kAuto: {
      auto machine = FindMachine(machines, arg);
      auto unit_machine = FindUnitMachine(machines, states, unit);
      if (machine.ok() && unit_machine.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", arg, "\" names both machine ", (*machine)->id(), " and unit ",
                         unit, "; say which with --machine or --unit"));
      }
      if (machine.ok()) {
        chosen = machine;
      } else if (unit_machine.ok()) {
        chosen = unit_machine;
      } else if (machine.status().code() == absl::StatusCode::kInvalidArgument) {
        return machine.status();  // an ambiguous prefix, with its candidates
      } else if (unit_machine.status().code() != absl::StatusCode::kNotFound) {
        return unit_machine.status();  // the unit exists but is on no single machine
      } else {
        return absl::NotFoundError(absl::StrCat("no machine or unit matches \"", arg, "\""));
      }
      break;
    }
  }
  if (!chosen.ok()) return chosen.status();
  const v1::Machine& machine = **chosen;
  if (machine.public_ip().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("machine ", machine.id(),
                     " has no public IP address (its agent runs without --public-ip)"));
  }
  return SshTarget{machine.id(), machine.public_ip()};
}

std::vector<std::string> SshArgv(const SshOptions& options, const std::string& address,
                                 const std::vector<std::string>& command) {
  std::vector<std::string> argv = {"ssh"};
  if (options.forward_agent) argv.push_back("-A");
  argv.push_back("-p");
  argv.push_back(absl::StrCat(options.port));
  if (!options.user.empty()) {
    argv.push_back("-l");
    argv.push_back(options.user);
  }
  argv.push_back("--");
  argv.push_back(address);
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

std::vector<std::string> TrimToDashes(const std::vector<std::string>& words) {
  auto dashes = std::find(words.begin(), words.end(), "--");
  if (dashes == words.end()) return words;
  return std::vector<std::string>(dashes + 1, words.end());
}

CommandRunner DefineSsh(CLI::App& app) {
  struct Flags {
    std::string machine;
    std::string unit;
    SshOptions ssh;
    const CLI::Option* machine_option = nullptr;
    const CLI::Option* unit_option = nullptr;
    const CLI::App* command = nullptr;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command =
      app.add_subcommand("ssh", "Open interactive shell on a machine in the cluster");
  // Flags end at the first word that is not one, as in fleet: everything from
  // MACHINE|UNIT on is left for the runner, so `fleetctl ssh web ls -l` runs
  // `ls -l`. Global flags therefore go before `ssh`.
  command->prefix_command();
  command->fallthrough(false);
  command->footer(
      "Arguments: {MACHINE|UNIT} [-- CMD...]\n\n"
      "Opens a shell, or runs CMD, on a machine through the system's ssh. MACHINE is a "
      "machine id or a unique prefix of one; UNIT is a unit name, and ssh goes to the "
      "machine the unit is scheduled to. fleetctl tries both; --machine or --unit skip the "
      "guess (CMD then follows them directly, without \"--\"). Global units are not "
      "supported. The exit code is ssh's (the remote command's when CMD is given).\n\n"
      "Examples:\n"
      "  fleetctl ssh 2444264c\n"
      "  fleetctl ssh --forward-agent web@1.service\n"
      "  fleetctl ssh web@1.service -- journalctl --user -n 20");
  flags->machine_option =
      command->add_option("--machine", flags->machine,
                          "Open SSH connection to this machine (id or unique prefix)");
  flags->unit_option = command->add_option(
      "--unit", flags->unit, "Open SSH connection to the machine running this unit");
  command->add_flag("-A,--forward-agent", flags->ssh.forward_agent,
                    "Forward the local ssh-agent to the machine");
  command->add_option("--ssh-port", flags->ssh.port, "Connect to remote hosts over this port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  command
      ->add_option("--ssh-user,--ssh-username", flags->ssh.user,
                   "User to log in as (default: ssh's own, from ~/.ssh/config or the local "
                   "user)")
      ->envname("FLEETCTL_SSH_USERNAME");
  flags->command = command;

  return [flags](Context& context) {
    std::vector<std::string> words = flags->command->remaining();
    if (!words.empty() && words.front().size() > 1 && words.front()[0] == '-') {
      context.err() << "Error: unknown flag " << words.front()
                    << " for ssh (global flags go before the command); see fleetctl ssh "
                       "--help\n";
      return kExitUsage;
    }
    bool by_machine = flags->machine_option->count() > 0;
    bool by_unit = flags->unit_option->count() > 0;
    if (by_machine && by_unit) {
      context.err() << "Error: both --machine and --unit given; use only one\n";
      return kExitUsage;
    }
    SshLookup lookup = SshLookup::kAuto;
    std::string target;
    if (by_machine) {
      lookup = SshLookup::kMachine;
      target = flags->machine;
    } else if (by_unit) {
      lookup = SshLookup::kUnit;
      target = flags->unit;
    } else {
      if (words.empty()) {
        context.err() << "Error: name one machine or unit; see fleetctl ssh --help\n";
        return kExitUsage;
      }
      target = words.front();
      words.erase(words.begin());
    }

    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto machines = (*client)->ListMachines();
    if (!machines.ok()) return context.Fail(machines.status());
    std::vector<v1::UnitStatus> states;
    if (lookup != SshLookup::kMachine) {
      // Only this unit's entries; a name with a backslash would read as a
      // glob escape, so ask for all and let ResolveSshTarget pick.
      std::string name = MangleUnitName(target);
      auto listed = (*client)->ListUnitStates(absl::StrContains(name, '\\') ? "" : name);
      if (!listed.ok()) return context.Fail(listed.status());
      states = std::move(*listed);
    }
    auto resolved = ResolveSshTarget(*machines, states, target, lookup);
    if (!resolved.ok()) return context.Fail(resolved.status());
    return ExecSsh(context, SshArgv(flags->ssh, resolved->address, TrimToDashes(words)));
  };
}

}  // namespace fleet::ctl
