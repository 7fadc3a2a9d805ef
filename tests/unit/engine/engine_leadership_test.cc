// The engine under a Leadership that the test switches: two engines on one
// EmbeddedStore, as two engines share one etcd. Only the leader writes and
// holds agent streams; taking the lead reloads what the other one wrote; a
// write whose leader key is gone is refused and stores nothing.

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "engine/engine.h"
#include "engine/store/embedded_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/store/temp_dir.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";

// Leads while `leading`; its write guard compares the create_revision of
// `guard_key` (the stand-in for an etcd leader key) when one is set.
class SwitchedLeadership final : public Leadership {
 public:
  bool IsLeader() const override { return leading; }
  std::string LeaderAddress() const override { return leading ? "self:1" : ""; }
  absl::StatusOr<std::vector<Compare>> WriteGuard() const override {
    if (!leading) return absl::UnavailableError("this engine is not the leader");
    if (guard_key.empty()) return std::vector<Compare>{};
    Compare guard;
    guard.key = guard_key;
    guard.target = Compare::Target::kCreateRevision;
    guard.number = guard_revision;
    return std::vector<Compare>{guard};
  }

  bool leading = false;
  std::string guard_key;
  int64_t guard_revision = 0;
};

class RecordingChannel final : public AgentChannel {
 public:
  void Send(v1::EngineMessage message) override { messages.push_back(std::move(message)); }
  void Close(absl::Status status) override { close_status = std::move(status); }
  std::vector<v1::EngineMessage> messages;
  absl::Status close_status;
};

class EngineLeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmbeddedStoreOptions options;
    options.dir = dir_.path();
    options.clock = &clock_;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    a_ = MakeEngine(&lead_a_);
    b_ = MakeEngine(&lead_b_);
  }

  std::unique_ptr<Engine> MakeEngine(const Leadership* leadership) {
    EngineOptions options;
    options.agent_ttl = absl::Seconds(30);
    options.leadership = leadership;
    auto engine = Engine::Create(store_.get(), &clock_, options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  static absl::StatusOr<v1::CreateUnitResponse> Create(Engine& engine, const std::string& name) {
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(kPlain);
    request.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
    return engine.CreateUnit(request);
  }

  static v1::Register Registration(const std::string& id) {
    v1::Register reg;
    reg.mutable_machine()->set_id(id);
    return reg;
  }

  bool Stored(const std::string& key) { return store_->Get(key).ok(); }

  FakeClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<EmbeddedStore> store_;
  SwitchedLeadership lead_a_;
  SwitchedLeadership lead_b_;
  std::unique_ptr<Engine> a_;
  std::unique_ptr<Engine> b_;
};

TEST_F(EngineLeadershipTest, FollowerWritesNothingAndRefusesAgents) {
  ASSERT_TRUE(a_->Tick().ok());
  EXPECT_FALSE(a_->leading());

  absl::StatusOr<v1::CreateUnitResponse> created = Create(*a_, "web.service");
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(created.status().message(), HasSubstr("not the leader"));
  EXPECT_FALSE(Stored(std::string(kUnitsPrefix) + "web.service"));

  RecordingChannel channel;
  absl::StatusOr<int64_t> session = a_->AgentRegistered(Registration("m1"), &channel);
  EXPECT_EQ(session.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(Stored(std::string(kMachinesPrefix) + "m1"));
}

TEST_F(EngineLeadershipTest, TakingTheLeadReloadsWhatTheOtherLeaderWrote) {
  lead_a_.leading = true;
  ASSERT_TRUE(a_->Tick().ok());
  ASSERT_TRUE(a_->leading());
  RecordingChannel agent;
  ASSERT_TRUE(a_->AgentRegistered(Registration("m1"), &agent).ok());
  ASSERT_TRUE(Create(*a_, "web.service").ok());
  ASSERT_TRUE(a_->Tick().ok());  // schedules web.service on m1
  EXPECT_EQ(b_->GetUnit("web.service").status().code(), absl::StatusCode::kNotFound)
      << "b loaded before a wrote";

  // a loses the lead, b takes it.
  lead_a_.leading = false;
  lead_b_.leading = true;
  ASSERT_TRUE(a_->Tick().ok());
  EXPECT_FALSE(a_->leading());
  EXPECT_EQ(agent.close_status.code(), absl::StatusCode::kUnavailable) << "a closes its agent streams";
  ASSERT_TRUE(b_->Tick().ok());
  ASSERT_TRUE(b_->leading());

  absl::StatusOr<v1::Unit> unit = b_->GetUnit("web.service");
  ASSERT_TRUE(unit.ok()) << unit.status();
  // The schedule came along: m1's agent gets web.service from b at once,
  // without a new placement.
  RecordingChannel moved;
  ASSERT_TRUE(b_->AgentRegistered(Registration("m1"), &moved).ok());
  ASSERT_FALSE(moved.messages.empty());
  ASSERT_TRUE(moved.messages[0].has_full());
  ASSERT_EQ(moved.messages[0].full().units_size(), 1);
  EXPECT_EQ(moved.messages[0].full().units(0).name(), "web.service");

  // The old leader still answers reads from what it knew.
  EXPECT_TRUE(a_->GetUnit("web.service").ok());
  EXPECT_EQ(Create(*a_, "other.service").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(EngineLeadershipTest, WriteWhoseLeaderKeyIsGoneIsRefusedAndStoresNothing) {
  absl::StatusOr<int64_t> key = store_->Put("/lead/a", "a");
  ASSERT_TRUE(key.ok());
  lead_a_.leading = true;
  lead_a_.guard_key = "/lead/a";
  lead_a_.guard_revision = *key;
  ASSERT_TRUE(a_->Tick().ok());
  ASSERT_TRUE(Create(*a_, "kept.service").ok()) << "the guard holds";

  // The leader key expires at the store; the engine has not noticed yet.
  ASSERT_TRUE(store_->Delete("/lead/a").ok());
  absl::StatusOr<v1::CreateUnitResponse> created = Create(*a_, "lost.service");
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(created.status().message(), HasSubstr("lost the leadership"));
  EXPECT_FALSE(Stored(std::string(kUnitsPrefix) + "lost.service"));
  EXPECT_TRUE(Stored(std::string(kUnitsPrefix) + "kept.service"));

  // A record that changed meanwhile is still ABORTED, not a lost leadership.
  ASSERT_TRUE(store_->Put("/lead/a", "a").ok());
  absl::StatusOr<KeyValue> again = store_->Get("/lead/a");
  ASSERT_TRUE(again.ok());
  lead_a_.guard_revision = again->create_revision;
  ASSERT_TRUE(store_->Put(std::string(kUnitsPrefix) + "kept.service", "changed behind its back").ok());
  v1::SetUnitDesiredStateRequest stop;
  stop.set_name("kept.service");
  stop.set_desired_state(v1::DESIRED_STATE_LOADED);
  EXPECT_EQ(a_->SetUnitDesiredState(stop).status().code(), absl::StatusCode::kAborted);
}

}  // namespace
}  // namespace fleet
