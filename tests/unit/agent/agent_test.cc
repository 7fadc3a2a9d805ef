#include "agent/agent.h"

#include <string>

#include "agent/systemd/fake_manager.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kWeb[] = "[Service]\nExecStart=/bin/sleep 1000\n";
constexpr char kWeb2[] = "[Service]\nExecStart=/bin/sleep 2000\n";

fleet::v1::ScheduledUnit Scheduled(const std::string& name, const std::string& contents,
                                   fleet::v1::DesiredState state) {
  fleet::v1::ScheduledUnit u;
  u.set_name(name);
  u.set_contents(contents);
  u.set_hash("hash-" + contents.substr(contents.size() - 5));
  u.set_desired_state(state);
  return u;
}

fleet::v1::ScheduleFull Full(std::initializer_list<fleet::v1::ScheduledUnit> units) {
  fleet::v1::ScheduleFull full;
  for (const auto& u : units) *full.add_units() = u;
  return full;
}

class AgentTest : public ::testing::Test {
 protected:
  // Drains the manager's change events into the agent, as the loop does.
  void Pump() {
    absl::StatusOr<std::vector<UnitStatus>> changes = manager_.WaitForChanges(absl::ZeroDuration());
    ASSERT_TRUE(changes.ok());
    agent_.Observe(*changes);
  }
  std::map<std::string, fleet::v1::UnitState> Report() {
    Pump();
    std::map<std::string, fleet::v1::UnitState> out;
    std::optional<fleet::v1::StateReport> r = agent_.TakeReport();
    if (r) {
      for (const auto& s : r->states()) out[s.name()] = s;
    }
    return out;
  }

  FakeClock clock_;
  FakeManager manager_{&clock_};
  Agent agent_{&manager_, "m1"};
};

TEST_F(AgentTest, NothingHappensBeforeTheFirstFullSchedule) {
  ASSERT_TRUE(manager_.InstallUnit("old.service", kWeb).ok());
  ASSERT_TRUE(agent_.Adopt().ok());
  EXPECT_TRUE(agent_.Reconcile().ok());
  EXPECT_TRUE(manager_.file("old.service").has_value());
  EXPECT_EQ(manager_.reloads(), 0);
}

TEST_F(AgentTest, LaunchesLoadsAndReportsStates) {
  ASSERT_TRUE(agent_.Adopt().ok());
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("web.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED),
                                     Scheduled("db.service", kWeb2, fleet::v1::DESIRED_STATE_LOADED)}))
                  .ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.reloads(), 1);  // one reload for the batch
  EXPECT_EQ(manager_.starts("web.service"), 1);
  EXPECT_EQ(manager_.starts("db.service"), 0);
  auto report = Report();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report["web.service"].active_state(), "active");
  EXPECT_EQ(report["web.service"].sub_state(), "running");
  EXPECT_EQ(report["web.service"].load_state(), "loaded");
  EXPECT_NE(report["web.service"].main_pid(), 0u);
  EXPECT_EQ(report["web.service"].machine_id(), "m1");
  EXPECT_EQ(report["web.service"].unit_hash(), "hash-1000\n");
  EXPECT_EQ(report["web.service"].since_unix_micros(), absl::ToUnixMicros(clock_.Now()));
  EXPECT_EQ(report["db.service"].active_state(), "inactive");
  // Nothing changed: no report at all.
  EXPECT_THAT(Report(), IsEmpty());
}

TEST_F(AgentTest, ReportsFailureAndRestartsWithoutRestartingItself) {
  ASSERT_TRUE(agent_.Adopt().ok());
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("web.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED)})).ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  Report();
  manager_.SimulateExit("web.service", 3);
  auto report = Report();
  EXPECT_EQ(report["web.service"].active_state(), "failed");
  EXPECT_EQ(report["web.service"].exit_status(), 3);
  // The agent does not hide a failure by starting the unit again.
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.starts("web.service"), 1);
  manager_.SimulateRestart("web.service");
  EXPECT_EQ(Report()["web.service"].active_state(), "active");
}

