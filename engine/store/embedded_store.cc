#include "engine/store/embedded_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <span>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/store/txn_outcome.h"
#include "engine/store/wal.h"

namespace fleet {
namespace store_internal {

struct WriteRequest {
  enum class Kind { kTxn, kGrant, kRevoke, kExpire };
  Kind kind = Kind::kTxn;
  const Transaction* txn = nullptr;  // kTxn
  LeaseId lease = 0;                 // kRevoke, kExpire; the new id for kGrant
  absl::Duration ttl;                // kGrant
  absl::Status status;
  TxnResult result;
  bool done = false;  // guarded by EmbeddedStore::queue_mu_
};

struct Watcher {
  std::string prefix;
  Store::EventsCallback on_events;
  Store::ErrorCallback on_error;
  std::thread::id dispatcher;
  int64_t next_revision = 0;  // guarded by EmbeddedStore::watch_mu_

  absl::Mutex mu;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool delivering ABSL_GUARDED_BY(mu) = false;

  // Stops deliveries; waits for one in progress unless called from inside it.
  void Cancel() {
    absl::MutexLock lock(&mu);
    cancelled = true;
    if (std::this_thread::get_id() != dispatcher) {
      mu.Await(absl::Condition(
          +[](bool* delivering) { return !*delivering; }, &delivering));
    }
  }
};

}  // namespace store_internal

namespace {

using store::Decoder;
using store::Encoder;
using store_internal::Watcher;
using store_internal::WriteRequest;

// Record and entry tags of the log and the snapshot. Never renumber.
enum class RecordTag : uint8_t {
  kWrite = 1,
  kSnapHeader = 2,
  kSnapLeases = 3,
  kSnapKvs = 4,
  kSnapEnd = 5
};
enum class EntryTag : uint8_t { kPut = 1, kDelete = 2, kLeaseGrant = 3, kLeaseRevoke = 4 };

constexpr size_t kMaxBatch = 4096;
constexpr size_t kSnapshotChunkBytes = 1 << 20;

std::string SegmentName(uint64_t n) { return absl::StrFormat("wal-%016x.log", n); }
std::string SnapshotName(uint64_t n) { return absl::StrFormat("snap-%016x.snap", n); }

// Parses "wal-<16 hex>.log" / "snap-<16 hex>.snap".
bool ParseNumbered(absl::string_view name, absl::string_view prefix, absl::string_view suffix,
                   uint64_t* n) {
  if (!absl::StartsWith(name, prefix) || !absl::EndsWith(name, suffix)) return false;
  absl::string_view hex = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (hex.size() != 16) return false;
  return absl::SimpleHexAtoi(hex, n);
}

int64_t DurationNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

// etcd's rules for the operations of one branch: keys are not empty, a key is
// put at most once, and nothing put is also deleted in the same branch.
absl::Status ValidateOps(const std::vector<Operation>& ops) {
  absl::flat_hash_set<absl::string_view> puts;
  for (const Operation& op : ops) {
    if (op.kind != Operation::Kind::kDeletePrefix && op.key.empty()) {
      return absl::InvalidArgumentError("transaction operation with an empty key");
    }
    if (op.kind == Operation::Kind::kPut && !puts.insert(op.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("key \"", op.key, "\" is put twice in one transaction"));
    }
  }
  for (const Operation& op : ops) {
    switch (op.kind) {
      case Operation::Kind::kPut:
        break;
      case Operation::Kind::kDelete:
        if (puts.contains(op.key)) {
          return absl::InvalidArgumentError(
              absl::StrCat("key \"", op.key, "\" is both put and deleted in one transaction"));
        }
        break;
      case Operation::Kind::kDeletePrefix:
        for (absl::string_view put : puts) {
          if (absl::StartsWith(put, op.key)) {
            return absl::InvalidArgumentError(absl::StrCat("key \"", put,
                                                           "\" is put and deleted (prefix \"",
                                                           op.key, "\") in one transaction"));
          }
        }
        break;
    }
  }
  return absl::OkStatus();
}

class EmbeddedWatchHandle final : public WatchHandle {
 public:
  explicit EmbeddedWatchHandle(std::shared_ptr<Watcher> watcher) : watcher_(std::move(watcher)) {}
  ~EmbeddedWatchHandle() override { watcher_->Cancel(); }

