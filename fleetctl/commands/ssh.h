#pragma once

// fleetctl ssh: where `fleetctl ssh MACHINE|UNIT` goes and what it hands the
// system's `ssh`. Pure, so the resolution rules are table-tested without an
// engine; commands/ssh.cc fetches the inputs and execs ssh.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fleet/v1/fleet.pb.h"

namespace fleet::ctl {

// How the argument of `fleetctl ssh` is read: fleet tried both a machine and
// a unit; --machine and --unit force one.
enum class SshLookup { kAuto, kMachine, kUnit };

struct SshTarget {
  std::string machine_id;  // the full id
  std::string address;     // its public IP, never empty
};

// Resolves `arg` to a machine and its public address, as fleet did:
// - a machine: `arg` is a prefix of exactly one machine id;
// - a unit: `arg` (".service" added when it has no type suffix) is a unit
//   scheduled to one machine, which must be in `machines`;
// - kAuto: whichever of the two matches; when both do, it is ambiguous.
// `states` is what ListUnitStates returned (entries of other units are
// ignored). Errors, each naming `arg`:
// INVALID_ARGUMENT: empty `arg`; a prefix of several machine ids (lists them);
//   kAuto and `arg` matches both a machine and a unit.
// NOT_FOUND: no such machine / unit (kAuto: neither).
// FAILED_PRECONDITION: the unit is on no machine (with the engine's reason when
//   it cannot be placed), on several (a global unit), or on a machine that is
//   not connected; the machine has no public IP.
absl::StatusOr<SshTarget> ResolveSshTarget(const std::vector<v1::Machine>& machines,
                                           const std::vector<v1::UnitStatus>& states,
                                           const std::string& arg, SshLookup lookup);

struct SshOptions {
  bool forward_agent = false;  // -A
  int port = 22;               // -p
  std::string user;            // -l; empty = ssh's own default
};

// The argv for the system's ssh (argv[0] = "ssh"): options, then "--", the
// address and `command` word for word (ssh joins them with spaces for the
// remote shell, as fleet did). The "--" keeps ssh from reading the command's
// own flags (`ls -l`) as its options.
std::vector<std::string> SshArgv(const SshOptions& options, const std::string& address,
                                 const std::vector<std::string>& command);

// fleet's handling of what follows the target: the words after the first
// "--" if there is one, else all of them.
std::vector<std::string> TrimToDashes(const std::vector<std::string>& words);

}  // namespace fleet::ctl
