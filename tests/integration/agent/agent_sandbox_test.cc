// fleet-agent in a sandbox host with a real systemd user manager, driven by an
// in-test engine over real gRPC. Needs root (namespaces, cgroups).

#include <unistd.h>

#include <atomic>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/support/fake_engine.h"
#include "tests/support/sandbox_host.h"

namespace fleet::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr char kUnitDir[] = "/run/user/0/fleet/units";

std::atomic<int> counter{0};

std::string Service(const std::string& exec, const std::string& extra = "") {
  return absl::StrCat("[Unit]\nDescription=test\n\n[Service]\nExecStart=", exec, "\n", extra);
}

class AgentSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for sandbox hosts";
    int n = counter++;
    dir_ = absl::StrCat("/tmp/fleet-agent-test-", getpid(), "-", n);
    auto host = SandboxHost::Start(absl::StrCat(FLEET_SOURCE_DIR, "/scripts/sandbox-host"), dir_,
                                   absl::StrCat("agt", getpid() % 100000, "x", n));
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
    engine_.SetHeartbeatIntervalMs(200);
    engine_.Start();
    StartAgent();
  }

  void TearDown() override {
    if (host_ != nullptr) host_->Stop();  // also when the test failed
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::cerr << "agent log (" << dir_ << "):\n"
                << RunCommand(absl::StrCat("tail -50 ", dir_, "/agent.log")).text;
    } else {
      RunCommand(absl::StrCat("rm -rf ", dir_));
    }
  }

  void StartAgent() {
    auto pid = host_->Spawn({absl::StrCat(FLEET_BINARY_DIR, "/agent/fleet-agent"), "--engine",
                             engine_.address(), "--systemd", "user", "--log-level", "debug",
                             "--resync-interval", "30", "--metadata", "role=test", "--insecure"},
                            absl::StrCat(dir_, "/agent.log"));
    ASSERT_TRUE(pid.ok()) << pid.status();
    agent_pid_ = *pid;
  }

  // Waits until the engine saw `name` in `active_state` (and `sub_state` if given).
  bool WaitState(const std::string& name, const std::string& active_state,
                 const std::string& sub_state = "") {
    return engine_.WaitFor(
        [&](const FakeEngine::View& v) {
          auto it = v.states.find(name);
          return it != v.states.end() && it->second.active_state() == active_state &&
                 (sub_state.empty() || it->second.sub_state() == sub_state);
        },
        kTimeout);
  }

  std::string Show(const std::string& unit, const std::string& property) {
    CommandOutput out =
        host_->Exec(absl::StrCat("systemctl --user show -p ", property, " --value ", unit));
    return std::string(absl::StripAsciiWhitespace(out.text));
  }

  std::string dir_;
  std::unique_ptr<SandboxHost> host_;
  FakeEngine engine_;
  pid_t agent_pid_ = 0;
};

