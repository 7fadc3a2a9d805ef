#include "engine/store/etcd_store.h"

#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/store/txn_outcome.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fleet {
namespace etcd_internal {

struct Member {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
};

// One watch: what it watches, its callbacks, and the state its thread, its
// handle and the store share. The watch thread alone touches next_revision.
struct WatchState {
  std::string key;
  std::string range_end;
  Store::EventsCallback on_events;
  Store::ErrorCallback on_error;
  int64_t next_revision = 0;

  absl::Mutex mu;
  bool cancelled ABSL_GUARDED_BY(mu) = false;    // the handle was destroyed
  bool closing ABSL_GUARDED_BY(mu) = false;      // the store is being destroyed
  bool in_callback ABSL_GUARDED_BY(mu) = false;  // a callback runs now
  bool started ABSL_GUARDED_BY(mu) = false;      // etcd confirmed, or the start failed
  bool finished ABSL_GUARDED_BY(mu) = false;     // the thread is about to return
  absl::Status start_status ABSL_GUARDED_BY(mu);
  std::shared_ptr<grpc::ClientContext> context ABSL_GUARDED_BY(mu);  // of the open stream
  std::thread::id thread_id ABSL_GUARDED_BY(mu);

  absl::Mutex join_mu;
  std::thread thread ABSL_GUARDED_BY(join_mu);

