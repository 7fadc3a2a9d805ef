#pragma once

// Transactions whose outcome is unknown, and how to find it out.
//
// A store that sent a write and then lost the answer (a connection broke, a
// deadline passed, the etcd member that took the proposal died) cannot say
// whether the write was applied. It fails such a call UNAVAILABLE and marks
// the status with OutcomeUnknown(), so that a caller can tell it apart from
// "nothing was sent" (also UNAVAILABLE, safe to send again as is).
//
// ResolveOutcome() finds the outcome of such a Transaction by reading its
// keys back, and completes it when it was not applied. It relies on one
// property of a transaction: applying it again while its compares hold is
// what the caller asked for in the first place. So:
//   - the compares hold now: whether or not the first send was applied, the
//     transaction is sent once more and its result is the answer. (Either the
//     first send was lost, or it was applied and left its own compares true,
//     so applying its puts and deletes again leaves the same values.) When
//     that second send fails on its compares, the first may have been applied
//     after the read (etcd applies a proposal it had read before it stopped
//     answering): the keys are read again, and "applied" (below) is the
//     answer when they say so.
//   - the compares fail now, and every key put holds the value (and lease)
//     written, all with one mod revision, and every key deleted is absent:
//     the first send was applied (at that mod revision; a transaction that
//     only deletes counts as applied at the revision of the read: no revision
//     proves the deletes were its own, but the keys are gone as it asked).
//   - otherwise the keys changed under the transaction: it fails as a
//     transaction whose compares failed (succeeded = false).
// A transaction with on_failure operations or a prefix delete is not resolved
// (which branch ran, or what was under the prefix, cannot be told from its
// keys): the unknown-outcome error is returned.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/store/store.h"

namespace fleet {

// An UNAVAILABLE status marked "the write may or may not have been applied".
absl::Status OutcomeUnknownError(absl::string_view message);
bool IsOutcomeUnknown(const absl::Status& status);

// Whether `c` holds for `kv` (nullptr = the key is missing), by etcd's rules.
// `Record` is a KeyValue or a store's own record of a key: anything with
// KeyValue's value, version, create_revision, mod_revision and lease.
template <typename Record>
bool CompareHolds(const Compare& c, const Record* kv) {
  int64_t actual = 0;
  int cmp = 0;  // actual <=> c's operand
  switch (c.target) {
    case Compare::Target::kValue:
      cmp = (kv ? absl::string_view(kv->value) : absl::string_view()).compare(c.value);
      break;
    case Compare::Target::kVersion:
      actual = kv ? kv->version : 0;
      break;
    case Compare::Target::kCreateRevision:
      actual = kv ? kv->create_revision : 0;
      break;
    case Compare::Target::kModRevision:
      actual = kv ? kv->mod_revision : 0;
      break;
    case Compare::Target::kLease:
      actual = kv ? kv->lease : 0;
      break;
  }
  if (c.target != Compare::Target::kValue) cmp = actual < c.number ? -1 : actual > c.number ? 1 : 0;
  switch (c.result) {
    case Compare::Result::kEqual:
      return cmp == 0;
    case Compare::Result::kNotEqual:
      return cmp != 0;
    case Compare::Result::kLess:
      return cmp < 0;
    case Compare::Result::kGreater:
      return cmp > 0;
  }
  return false;
}

// The pure decision of ResolveOutcome(), on the keys of `txn` as they are now
// (a key absent from `now` is missing from the store) read at store revision
// `read_revision`.
struct TxnOutcome {
  enum class Kind { kSendAgain, kApplied, kFailed, kUnknown };
  Kind kind = Kind::kUnknown;
  int64_t revision = 0;  // kApplied, kFailed: the TxnResult's revision
};
TxnOutcome DecideOutcome(const Transaction& txn,
                         const absl::flat_hash_map<std::string, KeyValue>& now,
                         int64_t read_revision);

// Reads the keys of `txn` from `store` (each once), decides as above and sends
// `txn` once more when its compares hold. `unknown` is the status of the first
// send; it is returned when the keys cannot be read or the transaction cannot
// be settled from its keys (on_failure operations, a prefix delete), without
// reading anything in the second case.
absl::StatusOr<TxnResult> ResolveOutcome(Store& store, const Transaction& txn,
                                         const absl::Status& unknown);

}  // namespace fleet
