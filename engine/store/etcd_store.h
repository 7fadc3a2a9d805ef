#pragma once

// EtcdStore: the Store seam (engine/store/store.h) on an etcd v3 cluster, over
// gRPC with our own wire-compatible proto subset (third_party/etcd).
//
// Mapping. Revisions, create/mod revisions, versions and lease ids are etcd's
// own, 1:1. Range is etcd's Range over [prefix, prefix-end), read in pages of
// `range_page_keys` keys, all pages at the revision of the first page, so the
// result is one consistent snapshot however long it is (when etcd compacts
// that revision between two pages, the range is read again, up to 3 times,
// then OUT_OF_RANGE). Txn is one etcd Txn;
// Compare targets and results map to etcd's Compare (VALUE, VERSION, CREATE,
// MOD, LEASE; EQUAL, NOT_EQUAL, LESS, GREATER).
//
// One difference of etcd is hidden: etcd says a VALUE compare on a missing key
// is false whatever it compares with, the seam says a missing key has value
// "". A Txn whose value compare holds for "" (EQUAL "", NOT_EQUAL x, LESS x)
// is therefore sent as a nested etcd Txn guarded by the mod_revision of those
// keys as read just before; when a guarded key changed in between, the read
// and the Txn are repeated (at most 10 times, then UNAVAILABLE: retry; the seam
// keeps ABORTED out of Txn).
//
// Limits (etcd's defaults; set the options to the cluster's flags). A request
// whose encoded size exceeds `max_request_bytes` - 1 KiB (the margin covers
// etcd's own framing) is refused before it is sent: INVALID_ARGUMENT naming
// the size and the limit. A Txn with more than `max_txn_ops` compares, success
// or failure operations is refused the same way: it is not split, because the
// parts would not be atomic. Callers batch (the engine writes at most
// kMaxOpsPerTxn = 128 operations per Txn).
//
// Several endpoints. Each endpoint has its own channel. A call goes to the
// member that answered last; when that member is not connected, or answers
// UNAVAILABLE, the call moves to the next member:
//   - reads (Get, Range, Watch, KeepAlive, lease grant) on any failure;
//   - writes only when etcd cannot have applied them: the member was not
//     connected (nothing was sent) or it said it has no leader (every request
//     carries etcd's "hasleader" metadata, so a member cut off from the
//     cluster refuses at once instead of waiting). A write whose outcome is
//     unknown (connection lost while it was in flight, a timeout, a
//     proposal lost with a leader that died) is UNAVAILABLE "... may or may
//     not have been applied", marked OutcomeUnknown (txn_outcome.h): the
//     caller resolves it (ResolveOutcome) or retries it as a read-modify-write.
// Members that answer but cannot serve now (no leader: an election, about a
// second after the leader died) are asked again every 100 ms until
// `request_timeout` has passed; members that are not connected are not waited
// for, so a call with etcd down fails at once (after `connect_timeout` at most).
// When no member serves: UNAVAILABLE "etcd at A,B,C unavailable (OP): A: ...; B: ...".
// Other etcd errors keep their gRPC code (INVALID_ARGUMENT for a duplicate key
// in a Txn, NOT_FOUND for an unknown lease, ...) with etcd's message, prefixed
// "etcd at MEMBER: OPERATION KEY: ".
//
// Watch. Each watch has its own etcd Watch stream and its own thread, which
// delivers events in revision order, a whole revision per call (etcd does not
// split a revision unless asked to fragment, and we do not ask). Watch()
// returns once etcd confirmed the watch (or fails UNAVAILABLE after
// `request_timeout`); OUT_OF_RANGE when `from_revision` is already compacted.
// When the stream breaks (member killed, network), the thread reopens it on
// the next member from the last delivered revision + 1, with a jittered
// backoff of 50 ms doubling to 2 s, for as long as needed: nothing is missed
// or repeated. When etcd says the revision to resume from was compacted
// meanwhile, on_error gets OUT_OF_RANGE (re-read, then watch from that read's
// revision + 1). An unreachable etcd does not end a watch; it resumes when
// etcd is back. Destroying the store ends live watches with UNAVAILABLE.
//
// Leases. GrantLease rounds the TTL up to whole seconds (etcd's unit; etcd
// may raise a TTL below its minimum, about 2 s with default timings). etcd
// expires leases itself, on its own clock. KeepAlive is one short
// LeaseKeepAlive stream per call (one request, one answer); NOT_FOUND when
// etcd answers TTL <= 0 (the lease expired or was revoked).
//
// Thread-safety: all public methods are thread-safe. Watch handles may outlive
// the store (they are inert then). A watch callback must not destroy the store.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/store/store.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/security/credentials.h"

namespace etcdserverpb {
class TxnRequest;
class TxnResponse;
}  // namespace etcdserverpb

