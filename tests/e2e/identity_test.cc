// Machine identity and the rarer scheduling cases on a real sandbox cluster:
// a second agent with a machine id in use, a host that returns with a new
// machine id, conflicting global units, a template placed by %i.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using Placement = std::map<std::string, std::vector<int>>;

TEST(IdentityTest, SecondAgentWithAMachineIdInUseIsRefused) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  // Inside host 2, an agent that claims host 1's machine id (with host 1's
  // certificate: the engine refuses it for the id in use, not for the
  // certificate). `timeout` ends it if it keeps retrying; either way its log
  // must say why.
  CommandOutput out = c.Exec(
      2, absl::StrCat("timeout 8 ", FLEET_BINARY_DIR, "/agent/fleet-agent --systemd user --engine ",
                      c.EngineAddress(), " --machine-id ", c.MachineId(1), " ",
                      c.AgentTlsFlags(c.MachineId(1)), " 2>&1"));
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "already has a connected agent")) << out.text;

  // The real host 1 is untouched: a unit pinned to it runs there.
  std::string pinned = SleepUnit("pinned.service", "MachineID=" + c.MachineId(1) + "\n");
  out = c.Fleetctl("start " + pinned + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(IsActive(c, 1, "pinned.service"), "active");
  EXPECT_NE(IsActive(c, 2, "pinned.service"), "active");
}

TEST(IdentityTest, HostBackWithANewMachineIdMovesExactlyItsUnits) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string args = "start";
  for (const char* unit : {"a.service", "b.service", "c.service"}) {
    absl::StrAppend(&args, " ", SleepUnit(unit, ""));
  }
  CommandOutput out = c.Fleetctl(args + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement before;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        before = ActiveHosts(c, 3, text);
        return before.size() == 3;
      },
      absl::Seconds(60));
  ASSERT_EQ(before.size(), 3u);
  int rebooted = before["a.service"][0];
  ASSERT_NE(rebooted, 0);
  std::map<std::string, std::string> pids;
  for (const char* unit : {"b.service", "c.service"}) {
    pids[unit] = MainPid(c, before[unit][0], unit);
  }
  std::string old_id = c.MachineId(rebooted);

  ASSERT_EQ(c.Sandbox(absl::StrCat("kill-host ", rebooted)).exit_code, 0);
  out = c.Sandbox(absl::StrCat("start-host ", rebooted, " --new-machine-id"));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  ASSERT_NE(c.MachineId(rebooted), old_id);

  // a.service runs again (on any host, the new identity included); the old
  // id leaves list-machines; b and c never moved nor restarted.
  std::string machines;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    machines = c.Fleetctl("list-machines --no-legend --full --fields=machine").text;
    if (!absl::StrContains(machines, old_id)) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_FALSE(absl::StrContains(machines, old_id)) << machines;
  Placement after;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        after = ActiveHosts(c, 3, text);
        return after.size() == 3 && after["a.service"].size() == 1 &&
               after["a.service"][0] != 0;
      },
      absl::Seconds(60));
  ASSERT_EQ(after["a.service"].size(), 1u);
  EXPECT_EQ(IsActive(c, after["a.service"][0], "a.service"), "active");
  for (const char* unit : {"b.service", "c.service"}) {
    EXPECT_EQ(after[unit], before[unit]) << unit;
    EXPECT_EQ(MainPid(c, before[unit][0], unit), pids[unit]) << unit;
  }
  for (const char* unit : {"a.service", "b.service", "c.service"}) {
    int active = 0;
    for (int h = 1; h <= 3; ++h) active += IsActive(c, h, unit) == "active";
    EXPECT_EQ(active, 1) << unit;
  }
}

TEST(IdentityTest, ConflictingGlobalUnitsTheFirstSubmittedWins) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string first = SleepUnit("first.service", "Global=true\n");
  std::string second = SleepUnit("second.service", "Global=true\nConflicts=first.service\n");
  CommandOutput out = c.Fleetctl("start " + first + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = c.Fleetctl("start " + second + " --block-attempts=20");
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "first.service")) << out.text;

  Placement want = {{"first.service", {1, 2}}};
  EXPECT_EQ(WaitForActive(c, 2, want), want);
  for (int h = 1; h <= 2; ++h) {
    EXPECT_EQ(IsActive(c, h, "first.service"), "active") << h;
    EXPECT_NE(IsActive(c, h, "second.service"), "active") << h;
  }
}

TEST(IdentityTest, TemplateInstancesLandOnTheHostTheirNameSays) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string path = SleepUnit("web@.service", "MachineMetadata=hostname=%i\n");
  CommandOutput out = c.Fleetctl("submit " + path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = c.Fleetctl("start web@host1.service web@host3.service --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement want = {{"web@host1.service", {1}}, {"web@host3.service", {3}}};
  EXPECT_EQ(WaitForActive(c, 3, want), want);
  EXPECT_EQ(IsActive(c, 1, "web@host1.service"), "active");
  EXPECT_EQ(IsActive(c, 3, "web@host3.service"), "active");
  EXPECT_NE(IsActive(c, 2, "web@host1.service"), "active");
}

}  // namespace
}  // namespace fleet::test