 private:
  std::shared_ptr<Watcher> watcher_;
};

absl::Status Closed() { return absl::UnavailableError("store is closed"); }

}  // namespace

EmbeddedStore::EmbeddedStore(EmbeddedStoreOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Open(EmbeddedStoreOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("store: dir is empty");
  if (options.clock == nullptr) return absl::InvalidArgumentError("store: clock is required");
  if (options.snapshot_every_records <= 0) {
    return absl::InvalidArgumentError("store: snapshot_every_records must be positive");
  }
  if (options.watch_history_events < 0) {
    return absl::InvalidArgumentError("store: watch_history_events must not be negative");
  }
  if (options.group_commit_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("store: group_commit_window must not be negative");
  }
  std::unique_ptr<EmbeddedStore> s(new EmbeddedStore(std::move(options)));
  if (absl::Status st = s->Recover(); !st.ok()) return st;
  s->commit_thread_ = std::thread([p = s.get()] { p->CommitLoop(); });
  s->dispatch_thread_ = std::thread([p = s.get()] { p->DispatchLoop(); });
  return s;
}

EmbeddedStore::~EmbeddedStore() {
  if (commit_thread_.joinable()) {
    {
      absl::MutexLock lock(&queue_mu_);
      closing_ = true;
    }
    commit_thread_.join();
  }
  if (dispatch_thread_.joinable()) {
    {
      absl::MutexLock lock(&watch_mu_);
      watch_closing_ = true;
    }
    dispatch_thread_.join();
  }
  absl::MutexLock lock(&mu_);
  if (wal_fd_ >= 0) ::close(wal_fd_);
  for (const auto& [file, fd] : read_fds_) ::close(fd);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

// ---------------------------------------------------------------- recovery

absl::Status EmbeddedStore::Recover() {
  absl::MutexLock lock(&mu_);
  const std::string& dir = options_.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create directory ", dir, ": ", ec.message()));

  std::string lock_path = dir + "/LOCK";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return store::ErrnoStatus(errno, "open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("store directory ", dir, " is in use by another store"));
    }
    return store::ErrnoStatus(errno, "flock", lock_path);
  }

  std::vector<uint64_t> segments;
  std::vector<uint64_t> snapshots;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    uint64_t n;
    if (ParseNumbered(name, "wal-", ".log", &n)) {
      segments.push_back(n);
    } else if (ParseNumbered(name, "snap-", ".snap", &n)) {
      snapshots.push_back(n);
    } else if (absl::EndsWith(name, ".tmp")) {
      std::filesystem::remove(entry.path(), ec);  // an unfinished snapshot
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("list directory ", dir, ": ", ec.message()));
  std::sort(segments.begin(), segments.end());
  std::sort(snapshots.begin(), snapshots.end());

  uint64_t first = 1;
  if (!snapshots.empty()) {
    first = snapshots.back();
    if (absl::Status st = LoadSnapshot(first); !st.ok()) return st;
  }
  std::vector<uint64_t> replay;
  for (uint64_t n : segments) {
    if (n >= first) replay.push_back(n);
  }
  for (size_t i = 0; i < replay.size(); ++i) {
    if (replay[i] != first + i) {
      return absl::DataLossError(
          absl::StrCat("store ", dir, ": log segment ", SegmentName(first + i), " is missing"));
    }
  }
  if (!snapshots.empty() && replay.empty()) {
    return absl::DataLossError(absl::StrCat("store ", dir, ": log segment ", SegmentName(first),
                                            " (the one after the snapshot) is missing"));
  }

  int64_t replayed = 0;
  for (size_t i = 0; i < replay.size(); ++i) {
    std::string path = dir + "/" + SegmentName(replay[i]);
    absl::StatusOr<std::string> data = store::ReadWholeFile(path);
    if (!data.ok()) return data.status();
    absl::StatusOr<store::ScannedFrames> frames = store::ScanFrames(path, *data);
    if (!frames.ok()) return frames.status();
    for (size_t f = 0; f < frames->payloads.size(); ++f) {
      if (absl::Status st = ReplayRecord(frames->payloads[f], replay[i], frames->offsets[f]); !st.ok()) {
        return st;
      }
    }
    replayed += static_cast<int64_t>(frames->payloads.size());
    if (frames->torn_tail) {
      if (i + 1 != replay.size()) {
        return absl::DataLossError(
            absl::StrCat("store file ", path, ": corrupt record at byte offset ",
                         frames->valid_bytes, " in a log segment that is not the last"));
      }
      if (::truncate(path.c_str(), static_cast<off_t>(frames->valid_bytes)) != 0) {
        return store::ErrnoStatus(errno, "truncate", path);
      }
      notes_.push_back(absl::StrCat("cut a torn last record of ", path, " at byte offset ",
                                    frames->valid_bytes, " (", data->size() - frames->valid_bytes,
                                    " bytes of an unacknowledged write)"));
    }
  }

  uint64_t active = replay.empty() ? first : replay.back();
  if (absl::Status st = OpenSegment(active); !st.ok()) return st;
  if (absl::Status st = store::SyncFd(wal_fd_, wal_path_); !st.ok()) return st;  // the truncation
  // Files older than the snapshot are no longer needed.
  for (uint64_t n : segments) {
    if (n < first) std::filesystem::remove(dir + "/" + SegmentName(n), ec);
  }
  for (uint64_t n : snapshots) {
    if (n < first) std::filesystem::remove(dir + "/" + SnapshotName(n), ec);
  }
  records_since_snapshot_ = replayed;
  absl::Time now = options_.clock->Now();
  for (auto& [id, lease] : leases_) lease.expiry = now + lease.ttl;

  absl::MutexLock wlock(&watch_mu_);
  compacted_revision_ = revision_;
  history_revision_ = revision_;
  return absl::OkStatus();
}

absl::Status EmbeddedStore::ReplayRecord(absl::string_view payload, uint64_t number, uint64_t offset) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("store file ", FilePath(SegmentFile(number)),
                                            ": record at byte offset ", offset, " is invalid: ", why));
  };
  Decoder d(payload);
  uint8_t tag;
  int64_t revision;
  if (!d.Byte(&tag) || tag != static_cast<uint8_t>(RecordTag::kWrite)) return bad("unknown tag");
  if (!d.Signed(&revision) || revision < revision_) return bad("revision goes backwards");
  revision_ = revision;
  while (!d.done()) {
    uint8_t entry;
    if (!d.Byte(&entry)) return bad("truncated entry");
    switch (static_cast<EntryTag>(entry)) {
      case EntryTag::kPut: {
        std::string key;
        absl::string_view value;
        int64_t lease;
        if (!d.Bytes(&key) || !d.View(&value) || !d.Signed(&lease)) return bad("truncated put");
        if (lease != 0 && !leases_.contains(lease)) return bad("put under an unknown lease");
        PutKey(key, value, RefInFrame(SegmentFile(number), offset, payload, value), lease, revision, nullptr);
        break;
      }
      case EntryTag::kDelete: {
        std::string key;
        if (!d.Bytes(&key)) return bad("truncated delete");
        DeleteKey(key, revision, nullptr);
        break;
      }
      case EntryTag::kLeaseGrant: {
        int64_t id, ttl;
        if (!d.Signed(&id) || !d.Signed(&ttl) || id <= 0 || ttl <= 0) return bad("bad lease");
        leases_[id] = Lease{absl::Nanoseconds(ttl), absl::InfiniteFuture(), {}};
        next_lease_id_ = std::max(next_lease_id_, id + 1);
        break;
      }
      case EntryTag::kLeaseRevoke: {
        int64_t id;
        if (!d.Signed(&id)) return bad("truncated lease revoke");
        if (!leases_.contains(id)) return bad("revoke of an unknown lease");
        RemoveLease(id, revision, nullptr);
        break;
      }
      default:
        return bad("unknown entry");
    }
  }
  return absl::OkStatus();
}