TEST_F(AgentSandboxTest, InstallStartStopRemove) {
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, kTimeout));
  FakeEngine::View view = engine_.Snapshot();
  ASSERT_EQ(view.registers.size(), 1u);
  EXPECT_EQ(view.registers[0].machine().metadata().at("role"), "test");
  std::string machine_id(absl::StripAsciiWhitespace(host_->Exec("cat /etc/machine-id").text));
  EXPECT_EQ(view.registers[0].machine().id(), machine_id);

  engine_.Upsert(MakeScheduledUnit("web.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("web.service", "active", "running"));
  fleet::v1::UnitState state = engine_.Snapshot().states["web.service"];
  EXPECT_EQ(state.load_state(), "loaded");
  EXPECT_EQ(std::to_string(state.main_pid()), Show("web.service", "MainPID"));
  EXPECT_GT(state.since_unix_micros(), 0);
  EXPECT_EQ(state.machine_id(), machine_id);
  EXPECT_EQ(Show("web.service", "ActiveState"), "active");
  EXPECT_EQ(host_->Exec(absl::StrCat("cat ", kUnitDir, "/web.service")).text,
            Service("/bin/sleep 1000"));

  // loaded = installed, not running.
  engine_.Upsert(MakeScheduledUnit("web.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LOADED));
  ASSERT_TRUE(WaitState("web.service", "inactive", "dead"));
  EXPECT_EQ(Show("web.service", "ActiveState"), "inactive");
  EXPECT_EQ(Show("web.service", "LoadState"), "loaded");

  engine_.Upsert(MakeScheduledUnit("web.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("web.service", "active", "running"));
  engine_.Remove("web.service");
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.removed.contains("web.service"); },
                              kTimeout));
  EXPECT_EQ(Show("web.service", "LoadState"), "not-found");
  EXPECT_EQ(Show("web.service", "ActiveState"), "inactive");
  EXPECT_NE(host_->Exec(absl::StrCat("test -e ", kUnitDir, "/web.service")).exit_code, 0);
}

TEST_F(AgentSandboxTest, UnitWithInstallSectionIsEnabledAtRuntime) {
  engine_.Upsert(MakeScheduledUnit(
      "inst.service", Service("/bin/sleep 1000", "\n[Install]\nWantedBy=default.target\n"),
      fleet::v1::DESIRED_STATE_LOADED));
  ASSERT_TRUE(WaitState("inst.service", "inactive"));
  EXPECT_EQ(absl::StripAsciiWhitespace(host_->Exec("systemctl --user is-enabled inst.service").text),
            "enabled-runtime");
  engine_.Remove("inst.service");
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.removed.contains("inst.service"); },
                              kTimeout));
  EXPECT_NE(host_->Exec("systemctl --user is-enabled inst.service").exit_code, 0);
}

