// Mutual TLS against the REAL binaries: fleet-engine with certificates made by
// scripts/pki, fleetctl as a user runs it, and (in a sandbox host with a real
// systemd user manager, root only) fleet-agent with another machine's
// certificate. Every process started here is recorded by PID and killed in
// TearDown, also when a test fails.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/command.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kEngine = std::string(FLEET_BINARY_DIR) + "/engine/fleet-engine";
const std::string kFleetctl = std::string(FLEET_BINARY_DIR) + "/fleetctl/fleetctl";
const std::string kPki = std::string(FLEET_SOURCE_DIR) + "/scripts/pki";

// The non-empty lines of `text`.
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class EngineTlsTest : public testing::Test {
 protected:
  // One PKI for the suite (scripts/pki takes ~0.1-1 s per certificate): the
  // cluster's CA with an engine (SAN IP:127.0.0.1), an expired engine, an
  // admin, a viewer; another CA with an admin.
  static void SetUpTestSuite() {
    std::string pattern = (std::filesystem::temp_directory_path() / "engine_tls_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return;
    std::string p = ShellQuote(pattern);
    CommandOutput made = RunCommand(absl::StrCat(
        kPki, " init ", p, "/ca && ", kPki, " engine ", p, "/ca engine --san IP:127.0.0.1 && ", kPki,
        " engine ", p, "/ca engine-expired --san IP:127.0.0.1 --expired && ", kPki, " admin ", p,
        "/ca alice && ", kPki, " viewer ", p, "/ca bob && ", kPki, " init ", p, "/other && ", kPki,
        " admin ", p, "/other mallory"));
    if (made.exit_code != 0) {
      ADD_FAILURE() << made.text;
      std::filesystem::remove_all(pattern);
      return;
    }
    dir_ = new std::string(pattern);
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(dir_, nullptr) << "scripts/pki failed"; }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stderr_fd_ >= 0) close(stderr_fd_);
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_ + "/data");
  }

  // fleet-engine on 127.0.0.1:0 with the certificate `certificate` of the
  // cluster's CA; returns its address once it listens ("" if it did not).
  std::string StartEngine(const std::string& certificate) {
    std::vector<std::string> args = {kEngine,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--data-dir",
                                     *dir_ + "/data",
                                     "--ca-file",
                                     *dir_ + "/ca/ca.pem",
                                     "--cert-file",
                                     *dir_ + "/ca/" + certificate + ".pem",
                                     "--key-file",
                                     *dir_ + "/ca/" + certificate + "-key.pem"};
    std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return "";
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      execv(kEngine.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    stderr_fd_ = fds[0];
    // Reads stderr until the start-up line, the end of stderr, or 30 s (polling the real process).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (output_.find("is the leader)\n") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd fd{stderr_fd_, POLLIN, 0};
      if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = read(stderr_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      output_.append(buffer, static_cast<size_t>(n));
    }
    size_t at = output_.find("(port ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "the engine did not start: " << output_;
      return "";
    }
    size_t end = output_.find(')', at);
    return "127.0.0.1:" + output_.substr(at + 6, end - at - 6);
  }

  // fleetctl against `address` with the certificate NAME of CA `ca` (no TLS flags when empty).
  CommandOutput Fleetctl(const std::string& address, const std::string& ca, const std::string& name,
                         const std::string& args) {
    std::string tls;
    if (!name.empty()) {
      std::string base = *dir_ + "/" + ca + "/" + name;
      tls = absl::StrCat(" --ca-file ", ShellQuote(*dir_ + "/" + ca + "/ca.pem"), " --cert-file ",
                         ShellQuote(base + ".pem"), " --key-file ", ShellQuote(base + "-key.pem"));
    }
    return RunCommand(absl::StrCat("timeout 60 ", kFleetctl, " --endpoint ", address,
                                   " --request-timeout 10s", tls, " ", args, " 2>&1"));
  }

  static std::string* dir_;
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string output_;  // the engine's stderr so far
};

std::string* EngineTlsTest::dir_ = nullptr;

TEST_F(EngineTlsTest, EngineSaysItServesMutualTls) {
  ASSERT_NE(StartEngine("engine"), "");
  EXPECT_THAT(output_, HasSubstr("mutual TLS"));
  EXPECT_THAT(output_, Not(HasSubstr("PLAINTEXT")));
}

TEST_F(EngineTlsTest, AdminMayChangeState) {
  std::string address = StartEngine("engine");
  ASSERT_NE(address, "");
  std::string unit = *dir_ + "/hello.service";
  RunCommand(absl::StrCat("printf '[Service]\\nExecStart=/bin/sleep 1000\\n' >", ShellQuote(unit)));
  CommandOutput out = Fleetctl(address, "ca", "alice", "submit " + ShellQuote(unit));
  EXPECT_EQ(out.exit_code, 0) << out.text;
  out = Fleetctl(address, "ca", "alice", "list-unit-files --no-legend --fields=unit");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("hello.service"));
}

