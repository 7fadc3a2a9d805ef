// Every [X-Fleet] scheduling rule through fleetctl on a real sandbox
// cluster: where fleetctl says a unit runs, the host's own systemd runs it.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using Placement = std::map<std::string, std::vector<int>>;

SandboxClusterOptions ThreeHostsWithMetadata() {
  SandboxClusterOptions options = WithHosts(3);
  options.metadata = {"1:region=us,disk=ssd", "2:region=us,disk=hdd", "3:region=eu,disk=ssd"};
  return options;
}

TEST(SchedulingTest, MachineMetadataOneKeySeveralKeysSeveralValues) {
  auto cluster = SandboxCluster::Up(ThreeHostsWithMetadata());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string eu = SleepUnit("eu.service", "MachineMetadata=region=eu\n");
  std::string us_ssd =
      SleepUnit("us-ssd.service", "MachineMetadata=region=us\nMachineMetadata=disk=ssd\n");
  std::string hdd_any =
      SleepUnit("hdd-any.service", "MachineMetadata=\"region=eu\" \"region=us\"\nMachineMetadata=disk=hdd\n");
  CommandOutput out =
      c.Fleetctl(absl::StrCat("start ", eu, " ", us_ssd, " ", hdd_any, " --block-attempts=150"));
  ASSERT_EQ(out.exit_code, 0) << out.text;

  Placement want = {{"eu.service", {3}}, {"us-ssd.service", {1}}, {"hdd-any.service", {2}}};
  EXPECT_EQ(WaitForActive(c, 3, want), want);
  EXPECT_EQ(IsActive(c, 3, "eu.service"), "active");
  EXPECT_EQ(IsActive(c, 1, "us-ssd.service"), "active");
  EXPECT_EQ(IsActive(c, 2, "hdd-any.service"), "active");
  EXPECT_NE(IsActive(c, 1, "eu.service"), "active");
  EXPECT_NE(IsActive(c, 2, "eu.service"), "active");
}

TEST(SchedulingTest, MachineIdAndMachineOf) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string pinned = SleepUnit("pinned.service", "MachineID=" + c.MachineId(2) + "\n");
  std::string follower = SleepUnit("follower.service", "MachineOf=pinned.service\n");
  // The follower is submitted first: it waits for its peer, then joins it.
  CommandOutput out = c.Fleetctl(absl::StrCat("start ", follower, " ", pinned,
                                              " --block-attempts=150"));
  ASSERT_EQ(out.exit_code, 0) << out.text;

  Placement want = {{"pinned.service", {2}}, {"follower.service", {2}}};
  EXPECT_EQ(WaitForActive(c, 3, want), want);
  EXPECT_EQ(IsActive(c, 2, "pinned.service"), "active");
  EXPECT_EQ(IsActive(c, 2, "follower.service"), "active");
}

TEST(SchedulingTest, ConflictingUnitsSpreadAndAFourthCannotBePlaced) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  // c1 names the others on one (quoted, as fleet wants) line, c2 uses a
  // glob, c3 declares nothing: one side is enough.
  std::string c1 = SleepUnit("c1.service", "Conflicts=\"c2.service\" \"c3.service\" \"c4.service\"\n");
  std::string c2 = SleepUnit("c2.service", "Conflicts=c*.service\n");
  std::string c3 = SleepUnit("c3.service", "");
  CommandOutput out = c.Fleetctl(absl::StrCat("start ", c1, " ", c2, " ", c3,
                                              " --block-attempts=150"));
  ASSERT_EQ(out.exit_code, 0) << out.text;
  std::map<std::string, std::vector<int>> got;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(c, 3, text);
        return got.size() == 3;
      },
      absl::Seconds(60));
  ASSERT_EQ(got.size(), 3u);
  std::vector<int> hosts;
  for (const auto& [unit, on] : got) {
    ASSERT_EQ(on.size(), 1u) << unit;
    hosts.push_back(on[0]);
    EXPECT_EQ(IsActive(c, on[0], unit), "active") << unit;
  }
  std::sort(hosts.begin(), hosts.end());
  EXPECT_EQ(hosts, (std::vector<int>{1, 2, 3}));

  std::string c4 = SleepUnit("c4.service", "Conflicts=c3.service\n");
  out = c.Fleetctl("start " + c4 + " --block-attempts=30");
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "c4.service")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "cannot be placed")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "conflict")) << out.text;
  for (int h = 1; h <= 3; ++h) EXPECT_NE(IsActive(c, h, "c4.service"), "active");
}

TEST(SchedulingTest, GlobalUnitsRunOncePerMatchingHost) {
  SandboxClusterOptions options = WithHosts(3);
  options.metadata = {"1:role=web", "2:role=web", "3:role=db"};
  auto cluster = SandboxCluster::Up(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string everywhere = SleepUnit("everywhere.service", "Global=true\n");
  std::string web = SleepUnit("web.service", "Global=true\nMachineMetadata=role=web\n");
  CommandOutput out = c.Fleetctl(absl::StrCat("start ", everywhere, " ", web,
                                              " --block-attempts=150"));
  ASSERT_EQ(out.exit_code, 0) << out.text;

  Placement want = {{"everywhere.service", {1, 2, 3}}, {"web.service", {1, 2}}};
  EXPECT_EQ(WaitForActive(c, 3, want), want);
  for (int h = 1; h <= 3; ++h) {
    EXPECT_EQ(IsActive(c, h, "everywhere.service"), "active") << h;
    EXPECT_EQ(IsActive(c, h, "web.service"), h == 3 ? "inactive" : "active") << h;
  }
}

TEST(SchedulingTest, ReplacesTakesTheMachineAndMovesTheOldUnit) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string old_unit = SleepUnit("old.service", "");
  CommandOutput out = c.Fleetctl("start " + old_unit + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement got;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(c, 2, text);
        return got.size() == 1;
      },
      absl::Seconds(60));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got["old.service"].size(), 1u);
  int old_host = got["old.service"][0];
  ASSERT_NE(old_host, 0);

  // The new unit goes to the machine of the unit it replaces; the old one
  // moves to the other machine.
  std::string new_unit = SleepUnit("new.service", "Replaces=old.service\n");
  out = c.Fleetctl("start " + new_unit + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement want = {{"new.service", {old_host}}, {"old.service", {3 - old_host}}};
  EXPECT_EQ(WaitForActive(c, 2, want), want);
  EXPECT_EQ(IsActive(c, old_host, "new.service"), "active");
  EXPECT_NE(IsActive(c, old_host, "old.service"), "active");
  EXPECT_EQ(IsActive(c, 3 - old_host, "old.service"), "active");
}

}  // namespace
}  // namespace fleet::test
