// EtcdLeadership on real etcd (1 and 3 members), with real time: three
// candidates, each with its own EtcdStore behind a FaultStore ("down" = the
// engine was killed with SIGKILL, or is cut off from etcd). An Observer samples
// every candidate's IsLeader() every millisecond to prove that two never lead at
// once, and records when each started and stopped leading.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "engine/etcd_leadership.h"
#include "engine/store/etcd_store.h"
#include "gtest/gtest.h"
#include "tests/support/fault_store.h"
#include "tests/support/etcd_cluster.h"

namespace fleet::testing {
namespace {

// Samples IsLeader() of each candidate every millisecond on its own thread.
class Observer {
 public:
  explicit Observer(std::vector<const EtcdLeadership*> candidates)
      : candidates_(std::move(candidates)),
        leading_(candidates_.size(), false),
        changed_at_(candidates_.size()) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Observer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Waits (on the sampler's updates) until exactly one candidate other than
  // `except` leads; returns its index, or -1 after `timeout`.
  int WaitForLeader(absl::Duration timeout, int except = -1) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return LeaderLocked(except) >= 0; };
    mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
    return LeaderLocked(except);
  }
  // Waits until candidate `i` does not lead; false after `timeout`.
  bool WaitForNotLeading(int i, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !leading_[i]; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  // Waits until any candidate's leadership changes; false after `timeout`.
  bool WaitForAnyChange(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const int64_t seen = changes_;
    auto done = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return changes_ != seen; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  // When candidate `i`'s IsLeader() was first seen with its current value.
  absl::Time ChangedAt(int i) {
    absl::MutexLock lock(&mu_);
    return changed_at_[i];
  }
  int64_t overlaps() {
    absl::MutexLock lock(&mu_);
    return overlaps_;
  }

 private:
  int LeaderLocked(int except) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int leader = -1;
    for (size_t i = 0; i < leading_.size(); ++i) {
      if (!leading_[i] || static_cast<int>(i) == except) continue;
      if (leader >= 0) return -1;
      leader = static_cast<int>(i);
    }
    return leader;
  }
  void Loop() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
        int count = 0;
        const absl::Time now = absl::Now();
        for (size_t i = 0; i < candidates_.size(); ++i) {
          const bool leading = candidates_[i]->IsLeader();
          count += leading ? 1 : 0;
          if (leading != leading_[i]) {
            leading_[i] = leading;
            changed_at_[i] = now;
            ++changes_;
          }
        }
        if (count > 1) ++overlaps_;
      }
      absl::SleepFor(absl::Milliseconds(1));  // the sampling period, not a wait for an event
    }
  }

  const std::vector<const EtcdLeadership*> candidates_;
  absl::Mutex mu_;
  std::vector<bool> leading_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> changed_at_ ABSL_GUARDED_BY(mu_);
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t overlaps_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

struct Engine {
  std::unique_ptr<EtcdStore> etcd;
  std::unique_ptr<FaultStore> store;
  std::unique_ptr<EtcdLeadership> leadership;
};

class LeadershipFixture : public ::testing::Test {
 protected:
  static constexpr absl::Duration kTtl = absl::Seconds(3);
  static constexpr absl::Duration kMargin = absl::Milliseconds(600);
  // How late the Observer may see a change (a 1 ms sampler on a loaded machine).
  static constexpr absl::Duration kSamplerSlack = absl::Milliseconds(250);

