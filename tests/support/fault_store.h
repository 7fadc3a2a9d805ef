#pragma once

// FaultStore: a Store that forwards to a real one, with faults switched on by
// the test:
//   - set_down(true): every call fails UNAVAILABLE, as a store cut off by a
//     partition, or (for the engine using it) as if the engine had been killed
//     with SIGKILL: its keep-alives stop reaching the store while the store and
//     everyone else go on. Watches opened before stay open on the real store
//     (as etcd's do: an unreachable etcd does not end a watch).
//   - set_writes_down(true): writes fail UNAVAILABLE ("nothing was sent");
//     reads and watches go on.
//   - LoseNextTxnAnswer(): the next Txn is applied or not, as asked, and then
//     fails UNAVAILABLE marked OutcomeUnknown, as an etcd write whose answer
//     was lost; `meanwhile` runs after it (another writer's change).
//     kAppliedLater holds it back and applies it just before the Txn after it,
//     as etcd applies a proposal it had read before it stopped answering.
//   - PauseTxns() / ResumeTxns(): meanwhile every Txn waits, as in a store
//     stuck in a slow fsync; AwaitWaitingTxn() returns once one waits.
// Thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/store/store.h"
#include "engine/store/txn_outcome.h"

namespace fleet::testing {

class FaultStore final : public Store {
 public:
  explicit FaultStore(Store* real) : real_(real) {}

  void set_down(bool down) { down_.store(down); }
  void set_writes_down(bool down) { writes_down_.store(down); }

  enum class LostAnswer { kApplied, kNotApplied, kAppliedLater };
  void LoseNextTxnAnswer(LostAnswer lost, std::function<void()> meanwhile = {}) {
    absl::MutexLock lock(&mu_);
    lost_ = lost;
    meanwhile_ = std::move(meanwhile);
  }
  void PauseTxns() {
    absl::MutexLock lock(&mu_);
    paused_ = true;
  }
  void ResumeTxns() {
    absl::MutexLock lock(&mu_);
    paused_ = false;
  }
  void AwaitWaitingTxn() {
    absl::MutexLock lock(&mu_);
    auto waiting = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiting_txns_ > 0; };
    mu_.Await(absl::Condition(&waiting));
  }
  int lost_answers() const { return lost_answers_.load(); }
  // Get and Range calls so far, answered or not.
  int reads() const { return reads_.load(); }

  absl::StatusOr<KeyValue> Get(const std::string& key) override {
    ++reads_;
    if (down_) return Down();
    return real_->Get(key);
  }
  absl::StatusOr<RangeResult> Range(const std::string& prefix, const std::string& start_after,
                                    int64_t limit) override {
    ++reads_;
    if (down_) return Down();
    return real_->Range(prefix, start_after, limit);
  }
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              LeaseId lease) override {
    if (down_ || writes_down_) return Down();
    return real_->Put(key, value, lease);
  }
  absl::StatusOr<int64_t> Delete(const std::string& key) override {
    if (down_ || writes_down_) return Down();
    return real_->Delete(key);
  }
  absl::StatusOr<TxnResult> Txn(const Transaction& txn) override {
    if (down_ || writes_down_) return Down();
    std::optional<LostAnswer> lost;
    std::function<void()> meanwhile;
    std::optional<Transaction> held;  // a kAppliedLater transaction, applied now
    {
      absl::MutexLock lock(&mu_);
      ++waiting_txns_;
      auto resumed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !paused_; };
      mu_.Await(absl::Condition(&resumed));
      --waiting_txns_;
      lost = std::exchange(lost_, std::nullopt);
      meanwhile = std::exchange(meanwhile_, nullptr);
      held = std::exchange(held_, std::nullopt);
      if (lost == LostAnswer::kAppliedLater) held_ = txn;
    }
    if (held.has_value()) (void)real_->Txn(*held);  // its answer was lost already
    if (!lost.has_value()) return real_->Txn(txn);
    if (*lost == LostAnswer::kApplied) {
      absl::StatusOr<TxnResult> applied = real_->Txn(txn);
      if (!applied.ok()) return applied;
    }
    if (meanwhile) meanwhile();
    ++lost_answers_;
    return OutcomeUnknownError("fault store: the answer was lost");
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
  std::atomic<bool> writes_down_{false};
  std::atomic<int> lost_answers_{0};
  std::atomic<int> reads_{0};
  absl::Mutex mu_;
  std::optional<LostAnswer> lost_ ABSL_GUARDED_BY(mu_);
  std::function<void()> meanwhile_ ABSL_GUARDED_BY(mu_);
  std::optional<Transaction> held_ ABSL_GUARDED_BY(mu_);  // kAppliedLater
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_txns_ ABSL_GUARDED_BY(mu_) = 0;  // Txns waiting in a pause
};

}  // namespace fleet::testing
