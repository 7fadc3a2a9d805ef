// The fleet-engine binary as an operator runs it: flags, config errors, the
// API on a real port, SIGTERM, and kill -9 followed by a restart on the same
// data directory. Every process started here is recorded by PID and killed in
// the fixture's TearDown, also when a test fails.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/engine_process.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEngine[] = FLEET_BINARY_DIR "/engine/fleet-engine";
constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";

// A running fleet-engine with its stderr on a pipe.
using test::EngineProcess;

class EngineProcessTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "engine_process_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    engines_.reset();  // killed before their data dir goes
    std::filesystem::remove_all(dir_);
  }

  // Starts fleet-engine with `args`; does not wait for it to listen.
  EngineProcess* Spawn(const std::vector<std::string>& args) { return engines_->Spawn(args); }
  // Starts fleet-engine on 127.0.0.1:0 with the test's data dir (plaintext
  // unless `insecure` is false) and waits until it listens.
  EngineProcess* StartEngine(std::vector<std::string> extra = {}, bool insecure = true) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", (dir_ / "data").string()};
    if (insecure) args.push_back("--insecure");
    args.insert(args.end(), extra.begin(), extra.end());
    EngineProcess* process = Spawn(args);
    EXPECT_NE(process, nullptr);
    if (process == nullptr) return nullptr;
    EXPECT_TRUE(process->WaitListening()) << process->output;
    return process;
  }

  std::unique_ptr<v1::Fleet::Stub> Client(const EngineProcess& process) {
    return v1::Fleet::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(process.port),
                                                  grpc::InsecureChannelCredentials()));
  }

  std::filesystem::path dir_;
  std::unique_ptr<test::EngineProcesses> engines_ = std::make_unique<test::EngineProcesses>();
};

TEST_F(EngineProcessTest, ConfigErrorNamesFileKeyAndProblem) {
  std::string config = (dir_ / "engine.yaml").string();
  std::ofstream(config) << "listen: 127.0.0.1:0\nagent_tll: 10s\n";
  EngineProcess* process = Spawn({"--config", config});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("<3>"));
  EXPECT_THAT(process->output, HasSubstr(config));
  EXPECT_THAT(process->output, HasSubstr("key agent_tll: unknown key"));
}

TEST_F(EngineProcessTest, BadFlagValueIsAUsageError) {
  EngineProcess* process = Spawn({"--agent-ttl", "forever"});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("--agent-ttl: \"forever\" is not a duration"));
}

TEST_F(EngineProcessTest, RefusesToStartWithoutTlsFilesOrInsecure) {
  EngineProcess* process = Spawn({"--listen", "127.0.0.1:0", "--data-dir", (dir_ / "data").string()});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_EQ(std::count(process->output.begin(), process->output.end(), '\n'), 1) << process->output;
  EXPECT_THAT(process->output, HasSubstr("--ca-file, --cert-file and --key-file"));
  EXPECT_THAT(process->output, HasSubstr("scripts/pki"));
  EXPECT_THAT(process->output, HasSubstr("--insecure"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "data")) << "nothing was opened";
}

TEST_F(EngineProcessTest, InsecureAndTlsFilesExcludeEachOther) {
  EngineProcess* process = Spawn({"--insecure", "--ca-file", "/x/ca.pem", "--cert-file", "/x/e.pem",
                                  "--key-file", "/x/e-key.pem", "--data-dir", (dir_ / "data").string()});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("exclude each other"));
}

