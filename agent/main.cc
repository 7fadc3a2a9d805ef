// fleet-agent: composition root. Wires the systemd manager, the agent loop and
// the engine link together; everything else takes its dependencies as arguments.

#include <malloc.h>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "agent/config.h"
#include "agent/runner.h"
#include "agent/systemd/sd_bus_manager.h"
#include "agent/transport/client_tls.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/version.h"

namespace {

int Fail(const absl::Status& status) {
  fleet::LogError("fleet-agent: %s", status.ToString());
  return 1;
}

// A usage error: one line, exit 2.
int Usage(const absl::Status& status) {
  fleet::LogError("fleet-agent: %s", status.message());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // The agent's memory per host is the product's promise: one malloc arena
  // instead of one per thread (gRPC runs several).
  mallopt(M_ARENA_MAX, 1);
  using fleet::agent::AgentConfig;
  CLI::App app{"fleet-agent: runs this machine's share of a fleet cluster on its systemd"};
  fleet::AddVersionFlag(app, "fleet-agent");
  std::string engines, metadata, systemd = "system", config_file;
  double resync_seconds = 60;
  AgentConfig config;
  app.add_option("--engine", engines, "engine addresses HOST:PORT[,HOST:PORT...] (any engine)");
  app.add_option("--machine-id", config.machine_id, "machine id (default: /etc/machine-id)");
  app.add_option("--metadata", metadata, "machine metadata key=value[,key=value...]");
  app.add_option("--public-ip", config.public_ip, "address other machines and users reach this one at");
  app.add_option("--systemd", systemd, "which systemd manager: system (default) or user");
  app.add_option("--unit-dir", config.unit_dir,
                 "where unit files go (default /run/fleet/units, $XDG_RUNTIME_DIR/fleet/units for user)");
  app.add_option("--resync-interval", resync_seconds, "seconds between full state resyncs (safety net)");
  app.add_option("--log-level", config.log_level, "error, warning, info or debug");
  app.add_option("--ca-file", config.ca_file, "CA certificate (PEM) the engine's certificate must chain to");
  app.add_option("--cert-file", config.cert_file,
                 "this agent's certificate (PEM; scripts/pki agent DIR MACHINE_ID)");
  app.add_option("--key-file", config.key_file, "private key of --cert-file (PEM)");
  app.add_flag("--insecure", config.insecure,
               "talk to the engine in PLAINTEXT without certificates instead of mutual TLS");
  app.add_option("--config", config_file, "YAML file with any of these flags (flags win)");
  if (int code = fleet::ParseCommandLine(app, argc, argv); code >= 0) return code;

  std::set<std::string> given;
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() > 0) given.insert(option->get_name().substr(2));
  }
  if (given.contains("engine")) {
    auto parsed = fleet::agent::ParseEngines(engines);
    if (!parsed.ok()) return Fail(parsed.status());
    config.engines = *parsed;
  }
  if (given.contains("metadata")) {
    auto parsed = fleet::agent::ParseMetadata(metadata);
    if (!parsed.ok()) return Fail(parsed.status());
    config.metadata = *parsed;
  }
  auto kind = fleet::agent::ParseBusKind(systemd);
  if (!kind.ok()) return Fail(kind.status());
  config.systemd = *kind;
  if (resync_seconds <= 0) return Fail(absl::InvalidArgumentError("--resync-interval must be > 0"));
  config.resync_interval = absl::Seconds(resync_seconds);
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Fail(absl::NotFoundError("cannot read --config " + config_file));
    std::stringstream text;
    text << in.rdbuf();
    if (absl::Status s = fleet::agent::MergeYamlConfig(text.str(), given, &config); !s.ok()) {
      return Fail(s);
    }
  }
  if (config.log_level == "error") {
    fleet::SetLogLevel(fleet::LogPriority::kError);
  } else if (config.log_level == "warning") {
    fleet::SetLogLevel(fleet::LogPriority::kWarning);
  } else if (config.log_level == "debug") {
    fleet::SetLogLevel(fleet::LogPriority::kDebug);
  } else if (config.log_level == "info") {
    fleet::SetLogLevel(fleet::LogPriority::kInfo);
  } else {
    return Fail(absl::InvalidArgumentError("--log-level must be error, warning, info or debug"));
  }
  if (config.engines.empty()) return Fail(absl::InvalidArgumentError("--engine is required"));
  if (absl::Status s = fleet::agent::ValidateTls(config); !s.ok()) return Usage(s);
  // Signals are taken by a thread with sigwait, so the loop shuts down cleanly.
  // Blocked before any thread starts (the engine link's loop is one), since a
  // thread without the mask would die of SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::shared_ptr<const fleet::agent::ClientTls> tls;  // nullptr = plaintext
  if (!config.insecure) {
    auto client = fleet::agent::ClientTls::Load(
        {.ca_file = config.ca_file, .cert_file = config.cert_file, .key_file = config.key_file});
    if (!client.ok()) return Fail(client.status());
    tls = *std::move(client);
  }
  auto machine_id = fleet::agent::ResolveMachineId(config.machine_id, "/etc/machine-id");
  if (!machine_id.ok()) return Fail(machine_id.status());
  if (config.unit_dir.empty()) {
    auto dir = fleet::agent::DefaultUnitDir(config.systemd);
    if (!dir.ok()) return Fail(dir.status());
    config.unit_dir = *dir;
  }

  auto manager = fleet::agent::SdBusManager::Create(config.systemd, config.unit_dir);
  if (!manager.ok()) return Fail(manager.status());

  fleet::agent::AgentRunnerOptions options;
  options.machine.set_id(*machine_id);
  options.machine.set_public_ip(config.public_ip);
  options.machine.set_agent_version(fleet::kVersion);
  for (const auto& [key, value] : config.metadata) (*options.machine.mutable_metadata())[key] = value;
  options.link.engines = config.engines;
  options.link.seed = std::hash<std::string>{}(*machine_id);
  options.link.tls = tls;
  options.resync_interval = config.resync_interval;
  options.journal = fleet::agent::SdJournalOpener(config.systemd == fleet::agent::BusKind::kUser
                                                      ? fleet::agent::JournalScope::kUser
                                                      : fleet::agent::JournalScope::kSystem);

  fleet::LogInfo("fleet-agent %s: machine %s, %s manager, unit dir %s, engines %s", fleet::kVersion,
                 *machine_id, systemd == "user" ? "user" : "system", config.unit_dir, engines.empty() ? config.engines[0] : engines);
  if (config.insecure) {
    fleet::LogWarning("fleet-agent: --insecure: the engine connection is PLAINTEXT and "
                      "unauthenticated");
  } else {
    fleet::LogInfo("fleet-agent: mutual TLS to the engine (CA %s, certificate %s)", config.ca_file,
                   config.cert_file);
  }

  fleet::RealClock clock;
  fleet::agent::AgentRunner runner(manager->get(), &clock, options);
  std::thread signal_thread([&runner, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    runner.Shutdown();
  });
  absl::Status status = runner.Run();
  if (status.ok()) {
    signal_thread.join();
    fleet::LogInfo("fleet-agent: stopped; units keep running");
    return 0;
  }
  // The signal thread still waits: leave without joining it.
  fleet::LogError("fleet-agent: %s", status.ToString());
  std::_Exit(1);
}
