// The fleetctl BINARY end to end against a real fleet-engine and real
// fleet-agents in two sandbox hosts (scripts/sandbox; host 1 has metadata
// hostname=host1, host 2 hostname=host2,role=db). Every step is checked twice:
// through what fleetctl prints and exits with, and on the host itself with
// `systemctl --user`. Needs root (sandbox hosts).
//
// The suite shares one cluster (SetUpTestSuite) when the binary runs whole;
// ctest runs each test alone, so each then brings up its own. Tests use their
// own unit names, so sharing is safe.

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/command.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using ::testing::HasSubstr;

constexpr int kHosts = 2;
const std::string kFleetctl = std::string(FLEET_BINARY_DIR) + "/fleetctl/fleetctl";

// `timeout` around every fleetctl run: a command that should end but hangs
// fails the test with exit code 124 instead of hanging ctest.
constexpr int kCommandTimeoutSeconds = 90;
constexpr int kTimeoutExit = 124;

std::string Trim(const std::string& s) {
  return std::string(absl::StripTrailingAsciiWhitespace(s));
}

class FleetctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SandboxClusterOptions options = WithHosts(kHosts);
    options.metadata = {"2:role=db"};
    auto up = SandboxCluster::Up(options);
    if (up.ok()) {
      cluster_ = up->release();
    } else {
      *up_error_ = std::string(up.status().message());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << *up_error_;
    dir_ = absl::StrCat(::testing::TempDir(), "/fleetctl_it/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  SandboxCluster& cluster() { return *cluster_; }

  // Writes `contents` to DIR/`relative` (folders created) and returns the path.
  std::string Write(const std::string& relative, const std::string& contents) {
    std::string path = absl::StrCat(dir_, "/", relative);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << contents;
    return path;
  }

  // Runs `env fleetctl --endpoint ENGINE TLS-FLAGS args` (args shell-quoted by
  // the caller) with the admin certificate.
  CommandOutput Fleetctl(const std::string& args, const std::string& env = "") {
    return RunCommand(absl::StrCat(env, " timeout ", kCommandTimeoutSeconds, " ", kFleetctl, " ",
                                   cluster().FleetctlFlags(), " ", args, " 2>&1"));
  }

  // `systemctl --user is-active UNIT` on host `host`.
  std::string IsActive(int host, const std::string& unit) {
    return Trim(cluster().Exec(host, "systemctl --user is-active " + unit).text);
  }
  // `systemctl --user show -p PROPERTY --value UNIT` on host `host`.
  std::string Show(int host, const std::string& unit, const std::string& property) {
    return Trim(
        cluster().Exec(host, "systemctl --user show -p " + property + " --value " + unit).text);
  }

  // The cells of `unit`'s row in `fleetctl LISTING --no-legend` (columns are
  // padded with a varying number of tabs); empty if it is not listed.
  std::vector<std::string> Row(const std::string& listing, const std::string& unit) {
    std::string text = Fleetctl(listing + " --no-legend").text;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      std::vector<std::string> cells = absl::StrSplit(line, '\t', absl::SkipEmpty());
      if (!cells.empty() && cells[0] == unit) return cells;
    }
    return {};
  }

  // list-units' cells (unit, machine, active, sub) for `unit`; empty if absent.
  std::vector<std::string> ListUnitsRow(const std::string& unit) {
    return Row("list-units --full --fields=unit,machine,active,sub", unit);
  }

  // The host (1..kHosts) whose machine is in a --full MACHINE cell
  // ("ID/IP"), 0 if none.
  int HostOf(const std::string& machine_cell) {
    std::string id = std::vector<std::string>(absl::StrSplit(machine_cell, '/'))[0];
    for (int h = 1; h <= kHosts; ++h) {
      if (!id.empty() && cluster().MachineId(h) == id) return h;
    }
    return 0;
  }

  // The host list-units places `unit` on, 0 if none.
  int HostOfUnit(const std::string& unit) {
    auto row = ListUnitsRow(unit);
    return row.size() >= 2 ? HostOf(row[1]) : 0;
  }

  // Polls `probe` on host `host` until it prints `want` or 30 s pass; returns
  // the last output. Only for what fleetctl does not wait for (destroy).
  std::string WaitOnHost(int host, const std::string& unit, const std::string& property,
                         const std::string& want) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::string got;
    while (true) {
      got = Show(host, unit, property);
      if (got == want || absl::Now() > deadline) return got;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  std::string dir_;

 private:
  static SandboxCluster* cluster_;
  static std::string* up_error_;
};

SandboxCluster* FleetctlTest::cluster_ = nullptr;
std::string* FleetctlTest::up_error_ = new std::string("cluster not started");

// A plain unit through every state, each step seen by fleetctl and by the
// host's systemd.
TEST_F(FleetctlTest, PlainUnitSubmitLoadStartStopUnloadDestroy) {
  std::string path = Write("units/plain.service",
                           "[Unit]\nDescription=Plain\n[Service]\n"
                           "ExecStart=/bin/sh -c 'echo hi; exec sleep infinity'\n");

  CommandOutput out = Fleetctl("submit " + path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(Row("list-unit-files --fields=unit,dstate", "plain.service"),
              ::testing::ElementsAre("plain.service", "inactive"));

  out = Fleetctl("load plain.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit plain.service loaded on "));
  int host = HostOfUnit("plain.service");
  ASSERT_NE(host, 0) << Fleetctl("list-units --full").text;
  EXPECT_EQ(Show(host, "plain.service", "LoadState"), "loaded");
  EXPECT_EQ(IsActive(host, "plain.service"), "inactive");
  EXPECT_EQ(Show(3 - host, "plain.service", "LoadState"), "not-found");

  out = Fleetctl("start plain.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit plain.service launched on "));
  EXPECT_EQ(IsActive(host, "plain.service"), "active");
  auto row = ListUnitsRow("plain.service");
  ASSERT_EQ(row.size(), 4u);
  EXPECT_EQ(row[2], "active");
  EXPECT_EQ(row[3], "running");

  out = Fleetctl("stop plain.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit plain.service loaded on "));
  EXPECT_EQ(IsActive(host, "plain.service"), "inactive");
  EXPECT_EQ(Show(host, "plain.service", "LoadState"), "loaded");

  out = Fleetctl("unload plain.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit plain.service inactive"));
  EXPECT_EQ(Show(host, "plain.service", "LoadState"), "not-found");

  out = Fleetctl("destroy plain.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "Destroyed plain.service\n");
  out = Fleetctl("list-unit-files --no-legend --fields=unit");
  EXPECT_THAT(out.text, ::testing::Not(HasSubstr("plain.service")));
}

