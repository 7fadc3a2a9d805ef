#pragma once

// The Store seam: an ordered key-value store with revisions, shaped on etcd
// v3's semantics so that EmbeddedStore (engine/store/embedded_store.h) and
// EtcdStore behave the same for the engine.
//
// Revisions: every successful write (Put, Delete, Txn with at least one write)
// bumps the store's revision by one; all keys written by one call share that
// revision. Reads return the revision they saw.
//
// Status codes: UNAVAILABLE = the store cannot be reached now (retry);
// ABORTED is never returned by a Txn (a failed compare is `succeeded=false`);
// OUT_OF_RANGE from Watch = the asked revision was compacted (re-read, then
// watch from the revision of that read); INVALID_ARGUMENT = bad request.
// All methods are thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet {

using LeaseId = int64_t;  // 0 = no lease

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // number of writes since creation, 1 for a new key
  LeaseId lease = 0;

  bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // store revision at the time of the read
  bool more = false;     // true when `limit` cut the result
};

// A condition of a transaction, as in etcd: compares one field of one key.
// A missing key has value "", and all revisions and version 0.
struct Compare {
  enum class Target { kValue, kVersion, kCreateRevision, kModRevision, kLease };
  enum class Result { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kModRevision;
  Result result = Result::kEqual;
  std::string value;   // for kValue
  int64_t number = 0;  // for every other target
};

struct Operation {
  enum class Kind { kPut, kDelete, kDeletePrefix };
  Kind kind = Kind::kPut;
  std::string key;  // the key, or the prefix for kDeletePrefix
  std::string value;
  LeaseId lease = 0;
};

struct Transaction {
  std::vector<Compare> compares;      // all must hold ...
  std::vector<Operation> on_success;  // ... to apply these,
  std::vector<Operation> on_failure;  // else these.
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // store revision after the transaction
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the delete's revision)
};

// Cancels its watch when destroyed; after the destructor returns the callback
// is not running and will not run again.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // One key. NOT_FOUND when absent.
  virtual absl::StatusOr<KeyValue> Get(const std::string& key) = 0;

  // Keys starting with `prefix`, in key order, starting at `start_after`
  // (exclusive; empty = from the first), at most `limit` (0 = no limit).
  virtual absl::StatusOr<RangeResult> Range(const std::string& prefix,
                                            const std::string& start_after = "",
                                            int64_t limit = 0) = 0;

  // Returns the revision of the write.
  virtual absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                                      LeaseId lease = 0) = 0;
  // Returns the revision of the write; a missing key is not an error and
  // returns the current revision.
  virtual absl::StatusOr<int64_t> Delete(const std::string& key) = 0;

  virtual absl::StatusOr<TxnResult> Txn(const Transaction& txn) = 0;

  // Calls `on_events` with every change of a key under `prefix` with a
  // revision >= `from_revision`, in revision order, batched; events of one
  // revision are never split across calls. `from_revision` = 0 means "changes
  // after now". The callback runs on a store thread; it must not block long.
  // `on_error` is called at most once if the watch ends (store closed or
  // unreachable); it is not called when the handle is destroyed.
  using EventsCallback = std::function<void(const std::vector<WatchEvent>&)>;
  using ErrorCallback = std::function<void(const absl::Status&)>;
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(const std::string& prefix,
                                                             int64_t from_revision,
                                                             EventsCallback on_events,
                                                             ErrorCallback on_error) = 0;

  // Leases: keys put with a lease are deleted when it expires or is revoked.
  virtual absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) = 0;
  // Renews the lease for its ttl. NOT_FOUND when it expired or never existed.
  virtual absl::Status KeepAlive(LeaseId lease) = 0;
  virtual absl::Status RevokeLease(LeaseId lease) = 0;
};

}  // namespace fleet
