#pragma once

// EtcdLeadership: leader election among several engines over the Store seam
// (engine/store/store.h), with etcd's own election recipe. Works on EtcdStore
// (the real use) and on EmbeddedStore (unit tests with FakeClock).
//
// Campaign. Grant a lease of `ttl`; in ONE transaction create
// `<prefix><lease id, 16 hex digits>` with that lease, only if it does not
// exist (create_revision == 0); its value is a LeaderRecord (engine id, API
// address). Every candidate's key lives under `prefix`; the key with the
// lowest create_revision is the leader's. A follower learns that its
// predecessor is gone from a watch of the prefix (which wakes it) followed by
// a fresh Range (the re-check), so every engine knows the leader's address.
//
// Keeping it. The lease is kept alive every ttl/3. The engine counts itself
// the leader only until its LOCAL deadline = (time just before the last
// successful keep-alive or grant was sent) + ttl - `margin`. The store's lease
// cannot expire before that: the store started the TTL after we sent. So
// IsLeader() turns false by the clock alone, at once, even while a keep-alive
// call hangs or the store is unreachable, before another engine can be
// elected. Lost as well: a keep-alive answered NOT_FOUND (the lease expired or
// was revoked) or our key missing from a read of the prefix. A lost candidacy
// is abandoned (its lease revoked, retried until the store says done or
// NOT_FOUND, so a key of ours cannot block the others after the store comes
// back) and the engine campaigns again with a new lease, at the back of the
// line.
//
// The guard. Being the leader by our own view is not enough to write: a
// deposed leader may not know yet. Every write transaction of the leader must
// carry the compare returned by LeaderGuard() (our key's create_revision equals
// the one we created it with). Once our key is gone (lease expired, revoked,
// deleted) the compare fails, and the whole transaction with it
// (`succeeded=false`), so no two leaders' writes both apply. A newer leader's
// key can only appear after ours is deleted (it must be the lowest), hence the
// guard on our own key is enough.
//
// Driving it. Start() runs a thread that calls Step() when a keep-alive is
// due, when the deadline passes, when the watch reports a change of the
// prefix, and at least every ttl/3. Tests with FakeClock do not Start(): they
// call Step() themselves after moving the clock (and, for EmbeddedStore,
// calling ExpireLeases()).
//
// Resign() (and the destructor) stops the thread and revokes the lease, so
// the next candidate leads as soon as it sees the deletion (clean shutdown:
// immediate failover).
//
// Thread-safety: IsLeader, LeaderAddress, LeaderGuard, candidate_key are
// thread-safe and never block on the store. Step and Resign serialise with
// each other. `on_change` runs on the thread that called Step (the runner
// thread after Start()), and must not call Step or Resign.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "engine/leadership.h"
#include "engine/store/store.h"

namespace fleet {

struct EtcdLeadershipOptions {
  std::string engine_id;  // this engine's name, stored in its LeaderRecord; required
  std::string address;    // API address ("HOST:PORT") others are sent to; required
  std::string prefix = "/fleet/engine/leader/";  // the candidates' keys
  absl::Duration ttl = absl::Seconds(5);         // lease TTL; at least 1 s
  // Safety margin of the local deadline before the lease's earliest expiry at
  // the store (clock rate differences, the time the engine needs to stop
  // acting). 0 <= margin < ttl / 2. Default: ttl / 5 when left negative.
  absl::Duration margin = absl::Seconds(-1);
  const Clock* clock = nullptr;  // required; must outlive this object
  // Called with true when this engine became the leader, false when it stopped
  // being it, and why (OK for an election or a resignation).
  std::function<void(bool leading, const absl::Status& why)> on_change;
};

class EtcdLeadership final : public Leadership {
 public:
  // Checks the options; does not touch the store (the first Step does).
  // `store` is not owned and must outlive the returned object.
  // INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<EtcdLeadership>> Create(Store* store,
                                                                EtcdLeadershipOptions options);