absl::Status EmbeddedStore::LoadSnapshot(uint64_t number) {
  const std::string path = FilePath(SnapshotFile(number));
  absl::StatusOr<std::string> data = store::ReadWholeFile(path);
  if (!data.ok()) return data.status();
  absl::StatusOr<store::ScannedFrames> frames = store::ScanFrames(path, *data);
  if (!frames.ok()) return frames.status();
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("store snapshot ", path, " is invalid: ", why));
  };
  if (frames->torn_tail) {
    return bad(absl::StrCat("damaged at byte offset ", frames->valid_bytes));
  }
  uint64_t want_leases = 0, want_kvs = 0, got_leases = 0, got_kvs = 0;
  bool ended = false;
  for (size_t i = 0; i < frames->payloads.size(); ++i) {
    Decoder d(frames->payloads[i]);
    uint8_t tag;
    if (!d.Byte(&tag) || ended) return bad("unexpected record");
    if (i == 0 && tag != static_cast<uint8_t>(RecordTag::kSnapHeader)) return bad("no header");
    switch (static_cast<RecordTag>(tag)) {
      case RecordTag::kSnapHeader:
        if (i != 0 || !d.Signed(&revision_) || !d.Signed(&next_lease_id_) ||
            !d.Varint(&want_leases) || !d.Varint(&want_kvs)) {
          return bad("bad header");
        }
        break;
      case RecordTag::kSnapLeases:
        while (!d.done()) {
          int64_t id, ttl;
          if (!d.Signed(&id) || !d.Signed(&ttl) || ttl <= 0) return bad("bad lease");
          leases_[id] = Lease{absl::Nanoseconds(ttl), absl::InfiniteFuture(), {}};
          ++got_leases;
        }
        break;
      case RecordTag::kSnapKvs:
        while (!d.done()) {
          std::string key;
          absl::string_view value;
          Entry entry;
          if (!d.Bytes(&key) || !d.View(&value) || !d.Signed(&entry.create_revision) ||
              !d.Signed(&entry.mod_revision) || !d.Signed(&entry.version) || !d.Signed(&entry.lease)) {
            return bad("bad key");
          }
          entry.value = RefInFrame(SnapshotFile(number), frames->offsets[i], frames->payloads[i], value);
          if (entry.lease != 0) {
            auto it = leases_.find(entry.lease);
            if (it == leases_.end()) return bad("key under an unknown lease");
            it->second.keys.insert(key);
          }
          kvs_.emplace(std::move(key), std::move(entry));
          ++got_kvs;
        }
        break;
      case RecordTag::kSnapEnd:
        ended = true;
        break;
      case RecordTag::kWrite:
        return bad("log record in a snapshot");
      default:
        return bad("unknown record");
    }
  }
  if (!ended || got_leases != want_leases || got_kvs != want_kvs) return bad("incomplete");
  return absl::OkStatus();
}

