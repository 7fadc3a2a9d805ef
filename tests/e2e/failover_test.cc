// Highly available engines on a real 3-member etcd (scripts/sandbox up
// --etcd), through fleetctl given all three engine addresses: the leader
// engine is killed with SIGKILL, one etcd member is lost, all of etcd is
// lost and comes back. Units must neither be lost, nor run twice, nor be
// restarted (their main PIDs on the hosts stay the same).

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using Placement = std::map<std::string, std::vector<int>>;

// `leader_ttl`: short to measure a failover; long enough to outlast etcd's
// own election (about 1 s, more on a loaded machine) when a member is lost.
SandboxClusterOptions EtcdCluster(int hosts, const std::string& leader_ttl) {
  SandboxClusterOptions options = WithHosts(hosts);
  options.etcd = true;
  options.leader_ttl = leader_ttl;
  // Agents retry at most every heartbeat (agent_ttl / 3) and a new leader
  // gives them one agent_ttl to come back before it moves their units.
  options.agent_ttl = "10s";
  return options;
}

// Starts `units` (sleep services without constraints) and returns where
// they run once all are active.
Placement StartUnits(const SandboxCluster& c, int hosts, const std::vector<std::string>& units) {
  std::string args = "start --block-attempts=150";
  for (const std::string& unit : units) absl::StrAppend(&args, " ", SleepUnit(unit, ""));
  CommandOutput out = c.Fleetctl(args);
  EXPECT_EQ(out.exit_code, 0) << out.text;
  Placement got;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(c, hosts, text);
        return got.size() >= units.size();
      },
      absl::Seconds(60));
  return got;
}

// unit -> its MainPID on the host it runs on (per the host's systemd).
std::map<std::string, std::string> MainPids(const SandboxCluster& c, const Placement& placement) {
  std::map<std::string, std::string> pids;
  for (const auto& [unit, hosts] : placement) {
    if (hosts.size() == 1 && hosts[0] != 0) pids[unit] = MainPid(c, hosts[0], unit);
  }
  return pids;
}

std::vector<std::string> Units(const Placement& placement) {
  std::vector<std::string> units;
  for (const auto& [unit, hosts] : placement) units.push_back(unit);
  return units;
}

// Polls `sandbox leader` until an engine other than `not_this` leads;
// returns it, or 0 after `timeout`.
int WaitForLeader(const SandboxCluster& c, int not_this, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int leader = c.Leader();
    if (leader != 0 && leader != not_this) return leader;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return 0;
}

TEST(FailoverTest, KilledLeaderIsReplacedAndNoUnitIsLostDoubledOrRestarted) {
  auto cluster = SandboxCluster::Up(EtcdCluster(3, "3s"));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  const int old_leader = WaitForLeader(c, 0, absl::Seconds(30));
  ASSERT_NE(old_leader, 0) << c.Sandbox("status").text;
  const Placement before =
      StartUnits(c, 3, {"f1.service", "f2.service", "f3.service", "f4.service", "f5.service"});
  ASSERT_EQ(before.size(), 5u);
  const std::map<std::string, std::string> pids = MainPids(c, before);
  ASSERT_EQ(pids.size(), 5u);

  const absl::Time killed = absl::Now();
  CommandOutput kill = c.Sandbox(absl::StrCat("kill-engine ", old_leader));
  ASSERT_EQ(kill.exit_code, 0) << kill.text;
  const int new_leader = WaitForLeader(c, old_leader, absl::Seconds(30));
  ASSERT_NE(new_leader, 0) << c.Sandbox("status").text;
  const absl::Duration elected = absl::Now() - killed;
  std::printf("leader engine %d killed: engine %d leads after %s (leader_ttl 3s)\n", old_leader,
              new_leader, absl::FormatDuration(elected).c_str());
  // The killed leader's lease (3 s) must run out first; a bound, not a benchmark.
  EXPECT_LT(elected, absl::Seconds(8));

  // The agents re-home to the new leader and report the same units where
  // they were; on the hosts, nothing was restarted or started twice.
  EXPECT_EQ(WaitForActive(c, 3, before), before);
  EXPECT_EQ(MainPids(c, before), pids);
  ExpectEachActiveOnce(c, 3, Units(before));

  // The cluster takes changes again (fleetctl skips the dead engine).
  Placement more = StartUnits(c, 3, {"f6.service"});
  EXPECT_EQ(more.count("f6.service"), 1u);
  EXPECT_EQ(MainPids(c, before), pids);

  // The killed engine comes back as a follower; the leader stays.
  CommandOutput restart = c.Sandbox(absl::StrCat("start-engine ", old_leader));
  ASSERT_EQ(restart.exit_code, 0) << restart.text;
  EXPECT_EQ(c.Leader(), new_leader);
}