  // Joins the thread unless called on it; whoever comes first joins.
  void Join() {
    absl::MutexLock lock(&join_mu);
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
};

}  // namespace etcd_internal

namespace {

using etcd_internal::Member;
using etcd_internal::WatchState;

constexpr int64_t kFramingBytes = 1024;  // etcd wraps a request before it checks the size
constexpr int kGuardedTxnAttempts = 10;

// The first key after every key starting with `prefix` (etcd's prefix range
// end); "\0" (= no end) when there is none.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// [key, range_end) of a prefix; the empty prefix is every key.
std::pair<std::string, std::string> PrefixRange(const std::string& prefix) {
  if (prefix.empty()) return {std::string(1, '\0'), std::string(1, '\0')};
  return {prefix, PrefixEnd(prefix)};
}

KeyValue FromEtcd(const mvccpb::KeyValue& kv) {
  return KeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(),
                  kv.lease()};
}

absl::StatusCode CodeOf(const grpc::Status& status) {
  return static_cast<absl::StatusCode>(status.error_code());
}

// A request that etcd refused before proposing it: safe to send elsewhere.
bool NotApplied(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         status.error_message() == "etcdserver: no leader";
}

etcdserverpb::Compare ToEtcd(const Compare& c) {
  etcdserverpb::Compare out;
  out.set_key(c.key);
  switch (c.result) {
    case Compare::Result::kEqual:
      out.set_result(etcdserverpb::Compare::EQUAL);
      break;
    case Compare::Result::kNotEqual:
      out.set_result(etcdserverpb::Compare::NOT_EQUAL);
      break;
    case Compare::Result::kLess:
      out.set_result(etcdserverpb::Compare::LESS);
      break;
    case Compare::Result::kGreater:
      out.set_result(etcdserverpb::Compare::GREATER);
      break;
  }
  switch (c.target) {
    case Compare::Target::kValue:
      out.set_target(etcdserverpb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case Compare::Target::kVersion:
      out.set_target(etcdserverpb::Compare::VERSION);
      out.set_version(c.number);
      break;
    case Compare::Target::kCreateRevision:
      out.set_target(etcdserverpb::Compare::CREATE);
      out.set_create_revision(c.number);
      break;
    case Compare::Target::kModRevision:
      out.set_target(etcdserverpb::Compare::MOD);
      out.set_mod_revision(c.number);
      break;
    case Compare::Target::kLease:
      out.set_target(etcdserverpb::Compare::LEASE);
      out.set_lease(c.number);
      break;
  }
  return out;
}

// Whether a value compare holds for a missing key, whose value is "" by the seam.
bool HoldsForEmpty(const Compare& c) {
  switch (c.result) {
    case Compare::Result::kEqual:
      return c.value.empty();
    case Compare::Result::kNotEqual:
    case Compare::Result::kLess:
      return !c.value.empty();
    case Compare::Result::kGreater:
      return false;
  }
  return false;
}

etcdserverpb::RequestOp ToEtcd(const Operation& op) {
  etcdserverpb::RequestOp out;
  switch (op.kind) {
    case Operation::Kind::kPut: {
      etcdserverpb::PutRequest* put = out.mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case Operation::Kind::kDelete:
      out.mutable_request_delete_range()->set_key(op.key);
      break;
    case Operation::Kind::kDeletePrefix: {
      auto [key, end] = PrefixRange(op.key);
      out.mutable_request_delete_range()->set_key(key);
      out.mutable_request_delete_range()->set_range_end(end);
      break;
    }
  }
  return out;
}

std::string StripScheme(const std::string& endpoint) {
  for (absl::string_view scheme : {"http://", "https://"}) {
    if (absl::StartsWith(endpoint, scheme)) return endpoint.substr(scheme.size());
  }
  return endpoint;
}

class EtcdWatchHandle final : public WatchHandle {
 public:
  explicit EtcdWatchHandle(std::shared_ptr<WatchState> state) : state_(std::move(state)) {}
  ~EtcdWatchHandle() override {
    bool own_thread = false;
    {
      absl::MutexLock lock(&state_->mu);
      state_->cancelled = true;
      if (state_->context) state_->context->TryCancel();
      own_thread = state_->thread_id == std::this_thread::get_id();
      // From its own callback the callback is running: it is ours, do not wait.
      if (!own_thread) {
        WatchState* s = state_.get();
        auto idle = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return !s->in_callback; };
        state_->mu.Await(absl::Condition(&idle));
      }
    }
    if (!own_thread) state_->Join();
  }

 private:
  std::shared_ptr<WatchState> state_;
};

// Runs a callback of `w` unless the watch was cancelled; false when it was.
template <typename F>
bool RunCallback(WatchState& w, F f) {
  {
    absl::MutexLock lock(&w.mu);
    if (w.cancelled || w.closing) return false;
    w.in_callback = true;
  }
  f();
  absl::MutexLock lock(&w.mu);
  w.in_callback = false;
  return true;
}

}  // namespace

EtcdStore::EtcdStore(EtcdStoreOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(EtcdStoreOptions options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("etcd store: no endpoints given");
  for (std::string& endpoint : options.endpoints) {
    endpoint = StripScheme(endpoint);
    if (endpoint.empty() || endpoint.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd store: endpoint \"", endpoint, "\" is not HOST:PORT"));
    }
  }
  if (options.request_timeout <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd store: request_timeout and connect_timeout must be > 0");
  }
  if (options.range_page_keys <= 0 || options.max_request_bytes <= 2 * kFramingBytes ||
      options.max_txn_ops <= 0) {
    return absl::InvalidArgumentError(
        "etcd store: range_page_keys and max_txn_ops must be > 0, max_request_bytes > 2048");
  }
  std::unique_ptr<EtcdStore> store(new EtcdStore(std::move(options)));
  store->endpoints_text_ = absl::StrJoin(store->options_.endpoints, ",");
  std::shared_ptr<grpc::ChannelCredentials> credentials = store->options_.credentials;
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  for (const std::string& endpoint : store->options_.endpoints) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);  // a Range page of large values; etcd bounds it
    args.SetMaxSendMessageSize(-1);     // CheckSize bounds what we send
    // A restarted member is used again within a second.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // Detects a dead member under a quiet watch; etcd allows pings every 5 s.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    auto member = std::make_unique<Member>();
    member->address = endpoint;
    member->channel = grpc::CreateCustomChannel(endpoint, credentials, args);
    member->kv = etcdserverpb::KV::NewStub(member->channel);
    member->watch = etcdserverpb::Watch::NewStub(member->channel);
    member->lease = etcdserverpb::Lease::NewStub(member->channel);
    store->members_.push_back(std::move(member));
  }
  store->connectivity_thread_ = std::thread([raw = store.get()] { raw->WatchConnectivity(); });
  return store;
}