// `start dir/hello@3.service` with only dir/hello@.service on disk: the
// instance is made from the template next to the given path.
TEST_F(FleetctlTest, TemplateInstanceFromTheTemplateNextToThePath) {
  Write("units/hello@.service",
        "[Unit]\nDescription=Hello %i\n[Service]\n"
        "ExecStart=/bin/sh -c 'echo hello %i; exec sleep infinity'\n");
  std::string instance_path = dir_ + "/units/hello@3.service";
  ASSERT_FALSE(std::filesystem::exists(instance_path));

  CommandOutput out = Fleetctl("start " + instance_path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit hello@3.service launched on "));
  int host = HostOfUnit("hello@3.service");
  ASSERT_NE(host, 0) << Fleetctl("list-units --full").text;
  EXPECT_EQ(IsActive(host, "hello@3.service"), "active");
  EXPECT_EQ(Show(host, "hello@3.service", "Description"), "Hello 3");
  // The template itself is not started.
  out = Fleetctl("list-units --no-legend --fields=unit");
  EXPECT_THAT(out.text, ::testing::Not(HasSubstr("hello@.service")));

  out = Fleetctl("stop hello@3.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(IsActive(host, "hello@3.service"), "inactive");
  out = Fleetctl("unload hello@3.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(Show(host, "hello@3.service", "LoadState"), "not-found");
  out = Fleetctl("destroy hello@3.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "Destroyed hello@3.service\n");
}

// The template is on the cluster (submitted earlier); `start tpl@7.service`
// by name alone creates the instance from it. destroy stops it everywhere.
TEST_F(FleetctlTest, TemplateInstanceFromTheTemplateOnTheCluster) {
  std::string template_path =
      Write("elsewhere/tpl@.service", "[Service]\nExecStart=/bin/sh -c 'exec sleep infinity'\n");
  CommandOutput out = Fleetctl("submit " + template_path);
  ASSERT_EQ(out.exit_code, 0) << out.text;

  out = Fleetctl("start tpl@7.service tpl@8.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit tpl@7.service launched on "));
  EXPECT_THAT(out.text, HasSubstr("Unit tpl@8.service launched on "));
  int host7 = HostOfUnit("tpl@7.service");
  int host8 = HostOfUnit("tpl@8.service");
  ASSERT_NE(host7, 0);
  ASSERT_NE(host8, 0);
  EXPECT_EQ(IsActive(host7, "tpl@7.service"), "active");
  EXPECT_EQ(IsActive(host8, "tpl@8.service"), "active");
  EXPECT_THAT(Row("list-unit-files --fields=unit,dstate", "tpl@.service"),
              ::testing::ElementsAre("tpl@.service", "inactive"));
  EXPECT_THAT(Row("list-unit-files --fields=unit,dstate", "tpl@7.service"),
              ::testing::ElementsAre("tpl@7.service", "launched"));

  // destroy does not wait; the host's systemd forgets the unit soon after.
  out = Fleetctl("destroy tpl@7.service tpl@8.service tpl@.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text,
            "Destroyed tpl@7.service\nDestroyed tpl@8.service\nDestroyed tpl@.service\n");
  EXPECT_EQ(WaitOnHost(host7, "tpl@7.service", "LoadState", "not-found"), "not-found");
  EXPECT_EQ(WaitOnHost(host8, "tpl@8.service", "LoadState", "not-found"), "not-found");
}

// start returns only once the unit is active: the unit spends two seconds in
// ExecStartPre (activating), so a start that did not wait would be caught.
// --no-block returns while it is still on its way.
TEST_F(FleetctlTest, StartBlocksUntilActiveAndNoBlockDoesNot) {
  std::string slow = Write("units/slow.service",
                           "[Service]\nExecStartPre=/bin/sleep 2\n"
                           "ExecStart=/bin/sh -c 'exec sleep infinity'\n");
  CommandOutput out = Fleetctl("start " + slow);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit slow.service launched on "));
  auto row = ListUnitsRow("slow.service");
  ASSERT_EQ(row.size(), 4u) << Fleetctl("list-units --full").text;
  EXPECT_EQ(row[2], "active");
  EXPECT_EQ(row[3], "running");
  EXPECT_EQ(IsActive(HostOf(row[1]), "slow.service"), "active");

  std::string slower = Write("units/slower.service",
                             "[Service]\nExecStartPre=/bin/sleep 60\n"
                             "ExecStart=/bin/sh -c 'exec sleep infinity'\n");
  out = Fleetctl("start --no-block " + slower);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "Triggered unit slower.service start\n");
  // Still on its way (not placed yet, or activating) when the command is back.
  row = ListUnitsRow("slower.service");
  EXPECT_TRUE(row.size() < 3 || row[2] != "active") << absl::StrJoin(row, " ");
  int host = row.size() >= 2 ? HostOf(row[1]) : 0;
  if (host != 0) {
    EXPECT_NE(IsActive(host, "slower.service"), "active");
  }

  // With a bound on the wait, a unit that is not there yet is a failure that
  // names it, not a hang.
  out = Fleetctl("start --block-attempts=2 slower.service");
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_NE(out.exit_code, kTimeoutExit) << out.text;
  EXPECT_THAT(out.text, HasSubstr("slower.service"));

  out = Fleetctl("destroy slow.service slower.service");
  EXPECT_EQ(out.exit_code, 0) << out.text;
}

// A unit whose MachineMetadata fits no machine ends start (which waits
// forever by default) with a non-zero exit and the reason; one that fits only
// host 2 runs there.
TEST_F(FleetctlTest, ConstraintThatFitsNoMachineEndsStartWithTheReason) {
  std::string nowhere = Write("units/nowhere.service",
                              "[Service]\nExecStart=/bin/sh -c 'exec sleep infinity'\n"
                              "[X-Fleet]\nMachineMetadata=role=gpu\n");
  CommandOutput out = Fleetctl("start " + nowhere);
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_NE(out.exit_code, kTimeoutExit) << "start hung: " << out.text;
  EXPECT_THAT(out.text, HasSubstr("nowhere.service"));
  EXPECT_THAT(out.text, HasSubstr("role"));
  for (int h = 1; h <= kHosts; ++h) {
    EXPECT_EQ(Show(h, "nowhere.service", "LoadState"), "not-found") << "host " << h;
  }

  std::string db = Write("units/db.service",
                         "[Service]\nExecStart=/bin/sh -c 'exec sleep infinity'\n"
                         "[X-Fleet]\nMachineMetadata=role=db\n");
  out = Fleetctl("start " + db);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("Unit db.service launched on "));
  EXPECT_EQ(HostOfUnit("db.service"), 2);
  EXPECT_EQ(IsActive(2, "db.service"), "active");
  EXPECT_EQ(Show(1, "db.service", "LoadState"), "not-found");

  out = Fleetctl("destroy nowhere.service db.service");
  EXPECT_EQ(out.exit_code, 0) << out.text;
}

// submit of a name that is on the cluster with other contents fails and says
// so, leaving the stored unit alone; --replace replaces it.
TEST_F(FleetctlTest, SubmitOtherContentsFailsAndReplaceReplaces) {
  const std::string v1 = "[Unit]\nDescription=version one\n[Service]\nExecStart=/bin/true\n";
  const std::string v2 = "[Unit]\nDescription=version two\n[Service]\nExecStart=/bin/true\n";
  std::string path = Write("units/changing.service", v1);
  CommandOutput out = Fleetctl("submit " + path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  // The same contents again is fine.
  out = Fleetctl("submit " + path);
  EXPECT_EQ(out.exit_code, 0) << out.text;

  Write("units/changing.service", v2);
  out = Fleetctl("submit " + path);
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("changing.service"));
  EXPECT_THAT(out.text, HasSubstr("--replace"));
  EXPECT_EQ(Fleetctl("cat changing.service").text, v1);

  out = Fleetctl("submit --replace " + path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(Fleetctl("cat changing.service").text, v2);

  EXPECT_EQ(Fleetctl("destroy changing.service").exit_code, 0);
}

// fleetctl ssh hands the system's ssh the right address: a fake ssh first on
// PATH records its argv and exits 7, which must be fleetctl's exit code.
TEST_F(FleetctlTest, SshResolvesMachinePrefixAndUnitToTheirAddress) {
  std::string bin = dir_ + "/bin";
  std::string record = dir_ + "/ssh-argv";
  std::filesystem::create_directories(bin);
  Write("bin/ssh", absl::StrCat("#!/bin/sh\nprintf '%s\\n' \"$@\" > ", ShellQuote(record),
                                "\nexit 7\n"));
  ASSERT_EQ(::chmod((bin + "/ssh").c_str(), 0755), 0);
  const std::string env = absl::StrCat("env PATH=", ShellQuote(bin), ":\"$PATH\"");
  auto recorded = [&record] {
    std::ifstream in(record);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(record);
    return text;
  };

  // A machine-id prefix: host 2 is 127.0.0.3.
  std::string prefix = cluster().MachineId(2).substr(0, 8);
  CommandOutput out = Fleetctl("ssh " + prefix, env);
  EXPECT_EQ(out.exit_code, 7) << out.text;
  EXPECT_EQ(recorded(), "-p\n22\n--\n127.0.0.3\n");

  // A unit resolves to the machine it runs on (host 1 = 127.0.0.2); flags and
  // the command go to ssh, the command's own flags untouched.
  std::string pinned = Write("units/pinned.service",
                             "[Service]\nExecStart=/bin/sh -c 'exec sleep infinity'\n"
                             "[X-Fleet]\nMachineMetadata=hostname=host1\n");
  out = Fleetctl("start " + pinned);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = Fleetctl("ssh -A --ssh-port 2222 --ssh-user core pinned.service -- ls -l /tmp", env);
  EXPECT_EQ(out.exit_code, 7) << out.text;
  EXPECT_EQ(recorded(), "-A\n-p\n2222\n-l\ncore\n--\n127.0.0.2\nls\n-l\n/tmp\n");
  // fleet's name without a suffix, and --unit.
  out = Fleetctl("ssh --unit pinned uptime", env);
  EXPECT_EQ(out.exit_code, 7) << out.text;
  EXPECT_EQ(recorded(), "-p\n22\n--\n127.0.0.2\nuptime\n");
  // --machine with the full id.
  out = Fleetctl("ssh --machine " + cluster().MachineId(1), env);
  EXPECT_EQ(out.exit_code, 7) << out.text;
  EXPECT_EQ(recorded(), "-p\n22\n--\n127.0.0.2\n");

  // Nothing matches: one error line, ssh never run.
  out = Fleetctl("ssh no-such-thing", env);
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_EQ(out.text, "Error: no machine or unit matches \"no-such-thing\"\n");
  EXPECT_EQ(recorded(), "");

  EXPECT_EQ(Fleetctl("destroy pinned.service").exit_code, 0);
}

// No engine at the endpoint: one clear line naming it, non-zero exit.
TEST(FleetctlNoEngineTest, UnreachableEndpointIsOneLine) {
  for (const std::string verb : {"list-units", "start x.service", "ssh abc"}) {
    CommandOutput out = RunCommand(absl::StrCat(
        "timeout ", kCommandTimeoutSeconds, " ", kFleetctl,
        " --endpoint 127.0.0.1:1 --insecure --request-timeout 3s ", verb, " 2>&1"));
    EXPECT_EQ(out.exit_code, 1) << verb << ": " << out.text;
    // --insecure's warning line, then the error in one line.
    std::vector<std::string> lines = absl::StrSplit(out.text, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 2u) << verb << ": " << out.text;
    EXPECT_THAT(lines[0], HasSubstr("PLAINTEXT")) << verb;
    EXPECT_THAT(lines[1], HasSubstr("cannot reach the engine at 127.0.0.1:1")) << verb;
  }
}

}  // namespace
}  // namespace fleet::test
