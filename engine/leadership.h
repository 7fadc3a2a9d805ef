#pragma once

// Who leads the cluster. Only the leader serves the API and the agent streams;
// a follower answers UNAVAILABLE with the leader's address so clients and agents
// go there. With the embedded store there is exactly one engine, and it leads
// (SoleLeader). With etcd, engines elect one leader among them:
// EtcdLeadership (engine/etcd_leadership.h), which also gives the compare a
// leader's write transactions must carry (LeaderGuard).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/store/store.h"

namespace fleet {

class Leadership {
 public:
  virtual ~Leadership() = default;
  // True when this engine leads now. Thread-safe.
  virtual bool IsLeader() const = 0;
  // The leader's API address ("HOST:PORT"), empty when unknown. Thread-safe.
  virtual std::string LeaderAddress() const = 0;
  // The compares every write transaction of this engine must carry, so that
  // the writes of a leader deposed before it noticed fail at the store; each
  // compares the create_revision of a key. UNAVAILABLE when this engine does
  // not lead (it must not write at all). Thread-safe; never blocks.
  virtual absl::StatusOr<std::vector<Compare>> WriteGuard() const = 0;
  // Why no leader is known, for messages, when the last attempt to learn it
  // failed (e.g. the store is unreachable); empty otherwise. Thread-safe.
  virtual std::string NoLeaderReason() const { return ""; }
};

// The single engine of an embedded-store cluster: always the leader.
class SoleLeader final : public Leadership {
 public:
  explicit SoleLeader(std::string address) : address_(std::move(address)) {}
  bool IsLeader() const override { return true; }
  std::string LeaderAddress() const override { return address_; }
  absl::StatusOr<std::vector<Compare>> WriteGuard() const override {
    return std::vector<Compare>{};
  }

 private:
  const std::string address_;
};

}  // namespace fleet
