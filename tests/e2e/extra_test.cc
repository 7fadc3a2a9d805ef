// More of fleet's functional scenarios on real sandbox clusters: mutual
// Replaces=, [Install] WantedBy= enabled at runtime, a global unit on a host
// that joins later, and a Docker-backed template serving HTTP.

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/command.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using Placement = std::map<std::string, std::vector<int>>;

// How many of `units` systemd runs across hosts 1..hosts.
int ActiveInHosts(const SandboxCluster& c, int hosts, const std::vector<std::string>& units) {
  int n = 0;
  for (int h = 1; h <= hosts; ++h) {
    for (const auto& unit : units) n += IsActive(c, h, unit) == "active" ? 1 : 0;
  }
  return n;
}

TEST(ExtraTest, UnitsThatReplaceEachOtherEndWithExactlyOneActive) {
  auto cluster = SandboxCluster::Up(WithHosts(3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string a = SleepUnit("ping.service", "Replaces=pong.service\n");
  std::string b = SleepUnit("pong.service", "Replaces=ping.service\n");
  CommandOutput out = c.Fleetctl(absl::StrCat("start --no-block ", a, " ", b));
  ASSERT_EQ(out.exit_code, 0) << out.text;

  // Both units are known to the cluster and exactly one is active, in
  // fleetctl and in the hosts' systemd, and it stays that way.
  std::vector<std::string> units = {"ping.service", "pong.service"};
  Placement got;
  std::string last;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  int stable = 0;
  while (absl::Now() < deadline && stable < 3) {
    last = c.WaitForListUnits(
        "unit,machine,active",
        [&](const std::string& text) {
          got = ActiveHosts(c, 3, text);
          return got.size() == 1 && got.begin()->second.size() == 1;
        },
        deadline - absl::Now());
    if (got.size() == 1 && ActiveInHosts(c, 3, units) == 1) {
      ++stable;
    } else {
      stable = 0;
    }
    absl::SleepFor(absl::Seconds(1));
  }
  ASSERT_EQ(stable, 3) << last;
  ASSERT_EQ(got.size(), 1u) << last;
  ASSERT_EQ(got.begin()->second.size(), 1u) << last;
  EXPECT_NE(got.begin()->second[0], 0) << last;
  EXPECT_EQ(ActiveInHosts(c, 3, units), 1);
  EXPECT_EQ(IsActive(c, got.begin()->second[0], got.begin()->first), "active");
  // Both units are listed: the other one is known but not active.
  EXPECT_TRUE(absl::StrContains(last, "ping.service")) << last;
  EXPECT_TRUE(absl::StrContains(last, "pong.service")) << last;
}

TEST(ExtraTest, InstallWantedByIsEnabledAtRuntimeNextToTheUnit) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string unit = WriteUnit("wanted.service",
                               "[Service]\nExecStart=/bin/sleep 100000\n"
                               "[Install]\nWantedBy=default.target\n");
  CommandOutput out = c.Fleetctl("start " + unit + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement got;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(c, 2, text);
        return got.size() == 1 && got["wanted.service"].size() == 1;
      },
      absl::Seconds(60));
  ASSERT_EQ(got["wanted.service"].size(), 1u);
  int host = got["wanted.service"][0];
  ASSERT_NE(host, 0);
  EXPECT_EQ(IsActive(c, host, "wanted.service"), "active");
  std::string enabled;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    enabled = std::string(absl::StripTrailingAsciiWhitespace(
        c.Exec(host, "systemctl --user is-enabled wanted.service").text));
    if (enabled == "enabled-runtime") break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  EXPECT_EQ(enabled, "enabled-runtime");
  // The other host does not have it at all.
  EXPECT_NE(IsActive(c, 3 - host, "wanted.service"), "active");
}

TEST(ExtraTest, GlobalUnitStartsOnAHostThatJoinsLater) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string everywhere = SleepUnit("everywhere.service", "Global=true\n");
  CommandOutput out = c.Fleetctl("start " + everywhere + " --block-attempts=150");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  Placement want = {{"everywhere.service", {1, 2}}};
  ASSERT_EQ(WaitForActive(c, 2, want), want);

  out = c.Sandbox("add-host --metadata role=late");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  want = {{"everywhere.service", {1, 2, 3}}};
  EXPECT_EQ(WaitForActive(c, 3, want), want);
  for (int h = 1; h <= 3; ++h) EXPECT_EQ(IsActive(c, h, "everywhere.service"), "active") << h;
  std::string machines = c.Fleetctl("list-machines --no-legend --full").text;
  EXPECT_TRUE(absl::StrContains(machines, "127.0.0.4")) << machines;
  EXPECT_TRUE(absl::StrContains(machines, "hostname=host3")) << machines;
  EXPECT_TRUE(absl::StrContains(machines, "role=late")) << machines;
}

// Docker-backed tests need docker and dockerd (the sandbox starts dockerd).
bool DockerInstalled() {
  return RunCommand("command -v docker && command -v dockerd").exit_code == 0;
}

TEST(ExtraTest, DockerTemplateInstancesServeHttpAndStopRemovesContainers) {
  if (!DockerInstalled()) GTEST_SKIP() << "no docker here";
  SandboxClusterOptions options = WithHosts(3);
  options.docker = true;
  auto cluster = SandboxCluster::Up(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  // A copy of units/web@.service under another name, on ports no other test uses.
  std::ifstream in(absl::StrCat(FLEET_SOURCE_DIR, "/units/web@.service"));
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  std::string tmpl = WriteUnit("e2eweb@.service", text.str());
  CommandOutput out = c.Fleetctl("submit " + tmpl);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = c.Fleetctl(
      "start e2eweb@18081.service e2eweb@18082.service e2eweb@18083.service "
      "--block-attempts=300");
  ASSERT_EQ(out.exit_code, 0) << out.text;

  Placement got;
  std::string last = c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& t) {
        got = ActiveHosts(c, 3, t);
        return got.size() == 3;
      },
      absl::Seconds(120));
  ASSERT_EQ(got.size(), 3u) << last;
  std::vector<int> hosts;
  for (auto& [unit, list] : got) {
    ASSERT_EQ(list.size(), 1u) << unit;
    hosts.push_back(list[0]);
  }
  std::sort(hosts.begin(), hosts.end());
  EXPECT_EQ(hosts, (std::vector<int>{1, 2, 3})) << last;

  for (int port : {18081, 18082, 18083}) {
    std::string want = absl::StrCat("e2eweb@", port, ".service");
    std::string body;
    absl::Time deadline = absl::Now() + absl::Seconds(90);
    do {
      body = RunCommand(absl::StrCat("curl -s --max-time 3 http://127.0.0.1:", port, "/")).text;
      if (absl::StrContains(body, want)) break;
      absl::SleepFor(absl::Milliseconds(500));
    } while (absl::Now() < deadline);
    EXPECT_TRUE(absl::StrContains(body, want)) << port << ": " << body;
  }

  out = c.Fleetctl("stop 'e2eweb@*' --block-attempts=300");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  std::string left;
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  do {
    left = RunCommand("docker ps -q --filter ancestor=fleet/busybox").text;
    if (absl::StripAsciiWhitespace(left).empty()) break;
    absl::SleepFor(absl::Milliseconds(500));
  } while (absl::Now() < deadline);
  EXPECT_EQ(absl::StripAsciiWhitespace(left), "") << left;
}

}  // namespace
}  // namespace fleet::test
