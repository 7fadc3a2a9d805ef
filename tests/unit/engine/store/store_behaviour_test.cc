// The Store behaviour suite: what the engine relies on from any Store. See
// store_behaviour.h for how an implementation joins.

#include "tests/unit/engine/store/store_behaviour.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/store/watch_recorder.h"

namespace fleet::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

int64_t Revision(Store& s) {
  absl::StatusOr<RangeResult> r = s.Range("\x01nothing-has-this-prefix");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->revision : -1;
}

TEST_P(StoreBehaviourTest, GetOfMissingKeyIsNotFound) {
  EXPECT_EQ(store().Get("/missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, PutBumpsRevisionAndVersion) {
  int64_t start = Revision(store());
  absl::StatusOr<int64_t> r1 = store().Put("/k", "one");
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(*r1, start + 1);
  absl::StatusOr<KeyValue> kv = store().Get("/k");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(*kv, (KeyValue{"/k", "one", start + 1, start + 1, 1, 0}));

  absl::StatusOr<int64_t> r2 = store().Put("/k", "two");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, start + 2);
  kv = store().Get("/k");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(*kv, (KeyValue{"/k", "two", start + 1, start + 2, 2, 0}));
  EXPECT_EQ(Revision(store()), start + 2);
}

TEST_P(StoreBehaviourTest, DeleteRemovesKeyAndRecreationStartsOver) {
  ASSERT_TRUE(store().Put("/k", "a").ok());
  ASSERT_TRUE(store().Put("/k", "b").ok());
  int64_t before = Revision(store());
  absl::StatusOr<int64_t> del = store().Delete("/k");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(*del, before + 1);
  EXPECT_EQ(store().Get("/k").status().code(), absl::StatusCode::kNotFound);

  absl::StatusOr<int64_t> again = store().Put("/k", "c");
  ASSERT_TRUE(again.ok());
  absl::StatusOr<KeyValue> kv = store().Get("/k");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->version, 1);
  EXPECT_EQ(kv->create_revision, *again);
}

TEST_P(StoreBehaviourTest, DeleteOfMissingKeyDoesNotBumpRevision) {
  ASSERT_TRUE(store().Put("/k", "a").ok());
  int64_t before = Revision(store());
  absl::StatusOr<int64_t> del = store().Delete("/other");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(*del, before);
  EXPECT_EQ(Revision(store()), before);
}

TEST_P(StoreBehaviourTest, RangeByPrefixInKeyOrderWithLimitAndStartAfter) {
  for (const char* key : {"/b/1", "/a/3", "/ab", "/a/1", "/a/2"}) {
    ASSERT_TRUE(store().Put(key, absl::StrCat("v", key)).ok());
  }
  absl::StatusOr<RangeResult> all = store().Range("/a/");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Keys(*all), ElementsAre("/a/1", "/a/2", "/a/3"));
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->revision, Revision(store()));
  EXPECT_EQ(all->kvs[1].value, "v/a/2");

  absl::StatusOr<RangeResult> page = store().Range("/a/", "", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Keys(*page), ElementsAre("/a/1", "/a/2"));
  EXPECT_TRUE(page->more);

  page = store().Range("/a/", "/a/2", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Keys(*page), ElementsAre("/a/3"));
  EXPECT_FALSE(page->more);

  page = store().Range("/a/", "/a/1", 1);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Keys(*page), ElementsAre("/a/2"));
  EXPECT_TRUE(page->more);

  // start_after before the prefix means "from the first".
  page = store().Range("/a/", "/", 0);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Keys(*page), ElementsAre("/a/1", "/a/2", "/a/3"));

  absl::StatusOr<RangeResult> everything = store().Range("");
  ASSERT_TRUE(everything.ok());
  EXPECT_THAT(Keys(*everything), ElementsAre("/a/1", "/a/2", "/a/3", "/ab", "/b/1"));

  absl::StatusOr<RangeResult> none = store().Range("/c/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->kvs.empty());
}

struct CompareCase {
  Compare::Target target;
  Compare::Result result;
  int64_t number_delta;  // added to the actual number
  std::string value;
  bool holds;
};