TEST_F(AgentSandboxTest, UnitExitingNonZeroIsReportedFailed) {
  engine_.Upsert(MakeScheduledUnit("bad.service", Service("/bin/sh -c 'exit 3'"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("bad.service", "failed"));
  EXPECT_EQ(engine_.Snapshot().states["bad.service"].exit_status(), 3);
}

TEST_F(AgentSandboxTest, RestartAlwaysCrashIsReportedThroughRestarts) {
  engine_.Upsert(MakeScheduledUnit(
      "crash.service", Service("/bin/sh -c 'sleep 0.3; exit 7'", "Restart=always\nRestartSec=200ms\n"),
      fleet::v1::DESIRED_STATE_LAUNCHED));
  // Three different main processes and the restart wait in between, all reported.
  ASSERT_TRUE(engine_.WaitFor(
      [](const FakeEngine::View& v) {
        auto it = v.history.find("crash.service");
        if (it == v.history.end()) return false;
        std::set<uint32_t> pids;
        bool auto_restart = false;
        for (const auto& s : it->second) {
          if (s.main_pid() != 0) pids.insert(s.main_pid());
          auto_restart = auto_restart || (s.sub_state() == "auto-restart" && s.exit_status() == 7);
        }
        return pids.size() >= 3 && auto_restart;
      },
      kTimeout));
}

TEST_F(AgentSandboxTest, ChangedUnitFileIsReplacedAndRestarted) {
  engine_.Upsert(MakeScheduledUnit("app.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("app.service", "active", "running"));
  uint32_t old_pid = engine_.Snapshot().states["app.service"].main_pid();
  engine_.Upsert(MakeScheduledUnit("app.service", Service("/bin/sleep 2000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(engine_.WaitFor(
      [&](const FakeEngine::View& v) {
        auto it = v.states.find("app.service");
        return it != v.states.end() && it->second.active_state() == "active" &&
               it->second.main_pid() != 0 && it->second.main_pid() != old_pid;
      },
      kTimeout));
  EXPECT_EQ(host_->Exec(absl::StrCat("cat ", kUnitDir, "/app.service")).text,
            Service("/bin/sleep 2000"));
  EXPECT_EQ(Show("app.service", "ExecStart").find("/bin/sleep 2000") != std::string::npos, true);
  EXPECT_EQ(engine_.Snapshot().states["app.service"].unit_hash(),
            MakeScheduledUnit("x.service", Service("/bin/sleep 2000"), fleet::v1::DESIRED_STATE_LAUNCHED).hash());

  // A changed file of a unit that is only loaded is replaced, not started.
  engine_.Upsert(MakeScheduledUnit("idle.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LOADED));
  ASSERT_TRUE(WaitState("idle.service", "inactive"));
  engine_.Upsert(MakeScheduledUnit("idle.service", Service("/bin/sleep 3000"),
                                   fleet::v1::DESIRED_STATE_LOADED));
  ASSERT_TRUE(engine_.WaitFor(
      [&](const FakeEngine::View& v) {
        auto it = v.states.find("idle.service");
        return it != v.states.end() &&
               it->second.unit_hash() == MakeScheduledUnit("x.service", Service("/bin/sleep 3000"),
                                                           fleet::v1::DESIRED_STATE_LOADED)
                                             .hash();
      },
      kTimeout));
  EXPECT_EQ(Show("idle.service", "ActiveState"), "inactive");
}

TEST_F(AgentSandboxTest, KilledAgentLeavesUnitsRunningAndRestartedAgentAdoptsThem) {
  engine_.Upsert(MakeScheduledUnit("keep.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("keep.service", "active", "running"));
  std::string pid = Show("keep.service", "MainPID");
  std::string since = Show("keep.service", "ActiveEnterTimestampMonotonic");
  ASSERT_NE(pid, "0");

  host_->Kill(agent_pid_);
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.connected == 0; }, kTimeout));
  EXPECT_EQ(Show("keep.service", "ActiveState"), "active");
  EXPECT_EQ(Show("keep.service", "MainPID"), pid);

  StartAgent();
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.registers.size() == 2; }, kTimeout));
  const fleet::v1::Register reg = engine_.Snapshot().registers[1];
  ASSERT_EQ(reg.units_size(), 1);
  EXPECT_EQ(reg.units(0).name(), "keep.service");
  EXPECT_EQ(reg.units(0).active_state(), "active");
  EXPECT_EQ(std::to_string(reg.units(0).main_pid()), pid);
  // Give the new agent its full schedule and a round trip (a delta it must act
  // on) before checking it restarted nothing.
  engine_.Upsert(MakeScheduledUnit("marker.service", Service("/bin/sleep 1000"),
                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  ASSERT_TRUE(WaitState("marker.service", "active", "running"));
  EXPECT_EQ(Show("keep.service", "MainPID"), pid);
  EXPECT_EQ(Show("keep.service", "ActiveEnterTimestampMonotonic"), since);
}

TEST_F(AgentSandboxTest, ThreeHundredUnitsAtOnceAllActiveAndReported) {
  std::vector<fleet::v1::ScheduledUnit> units;
  for (int i = 0; i < 300; ++i) {
    units.push_back(MakeScheduledUnit(absl::StrCat("many-", i, ".service"), Service("/bin/sleep 1000"),
                                      fleet::v1::DESIRED_STATE_LAUNCHED));
  }
  ASSERT_TRUE(engine_.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, kTimeout));
  engine_.UpsertMany(units);
  ASSERT_TRUE(engine_.WaitFor(
      [](const FakeEngine::View& v) {
        int active = 0;
        for (const auto& [name, s] : v.states) active += s.active_state() == "active" && s.main_pid() != 0;
        return active == 300;
      },
      absl::Seconds(90)));
  CommandOutput out = host_->Exec("systemctl --user list-units --no-legend --state=active 'many-*' | wc -l");
  EXPECT_EQ(absl::StripAsciiWhitespace(out.text), "300");
}

}  // namespace
}  // namespace fleet::test