  void Start(int members, absl::Duration ttl = kTtl, absl::Duration margin = kMargin) {
    ttl_ = ttl;
    margin_ = margin;
    absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster = test::EtcdCluster::Start(members);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    std::vector<const EtcdLeadership*> observed;
    for (int i = 0; i < 3; ++i) {
      auto e = std::make_unique<Engine>();
      EtcdStoreOptions store_options;
      store_options.endpoints = cluster_->endpoints();
      store_options.request_timeout = absl::Seconds(2);
      absl::StatusOr<std::unique_ptr<EtcdStore>> etcd = EtcdStore::Open(store_options);
      ASSERT_TRUE(etcd.ok()) << etcd.status();
      e->etcd = std::move(*etcd);
      e->store = std::make_unique<FaultStore>(e->etcd.get());
      EtcdLeadershipOptions options;
      options.engine_id = absl::StrCat("engine-", i);
      options.address = absl::StrCat("127.0.0.1:", 7000 + i);
      options.ttl = ttl;
      options.margin = margin;
      options.clock = &clock_;
      absl::StatusOr<std::unique_ptr<EtcdLeadership>> l =
          EtcdLeadership::Create(e->store.get(), std::move(options));
      ASSERT_TRUE(l.ok()) << l.status();
      e->leadership = std::move(*l);
      observed.push_back(e->leadership.get());
      engines_.push_back(std::move(e));
    }
    observer_ = std::make_unique<Observer>(observed);
    for (auto& e : engines_) e->leadership->Start();
  }
  void TearDown() override {
    observer_.reset();
    engines_.clear();
    cluster_.reset();
  }
  EtcdLeadership& L(int i) { return *engines_[i]->leadership; }
  // A Txn on a fresh, healthy store of the cluster: puts /fleet/test/x under `guard`.
  bool GuardedWrite(const Compare& guard) {
    EtcdStoreOptions store_options;
    store_options.endpoints = cluster_->endpoints();
    absl::StatusOr<std::unique_ptr<EtcdStore>> etcd = EtcdStore::Open(store_options);
    EXPECT_TRUE(etcd.ok()) << etcd.status();
    if (!etcd.ok()) return false;
    Operation put;
    put.kind = Operation::Kind::kPut;
    put.key = "/fleet/test/x";
    put.value = "v";
    Transaction txn;
    txn.compares.push_back(guard);
    txn.on_success.push_back(put);
    absl::StatusOr<TxnResult> r = (*etcd)->Txn(txn);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->succeeded;
  }

  RealClock clock_;
  absl::Duration ttl_;
  absl::Duration margin_;
  std::unique_ptr<test::EtcdCluster> cluster_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::unique_ptr<Observer> observer_;
};

class EtcdLeadershipIntegrationTest : public LeadershipFixture,
                                      public ::testing::WithParamInterface<int> {};

INSTANTIATE_TEST_SUITE_P(Members, EtcdLeadershipIntegrationTest, ::testing::Values(1, 3),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat(info.param, "Member", info.param > 1 ? "s" : "");
                         });

TEST_P(EtcdLeadershipIntegrationTest, OneOfThreeLeadsAndAllAgreeOnItsAddress) {
  ASSERT_NO_FATAL_FAILURE(Start(GetParam()));
  const int leader = observer_->WaitForLeader(absl::Seconds(10));
  ASSERT_GE(leader, 0);
  const std::string address = absl::StrCat("127.0.0.1:", 7000 + leader);
  // The followers learn the address from their watch + read; wait for it by
  // waiting a couple of steps' worth of time at most.
  for (int i = 0; i < 3; ++i) {
    const absl::Time until = absl::Now() + ttl_;
    while (L(i).LeaderAddress() != address && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));  // polls a value that has no event of its own
    }
    EXPECT_EQ(L(i).LeaderAddress(), address) << "engine " << i;
  }
  EXPECT_EQ(observer_->overlaps(), 0);
}

TEST_P(EtcdLeadershipIntegrationTest, KilledLeaderIsReplacedWithinTtlPlusOneSecondWithoutOverlap) {
  ASSERT_NO_FATAL_FAILURE(Start(GetParam()));
  const int old = observer_->WaitForLeader(absl::Seconds(10));
  ASSERT_GE(old, 0);
  const std::optional<Compare> old_guard = L(old).LeaderGuard();
  ASSERT_TRUE(old_guard.has_value());

  const absl::Time killed = absl::Now();
  engines_[old]->store->set_down(true);  // no more keep-alives: as after kill -9
  const int next = observer_->WaitForLeader(ttl_ + absl::Seconds(2), old);
  ASSERT_GE(next, 0) << "no new leader";
  const absl::Time elected = observer_->ChangedAt(next);
  EXPECT_LE(elected - killed, ttl_ + absl::Seconds(1));
  // The old one stopped (by its local deadline) before the new one started.
  ASSERT_TRUE(observer_->WaitForNotLeading(old, absl::ZeroDuration()));
  EXPECT_LT(observer_->ChangedAt(old), elected);
  // By its local deadline (ttl - margin after its last keep-alive, which was
  // before the kill), give or take the sampler's delay; well before the ttl.
  EXPECT_LE(observer_->ChangedAt(old) - killed, ttl_ - margin_ + kSamplerSlack);
  EXPECT_EQ(observer_->overlaps(), 0);
  std::printf("failover: old leader stepped down %s after the kill, new leader after %s\n",
              absl::FormatDuration(observer_->ChangedAt(old) - killed).c_str(),
              absl::FormatDuration(elected - killed).c_str());

  // The deposed leader's guarded writes fail; the new leader's apply.
  EXPECT_FALSE(GuardedWrite(*old_guard));
  const std::optional<Compare> new_guard = L(next).LeaderGuard();
  ASSERT_TRUE(new_guard.has_value());
  EXPECT_TRUE(GuardedWrite(*new_guard));
}

