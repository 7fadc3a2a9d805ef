#include "engine/etcd_leadership.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "fleet/v1/store.pb.h"

namespace fleet {

absl::StatusOr<std::unique_ptr<EtcdLeadership>> EtcdLeadership::Create(
    Store* store, EtcdLeadershipOptions options) {
  if (store == nullptr) return absl::InvalidArgumentError("leadership: no store");
  if (options.clock == nullptr) return absl::InvalidArgumentError("leadership: no clock");
  if (options.engine_id.empty()) return absl::InvalidArgumentError("leadership: empty engine id");
  if (options.address.empty()) return absl::InvalidArgumentError("leadership: empty address");
  if (options.prefix.empty()) return absl::InvalidArgumentError("leadership: empty key prefix");
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("leadership: ttl %s is below 1s (etcd leases count whole seconds)",
                        absl::FormatDuration(options.ttl)));
  }
  if (options.margin < absl::ZeroDuration()) options.margin = options.ttl / 5;
  if (options.margin >= options.ttl / 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("leadership: margin %s must be below half the ttl %s",
                        absl::FormatDuration(options.margin), absl::FormatDuration(options.ttl)));
  }
  return std::unique_ptr<EtcdLeadership>(new EtcdLeadership(store, std::move(options)));
}

EtcdLeadership::EtcdLeadership(Store* store, EtcdLeadershipOptions options)
    : store_(store), options_(std::move(options)), address_(options_.address) {}

void EtcdLeadership::SetAddress(std::string address) {
  absl::MutexLock lock(&step_mu_);
  address_ = std::move(address);
}

EtcdLeadership::~EtcdLeadership() { (void)Resign(); }

void EtcdLeadership::Start() {
  runner_ = std::thread([this] { Run(); });
}

void EtcdLeadership::Run() {
  while (true) {
    absl::Status s = Step();
    if (!s.ok()) LogDebug("leadership %s: %s", options_.engine_id, s.ToString());
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    absl::Duration wait = next_step_ - options_.clock->Now();
    if (wait > absl::ZeroDuration()) {
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return wake_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
    }
    if (stopping_) return;
  }
}

absl::Status EtcdLeadership::Step() {
  absl::MutexLock step(&step_mu_);
  if (resigned_) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    wake_ = false;
  }
  absl::Status last;
  auto note = [&last](absl::Status s) {
    if (!s.ok()) last = std::move(s);
  };
  RevokeAbandoned();
  note(EnsureWatch());
  note(KeepAliveIfDue());
  bool campaigning;
  {
    absl::MutexLock lock(&mu_);
    campaigning = lease_ != 0;
  }
  if (!campaigning) note(Campaign());
  note(ReadCandidates());
  ReportChange();

  const absl::Time now = options_.clock->Now();
  absl::Time next = now + options_.ttl / 3;
  if (!last.ok()) next = std::min(next, now + options_.ttl / 10);
  absl::MutexLock lock(&mu_);
  if (lease_ != 0) next = std::min({next, next_keepalive_, deadline_});
  next_step_ = next;
  last_error_ = last.ok() ? "" : std::string(last.message());
  return last;
}

absl::Status EtcdLeadership::EnsureWatch() {
  bool broken;
  {
    absl::MutexLock lock(&mu_);
    broken = watch_broken_;
    watch_broken_ = false;
  }
  if (broken) watch_.reset();
  if (watch_ != nullptr) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = store_->Watch(
      options_.prefix, /*from_revision=*/0,
      [this](const std::vector<WatchEvent>&) {
        absl::MutexLock lock(&mu_);
        wake_ = true;
      },
      [this](const absl::Status&) {
        absl::MutexLock lock(&mu_);
        watch_broken_ = true;
        wake_ = true;
      });
  if (!watch.ok()) return watch.status();
  watch_ = std::move(*watch);
  return absl::OkStatus();
}