absl::Status EmbeddedStore::OpenSegment(uint64_t number) {
  std::string path = options_.dir + "/" + SegmentName(number);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return store::ErrnoStatus(errno, "open", path);
  if (absl::Status st = store::SyncDir(options_.dir); !st.ok()) {
    ::close(fd);
    return st;
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) {
    const int err = errno;
    ::close(fd);
    return store::ErrnoStatus(err, "lseek", path);
  }
  if (wal_fd_ >= 0) ::close(wal_fd_);
  wal_fd_ = fd;
  wal_path_ = path;
  segment_number_ = number;
  wal_size_ = static_cast<uint64_t>(size);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- reads

std::string EmbeddedStore::FilePath(uint64_t file) const {
  const uint64_t number = FileNumber(file);
  return options_.dir + "/" + (file == SegmentFile(number) ? SegmentName(number) : SnapshotName(number));
}

EmbeddedStore::ValueRef EmbeddedStore::RefInFrame(uint64_t file, uint64_t frame_offset, absl::string_view payload,
                                                  absl::string_view value) {
  return {.file = file,
          .offset = frame_offset + store::kFrameHeaderSize + static_cast<uint64_t>(value.data() - payload.data()),
          .size = static_cast<uint32_t>(value.size())};
}

absl::Status EmbeddedStore::ReadValue(const ValueRef& ref, std::string* out) {
  if (ref.size == 0) return absl::OkStatus();
  auto [it, opened] = read_fds_.try_emplace(ref.file, -1);
  if (opened) {
    it->second = ::open(FilePath(ref.file).c_str(), O_RDONLY | O_CLOEXEC);
    if (it->second < 0) {
      const int err = errno;
      read_fds_.erase(it);
      return store::ErrnoStatus(err, "open", FilePath(ref.file));
    }
  }
  const size_t start = out->size();
  out->resize(start + ref.size);
  for (size_t done = 0; done < ref.size;) {
    const ssize_t n = ::pread(it->second, out->data() + start + done, ref.size - done,
                              static_cast<off_t>(ref.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return store::ErrnoStatus(errno, "pread", FilePath(ref.file));
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("store file ", FilePath(ref.file), " ends before the value of ",
                                              ref.size, " bytes at byte offset ", ref.offset));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

KeyValue EmbeddedStore::WithoutValue(const std::string& key, const Entry& entry) {
  return KeyValue{.key = key,
                  .value = {},
                  .create_revision = entry.create_revision,
                  .mod_revision = entry.mod_revision,
                  .version = entry.version,
                  .lease = entry.lease};
}

absl::StatusOr<KeyValue> EmbeddedStore::ReadKeyValue(const std::string& key, const Entry& entry) {
  KeyValue kv = WithoutValue(key, entry);
  if (absl::Status st = ReadValue(entry.value, &kv.value); !st.ok()) return st;
  return kv;
}

absl::StatusOr<KeyValue> EmbeddedStore::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (!failed_.ok()) return failed_;
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return absl::NotFoundError(absl::StrCat("key \"", key, "\" not found"));
  return ReadKeyValue(it->first, it->second);
}

absl::StatusOr<RangeResult> EmbeddedStore::Range(const std::string& prefix,
                                                 const std::string& start_after, int64_t limit) {
  if (limit < 0) return absl::InvalidArgumentError("range: limit is negative");
  absl::MutexLock lock(&mu_);
  if (!failed_.ok()) return failed_;
  RangeResult result;
  result.revision = revision_;
  auto it = start_after.empty() || start_after < prefix ? kvs_.lower_bound(prefix)
                                                        : kvs_.upper_bound(start_after);
  for (; it != kvs_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) == limit) {
      result.more = true;
      break;
    }
    absl::StatusOr<KeyValue> kv = ReadKeyValue(it->first, it->second);
    if (!kv.ok()) return kv.status();
    result.kvs.push_back(*std::move(kv));
  }
  return result;
}

int64_t EmbeddedStore::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

EmbeddedStore::CommitStats EmbeddedStore::commit_stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<std::string> EmbeddedStore::recovery_notes() const {
  absl::MutexLock lock(&mu_);
  return notes_;
}

// ---------------------------------------------------------------- writes

absl::StatusOr<int64_t> EmbeddedStore::Put(const std::string& key, const std::string& value,
                                           LeaseId lease) {
  Transaction txn;
  txn.on_success.push_back({Operation::Kind::kPut, key, value, lease});
  absl::StatusOr<TxnResult> r = Txn(txn);
  if (!r.ok()) return r.status();
  return r->revision;
}

absl::StatusOr<int64_t> EmbeddedStore::Delete(const std::string& key) {
  Transaction txn;
  txn.on_success.push_back({Operation::Kind::kDelete, key, "", 0});
  absl::StatusOr<TxnResult> r = Txn(txn);
  if (!r.ok()) return r.status();
  return r->revision;
}

absl::StatusOr<TxnResult> EmbeddedStore::Txn(const Transaction& txn) {
  if (absl::Status st = ValidateOps(txn.on_success); !st.ok()) return st;
  if (absl::Status st = ValidateOps(txn.on_failure); !st.ok()) return st;
  WriteRequest request;
  request.kind = WriteRequest::Kind::kTxn;
  request.txn = &txn;
  WriteRequest* batch[] = {&request};
  if (absl::Status st = Submit(batch); !st.ok()) return st;
  return request.result;
}

absl::StatusOr<LeaseId> EmbeddedStore::GrantLease(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("lease ttl must be positive");
  WriteRequest request;
  request.kind = WriteRequest::Kind::kGrant;
  request.ttl = ttl;
  WriteRequest* batch[] = {&request};
  if (absl::Status st = Submit(batch); !st.ok()) return st;
  return request.lease;
}

absl::Status EmbeddedStore::KeepAlive(LeaseId lease) {
  absl::MutexLock lock(&mu_);
  if (!failed_.ok()) return failed_;
  auto it = leases_.find(lease);
  absl::Time now = options_.clock->Now();
  if (it == leases_.end() || it->second.expiry <= now) {
    return absl::NotFoundError(absl::StrCat("lease ", lease, " not found or expired"));
  }
  it->second.expiry = now + it->second.ttl;
  return absl::OkStatus();
}

absl::Status EmbeddedStore::RevokeLease(LeaseId lease) {
  WriteRequest request;
  request.kind = WriteRequest::Kind::kRevoke;
  request.lease = lease;
  WriteRequest* batch[] = {&request};
  return Submit(batch);
}

void EmbeddedStore::ExpireLeases() {
  std::vector<WriteRequest> requests;
  {
    absl::MutexLock lock(&mu_);
    if (!failed_.ok()) return;
    absl::Time now = options_.clock->Now();
    for (const auto& [id, lease] : leases_) {
      if (lease.expiry <= now) {
        WriteRequest& r = requests.emplace_back();
        r.kind = WriteRequest::Kind::kExpire;
        r.lease = id;
      }
    }
  }
  if (requests.empty()) return;
  std::vector<WriteRequest*> batch;
  for (WriteRequest& r : requests) batch.push_back(&r);
  // A failure here is the store's sticky I/O error (or "closed"); later calls report it.
  Submit(batch).IgnoreError();
}

absl::Status EmbeddedStore::Submit(std::span<WriteRequest* const> requests) {
  absl::MutexLock lock(&queue_mu_);
  if (closing_) return Closed();
  for (WriteRequest* r : requests) queue_.push_back(r);
  for (WriteRequest* r : requests) {
    queue_mu_.Await(absl::Condition(
        +[](bool* done) { return *done; }, &r->done));
  }
  for (WriteRequest* r : requests) {
    if (!r->status.ok()) return r->status;
  }
  return absl::OkStatus();
}

void EmbeddedStore::CommitLoop() {
  size_t last_batch = 0;
  while (true) {
    std::vector<WriteRequest*> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return !queue_.empty() || closing_;
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // closing, and nothing left to write
      if (last_batch > 1 && options_.group_commit_window > absl::ZeroDuration()) {
        // Writers are concurrent: wait for as many as came last time, or the window.
        size_t expected = std::min(last_batch, kMaxBatch);
        auto full = [this, expected]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
          return queue_.size() >= expected || closing_;
        };
        queue_mu_.AwaitWithTimeout(absl::Condition(&full), options_.group_commit_window);
      }
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    last_batch = batch.size();

    bool snapshot_due = false;
    {
      absl::MutexLock lock(&mu_);
      if (!failed_.ok()) {
        for (WriteRequest* r : batch) r->status = failed_;
      } else {
        std::string records;
        std::vector<WatchEvent> events;
        int64_t count = 0;
        for (WriteRequest* r : batch) {
          size_t before = records.size();
          Apply(r, &records, &events);
          if (records.size() != before) ++count;
        }
        absl::Status st;
        if (!records.empty()) {
          st = store::WriteAll(wal_fd_, records, wal_path_);
          if (st.ok()) st = store::SyncFd(wal_fd_, wal_path_);
          wal_size_ += records.size();  // (after an error nothing is read again)
        }
        if (!st.ok()) {
          failed_ = st;
          for (WriteRequest* r : batch) r->status = st;
        } else {
          AppendHistory(std::move(events));
          records_since_snapshot_ += count;
          stats_.records += count;
          stats_.syncs += records.empty() ? 0 : 1;
          snapshot_due = records_since_snapshot_ >= options_.snapshot_every_records;
        }
      }
    }
    {
      absl::MutexLock lock(&queue_mu_);
      for (WriteRequest* r : batch) r->done = true;
    }
    if (snapshot_due) {  // after the acknowledgements: the batch is durable in the log
      absl::MutexLock lock(&mu_);
      if (absl::Status st = TakeSnapshot(); !st.ok()) failed_ = st;
    }
  }
}