TEST_F(EngineTlsTest, ViewerListsButCannotStartAUnit) {
  std::string address = StartEngine("engine");
  ASSERT_NE(address, "");
  CommandOutput out = Fleetctl(address, "ca", "bob", "list-units");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  out = Fleetctl(address, "ca", "bob", "list-machines");
  EXPECT_EQ(out.exit_code, 0) << out.text;

  std::string unit = *dir_ + "/web.service";
  RunCommand(absl::StrCat("printf '[Service]\\nExecStart=/bin/sleep 1000\\n' >", ShellQuote(unit)));
  out = Fleetctl(address, "ca", "bob", "start --no-block " + ShellQuote(unit));
  EXPECT_NE(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("needs role admin"));
  EXPECT_THAT(out.text, HasSubstr("viewer (bob)"));
  EXPECT_THAT(out.text, Not(HasSubstr("cannot reach")));
  // Nothing was stored.
  out = Fleetctl(address, "ca", "alice", "list-unit-files --no-legend");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, Not(HasSubstr("web.service")));
}

TEST_F(EngineTlsTest, FleetctlWithoutCertificateIsOneClearLine) {
  std::string address = StartEngine("engine");
  ASSERT_NE(address, "");
  CommandOutput out = Fleetctl(address, "", "", "list-units");
  EXPECT_EQ(out.exit_code, 2) << out.text;
  ASSERT_EQ(Lines(out.text).size(), 1u) << out.text;
  EXPECT_THAT(out.text, HasSubstr("--ca-file, --cert-file and --key-file"));
  EXPECT_THAT(out.text, HasSubstr("scripts/pki"));
  EXPECT_THAT(out.text, HasSubstr("--insecure"));
}

TEST_F(EngineTlsTest, CertificateOfAnotherCaIsOneClearLine) {
  std::string address = StartEngine("engine");
  ASSERT_NE(address, "");
  // mallory's CA does not know the engine's either: the handshake fails.
  CommandOutput out = Fleetctl(address, "other", "mallory", "list-units");
  EXPECT_EQ(out.exit_code, 1) << out.text;
  ASSERT_EQ(Lines(out.text).size(), 1u) << out.text;
  EXPECT_THAT(out.text, HasSubstr("TLS handshake with the engine at " + address + " failed"));
}

TEST_F(EngineTlsTest, ExpiredEngineCertificateIsOneClearLine) {
  std::string address = StartEngine("engine-expired");
  ASSERT_NE(address, "");
  CommandOutput out = Fleetctl(address, "ca", "alice", "list-units");
  EXPECT_EQ(out.exit_code, 1) << out.text;
  ASSERT_EQ(Lines(out.text).size(), 1u) << out.text;
  EXPECT_THAT(out.text, HasSubstr("TLS handshake with the engine at " + address + " failed"));
  EXPECT_THAT(out.text, HasSubstr("expired"));
}

TEST_F(EngineTlsTest, PlaintextFleetctlAgainstTlsEngineFails) {
  std::string address = StartEngine("engine");
  ASSERT_NE(address, "");
  CommandOutput out = Fleetctl(address, "", "", "--insecure list-units");
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_THAT(out.text, HasSubstr(address));
}

// In a sandbox cluster (TLS by default): an agent with host 1's certificate
// that registers as another machine is refused, and says why.
TEST(AgentTlsTest, AgentCertificateCannotActForAnotherMachine) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandbox hosts)";
  auto cluster = SandboxCluster::Up(WithHosts(1));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string own = c.MachineId(1);
  // The agent keeps retrying a refused stream: `timeout` ends it once it
  // had time for a few attempts; its log must say why.
  CommandOutput out = c.Exec(
      1, absl::StrCat("timeout 5 ", FLEET_BINARY_DIR, "/agent/fleet-agent --systemd user --engine ",
                      c.EngineAddress(), " --machine-id not-", own, " --unit-dir /run/fleet-impostor ",
                      c.AgentTlsFlags(own), " 2>&1"));
  EXPECT_THAT(out.text, HasSubstr("the agent certificate is for machine " + own + ", not not-" + own))
      << out.text;
  out = c.Fleetctl("list-machines --no-legend --full --fields=machine");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr(own));
  EXPECT_THAT(out.text, Not(HasSubstr("not-" + own)));
}

}  // namespace
}  // namespace fleet::test
