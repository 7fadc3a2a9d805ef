// AgentRunner + EngineLink over real gRPC on 127.0.0.1 against in-test
// engines, with the in-memory FakeManager in place of systemd.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "agent/engine_link.h"
#include "agent/runner.h"
#include "agent/systemd/fake_manager.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_engine.h"

namespace fleet::agent {
namespace {

using fleet::test::FakeEngine;
using fleet::test::MakeScheduledUnit;

constexpr absl::Duration kTimeout = absl::Seconds(20);

class AgentLinkTest : public ::testing::Test {
 protected:
  void StartRunner(std::vector<std::string> engines) {
    AgentRunnerOptions options;
    options.machine.set_id("machine-1");
    options.machine.set_agent_version("test");
    options.link.engines = std::move(engines);
    options.link.initial_backoff = absl::Milliseconds(20);
    options.link.max_backoff = absl::Milliseconds(200);
    runner_ = std::make_unique<AgentRunner>(&manager_, &clock_, options);
    thread_ = std::thread([this] { status_ = runner_->Run(); });
  }
  void TearDown() override {
    if (runner_ != nullptr) {
      runner_->Shutdown();
      thread_.join();
      EXPECT_TRUE(status_.ok()) << status_;
    }
  }

  RealClock clock_;
  FakeManager manager_{&clock_};
  std::unique_ptr<AgentRunner> runner_;
  std::thread thread_;
  absl::Status status_;
};

TEST_F(AgentLinkTest, RegistersRunsTheScheduleReportsAndBeats) {
  FakeEngine engine;
  engine.SetHeartbeatIntervalMs(20);
  engine.Upsert(MakeScheduledUnit("a.service", "A", fleet::v1::DESIRED_STATE_LAUNCHED));
  StartRunner({engine.Start()});
  ASSERT_TRUE(engine.WaitFor(
      [](const FakeEngine::View& v) {
        auto it = v.states.find("a.service");
        return it != v.states.end() && it->second.active_state() == "active" && v.heartbeats >= 3;
      },
      kTimeout));
  FakeEngine::View view = engine.Snapshot();
  ASSERT_EQ(view.registers.size(), 1u);
  EXPECT_EQ(view.registers[0].machine().id(), "machine-1");
  EXPECT_EQ(manager_.starts("a.service"), 1);
}

TEST_F(AgentLinkTest, FollowerRedirectsToTheLeader) {
  FakeEngine leader, follower;
  leader.Upsert(MakeScheduledUnit("a.service", "A", fleet::v1::DESIRED_STATE_LAUNCHED));
  leader.Start();
  follower.Start();
  follower.RedirectTo(leader.address());
  StartRunner({follower.address()});
  ASSERT_TRUE(leader.WaitFor(
      [](const FakeEngine::View& v) {
        return v.connected == 1 && v.states.contains("a.service") &&
               v.states.at("a.service").active_state() == "active";
      },
      kTimeout));
  EXPECT_TRUE(follower.Snapshot().registers.empty());
}

TEST_F(AgentLinkTest, LostStreamKeepsUnitsRunningAndReconnectsWithFullState) {
  FakeEngine engine;
  engine.Upsert(MakeScheduledUnit("a.service", "A", fleet::v1::DESIRED_STATE_LAUNCHED));
  StartRunner({engine.Start()});
  ASSERT_TRUE(engine.WaitFor(
      [](const FakeEngine::View& v) {
        return v.states.contains("a.service") && v.states.at("a.service").active_state() == "active";
      },
      kTimeout));
  engine.DropStreams();
  ASSERT_TRUE(engine.WaitFor([](const FakeEngine::View& v) { return v.registers.size() == 2; }, kTimeout));
  FakeEngine::View view = engine.Snapshot();
  ASSERT_EQ(view.registers[1].units_size(), 1);
  EXPECT_EQ(view.registers[1].units(0).active_state(), "active");
  EXPECT_EQ(manager_.stops("a.service"), 0);
  EXPECT_EQ(manager_.starts("a.service"), 1);
  // Changes made while it was away arrive with the new full schedule.
  engine.Upsert(MakeScheduledUnit("b.service", "B", fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(engine.WaitFor(
      [](const FakeEngine::View& v) {
        return v.states.contains("b.service") && v.states.at("b.service").active_state() == "active";
      },
      kTimeout));
}

TEST_F(AgentLinkTest, EngineDownAtStartIsRetriedUntilItComes) {
  // A free port: bound, read, closed. The agent starts against it while
  // nothing listens, then the engine comes up there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  StartRunner({address});
  FakeEngine engine;
  ASSERT_EQ(engine.Start(address), address);
  ASSERT_TRUE(engine.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, kTimeout));
}

TEST_F(AgentLinkTest, StopEndsTheReconnectWaitAtOnce) {
  // Nothing listens on port 1; the link waits before its next try as long as
  // the engine would wait for a heartbeat: an hour here.
  EngineLinkOptions options;
  options.engines = {"127.0.0.1:1"};
  options.heartbeat_interval = absl::Hours(1);
  options.initial_backoff = absl::Hours(1);
  options.max_backoff = absl::Hours(1);
  absl::Notification lost;
  EngineLink link(
      options, [] { return fleet::v1::Register(); }, [](const fleet::v1::EngineMessage&) {},
      [&lost](const std::string&, const absl::Status&) {
        if (!lost.HasBeenNotified()) lost.Notify();
      });
  link.Start();
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(kTimeout));
  fleet::v1::AgentMessage beat;
  beat.mutable_heartbeat();
  EXPECT_FALSE(link.Send(beat));  // no stream: dropped
  absl::Time before = absl::Now();
  link.Stop();
  EXPECT_LT(absl::Now() - before, kTimeout) << "Stop waited for the reconnect";
}

TEST_F(AgentLinkTest, LargeMessagesArriveWholeAndOneOverTheLimitEndsTheStream) {
  FakeEngine engine;
  std::string address = engine.Start();
  ASSERT_FALSE(address.empty());
  EngineLinkOptions options;
  options.engines = {address};
  options.initial_backoff = options.max_backoff = absl::Hours(1);  // one stream only
  absl::Mutex mu;
  std::vector<size_t> sizes;  // of every unit file received
  absl::Status lost = absl::UnknownError("not ended");
  absl::Notification ended;
  EngineLink link(
      options, [] { return fleet::v1::Register(); },
      [&](const fleet::v1::EngineMessage& message) {
        absl::MutexLock lock(&mu);
        for (const auto& unit : message.delta().upserts()) sizes.push_back(unit.contents().size());
      },
      [&](const std::string&, const absl::Status& status) {
        if (ended.HasBeenNotified()) return;
        lost = status;
        ended.Notify();
      });
  link.Start();
  ASSERT_TRUE(engine.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, kTimeout));

