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
#include "tests/support/engine_process.h"
#include "tests/support/etcd_cluster.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

constexpr char kEngine[] = FLEET_BINARY_DIR "/engine/fleet-engine";
constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";

using test::EngineProcess;

class EngineOnEtcdTest : public ::testing::Test {
 protected:
  EngineProcess* Spawn(const std::vector<std::string>& args) { return engines_.Spawn(args); }

  // fleet-engine on 127.0.0.1:0 with the etcd store and a 2 s leader lease;
  // waits until it listens.
  EngineProcess* StartEngine(const test::EtcdCluster& etcd) {
    EngineProcess* process =
        Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd", "--etcd-endpoints",
               absl::StrJoin(etcd.endpoints(), ","), "--leader-ttl", "2s"});
    EXPECT_NE(process, nullptr);
    if (process == nullptr) return nullptr;
    EXPECT_TRUE(process->WaitListening()) << process->output;
    return process;
  }

  std::unique_ptr<v1::Fleet::Stub> Client(const EngineProcess& process) {
    return v1::Fleet::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(process.port),
                                                  grpc::InsecureChannelCredentials()));
  }

  test::EngineProcesses engines_;
};

TEST_F(EngineOnEtcdTest, UnitsSurviveAnEngineRestartBecauseTheyAreInEtcd) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EngineProcess* first = StartEngine(**etcd);
  ASSERT_NE(first, nullptr);
  EXPECT_THAT(first->output, HasSubstr("etcd store at " + (*etcd)->endpoint(0)));
  EXPECT_THAT(first->output,
              HasSubstr("campaigning for leader as 127.0.0.1:" + std::to_string(first->port)));
  ASSERT_TRUE(first->ReadUntil("this engine is now the leader")) << first->output;
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

  // The killed leader's key lives until its lease expires; then the new
  // engine leads.
  EngineProcess* second = StartEngine(**etcd);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->ReadUntil("this engine is now the leader")) << second->output;
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
