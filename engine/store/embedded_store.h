#pragma once

// EmbeddedStore: the default Store. An in-memory ordered map of keys and
// their revisions, made durable by a write-ahead log with group commit and by
// periodic snapshots. Values are not kept in memory: each stays in the file
// that holds it (the log segment it was written to, then the snapshot that
// took it over) and reads fetch it from there (see Entry below).
//
// Durability. Every write (Put, Delete, Txn, GrantLease, RevokeLease, lease
// expiry) becomes one record of the log; a call returns only after its record
// was written and fdatasync'ed. Writers that arrive together are batched by
// one commit thread into one write + one fdatasync ("group commit"). A Txn of
// many operations is one record. Reads and watches only ever see durable
// writes: the commit thread applies a batch and makes it visible after the
// fdatasync (readers wait for the batch in flight, at most one fsync).
//
// Files in `dir`:
//   LOCK                     flock'ed while open: a second Open of the same dir fails
//   wal-<16 hex>.log         log segments, replayed in order
//   snap-<16 hex>.snap       the state before segment <same number>; the newest wins
// A snapshot is written to a temporary file, fsync'ed, renamed and the
// directory fsync'ed; then older segments and snapshots are deleted. Recovery
// reads the newest snapshot and replays the segments from its number on.
//
// Recovery errors: a damaged record that has valid records after it (in the
// same segment, or a damaged record in a segment that is not the last) is
// DATA_LOSS naming the file and byte offset; nothing is repaired silently. A
// damaged or incomplete last record of the last segment (a write torn by a
// crash) was never acknowledged: the segment is truncated before it and
// recovery_notes() says so.
//
// Revisions follow etcd: a new store is at revision 1; each write call that
// changes at least one key bumps the revision by one. Lease grants and
// revocations of leases without keys do not bump it.
//
// Leases. Grants and revocations are durable; keep-alives are not (they would
// cost an fsync each). After a restart every lease restarts with its full TTL
// from the moment of recovery: a lease is never cut short by a restart, and a
// holder that died meanwhile loses its keys one TTL after the restart. Keys of
// an expired or revoked lease are deleted in one durable revision per lease,
// so they do not come back after a restart. Expiry happens only in
// ExpireLeases() (no timer thread), which reads the injected Clock.
//
// Watches are served from an in-memory history of recent events (the last
// `watch_history_events`, whole revisions). Watching from a revision that is
// no longer in it, or from before the last restart, is OUT_OF_RANGE. Events
// are delivered in revision order on one store thread. A watch whose callback
// is so slow that the history moved past it is ended with on_error
// (OUT_OF_RANGE): read again and watch from that read's revision + 1.
//
// Known limit: damage to the last record of the last segment after it was
// acknowledged (a bit flip on disk, not a crash) looks exactly like a torn
// write and is cut too; recovery_notes() reports it.
//
// After an I/O error on the log the store refuses every further call with
// that error (the in-memory state may be ahead of the disk); reopen it.
//
// Thread-safety: all public methods are thread-safe.

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "engine/store/store.h"

namespace fleet {

struct EmbeddedStoreOptions {
  std::string dir;               // data directory; created if missing
  const Clock* clock = nullptr;  // for lease expiry; required; must outlive the store
  // How long the commit thread waits for more writers to join a batch before
  // it writes. It waits only while writes are concurrent (the previous batch
  // held more than one write), and only until as many writers as in the
  // previous batch are queued, so a lone sequential writer never waits and a
  // steady group of writers waits only for its slowest member.
  absl::Duration group_commit_window = absl::Milliseconds(2);
  int64_t snapshot_every_records = 100000;  // WAL records between snapshots
  int64_t watch_history_events = 100000;    // events kept to serve watches from the past
};

namespace store_internal {
struct WriteRequest;
struct Watcher;
}  // namespace store_internal

class EmbeddedStore final : public Store {
 public:
  // Recovers from `options.dir` (creating it when missing) and starts the
  // commit and watch threads. Errors: INVALID_ARGUMENT for bad options;
  // FAILED_PRECONDITION when another store has the directory open; DATA_LOSS
  // for a corrupt record that is not a torn tail (names file and offset);
  // INTERNAL for I/O errors.
  static absl::StatusOr<std::unique_ptr<EmbeddedStore>> Open(EmbeddedStoreOptions options);

  // Waits for writes in flight, ends every live watch with UNAVAILABLE
  // (on_error), stops the threads and closes the files.
  ~EmbeddedStore() override;

  EmbeddedStore(const EmbeddedStore&) = delete;
  EmbeddedStore& operator=(const EmbeddedStore&) = delete;

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

  // Expires leases whose TTL passed according to the clock: deletes their keys
  // in one revision per lease, durably, and returns when that is durable. The
  // engine calls it periodically; tests call it after FakeClock::Advance. An
  // I/O error fails the store: every later call returns it.
  void ExpireLeases();

  // What recovery did that an operator should know (e.g. "cut a torn record
  // at byte N of FILE"); empty when the files were clean. Thread-safe.
  std::vector<std::string> recovery_notes() const;

  // The current revision. Thread-safe.
  int64_t revision() const;