absl::Status EtcdLeadership::Campaign() {
  // The lease's TTL starts at the store after this moment.
  const absl::Time sent = options_.clock->Now();
  absl::StatusOr<LeaseId> lease = store_->GrantLease(options_.ttl);
  if (!lease.ok()) return lease.status();
  const std::string key = absl::StrFormat("%s%016x", options_.prefix, *lease);
  fleet::v1::LeaderRecord record;
  record.set_engine_id(options_.engine_id);
  record.set_address(address_);
  Compare absent;  // the key does not exist yet
  absent.key = key;
  absent.target = Compare::Target::kCreateRevision;
  absent.result = Compare::Result::kEqual;
  absent.number = 0;
  Operation put;
  put.kind = Operation::Kind::kPut;
  put.key = key;
  put.value = record.SerializeAsString();
  put.lease = *lease;
  Transaction txn;
  txn.compares.push_back(std::move(absent));
  txn.on_success.push_back(std::move(put));
  absl::StatusOr<TxnResult> result = store_->Txn(txn);
  if (!result.ok() || !result->succeeded) {
    // The key may or may not exist; revoking the lease removes it either way.
    abandoned_.push_back(*lease);
    RevokeAbandoned();
    if (!result.ok()) return result.status();
    return absl::InternalError(absl::StrFormat("leadership: candidate key %s exists already", key));
  }
  absl::MutexLock lock(&mu_);
  lease_ = *lease;
  key_ = key;
  create_revision_ = result->revision;
  deadline_ = sent + options_.ttl - options_.margin;
  next_keepalive_ = sent + options_.ttl / 3;
  return absl::OkStatus();
}

absl::Status EtcdLeadership::KeepAliveIfDue() {
  const absl::Time now = options_.clock->Now();
  LeaseId lease;
  absl::Time deadline;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
    deadline = deadline_;
  }
  if (lease == 0) return absl::OkStatus();
  if (now >= deadline) {
    Abandon(absl::DeadlineExceededError(absl::StrFormat(
        "leadership: no successful keep-alive of lease %016x for %s (ttl %s, margin %s)", lease,
        absl::FormatDuration(now - (deadline - options_.ttl + options_.margin)),
        absl::FormatDuration(options_.ttl), absl::FormatDuration(options_.margin))));
    return absl::OkStatus();
  }
  if (now < next_keepalive_) return absl::OkStatus();
  absl::Status s = store_->KeepAlive(lease);
  if (s.ok()) {
    next_keepalive_ = now + options_.ttl / 3;
    absl::MutexLock lock(&mu_);
    deadline_ = now + options_.ttl - options_.margin;
    return absl::OkStatus();
  }
  if (absl::IsNotFound(s)) {
    Abandon(absl::NotFoundError(absl::StrFormat(
        "leadership: lease %016x expired or was revoked at the store: %s", lease, s.message())));
    return absl::OkStatus();
  }
  next_keepalive_ = now + options_.ttl / 10;  // retry soon; the deadline stays
  return s;
}

absl::Status EtcdLeadership::ReadCandidates() {
  absl::StatusOr<RangeResult> range = store_->Range(options_.prefix);
  if (!range.ok()) return range.status();
  const KeyValue* lowest = nullptr;
  const KeyValue* mine = nullptr;
  std::string key;
  int64_t create_revision;
  {
    absl::MutexLock lock(&mu_);
    key = key_;
    create_revision = create_revision_;
  }
  for (const KeyValue& kv : range->kvs) {
    // Our own abandoned keys whose revocation has not gone through yet lead nobody.
    if (std::find(abandoned_.begin(), abandoned_.end(), kv.lease) != abandoned_.end()) continue;
    if (lowest == nullptr || kv.create_revision < lowest->create_revision) lowest = &kv;
    if (!key.empty() && kv.key == key) mine = &kv;
  }
  if (!key.empty() && (mine == nullptr || mine->create_revision != create_revision)) {
    Abandon(absl::NotFoundError(
        absl::StrFormat("leadership: our candidate key %s is gone at revision %d (lease expired "
                        "or revoked)",
                        key, range->revision)));
    if (lowest != nullptr && lowest->key == key) lowest = nullptr;
  }
  std::string address;
  if (lowest != nullptr) {
    fleet::v1::LeaderRecord record;
    if (record.ParseFromString(lowest->value)) address = record.address();
  }
  absl::MutexLock lock(&mu_);
  leader_key_ = lowest != nullptr ? lowest->key : "";
  leader_address_ = std::move(address);
  return absl::OkStatus();
}