namespace {
// How long one state watch lasts before it is renewed; bounds how long the
// destructor waits for the connectivity thread.
constexpr absl::Duration kConnectivityWatchSlice = absl::Milliseconds(200);
}  // namespace

void EtcdStore::WatchConnectivity() {
  auto watch = [this](Member& member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(connectivity_mu_) {
    // try_to_connect: an idle channel (never used, or its connection closed)
    // starts connecting now rather than on the next call.
    member.channel->NotifyOnStateChange(member.channel->GetState(/*try_to_connect=*/true),
                                        absl::ToChronoTime(absl::Now() + kConnectivityWatchSlice),
                                        &connectivity_cq_, &member);
  };
  {
    absl::MutexLock lock(&connectivity_mu_);
    if (!stopping_) {
      for (const auto& member : members_) watch(*member);
    }
  }
  void* tag = nullptr;
  bool changed = false;
  while (connectivity_cq_.Next(&tag, &changed)) {
    absl::MutexLock lock(&connectivity_mu_);
    if (!stopping_) watch(*static_cast<Member*>(tag));
  }
}

EtcdStore::~EtcdStore() {
  std::vector<std::shared_ptr<WatchState>> watches;
  {
    absl::MutexLock lock(&watch_mu_);
    watches.swap(watches_);
  }
  for (const auto& w : watches) {
    absl::MutexLock lock(&w->mu);
    w->closing = true;
    if (w->context) w->context->TryCancel();
  }
  for (const auto& w : watches) w->Join();
  // Pending state watches end within kConnectivityWatchSlice; then Next()
  // returns false.
  {
    absl::MutexLock lock(&connectivity_mu_);
    stopping_ = true;
    connectivity_cq_.Shutdown();
  }
  connectivity_thread_.join();
}

bool EtcdStore::Connected(Member& member, bool wait_in_failure) const {
  absl::Time deadline = absl::Now() + options_.connect_timeout;
  grpc_connectivity_state state = member.channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && !wait_in_failure) return false;
    if (!member.channel->WaitForStateChange(state, absl::ToChronoTime(deadline))) return false;
    state = member.channel->GetState(/*try_to_connect=*/true);
  }
  return true;
}

template <typename Call>
absl::Status EtcdStore::Run(Retry retry, absl::string_view what, Call call) {
  const size_t n = members_.size();
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  std::vector<std::string> failures;
  // The first round skips members in TRANSIENT_FAILURE at once, so a dead
  // member costs nothing while another one answers. When none was usable,
  // one more round waits for them up to connect_timeout: a member that just
  // came back is reconnected within the channel's backoff (at most 1 s).
  bool wait_in_failure = false;
  while (true) {
    failures.clear();
    bool answered = false;  // a connected member failed in a way worth another round
    bool unconnected = false;
    const size_t first = preferred_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i) {
      const size_t index = (first + i) % n;
      Member& member = *members_[index];
      if (!Connected(member, wait_in_failure)) {
        unconnected = true;
        failures.push_back(absl::StrCat(member.address, ": not connected"));
        continue;
      }
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline));
      // Makes a member without a leader refuse at once (etcd's require-leader).
      context.AddMetadata("hasleader", "true");
      grpc::Status status = call(member, &context);
      if (status.ok()) {
        preferred_.store(index, std::memory_order_relaxed);
        return absl::OkStatus();
      }
      const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (!transient) {
        return absl::Status(CodeOf(status), absl::StrCat("etcd at ", member.address, ": ", what,
                                                         ": ", status.error_message()));
      }
      if (retry == Retry::kOnlyIfNotSent && !NotApplied(status)) {
        return OutcomeUnknownError(absl::StrCat("etcd at ", member.address, ": ", what,
                                                " may or may not have been applied: ",
                                                status.error_message()));
      }
      answered = true;
      failures.push_back(absl::StrCat(member.address, ": ", status.error_message()));
    }
    // Members that answer but cannot serve now are most likely electing a
    // leader (about a second): another round within the deadline hides that.
    // Members that are not connected at all are not waited for.
    constexpr absl::Duration kPause = absl::Milliseconds(100);
    if (!answered && unconnected && !wait_in_failure && absl::Now() < deadline) {
      wait_in_failure = true;
      continue;
    }
    if (!answered || absl::Now() + kPause >= deadline) break;
    absl::SleepFor(kPause);  // a retry pause: etcd announces no end of an election to us
  }
  return absl::UnavailableError(absl::StrCat("etcd at ", endpoints_text_, " unavailable (", what,
                                             "): ", absl::StrJoin(failures, "; ")));
}

