#include "engine/store/txn_outcome.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace fleet {
namespace {

// The status payload that marks an unknown outcome (absl::Status payloads are
// keyed by a type URL).
constexpr absl::string_view kOutcomeUnknownUrl = "fleet.store/outcome-unknown";

const KeyValue* Find(const absl::flat_hash_map<std::string, KeyValue>& now,
                     const std::string& key) {
  auto it = now.find(key);
  return it == now.end() ? nullptr : &it->second;
}

// A transaction whose keys can tell whether it was applied: no operations on
// failure (the keys cannot tell which branch ran) and no prefix delete (its
// keys are not named).
bool Resolvable(const Transaction& txn) {
  return txn.on_failure.empty() &&
         std::none_of(txn.on_success.begin(), txn.on_success.end(),
                      [](const Operation& op) { return op.kind == Operation::Kind::kDeletePrefix; });
}

}  // namespace

absl::Status OutcomeUnknownError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kOutcomeUnknownUrl, absl::Cord());
  return status;
}

bool IsOutcomeUnknown(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.GetPayload(kOutcomeUnknownUrl).has_value();
}

TxnOutcome DecideOutcome(const Transaction& txn,
                         const absl::flat_hash_map<std::string, KeyValue>& now,
                         int64_t read_revision) {
  if (!Resolvable(txn)) return {TxnOutcome::Kind::kUnknown, 0};
  const bool compares_hold =
      std::all_of(txn.compares.begin(), txn.compares.end(),
                  [&now](const Compare& c) { return CompareHolds(c, Find(now, c.key)); });
  if (compares_hold) return {TxnOutcome::Kind::kSendAgain, 0};

  int64_t applied_at = 0;  // the one mod revision of every key put
  for (const Operation& op : txn.on_success) {
    const KeyValue* kv = Find(now, op.key);
    const bool as_written = op.kind == Operation::Kind::kPut
                                ? kv != nullptr && kv->value == op.value && kv->lease == op.lease &&
                                      (applied_at == 0 || kv->mod_revision == applied_at)
                                : kv == nullptr;
    if (!as_written) return {TxnOutcome::Kind::kFailed, read_revision};
    if (op.kind == Operation::Kind::kPut) applied_at = kv->mod_revision;
  }
  return {TxnOutcome::Kind::kApplied, applied_at != 0 ? applied_at : read_revision};
}

absl::StatusOr<TxnResult> ResolveOutcome(Store& store, const Transaction& txn,
                                         const absl::Status& unknown) {
  if (!Resolvable(txn)) return unknown;
  // What the keys of `txn` say now; nullopt when the store cannot be read.
  auto decide = [&store, &txn]() -> std::optional<TxnOutcome> {
    absl::flat_hash_map<std::string, KeyValue> now;
    absl::flat_hash_set<std::string> read_keys;  // a key compared and written is read once
    int64_t read_revision = 0;
    // Range(key, "", 1) is the key itself when it exists (no longer key with
    // that prefix sorts before it), and tells the store revision when it does not.
    auto read = [&](const std::string& key) -> bool {
      if (!read_keys.insert(key).second) return true;
      absl::StatusOr<RangeResult> range = store.Range(key, "", 1);
      if (!range.ok()) return false;
      read_revision = std::max(read_revision, range->revision);
      if (!range->kvs.empty() && range->kvs[0].key == key) now.insert_or_assign(key, range->kvs[0]);
      return true;
    };
    for (const Compare& c : txn.compares) {
      if (!read(c.key)) return std::nullopt;
    }
    for (const Operation& op : txn.on_success) {
      if (!read(op.key)) return std::nullopt;
    }
    return DecideOutcome(txn, now, read_revision);
  };
  std::optional<TxnOutcome> outcome = decide();
  if (!outcome.has_value()) return unknown;
  if (outcome->kind == TxnOutcome::Kind::kSendAgain) {
    absl::StatusOr<TxnResult> again = store.Txn(txn);
    if (!again.ok() || again->succeeded) return again;
    // Its compares failed this time: the first send may have been applied
    // after the read (etcd applies a proposal it had read before it stopped
    // answering). Read again; the compares no longer hold, so this tells
    // applied from failed.
    outcome = decide();
    if (!outcome.has_value() || outcome->kind != TxnOutcome::Kind::kApplied) return again;
  }
  switch (outcome->kind) {
    case TxnOutcome::Kind::kApplied:
      return TxnResult{.succeeded = true, .revision = outcome->revision};
    case TxnOutcome::Kind::kFailed:
      return TxnResult{.succeeded = false, .revision = outcome->revision};
    case TxnOutcome::Kind::kSendAgain:
    case TxnOutcome::Kind::kUnknown:
      break;
  }
  return unknown;
}

}  // namespace fleet