  // 3 MiB in one message: many HTTP/2 frames, beyond the default windows.
  std::vector<fleet::v1::ScheduledUnit> big;
  for (int i = 0; i < 3; ++i) {
    big.push_back(MakeScheduledUnit("big-" + std::to_string(i) + ".service", std::string(1 << 20, 'a' + i),
                                    fleet::v1::DESIRED_STATE_LAUNCHED));
  }
  engine.UpsertMany(big);
  {
    absl::MutexLock lock(&mu);
    auto three = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return sizes.size() == 3; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&three), kTimeout));
    EXPECT_EQ(sizes, (std::vector<size_t>{1 << 20, 1 << 20, 1 << 20}));
  }
  EXPECT_FALSE(ended.HasBeenNotified());

  // Over GrpcStream::kMaxReceiveMessageBytes (gRPC's default for clients).
  engine.Upsert(MakeScheduledUnit("huge.service", std::string(5 << 20, 'h'), fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(kTimeout));
  EXPECT_EQ(lost.code(), absl::StatusCode::kResourceExhausted) << lost;
  EXPECT_NE(lost.message().find("at most 4194304 are accepted"), absl::string_view::npos) << lost;
  absl::MutexLock lock(&mu);
  EXPECT_EQ(sizes.size(), 3u);
}

// The loop in parts, as bench/scale's hollow agents drive it: the caller turns
// the runner when the manager is woken, instead of a thread in Run().
TEST(AgentRunnerTurns, CallerTurnedRunnerRunsTheScheduleAndReports) {
  FakeEngine engine;
  engine.Upsert(MakeScheduledUnit("a.service", "A", fleet::v1::DESIRED_STATE_LAUNCHED));
  RealClock clock;
  FakeManager manager(&clock);
  absl::Mutex mu;
  int wakes = 0;
  manager.SetWakeListener([&] {
    absl::MutexLock lock(&mu);
    ++wakes;
  });
  AgentRunnerOptions options;
  options.machine.set_id("machine-1");
  options.link.engines = {engine.Start()};
  options.resync_interval = absl::Minutes(3);
  AgentRunner runner(&manager, &clock, options);
  ASSERT_TRUE(runner.Start().ok());
  auto active = [](const FakeEngine::View& v) {
    return v.states.contains("a.service") && v.states.at("a.service").active_state() == "active";
  };
  absl::Time deadline = absl::Now() + kTimeout;
  while (!engine.WaitFor(active, absl::ZeroDuration()) && absl::Now() < deadline) {
    absl::StatusOr<std::vector<UnitStatus>> changes = manager.WaitForChanges(absl::Milliseconds(20));
    ASSERT_TRUE(changes.ok()) << changes.status();
    absl::StatusOr<AgentRunner::TurnResult> turn = runner.Turn(*changes);
    ASSERT_TRUE(turn.ok()) << turn.status();
    // Nothing failed: the next turn is due at the resync only.
    EXPECT_GT(turn->due, absl::Now() + absl::Minutes(2));
  }
  ASSERT_TRUE(engine.WaitFor(active, absl::ZeroDuration()));
  EXPECT_EQ(manager.starts("a.service"), 1);
  {
    absl::MutexLock lock(&mu);
    EXPECT_GE(wakes, 1) << "the schedule's arrival did not wake the caller";
  }
  runner.Finish();
  EXPECT_TRUE(engine.WaitFor([](const FakeEngine::View& v) { return v.connected == 0; }, kTimeout))
      << "Finish left the stream open";
}

}  // namespace
}  // namespace fleet::agent
