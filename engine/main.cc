// fleet-engine: composition root. Wires the store, the engine and the gRPC
// server together; everything else takes its dependencies as arguments.
//
// Configuration: defaults (engine/config.h), then the YAML file of --config,
// then the flags given on the command line (flags win).
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a startup
// error (logged), 2 on a usage error.

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/open_files.h"
#include "common/version.h"
#include "engine/config.h"
#include "engine/engine.h"
#include "engine/etcd_leadership.h"
#include "engine/leadership.h"
#include "engine/server.h"
#include "engine/store/embedded_store.h"
#include "engine/store/etcd_store.h"
#include "common/tls/credentials.h"
#include "grpcpp/security/credentials.h"

namespace fleet {
namespace {

struct Flags {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::string agent_ttl;
  std::string store;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;
  std::string etcd_endpoints;
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string advertise;
  std::string name;
  std::string leader_ttl;
};

// Applies the flags that were given on top of `config`. INVALID_ARGUMENT naming the flag.
absl::Status ApplyFlags(const CLI::App& app, const Flags& flags, EngineConfig& config) {
  auto given = [&app](const char* name) { return app.count(name) > 0; };
  if (given("--listen")) {
    if (absl::Status s = ValidateListenAddress(flags.listen); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--listen: ", s.message()));
    }
    config.listen = flags.listen;
  }
  if (given("--data-dir")) {
    if (flags.data_dir.empty()) return absl::InvalidArgumentError("--data-dir: must not be empty");
    config.data_dir = flags.data_dir;
  }
  if (given("--agent-ttl")) {
    absl::StatusOr<absl::Duration> ttl = ParsePositiveDuration(flags.agent_ttl);
    if (!ttl.ok()) return absl::InvalidArgumentError(absl::StrCat("--agent-ttl: ", ttl.status().message()));
    config.agent_ttl = *ttl;
  }
  if (given("--store")) {
    absl::StatusOr<StoreKind> kind = ParseStoreKind(flags.store);
    if (!kind.ok()) return absl::InvalidArgumentError(absl::StrCat("--store: ", kind.status().message()));
    config.store = *kind;
  }
  if (given("--ca-file")) config.ca_file = flags.ca_file;
  if (given("--cert-file")) config.cert_file = flags.cert_file;
  if (given("--key-file")) config.key_file = flags.key_file;
  if (given("--insecure")) config.insecure = flags.insecure;
  if (given("--etcd-endpoints")) {
    absl::StatusOr<std::vector<std::string>> endpoints = ParseEtcdEndpoints(flags.etcd_endpoints);
    if (!endpoints.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--etcd-endpoints: ", endpoints.status().message()));
    }
    config.etcd_endpoints = *endpoints;
  }
  if (given("--etcd-ca-file")) config.etcd_ca_file = flags.etcd_ca_file;
  if (given("--etcd-cert-file")) config.etcd_cert_file = flags.etcd_cert_file;
  if (given("--etcd-key-file")) config.etcd_key_file = flags.etcd_key_file;
  if (given("--advertise")) {
    if (absl::Status s = ValidateListenAddress(flags.advertise); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--advertise: ", s.message()));
    }
    config.advertise = flags.advertise;
  }
  if (given("--name")) {
    if (flags.name.empty()) return absl::InvalidArgumentError("--name: must not be empty");
    config.name = flags.name;
  }
  if (given("--leader-ttl")) {
    absl::StatusOr<absl::Duration> ttl = ParsePositiveDuration(flags.leader_ttl);
    if (!ttl.ok()) return absl::InvalidArgumentError(absl::StrCat("--leader-ttl: ", ttl.status().message()));
    config.leader_ttl = *ttl;
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  return ValidateTls(config);
}

// The whole of `path`, or an error naming it.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Plaintext unless an etcd TLS file is configured; then TLS with etcd_ca_file
// as the root (the system roots when empty) and the client certificate, if any.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> EtcdCredentials(const EngineConfig& config) {
  if (config.etcd_ca_file.empty() && config.etcd_cert_file.empty()) return nullptr;
  grpc::SslCredentialsOptions ssl;
  for (auto [path, field] : {std::pair{&config.etcd_ca_file, &ssl.pem_root_certs},
                             std::pair{&config.etcd_cert_file, &ssl.pem_cert_chain},
                             std::pair{&config.etcd_key_file, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> text = ReadFile(*path);
    if (!text.ok()) return text.status();
    *field = *text;
  }
  return grpc::SslCredentials(ssl);
}

// Opens the configured store. `description` says which, for the start-up line.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const EngineConfig& config, const Clock* clock,
                                                 std::string* description) {
  switch (config.store) {
    case StoreKind::kEmbedded: {
      EmbeddedStoreOptions options;
      options.dir = config.data_dir;
      options.clock = clock;
      // The history serves watches that resume from a past revision; nothing
      // outside this process watches the embedded store, so a short window
      // does. The default (100,000 events, each a copy of a unit record) was
      // a fifth of the engine's heap with 10,000 units (heaptrack, bench/scale).
      options.watch_history_events = 4096;
      absl::StatusOr<std::unique_ptr<EmbeddedStore>> store = EmbeddedStore::Open(options);
      if (!store.ok()) {
        return absl::Status(store.status().code(),
                            absl::StrCat("cannot open the store in ", config.data_dir, ": ",
                                         store.status().message()));
      }
      for (const std::string& note : (*store)->recovery_notes()) {
        LogWarning("store recovery: %s", note);
      }
      *description = absl::StrCat("embedded store in ", config.data_dir);
      return std::unique_ptr<Store>(std::move(*store));
    }
    case StoreKind::kEtcd: {
      EtcdStoreOptions options;
      options.endpoints = config.etcd_endpoints;
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = EtcdCredentials(config);
      if (!credentials.ok()) return credentials.status();
      options.credentials = *credentials;
      absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::Open(options);
      if (!store.ok()) return store.status();
      if (options.credentials == nullptr) {
        // ValidateConfig allowed this only with --insecure.
        LogWarning("fleet-engine: --insecure: the link to etcd at %s is PLAINTEXT; whoever can "
                   "reach it reads and changes every unit file of the cluster",
                   absl::StrJoin(config.etcd_endpoints, ","));
      }
      *description = absl::StrCat("etcd store at ", absl::StrJoin(config.etcd_endpoints, ","),
                                  options.credentials ? " (TLS)" : " (PLAINTEXT)");
      return std::unique_ptr<Store>(std::move(*store));
    }
  }
  return absl::InternalError("unknown store kind");
}

// "HOSTNAME/PID": unique among the engines of one cluster without configuration.
std::string DefaultEngineName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "engine");
  return absl::StrCat(host, "/", getpid());
}

int Run(const EngineConfig& config) {
  // Block the shutdown signals before any thread starts (making gRPC
  // credentials already starts gRPC's threads), so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // One connection per agent (and per client): the soft limit many systems
  // start processes with (1,024) would refuse agents long before the hard one.
  absl::StatusOr<uint64_t> open_files = RaiseOpenFileLimit();
  if (!open_files.ok()) {
    LogWarning("fleet-engine: cannot raise the open-file limit: %s", open_files.status().message());
  } else {
    LogInfo("fleet-engine: up to %d open files (connections of agents and clients)",
            static_cast<int64_t>(*open_files));
  }

  // The API's credentials: mutual TLS with authorization by role, or
  // plaintext when the operator asked for it (ValidateTls allowed only these).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::string transport;
  if (config.insecure) {
    LogWarning("fleet-engine: --insecure: the API is PLAINTEXT and unauthenticated; anyone who "
               "reaches %s controls every machine of the cluster", config.listen);
    credentials = grpc::InsecureServerCredentials();
    transport = "PLAINTEXT (insecure)";
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = tls::MakeServerCredentials(
        tls::TlsFiles{.ca_file = config.ca_file, .cert_file = config.cert_file, .key_file = config.key_file});
    if (!tls.ok()) {
      LogError("%s", tls.status().message());
      return 1;
    }
    credentials = *tls;
    transport = absl::StrCat("mutual TLS (CA ", config.ca_file, ", certificate ", config.cert_file, ")");
  }

  RealClock clock;
  std::string store_description;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(config, &clock, &store_description);
  if (!store.ok()) {
    LogError("%s", store.status().message());
    return 1;
  }

  // Who leads: this engine alone on its embedded store; on etcd, the engine
  // the election picks. The election reports changes to the engine's loop.
  std::atomic<Engine*> engine_to_wake{nullptr};
  std::unique_ptr<Leadership> leadership;
  EtcdLeadership* election = nullptr;
  std::string leadership_description = "this engine is the leader";
  if (config.store == StoreKind::kEtcd) {
    EtcdLeadershipOptions options;
    options.address = AdvertiseAddress(config);  // its port is fixed once bound, below
    options.engine_id = config.name.empty() ? DefaultEngineName() : config.name;
    options.ttl = config.leader_ttl;
    options.clock = &clock;
    options.on_change = [&engine_to_wake](bool leading, const absl::Status& why) {
      if (leading) {
        LogInfo("this engine is now the leader");
      } else {
        LogWarning("this engine is no longer the leader%s",
                   why.ok() ? "" : absl::StrCat(": ", why.message()));
      }
      if (Engine* engine = engine_to_wake.load(); engine != nullptr) engine->Wake();
    };
    absl::StatusOr<std::unique_ptr<EtcdLeadership>> created =
        EtcdLeadership::Create(store->get(), std::move(options));
    if (!created.ok()) {
      LogError("%s", created.status().message());
      return 1;
    }
    election = created->get();
    leadership = *std::move(created);
  } else {
    leadership = std::make_unique<SoleLeader>(config.listen);
  }

  EngineOptions engine_options;
  engine_options.agent_ttl = config.agent_ttl;
  engine_options.leadership = leadership.get();
  if (config.store == StoreKind::kEmbedded) engine_options.max_ops_per_txn = kMaxOpsPerEmbeddedTxn;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(store->get(), &clock, engine_options);
  if (!engine.ok()) {
    LogError("cannot load the cluster state from the %s: %s", store_description,
             engine.status().ToString());
    return 1;
  }
  for (const std::string& warning : (*engine)->startup_warnings()) LogWarning("%s", warning);
  engine_to_wake.store(engine->get());

  EngineServerOptions server_options;
  server_options.listen = config.listen;
  server_options.credentials = credentials;
  absl::StatusOr<std::unique_ptr<EngineServer>> server =
      EngineServer::Start(engine->get(), leadership.get(), server_options);
  if (!server.ok()) {
    LogError("%s", server.status().message());
    return 1;
  }
  if (election != nullptr) {
    std::string advertise = AdvertiseAddress(config);
    if (config.advertise.empty() && absl::EndsWith(advertise, ":0")) {
      advertise = absl::StrCat(advertise.substr(0, advertise.size() - 1), (*server)->port());
    }
    election->SetAddress(advertise);
    leadership_description = absl::StrCat("campaigning for leader as ", advertise, " (leader_ttl ",
                                          absl::FormatDuration(config.leader_ttl), ")");
  }
  LogInfo("fleet-engine %s listening on %s (port %d), %s, agent_ttl %s, %s (%s)", kVersion,
          config.listen, (*server)->port(), transport, absl::FormatDuration(config.agent_ttl),
          store_description, leadership_description);
  if (election != nullptr) election->Start();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogInfo("received %s; shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  // Hand the lead over first: another engine takes it as soon as it sees our
  // key deleted, instead of after leader_ttl.
  if (election != nullptr) {
    if (absl::Status s = election->Resign(); !s.ok()) {
      LogWarning("resigning the leadership: %s (it ends by its lease instead)", s.message());
    }
  }
  // In-flight calls get 2 s to finish; the store is closed only after the server stopped.
  (*server)->Shutdown(absl::Seconds(2));
  server->reset();
  engine->reset();
  leadership.reset();
  store->reset();  // waits for writes in flight and closes the log or the etcd channels
  LogInfo("fleet-engine stopped");
  return 0;
}

}  // namespace
}  // namespace fleet