absl::Status EtcdStore::CheckSize(size_t bytes, absl::string_view what) const {
  if (static_cast<int64_t>(bytes) + kFramingBytes <= options_.max_request_bytes) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s is %d bytes encoded; etcd at %s accepts requests up to %d bytes "
      "(--max-request-bytes) less %d bytes of framing",
      what, bytes, endpoints_text_, options_.max_request_bytes, kFramingBytes));
}

absl::StatusOr<int64_t> EtcdStore::CurrentRevision() {
  etcdserverpb::RangeRequest request;
  request.set_key("/");
  request.set_count_only(true);
  etcdserverpb::RangeResponse response;
  absl::Status status = Run(Retry::kAnyFailure, "read the revision",
                            [&](Member& m, grpc::ClientContext* c) {
                              return m.kv->Range(c, request, &response);
                            });
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<KeyValue> EtcdStore::Get(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("etcd store: empty key");
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  etcdserverpb::RangeResponse response;
  absl::Status status = Run(Retry::kAnyFailure, absl::StrCat("get ", key),
                            [&](Member& m, grpc::ClientContext* c) {
                              return m.kv->Range(c, request, &response);
                            });
  if (!status.ok()) return status;
  if (response.kvs_size() == 0) return absl::NotFoundError(absl::StrCat("key ", key, " not found"));
  return FromEtcd(response.kvs(0));
}

absl::StatusOr<RangeResult> EtcdStore::Range(const std::string& prefix,
                                             const std::string& start_after, int64_t limit) {
  if (limit < 0) return absl::InvalidArgumentError("etcd store: negative range limit");
  auto [first_key, end] = PrefixRange(prefix);
  if (!start_after.empty() && start_after >= first_key) {
    first_key = start_after + std::string(1, '\0');
  }
  // A compaction between two pages makes the first page's revision unreadable:
  // then the whole range is read again, at a newer revision.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<RangeResult> result = RangeFrom(prefix, first_key, end, limit);
    if (result.ok() || result.status().code() != absl::StatusCode::kOutOfRange ||
        attempt == kAttempts) {
      return result;
    }
  }
}

absl::StatusOr<RangeResult> EtcdStore::RangeFrom(const std::string& prefix, std::string key,
                                                 const std::string& end, int64_t limit) {
  RangeResult result;
  int64_t at_revision = 0;  // every page reads the revision of the first
  while (true) {
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    request.set_range_end(end);
    int64_t page = options_.range_page_keys;
    if (limit > 0) page = std::min(page, limit - static_cast<int64_t>(result.kvs.size()));
    request.set_limit(page);
    request.set_revision(at_revision);
    etcdserverpb::RangeResponse response;
    absl::Status status = Run(Retry::kAnyFailure, absl::StrCat("range ", prefix),
                              [&](Member& m, grpc::ClientContext* c) {
                                return m.kv->Range(c, request, &response);
                              });
    if (!status.ok()) return status;
    if (at_revision == 0) {
      at_revision = response.header().revision();
      result.revision = at_revision;
    }
    for (const mvccpb::KeyValue& kv : response.kvs()) result.kvs.push_back(FromEtcd(kv));
    if (!response.more() || response.kvs_size() == 0) {
      result.more = false;
      break;
    }
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) >= limit) {
      result.more = true;
      break;
    }
    key = result.kvs.back().key + std::string(1, '\0');
  }
  return result;
}