TEST_F(EngineProcessTest, StartsWithCertificatesFromScriptsPki) {
  std::string pki = (dir_ / "pki").string();
  ASSERT_EQ(system(("'" FLEET_SOURCE_DIR "/scripts/pki' init '" + pki + "' >/dev/null && '" FLEET_SOURCE_DIR
                    "/scripts/pki' engine '" + pki + "' engine --san IP:127.0.0.1 >/dev/null")
                       .c_str()),
            0);
  EngineProcess* process = StartEngine(
      {"--ca-file", pki + "/ca.pem", "--cert-file", pki + "/engine.pem", "--key-file", pki + "/engine-key.pem"},
      /*insecure=*/false);
  ASSERT_NE(process, nullptr);
  EXPECT_THAT(process->output, HasSubstr("mutual TLS"));
  EXPECT_THAT(process->output, Not(HasSubstr("PLAINTEXT")));
  // A plaintext client gets nowhere.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListUnitsRequest request;
  v1::ListUnitsResponse response;
  EXPECT_EQ(Client(*process)->ListUnits(&context, request, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  kill(process->pid, SIGTERM);
  EXPECT_EQ(process->Wait(), 0);
}

TEST_F(EngineProcessTest, InsecureWarnsAtStart) {
  EngineProcess* process = StartEngine();
  ASSERT_NE(process, nullptr);
  EXPECT_THAT(process->output, HasSubstr("<4>fleet-engine: --insecure: the API is PLAINTEXT and unauthenticated"));
  EXPECT_THAT(process->output, HasSubstr("PLAINTEXT (insecure)"));
}

TEST_F(EngineProcessTest, PortInUseIsAStartupError) {
  EngineProcess* first = StartEngine();
  ASSERT_NE(first, nullptr);
  std::string address = "127.0.0.1:" + std::to_string(first->port);
  EngineProcess* second = Spawn({"--listen", address, "--insecure", "--data-dir", (dir_ / "other").string()});
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->Wait(), 1);
  EXPECT_THAT(second->output, HasSubstr("<3>cannot listen on " + address));
}

TEST_F(EngineProcessTest, FlagsWinOverTheConfigFile) {
  std::string config = (dir_ / "engine.yaml").string();
  std::ofstream(config) << "listen: 127.0.0.1:1\nagent_ttl: 45s\n";
  EngineProcess* process = StartEngine({"--config", config});
  ASSERT_NE(process, nullptr);
  EXPECT_THAT(process->output, HasSubstr("agent_ttl 45s")) << "the file's value is used";
  EXPECT_THAT(process->output, HasSubstr("listening on 127.0.0.1:0")) << "the flag wins";
  kill(process->pid, SIGTERM);
  EXPECT_EQ(process->Wait(), 0) << process->output;
}

TEST_F(EngineProcessTest, SigtermShutsDownCleanly) {
  EngineProcess* process = StartEngine();
  ASSERT_NE(process, nullptr);
  // An agent stream is open when the signal comes: it is closed, not cut.
  auto agents = v1::AgentService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(process->port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = agents->Connect(&context);
  v1::AgentMessage hello;
  hello.mutable_register_()->mutable_machine()->set_id("machine-a");
  ASSERT_TRUE(stream->Write(hello));
  v1::EngineMessage full;
  ASSERT_TRUE(stream->Read(&full));
  ASSERT_TRUE(full.has_full());

  kill(process->pid, SIGTERM);
  EXPECT_FALSE(stream->Read(&full));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  EXPECT_EQ(process->Wait(), 0);
  EXPECT_THAT(process->output, HasSubstr("<6>received SIGTERM"));
  EXPECT_THAT(process->output, HasSubstr("<6>fleet-engine stopped"));
}

TEST_F(EngineProcessTest, KillDashNineAndRestartKeepsUnitsStatesAndPlacements) {
  EngineProcess* first = StartEngine();
  ASSERT_NE(first, nullptr);
  auto client = Client(*first);
  const std::vector<std::pair<std::string, v1::DesiredState>> units = {
      {"a.service", v1::DESIRED_STATE_LAUNCHED},
      {"b.service", v1::DESIRED_STATE_LOADED},
      {"c.service", v1::DESIRED_STATE_INACTIVE},
      {"t@.service", v1::DESIRED_STATE_INACTIVE},
  };
  for (const auto& [name, state] : units) {
    grpc::ClientContext context;
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(kPlain);
    request.set_desired_state(state);
    v1::CreateUnitResponse response;
    ASSERT_TRUE(client->CreateUnit(&context, request, &response).ok()) << name;
  }
  // An agent takes the running units; its delta proves the placement is stored.
  auto agents = v1::AgentService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(first->port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext agent_context;
  agent_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = agents->Connect(&agent_context);
  v1::AgentMessage hello;
  hello.mutable_register_()->mutable_machine()->set_id("machine-a");
  ASSERT_TRUE(stream->Write(hello));
  std::vector<std::string> received;
  v1::EngineMessage message;
  while (received.size() < 2 && stream->Read(&message)) {
    for (const auto& unit : message.full().units()) received.push_back(unit.name());
    for (const auto& unit : message.delta().upserts()) received.push_back(unit.name());
  }
  std::sort(received.begin(), received.end());
  ASSERT_THAT(received, ElementsAre("a.service", "b.service"));

  kill(first->pid, SIGKILL);
  waitpid(first->pid, nullptr, 0);
  first->pid = -1;
  stream->Read(&message);  // the stream breaks with the process
  agent_context.TryCancel();

  EngineProcess* second = StartEngine();
  ASSERT_NE(second, nullptr);
  client = Client(*second);
  grpc::ClientContext list_context;
  v1::ListUnitsResponse listed;
  ASSERT_TRUE(client->ListUnits(&list_context, v1::ListUnitsRequest(), &listed).ok());
  ASSERT_EQ(listed.units_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(listed.units(i).name(), units[i].first);
    EXPECT_EQ(listed.units(i).desired_state(), units[i].second) << units[i].first;
    EXPECT_EQ(listed.units(i).contents(), kPlain);
  }
  grpc::ClientContext states_context;
  v1::ListUnitStatesResponse states;
  ASSERT_TRUE(client->ListUnitStates(&states_context, v1::ListUnitStatesRequest(), &states).ok());
  std::map<std::string, std::string> placement;
  for (const auto& status : states.units()) placement[status.name()] = status.machine_id();
  EXPECT_EQ(placement["a.service"], "machine-a");
  EXPECT_EQ(placement["b.service"], "machine-a");
  EXPECT_EQ(placement["c.service"], "");
  grpc::ClientContext machines_context;
  v1::ListMachinesResponse machines;
  ASSERT_TRUE(client->ListMachines(&machines_context, v1::ListMachinesRequest(), &machines).ok());
  ASSERT_EQ(machines.machines_size(), 1);
  EXPECT_EQ(machines.machines(0).id(), "machine-a");
  EXPECT_EQ(machines.machines(0).units(), 2u);
  kill(second->pid, SIGTERM);
  EXPECT_EQ(second->Wait(), 0);
}

}  // namespace
}  // namespace fleet