void EtcdLeadership::Abandon(const absl::Status& why) {
  {
    absl::MutexLock lock(&mu_);
    if (lease_ == 0) return;
    abandoned_.push_back(lease_);
    if (leader_key_ == key_) {
      leader_key_.clear();  // it was us; who leads now is unknown until the next read
      leader_address_.clear();
    }
    lease_ = 0;
    key_.clear();
    create_revision_ = 0;
  }
  lost_reason_ = why;
  RevokeAbandoned();
}

void EtcdLeadership::RevokeAbandoned() {
  std::vector<LeaseId> left;
  for (LeaseId lease : abandoned_) {
    absl::Status s = store_->RevokeLease(lease);
    if (!s.ok() && !absl::IsNotFound(s)) left.push_back(lease);
  }
  abandoned_ = std::move(left);
}

void EtcdLeadership::ReportChange() {
  const bool leading = IsLeader();
  if (leading == reported_leading_) return;
  reported_leading_ = leading;
  absl::Status why;
  if (!leading) {
    why = lost_reason_.ok() ? absl::DeadlineExceededError("leadership: local lease deadline passed")
                            : lost_reason_;
  }
  lost_reason_ = absl::OkStatus();
  if (options_.on_change) options_.on_change(leading, why);
}

absl::Status EtcdLeadership::Resign() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (runner_.joinable()) runner_.join();
  absl::MutexLock step(&step_mu_);
  if (resigned_) return absl::OkStatus();
  resigned_ = true;
  watch_.reset();
  LeaseId lease;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
    lease_ = 0;
    key_.clear();
    create_revision_ = 0;
    leader_key_.clear();
    leader_address_.clear();
  }
  absl::Status s;
  if (lease != 0) {
    s = store_->RevokeLease(lease);
    if (absl::IsNotFound(s)) s = absl::OkStatus();
  }
  RevokeAbandoned();
  if (reported_leading_) {
    reported_leading_ = false;
    if (options_.on_change) options_.on_change(false, absl::OkStatus());
  }
  return s;
}

bool EtcdLeadership::IsLeaderLocked() const {
  return lease_ != 0 && !key_.empty() && leader_key_ == key_ && options_.clock->Now() < deadline_;
}

bool EtcdLeadership::IsLeader() const {
  absl::MutexLock lock(&mu_);
  return IsLeaderLocked();
}

std::string EtcdLeadership::LeaderAddress() const {
  absl::MutexLock lock(&mu_);
  if (!key_.empty() && leader_key_ == key_ && !IsLeaderLocked()) return "";
  return leader_address_;
}

std::string EtcdLeadership::NoLeaderReason() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

absl::StatusOr<std::vector<Compare>> EtcdLeadership::WriteGuard() const {
  std::optional<Compare> guard = LeaderGuard();
  if (!guard.has_value()) return absl::UnavailableError("this engine is not the leader");
  return std::vector<Compare>{*std::move(guard)};
}

std::optional<Compare> EtcdLeadership::LeaderGuard() const {
  absl::MutexLock lock(&mu_);
  if (!IsLeaderLocked()) return std::nullopt;
  Compare guard;
  guard.key = key_;
  guard.target = Compare::Target::kCreateRevision;
  guard.result = Compare::Result::kEqual;
  guard.number = create_revision_;
  return guard;
}

std::string EtcdLeadership::candidate_key() const {
  absl::MutexLock lock(&mu_);
  return key_;
}

}  // namespace fleet