absl::StatusOr<int64_t> EtcdStore::Put(const std::string& key, const std::string& value,
                                       LeaseId lease) {
  if (key.empty()) return absl::InvalidArgumentError("etcd store: empty key");
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  std::string what = absl::StrCat("put ", key);
  if (absl::Status size = CheckSize(request.ByteSizeLong(), what); !size.ok()) return size;
  etcdserverpb::PutResponse response;
  absl::Status status = Run(Retry::kOnlyIfNotSent, what, [&](Member& m, grpc::ClientContext* c) {
    return m.kv->Put(c, request, &response);
  });
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<int64_t> EtcdStore::Delete(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("etcd store: empty key");
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(key);
  etcdserverpb::DeleteRangeResponse response;
  absl::Status status = Run(Retry::kOnlyIfNotSent, absl::StrCat("delete ", key),
                            [&](Member& m, grpc::ClientContext* c) {
                              return m.kv->DeleteRange(c, request, &response);
                            });
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdStore::SendTxn(
    const etcdserverpb::TxnRequest& request) {
  if (absl::Status size = CheckSize(request.ByteSizeLong(), "transaction"); !size.ok()) return size;
  etcdserverpb::TxnResponse response;
  absl::Status status = Run(Retry::kOnlyIfNotSent, "transaction",
                            [&](Member& m, grpc::ClientContext* c) {
                              return m.kv->Txn(c, request, &response);
                            });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<TxnResult> EtcdStore::Txn(const Transaction& txn) {
  for (auto [count, what] : {std::pair<size_t, const char*>{txn.compares.size(), "compares"},
                             {txn.on_success.size(), "success operations"},
                             {txn.on_failure.size(), "failure operations"}}) {
    if (static_cast<int64_t>(count) > options_.max_txn_ops) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "transaction has %d %s; etcd at %s allows at most %d per transaction (--max-txn-ops); "
          "split it into several transactions",
          count, what, endpoints_text_, options_.max_txn_ops));
    }
  }
  for (const Operation& op : txn.on_success) {
    if (op.key.empty() && op.kind != Operation::Kind::kDeletePrefix) {
      return absl::InvalidArgumentError("etcd store: empty key in transaction");
    }
  }
  for (const Operation& op : txn.on_failure) {
    if (op.key.empty() && op.kind != Operation::Kind::kDeletePrefix) {
      return absl::InvalidArgumentError("etcd store: empty key in transaction");
    }
  }
  etcdserverpb::TxnRequest request;
  for (const Operation& op : txn.on_success) *request.add_success() = ToEtcd(op);
  for (const Operation& op : txn.on_failure) *request.add_failure() = ToEtcd(op);

  // Value compares that hold for a missing key need the guard (class comment).
  std::vector<std::string> guarded;
  for (const Compare& c : txn.compares) {
    if (c.target == Compare::Target::kValue && HoldsForEmpty(c) &&
        std::find(guarded.begin(), guarded.end(), c.key) == guarded.end()) {
      guarded.push_back(c.key);
    }
  }
  if (guarded.empty()) {
    for (const Compare& c : txn.compares) *request.add_compare() = ToEtcd(c);
    absl::StatusOr<etcdserverpb::TxnResponse> response = SendTxn(request);
    if (!response.ok()) return response.status();
    return TxnResult{response->succeeded(), response->header().revision()};
  }
  for (int attempt = 0; attempt < kGuardedTxnAttempts; ++attempt) {
    std::vector<std::string> missing;
    etcdserverpb::TxnRequest outer;
    for (const std::string& key : guarded) {
      absl::StatusOr<KeyValue> kv = Get(key);
      if (!kv.ok() && kv.status().code() != absl::StatusCode::kNotFound) return kv.status();
      if (!kv.ok()) missing.push_back(key);
      Compare unchanged{key, Compare::Target::kModRevision, Compare::Result::kEqual, "",
                        kv.ok() ? kv->mod_revision : 0};
      *outer.add_compare() = ToEtcd(unchanged);
    }
    etcdserverpb::TxnRequest* inner = outer.add_success()->mutable_request_txn();
    *inner = request;
    for (const Compare& c : txn.compares) {
      bool holds_as_missing = c.target == Compare::Target::kValue && HoldsForEmpty(c) &&
                              std::find(missing.begin(), missing.end(), c.key) != missing.end();
      if (!holds_as_missing) *inner->add_compare() = ToEtcd(c);
    }
    absl::StatusOr<etcdserverpb::TxnResponse> response = SendTxn(outer);
    if (!response.ok()) return response.status();
    if (!response->succeeded()) continue;  // a guarded key changed since it was read
    if (response->responses_size() != 1 || !response->responses(0).has_response_txn()) {
      return absl::InternalError(absl::StrCat("etcd at ", endpoints_text_,
                                              ": transaction: unexpected answer to a nested txn"));
    }
    return TxnResult{response->responses(0).response_txn().succeeded(),
                     response->header().revision()};
  }
  return absl::UnavailableError(absl::StrCat("etcd at ", endpoints_text_, ": transaction: its keys "
                                         "kept changing while it was prepared; redo the read"));
}

