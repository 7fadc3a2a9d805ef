#pragma once

// fleet-engine's configuration: defaults, the YAML file (--config FILE) and the
// checks every value goes through. The command line (engine/main.cc) applies
// its flags on top of what the file set, so flags win.
//
// YAML keys (all optional; an unknown key is an error):
//   listen: "127.0.0.1:7001"     gRPC address, HOST:PORT (port 0 = any free port)
//   data_dir: /var/lib/fleet-engine   where the embedded store keeps its files
//   agent_ttl: 30s               a machine whose agent is silent this long is dead
//   store: embedded              embedded | etcd
//   etcd_endpoints: [127.0.0.1:2379, ...]   etcd client endpoints HOST:PORT (a list, or
//                                one string separated by commas); needed by store: etcd
//   etcd_ca_file                 CA of etcd's client port: TLS to etcd (store etcd needs
//                                it or an etcd client certificate, unless insecure)
//   etcd_cert_file, etcd_key_file  client certificate for etcd (both or neither)
//   ca_file, cert_file, key_file TLS files of the engine's API (scripts/pki makes them):
//                                mutual TLS, every client presents a certificate of this CA
//                                and is authorized by the role in it (common/tls)
//   insecure: false              true = serve plaintext, unauthenticated (no TLS files then);
//                                also allows plaintext to etcd when no etcd_* file is given
//   advertise: "10.0.0.5:7001"   store etcd: the address other engines send clients and
//                                agents to when this engine leads (default: listen, with
//                                the port it bound when that is 0; then listen needs a
//                                host that is not a wildcard)
//   name: engine-a               store etcd: this engine's name in the leader record
//                                (default: HOSTNAME/PID)
//   leader_ttl: 5s               store etcd: the leader's lease; a dead leader is replaced
//                                within about this long (at least 1s)
//
// With store: etcd, data_dir is not used, and any number of engines may share
// one etcd cluster: they elect one leader (engine/etcd_leadership.h).
//
// TLS is the default: without the three TLS files the engine refuses to start
// unless insecure is set (ValidateTls). The default listen address is loopback
// only, so even an insecure engine is not reachable from other hosts unless the
// operator asks for it.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet {

enum class StoreKind { kEmbedded, kEtcd };

struct EngineConfig {
  std::string listen = "127.0.0.1:7001";
  std::string data_dir = "/var/lib/fleet-engine";
  absl::Duration agent_ttl = absl::Seconds(30);
  StoreKind store = StoreKind::kEmbedded;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string advertise;
  std::string name;
  absl::Duration leader_ttl = absl::Seconds(5);
};

// The address other engines send clients and agents to: advertise, else listen.
std::string AdvertiseAddress(const EngineConfig& config);

// "HOST:PORT" with a non-empty host (an IPv6 host in brackets) and a port in
// 0..65535. INVALID_ARGUMENT saying what is wrong.
absl::Status ValidateListenAddress(absl::string_view address);

// A positive duration such as "30s", "1m30s", "500ms". INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text);

// "embedded" or "etcd". INVALID_ARGUMENT otherwise.
absl::StatusOr<StoreKind> ParseStoreKind(absl::string_view text);

// "HOST:PORT,HOST:PORT" (also http://HOST:PORT, as etcd prints its client
// URLs) into a list of HOST:PORT. INVALID_ARGUMENT naming the bad endpoint.
absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view text);

// The checks that involve several settings, after the file and the flags:
// store etcd needs etcd_endpoints and an advertise address others can reach
// (a host that is not a wildcard; a given advertise needs a port that is not
// 0); leader_ttl is at
// least 1 s; etcd_cert_file and etcd_key_file come together.
// INVALID_ARGUMENT saying what is missing.
absl::Status ValidateConfig(const EngineConfig& config);

// The API's transport: OK when the three TLS files (ca_file, cert_file,
// key_file) are all given and insecure is false, or when none is given and
// insecure is true. INVALID_ARGUMENT otherwise, saying what to give (the flags
// and scripts/pki). Does not read the files (fleet::tls::LoadTlsFiles does).
absl::Status ValidateTls(const EngineConfig& config);

// Applies the YAML document `text` (read from `file`, used in messages only) on
// top of `config`. On error returns INVALID_ARGUMENT "FILE: key KEY: problem"
// (or "FILE: line N: ..." for a YAML syntax error) and leaves `config` as it was.
absl::Status ApplyConfigYaml(absl::string_view file, absl::string_view text, EngineConfig& config);

// Reads `path` and applies it as ApplyConfigYaml does. NOT_FOUND / PERMISSION_DENIED
// etc. naming the file when it cannot be read.
absl::Status LoadConfigFile(const std::string& path, EngineConfig& config);

}  // namespace fleet