TEST(FailoverTest, EtcdLossRefusesChangesKeepsReadsAndUnitsThenResumes) {
  auto cluster = SandboxCluster::Up(EtcdCluster(2, "6s"));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  ASSERT_NE(WaitForLeader(c, 0, absl::Seconds(30)), 0) << c.Sandbox("status").text;
  const Placement before = StartUnits(c, 2, {"e1.service", "e2.service"});
  ASSERT_EQ(before.size(), 2u);
  const std::map<std::string, std::string> pids = MainPids(c, before);

  // One member of three lost: nothing visible changes.
  ASSERT_EQ(c.Sandbox("kill-etcd 1").exit_code, 0);
  Placement with_two = StartUnits(c, 2, {"e3.service"});
  ASSERT_EQ(with_two.count("e3.service"), 1u) << "a change with 2 of 3 etcd members";

  // All of etcd lost: changes are refused at once (the leader's write finds
  // etcd unavailable), and once its lease has run out locally no engine
  // leads and the refusal says so; reads answer; units run on.
  ASSERT_EQ(c.Sandbox("kill-etcd 2").exit_code, 0);
  ASSERT_EQ(c.Sandbox("kill-etcd 3").exit_code, 0);
  const std::string e4 = SleepUnit("e4.service", "");
  CommandOutput refused;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::SleepFor(absl::Milliseconds(500));
    refused = c.Fleetctl("submit " + e4);
    if (refused.exit_code != 0) {
      EXPECT_TRUE(absl::StrContains(refused.text, "unavailable") ||
                  absl::StrContains(refused.text, "changes are refused"))
          << refused.text;
    }
  } while ((refused.exit_code == 0 || !absl::StrContains(refused.text, "changes are refused")) &&
           absl::Now() < deadline);
  EXPECT_NE(refused.exit_code, 0) << refused.text;
  EXPECT_TRUE(absl::StrContains(refused.text, "changes are refused")) << refused.text;
  CommandOutput listed = c.Fleetctl("list-units --no-legend --fields=unit");
  EXPECT_EQ(listed.exit_code, 0) << listed.text;
  for (const char* unit : {"e1.service", "e2.service", "e3.service"}) {
    EXPECT_TRUE(absl::StrContains(listed.text, unit)) << listed.text;
  }
  EXPECT_EQ(MainPids(c, before), pids);

  // etcd returns: an engine leads again by itself and work resumes, with
  // the units where they were and not restarted.
  for (int m = 1; m <= 3; ++m) ASSERT_EQ(c.Sandbox(absl::StrCat("start-etcd ", m)).exit_code, 0);
  CommandOutput started;
  deadline = absl::Now() + absl::Seconds(60);
  do {
    absl::SleepFor(absl::Milliseconds(500));
    started = c.Fleetctl("start --block-attempts=150 " + e4);
  } while (started.exit_code != 0 && absl::Now() < deadline);
  ASSERT_EQ(started.exit_code, 0) << started.text;
  Placement after;
  c.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        after = ActiveHosts(c, 2, text);
        return after.size() == 4;
      },
      absl::Seconds(60));
  EXPECT_EQ(after.count("e4.service"), 1u);
  Placement first_two;
  for (const char* unit : {"e1.service", "e2.service"}) first_two[unit] = after[unit];
  EXPECT_EQ(first_two, before);
  EXPECT_EQ(MainPids(c, before), pids);
  ExpectEachActiveOnce(c, 2, Units(after));
}

}  // namespace
}  // namespace fleet::test