void EmbeddedStore::Apply(WriteRequest* r, std::string* records, std::vector<WatchEvent>* events) {
  std::string payload;
  Encoder e(&payload);
  e.Byte(static_cast<uint8_t>(RecordTag::kWrite));
  int64_t next = revision_ + 1;
  bool changed = false;
  switch (r->kind) {
    case WriteRequest::Kind::kTxn: {
      const Transaction& txn = *r->txn;
      bool ok = true;
      for (const Compare& c : txn.compares) {
        auto it = kvs_.find(c.key);
        if (it == kvs_.end()) {
          if (!CompareHolds<KeyValue>(c, nullptr)) {
            ok = false;
            break;
          }
          continue;
        }
        // The value is read only for a compare on it.
        KeyValue current = WithoutValue({}, it->second);
        if (c.target == Compare::Target::kValue) {
          if (absl::Status st = ReadValue(it->second.value, &current.value); !st.ok()) {
            r->status = st;
            return;
          }
        }
        if (!CompareHolds(c, &current)) {
          ok = false;
          break;
        }
      }
      const std::vector<Operation>& ops = ok ? txn.on_success : txn.on_failure;
      for (const Operation& op : ops) {
        if (op.kind == Operation::Kind::kPut && op.lease != 0 && !leases_.contains(op.lease)) {
          r->status = absl::NotFoundError(absl::StrCat("lease ", op.lease, " not found"));
          return;
        }
      }
      e.Signed(next);
      for (const Operation& op : ops) {
        switch (op.kind) {
          case Operation::Kind::kPut: {
            e.Byte(static_cast<uint8_t>(EntryTag::kPut));
            e.Bytes(op.key);
            e.Bytes(op.value);
            // This request's frame goes at the end of `records`, which goes
            // at the end of the segment.
            const ValueRef ref = RefInFrame(SegmentFile(segment_number_), wal_size_ + records->size(), payload,
                                            absl::string_view(payload).substr(payload.size() - op.value.size()));
            e.Signed(op.lease);
            PutKey(op.key, op.value, ref, op.lease, next, events);
            changed = true;
            break;
          }
          case Operation::Kind::kDelete:
            if (DeleteKey(op.key, next, events)) {
              e.Byte(static_cast<uint8_t>(EntryTag::kDelete));
              e.Bytes(op.key);
              changed = true;
            }
            break;
          case Operation::Kind::kDeletePrefix: {
            std::vector<std::string> keys;
            for (auto it = kvs_.lower_bound(op.key);
                 it != kvs_.end() && absl::StartsWith(it->first, op.key); ++it) {
              keys.push_back(it->first);
            }
            for (const std::string& key : keys) {
              DeleteKey(key, next, events);
              e.Byte(static_cast<uint8_t>(EntryTag::kDelete));
              e.Bytes(key);
              changed = true;
            }
            break;
          }
        }
      }
      if (changed) revision_ = next;
      r->result.succeeded = ok;
      r->result.revision = revision_;
      break;
    }
    case WriteRequest::Kind::kGrant: {
      r->lease = next_lease_id_++;
      leases_[r->lease] = Lease{r->ttl, options_.clock->Now() + r->ttl, {}};
      e.Signed(revision_);
      e.Byte(static_cast<uint8_t>(EntryTag::kLeaseGrant));
      e.Signed(r->lease);
      e.Signed(DurationNanos(r->ttl));
      changed = true;
      break;
    }
    case WriteRequest::Kind::kRevoke:
    case WriteRequest::Kind::kExpire: {
      auto it = leases_.find(r->lease);
      if (it == leases_.end()) {
        if (r->kind == WriteRequest::Kind::kRevoke) {
          r->status = absl::NotFoundError(absl::StrCat("lease ", r->lease, " not found"));
        }
        return;
      }
      if (r->kind == WriteRequest::Kind::kExpire && it->second.expiry > options_.clock->Now()) {
        return;  // kept alive since ExpireLeases looked
      }
      int64_t revision = it->second.keys.empty() ? revision_ : next;
      RemoveLease(r->lease, revision, events);
      revision_ = revision;
      e.Signed(revision);
      e.Byte(static_cast<uint8_t>(EntryTag::kLeaseRevoke));
      e.Signed(r->lease);
      changed = true;
      break;
    }
  }
  if (changed) store::AppendFrame(payload, records);
}

