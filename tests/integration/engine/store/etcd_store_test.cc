// EtcdStore: what only etcd does. Runs real etcd members
// (tests/support/etcd_cluster.h) and kills them with SIGKILL.

#include "engine/store/etcd_store.h"

#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "engine/store/txn_outcome.h"
#include "gtest/gtest.h"
#include "tests/support/etcd_cluster.h"
#include "tests/unit/engine/store/watch_recorder.h"

namespace fleet::testing {
namespace {

using ::testing::HasSubstr;

class EtcdStoreTest : public ::testing::Test {
 protected:
  // Starts `members` members and a store on all of them.
  void StartCluster(int members, EtcdStoreOptions options = {}) {
    absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster = test::EtcdCluster::Start(members);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    options.endpoints = cluster_->endpoints();
    absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();  // before the cluster: its watches end first
    cluster_.reset();
  }

  // The values of the events, in delivery order.
  static std::vector<std::string> Values(const std::vector<WatchEvent>& events) {
    std::vector<std::string> values;
    for (const WatchEvent& e : events) values.push_back(e.kv.value);
    return values;
  }

  std::unique_ptr<test::EtcdCluster> cluster_;
  std::unique_ptr<EtcdStore> store_;
};

TEST_F(EtcdStoreTest, OpenRefusesBadOptions) {
  EXPECT_EQ(EtcdStore::Open({}).status().code(), absl::StatusCode::kInvalidArgument);
  EtcdStoreOptions options;
  options.endpoints = {"no-port"};
  EXPECT_THAT(EtcdStore::Open(options).status().message(), HasSubstr("no-port"));
}

TEST_F(EtcdStoreTest, ThreeMembersKeepWorkingWithOneKilled) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  ASSERT_TRUE(store_->Put("/k/before", "1").ok());  // member 0 answered: it is the preferred one
  WatchRecorder rec;
  auto watch = store_->Watch("/k/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(watch.ok()) << watch.status();

  cluster_->Kill(0);
  // A read first: it moves on to a live member whatever the kill left behind.
  absl::StatusOr<KeyValue> before = store_->Get("/k/before");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->value, "1");
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) {
    std::string value = absl::StrCat("v", i);
    absl::StatusOr<int64_t> put = store_->Put(absl::StrCat("/k/", i), value);
    ASSERT_TRUE(put.ok()) << put.status();
    expected.push_back(value);
  }
  Transaction txn;
  txn.compares.push_back({"/k/0", Compare::Target::kValue, Compare::Result::kEqual, "v0", 0});
  txn.on_success.push_back({Operation::Kind::kPut, "/k/txn", "t", 0});
  absl::StatusOr<TxnResult> r = store_->Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  expected.push_back("t");
  absl::StatusOr<RangeResult> all = store_->Range("/k/");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->kvs.size(), 22u);
  absl::StatusOr<LeaseId> lease = store_->GrantLease(absl::Seconds(30));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE(store_->KeepAlive(*lease).ok());

  // The watch was on member 0: it resumed elsewhere without a gap or a repeat.
  std::vector<WatchEvent> events = rec.WaitForEvents(expected.size());
  EXPECT_EQ(Values(events), expected);
  EXPECT_TRUE(rec.errors().empty());

  // Member 0 comes back and another goes: still fine.
  ASSERT_TRUE(cluster_->Restart(0).ok());
  cluster_->Kill(1);
  absl::StatusOr<KeyValue> txn_key = store_->Get("/k/txn");
  ASSERT_TRUE(txn_key.ok()) << txn_key.status();
  absl::StatusOr<int64_t> after = store_->Put("/k/after", "a");
  ASSERT_TRUE(after.ok()) << after.status();
  expected.push_back("a");
  EXPECT_EQ(Values(rec.WaitForEvents(expected.size())), expected);
}

TEST_F(EtcdStoreTest, BrokenWatchStreamResumesWithoutMissingOrRepeating) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  absl::StatusOr<int64_t> first = store_->Put("/w/a", "0");
  ASSERT_TRUE(first.ok());
  WatchRecorder rec;
  auto watch = store_->Watch("/w/", *first, rec.Events(), rec.Errors());
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::vector<std::string> expected = {"0"};
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(store_->Put(absl::StrCat("/w/", i), absl::StrCat(i)).ok());
    expected.push_back(absl::StrCat(i));
  }
  ASSERT_EQ(rec.WaitForEvents(expected.size()).size(), expected.size());

  // kill -9 of the only member breaks the stream; etcd comes back with its data.
  ASSERT_TRUE(cluster_->Restart(0).ok());
  for (int i = 6; i <= 10; ++i) {
    absl::StatusOr<int64_t> put = store_->Put(absl::StrCat("/w/", i), absl::StrCat(i));
    ASSERT_TRUE(put.ok()) << put.status();
    expected.push_back(absl::StrCat(i));
  }
  // A last write: everything before it has arrived once it has, repeats too.
  ASSERT_TRUE(store_->Put("/w/end", "end").ok());
  expected.push_back("end");
  std::vector<WatchEvent> events = rec.WaitForEvents(expected.size());
  EXPECT_EQ(Values(events), expected);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);
  }
  EXPECT_TRUE(rec.errors().empty());
}

