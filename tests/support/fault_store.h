#pragma once

// FaultStore: a Store that forwards to a real one until it is switched "down";
// then every call fails UNAVAILABLE, as a store cut off by a partition, or (for
// the engine using it) as if the engine had been killed with SIGKILL: its
// keep-alives stop reaching the store while the store and everyone else go on.
// Watches opened before stay open on the real store (as etcd's do: an
// unreachable etcd does not end a watch). Thread-safe.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/store/store.h"

namespace fleet::testing {

class FaultStore final : public Store {
 public:
  explicit FaultStore(Store* real) : real_(real) {}

  void set_down(bool down) { down_.store(down); }

  absl::StatusOr<KeyValue> Get(const std::string& key) override {
    if (down_) return Down();
    return real_->Get(key);
  }
  absl::StatusOr<RangeResult> Range(const std::string& prefix, const std::string& start_after,
                                    int64_t limit) override {
    if (down_) return Down();
    return real_->Range(prefix, start_after, limit);
  }
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              LeaseId lease) override {
    if (down_) return Down();
    return real_->Put(key, value, lease);
  }
  absl::StatusOr<int64_t> Delete(const std::string& key) override {
    if (down_) return Down();
    return real_->Delete(key);
  }
  absl::StatusOr<TxnResult> Txn(const Transaction& txn) override {
    if (down_) return Down();
    return real_->Txn(txn);
  }
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(const std::string& prefix,
                                                     int64_t from_revision,
                                                     EventsCallback on_events,
                                                     ErrorCallback on_error) override {
    if (down_) return Down();
    return real_->Watch(prefix, from_revision, std::move(on_events), std::move(on_error));
  }
  absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) override {
    if (down_) return Down();
    return real_->GrantLease(ttl);
  }
  absl::Status KeepAlive(LeaseId lease) override {
    if (down_) return Down();
    return real_->KeepAlive(lease);
  }
  absl::Status RevokeLease(LeaseId lease) override {
    if (down_) return Down();
    return real_->RevokeLease(lease);
  }

 private:
  static absl::Status Down() { return absl::UnavailableError("fault store: switched down"); }

  Store* const real_;
  std::atomic<bool> down_{false};
};

}  // namespace fleet::testing
