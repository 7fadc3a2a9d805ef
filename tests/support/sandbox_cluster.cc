#include "tests/support/sandbox_cluster.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace fleet::test {
namespace {

std::string SandboxScript() { return std::string(FLEET_SOURCE_DIR) + "/scripts/sandbox"; }

}  // namespace

absl::StatusOr<std::unique_ptr<SandboxCluster>> SandboxCluster::Up(
    const SandboxClusterOptions& options) {
  static std::atomic<int> counter{0};
  // Short and unique per process: ctest runs tests of several binaries at once.
  std::string dir = absl::StrCat("/tmp/fleet-e2e-", ::getpid(), "-", counter++);
  std::filesystem::remove_all(dir);
  std::string command = absl::StrCat(SandboxScript(), " up --dir ", dir, " --build ",
                                     FLEET_BINARY_DIR, " --hosts ", options.hosts,
                                     " --agent-ttl ", options.agent_ttl);
  for (const auto& m : options.metadata) absl::StrAppend(&command, " --metadata ", ShellQuote(m));
  if (options.docker) absl::StrAppend(&command, " --docker");
  if (options.insecure) absl::StrAppend(&command, " --insecure");
  if (options.etcd) absl::StrAppend(&command, " --etcd --leader-ttl ", options.leader_ttl);
  auto cluster = std::unique_ptr<SandboxCluster>(new SandboxCluster(dir));
  CommandOutput up = RunCommand(command);
  if (up.exit_code != 0) {
    return absl::InternalError(absl::StrCat("sandbox up failed: ", up.text));
  }
  return cluster;
}

SandboxCluster::~SandboxCluster() { Sandbox("down"); }

std::string SandboxCluster::EngineAddress() const {
  // scripts/sandbox keeps engine 1 in DIR/engine, engine N > 1 in DIR/engineN.
  std::vector<std::string> addresses;
  for (int n = 1;; ++n) {
    std::ifstream file(n == 1 ? dir_ + "/engine/address" : absl::StrCat(dir_, "/engine", n, "/address"));
    std::string address;
    if (!std::getline(file, address)) break;
    addresses.push_back(address);
  }
  return absl::StrJoin(addresses, ",");
}

int SandboxCluster::Leader() const {
  int leader = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(Sandbox("leader").text), &leader) ? leader : 0;
}

std::string SandboxCluster::AgentTlsFlags(const std::string& machine_id) const {
  if (std::filesystem::exists(dir_ + "/insecure")) return "--insecure";
  std::string base = absl::StrCat(pki_dir(), "/agent-", machine_id);
  return absl::StrCat("--ca-file ", ShellQuote(pki_dir() + "/ca.pem"), " --cert-file ",
                      ShellQuote(base + ".pem"), " --key-file ", ShellQuote(base + "-key.pem"));
}

std::string SandboxCluster::FleetctlFlags(const std::string& certificate) const {
  std::string address = EngineAddress();
  if (std::filesystem::exists(dir_ + "/insecure")) return absl::StrCat("--endpoint ", address, " --insecure");
  std::string base = absl::StrCat(pki_dir(), "/", certificate);
  return absl::StrCat("--endpoint ", address, " --ca-file ", ShellQuote(pki_dir() + "/ca.pem"),
                      " --cert-file ", ShellQuote(base + ".pem"), " --key-file ",
                      ShellQuote(base + "-key.pem"));
}

CommandOutput SandboxCluster::Fleetctl(const std::string& args) const {
  return RunCommand(absl::StrCat(FLEET_BINARY_DIR, "/fleetctl/fleetctl ", FleetctlFlags(), " ", args));
}

CommandOutput SandboxCluster::Sandbox(const std::string& args) const {
  return RunCommand(absl::StrCat(SandboxScript(), " --dir ", dir_, " --build ",
                                 FLEET_BINARY_DIR, " ", args));
}

CommandOutput SandboxCluster::Exec(int host, const std::string& shell_command) const {
  return Sandbox(absl::StrCat("exec ", host, " -- sh -c ", ShellQuote(shell_command)));
}

std::string SandboxCluster::WaitForListUnits(
    const std::string& fields, const std::function<bool(const std::string&)>& done,
    absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (true) {
    last = Fleetctl("list-units --no-legend --full --fields=" + fields).text;
    if (done(last) || absl::Now() > deadline) return last;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

std::string SandboxCluster::MachineId(int host) const {
  std::ifstream in(absl::StrCat(dir_, "/hosts/", host, "/host/machine-id"));
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace fleet::test