TEST_P(EtcdLeadershipIntegrationTest, ResignHandsOverAtOnce) {
  ASSERT_NO_FATAL_FAILURE(Start(GetParam()));
  const int old = observer_->WaitForLeader(absl::Seconds(10));
  ASSERT_GE(old, 0);
  const absl::Time resigned = absl::Now();
  ASSERT_TRUE(L(old).Resign().ok());
  const int next = observer_->WaitForLeader(ttl_, old);
  ASSERT_GE(next, 0);
  const absl::Duration handover = observer_->ChangedAt(next) - resigned;
  std::printf("handover after resign: %s\n", absl::FormatDuration(handover).c_str());
  EXPECT_LT(handover, absl::Milliseconds(500));
  EXPECT_EQ(observer_->overlaps(), 0);
}

TEST_P(EtcdLeadershipIntegrationTest,
       AllOfEtcdDownLeaderStepsDownBeforeItsLeaseCouldExpireThenReturns) {
  ASSERT_NO_FATAL_FAILURE(Start(GetParam()));
  const int old = observer_->WaitForLeader(absl::Seconds(10));
  ASSERT_GE(old, 0);
  // 1 member: kill it. 3 members: kill two, so no member can serve.
  const absl::Time killed = absl::Now();
  for (int m = 0; m < std::max(1, cluster_->size() - 1); ++m) cluster_->Kill(m);
  ASSERT_TRUE(observer_->WaitForNotLeading(old, ttl_));
  const absl::Duration stepped_down = observer_->ChangedAt(old) - killed;
  std::printf("etcd down: leader stepped down after %s (ttl %s)\n",
              absl::FormatDuration(stepped_down).c_str(), absl::FormatDuration(ttl_).c_str());
  // The lease's earliest expiry at etcd is the last keep-alive + ttl, which is
  // <= killed + ttl; the local deadline is ttl - margin after that keep-alive.
  EXPECT_LE(stepped_down, ttl_ - margin_ + kSamplerSlack);
  EXPECT_EQ(observer_->WaitForLeader(absl::ZeroDuration()), -1);

  const absl::Time back = absl::Now();  // restart begun; it returns once etcd serves
  ASSERT_TRUE(cluster_->Restart(0).ok());
  // A new campaign needs a lease (a round trip) and the old key's expiry (at
  // most one ttl); EtcdStore reconnects within a second. The figure is printed.
  const int again = observer_->WaitForLeader(ttl_ + absl::Seconds(10));
  ASSERT_GE(again, 0) << "no leader after etcd came back";
  std::printf("etcd back: leader again %s after its restart began\n",
              absl::FormatDuration(observer_->ChangedAt(again) - back).c_str());
  EXPECT_EQ(observer_->overlaps(), 0);
}

// Only with 3 members: one member's loss changes nothing visible, whichever it is.
using EtcdLeadershipMemberLossTest = LeadershipFixture;

TEST_F(EtcdLeadershipMemberLossTest, LosingOneOfThreeMembersChangesNothing) {
  // ttl 5 s (the default): when the killed member led etcd's raft group, etcd
  // needs 1-2 s to elect another, and keep-alives wait for that.
  ASSERT_NO_FATAL_FAILURE(Start(3, absl::Seconds(5), absl::Seconds(1)));
  const int leader = observer_->WaitForLeader(absl::Seconds(10));
  ASSERT_GE(leader, 0);
  const std::string address = absl::StrCat("127.0.0.1:", 7000 + leader);
  for (int m = 0; m < 3; ++m) {
    cluster_->Kill(m);
    // Nothing must change: wait for a change that must not come.
    EXPECT_FALSE(observer_->WaitForAnyChange(2 * ttl_)) << "after killing member " << m;
    EXPECT_TRUE(L(leader).IsLeader());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(L(i).LeaderAddress(), address) << "engine " << i;
    ASSERT_TRUE(cluster_->Restart(m).ok());
  }
  EXPECT_EQ(observer_->overlaps(), 0);
}

}  // namespace
}  // namespace fleet::testing
