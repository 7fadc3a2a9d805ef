// fleet-engine on a real etcd (`--store etcd --etcd-endpoints ...`): what it
// stores is in etcd, so a new engine process finds it; a missing or dead etcd
// is a clear start-up error. Every engine process started here is recorded by
// PID and killed in TearDown, also when a test fails; etcd is the harness's.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/etcd_cluster.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

constexpr char kEngine[] = FLEET_BINARY_DIR "/engine/fleet-engine";
constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";

struct EngineProcess {
  pid_t pid = -1;
  int stderr_fd = -1;
  std::string output;
  int port = 0;

  // Reads stderr until `needle` appears, stderr closes, or 30 s pass.
  bool ReadUntil(const std::string& needle) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (output.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fd{stderr_fd, POLLIN, 0};
      if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = read(stderr_fd, buffer, sizeof buffer);
      if (n <= 0) return output.find(needle) != std::string::npos;
      output.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  // Reads stderr to its end, then reaps the process; its exit code, -1 if none.
  int Wait() {
    ReadUntil("\x01never\x01");
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
};

class EngineOnEtcdTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& process : processes_) {
      if (process->pid > 0) {
        kill(process->pid, SIGKILL);
        waitpid(process->pid, nullptr, 0);
      }
      if (process->stderr_fd >= 0) close(process->stderr_fd);
    }
  }

  EngineProcess* Spawn(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return nullptr;
    std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
    argv.push_back(const_cast<char*>(kEngine));
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDERR_FILENO);
      execv(kEngine, argv.data());
      _exit(127);
    }
    close(fds[1]);
    auto process = std::make_unique<EngineProcess>();
    process->pid = pid;
    process->stderr_fd = fds[0];
    processes_.push_back(std::move(process));
    return processes_.back().get();
  }

  // fleet-engine on 127.0.0.1:0 with the etcd store; waits until it listens.
  EngineProcess* StartEngine(const test::EtcdCluster& etcd) {
    EngineProcess* process =
        Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd", "--etcd-endpoints",
               absl::StrJoin(etcd.endpoints(), ",")});
    EXPECT_NE(process, nullptr);
    if (process == nullptr) return nullptr;
    EXPECT_TRUE(process->ReadUntil("is the leader)\n")) << process->output;
    size_t at = process->output.find("(port ");
    if (at != std::string::npos) {
      size_t end = process->output.find(')', at);
      EXPECT_TRUE(absl::SimpleAtoi(process->output.substr(at + 6, end - at - 6), &process->port));
    }
    EXPECT_GT(process->port, 0) << process->output;
    return process;
  }

  std::unique_ptr<v1::Fleet::Stub> Client(const EngineProcess& process) {
    return v1::Fleet::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(process.port),
                                                  grpc::InsecureChannelCredentials()));
  }

  std::vector<std::unique_ptr<EngineProcess>> processes_;
};

TEST_F(EngineOnEtcdTest, UnitsSurviveAnEngineRestartBecauseTheyAreInEtcd) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EngineProcess* first = StartEngine(**etcd);
  ASSERT_NE(first, nullptr);
  EXPECT_THAT(first->output, HasSubstr("etcd store at " + (*etcd)->endpoint(0)));
  EXPECT_THAT(first->output, HasSubstr("leader election among several engines is not built yet"));
  auto client = Client(*first);
  for (const char* name : {"a.service", "b.service"}) {
    grpc::ClientContext context;
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(kPlain);
    request.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
    v1::CreateUnitResponse response;
    grpc::Status status = client->CreateUnit(&context, request, &response);
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
  }
  kill(first->pid, SIGKILL);
  waitpid(first->pid, nullptr, 0);
  first->pid = -1;

  EngineProcess* second = StartEngine(**etcd);
  ASSERT_NE(second, nullptr);
  client = Client(*second);
  grpc::ClientContext context;
  v1::ListUnitsResponse listed;
  ASSERT_TRUE(client->ListUnits(&context, v1::ListUnitsRequest(), &listed).ok());
  ASSERT_EQ(listed.units_size(), 2);
  EXPECT_EQ(listed.units(0).name(), "a.service");
  EXPECT_EQ(listed.units(1).name(), "b.service");
  EXPECT_EQ(listed.units(1).contents(), kPlain);
  EXPECT_EQ(listed.units(1).desired_state(), v1::DESIRED_STATE_LAUNCHED);
  kill(second->pid, SIGTERM);
  EXPECT_EQ(second->Wait(), 0);
}

TEST_F(EngineOnEtcdTest, EtcdStoreWithoutEndpointsIsAUsageError) {
  EngineProcess* process = Spawn({"--store", "etcd"});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("store etcd needs etcd_endpoints"));
}

TEST_F(EngineOnEtcdTest, UnreachableEtcdIsAStartupErrorNamingIt) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  (*etcd)->Kill(0);
  EngineProcess* process =
      Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd", "--etcd-endpoints",
             (*etcd)->endpoint(0)});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 1);
  EXPECT_THAT(process->output, HasSubstr("etcd at " + (*etcd)->endpoint(0) + " unavailable"));
}

}  // namespace
}  // namespace fleet