absl::StatusOr<std::unique_ptr<WatchHandle>> EtcdStore::Watch(const std::string& prefix,
                                                              int64_t from_revision,
                                                              EventsCallback on_events,
                                                              ErrorCallback on_error) {
  if (from_revision < 0) return absl::InvalidArgumentError("etcd store: negative watch revision");
  auto [key, end] = PrefixRange(prefix);
  int64_t start = from_revision;
  if (start == 0) {
    absl::StatusOr<int64_t> now = CurrentRevision();
    if (!now.ok()) return now.status();
    start = *now + 1;
  } else {
    // A read at the start revision fails exactly when a watch from it would
    // (etcd compares both with its compacted revision), but at once.
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    request.set_range_end(end);
    request.set_revision(start);
    request.set_count_only(true);
    etcdserverpb::RangeResponse response;
    absl::Status status = Run(Retry::kAnyFailure, absl::StrCat("watch ", prefix),
                              [&](Member& m, grpc::ClientContext* c) {
                                return m.kv->Range(c, request, &response);
                              });
    if (status.code() == absl::StatusCode::kOutOfRange && absl::StrContains(status.message(), "compacted")) {
      return absl::OutOfRangeError(absl::StrCat(
          "watch ", prefix, " from revision ", start, ": ", status.message(),
          "; re-read and watch from that read's revision + 1"));
    }
    // OUT_OF_RANGE "future revision" is fine: the watch waits for it.
    if (!status.ok() && status.code() != absl::StatusCode::kOutOfRange) return status;
  }

  ReapWatches();
  auto w = std::make_shared<WatchState>();
  w->key = key;
  w->range_end = end;
  w->on_events = std::move(on_events);
  w->on_error = std::move(on_error);
  w->next_revision = start;
  {
    absl::MutexLock lock(&watch_mu_);
    watches_.push_back(w);
  }
  {
    absl::MutexLock lock(&w->join_mu);
    w->thread = std::thread([this, w] { WatchLoop(w); });
  }
  absl::Duration wait = options_.request_timeout +
                        options_.connect_timeout * static_cast<int64_t>(members_.size());
  absl::Status start_status;
  {
    absl::MutexLock lock(&w->mu);
    WatchState* s = w.get();
    auto started = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->started; };
    if (!w->mu.AwaitWithTimeout(absl::Condition(&started), wait)) {
      w->cancelled = true;
      if (w->context) w->context->TryCancel();
      start_status = absl::UnavailableError(absl::StrCat(
          "etcd at ", endpoints_text_, " unavailable: watch of ", prefix, " not confirmed within ",
          absl::FormatDuration(wait)));
    } else {
      start_status = w->start_status;
    }
  }
  if (!start_status.ok()) {
    w->Join();
    return start_status;
  }
  return std::make_unique<EtcdWatchHandle>(std::move(w));
}