void EmbeddedStore::PutKey(const std::string& key, absl::string_view value, const ValueRef& ref,
                           LeaseId lease, int64_t revision, std::vector<WatchEvent>* events) {
  auto [it, inserted] = kvs_.try_emplace(key);
  Entry& entry = it->second;
  if (inserted) {
    entry.create_revision = revision;
    entry.version = 0;
  } else if (entry.lease != 0 && entry.lease != lease) {
    if (auto l = leases_.find(entry.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  entry.value = ref;
  entry.mod_revision = revision;
  ++entry.version;
  entry.lease = lease;
  if (lease != 0) leases_[lease].keys.insert(key);
  if (events) {
    events->push_back({WatchEvent::Type::kPut, WithoutValue(key, entry)});
    events->back().kv.value = std::string(value);
  }
}

bool EmbeddedStore::DeleteKey(const std::string& key, int64_t revision,
                              std::vector<WatchEvent>* events) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return false;
  if (it->second.lease != 0) {
    if (auto l = leases_.find(it->second.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  kvs_.erase(it);
  if (events) {
    WatchEvent ev;
    ev.type = WatchEvent::Type::kDelete;
    ev.kv.key = key;
    ev.kv.mod_revision = revision;
    events->push_back(std::move(ev));
  }
  return true;
}

void EmbeddedStore::RemoveLease(LeaseId id, int64_t revision, std::vector<WatchEvent>* events) {
  auto it = leases_.find(id);
  std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) DeleteKey(key, revision, events);
  leases_.erase(id);
}

// ---------------------------------------------------------------- snapshots

absl::Status EmbeddedStore::TakeSnapshot() {
  const uint64_t number = segment_number_ + 1;
  // The snapshot holds everything before segment `number`: start it first, so
  // that a crash before the rename below replays the old snapshot and all segments.
  if (absl::Status st = OpenSegment(number); !st.ok()) return st;
  records_since_snapshot_ = 0;

  const std::string& dir = options_.dir;
  const std::string final_path = FilePath(SnapshotFile(number));
  const std::string tmp_path = final_path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return store::ErrnoStatus(errno, "open", tmp_path);
  absl::Status st;
  // Frames go to the file a chunk at a time (the whole snapshot in memory was
  // a peak of the engine's heap). Every value is copied from its file into
  // the snapshot; `moved` says where, in kvs_ order, for after the rename.
  uint64_t written = 0;
  auto write_frame = [&](absl::string_view payload) {
    std::string frame;
    store::AppendFrame(payload, &frame);
    if (st.ok()) st = store::WriteAll(fd, frame, tmp_path);
    written += frame.size();
  };
  {
    std::string header;
    Encoder e(&header);
    e.Byte(static_cast<uint8_t>(RecordTag::kSnapHeader));
    e.Signed(revision_);
    e.Signed(next_lease_id_);
    e.Varint(leases_.size());
    e.Varint(kvs_.size());
    write_frame(header);
  }
  // A chunk is one frame's payload: its tag byte, then leases or keys. The
  // values in it learn their offset in the file when it is written.
  std::string chunk(1, static_cast<char>(RecordTag::kSnapLeases));
  std::vector<ValueRef> moved;
  moved.reserve(kvs_.size());
  size_t first_in_chunk = 0;  // index in `moved` of the chunk's first value
  auto flush = [&]() {
    for (size_t i = first_in_chunk; i < moved.size(); ++i) moved[i].offset += written + store::kFrameHeaderSize;
    write_frame(chunk);
    chunk.resize(1);
    first_in_chunk = moved.size();
  };
  for (const auto& [id, lease] : leases_) {
    Encoder e(&chunk);
    e.Signed(id);
    e.Signed(DurationNanos(lease.ttl));
    if (chunk.size() >= kSnapshotChunkBytes) flush();
  }
  if (chunk.size() > 1) flush();
  chunk.assign(1, static_cast<char>(RecordTag::kSnapKvs));
  for (const auto& [key, entry] : kvs_) {
    if (!st.ok()) break;
    Encoder e(&chunk);
    e.Bytes(key);
    e.Varint(entry.value.size);
    moved.push_back({.file = SnapshotFile(number), .offset = chunk.size(), .size = entry.value.size});
    st = ReadValue(entry.value, &chunk);
    e.Signed(entry.create_revision);
    e.Signed(entry.mod_revision);
    e.Signed(entry.version);
    e.Signed(entry.lease);
    if (chunk.size() >= kSnapshotChunkBytes) flush();
  }
  if (chunk.size() > 1) flush();
  write_frame(std::string(1, static_cast<char>(RecordTag::kSnapEnd)));
  if (st.ok()) st = store::SyncFd(fd, tmp_path);
  ::close(fd);
  if (st.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    st = store::ErrnoStatus(errno, "rename", tmp_path);
  }
  if (st.ok()) st = store::SyncDir(dir);
  if (!st.ok()) {
    ::unlink(tmp_path.c_str());
    return st;
  }
  size_t i = 0;
  for (auto& [key, entry] : kvs_) entry.value = moved[i++];
  // Nothing refers to the older files any more.
  for (auto it = read_fds_.begin(); it != read_fds_.end();) {
    if (FileNumber(it->first) < number) {
      ::close(it->second);
      read_fds_.erase(it++);
    } else {
      ++it;
    }
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    uint64_t n;
    if ((ParseNumbered(name, "wal-", ".log", &n) || ParseNumbered(name, "snap-", ".snap", &n)) &&
        n < number) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- watches

void EmbeddedStore::AppendHistory(std::vector<WatchEvent> events) {
  absl::MutexLock lock(&watch_mu_);
  for (WatchEvent& ev : events) history_.push_back(std::move(ev));
  history_revision_ = revision_;
  auto limit = static_cast<size_t>(options_.watch_history_events);
  while (history_.size() > limit) {
    compacted_revision_ = history_.front().kv.mod_revision;
    history_.pop_front();
    while (!history_.empty() && history_.front().kv.mod_revision == compacted_revision_) {
      history_.pop_front();
    }
  }
}

absl::StatusOr<std::unique_ptr<WatchHandle>> EmbeddedStore::Watch(const std::string& prefix,
                                                                  int64_t from_revision,
                                                                  EventsCallback on_events,
                                                                  ErrorCallback on_error) {
  if (from_revision < 0) return absl::InvalidArgumentError("watch: negative revision");
  if (!on_events) return absl::InvalidArgumentError("watch: on_events is required");
  auto watcher = std::make_shared<Watcher>();
  watcher->prefix = prefix;
  watcher->on_events = std::move(on_events);
  watcher->on_error = std::move(on_error);
  watcher->dispatcher = dispatch_thread_.get_id();
  absl::MutexLock lock(&watch_mu_);
  if (watch_closing_) return Closed();
  if (from_revision == 0) {
    watcher->next_revision = history_revision_ + 1;
  } else if (from_revision <= compacted_revision_) {
    return absl::OutOfRangeError(absl::StrCat(
        "watch from revision ", from_revision, ": revisions up to ", compacted_revision_,
        " are no longer kept; read again and watch from the revision of that read + 1"));
  } else {
    watcher->next_revision = from_revision;
  }
  watchers_.push_back(watcher);
  return std::make_unique<EmbeddedWatchHandle>(std::move(watcher));
}

void EmbeddedStore::DispatchLoop() {
  int64_t delivered_revision = 0;
  size_t delivered_watchers = 0;
  while (true) {
    std::vector<std::pair<std::shared_ptr<Watcher>, std::vector<WatchEvent>>> work;
    std::vector<std::pair<std::shared_ptr<Watcher>, absl::Status>> ended;
    bool closing;
    {
      absl::MutexLock lock(&watch_mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(watch_mu_) {
        return watch_closing_ || history_revision_ != delivered_revision ||
               watchers_.size() != delivered_watchers;
      };
      watch_mu_.Await(absl::Condition(&ready));
      closing = watch_closing_;
      std::vector<std::shared_ptr<Watcher>> live;
      for (std::shared_ptr<Watcher>& w : watchers_) {
        {
          absl::MutexLock wlock(&w->mu);
          if (w->cancelled) continue;
        }
        if (closing) {
          ended.emplace_back(w, Closed());
          continue;
        }
        if (w->next_revision <= compacted_revision_) {
          ended.emplace_back(w, absl::OutOfRangeError(
                                    "watch fell behind the kept history; read again and rewatch"));
          continue;
        }
        if (w->next_revision <= history_revision_) {
          auto it = std::lower_bound(
              history_.begin(), history_.end(), w->next_revision,
              [](const WatchEvent& ev, int64_t rev) { return ev.kv.mod_revision < rev; });
          std::vector<WatchEvent> events;
          for (; it != history_.end(); ++it) {
            if (absl::StartsWith(it->kv.key, w->prefix)) events.push_back(*it);
          }
          w->next_revision = history_revision_ + 1;
          if (!events.empty()) work.emplace_back(w, std::move(events));
        }
        live.push_back(std::move(w));
      }
      watchers_ = std::move(live);
      delivered_revision = history_revision_;
      delivered_watchers = watchers_.size();
    }
    for (auto& [w, events] : work) {
      {
        absl::MutexLock wlock(&w->mu);
        if (w->cancelled) continue;
        w->delivering = true;
      }
      w->on_events(events);
      absl::MutexLock wlock(&w->mu);
      w->delivering = false;
    }
    for (auto& [w, status] : ended) {
      {
        absl::MutexLock wlock(&w->mu);
        if (w->cancelled) continue;
        w->delivering = true;
      }
      if (w->on_error) w->on_error(status);
      absl::MutexLock wlock(&w->mu);
      w->delivering = false;
      w->cancelled = true;
    }
    if (closing) return;
  }
}

}  // namespace fleet
