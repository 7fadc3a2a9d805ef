// EtcdLeadership on EmbeddedStore with FakeClock: the election recipe, the
// local deadline, the guard and resignation, driven step by step without
// sleeping. The same class against real etcd: tests/integration/engine/leadership.

#include "engine/etcd_leadership.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/clock.h"
#include "engine/store/embedded_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fault_store.h"
#include "tests/unit/engine/store/temp_dir.h"

namespace fleet::testing {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(5);
constexpr absl::Duration kMargin = absl::Seconds(1);

// Members in this order: the leadership (destroyed first) reports to `changes`
// and uses `store` while it resigns.
struct Candidate {
  std::vector<std::pair<bool, absl::Status>> changes;  // what on_change was told
  std::unique_ptr<FaultStore> store;
  std::unique_ptr<EtcdLeadership> leadership;
};

class EtcdLeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmbeddedStoreOptions options;
    options.dir = dir_.path();
    options.clock = &clock_;
    absl::StatusOr<std::unique_ptr<EmbeddedStore>> store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    candidates_.clear();  // they resign before the store goes
    store_.reset();
  }

  // A candidate named `name` with address "NAME:7000", behind its own FaultStore.
  Candidate& Add(const std::string& name) {
    auto c = std::make_unique<Candidate>();
    c->store = std::make_unique<FaultStore>(store_.get());
    Candidate* raw = c.get();
    EtcdLeadershipOptions options;
    options.engine_id = name;
    options.address = name + ":7000";
    options.ttl = kTtl;
    options.margin = kMargin;
    options.clock = &clock_;
    options.on_change = [raw](bool leading, const absl::Status& why) {
      raw->changes.emplace_back(leading, why);
    };
    absl::StatusOr<std::unique_ptr<EtcdLeadership>> l =
        EtcdLeadership::Create(c->store.get(), std::move(options));
    EXPECT_TRUE(l.ok()) << l.status();
    c->leadership = std::move(*l);
    candidates_.push_back(std::move(c));
    return *candidates_.back();
  }

  // Moves time by `d` in steps of ttl/5, stepping `who` and expiring leases after each.
  void Run(absl::Duration d, const std::vector<Candidate*>& who) {
    for (absl::Duration done; done < d; done += kTtl / 5) {
      clock_.Advance(kTtl / 5);
      store_->ExpireLeases();
      for (Candidate* c : who) (void)c->leadership->Step();
    }
  }

  // A transaction that puts /x only while `guard` holds.
  static Transaction GuardedPut(const Compare& guard) {
    Operation put;
    put.kind = Operation::Kind::kPut;
    put.key = "/x";
    put.value = "v";
    Transaction txn;
    txn.compares.push_back(guard);
    txn.on_success.push_back(put);
    return txn;
  }

  static LeaseId LeaseOf(const std::string& key) {
    uint64_t id = 0;
    EXPECT_TRUE(absl::SimpleHexAtoi(key.substr(key.rfind('/') + 1), &id)) << key;
    return static_cast<LeaseId>(id);
  }

  FakeClock clock_;
  TempDir dir_;
  std::unique_ptr<EmbeddedStore> store_;
  std::vector<std::unique_ptr<Candidate>> candidates_;
};