void EtcdStore::WatchLoop(std::shared_ptr<WatchState> w) {
  {
    absl::MutexLock lock(&w->mu);
    w->thread_id = std::this_thread::get_id();
  }
  constexpr absl::Duration kFirstBackoff = absl::Milliseconds(50);
  constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = kFirstBackoff;
  size_t member_index = preferred_.load(std::memory_order_relaxed);
  absl::Status end;  // why the watch ended, when etcd ended it
  std::string last_failure;
  while (true) {
    {
      absl::MutexLock lock(&w->mu);
      if (w->cancelled || w->closing) break;
    }
    Member& member = *members_[member_index % members_.size()];
    bool confirmed = false;
    if (!Connected(member, /*wait_in_failure=*/false)) {
      last_failure = absl::StrCat(member.address, ": not connected");
    } else {
      auto context = std::make_shared<grpc::ClientContext>();
      context->AddMetadata("hasleader", "true");
      {
        absl::MutexLock lock(&w->mu);
        if (w->cancelled || w->closing) break;
        w->context = context;
      }
      auto stream = member.watch->Watch(context.get());
      etcdserverpb::WatchRequest request;
      etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
      create->set_key(w->key);
      create->set_range_end(w->range_end);
      create->set_start_revision(w->next_revision);
      std::string reason = "watch stream ended";
      if (stream->Write(request)) {
        etcdserverpb::WatchResponse response;
        while (stream->Read(&response)) {
          if (response.compact_revision() != 0) {
            end = absl::OutOfRangeError(absl::StrCat(
                "etcd at ", member.address, ": watch from revision ", w->next_revision,
                ": revisions before ", response.compact_revision(),
                " were compacted; re-read and watch from that read's revision + 1"));
            break;
          }
          if (response.canceled()) {
            reason = absl::StrCat("etcd canceled the watch: ", response.cancel_reason());
            break;
          }
          if (response.created() && !confirmed) {
            confirmed = true;
            backoff = kFirstBackoff;
            preferred_.store(member_index % members_.size(), std::memory_order_relaxed);
            absl::MutexLock lock(&w->mu);
            w->started = true;
          }
          if (response.events_size() == 0) continue;
          std::vector<WatchEvent> events;
          events.reserve(response.events_size());
          for (const mvccpb::Event& e : response.events()) {
            // A revision delivered before the stream broke is not delivered again.
            if (e.kv().mod_revision() < w->next_revision) continue;
            WatchEvent event;
            event.type = e.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                            : WatchEvent::Type::kPut;
            event.kv = FromEtcd(e.kv());
            events.push_back(std::move(event));
          }
          if (events.empty()) continue;
          w->next_revision = events.back().kv.mod_revision + 1;
          if (w->on_events && !RunCallback(*w, [&] { w->on_events(events); })) break;
        }
      }
      context->TryCancel();
      grpc::Status status = stream->Finish();
      {
        absl::MutexLock lock(&w->mu);
        w->context = nullptr;
      }
      if (!end.ok()) break;
      last_failure = absl::StrCat(member.address, ": ",
                                  status.ok() || status.error_code() == grpc::StatusCode::CANCELLED
                                      ? reason
                                      : status.error_message());
    }
    ++member_index;
    if (!confirmed) backoff = std::min(backoff * 2, kMaxBackoff);
    // Full jitter between half the backoff and the backoff.
    absl::Duration pause = backoff / 2 + absl::Nanoseconds(std::uniform_int_distribution<int64_t>(
                                             0, absl::ToInt64Nanoseconds(backoff / 2))(random));
    absl::MutexLock lock(&w->mu);
    WatchState* s = w.get();
    auto stop = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->cancelled || s->closing; };
    w->mu.AwaitWithTimeout(absl::Condition(&stop), pause);
  }

  // Says why the watch ended: to Watch() while it waits, else to on_error.
  absl::Status error = end;
  bool report = false;
  {
    absl::MutexLock lock(&w->mu);
    if (error.ok() && w->closing) error = absl::UnavailableError("etcd store closed");
    if (!w->started) {
      w->started = true;
      w->start_status = error.ok() ? absl::UnavailableError(absl::StrCat(
                                         "etcd at ", endpoints_text_, " unavailable: ", last_failure))
                                   : error;
    } else {
      report = !error.ok() && !w->cancelled && w->on_error != nullptr;
      if (report) w->in_callback = true;
    }
  }
  if (report) {
    w->on_error(error);
    absl::MutexLock lock(&w->mu);
    w->in_callback = false;
  }
  absl::MutexLock lock(&w->mu);
  w->finished = true;
}

