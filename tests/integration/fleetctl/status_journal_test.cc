// `fleetctl status` and `fleetctl journal` against a real engine and a real
// agent in a sandbox host (scripts/sandbox: systemd --user and journald
// inside): the unit's log lines and state come from its machine through the
// engine, without SSH. Needs root.
//
// The unit's output reaches the host's journal asynchronously (journald reads
// the unit's stdout stream), so checks of journal contents poll fleetctl with
// a deadline: fleetctl is the interface under test, and the journal has no
// event the test could wait on.

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/sandbox_cluster.h"
#include "tests/support/unit_files.h"

namespace fleet::test {
namespace {

constexpr char kMarker[] = "fleet-status-marker-7f3a";
constexpr char kSignalled[] = "fleet-status-got-usr1";

// Runs `fleetctl ARGS` until `done` accepts its output or `timeout` passes;
// returns the last run.
CommandOutput PollFleetctl(const SandboxCluster& c, const std::string& args,
                           const std::function<bool(const CommandOutput&)>& done,
                           absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    CommandOutput out = c.Fleetctl(args);
    if (done(out) || absl::Now() > deadline) return out;
    absl::SleepFor(absl::Milliseconds(250));
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fleetctl process in the background, its output in a file; killed (by
// PID) and reaped when it goes out of scope.
class BackgroundFleetctl {
 public:
  BackgroundFleetctl(const SandboxCluster& c, const std::string& args, std::string log)
      : log_(std::move(log)) {
    // A file left by an earlier run must not be read as this one's output.
    std::remove(log_.c_str());
    std::string command = absl::StrCat("exec ", FLEET_BINARY_DIR, "/fleetctl/fleetctl ", c.FleetctlFlags(),
                                       " ", args, " >", ShellQuote(log_), " 2>&1");
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundFleetctl() { Stop(); }

  // Polls its output (with a deadline) until it contains `text`.
  bool WaitForOutput(const std::string& text, absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (absl::StrContains(ReadAll(log_), text)) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }
  // True while the process runs.
  bool Running() {
    if (pid_ <= 0) return false;
    return waitpid(pid_, nullptr, WNOHANG) == 0;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string output() const { return ReadAll(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

class StatusJournalTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = SandboxCluster::Up(WithHosts(1));
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
    // Prints the marker, then a line on every SIGUSR1 to its shell.
    std::string path = WriteUnit(
        "hello.service",
        absl::StrCat("[Unit]\nDescription=Says hello\n[Service]\n"
                     "ExecStart=/bin/sh -c 'trap \"echo ",
                     kSignalled, "\" USR1; echo ", kMarker,
                     "; while true; do sleep 1 & wait $!; done'\n"));
    CommandOutput out = cluster_->Fleetctl("start " + path + " --block-attempts=100");
    ASSERT_EQ(out.exit_code, 0) << out.text;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr) << "the sandbox cluster did not come up"; }

  static SandboxCluster* cluster_;
};

SandboxCluster* StatusJournalTest::cluster_ = nullptr;

TEST_F(StatusJournalTest, JournalShowsALineTheUnitPrinted) {
  CommandOutput out = PollFleetctl(*cluster_, "journal --lines 5 hello.service", [](const CommandOutput& o) {
    return o.exit_code == 0 && absl::StrContains(o.text, kMarker);
  });
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, kMarker)) << out.text;
  // journalctl's short format: the unit's shell is identified with its PID.
  EXPECT_TRUE(absl::StrContains(out.text, "sh[")) << out.text;
  int lines = 0;
  for (char ch : out.text) lines += ch == '\n';
  EXPECT_LE(lines, 5) << out.text;
}

TEST_F(StatusJournalTest, StatusShowsActiveRunningMainPidAndTheLine) {
  std::string pid(absl::StripTrailingAsciiWhitespace(
      cluster_->Exec(1, "systemctl --user show -p MainPID --value hello.service").text));
  ASSERT_NE(pid, "");
  ASSERT_NE(pid, "0");
  CommandOutput out = PollFleetctl(*cluster_, "status hello.service", [](const CommandOutput& o) {
    return o.exit_code == 0 && absl::StrContains(o.text, kMarker);
  });
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "hello.service - Says hello")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "Active: active (running) since ")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "Main PID: " + pid + "\n")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, kMarker)) << out.text;

  CommandOutput json = cluster_->Fleetctl("status --output=json --fields=unit,active,sub,pid hello.service");
  EXPECT_EQ(json.exit_code, 0) << json.text;
  EXPECT_EQ(json.text, absl::StrCat("[\n  {\"unit\": \"hello.service\", \"active\": \"active\", "
                                    "\"sub\": \"running\", \"pid\": \"",
                                    pid, "\"}\n]\n"));
}

TEST_F(StatusJournalTest, FollowShowsALinePrintedAfterItStarted) {
  // Wait until the marker is in the journal, so --lines 1 has something to show
  // once the follow is set up.
  PollFleetctl(*cluster_, "journal --lines 5 hello.service",
               [](const CommandOutput& o) { return absl::StrContains(o.text, kMarker); });
  BackgroundFleetctl follow(*cluster_, "journal -f --lines 1 hello.service",
                            absl::StrCat(::testing::TempDir(), "/follow-", getpid(), ".log"));
  // The last line printed so far is shown first: the follow is set up.
  std::string before;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && before.empty()) {
    before = follow.output();
    if (before.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_FALSE(before.empty()) << "journal -f printed nothing";
  ASSERT_FALSE(absl::StrContains(before, kSignalled)) << before;
  CommandOutput kill = cluster_->Exec(1, "systemctl --user kill --kill-who=main -s USR1 hello.service");
  ASSERT_EQ(kill.exit_code, 0) << kill.text;
  EXPECT_TRUE(follow.WaitForOutput(kSignalled)) << follow.output();
  EXPECT_TRUE(follow.Running()) << "a follow keeps running: " << follow.output();
  follow.Stop();
}

TEST_F(StatusJournalTest, UnknownUnitFailsWithAClearMessage) {
  CommandOutput out = cluster_->Fleetctl("status nope.service");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_EQ(out.text, "Error: unit nope.service not found\n");
  out = cluster_->Fleetctl("journal nope.service");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_EQ(out.text, "Error: unit nope.service not found\n");
}

TEST_F(StatusJournalTest, UnitOnNoMachineSaysSo) {
  std::string path = WriteUnit("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
  ASSERT_EQ(cluster_->Fleetctl("submit " + path).exit_code, 0);
  CommandOutput out = cluster_->Fleetctl("status idle.service");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(out.text, "unit idle.service is not scheduled on any machine")) << out.text;
  // Several units: the good one is shown, the bad one named, exit 1.
  out = cluster_->Fleetctl("status --lines 0 hello.service idle.service");
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "hello.service - Says hello")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "idle.service is not scheduled")) << out.text;
}

}  // namespace
}  // namespace fleet::test