TEST_F(EtcdStoreTest, WatchFromCompactedRevisionIsOutOfRange) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  absl::StatusOr<int64_t> first = store_->Put("/w/a", "1");
  ASSERT_TRUE(first.ok());
  absl::StatusOr<int64_t> last = store_->Put("/w/a", "2");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(store_->Compact(*last).ok());
  WatchRecorder rec;
  auto watch = store_->Watch("/w/", *first, rec.Events(), rec.Errors());
  EXPECT_EQ(watch.status().code(), absl::StatusCode::kOutOfRange) << watch.status();
  EXPECT_THAT(watch.status().message(), HasSubstr("compacted"));
  // From the compacted revision itself on, it works.
  watch = store_->Watch("/w/", *last, rec.Events(), rec.Errors());
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(Values(rec.WaitForEvents(1)), std::vector<std::string>{"2"});
}

TEST_F(EtcdStoreTest, CompactionWhileTheStreamIsBrokenEndsTheWatchWithOutOfRange) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  absl::Notification entered, release;
  WatchRecorder rec;
  auto events = rec.Events();
  // Member 0 answers while all are up, so the watch stream is on member 0.
  auto watch = store_->Watch(
      "/w/", 0,
      [&](const std::vector<WatchEvent>& batch) {
        events(batch);
        entered.Notify();
        release.WaitForNotification();  // holds the watch thread until the stage is set
      },
      rec.Errors());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(store_->Put("/w/a", "1").ok());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // While the watch has seen only "1": its stream breaks, then more writes
  // and a compaction past them happen elsewhere. Resuming from "1"'s revision
  // + 1 is no longer possible.
  cluster_->Kill(0);
  ASSERT_TRUE(store_->Get("/w/a").ok());
  ASSERT_TRUE(store_->Put("/w/a", "2").ok());
  absl::StatusOr<int64_t> last = store_->Put("/w/a", "3");
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_TRUE(store_->Compact(*last).ok());
  release.Notify();
  std::vector<absl::Status> errors = rec.WaitForError();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), absl::StatusCode::kOutOfRange) << errors[0];
  EXPECT_THAT(errors[0].message(), HasSubstr("compacted"));
  EXPECT_EQ(Values(rec.events()), std::vector<std::string>{"1"});
}

TEST_F(EtcdStoreTest, TxnOverMaxOpsIsRefusedNotSplit) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  absl::StatusOr<RangeResult> empty = store_->Range("");
  ASSERT_TRUE(empty.ok());
  Transaction big;
  for (int i = 0; i < 129; ++i) {
    big.on_success.push_back({Operation::Kind::kPut, absl::StrCat("/t/", i), "x", 0});
  }
  absl::StatusOr<TxnResult> refused = store_->Txn(big);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("129 success operations"));
  EXPECT_THAT(refused.status().message(), HasSubstr("at most 128"));
  absl::StatusOr<RangeResult> still_empty = store_->Range("/t/");
  ASSERT_TRUE(still_empty.ok());
  EXPECT_TRUE(still_empty->kvs.empty());
  EXPECT_EQ(still_empty->revision, empty->revision);

  big.on_success.pop_back();  // 128: etcd's limit, accepted at one revision
  absl::StatusOr<TxnResult> accepted = store_->Txn(big);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  absl::StatusOr<RangeResult> all = store_->Range("/t/");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 128u);
  for (const KeyValue& kv : all->kvs) EXPECT_EQ(kv.mod_revision, accepted->revision);
}

TEST_F(EtcdStoreTest, LargeValuesUpToTheRequestLimit) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  const int64_t limit = EtcdStoreOptions{}.max_request_bytes;  // etcd's default, 1.5 MiB
  std::string near(limit - 2048, 'v');
  absl::StatusOr<int64_t> put = store_->Put("/big/near", near);
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<KeyValue> got = store_->Get("/big/near");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, near);

  absl::StatusOr<int64_t> over = store_->Put("/big/over", std::string(limit, 'v'));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("--max-request-bytes"));
  Transaction two;
  two.on_success = {{Operation::Kind::kPut, "/big/a", std::string(limit / 2, 'a'), 0},
                    {Operation::Kind::kPut, "/big/b", std::string(limit / 2, 'b'), 0}};
  EXPECT_EQ(store_->Txn(two).status().code(), absl::StatusCode::kInvalidArgument);

  // Four near-limit values: 6 MiB in one Range, over gRPC's default 4 MiB message.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->Put(absl::StrCat("/big/", i), near).ok());
  absl::StatusOr<RangeResult> all = store_->Range("/big/");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->kvs.size(), 4u);
  for (const KeyValue& kv : all->kvs) EXPECT_EQ(kv.value.size(), near.size());
}

