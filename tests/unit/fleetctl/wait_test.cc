#include "fleetctl/wait.h"

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

v1::UnitStatus Entry(const std::string& machine, const std::string& load,
                     const std::string& active, const std::string& sub) {
  v1::UnitStatus e;
  e.set_name("u.service");
  e.set_machine_id(machine);
  if (!load.empty()) {
    e.mutable_state()->set_load_state(load);
    e.mutable_state()->set_active_state(active);
    e.mutable_state()->set_sub_state(sub);
  }
  return e;
}

Progress AssessOne(Goal goal, const v1::UnitStatus& e, std::string* detail) {
  return Assess(goal, {&e}, detail);
}

TEST(AssessTest, LaunchedNeedsActive) {
  std::string detail;
  EXPECT_EQ(AssessOne(Goal::kLaunched, Entry("m1", "loaded", "active", "running"), &detail),
            Progress::kReached);
  EXPECT_EQ(AssessOne(Goal::kLaunched, Entry("m1", "loaded", "activating", "start"), &detail),
            Progress::kWaiting);
  EXPECT_EQ(detail, "activating/start");
  EXPECT_EQ(AssessOne(Goal::kLaunched, Entry("m1", "", "", ""), &detail), Progress::kWaiting);
  EXPECT_EQ(AssessOne(Goal::kLaunched, Entry("", "", "", ""), &detail), Progress::kWaiting);
}

TEST(AssessTest, FailedUnitEndsTheWaitWithWhy) {
  std::string detail;
  v1::UnitStatus e = Entry("m1", "loaded", "failed", "failed");
  e.mutable_state()->set_exit_status(3);
  EXPECT_EQ(AssessOne(Goal::kLaunched, e, &detail), Progress::kFailed);
  EXPECT_EQ(detail, "failed on m1 (failed, exit status 3)");
}

TEST(AssessTest, UnplaceableUnitEndsTheWaitWithItsReason) {
  std::string detail;
  v1::UnitStatus e = Entry("", "", "", "");
  e.set_unscheduled_reason("no machine matches MachineMetadata region=mars");
  EXPECT_EQ(AssessOne(Goal::kLaunched, e, &detail), Progress::kFailed);
  EXPECT_EQ(detail, "cannot be placed: no machine matches MachineMetadata region=mars");
}

TEST(AssessTest, LoadedMeansInstalledAndNotRunning) {
  std::string detail;
  EXPECT_EQ(AssessOne(Goal::kLoaded, Entry("m1", "loaded", "inactive", "dead"), &detail),
            Progress::kReached);
  EXPECT_EQ(AssessOne(Goal::kLoaded, Entry("m1", "loaded", "active", "running"), &detail),
            Progress::kWaiting);
  EXPECT_EQ(AssessOne(Goal::kLoaded, Entry("m1", "loaded", "deactivating", "stop"), &detail),
            Progress::kWaiting);
}

TEST(AssessTest, UnloadedMeansNoMachineReportsIt) {
  std::string detail;
  EXPECT_EQ(Assess(Goal::kUnloaded, {}, &detail), Progress::kReached);
  v1::UnitStatus gone = Entry("", "", "", "");
  EXPECT_EQ(AssessOne(Goal::kUnloaded, gone, &detail), Progress::kReached);
  EXPECT_EQ(AssessOne(Goal::kUnloaded, Entry("m1", "loaded", "inactive", "dead"), &detail),
            Progress::kWaiting);
}

TEST(AssessTest, GlobalUnitWaitsForEveryMachine) {
  std::string detail;
  v1::UnitStatus a = Entry("m1", "loaded", "active", "running");
  v1::UnitStatus b = Entry("m2", "loaded", "activating", "start");
  EXPECT_EQ(Assess(Goal::kLaunched, {&a, &b}, &detail), Progress::kWaiting);
  b = Entry("m2", "loaded", "active", "running");
  EXPECT_EQ(Assess(Goal::kLaunched, {&a, &b}, &detail), Progress::kReached);
}

TEST(AssessTest, UnknownUnitFails) {
  std::string detail;
  EXPECT_EQ(Assess(Goal::kLaunched, {}, &detail), Progress::kFailed);
}

}  // namespace
}  // namespace fleet::ctl