TEST_F(AgentTest, ChangedFileIsReplacedAndRestartedOnlyIfRunning) {
  ASSERT_TRUE(agent_.Adopt().ok());
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("a.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED),
                                     Scheduled("b.service", kWeb, fleet::v1::DESIRED_STATE_LOADED)}))
                  .ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  fleet::v1::ScheduleDelta delta;
  *delta.add_upserts() = Scheduled("a.service", kWeb2, fleet::v1::DESIRED_STATE_LAUNCHED);
  *delta.add_upserts() = Scheduled("b.service", kWeb2, fleet::v1::DESIRED_STATE_LOADED);
  ASSERT_TRUE(agent_.ApplyDelta(delta).ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.file("a.service"), kWeb2);
  EXPECT_EQ(manager_.file("b.service"), kWeb2);
  EXPECT_EQ(manager_.restarts("a.service"), 1);
  EXPECT_EQ(manager_.starts("a.service"), 1);
  EXPECT_EQ(manager_.restarts("b.service"), 0);
  EXPECT_EQ(manager_.starts("b.service"), 0);
  EXPECT_EQ(manager_.reloads(), 2);
  EXPECT_EQ(Report()["a.service"].unit_hash(), "hash-2000\n");
}

TEST_F(AgentTest, RemovedUnitIsStoppedDeletedAndReportedRemoved) {
  ASSERT_TRUE(agent_.Adopt().ok());
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("a.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED)})).ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  Report();
  fleet::v1::ScheduleDelta delta;
  delta.add_removes("a.service");
  ASSERT_TRUE(agent_.ApplyDelta(delta).ok());
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.stops("a.service"), 1);
  EXPECT_FALSE(manager_.file("a.service").has_value());
  Pump();
  std::optional<fleet::v1::StateReport> r = agent_.TakeReport();
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(r->removed(), UnorderedElementsAre("a.service"));
  EXPECT_THAT(r->states(), IsEmpty());
}

TEST_F(AgentTest, AdoptsRunningUnitsWithoutRestartingThem) {
  // What a killed agent left behind: one running unit, one only loaded.
  ASSERT_TRUE(manager_.InstallUnit("run.service", kWeb).ok());
  ASSERT_TRUE(manager_.InstallUnit("idle.service", kWeb).ok());
  ASSERT_TRUE(manager_.Reload().ok());
  ASSERT_TRUE(manager_.StartUnit("run.service").ok());
  uint32_t pid = manager_.status("run.service").main_pid;

  ASSERT_TRUE(agent_.Adopt().ok());
  fleet::v1::Machine machine;
  machine.set_id("m1");
  fleet::v1::Register reg = agent_.MakeRegister(machine);
  ASSERT_EQ(reg.units_size(), 2);
  EXPECT_EQ(reg.machine().id(), "m1");
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("run.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED),
                                     Scheduled("idle.service", kWeb, fleet::v1::DESIRED_STATE_LOADED)}))
                  .ok());
  EXPECT_THAT(agent_.Plan(), IsEmpty());
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.starts("run.service"), 1);  // only the start before the agent came
  EXPECT_EQ(manager_.status("run.service").main_pid, pid);
  EXPECT_EQ(manager_.reloads(), 1);
  // The engine's hash now names the adopted files.
  EXPECT_EQ(Report()["run.service"].unit_hash(), "hash-1000\n");
}

TEST_F(AgentTest, StopsAtTheFirstFailingTaskAndRetriesLater) {
  ASSERT_TRUE(agent_.Adopt().ok());
  ASSERT_TRUE(agent_.ApplyFull(Full({Scheduled("a.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED)})).ok());
  manager_.FailNext("reload", absl::UnavailableError("bus down"));
  absl::Status s = agent_.Reconcile();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager_.starts("a.service"), 0);
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_EQ(manager_.starts("a.service"), 1);
}

TEST_F(AgentTest, RefusesBadEntriesButAppliesTheRest) {
  ASSERT_TRUE(agent_.Adopt().ok());
  absl::Status s = agent_.ApplyFull(Full({Scheduled("../evil.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED),
                                          Scheduled("x.service", kWeb, fleet::v1::DESIRED_STATE_INACTIVE),
                                          Scheduled("ok.service", kWeb, fleet::v1::DESIRED_STATE_LAUNCHED)}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("evil"));
  ASSERT_TRUE(agent_.Reconcile().ok());
  EXPECT_TRUE(manager_.file("ok.service").has_value());
  EXPECT_FALSE(manager_.file("../evil.service").has_value());
  EXPECT_FALSE(manager_.file("x.service").has_value());
}

TEST_F(AgentTest, DeltaBeforeFullIsRefused) {
  fleet::v1::ScheduleDelta delta;
  EXPECT_EQ(agent_.ApplyDelta(delta).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fleet::agent
