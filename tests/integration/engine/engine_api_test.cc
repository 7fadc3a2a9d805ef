// The engine's gRPC services over a real channel on 127.0.0.1 (port 0): the
// public API, and fake agents on real AgentService streams. Time is a
// FakeClock; the test calls Engine::Tick() itself after moving it, and waits
// for what the engine sends with blocking stream reads (no sleeps).

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/unit/unit_file.h"
#include "engine/engine.h"
#include "engine/leadership.h"
#include "engine/server.h"
#include "engine/store/embedded_store.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";
constexpr char kPlain2[] = "[Service]\nExecStart=/bin/sleep 2000\n";

std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<v1::ScheduledUnit>& units) {
  std::vector<std::string> names;
  for (const auto& unit : units) names.push_back(unit.name());
  return names;
}

// One agent's stream, as the agent sees it.
class FakeAgent {
 public:
  FakeAgent(v1::AgentService::Stub* stub, const std::string& machine_id) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub->Connect(&context_);
    v1::AgentMessage hello;
    hello.mutable_register_()->mutable_machine()->set_id(machine_id);
    // Not checked: a follower may end the stream before the write lands.
    // Every test looks at what the engine answered (Read, Finish) instead.
    stream_->Write(hello);
  }
  ~FakeAgent() {
    if (finished_) return;
    context_.TryCancel();
    stream_->Finish().IgnoreError();
  }
  // Blocks until the engine sends a message; false when the stream ended.
  bool Read(v1::EngineMessage* message) { return stream_->Read(message); }
  grpc::Status Finish() {
    finished_ = true;
    return stream_->Finish();
  }

 private:
  bool finished_ = false;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::EngineMessage>> stream_;
};

class EngineApiTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "engine_api_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    EmbeddedStoreOptions options;
    options.dir = dir_;
    options.clock = &clock_;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    EngineOptions engine_options;
    engine_options.agent_ttl = absl::Seconds(30);
    auto engine = Engine::Create(store_.get(), &clock_, engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    EngineServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    auto server = EngineServer::Start(engine_.get(), &leadership_, server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    fleet_ = v1::Fleet::NewStub(channel);
    agents_ = v1::AgentService::NewStub(channel);
  }
  void TearDown() override {
    server_.reset();
    engine_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  grpc::Status Create(const std::string& name, const std::string& contents, v1::DesiredState state,
                      v1::CreateUnitResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(contents);
    request.set_desired_state(state);
    v1::CreateUnitResponse ignored;
    return fleet_->CreateUnit(&context, request, response ? response : &ignored);
  }
  grpc::Status SetState(const std::string& name, v1::DesiredState state) {
    grpc::ClientContext context;
    v1::SetUnitDesiredStateRequest request;
    request.set_name(name);
    request.set_desired_state(state);
    v1::Unit unit;
    return fleet_->SetUnitDesiredState(&context, request, &unit);
  }
  std::vector<std::string> UnitNames() {
    grpc::ClientContext context;
    v1::ListUnitsResponse response;
    EXPECT_TRUE(fleet_->ListUnits(&context, v1::ListUnitsRequest(), &response).ok());
    std::vector<std::string> names;
    for (const auto& unit : response.units()) {
      names.push_back(unit.name() + "=" + v1::DesiredState_Name(unit.desired_state()));
    }
    return names;
  }
  // Reads the next message and checks it is the full schedule.
  std::vector<std::string> ReadFull(FakeAgent& agent) {
    v1::EngineMessage message;
    EXPECT_TRUE(agent.Read(&message));
    EXPECT_TRUE(message.has_full()) << message.DebugString();
    std::vector<std::string> names;
    for (const auto& unit : message.full().units()) names.push_back(unit.name());
    return names;
  }
  void Tick() { ASSERT_TRUE(engine_->Tick().ok()); }

  std::filesystem::path dir_;
  FakeClock clock_;
  SoleLeader leadership_{"127.0.0.1:0"};
  std::unique_ptr<EmbeddedStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EngineServer> server_;
  std::unique_ptr<v1::Fleet::Stub> fleet_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(EngineApiTest, UnitLifecycleOverGrpc) {
  v1::CreateUnitResponse created;
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LOADED, &created).ok());
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.unit().hash().size(), 40u);

  grpc::Status same = Create("web.service", kPlain, v1::DESIRED_STATE_UNSPECIFIED, &created);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(created.created());

  grpc::Status other = Create("web.service", kPlain2, v1::DESIRED_STATE_UNSPECIFIED);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(other.error_message(), HasSubstr("already exists with other contents"));

  ASSERT_TRUE(SetState("web.service", v1::DESIRED_STATE_LAUNCHED).ok());
  {
    grpc::ClientContext context;
    v1::GetUnitRequest request;
    request.set_name("web.service");
    v1::Unit unit;
    ASSERT_TRUE(fleet_->GetUnit(&context, request, &unit).ok());
    EXPECT_EQ(unit.desired_state(), v1::DESIRED_STATE_LAUNCHED);
    EXPECT_EQ(unit.contents(), kPlain);
  }
  {
    grpc::ClientContext context;
    v1::DestroyUnitRequest request;
    request.set_name("web.service");
    v1::DestroyUnitResponse response;
    ASSERT_TRUE(fleet_->DestroyUnit(&context, request, &response).ok());
  }
  {
    grpc::ClientContext context;
    v1::GetUnitRequest request;
    request.set_name("web.service");
    v1::Unit unit;
    grpc::Status status = fleet_->GetUnit(&context, request, &unit);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("web.service"));
  }
}