TEST_P(StoreBehaviourTest, TxnComparesEveryTargetWithEveryResult) {
  absl::StatusOr<LeaseId> lease = store().GrantLease(absl::Seconds(600));
  ASSERT_TRUE(lease.ok()) << lease.status();
  absl::StatusOr<int64_t> created = store().Put("/k", "b");
  absl::StatusOr<int64_t> modified = store().Put("/k", "m", *lease);
  ASSERT_TRUE(created.ok() && modified.ok());
  const std::pair<Compare::Target, int64_t> numbers[] = {
      {Compare::Target::kVersion, 2},
      {Compare::Target::kCreateRevision, *created},
      {Compare::Target::kModRevision, *modified},
      {Compare::Target::kLease, *lease},
  };
  using R = Compare::Result;
  std::vector<CompareCase> cases = {
      {Compare::Target::kValue, R::kEqual, 0, "m", true},
      {Compare::Target::kValue, R::kEqual, 0, "x", false},
      {Compare::Target::kValue, R::kNotEqual, 0, "x", true},
      {Compare::Target::kValue, R::kNotEqual, 0, "m", false},
      {Compare::Target::kValue, R::kLess, 0, "n", true},
      {Compare::Target::kValue, R::kLess, 0, "m", false},
      {Compare::Target::kValue, R::kGreater, 0, "l", true},
      {Compare::Target::kValue, R::kGreater, 0, "m", false},
  };
  for (auto [target, actual] : numbers) {
    cases.push_back({target, R::kEqual, 0, "", true});
    cases.push_back({target, R::kEqual, 1, "", false});
    cases.push_back({target, R::kNotEqual, 1, "", true});
    cases.push_back({target, R::kNotEqual, 0, "", false});
    cases.push_back({target, R::kLess, 1, "", true});
    cases.push_back({target, R::kLess, 0, "", false});
    cases.push_back({target, R::kGreater, -1, "", true});
    cases.push_back({target, R::kGreater, 0, "", false});
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const CompareCase& c = cases[i];
    int64_t actual = 0;
    for (auto [target, number] : numbers) {
      if (target == c.target) actual = number;
    }
    Transaction txn;
    txn.compares.push_back({"/k", c.target, c.result, c.value, actual + c.number_delta});
    txn.on_success.push_back({Operation::Kind::kPut, "/out", absl::StrCat("s", i), 0});
    txn.on_failure.push_back({Operation::Kind::kPut, "/out", absl::StrCat("f", i), 0});
    absl::StatusOr<TxnResult> r = store().Txn(txn);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->succeeded, c.holds) << "case " << i;
    absl::StatusOr<KeyValue> out = store().Get("/out");
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->value, absl::StrCat(c.holds ? "s" : "f", i)) << "case " << i;
    EXPECT_EQ(out->mod_revision, r->revision);
  }
}

TEST_P(StoreBehaviourTest, TxnSeesMissingKeyAsZeroAndEmpty) {
  // The create-if-absent idiom: version == 0.
  Transaction create;
  create.compares.push_back({"/lock", Compare::Target::kVersion, Compare::Result::kEqual, "", 0});
  create.on_success.push_back({Operation::Kind::kPut, "/lock", "me", 0});
  absl::StatusOr<TxnResult> first = store().Txn(create);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  absl::StatusOr<TxnResult> second = store().Txn(create);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ(second->revision, first->revision);  // nothing written, no new revision

  Transaction value;
  value.compares.push_back({"/nothing", Compare::Target::kValue, Compare::Result::kEqual, "", 0});
  value.compares.push_back(
      {"/nothing", Compare::Target::kModRevision, Compare::Result::kEqual, "", 0});
  absl::StatusOr<TxnResult> r = store().Txn(value);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);
}

TEST_P(StoreBehaviourTest, TxnAppliesAllOperationsAtOneRevision) {
  ASSERT_TRUE(store().Put("/gone", "x").ok());
  ASSERT_TRUE(store().Put("/p/1", "x").ok());
  ASSERT_TRUE(store().Put("/p/2", "x").ok());
  ASSERT_TRUE(store().Put("/q", "x").ok());
  int64_t before = Revision(store());
  Transaction txn;
  txn.on_success = {{Operation::Kind::kPut, "/a", "1", 0},
                    {Operation::Kind::kPut, "/b", "2", 0},
                    {Operation::Kind::kDelete, "/gone", "", 0},
                    {Operation::Kind::kDeletePrefix, "/p/", "", 0}};
  absl::StatusOr<TxnResult> r = store().Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, before + 1);
  EXPECT_EQ(store().Get("/a")->mod_revision, before + 1);
  EXPECT_EQ(store().Get("/b")->mod_revision, before + 1);
  EXPECT_EQ(store().Get("/gone").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<RangeResult> all = store().Range("");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Keys(*all), ElementsAre("/a", "/b", "/q"));
}

TEST_P(StoreBehaviourTest, TxnWithFailedCompareAndNoFailureOpsChangesNothing) {
  ASSERT_TRUE(store().Put("/k", "v").ok());
  int64_t before = Revision(store());
  Transaction txn;
  txn.compares.push_back({"/k", Compare::Target::kValue, Compare::Result::kEqual, "other", 0});
  txn.on_success.push_back({Operation::Kind::kPut, "/k", "changed", 0});
  absl::StatusOr<TxnResult> r = store().Txn(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, before);
  EXPECT_EQ(store().Get("/k")->value, "v");
}

