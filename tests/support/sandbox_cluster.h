#pragma once

// SandboxCluster: an e2e test fixture around scripts/sandbox. Brings up an
// engine and N sandbox hosts in a fresh directory, runs fleetctl and commands
// inside hosts, and takes everything down in its destructor, so a failing
// test cleans up too. Needs root. Not thread-safe.
// Mutual TLS like scripts/sandbox: the cluster's CA and certificates are in
// pki_dir() (made once per cluster by scripts/pki); fleetctl runs with the
// admin certificate. SandboxClusterOptions::insecure runs everything in
// plaintext instead.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/command.h"

namespace fleet::test {

struct SandboxClusterOptions {
  int hosts = 3;
  std::vector<std::string> metadata;  // "HOST:key=value,..." per --metadata
  std::string agent_ttl = "4s";
  bool docker = false;
  bool insecure = false;  // scripts/sandbox up --insecure: plaintext, no certificates
  // scripts/sandbox up --etcd: 3 etcd members and 3 engines electing a leader.
  bool etcd = false;
  std::string leader_ttl = "3s";  // with etcd
};

// Options with `hosts` hosts and the defaults otherwise (GCC 12 warns on
// designated initializers that leave members out).
inline SandboxClusterOptions WithHosts(int hosts) {
  SandboxClusterOptions options;
  options.hosts = hosts;
  return options;
}

class SandboxCluster {
 public:
  // Runs `scripts/sandbox up` in a new directory under the test's temp dir.
  // Errors carry the script's output.
  static absl::StatusOr<std::unique_ptr<SandboxCluster>> Up(const SandboxClusterOptions& options);
  ~SandboxCluster();  // scripts/sandbox down
  SandboxCluster(const SandboxCluster&) = delete;
  SandboxCluster& operator=(const SandboxCluster&) = delete;

  // Runs `fleetctl ARGS` (a shell-quoted string) against this cluster, with
  // the admin certificate (or --insecure).
  CommandOutput Fleetctl(const std::string& args) const;
  // fleetctl's global flags for this cluster: "--endpoint ADDRESS" and the TLS
  // flags of the certificate pki_dir()/NAME.pem (scripts/pki admin|viewer
  // made it; "admin" exists), or --insecure for an insecure cluster.
  std::string FleetctlFlags(const std::string& certificate = "admin") const;
  // fleet-agent's TLS flags with the certificate of `machine_id` (scripts/sandbox
  // made one for every host's machine id), or --insecure for an insecure cluster.
  std::string AgentTlsFlags(const std::string& machine_id) const;
  // Every engine's HOST:PORT, comma-separated (one engine without etcd).
  std::string EngineAddress() const;
  // With etcd: the number (1..3) of the engine that says it leads, 0 when none.
  int Leader() const;
  // Where scripts/sandbox keeps the CA and the certificates (DIR/pki).
  std::string pki_dir() const { return dir_ + "/pki"; }
  // Runs `scripts/sandbox ARGS --dir DIR`.
  CommandOutput Sandbox(const std::string& args) const;
  // Runs a shell command inside host `host` (1..N).
  CommandOutput Exec(int host, const std::string& shell_command) const;

  // Polls `fleetctl list-units --no-legend --full --fields=...` until `done`
  // accepts its output or `timeout` passes; returns the last output. Polling
  // is the only way: fleetctl is the interface under test.
  std::string WaitForListUnits(const std::string& fields,
                               const std::function<bool(const std::string&)>& done,
                               absl::Duration timeout) const;

  // The machine id of host `host`.
  std::string MachineId(int host) const;
  const std::string& dir() const { return dir_; }

 private:
  explicit SandboxCluster(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace fleet::test
