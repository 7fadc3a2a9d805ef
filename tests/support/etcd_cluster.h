#pragma once

// EtcdCluster: a real etcd cluster for tests and benchmarks. Starts 1 or more
// members of Debian's etcd (/usr/bin/etcd, 3.4) on free 127.0.0.1 ports with
// their data directories in a fresh temporary folder, waits (polling with a
// deadline) until every member answers a linearizable read, and kills every
// member it started by PID (SIGKILL) and removes the folder in its destructor,
// so a failing test cleans up too. Members also die with the process that
// started them (PR_SET_PDEATHSIG). Each member's output goes to DIR/mN.log.
// Not thread-safe.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls/credentials.h"

namespace fleet::test {

class EtcdCluster {
 public:
  // Starts `members` members and waits until all are healthy (at most
  // `timeout`). Plaintext unless `tls` is given: then mutual TLS on the
  // client and peer ports, every member serving `tls->cert_file` (which must
  // also allow client use: peers and the health check present it) and
  // accepting only clients with a certificate of `tls->ca_file`. Errors name
  // the member and carry the end of its log.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      int members, absl::Duration timeout = absl::Seconds(30),
      std::optional<tls::TlsFiles> tls = std::nullopt);
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT" of member i's client URL.
  std::string endpoint(int i) const;
  // Every member's client endpoint, in member order.
  std::vector<std::string> endpoints() const;
  // PID of member i, -1 while it is killed.
  pid_t pid(int i) const { return members_[i].pid; }
  const std::string& dir() const { return dir_; }

  // kill -9 of member i, and waits until it is gone. No-op when already killed.
  void Kill(int i);
  // Starts member i again on its data directory and ports, and waits until it
  // is healthy (needs a quorum of members up).
  absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(30));
  // Polls member i (a linearizable read) until it answers or `timeout` passes.
  absl::Status WaitHealthy(int i, absl::Duration timeout);
  // The last `bytes` of member i's log.
  std::string LogTail(int i, size_t bytes = 2000) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };
  EtcdCluster(std::string dir, std::optional<tls::TlsFiles> tls)
      : dir_(std::move(dir)), tls_(std::move(tls)) {}
  absl::Status Spawn(int i, bool new_cluster);
  // "http://127.0.0.1:PORT", or https with TLS.
  std::string Url(int port) const;

  std::string dir_;
  const std::optional<tls::TlsFiles> tls_;
  std::string token_;
  std::vector<Member> members_;
};

}  // namespace fleet::test
