#pragma once

// The agent's settings: command-line flags, also readable from a YAML file
// (--config FILE) whose keys are the flag names without dashes; a flag given
// on the command line wins over the file.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/systemd/sd_bus_manager.h"

namespace fleet::agent {

struct AgentConfig {
  std::vector<std::string> engines;              // --engine HOST:PORT[,HOST:PORT...]
  std::string machine_id;                        // --machine-id; "" = /etc/machine-id
  std::map<std::string, std::string> metadata;   // --metadata key=value,...
  std::string public_ip;                         // --public-ip
  BusKind systemd = BusKind::kSystem;            // --systemd system|user
  std::string unit_dir;                          // --unit-dir; "" = DefaultUnitDir
  absl::Duration resync_interval = absl::Minutes(1);  // --resync-interval (seconds)
  std::string log_level = "info";                // --log-level error|warning|info|debug
  std::string ca_file;                           // --ca-file: CA the engine's certificate chains to
  std::string cert_file;                         // --cert-file: this agent's (scripts/pki agent)
  std::string key_file;                          // --key-file: its private key
  bool insecure = false;                         // --insecure: plaintext, no certificates
};

// The link's transport: OK when the three TLS files are all given and insecure
// is false, or none is given and insecure is true. InvalidArgument otherwise,
// saying what to give (the flags and scripts/pki). Does not read the files.
absl::Status ValidateTls(const AgentConfig& config);

// "key=value,key2=value2" -> map. InvalidArgument for an entry without '=' or
// with an empty key.
absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& text);

// "a:1,b:2" -> {"a:1","b:2"}. InvalidArgument for an empty list or an entry
// that is not HOST:PORT.
absl::StatusOr<std::vector<std::string>> ParseEngines(const std::string& text);

// "system" / "user" -> BusKind; InvalidArgument otherwise.
absl::StatusOr<BusKind> ParseBusKind(const std::string& text);

// Applies the YAML document `yaml` to `config`, skipping keys in
// `from_command_line` (flag names without dashes, e.g. "machine-id").
// Keys: engine (string or list), machine-id, metadata (map or "k=v,..."),
// public-ip, systemd, unit-dir, resync-interval (seconds), log-level, ca-file,
// cert-file, key-file, insecure (true/false).
// InvalidArgument naming the key for an unknown key or a bad value.
absl::Status MergeYamlConfig(const std::string& yaml, const std::set<std::string>& from_command_line,
                             AgentConfig* config);

// The machine id: `flag` if set, else the first line of `machine_id_file`.
// NotFound/InvalidArgument when neither gives a non-empty id.
absl::StatusOr<std::string> ResolveMachineId(const std::string& flag,
                                             const std::string& machine_id_file);

}  // namespace fleet::agent