int main(int argc, char** argv) {
  // gRPC runs calls on up to 64 threads (engine/server.cc), and glibc gives
  // threads that allocate at once arenas of their own (up to 8 per core),
  // each keeping what was freed in it: 13 MiB of the engine's 85 MiB with
  // 10,000 units (bench/scale). Two arenas cost no throughput measured there.
  mallopt(M_ARENA_MAX, 2);
  // Debian builds Abseil with Mutex deadlock detection on, a debug aid: every
  // lock taken under another goes into one graph behind one global lock,
  // gRPC's locks included. In bench/scale's large preset that was 8% of the
  // engine's CPU during a launch, and the graph holds 3.7 KiB per agent
  // connected. Tests, which build the Engine without this main, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"fleet-engine: the API, durable desired state and scheduler of a fleet cluster"};
  fleet::AddVersionFlag(app, "fleet-engine");
  fleet::Flags flags;
  app.add_option("--config", flags.config_file,
                 "YAML file with the same settings (keys listen, data_dir, agent_ttl, store, ca_file, "
                 "cert_file, key_file, insecure, etcd_endpoints, etcd_ca_file, etcd_cert_file, "
                 "etcd_key_file, advertise, name, leader_ttl); flags win");
  app.add_option("--listen", flags.listen, "gRPC address HOST:PORT (default 127.0.0.1:7001)");
  app.add_option("--data-dir", flags.data_dir, "embedded store directory (default /var/lib/fleet-engine)");
  app.add_option("--agent-ttl", flags.agent_ttl,
                 "a machine whose agent is silent this long is dead, e.g. 30s (default 30s)");
  app.add_option("--store", flags.store, "embedded (default) or etcd");
  app.add_option("--etcd-endpoints", flags.etcd_endpoints,
                 "etcd client endpoints HOST:PORT,HOST:PORT (needed by --store etcd)");
  app.add_option("--etcd-ca-file", flags.etcd_ca_file, "CA of etcd's client port: TLS to etcd");
  app.add_option("--etcd-cert-file", flags.etcd_cert_file, "client certificate for etcd");
  app.add_option("--etcd-key-file", flags.etcd_key_file, "private key of --etcd-cert-file");
  app.add_option("--advertise", flags.advertise,
                 "store etcd: HOST:PORT other engines send clients and agents to when this one "
                 "leads (default: --listen)");
  app.add_option("--name", flags.name, "store etcd: this engine's name (default: HOSTNAME/PID)");
  app.add_option("--leader-ttl", flags.leader_ttl,
                 "store etcd: the leader's lease, e.g. 5s; a dead leader is replaced within about "
                 "this long (default 5s)");
  app.add_option("--ca-file", flags.ca_file,
                 "CA certificate (PEM) every client certificate must chain to (scripts/pki init)");
  app.add_option("--cert-file", flags.cert_file, "this engine's certificate (PEM; scripts/pki engine)");
  app.add_option("--key-file", flags.key_file, "private key of --cert-file (PEM)");
  app.add_flag("--insecure", flags.insecure,
               "serve PLAINTEXT without authentication instead of mutual TLS (tests, demos)");
  if (int code = fleet::ParseCommandLine(app, argc, argv); code >= 0) return code;

  fleet::EngineConfig config;
  if (!flags.config_file.empty()) {
    if (absl::Status s = fleet::LoadConfigFile(flags.config_file, config); !s.ok()) {
      fleet::LogError("config: %s", s.message());
      return 2;
    }
  }
  if (absl::Status s = fleet::ApplyFlags(app, flags, config); !s.ok()) {
    fleet::LogError("%s", s.message());
    return 2;
  }
  return fleet::Run(config);
}