  // Resign()s when still running.
  ~EtcdLeadership() override;
  EtcdLeadership(const EtcdLeadership&) = delete;
  EtcdLeadership& operator=(const EtcdLeadership&) = delete;

  // Replaces options.address in the records of campaigns from now on: for an
  // engine that learns its port only once its server is bound (listen port
  // 0). Call before Start().
  void SetAddress(std::string address);

  // Starts the thread that drives Step(). Call at most once.
  void Start();

  // One round: retries revoking abandoned leases, keeps the lease alive when
  // due (or abandons it when lost), campaigns when it has none, reads the
  // candidates, and calls on_change when IsLeader() changed since the last
  // call. Store errors are not fatal: they are returned (the last one of the
  // round) and the next Step tries again. A Step after Resign() does nothing.
  absl::Status Step();

  // Stops the thread, revokes the lease (the key goes with it) and calls
  // on_change(false) when this engine was leading. After it the object stays
  // a follower that knows nothing (IsLeader false, LeaderAddress empty).
  // Returns the revoke's error, if any (the lease then expires by its TTL).
  absl::Status Resign();

  // Leadership: true while our key is the lowest candidate we read AND the
  // local deadline has not passed.
  bool IsLeader() const override;
  // The leader's address from the last read of the candidates; empty when none,
  // and when that leader was this engine and its local deadline passed (who
  // leads then is unknown until the store answers again).
  std::string LeaderAddress() const override;
  // LeaderGuard() as a list, UNAVAILABLE instead of nullopt.
  absl::StatusOr<std::vector<Compare>> WriteGuard() const override;
  // The last Step's error while it failed (the store's own message).
  std::string NoLeaderReason() const override;

  // The compare every write transaction of the leader must include; nullopt
  // when not leading now (then the engine must not write at all).
  std::optional<Compare> LeaderGuard() const;

  // Our candidate key, empty when not campaigning. For tests and logs.
  std::string candidate_key() const;

 private:
  EtcdLeadership(Store* store, EtcdLeadershipOptions options);

  bool IsLeaderLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Campaign() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  absl::Status KeepAliveIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  absl::Status ReadCandidates() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  absl::Status EnsureWatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // Forgets our candidacy and queues its lease for revocation.
  void Abandon(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void RevokeAbandoned() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // Calls on_change when IsLeader() differs from what was last reported.
  void ReportChange() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void Run();

  Store* const store_;
  const EtcdLeadershipOptions options_;

  // Serialises Step and Resign; held across store calls. Lock order: step_mu_, then mu_.
  absl::Mutex step_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<WatchHandle> watch_ ABSL_GUARDED_BY(step_mu_);
  std::vector<LeaseId> abandoned_ ABSL_GUARDED_BY(step_mu_);
  std::string address_ ABSL_GUARDED_BY(step_mu_);  // written in our LeaderRecord
  absl::Time next_keepalive_ ABSL_GUARDED_BY(step_mu_);
  bool reported_leading_ ABSL_GUARDED_BY(step_mu_) = false;
  absl::Status lost_reason_ ABSL_GUARDED_BY(step_mu_);  // why we last lost, for on_change
  bool resigned_ ABSL_GUARDED_BY(step_mu_) = false;

  // The state readers see. Never held across store calls.
  mutable absl::Mutex mu_;
  LeaseId lease_ ABSL_GUARDED_BY(mu_) = 0;
  std::string key_ ABSL_GUARDED_BY(mu_);  // our candidate key, empty without lease
  int64_t create_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);     // we may lead only before this
  absl::Time next_step_ ABSL_GUARDED_BY(mu_);    // when Run calls Step next
  std::string leader_key_ ABSL_GUARDED_BY(mu_);  // lowest candidate of the last read
  std::string leader_address_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // the watch saw a change (or ended)
  bool watch_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);  // of the last Step; empty when it succeeded

  std::thread runner_;
};

}  // namespace fleet
