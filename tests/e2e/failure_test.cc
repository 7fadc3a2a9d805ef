// Failures on a real sandbox cluster, through fleetctl: a host vanishes and
// comes back, the engine or an agent is killed with SIGKILL and restarted.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using Placement = std::map<std::string, std::vector<int>>;

const std::vector<std::string> kUnits = {"a.service", "b.service", "c.service"};

// Starts a, b and c (no constraints: one per host on three hosts) and
// returns where they run.
Placement StartThree(const SandboxCluster& c) {
  std::string args = "start";
  for (const std::string& unit : kUnits) absl::StrAppend(&args, " ", SleepUnit(unit, ""));
  CommandOutput out = c.Fleetctl(args + " --block-attempts=150");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  Placement got;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(c, 3, text);
        return got.size() == kUnits.size();
      },
      absl::Seconds(60));
  return got;
}

// Polls list-machines until it lists `count` machines.
bool WaitForMachines(const SandboxCluster& c, int count) {
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    std::string text = c.Fleetctl("list-machines --no-legend --full --fields=machine").text;
    if (std::vector<std::string>(absl::StrSplit(text, '\n', absl::SkipEmpty())).size() ==
        static_cast<size_t>(count)) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

TEST(FailureTest, LostHostsUnitsMoveAndNothingRunsTwiceWhenItReturns) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  Placement before = StartThree(c);
  ASSERT_EQ(before.size(), 3u);
  int lost = before["a.service"][0];
  ASSERT_NE(lost, 0);

  CommandOutput out = c.Sandbox(absl::StrCat("kill-host ", lost));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  // agent_ttl (4 s) + 10 s: a.service runs on one of the two others.
  Placement after;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        after = ActiveHosts(c, 3, text);
        return after["a.service"].size() == 1 && after["a.service"][0] != lost &&
               after["a.service"][0] != 0;
      },
      absl::Seconds(14));
  ASSERT_EQ(after["a.service"].size(), 1u);
  int moved_to = after["a.service"][0];
  EXPECT_NE(moved_to, lost);
  EXPECT_EQ(IsActive(c, moved_to, "a.service"), "active");
  for (const char* unit : {"b.service", "c.service"}) {
    EXPECT_EQ(after[unit], before[unit]) << unit;  // the others stayed
  }

  // The host comes back. A unit pinned to it runs there: its agent has
  // taken its (fresh) schedule; still every unit runs exactly once.
  out = c.Sandbox(absl::StrCat("start-host ", lost));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  ASSERT_TRUE(WaitForMachines(c, 3));
  std::string pinned = SleepUnit("pinned.service", "MachineID=" + c.MachineId(lost) + "\n");
  out = c.Fleetctl("start " + pinned + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(IsActive(c, lost, "pinned.service"), "active");
  ExpectEachActiveOnce(c, 3, kUnits);
  Placement last = ActiveHosts(
      c, 3, c.Fleetctl("list-units --no-legend --full --fields=unit,machine,active").text);
  for (const std::string& unit : kUnits) {
    ASSERT_EQ(last[unit].size(), 1u) << unit;
    EXPECT_EQ(IsActive(c, last[unit][0], unit), "active") << unit;
  }
}

TEST(FailureTest, EngineKillAndRestartKeepsEveryUnitWhereItRuns) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  Placement before = StartThree(c);
  ASSERT_EQ(before.size(), 3u);
  std::map<std::string, std::string> pids;
  for (const std::string& unit : kUnits) pids[unit] = MainPid(c, before[unit][0], unit);
  std::string files = c.Fleetctl("list-unit-files --no-legend --full").text;

  CommandOutput out = c.Sandbox("kill-engine");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = c.Sandbox("start-engine");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  ASSERT_TRUE(WaitForMachines(c, 3));
  EXPECT_EQ(WaitForActive(c, 3, before), before);
  // Past one agent_ttl after the restart nothing has moved (a negative
  // check: a window, not an event, so a plain wait).
  absl::SleepFor(absl::Seconds(5));
  EXPECT_EQ(WaitForActive(c, 3, before), before);
  EXPECT_EQ(c.Fleetctl("list-unit-files --no-legend --full").text, files);
  for (const std::string& unit : kUnits) {
    EXPECT_EQ(MainPid(c, before[unit][0], unit), pids[unit]) << unit;
  }
  ExpectEachActiveOnce(c, 3, kUnits);
}

TEST(FailureTest, AgentKillAndRestartKeepsUnitsRunning) {
  // A longer agent_ttl: the agent must be back before its machine is
  // declared lost, even on a loaded machine.
  SandboxClusterOptions options = WithHosts(2);
  options.agent_ttl = "15s";
  auto cluster = SandboxCluster::Up(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string path = SleepUnit("a.service", "");
  CommandOutput out = c.Fleetctl("start " + path + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement before;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        before = ActiveHosts(c, 2, text);
        return before.size() == 1;
      },
      absl::Seconds(60));
  ASSERT_EQ(before["a.service"].size(), 1u);
  int host = before["a.service"][0];
  ASSERT_NE(host, 0);
  std::string pid = MainPid(c, host, "a.service");

  out = c.Sandbox(absl::StrCat("kill-agent ", host));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(IsActive(c, host, "a.service"), "active");
  out = c.Sandbox(absl::StrCat("start-agent ", host));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(WaitForActive(c, 2, before), before);
  EXPECT_EQ(MainPid(c, host, "a.service"), pid);
  EXPECT_NE(IsActive(c, 3 - host, "a.service"), "active");

  // The new agent reports state: a stop goes through it and is seen.
  out = c.Fleetctl("stop a.service --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(IsActive(c, host, "a.service"), "inactive");
  c.WaitForListUnits(
      "unit,active",
      [](const std::string& text) { return absl::StrContains(text, "inactive"); },
      absl::Seconds(60));
  EXPECT_TRUE(absl::StrContains(c.Fleetctl("list-units --no-legend --fields=unit,active").text,
                                "inactive"));
}

}  // namespace
}  // namespace fleet::test