TEST_F(EtcdLeadershipTest, CreateRefusesBadOptions) {
  EtcdLeadershipOptions good;
  good.engine_id = "e";
  good.address = "a:1";
  good.clock = &clock_;
  ASSERT_TRUE(EtcdLeadership::Create(store_.get(), good).ok());

  EtcdLeadershipOptions no_clock = good;
  no_clock.clock = nullptr;
  EXPECT_EQ(EtcdLeadership::Create(store_.get(), no_clock).status().code(),
            absl::StatusCode::kInvalidArgument);
  EtcdLeadershipOptions short_ttl = good;
  short_ttl.ttl = absl::Milliseconds(500);
  EXPECT_EQ(EtcdLeadership::Create(store_.get(), short_ttl).status().code(),
            absl::StatusCode::kInvalidArgument);
  EtcdLeadershipOptions big_margin = good;
  big_margin.ttl = absl::Seconds(4);
  big_margin.margin = absl::Seconds(2);
  EXPECT_EQ(EtcdLeadership::Create(store_.get(), big_margin).status().code(),
            absl::StatusCode::kInvalidArgument);
  EtcdLeadershipOptions no_address = good;
  no_address.address.clear();
  EXPECT_EQ(EtcdLeadership::Create(store_.get(), no_address).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EtcdLeadershipTest, FirstOfThreeLeadsAndAllKnowItsAddress) {
  Candidate& a = Add("a");
  Candidate& b = Add("b");
  Candidate& c = Add("c");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(b.leadership->Step().ok());
  ASSERT_TRUE(c.leadership->Step().ok());
  EXPECT_TRUE(a.leadership->IsLeader());
  EXPECT_FALSE(b.leadership->IsLeader());
  EXPECT_FALSE(c.leadership->IsLeader());
  for (Candidate* x : {&a, &b, &c}) EXPECT_EQ(x->leadership->LeaderAddress(), "a:7000");
  ASSERT_EQ(a.changes.size(), 1u);
  EXPECT_TRUE(a.changes[0].first);
  EXPECT_TRUE(b.changes.empty());
  EXPECT_TRUE(a.leadership->LeaderGuard().has_value());
  EXPECT_FALSE(b.leadership->LeaderGuard().has_value());
}

TEST_F(EtcdLeadershipTest, KeepsLeadingWhileKeepAlivesArrive) {
  Candidate& a = Add("a");
  Candidate& b = Add("b");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(b.leadership->Step().ok());
  Run(10 * kTtl, {&a, &b});
  EXPECT_TRUE(a.leadership->IsLeader());
  EXPECT_FALSE(b.leadership->IsLeader());
  EXPECT_EQ(a.changes.size(), 1u);
  EXPECT_TRUE(b.changes.empty());
}

TEST_F(EtcdLeadershipTest, CutOffLeaderStepsDownBeforeItsLeaseExpiresThenAFollowerLeads) {
  Candidate& a = Add("a");
  Candidate& b = Add("b");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(b.leadership->Step().ok());
  ASSERT_TRUE(a.leadership->IsLeader());
  const std::optional<Compare> old_guard = a.leadership->LeaderGuard();
  ASSERT_TRUE(old_guard.has_value());

  a.store->set_down(true);  // a's keep-alives stop reaching the store
  // Just before the local deadline (ttl - margin after the grant) a still leads ...
  clock_.Advance(kTtl - kMargin - absl::Milliseconds(1));
  store_->ExpireLeases();
  (void)b.leadership->Step();
  EXPECT_TRUE(a.leadership->IsLeader());
  // ... and at the deadline it stops, by the clock alone, without any Step.
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_FALSE(a.leadership->IsLeader());
  EXPECT_FALSE(a.leadership->LeaderGuard().has_value());
  // Its lease still lives at the store: nobody else may lead yet.
  store_->ExpireLeases();
  (void)b.leadership->Step();
  EXPECT_FALSE(b.leadership->IsLeader());
  (void)a.leadership->Step();
  ASSERT_EQ(a.changes.size(), 2u);
  EXPECT_FALSE(a.changes[1].first);
  EXPECT_EQ(a.changes[1].second.code(), absl::StatusCode::kDeadlineExceeded);

  // The lease expires at the store after ttl: b takes over.
  clock_.Advance(kMargin + absl::Milliseconds(1));
  store_->ExpireLeases();
  ASSERT_TRUE(b.leadership->Step().ok());
  EXPECT_TRUE(b.leadership->IsLeader());
  EXPECT_EQ(b.leadership->LeaderAddress(), "b:7000");

  // The deposed leader's writes fail; the new leader's apply.
  absl::StatusOr<TxnResult> r = store_->Txn(GuardedPut(*old_guard));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded);
  r = store_->Txn(GuardedPut(*b.leadership->LeaderGuard()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);

  // a comes back as a follower behind b, and knows where b is.
  a.store->set_down(false);
  ASSERT_TRUE(a.leadership->Step().ok());
  EXPECT_FALSE(a.leadership->IsLeader());
  EXPECT_EQ(a.leadership->LeaderAddress(), "b:7000");
  EXPECT_FALSE(a.leadership->candidate_key().empty());
}

TEST_F(EtcdLeadershipTest, ResignHandsOverWithoutWaitingForTheTtl) {
  Candidate& a = Add("a");
  Candidate& b = Add("b");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(b.leadership->Step().ok());
  ASSERT_TRUE(a.leadership->Resign().ok());
  EXPECT_FALSE(a.leadership->IsLeader());
  ASSERT_EQ(a.changes.size(), 2u);
  EXPECT_FALSE(a.changes[1].first);
  EXPECT_TRUE(a.changes[1].second.ok());
  ASSERT_TRUE(b.leadership->Step().ok());  // no clock movement
  EXPECT_TRUE(b.leadership->IsLeader());
  // A resigned candidate stays out.
  ASSERT_TRUE(a.leadership->Step().ok());
  EXPECT_TRUE(a.leadership->candidate_key().empty());
}

TEST_F(EtcdLeadershipTest, RevokedLeaseIsNoticedOnTheNextStepAndTheCandidateRejoinsAtTheBack) {
  Candidate& a = Add("a");
  Candidate& b = Add("b");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(b.leadership->Step().ok());
  const std::string old_key = a.leadership->candidate_key();
  ASSERT_TRUE(store_->RevokeLease(LeaseOf(old_key)).ok());
  (void)a.leadership->Step();
  EXPECT_FALSE(a.leadership->IsLeader());
  ASSERT_EQ(a.changes.size(), 2u);
  EXPECT_EQ(a.changes[1].second.code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(b.leadership->Step().ok());
  EXPECT_TRUE(b.leadership->IsLeader());
  ASSERT_TRUE(a.leadership->Step().ok());  // campaigns again, behind b
  EXPECT_NE(a.leadership->candidate_key(), old_key);
  EXPECT_FALSE(a.leadership->candidate_key().empty());
  EXPECT_FALSE(a.leadership->IsLeader());
  EXPECT_EQ(a.leadership->LeaderAddress(), "b:7000");
}

TEST_F(EtcdLeadershipTest, AloneAfterAStoreOutageLeadsAgainWithANewLeaseAndNoStaleKey) {
  Candidate& a = Add("a");
  ASSERT_TRUE(a.leadership->Step().ok());
  ASSERT_TRUE(a.leadership->IsLeader());
  const std::string old_key = a.leadership->candidate_key();
  a.store->set_down(true);
  Run(kTtl - kMargin, {&a});
  EXPECT_FALSE(a.leadership->IsLeader());
  EXPECT_TRUE(a.leadership->candidate_key().empty());
  a.store->set_down(false);
  ASSERT_TRUE(a.leadership->Step().ok());
  EXPECT_TRUE(a.leadership->IsLeader());
  // The abandoned lease was revoked as soon as the store answered: only the new key is left.
  absl::StatusOr<RangeResult> keys = store_->Range("/fleet/engine/leader/");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->kvs.size(), 1u);
  EXPECT_EQ(keys->kvs[0].key, a.leadership->candidate_key());
  EXPECT_NE(keys->kvs[0].key, old_key);
  ASSERT_EQ(a.changes.size(), 3u);  // led, lost, led again
  EXPECT_TRUE(a.changes[2].first);
}

}  // namespace
}  // namespace fleet::testing