namespace fleet {

struct EtcdStoreOptions {
  // Client URLs of the members: "HOST:PORT", optionally with http:// or
  // https:// in front (ignored: `credentials` decides). At least one.
  std::vector<std::string> endpoints;
  // TLS to etcd's client port; null = plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Deadline of one request to one member.
  absl::Duration request_timeout = absl::Seconds(5);
  // How long a call waits for a member that is connecting before it tries the next.
  absl::Duration connect_timeout = absl::Seconds(1);
  int64_t range_page_keys = 1000;              // keys per Range request
  int64_t max_request_bytes = 1536 * 1024;     // etcd --max-request-bytes
  int64_t max_txn_ops = 128;                   // etcd --max-txn-ops
};

namespace etcd_internal {
struct Member;
struct WatchState;
}  // namespace etcd_internal

class EtcdStore final : public Store {
 public:
  // Checks the options and creates one channel per endpoint; does not wait
  // for etcd (the first call does). INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Open(EtcdStoreOptions options);

  // Ends every live watch with UNAVAILABLE (on_error) and joins its thread.
  ~EtcdStore() override;

  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  absl::StatusOr<KeyValue> Get(const std::string& key) override;
  absl::StatusOr<RangeResult> Range(const std::string& prefix, const std::string& start_after = "",
                                    int64_t limit = 0) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              LeaseId lease = 0) override;
  absl::StatusOr<int64_t> Delete(const std::string& key) override;
  absl::StatusOr<TxnResult> Txn(const Transaction& txn) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(const std::string& prefix,
                                                     int64_t from_revision,
                                                     EventsCallback on_events,
                                                     ErrorCallback on_error) override;
  absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) override;
  absl::Status KeepAlive(LeaseId lease) override;
  absl::Status RevokeLease(LeaseId lease) override;

  // etcd only: drops the history before `revision` (watches and reads at older
  // revisions become OUT_OF_RANGE). For operators and tests. Returns etcd's
  // error (OUT_OF_RANGE when already compacted that far).
  absl::Status Compact(int64_t revision);

  // "127.0.0.1:2379,127.0.0.1:2380": the endpoints, as in error messages.
  const std::string& endpoints_text() const { return endpoints_text_; }

 private:
  enum class Retry { kAnyFailure, kOnlyIfNotSent };

  explicit EtcdStore(EtcdStoreOptions options);

  // Runs `call` on the preferred member, moving on to the next ones as the
  // class comment says. `what` names the operation in messages.
  template <typename Call>
  absl::Status Run(Retry retry, absl::string_view what, Call call);
  // True when `member`'s channel is connected, waiting up to connect_timeout
  // while it is connecting, and with `wait_in_failure` also while it is in
  // TRANSIENT_FAILURE (between reconnection attempts).
  bool Connected(etcd_internal::Member& member, bool wait_in_failure) const;
  absl::Status CheckSize(size_t bytes, absl::string_view what) const;
  // Range's pages from `key` (inclusive) to `end`, all at one revision.
  absl::StatusOr<RangeResult> RangeFrom(const std::string& prefix, std::string key,
                                        const std::string& end, int64_t limit);
  // Sends one etcd Txn after checking its size.
  absl::StatusOr<etcdserverpb::TxnResponse> SendTxn(const etcdserverpb::TxnRequest& request);
  // The current revision (a count-only Range).
  absl::StatusOr<int64_t> CurrentRevision();
  void WatchLoop(std::shared_ptr<etcd_internal::WatchState> watch);
  // The connectivity thread's loop (see connectivity_cq_).
  void WatchConnectivity();
  // Joins the threads of watches that ended. Called with no lock held.
  void ReapWatches();

  const EtcdStoreOptions options_;
  std::string endpoints_text_;
  std::vector<std::unique_ptr<etcd_internal::Member>> members_;
  std::atomic<size_t> preferred_{0};

  // gRPC's synchronous API moves a channel's connection attempts forward only
  // while something polls it: a call on it, or a completion queue watching
  // it (else a backup poller every 5 s). Connected() skips a member in
  // TRANSIENT_FAILURE without a call, so nothing would poll its reconnection
  // and a restarted member could stay unused for many seconds: one thread
  // watches every member's state on this queue, which polls them all.
  grpc::CompletionQueue connectivity_cq_;
  // Guards re-arming against the queue's shutdown.
  absl::Mutex connectivity_mu_;
  bool stopping_ ABSL_GUARDED_BY(connectivity_mu_) = false;
  std::thread connectivity_thread_;

  absl::Mutex watch_mu_;
  std::vector<std::shared_ptr<etcd_internal::WatchState>> watches_ ABSL_GUARDED_BY(watch_mu_);
};

}  // namespace fleet