void EtcdStore::ReapWatches() {
  std::vector<std::shared_ptr<WatchState>> ended;
  {
    absl::MutexLock lock(&watch_mu_);
    auto done = [](const std::shared_ptr<WatchState>& w) {
      absl::MutexLock state_lock(&w->mu);
      return w->finished;
    };
    auto it = std::stable_partition(watches_.begin(), watches_.end(),
                                    [&](const auto& w) { return !done(w); });
    ended.assign(it, watches_.end());
    watches_.erase(it, watches_.end());
  }
  for (const auto& w : ended) w->Join();
}

absl::StatusOr<LeaseId> EtcdStore::GrantLease(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd store: lease TTL must be positive");
  }
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1))));
  etcdserverpb::LeaseGrantResponse response;
  // Safe to repeat: a grant whose answer was lost expires unused.
  absl::Status status = Run(Retry::kAnyFailure, "grant lease",
                            [&](Member& m, grpc::ClientContext* c) {
                              return m.lease->LeaseGrant(c, request, &response);
                            });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::InternalError(absl::StrCat("etcd at ", endpoints_text_,
                                            ": grant lease: ", response.error()));
  }
  return response.id();
}

absl::Status EtcdStore::KeepAlive(LeaseId lease) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse response;
  std::string what = absl::StrCat("keep lease ", lease, " alive");
  absl::Status status = Run(Retry::kAnyFailure, what, [&](Member& m, grpc::ClientContext* c) {
    auto stream = m.lease->LeaseKeepAlive(c);
    if (!stream->Write(request) || !stream->WritesDone() || !stream->Read(&response)) {
      c->TryCancel();
      grpc::Status finished = stream->Finish();
      if (finished.ok()) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed early");
      }
      return finished;
    }
    return stream->Finish();
  });
  if (!status.ok()) return status;
  if (response.ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("lease ", lease, " not found (expired or revoked)"));
  }
  return absl::OkStatus();
}

absl::Status EtcdStore::RevokeLease(LeaseId lease) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseRevokeResponse response;
  return Run(Retry::kOnlyIfNotSent, absl::StrCat("revoke lease ", lease),
             [&](Member& m, grpc::ClientContext* c) {
               return m.lease->LeaseRevoke(c, request, &response);
             });
}

absl::Status EtcdStore::Compact(int64_t revision) {
  etcdserverpb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);
  etcdserverpb::CompactionResponse response;
  return Run(Retry::kOnlyIfNotSent, absl::StrCat("compact to revision ", revision),
             [&](Member& m, grpc::ClientContext* c) {
               return m.kv->Compact(c, request, &response);
             });
}

}  // namespace fleet