TEST_P(StoreBehaviourTest, BadTransactionsAreInvalidAndChangeNothing) {
  int64_t before = Revision(store());
  Transaction twice;
  twice.on_success = {{Operation::Kind::kPut, "/a", "1", 0}, {Operation::Kind::kPut, "/a", "2", 0}};
  EXPECT_EQ(store().Txn(twice).status().code(), absl::StatusCode::kInvalidArgument);
  Transaction put_and_delete;
  put_and_delete.on_success = {{Operation::Kind::kPut, "/p/a", "1", 0},
                               {Operation::Kind::kDeletePrefix, "/p/", "", 0}};
  EXPECT_EQ(store().Txn(put_and_delete).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store().Put("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Revision(store()), before);
  EXPECT_EQ(store().Get("/a").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, PutUnderUnknownLeaseIsNotFound) {
  EXPECT_EQ(store().Put("/k", "v", 987654321).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Get("/k").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, WatchFromPastRevisionReplaysThenFollows) {
  absl::StatusOr<int64_t> first = store().Put("/w/a", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store().Put("/other", "x").ok());
  ASSERT_TRUE(store().Put("/w/b", "2").ok());
  ASSERT_TRUE(store().Delete("/w/a").ok());

  WatchRecorder rec;
  auto handle = store().Watch("/w/", *first, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::vector<WatchEvent> events = rec.WaitForEvents(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.key, "/w/a");
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, *first);
  EXPECT_EQ(events[1].kv.key, "/w/b");
  EXPECT_EQ(events[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "/w/a");
  EXPECT_EQ(events[2].kv.mod_revision, *first + 3);

  absl::StatusOr<int64_t> later = store().Put("/w/c", "3");
  ASSERT_TRUE(later.ok());
  events = rec.WaitForEvents(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].kv.key, "/w/c");
  EXPECT_EQ(events[3].kv.mod_revision, *later);
  EXPECT_EQ(events[3].kv.version, 1);
  EXPECT_TRUE(rec.errors().empty());
}

TEST_P(StoreBehaviourTest, WatchFromZeroSeesOnlyLaterChanges) {
  ASSERT_TRUE(store().Put("/w/old", "1").ok());
  WatchRecorder rec;
  auto handle = store().Watch("/w/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(store().Put("/w/new", "2").ok());
  std::vector<WatchEvent> events = rec.WaitForEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/w/new");
}

TEST_P(StoreBehaviourTest, WatchNeverSplitsARevisionAndKeepsOrder) {
  WatchRecorder rec;
  auto handle = store().Watch("/w/", Revision(store()) + 1, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());
  for (int round = 0; round < 20; ++round) {
    Transaction txn;
    for (int k = 0; k < 5; ++k) {
      txn.on_success.push_back(
          {Operation::Kind::kPut, absl::StrCat("/w/", k), absl::StrCat(round), 0});
    }
    ASSERT_TRUE(store().Txn(txn).ok());
  }
  ASSERT_EQ(rec.WaitForEvents(100).size(), 100u);
  int64_t last = 0;
  for (const auto& batch : rec.batches()) {
    ASSERT_FALSE(batch.empty());
    // every revision in a batch is complete: 5 events each
    std::map<int64_t, int> per_revision;
    for (const WatchEvent& e : batch) {
      EXPECT_GE(e.kv.mod_revision, last);
      last = e.kv.mod_revision;
      ++per_revision[e.kv.mod_revision];
    }
    for (auto [revision, count] : per_revision) EXPECT_EQ(count, 5) << "revision " << revision;
  }
}

TEST_P(StoreBehaviourTest, DestroyedWatchDeliversNothingMore) {
  WatchRecorder rec;
  auto handle = store().Watch("/w/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(store().Put("/w/1", "x").ok());
  ASSERT_EQ(rec.WaitForEvents(1).size(), 1u);
  handle->reset();
  ASSERT_TRUE(store().Put("/w/2", "x").ok());
  // A second watch sees /w/2, so the first had every chance to see it too.
  WatchRecorder witness;
  auto second = store().Watch("/w/", Revision(store()), witness.Events(), witness.Errors());
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(witness.WaitForEvents(1).size(), 1u);
  EXPECT_EQ(rec.events().size(), 1u);
  EXPECT_TRUE(rec.errors().empty());  // destruction is not an error
}

TEST_P(StoreBehaviourTest, WatchCanBeDestroyedFromItsOwnCallback) {
  std::unique_ptr<WatchHandle> handle;
  absl::Mutex mu;
  int calls = 0;
  absl::Notification destroyed;
  auto watch = store().Watch(
      "/w/", 0,
      [&](const std::vector<WatchEvent>&) {
        absl::MutexLock lock(&mu);
        ++calls;
        handle.reset();  // must not deadlock
        destroyed.Notify();
      },
      nullptr);
  ASSERT_TRUE(watch.ok());
  {
    absl::MutexLock lock(&mu);
    handle = std::move(*watch);
  }
  ASSERT_TRUE(store().Put("/w/1", "x").ok());
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(store().Put("/w/2", "x").ok());
  WatchRecorder witness;
  auto second = store().Watch("/w/", Revision(store()), witness.Events(), witness.Errors());
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(witness.WaitForEvents(1).size(), 1u);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(calls, 1);
}

TEST_P(StoreBehaviourTest, WatchDestructorWaitsForARunningCallback) {
  absl::Notification entered, release;
  std::atomic<bool> destructor_returned{false};
  std::atomic<bool> returned_while_running{false};
  auto handle = store().Watch(
      "/w/", 0,
      [&](const std::vector<WatchEvent>&) {
        entered.Notify();
        release.WaitForNotification();
        if (destructor_returned.load()) returned_while_running = true;
      },
      nullptr);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(store().Put("/w/1", "x").ok());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread destroyer([&] {
    handle->reset();
    destructor_returned = true;
  });
  release.Notify();
  destroyer.join();
  EXPECT_FALSE(returned_while_running.load());
}

TEST_P(StoreBehaviourTest, LeaseExpiryDeletesItsKeysInOneRevision) {
  absl::StatusOr<LeaseId> lease = store().GrantLease(absl::Seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(store().Put("/l/a", "1", *lease).ok());
  ASSERT_TRUE(store().Put("/l/b", "2", *lease).ok());
  ASSERT_TRUE(store().Put("/l/c", "3").ok());
  EXPECT_EQ(store().Get("/l/a")->lease, *lease);
  WatchRecorder rec;
  auto handle = store().Watch("/l/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());

  Advance(absl::Seconds(9));
  EXPECT_TRUE(store().Get("/l/a").ok());
  int64_t before = Revision(store());
  Advance(absl::Seconds(2));
  EXPECT_EQ(store().Get("/l/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Get("/l/b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store().Get("/l/c").ok());
  EXPECT_EQ(Revision(store()), before + 1);
  std::vector<WatchEvent> events = rec.WaitForEvents(2);
  ASSERT_EQ(events.size(), 2u);
  for (const WatchEvent& e : events) {
    EXPECT_EQ(e.type, WatchEvent::Type::kDelete);
    EXPECT_EQ(e.kv.mod_revision, before + 1);
  }
  EXPECT_EQ(store().KeepAlive(*lease).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, KeepAliveRenewsForTheFullTtl) {
  absl::StatusOr<LeaseId> lease = store().GrantLease(absl::Seconds(10));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store().Put("/l/a", "1", *lease).ok());
  for (int i = 0; i < 5; ++i) {
    Advance(absl::Seconds(8));
    ASSERT_TRUE(store().KeepAlive(*lease).ok());
  }
  Advance(absl::Seconds(8));
  EXPECT_TRUE(store().Get("/l/a").ok());
  Advance(absl::Seconds(3));
  EXPECT_EQ(store().Get("/l/a").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, RevokeDeletesKeysAndUnknownLeaseIsNotFound) {
  absl::StatusOr<LeaseId> lease = store().GrantLease(absl::Seconds(100));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store().Put("/l/a", "1", *lease).ok());
  ASSERT_TRUE(store().Put("/l/b", "1", *lease).ok());
  ASSERT_TRUE(store().Put("/l/b", "plain").ok());  // re-put without lease detaches it
  ASSERT_TRUE(store().RevokeLease(*lease).ok());
  EXPECT_EQ(store().Get("/l/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Get("/l/b")->value, "plain");
  EXPECT_EQ(store().RevokeLease(*lease).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().KeepAlive(*lease).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Put("/l/c", "1", *lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, GrantLeaseRefusesNonPositiveTtl) {
  EXPECT_EQ(store().GrantLease(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreBehaviourTest, ConcurrentWritersGetDistinctRevisions) {
  int64_t start = Revision(store());
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::vector<int64_t>> revisions(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        absl::StatusOr<int64_t> r = store().Put(absl::StrCat("/c/", t, "/", i), "x");
        if (r.ok()) revisions[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& rs : revisions) {
    EXPECT_EQ(rs.size(), static_cast<size_t>(kEach));
    for (size_t i = 1; i < rs.size(); ++i) EXPECT_GT(rs[i], rs[i - 1]);
    all.insert(rs.begin(), rs.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), start + 1);
  EXPECT_EQ(*all.rbegin(), start + kThreads * kEach);
  EXPECT_EQ(store().Range("/c/")->kvs.size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace fleet::testing