  // Counters of the commit thread since Open, for benchmarks and tests.
  struct CommitStats {
    int64_t records = 0;  // log records written
    int64_t syncs = 0;    // write + fdatasync rounds (one per batch with records)
  };
  CommitStats commit_stats() const;

 private:
  // Where the bytes of a value are. Values stay in the file that holds them
  // (the log segment they were written to, or the snapshot that took them
  // over) and are read back with pread when asked for: kvs_ holds keys and
  // revisions only. Values in memory were a tenth of the engine's heap at
  // 100,000 units, and grew with the size of the unit files; the kernel's
  // page cache keeps the ones read often.
  struct ValueRef {
    uint64_t file;  // SegmentFile() or SnapshotFile() of the file's number
    uint64_t offset;
    uint32_t size;
  };
  static uint64_t SegmentFile(uint64_t number) { return number * 2; }
  static uint64_t SnapshotFile(uint64_t number) { return number * 2 + 1; }
  static uint64_t FileNumber(uint64_t file) { return file / 2; }
  // Where `value`, a view into `payload`, is: `payload` is that of the frame
  // at byte `frame_offset` of `file`.
  static ValueRef RefInFrame(uint64_t file, uint64_t frame_offset, absl::string_view payload,
                             absl::string_view value);
  // What kvs_ holds per key: a KeyValue without its key, which is the map's
  // (the key twice was a tenth of the engine's heap at 100,000 units), and
  // with its value on disk.
  struct Entry {
    ValueRef value{};
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    LeaseId lease = 0;
  };
  // The path of a file of ValueRef::file.
  std::string FilePath(uint64_t file) const;
  // Appends the bytes of `ref` to `out`. DATA_LOSS when the file is shorter
  // than the store wrote it, or the I/O error.
  absl::Status ReadValue(const ValueRef& ref, std::string* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `entry` as a KeyValue, its value left empty (the caller reads it if needed).
  static KeyValue WithoutValue(const std::string& key, const Entry& entry);
  absl::StatusOr<KeyValue> ReadKeyValue(const std::string& key, const Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Lease {
    absl::Duration ttl;
    absl::Time expiry;
    absl::flat_hash_set<std::string> keys;
  };

  explicit EmbeddedStore(EmbeddedStoreOptions options);

  absl::Status Recover();
  // `payload` is the frame at byte `offset` of segment `number`.
  absl::Status ReplayRecord(absl::string_view payload, uint64_t number, uint64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadSnapshot(uint64_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OpenSegment(uint64_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Queues `requests` for the commit thread and waits until all are durable.
  // Returns the first failed request's status.
  absl::Status Submit(std::span<store_internal::WriteRequest* const> requests);
  void CommitLoop();
  // Applies one request to memory, appending its record and events.
  void Apply(store_internal::WriteRequest* request, std::string* records,
             std::vector<WatchEvent>* events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `value` (only read for `events`) is stored at `ref`.
  void PutKey(const std::string& key, absl::string_view value, const ValueRef& ref, LeaseId lease,
              int64_t revision, std::vector<WatchEvent>* events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DeleteKey(const std::string& key, int64_t revision, std::vector<WatchEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLease(LeaseId id, int64_t revision, std::vector<WatchEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a new segment and writes a snapshot of the current state (the
  // state before that segment), moving every value into it; then deletes the
  // older files. Blocks the store while it writes.
  absl::Status TakeSnapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendHistory(std::vector<WatchEvent> events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLoop();

  const EmbeddedStoreOptions options_;

  // Lock order: mu_, then queue_mu_ or watch_mu_.
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, Entry> kvs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<LeaseId, Lease> leases_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;
  LeaseId next_lease_id_ ABSL_GUARDED_BY(mu_) = 1;
  int wal_fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::string wal_path_ ABSL_GUARDED_BY(mu_);
  uint64_t segment_number_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wal_size_ ABSL_GUARDED_BY(mu_) = 0;  // bytes in the current segment
  // ValueRef::file -> a descriptor open for reading, opened when first read.
  absl::flat_hash_map<uint64_t, int> read_fds_ ABSL_GUARDED_BY(mu_);
  int64_t records_since_snapshot_ ABSL_GUARDED_BY(mu_) = 0;
  CommitStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first I/O error; sticks
  std::vector<std::string> notes_ ABSL_GUARDED_BY(mu_);
  int lock_fd_ = -1;

  absl::Mutex queue_mu_;
  std::deque<store_internal::WriteRequest*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex watch_mu_;
  std::deque<WatchEvent> history_ ABSL_GUARDED_BY(watch_mu_);
  int64_t compacted_revision_ ABSL_GUARDED_BY(watch_mu_) = 0;  // events <= this are gone
  int64_t history_revision_ ABSL_GUARDED_BY(watch_mu_) = 0;    // newest revision in history
  std::vector<std::shared_ptr<store_internal::Watcher>> watchers_ ABSL_GUARDED_BY(watch_mu_);
  bool watch_closing_ ABSL_GUARDED_BY(watch_mu_) = false;

  std::thread commit_thread_;
  std::thread dispatch_thread_;
};

}  // namespace fleet