TEST_F(EtcdStoreTest, RangeIsReadInPagesAtOneRevision) {
  EtcdStoreOptions options;
  options.range_page_keys = 7;
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, options));
  Transaction txn;
  for (int i = 0; i < 50; ++i) {
    txn.on_success.push_back({Operation::Kind::kPut, absl::StrFormat("/p/%02d", i), "x", 0});
  }
  ASSERT_TRUE(store_->Txn(txn).ok());
  ASSERT_TRUE(store_->Put("/q", "outside").ok());
  absl::StatusOr<RangeResult> all = store_->Range("/p/");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->kvs.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(all->kvs[i].key, absl::StrFormat("/p/%02d", i));
  EXPECT_FALSE(all->more);
  absl::StatusOr<RangeResult> some = store_->Range("/p/", "/p/09", 20);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->kvs.size(), 20u);
  EXPECT_EQ(some->kvs.front().key, "/p/10");
  EXPECT_EQ(some->kvs.back().key, "/p/29");
  EXPECT_TRUE(some->more);
  absl::StatusOr<RangeResult> tail = store_->Range("/p/", "/p/29", 21);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->kvs.size(), 20u);
  EXPECT_FALSE(tail->more);
}

TEST_F(EtcdStoreTest, LeaseExpiresOnEtcdsClock) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  absl::StatusOr<LeaseId> lease = store_->GrantLease(absl::Seconds(2));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(store_->Put("/l/a", "1", *lease).ok());
  ASSERT_TRUE(store_->Put("/l/b", "2", *lease).ok());
  ASSERT_TRUE(store_->KeepAlive(*lease).ok());
  WatchRecorder rec;
  auto watch = store_->Watch("/l/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(watch.ok());
  // etcd deletes both keys in one revision about 2 s after the last renewal.
  std::vector<WatchEvent> events = rec.WaitForEvents(2);
  ASSERT_EQ(events.size(), 2u);
  for (const WatchEvent& e : events) EXPECT_EQ(e.type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);
  EXPECT_EQ(store_->Get("/l/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->KeepAlive(*lease).code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdStoreTest, EtcdDownIsUnavailableNamingTheEndpointsThenRecovers) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  ASSERT_TRUE(store_->Put("/k", "1").ok());
  cluster_->Kill(0);
  absl::StatusOr<int64_t> put = store_->Put("/k", "2");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(put.status().message(), HasSubstr(cluster_->endpoint(0)));
  absl::StatusOr<KeyValue> get = store_->Get("/k");
  EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(get.status().message(), HasSubstr("etcd at " + cluster_->endpoint(0) + " unavailable"));

  ASSERT_TRUE(cluster_->Restart(0).ok());
  // The store's channel reconnects on its own (backoff at most 1 s); poll the
  // real process with a deadline.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<KeyValue> back = store_->Get("/k");
  while (!back.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    back = store_->Get("/k");
  }
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->value, "1");
  EXPECT_TRUE(store_->Put("/k", "3").ok());
}

// A member that takes a write and does not answer (here: stopped with
// SIGSTOP; in a cluster: a leader that died with the proposal) leaves the
// write's outcome unknown, and says so; reading the keys back settles it.
TEST_F(EtcdStoreTest, UnansweredWriteIsOutcomeUnknownAndTheReadBackSettlesIt) {
  EtcdStoreOptions options;
  options.request_timeout = absl::Seconds(1);
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, options));
  Transaction create;
  Compare absent;
  absent.key = "/units/a";
  absent.target = Compare::Target::kModRevision;
  absent.number = 0;
  create.compares.push_back(absent);
  Operation put;
  put.key = "/units/a";
  put.value = "A";
  create.on_success.push_back(put);

  ASSERT_TRUE(store_->Put("/connected", "yes").ok());  // the channel is up before etcd stops
  const pid_t etcd = cluster_->pid(0);
  ASSERT_EQ(kill(etcd, SIGSTOP), 0);
  absl::Cleanup resume = [etcd] { kill(etcd, SIGCONT); };
  absl::StatusOr<TxnResult> sent = store_->Txn(create);
  ASSERT_TRUE(IsOutcomeUnknown(sent.status())) << sent.status();
  EXPECT_THAT(sent.status().message(), HasSubstr("may or may not have been applied"));
  ASSERT_EQ(kill(etcd, SIGCONT), 0);

  // etcd may or may not apply the request it read after it resumed; either
  // way the transaction is done exactly once.
  absl::StatusOr<TxnResult> resolved = ResolveOutcome(*store_, create, sent.status());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(resolved->succeeded);
  absl::StatusOr<KeyValue> kv = store_->Get("/units/a");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, "A");
  EXPECT_EQ(kv->version, 1);
  EXPECT_EQ(kv->mod_revision, resolved->revision);
}

}  // namespace
}  // namespace fleet::testing