TEST_F(EngineApiTest, BadInputIsRefusedWithAClearMessageAndChangesNothing) {
  ASSERT_TRUE(Create("keep.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  const std::vector<std::string> before = UnitNames();

  grpc::Status malformed = Create("bad.service", "[Service\nExecStart=/bin/true\n", v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(malformed.error_message(), HasSubstr("line 1"));

  grpc::Status bad_name = Create("../etc/passwd", kPlain, v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(bad_name.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  std::string big = std::string(kPlain) + "# " + std::string(kMaxUnitFileSize, 'x') + "\n";
  grpc::Status too_big = Create("big.service", big, v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_big.error_message(), HasSubstr("(1 MiB) are allowed"));

  grpc::Status unknown_state = SetState("keep.service", static_cast<v1::DesiredState>(9));
  EXPECT_EQ(unknown_state.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unknown_state.error_message(), HasSubstr("unknown desired state 9"));

  grpc::Status replace_bad = Create("keep.service", "[Service]\nExecStart=/bin/true\nnot an option\n",
                                    v1::DESIRED_STATE_INACTIVE);
  EXPECT_EQ(replace_bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(UnitNames(), before);
  EXPECT_THAT(before, ElementsAre("keep.service=DESIRED_STATE_LAUNCHED"));
}

TEST_F(EngineApiTest, AgentsGetFullScheduleDeltasAndNothingForOthersChanges) {
  FakeAgent a(agents_.get(), "machine-a");
  EXPECT_THAT(ReadFull(a), IsEmpty());

  // A unit goes to the only machine: a delta for a.
  ASSERT_TRUE(Create("one.service", kPlain, v1::DESIRED_STATE_LOADED).ok());
  Tick();
  v1::EngineMessage message;
  ASSERT_TRUE(a.Read(&message));
  ASSERT_TRUE(message.has_delta());
  EXPECT_THAT(Names(message.delta().upserts()), ElementsAre("one.service"));
  EXPECT_EQ(message.delta().upserts(0).desired_state(), v1::DESIRED_STATE_LOADED);

  // Started: a delta with the new state.
  ASSERT_TRUE(SetState("one.service", v1::DESIRED_STATE_LAUNCHED).ok());
  Tick();
  ASSERT_TRUE(a.Read(&message));
  ASSERT_EQ(message.delta().upserts_size(), 1);
  EXPECT_EQ(message.delta().upserts(0).desired_state(), v1::DESIRED_STATE_LAUNCHED);

  // b joins; a unit placed on b (fewest units) must not reach a.
  FakeAgent b(agents_.get(), "machine-b");
  EXPECT_THAT(ReadFull(b), IsEmpty());
  ASSERT_TRUE(Create("two.service", kPlain2, v1::DESIRED_STATE_LAUNCHED).ok());
  Tick();
  ASSERT_TRUE(b.Read(&message));
  EXPECT_THAT(Names(message.delta().upserts()), ElementsAre("two.service"));
  // The next thing a hears about is its own unit stopping, nothing before it.
  ASSERT_TRUE(SetState("one.service", v1::DESIRED_STATE_INACTIVE).ok());
  Tick();
  ASSERT_TRUE(a.Read(&message));
  EXPECT_THAT(message.delta().upserts(), IsEmpty()) << message.DebugString();
  EXPECT_THAT(message.delta().removes(), ElementsAre("one.service"));
}

TEST_F(EngineApiTest, SecondStreamForTheSameMachineIsRefused) {
  FakeAgent first(agents_.get(), "machine-a");
  EXPECT_THAT(ReadFull(first), IsEmpty());
  FakeAgent second(agents_.get(), "machine-a");
  v1::EngineMessage message;
  EXPECT_FALSE(second.Read(&message));
  grpc::Status status = second.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("machine-a"));
  // The first stream is untouched: it still gets its deltas.
  ASSERT_TRUE(Create("one.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  Tick();
  ASSERT_TRUE(first.Read(&message));
  EXPECT_THAT(Names(message.delta().upserts()), ElementsAre("one.service"));
}

TEST_F(EngineApiTest, DeadMachinesUnitsMoveToAnotherAgent) {
  FakeAgent a(agents_.get(), "machine-a");
  EXPECT_THAT(ReadFull(a), IsEmpty());
  ASSERT_TRUE(Create("one.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  Tick();
  v1::EngineMessage message;
  ASSERT_TRUE(a.Read(&message));
  EXPECT_THAT(Names(message.delta().upserts()), ElementsAre("one.service"));

  // b registers 20 s later (its full schedule proves the engine has it);
  // 10 s after that a has been silent for the whole ttl, b for 10 s.
  clock_.Advance(absl::Seconds(20));
  FakeAgent b(agents_.get(), "machine-b");
  EXPECT_THAT(ReadFull(b), IsEmpty());
  clock_.Advance(absl::Seconds(10));
  Tick();

  // a: its stream is ended by the engine.
  EXPECT_FALSE(a.Read(&message));
  grpc::Status ended = a.Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(ended.error_message(), HasSubstr("declared dead"));
  // b: receives the moved unit.
  ASSERT_TRUE(b.Read(&message));
  EXPECT_THAT(Names(message.delta().upserts()), ElementsAre("one.service"));

  grpc::ClientContext context;
  v1::ListUnitStatesResponse states;
  ASSERT_TRUE(fleet_->ListUnitStates(&context, v1::ListUnitStatesRequest(), &states).ok());
  ASSERT_EQ(states.units_size(), 1);
  EXPECT_EQ(states.units(0).machine_id(), "machine-b");

  // a comes back: a fresh full schedule, without the unit that moved.
  FakeAgent again(agents_.get(), "machine-a");
  EXPECT_THAT(ReadFull(again), IsEmpty());
}

}  // namespace
}  // namespace fleet

namespace fleet {
namespace {

// An engine that does not lead answers every call with UNAVAILABLE naming the
// leader (message and "fleet-leader" trailing metadata), and ends agent streams.
class Follower final : public Leadership {
 public:
  bool IsLeader() const override { return false; }
  std::string LeaderAddress() const override { return "10.1.2.3:7001"; }
  absl::StatusOr<std::vector<Compare>> WriteGuard() const override {
    return absl::UnavailableError("not the leader");
  }
};

TEST(EngineFollowerTest, CallsAndStreamsAreSentToTheLeader) {
  std::string pattern = (std::filesystem::temp_directory_path() / "engine_follower_test_XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  FakeClock clock;
  {
    EmbeddedStoreOptions options;
    options.dir = pattern;
    options.clock = &clock;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto engine = Engine::Create(store->get(), &clock, EngineOptions());
    ASSERT_TRUE(engine.ok());
    Follower follower;
    auto server = EngineServer::Start(engine->get(), &follower, EngineServerOptions());
    ASSERT_TRUE(server.ok()) << server.status();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                       grpc::InsecureChannelCredentials());

    grpc::ClientContext context;
    v1::ListUnitsResponse response;
    grpc::Status status = v1::Fleet::NewStub(channel)->ListUnits(&context, v1::ListUnitsRequest(), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(status.error_message(), HasSubstr("the leader is at 10.1.2.3:7001"));
    auto leader = context.GetServerTrailingMetadata().find("fleet-leader");
    ASSERT_NE(leader, context.GetServerTrailingMetadata().end());
    EXPECT_EQ(std::string(leader->second.data(), leader->second.size()), "10.1.2.3:7001");

    auto agents = v1::AgentService::NewStub(channel);
    FakeAgent agent(agents.get(), "machine-a");
    v1::EngineMessage message;
    EXPECT_FALSE(agent.Read(&message));
    grpc::Status ended = agent.Finish();
    EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(ended.error_message(), HasSubstr("10.1.2.3:7001"));
  }
  std::filesystem::remove_all(pattern);
}

}  // namespace
}  // namespace fleet
