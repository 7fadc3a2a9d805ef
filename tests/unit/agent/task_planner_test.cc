#include "agent/task_planner.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAreArray;

Task Unload(std::string u) { return {TaskKind::kUnload, std::move(u), ""}; }
Task Load(std::string u, std::string c) { return {TaskKind::kLoad, std::move(u), std::move(c)}; }
Task Reload() { return {TaskKind::kReload, "", ""}; }
Task Stop(std::string u) { return {TaskKind::kStop, std::move(u), ""}; }
Task Restart(std::string u) { return {TaskKind::kRestart, std::move(u), ""}; }
Task Start(std::string u) { return {TaskKind::kStart, std::move(u), ""}; }

DesiredUnit Loaded(std::string c) { return {std::move(c), "h", Target::kLoaded}; }
DesiredUnit Launched(std::string c) { return {std::move(c), "h", Target::kLaunched}; }

struct Case {
  std::string name;
  std::map<std::string, DesiredUnit> desired;
  std::map<std::string, InstalledUnit> installed;
  std::vector<Task> want;
};

class PlanTasksTest : public ::testing::TestWithParam<Case> {};

TEST_P(PlanTasksTest, Plans) {
  const Case& c = GetParam();
  EXPECT_THAT(PlanTasks(c.desired, c.installed), ElementsAreArray(c.want));
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(
    Table, PlanTasksTest,
    ::testing::Values(
        Case{"NothingToDo", {}, {}, {}},
        Case{"NewLoadedUnitIsLoadedNotStarted", {{"a.service", Loaded("A")}}, {},
             {Load("a.service", "A"), Reload()}},
        Case{"NewLaunchedUnitIsLoadedThenStarted", {{"a.service", Launched("A")}}, {},
             {Load("a.service", "A"), Reload(), Start("a.service")}},
        Case{"UnchangedRunningUnitIsLeftAlone", {{"a.service", Launched("A")}},
             {{"a.service", {"A", true}}}, {}},
        Case{"UnchangedLoadedUnitIsLeftAlone", {{"a.service", Loaded("A")}},
             {{"a.service", {"A", false}}}, {}},
        Case{"LaunchedToLoadedStops", {{"a.service", Loaded("A")}},
             {{"a.service", {"A", true}}}, {Stop("a.service")}},
        Case{"LoadedToLaunchedStarts", {{"a.service", Launched("A")}},
             {{"a.service", {"A", false}}}, {Start("a.service")}},
        Case{"UndesiredRunningUnitIsStoppedAndUnloaded", {},
             {{"a.service", {"A", true}}}, {Unload("a.service"), Reload()}},
        Case{"UndesiredLoadedUnitIsUnloadedOnly", {}, {{"a.service", {"A", false}}},
             {Unload("a.service"), Reload()}},
        Case{"ChangedRunningUnitIsReplacedAndRestarted", {{"a.service", Launched("B")}},
             {{"a.service", {"A", true}}},
             {Load("a.service", "B"), Reload(), Restart("a.service")}},
        Case{"ChangedStoppedLoadedUnitIsReplacedNotStarted", {{"a.service", Loaded("B")}},
             {{"a.service", {"A", false}}}, {Load("a.service", "B"), Reload()}},
        Case{"ChangedRunningUnitNowOnlyLoadedIsReplacedAndStopped", {{"a.service", Loaded("B")}},
             {{"a.service", {"A", true}}}, {Load("a.service", "B"), Reload(), Stop("a.service")}},
        Case{"FixedOrderAcrossUnits",
             {{"b.service", Launched("B")}, {"c.service", Loaded("C2")}, {"d.service", Launched("D")}},
             {{"a.service", {"A", true}}, {"c.service", {"C", false}}, {"d.service", {"D", false}}},
             {Unload("a.service"), Load("b.service", "B"), Load("c.service", "C2"), Reload(),
              Start("b.service"), Start("d.service")}}),
    CaseName);

TEST(PlanTasksReloadTest, PendingReloadIsPlannedWithoutFileChanges) {
  std::map<std::string, DesiredUnit> desired = {{"a.service", Launched("A")}};
  std::map<std::string, InstalledUnit> installed = {{"a.service", {"A", false}}};
  EXPECT_THAT(PlanTasks(desired, installed, /*reload_pending=*/true),
              ElementsAreArray({Reload(), Start("a.service")}));
  EXPECT_THAT(PlanTasks(desired, installed, /*reload_pending=*/false),
              ElementsAreArray({Start("a.service")}));
}

TEST(TaskKindNameTest, NamesEveryKind) {
  EXPECT_EQ(TaskKindName(TaskKind::kUnload), "unload");
  EXPECT_EQ(TaskKindName(TaskKind::kLoad), "load");
  EXPECT_EQ(TaskKindName(TaskKind::kReload), "daemon-reload");
  EXPECT_EQ(TaskKindName(TaskKind::kStop), "stop");
  EXPECT_EQ(TaskKindName(TaskKind::kRestart), "restart");
  EXPECT_EQ(TaskKindName(TaskKind::kStart), "start");
}

}  // namespace
}  // namespace fleet::agent
