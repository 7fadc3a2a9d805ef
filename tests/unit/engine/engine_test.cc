// The engine's decisions, driven with FakeClock over a real EmbeddedStore in a
// temporary directory, with agents replaced by channels that record what the
// engine sends them.

#include "engine/engine.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/unit/unit_file.h"
#include "engine/store/embedded_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fault_store.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";
constexpr char kPlain2[] = "[Service]\nExecStart=/bin/sleep 2000\n";
constexpr char kOnDb[] = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role=db\n";
constexpr char kGlobal[] = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n";

class RecordingChannel final : public AgentChannel {
 public:
  void Send(v1::EngineMessage message) override { messages.push_back(std::move(message)); }
  void Close(absl::Status status) override {
    closed = true;
    close_status = std::move(status);
  }
  std::vector<v1::EngineMessage> Take() { return std::exchange(messages, {}); }

  std::vector<v1::EngineMessage> messages;
  bool closed = false;
  absl::Status close_status;
};

std::vector<std::string> Names(const v1::ScheduleFull& full) {
  std::vector<std::string> names;
  for (const auto& unit : full.units()) names.push_back(unit.name());
  return names;
}
std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<v1::ScheduledUnit>& units) {
  std::vector<std::string> names;
  for (const auto& unit : units) names.push_back(unit.name());
  return names;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "engine_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    OpenAll();
  }
  void TearDown() override {
    engine_.reset();
    fault_store_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenAll() {
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
  }
  // A new engine (default options) on a FaultStore over the same store.
  testing::FaultStore& UseFaultStore() {
    engine_.reset();
    fault_store_ = std::make_unique<testing::FaultStore>(store_.get());
    auto engine = Engine::Create(fault_store_.get(), &clock_, EngineOptions());
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (engine.ok()) engine_ = std::move(*engine);
    return *fault_store_;
  }
  // Simulates an engine restart on the same data directory.
  void Restart() {
    engine_.reset();
    fault_store_.reset();
    store_.reset();
    OpenAll();
  }

  absl::StatusOr<v1::CreateUnitResponse> Create(const std::string& name, const std::string& contents,
                                                v1::DesiredState state = v1::DESIRED_STATE_UNSPECIFIED,
                                                bool replace = false) {
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(contents);
    request.set_desired_state(state);
    request.set_replace(replace);
    return engine_->CreateUnit(request);
  }
  absl::Status SetState(const std::string& name, v1::DesiredState state) {
    v1::SetUnitDesiredStateRequest request;
    request.set_name(name);
    request.set_desired_state(state);
    return engine_->SetUnitDesiredState(request).status();
  }
  int64_t Register(const std::string& id, RecordingChannel* channel,
                   std::map<std::string, std::string> metadata = {}) {
    v1::Register reg;
    reg.mutable_machine()->set_id(id);
    for (const auto& [k, v] : metadata) (*reg.mutable_machine()->mutable_metadata())[k] = v;
    absl::StatusOr<int64_t> session = engine_->AgentRegistered(reg, channel);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : 0;
  }
  absl::StatusOr<v1::ListUnitStatesResponse> ListStates(const v1::ListUnitStatesRequest& request) {
    absl::StatusOr<std::string> page = engine_->ListUnitStates(request);
    if (!page.ok()) return page.status();
    v1::ListUnitStatesResponse response;
    if (!response.ParseFromString(*page)) return absl::DataLossError("the page does not parse");
    return response;
  }
  // A field of `unit`'s one ListUnitStates entry; "<N>" when it has N != 1.
  std::string FieldOfOnlyEntry(const std::string& unit,
                               const std::string& (v1::UnitStatus::*field)() const) {
    v1::ListUnitStatesRequest request;
    request.set_name_glob(unit);
    auto states = ListStates(request);
    if (!states.ok()) return "<" + states.status().ToString() + ">";
    if (states->units_size() != 1) return "<" + std::to_string(states->units_size()) + ">";
    return (states->units(0).*field)();
  }
  std::string MachineOf(const std::string& unit) {
    return FieldOfOnlyEntry(unit, &v1::UnitStatus::machine_id);
  }
  std::string ReasonOf(const std::string& unit) {
    return FieldOfOnlyEntry(unit, &v1::UnitStatus::unscheduled_reason);
  }
  std::vector<std::string> StoredKeys() {
    auto range = store_->Range("/fleet/");
    EXPECT_TRUE(range.ok());
    std::vector<std::string> keys;
    for (const auto& kv : range->kvs) keys.push_back(kv.key + "@" + std::to_string(kv.mod_revision));
    return keys;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<EmbeddedStore> store_;
  std::unique_ptr<testing::FaultStore> fault_store_;  // see UseFaultStore
  std::unique_ptr<Engine> engine_;
};

// --- Units -----------------------------------------------------------------

absl::StatusOr<v1::SetUnitsDesiredStateResponse> SetStates(Engine& engine, const std::vector<std::string>& names,
                                                          v1::DesiredState state) {
  v1::SetUnitsDesiredStateRequest request;
  for (const std::string& name : names) request.add_names(name);
  request.set_desired_state(state);
  return engine.SetUnitsDesiredState(request);
}

TEST_F(EngineTest, SetUnitsDesiredStateChangesAllInOneTransactionAndSurvivesARestart) {
  for (const char* name : {"a.service", "b.service", "c.service"}) ASSERT_TRUE(Create(name, kPlain).ok());
  ASSERT_TRUE(SetState("b.service", v1::DESIRED_STATE_LAUNCHED).ok());
  auto set = SetStates(*engine_, {"c.service", "a.service", "b.service"}, v1::DESIRED_STATE_LAUNCHED);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->units_size(), 3);
  EXPECT_EQ(set->units(0).name(), "c.service") << "in the order of the request";
  EXPECT_EQ(set->units(1).name(), "a.service");
  for (const v1::Unit& unit : set->units()) EXPECT_EQ(unit.desired_state(), v1::DESIRED_STATE_LAUNCHED);
  // a and c changed in one transaction (one revision); b was launched already.
  EXPECT_EQ(set->units(0).mod_revision(), set->units(1).mod_revision());
  EXPECT_LT(set->units(2).mod_revision(), set->units(0).mod_revision());
  EXPECT_EQ(set->units(0).create_revision(), engine_->GetUnit("c.service")->create_revision());

  Restart();
  for (const char* name : {"a.service", "b.service", "c.service"}) {
    EXPECT_EQ(engine_->GetUnit(name)->desired_state(), v1::DESIRED_STATE_LAUNCHED) << name;
  }
}

TEST_F(EngineTest, SetUnitsDesiredStateChangesNothingWhenOneNameCannotChange) {
  ASSERT_TRUE(Create("a.service", kPlain).ok());
  ASSERT_TRUE(Create("b.service", kPlain).ok());
  ASSERT_TRUE(Create("web@.service", kPlain).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  ASSERT_FALSE(engine_->ReconcilePending());
  const std::vector<std::string> before = StoredKeys();
  struct Case {
    std::vector<std::string> names;
    absl::StatusCode code;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"a.service", "missing.service", "b.service"}, absl::StatusCode::kNotFound, "unit missing.service not found"},
           {{"a.service", "web@.service"}, absl::StatusCode::kFailedPrecondition, "web@.service is a template"},
           {{"a.service", "b.service", "a.service"}, absl::StatusCode::kInvalidArgument, "a.service is named twice"},
           {{"a.service", ""}, absl::StatusCode::kInvalidArgument, "unit name is empty"},
           {{}, absl::StatusCode::kInvalidArgument, "no unit named"},
           {std::vector<std::string>(kMaxUnitsPerRequest + 1, "a.service"), absl::StatusCode::kInvalidArgument,
            "101 units in one request; at most 100"},
       }) {
    auto set = SetStates(*engine_, c.names, v1::DESIRED_STATE_LAUNCHED);
    EXPECT_EQ(set.status().code(), c.code) << set.status();
    EXPECT_THAT(set.status().message(), HasSubstr(c.says));
  }
  EXPECT_EQ(StoredKeys(), before) << "nothing was written";
  EXPECT_EQ(engine_->GetUnit("a.service")->desired_state(), v1::DESIRED_STATE_INACTIVE);
  EXPECT_FALSE(engine_->ReconcilePending()) << "nothing changed in memory either";
}

// A pass over all units costs about 0.2 s at 100,000 units: a submit of many
// inactive units must not pay one per batch.
TEST_F(EngineTest, OnlyUnitsThatRunOrRanAskForAReconcilePass) {
  RecordingChannel m1;
  Register("m1", &m1);
  ASSERT_TRUE(engine_->Tick().ok());
  ASSERT_FALSE(engine_->ReconcilePending());

  ASSERT_TRUE(Create("a.service", kPlain).ok());
  EXPECT_FALSE(engine_->ReconcilePending()) << "submitted, inactive";
  ASSERT_TRUE(Create("a.service", kPlain2, v1::DESIRED_STATE_UNSPECIFIED, /*replace=*/true).ok());
  EXPECT_FALSE(engine_->ReconcilePending()) << "replaced while inactive";
  ASSERT_TRUE(Create("b.service", kPlain).ok());
  ASSERT_TRUE(engine_->DestroyUnit("b.service").ok());
  EXPECT_FALSE(engine_->ReconcilePending()) << "destroyed while inactive";

  ASSERT_TRUE(SetState("a.service", v1::DESIRED_STATE_LAUNCHED).ok());
  EXPECT_TRUE(engine_->ReconcilePending()) << "launched";
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("a.service"), "m1");
  ASSERT_TRUE(SetState("a.service", v1::DESIRED_STATE_INACTIVE).ok());
  EXPECT_TRUE(engine_->ReconcilePending()) << "stopped: its placement goes";
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("a.service"), "");
  ASSERT_TRUE(SetState("a.service", v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  ASSERT_TRUE(engine_->DestroyUnit("a.service").ok());
  EXPECT_TRUE(engine_->ReconcilePending()) << "destroyed while placed";
  ASSERT_TRUE(engine_->Tick().ok());
  m1.Take();
}

v1::CreateUnitRequest NewUnit(const std::string& name, const std::string& contents,
                              v1::DesiredState state = v1::DESIRED_STATE_UNSPECIFIED, bool replace = false) {
  v1::CreateUnitRequest unit;
  unit.set_name(name);
  unit.set_contents(contents);
  unit.set_desired_state(state);
  unit.set_replace(replace);
  return unit;
}

TEST_F(EngineTest, CreateUnitsWritesAllInOneTransactionAndSurvivesARestart) {
  ASSERT_TRUE(Create("same.service", kPlain).ok());
  ASSERT_TRUE(Create("old.service", kPlain).ok());
  v1::CreateUnitsRequest request;
  *request.add_units() = NewUnit("new.service", kPlain, v1::DESIRED_STATE_LAUNCHED);
  *request.add_units() = NewUnit("same.service", kPlain);
  *request.add_units() = NewUnit("old.service", kPlain2, v1::DESIRED_STATE_UNSPECIFIED, /*replace=*/true);
  *request.add_units() = NewUnit("web@.service", kPlain);
  auto created = engine_->CreateUnits(request);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->units_size(), 4);
  EXPECT_TRUE(created->units(0).created());
  EXPECT_EQ(created->units(0).unit().desired_state(), v1::DESIRED_STATE_LAUNCHED);
  EXPECT_FALSE(created->units(1).created()) << "same contents: nothing to do";
  EXPECT_TRUE(created->units(2).replaced());
  EXPECT_EQ(created->units(2).unit().contents(), kPlain2);
  EXPECT_EQ(created->units(3).unit().name(), "web@.service");
  // One transaction: the three written units share one revision.
  const int64_t revision = created->units(0).unit().mod_revision();
  EXPECT_EQ(created->units(2).unit().mod_revision(), revision);
  EXPECT_EQ(created->units(3).unit().mod_revision(), revision);
  EXPECT_EQ(created->units(0).unit().create_revision(), revision);
  EXPECT_LT(created->units(2).unit().create_revision(), revision) << "a replaced unit keeps its age";
  EXPECT_LT(created->units(1).unit().mod_revision(), revision);

  Restart();
  for (const v1::CreateUnitResponse& answer : created->units()) {
    auto stored = engine_->GetUnit(answer.unit().name());
    ASSERT_TRUE(stored.ok()) << answer.unit().name();
    EXPECT_EQ(stored->contents(), answer.unit().contents());
    EXPECT_EQ(stored->desired_state(), answer.unit().desired_state());
    EXPECT_EQ(stored->mod_revision(), answer.unit().mod_revision());
  }
}

// A client that submits thousands of units has their files: it may ask for
// the answers without them. Nothing else in the answer, or stored, changes.
TEST_F(EngineTest, CreateAndSetStatesAnswerWithoutFilesWhenAsked) {
  v1::CreateUnitsRequest create;
  create.set_omit_contents(true);
  *create.add_units() = NewUnit("a.service", kPlain);
  *create.add_units() = NewUnit("b.service", kPlain2);
  auto created = engine_->CreateUnits(create);
  ASSERT_TRUE(created.ok()) << created.status();
  for (const v1::CreateUnitResponse& answer : created->units()) {
    EXPECT_TRUE(answer.created());
    EXPECT_TRUE(answer.unit().contents().empty()) << answer.unit().name();
    EXPECT_EQ(answer.unit().hash(), engine_->GetUnit(answer.unit().name())->hash());
  }
  EXPECT_EQ(engine_->GetUnit("b.service")->contents(), kPlain2);

  v1::SetUnitsDesiredStateRequest launch;
  launch.add_names("a.service");
  launch.add_names("b.service");
  launch.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  launch.set_omit_contents(true);
  auto launched = engine_->SetUnitsDesiredState(launch);
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_EQ(launched->units_size(), 2);
  for (const v1::Unit& unit : launched->units()) {
    EXPECT_TRUE(unit.contents().empty()) << unit.name();
    EXPECT_FALSE(unit.hash().empty());
    EXPECT_EQ(unit.desired_state(), v1::DESIRED_STATE_LAUNCHED);
  }
  EXPECT_EQ(engine_->GetUnit("a.service")->contents(), kPlain);
  // Without the flag, answers carry the files as before.
  auto stopped = SetStates(*engine_, {"a.service"}, v1::DESIRED_STATE_LOADED);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->units(0).contents(), kPlain);
}

TEST_F(EngineTest, CreateUnitsCreatesNothingWhenOneUnitCannotBeCreated) {
  ASSERT_TRUE(Create("taken.service", kPlain).ok());
  const std::vector<std::string> before = StoredKeys();
  struct Case {
    std::vector<v1::CreateUnitRequest> units;
    absl::StatusCode code;
    std::string says;
  };
  const v1::CreateUnitRequest good = NewUnit("good.service", kPlain);
  std::vector<v1::CreateUnitRequest> too_many;
  for (int i = 0; i <= kMaxUnitsPerRequest; ++i) too_many.push_back(NewUnit(absl::StrCat("u", i, ".service"), kPlain));
  for (const Case& c : std::vector<Case>{
           {{good, NewUnit("taken.service", kPlain2)}, absl::StatusCode::kAlreadyExists,
            "unit taken.service already exists with other contents"},
           {{good, NewUnit("bad.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=maybe\n")},
            absl::StatusCode::kInvalidArgument, "unit bad.service:"},
           {{good, NewUnit("t@.service", kPlain, v1::DESIRED_STATE_LAUNCHED)},
            absl::StatusCode::kFailedPrecondition, "t@.service is a template"},
           {{good, NewUnit("good.service", kPlain)}, absl::StatusCode::kInvalidArgument,
            "unit good.service is given twice"},
           {{good, NewUnit("", kPlain)}, absl::StatusCode::kInvalidArgument, "unit name is empty"},
           {{}, absl::StatusCode::kInvalidArgument, "no unit given"},
           {too_many, absl::StatusCode::kInvalidArgument, "101 units in one request; at most 100"},
       }) {
    v1::CreateUnitsRequest request;
    for (const v1::CreateUnitRequest& unit : c.units) *request.add_units() = unit;
    auto created = engine_->CreateUnits(request);
    EXPECT_EQ(created.status().code(), c.code) << created.status();
    EXPECT_THAT(created.status().message(), HasSubstr(c.says));
  }
  EXPECT_EQ(StoredKeys(), before) << "nothing was written";
  EXPECT_EQ(engine_->GetUnit("good.service").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetUnit("taken.service")->contents(), kPlain);
}

TEST_F(EngineTest, CreateGetAndSameContentsIsANoOp) {
  auto created = Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created());
  EXPECT_FALSE(created->unit().hash().empty());
  EXPECT_GT(created->unit().create_revision(), 0);

  auto again = Create("web.service", kPlain);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created());
  EXPECT_FALSE(again->replaced());
  EXPECT_EQ(again->unit().mod_revision(), created->unit().mod_revision()) << "nothing was written";
  EXPECT_EQ(again->unit().desired_state(), v1::DESIRED_STATE_LAUNCHED) << "unspecified keeps the state";

  auto got = engine_->GetUnit("web.service");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->contents(), kPlain);
  EXPECT_EQ(got->desired_state(), v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(engine_->GetUnit("nope.service").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, NewUnitWithoutStateIsInactive) {
  auto created = Create("web.service", kPlain);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->unit().desired_state(), v1::DESIRED_STATE_INACTIVE);
}

TEST_F(EngineTest, OtherContentsAreRefusedUnlessReplace) {
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LOADED).ok());
  auto before = StoredKeys();
  auto refused = Create("web.service", kPlain2);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr("already exists with other contents"));
  EXPECT_EQ(StoredKeys(), before);
  EXPECT_EQ(engine_->GetUnit("web.service")->contents(), kPlain);

  auto replaced = Create("web.service", kPlain2, v1::DESIRED_STATE_UNSPECIFIED, /*replace=*/true);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_TRUE(replaced->replaced());
  EXPECT_FALSE(replaced->created());
  EXPECT_EQ(replaced->unit().desired_state(), v1::DESIRED_STATE_LOADED);
  EXPECT_EQ(engine_->GetUnit("web.service")->contents(), kPlain2);
}

TEST_F(EngineTest, BadInputIsRefusedWithAClearMessageAndChangesNothing) {
  ASSERT_TRUE(Create("keep.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  const auto before = StoredKeys();

  auto malformed = Create("bad.service", "[Service]\nExecStart=/bin/true\nthis is not an option\n");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(malformed.status().message(), HasSubstr("line 3"));

  auto bad_name = Create("no/slash.service", kPlain);
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_name.status().message(), HasSubstr("no/slash.service"));

  std::string big = std::string(kPlain) + "# " + std::string(kMaxUnitFileSize, 'x') + "\n";
  auto too_big = Create("big.service", big);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.status().message(), HasSubstr("(1 MiB) are allowed"));

  auto unknown_state = Create("keep.service", kPlain, static_cast<v1::DesiredState>(7));
  EXPECT_EQ(unknown_state.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown_state.status().message(), HasSubstr("unknown desired state 7"));
  EXPECT_EQ(SetState("keep.service", static_cast<v1::DesiredState>(42)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetState("keep.service", v1::DESIRED_STATE_UNSPECIFIED).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetState("gone.service", v1::DESIRED_STATE_LAUNCHED).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->DestroyUnit("gone.service").code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(StoredKeys(), before);
  EXPECT_EQ(engine_->GetUnit("keep.service")->desired_state(), v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(engine_->GetUnit("bad.service").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, StoreFailuresChangeNothingAndTheScheduleIsRetried) {
  testing::FaultStore& store = UseFaultStore();
  RecordingChannel m1;
  Register("m1", &m1);
  ASSERT_TRUE(engine_->Tick().ok());  // records m1
  m1.Take();
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LOADED).ok());

  store.set_writes_down(true);
  const auto before = StoredKeys();
  EXPECT_EQ(Create("db.service", kPlain).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_->GetUnit("db.service").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SetState("web.service", v1::DESIRED_STATE_LAUNCHED).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_->GetUnit("web.service")->desired_state(), v1::DESIRED_STATE_LOADED);
  EXPECT_EQ(engine_->DestroyUnit("web.service").code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(engine_->GetUnit("web.service").ok());

  // The placement of web.service cannot be written: nothing is sent, the pass stays pending.
  absl::Status tick = engine_->Tick();
  EXPECT_EQ(tick.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(tick.message(), HasSubstr("writing the schedule"));
  EXPECT_THAT(m1.Take(), IsEmpty());
  EXPECT_EQ(MachineOf("web.service"), "");
  EXPECT_TRUE(engine_->ReconcilePending());
  EXPECT_EQ(StoredKeys(), before);

  store.set_writes_down(false);
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("web.service"), "m1");
  auto sent = m1.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_THAT(Names(sent[0].delta().upserts()), ElementsAre("web.service"));
}

// etcd can lose the answer to a write (its leader died with the proposal, a
// deadline passed): the engine finds out what became of the write instead of
// failing a request that may have been applied.
TEST_F(EngineTest, WritesWhoseAnswerWasLostAreResolvedNotFailed) {
  testing::FaultStore& store = UseFaultStore();
  RecordingChannel m1;
  Register("m1", &m1);
  using Lost = testing::FaultStore::LostAnswer;

  // Lost before etcd applied it: sent once more.
  store.LoseNextTxnAnswer(Lost::kNotApplied);
  auto created = Create("web.service", kPlain, v1::DESIRED_STATE_LOADED);
  ASSERT_TRUE(created.ok()) << created.status();
  // Lost after etcd applied it: reported done, with the revision it was written at.
  store.LoseNextTxnAnswer(Lost::kApplied);
  auto launched = SetStates(*engine_, {"web.service"}, v1::DESIRED_STATE_LAUNCHED);
  ASSERT_TRUE(launched.ok()) << launched.status();
  absl::StatusOr<KeyValue> stored = store_->Get("/fleet/units/web.service");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->version, 2) << "created, launched: no write twice";
  EXPECT_EQ(launched->units(0).mod_revision(), stored->mod_revision);
  // The placement's answer is lost too: it is written, and sent to m1 once.
  m1.Take();
  store.LoseNextTxnAnswer(Lost::kApplied);
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("web.service"), "m1");
  auto sent = m1.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_THAT(Names(sent[0].delta().upserts()), ElementsAre("web.service"));
  // A later write sees the resolved revision: no false conflict.
  ASSERT_TRUE(SetState("web.service", v1::DESIRED_STATE_LOADED).ok());

  // Another writer changed the unit between the lost write and the read-back:
  // the caller's compare failed, and that is what the caller hears.
  store.LoseNextTxnAnswer(Lost::kNotApplied, [this] {
    auto unit = store_->Get("/fleet/units/web.service");
    ASSERT_TRUE(unit.ok());
    ASSERT_TRUE(store_->Put("/fleet/units/web.service", unit->value).ok());
  });
  EXPECT_EQ(engine_->DestroyUnit("web.service").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store.lost_answers(), 4);

  // Lost, then the store cannot be read either: the request says so.
  store.LoseNextTxnAnswer(Lost::kNotApplied, [&store] { store.set_down(true); });
  absl::Status destroyed = engine_->DestroyUnit("web.service");
  EXPECT_EQ(destroyed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(destroyed.message(), HasSubstr("the answer was lost"));
  EXPECT_TRUE(engine_->GetUnit("web.service").ok());
}

TEST_F(EngineTest, TemplatesAreStoredButNeverScheduled) {
  RecordingChannel agent;
  Register("m1", &agent);
  agent.Take();
  ASSERT_TRUE(Create("app@.service", kPlain).ok());
  auto launch = Create("app@.service", kPlain, v1::DESIRED_STATE_LAUNCHED);
  EXPECT_EQ(launch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(launch.status().message(), HasSubstr("template"));
  EXPECT_EQ(SetState("app@.service", v1::DESIRED_STATE_LOADED).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Create("app@1.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  auto sent = agent.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_THAT(Names(sent[0].delta().upserts()), ElementsAre("app@1.service"));
}

TEST_F(EngineTest, ListUnitsPagesAndGlobs) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Create("a" + std::to_string(i) + ".service", kPlain).ok());
  ASSERT_TRUE(Create("b.service", kPlain).ok());
  v1::ListUnitsRequest request;
  request.set_name_glob("a*.service");
  request.set_page_size(2);
  request.set_omit_contents(true);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = engine_->ListUnits(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& unit : page->units()) {
      seen.push_back(unit.name());
      EXPECT_TRUE(unit.contents().empty());
      EXPECT_FALSE(unit.hash().empty());
    }
    request.set_page_token(page->next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_THAT(seen, ElementsAre("a0.service", "a1.service", "a2.service", "a3.service", "a4.service"));
  EXPECT_EQ(pages, 3);

  request.set_page_size(-1);
  EXPECT_EQ(engine_->ListUnits(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_page_size(kMaxPageSize + 1);
  EXPECT_EQ(engine_->ListUnits(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Agents and the reconcile loop -------------------------------------------

TEST_F(EngineTest, AgentGetsFullScheduleThenOnlyItsOwnDeltas) {
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  RecordingChannel m1, m2;
  Register("m1", &m1);
  ASSERT_TRUE(engine_->Tick().ok());  // places web.service on m1 (the only machine)
  auto first = m1.Take();
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE(first[0].has_full());
  EXPECT_THAT(Names(first[0].full()), IsEmpty());
  EXPECT_EQ(first[0].heartbeat_interval_ms(), 10000);
  ASSERT_TRUE(first[1].has_delta());
  EXPECT_THAT(Names(first[1].delta().upserts()), ElementsAre("web.service"));
  EXPECT_EQ(first[1].delta().upserts(0).contents(), kPlain);
  EXPECT_EQ(first[1].delta().upserts(0).desired_state(), v1::DESIRED_STATE_LAUNCHED);

  Register("m2", &m2);
  auto full = m2.Take();
  ASSERT_EQ(full.size(), 1u);
  EXPECT_THAT(Names(full[0].full()), IsEmpty());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(m1.Take(), IsEmpty()) << "a new machine does not move a running unit";

  // A unit placed on m2 (fewest units) wakes m2 only.
  ASSERT_TRUE(Create("db.service", kPlain2, v1::DESIRED_STATE_LOADED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(m1.Take(), IsEmpty());
  auto to_m2 = m2.Take();
  ASSERT_EQ(to_m2.size(), 1u);
  EXPECT_THAT(Names(to_m2[0].delta().upserts()), ElementsAre("db.service"));
  EXPECT_EQ(to_m2[0].delta().upserts(0).desired_state(), v1::DESIRED_STATE_LOADED);

  // Starting it: an upsert with the new state, to m2 only.
  ASSERT_TRUE(SetState("db.service", v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(m1.Take(), IsEmpty());
  to_m2 = m2.Take();
  ASSERT_EQ(to_m2.size(), 1u);
  EXPECT_EQ(to_m2[0].delta().upserts(0).desired_state(), v1::DESIRED_STATE_LAUNCHED);

  // An inactive unit changes nothing for anyone.
  ASSERT_TRUE(Create("idle.service", kPlain).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(m1.Take(), IsEmpty());
  EXPECT_THAT(m2.Take(), IsEmpty());

  // Stopping to inactive removes it from m2; destroy removes web from m1.
  ASSERT_TRUE(SetState("db.service", v1::DESIRED_STATE_INACTIVE).ok());
  ASSERT_TRUE(engine_->DestroyUnit("web.service").ok());
  ASSERT_TRUE(engine_->Tick().ok());
  to_m2 = m2.Take();
  ASSERT_EQ(to_m2.size(), 1u);
  EXPECT_THAT(to_m2[0].delta().removes(), ElementsAre("db.service"));
  auto to_m1 = m1.Take();
  ASSERT_EQ(to_m1.size(), 1u);
  EXPECT_THAT(to_m1[0].delta().removes(), ElementsAre("web.service"));
  EXPECT_EQ(MachineOf("db.service"), "");
}

TEST_F(EngineTest, ChangedFileIsSentAsUpsertToItsMachine) {
  RecordingChannel m1;
  Register("m1", &m1);
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  m1.Take();
  ASSERT_TRUE(Create("web.service", kPlain2, v1::DESIRED_STATE_UNSPECIFIED, true).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  auto sent = m1.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].delta().upserts_size(), 1);
  EXPECT_EQ(sent[0].delta().upserts(0).contents(), kPlain2);
}

TEST_F(EngineTest, RegistrationsWaitForNoStoreWriteAndAreRecordedTogether) {
  testing::FaultStore& faults = UseFaultStore();
  faults.set_writes_down(true);
  RecordingChannel m1, m2;
  Register("m1", &m1);
  Register("m2", &m2);
  ASSERT_EQ(m1.Take().size(), 1u) << "the full schedule, without a store write";
  EXPECT_EQ(engine_->ListMachines().machines_size(), 2);
  EXPECT_TRUE(engine_->ReconcilePending());
  absl::Status tick = engine_->Tick();
  EXPECT_EQ(tick.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(tick.message(), HasSubstr("recording 2 registered machines"));

  faults.set_writes_down(false);  // the next Tick writes both, in one transaction
  ASSERT_TRUE(engine_->Tick().ok());
  auto stored = store_->Range(kMachinesPrefix);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->kvs.size(), 2u);
  EXPECT_EQ(stored->kvs[0].mod_revision, stored->kvs[1].mod_revision);
  EXPECT_FALSE(m1.closed || m2.closed);
}

TEST_F(EngineTest, SecondStreamForALiveMachineIsRefused) {
  RecordingChannel first, second;
  Register("m1", &first);
  v1::Register reg;
  reg.mutable_machine()->set_id("m1");
  auto refused = engine_->AgentRegistered(reg, &second);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr("m1"));
  EXPECT_THAT(second.messages, IsEmpty());
  EXPECT_FALSE(first.closed);

  reg.mutable_machine()->set_id("bad id/");
  EXPECT_EQ(engine_->AgentRegistered(reg, &second).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, StreamSilentPastTheTtlIsReplacedByANewOne) {
  RecordingChannel stale, fresh;
  Register("m1", &stale);
  clock_.Advance(absl::Seconds(30));  // no Tick yet: m1 is not declared dead
  Register("m1", &fresh);
  EXPECT_TRUE(stale.closed);
  EXPECT_EQ(stale.close_status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stale.close_status.message(), HasSubstr("replaced"));
  ASSERT_EQ(fresh.Take().size(), 1u);
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_FALSE(fresh.closed) << "the new stream counts as news from m1";
  EXPECT_EQ(engine_->ListMachines().machines_size(), 1);
}

TEST_F(EngineTest, ReconnectAfterDisconnectGetsTheFullSchedule) {
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  RecordingChannel first, second;
  int64_t session = Register("m1", &first);
  ASSERT_TRUE(engine_->Tick().ok());
  engine_->AgentDisconnected(session);
  clock_.Advance(absl::Seconds(10));
  Register("m1", &second);
  auto sent = second.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_THAT(Names(sent[0].full()), ElementsAre("web.service"));
  EXPECT_EQ(engine_->AgentHeartbeat(session).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, SilentMachineIsDeclaredDeadAndItsUnitsMove) {
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  RecordingChannel m1, m2;
  int64_t s1 = Register("m1", &m1);
  ASSERT_TRUE(engine_->Tick().ok());
  ASSERT_EQ(MachineOf("web.service"), "m1");
  int64_t s2 = Register("m2", &m2);
  m2.Take();

  // m2 beats, m1 is silent. 29 s: still alive.
  clock_.Advance(absl::Seconds(15));
  ASSERT_TRUE(engine_->AgentHeartbeat(s2).ok());
  clock_.Advance(absl::Seconds(14));
  ASSERT_TRUE(engine_->AgentHeartbeat(s2).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_FALSE(m1.closed);
  EXPECT_EQ(MachineOf("web.service"), "m1");
  // The loop waits until m1's ttl runs out (1 s from now), not its whole
  // interval, nor the whole batching wait after a pass: a dead machine is
  // declared on time.
  EXPECT_GT(engine_->UntilNextExpiry(), absl::Seconds(1));
  EXPECT_LT(engine_->UntilNextExpiry(), absl::Seconds(1) + absl::Milliseconds(10));
  const absl::Time waited_from = absl::Now();
  engine_->WaitForWork(absl::Seconds(60));
  EXPECT_LT(absl::Now() - waited_from, absl::Seconds(30));

  clock_.Advance(absl::Seconds(1));  // 30 s of silence from m1
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_TRUE(m1.closed);
  EXPECT_EQ(m1.close_status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(m1.close_status.message(), HasSubstr("declared dead"));
  EXPECT_EQ(MachineOf("web.service"), "m2");
  auto moved = m2.Take();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_THAT(Names(moved[0].delta().upserts()), ElementsAre("web.service"));
  auto machines = engine_->ListMachines();
  ASSERT_EQ(machines.machines_size(), 1);
  EXPECT_EQ(machines.machines(0).id(), "m2");
  EXPECT_EQ(machines.machines(0).units(), 1u);
  EXPECT_EQ(engine_->AgentHeartbeat(s1).code(), absl::StatusCode::kFailedPrecondition);

  // m1 comes back: a fresh full schedule (empty: web stays on m2).
  RecordingChannel back;
  Register("m1", &back);
  auto full = back.Take();
  ASSERT_EQ(full.size(), 1u);
  ASSERT_TRUE(full[0].has_full());
  EXPECT_THAT(Names(full[0].full()), IsEmpty());
}

TEST_F(EngineTest, MachinesLostTogetherAreForgottenInOneWrite) {
  std::vector<std::unique_ptr<RecordingChannel>> channels;
  for (int i = 0; i < 5; ++i) {
    channels.push_back(std::make_unique<RecordingChannel>());
    Register("m" + std::to_string(i), channels.back().get());
  }
  ASSERT_TRUE(engine_->Tick().ok());
  auto before = store_->Range(kMachinesPrefix);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->kvs.size(), 5u);

  clock_.Advance(absl::Seconds(31));  // every agent silent past the ttl
  ASSERT_TRUE(engine_->Tick().ok());
  auto after = store_->Range(kMachinesPrefix);
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(after->kvs, IsEmpty());
  EXPECT_EQ(after->revision, before->revision + 1) << "one transaction for the five";
  for (const auto& channel : channels) EXPECT_TRUE(channel->closed);
}

TEST_F(EngineTest, HeartbeatsAreTakenWhileTheEngineLockIsHeld) {
  testing::FaultStore& faults = UseFaultStore();
  RecordingChannel m1, m2;
  const int64_t s1 = Register("m1", &m1);
  Register("m2", &m2);
  const absl::Duration ttl = EngineOptions().agent_ttl;
  clock_.Advance(ttl - absl::Seconds(1));
  ASSERT_TRUE(engine_->AgentHeartbeat(s1).ok());
  clock_.Advance(absl::Seconds(2));  // m2 silent past the ttl, m1 not
  // The Tick that declares m2 dead deletes its record with the engine lock
  // held; a heartbeat of m1 meanwhile does not wait for it (with the lock it
  // would deadlock here) and counts.
  absl::Status beat;
  faults.LoseNextTxnAnswer(testing::FaultStore::LostAnswer::kNotApplied, [&] {
    clock_.Advance(ttl - absl::Seconds(1));
    beat = engine_->AgentHeartbeat(s1);
  });
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_TRUE(beat.ok()) << beat;
  EXPECT_EQ(faults.lost_answers(), 1);
  EXPECT_TRUE(m2.closed);
  clock_.Advance(absl::Seconds(2));  // past m1's first beat's ttl, within its second's
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_FALSE(m1.closed);
}

TEST_F(EngineTest, AfterRestartMachinesGetOneTtlToReconnect) {
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("db.service", kPlain2, v1::DESIRED_STATE_LOADED).ok());
  {
    RecordingChannel m1, m2;
    Register("m1", &m1);
    Register("m2", &m2);
    ASSERT_TRUE(engine_->Tick().ok());
  }
  // Submission order, fewest units first, ties by id: web on m1, db on m2.
  ASSERT_EQ(MachineOf("web.service"), "m1");
  ASSERT_EQ(MachineOf("db.service"), "m2");
  Restart();
  clock_.Advance(absl::Seconds(25));  // long after the machines' last beat before the restart
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("web.service"), "m1") << "placements are kept during the grace period";
  EXPECT_EQ(MachineOf("db.service"), "m2");
  EXPECT_EQ(engine_->ListMachines().machines_size(), 2);

  RecordingChannel m1;
  int64_t s1 = Register("m1", &m1);
  auto full = m1.Take();
  ASSERT_EQ(full.size(), 1u);
  EXPECT_THAT(Names(full[0].full()), ElementsAre("web.service"));
  clock_.Advance(absl::Seconds(5));  // one ttl since the restart: m2 never came back
  ASSERT_TRUE(engine_->AgentHeartbeat(s1).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("db.service"), "m1");
  EXPECT_EQ(engine_->ListMachines().machines_size(), 1);
  auto moved = m1.Take();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_THAT(Names(moved[0].delta().upserts()), ElementsAre("db.service"));

  // The dead machine's record is gone from the store too.
  Restart();
  EXPECT_EQ(engine_->ListMachines().machines_size(), 1);
  EXPECT_EQ(MachineOf("db.service"), "m1");
  EXPECT_EQ(engine_->GetUnit("db.service")->desired_state(), v1::DESIRED_STATE_LOADED);
}

TEST_F(EngineTest, UnplaceableReasonIsHiddenUntilTheNextPlan) {
  RecordingChannel m1;
  Register("m1", &m1, {{"role", "web"}});
  ASSERT_TRUE(Create("db.service", kOnDb, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(ReasonOf("db.service"), HasSubstr("role"));
  // Any change may make the last plan's reason stale (fleetctl start A B:
  // A waits for its MachineOf= peer B): none is served until the next plan.
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  EXPECT_EQ(ReasonOf("db.service"), "");
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(ReasonOf("db.service"), HasSubstr("role"));
}

TEST_F(EngineTest, ChangesTheSchedulerCannotSeeNeedNoPassButReachTheAgent) {
  RecordingChannel m1;
  Register("m1", &m1, {{"role", "web"}});
  ASSERT_TRUE(Create("db.service", kOnDb, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LOADED).ok());
  ASSERT_TRUE(Create("all.service", kGlobal, v1::DESIRED_STATE_LOADED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  m1.Take();
  ASSERT_THAT(ReasonOf("db.service"), HasSubstr("role"));

  // Starting placed units, and editing one outside [X-Fleet]: the plan stays
  // as it is (the reasons of the last one are still served), and the agent
  // hears of each change at the next Tick.
  ASSERT_TRUE(SetState("web.service", v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(SetState("all.service", v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("web.service", kPlain2, v1::DESIRED_STATE_LAUNCHED, /*replace=*/true).ok());
  EXPECT_THAT(ReasonOf("db.service"), HasSubstr("role"));
  ASSERT_TRUE(engine_->Tick().ok());
  auto sent = m1.Take();
  ASSERT_EQ(sent.size(), 1u);
  std::map<std::string, std::string> upserted;
  for (const auto& unit : sent[0].delta().upserts()) {
    upserted[unit.name()] = absl::StrCat(v1::DesiredState_Name(unit.desired_state()), " ",
                                         unit.contents() == kPlain2 ? "new file" : "old file");
  }
  EXPECT_THAT(upserted, UnorderedElementsAre(
                            std::pair<const std::string, std::string>(
                                "web.service", "DESIRED_STATE_LAUNCHED new file"),
                            std::pair<const std::string, std::string>(
                                "all.service", "DESIRED_STATE_LAUNCHED old file")));
  EXPECT_EQ(MachineOf("web.service"), "m1");

  // A change it sees (new [X-Fleet] options) asks for a pass: until it ran,
  // no reason is served.
  ASSERT_TRUE(Create("web.service", kOnDb, v1::DESIRED_STATE_LAUNCHED, /*replace=*/true).ok());
  EXPECT_EQ(ReasonOf("db.service"), "");
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_THAT(ReasonOf("db.service"), HasSubstr("role"));
  EXPECT_EQ(MachineOf("web.service"), "");
}

// The hash a unit's state carries is the one its agent reported running,
// also once the unit's file changed and until the agent reports again.
TEST_F(EngineTest, ReportedHashStaysWhatTheAgentRanWhenTheFileChanges) {
  RecordingChannel m1;
  int64_t s1 = Register("m1", &m1);
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  const std::string ran = engine_->GetUnit("web.service")->hash();
  v1::StateReport report;
  v1::UnitState* state = report.add_states();
  state->set_name("web.service");
  state->set_active_state("active");
  state->set_unit_hash(ran);
  ASSERT_TRUE(engine_->AgentReport(s1, report).ok());

  ASSERT_TRUE(Create("web.service", "[Service]\nExecStart=/bin/sleep 2000\n", v1::DESIRED_STATE_LAUNCHED,
                     /*replace=*/true)
                  .ok());
  ASSERT_NE(engine_->GetUnit("web.service")->hash(), ran);
  auto states = ListStates(v1::ListUnitStatesRequest());
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->units_size(), 1);
  EXPECT_EQ(states->units(0).state().unit_hash(), ran);
}

// Agents' reports arrive on gRPC's few callback threads: one that waited for
// the engine's lock behind a long pass held such a thread, and with many
// agents the engine stopped reading its sockets. A report returns while the
// lock is held, and the listings made after it show it.
TEST_F(EngineTest, AReportDoesNotWaitForABusyEngineAndListingsShowIt) {
  testing::FaultStore& store = UseFaultStore();
  RecordingChannel m1;
  int64_t s1 = Register("m1", &m1);
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  ASSERT_EQ(MachineOf("web.service"), "m1");
  // A pass that records a new machine writes it with the lock held.
  RecordingChannel m2;
  Register("m2", &m2);
  store.PauseTxns();
  std::thread pass([&] { EXPECT_TRUE(engine_->Tick().ok()); });
  store.AwaitWaitingTxn();

  v1::StateReport report;
  v1::UnitState* state = report.add_states();
  state->set_name("web.service");
  state->set_active_state("active");
  absl::Notification reported;
  std::thread agent([&] {
    EXPECT_TRUE(engine_->AgentReport(s1, report).ok());
    reported.Notify();
  });
  EXPECT_TRUE(reported.WaitForNotificationWithTimeout(absl::Seconds(10)))
      << "the report waited for the pass";
  store.ResumeTxns();
  agent.join();
  pass.join();

  auto states = ListStates(v1::ListUnitStatesRequest());
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->units_size(), 1);
  EXPECT_EQ(states->units(0).state().active_state(), "active");
  EXPECT_EQ(states->units(0).state().machine_id(), "m1");
}

TEST_F(EngineTest, UnitStatesCarryReportsAndUnplaceableReasons) {
  RecordingChannel m1;
  int64_t s1 = Register("m1", &m1, {{"role", "web"}});
  ASSERT_TRUE(Create("web.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("db.service", kOnDb, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("all.service", kGlobal, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());

  v1::StateReport report;
  v1::UnitState* state = report.add_states();
  state->set_name("web.service");
  state->set_active_state("active");
  state->set_sub_state("running");
  state->set_main_pid(1234);
  state->set_load_state("loaded");
  state->set_exit_status(3);
  state->set_since_unix_micros(1700000000000000);
  state->set_unit_hash("abc123");
  ASSERT_TRUE(engine_->AgentReport(s1, report).ok());

  auto states = ListStates(v1::ListUnitStatesRequest());
  ASSERT_TRUE(states.ok()) << states.status();
  std::map<std::string, v1::UnitStatus> by_name;
  for (const auto& status : states->units()) by_name[status.name() + "@" + status.machine_id()] = status;
  ASSERT_TRUE(by_name.contains("web.service@m1"));
  const v1::UnitState& kept = by_name["web.service@m1"].state();
  EXPECT_EQ(kept.name(), "web.service");
  EXPECT_EQ(kept.machine_id(), "m1");
  EXPECT_EQ(kept.load_state(), "loaded");
  EXPECT_EQ(kept.active_state(), "active");
  EXPECT_EQ(kept.sub_state(), "running");
  EXPECT_EQ(kept.main_pid(), 1234u);
  EXPECT_EQ(kept.exit_status(), 3);
  EXPECT_EQ(kept.since_unix_micros(), 1700000000000000);
  EXPECT_EQ(kept.unit_hash(), "abc123");
  ASSERT_TRUE(by_name.contains("db.service@"));
  EXPECT_THAT(by_name["db.service@"].unscheduled_reason(), HasSubstr("role"));
  EXPECT_TRUE(by_name.contains("all.service@m1"));

  v1::ListUnitStatesRequest on_other;
  on_other.set_machine_id("m9");
  EXPECT_THAT(ListStates(on_other)->units(), IsEmpty());

  // A machine that fits arrives: db.service is placed there.
  RecordingChannel m2;
  Register("m2", &m2, {{"role", "db"}});
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_EQ(MachineOf("db.service"), "m2");
  v1::ListUnitStatesRequest prefix;
  prefix.set_machine_id("m");
  EXPECT_EQ(ListStates(prefix).status().code(), absl::StatusCode::kInvalidArgument)
      << "ambiguous machine prefix";
}

TEST_F(EngineTest, ListUnitStatesPagesAndFiltersByMachine) {
  RecordingChannel m1, m2;
  Register("m1", &m1);
  Register("m2", &m2);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(Create("u" + std::to_string(i) + ".service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  }
  ASSERT_TRUE(engine_->Tick().ok());  // u0, u2 on m1; u1, u3 on m2
  v1::ListUnitStatesRequest request;
  request.set_machine_id("m2");
  request.set_page_size(1);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto states = ListStates(request);
    ASSERT_TRUE(states.ok()) << states.status();
    for (const auto& status : states->units()) {
      EXPECT_EQ(status.machine_id(), "m2");
      seen.push_back(status.name());
    }
    if (states->next_page_token().empty()) break;
    request.set_page_token(states->next_page_token());
  }
  EXPECT_THAT(seen, ElementsAre("u1.service", "u3.service"));
}

TEST_F(EngineTest, ListUnitStatesPagesCountEntriesAndKeepAUnitsEntriesTogether) {
  RecordingChannel m1, m2, m3;
  Register("m1", &m1);
  Register("m2", &m2);
  Register("m3", &m3);
  ASSERT_TRUE(Create("a.service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("g.service", kGlobal, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(Create("z.service", kPlain2, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  v1::ListUnitStatesRequest request;
  request.set_page_size(2);
  std::vector<std::vector<std::string>> pages;
  for (int page = 0; page < 5; ++page) {
    auto states = ListStates(request);
    ASSERT_TRUE(states.ok()) << states.status();
    pages.emplace_back();
    for (const auto& status : states->units()) pages.back().push_back(status.name());
    if (states->next_page_token().empty()) break;
    request.set_page_token(states->next_page_token());
  }
  // g.service runs on three machines: its entries fill a page of their own,
  // larger than page_size rather than split.
  EXPECT_THAT(pages, ElementsAre(ElementsAre("a.service"),
                                 ElementsAre("g.service", "g.service", "g.service"),
                                 ElementsAre("z.service")));
}

TEST_F(EngineTest, GlobalUnitsGoToEveryMachine) {
  RecordingChannel m1, m2;
  Register("m1", &m1);
  Register("m2", &m2);
  m1.Take();
  m2.Take();
  ASSERT_TRUE(Create("all.service", kGlobal, v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  for (RecordingChannel* channel : {&m1, &m2}) {
    auto sent = channel->Take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_THAT(Names(sent[0].delta().upserts()), ElementsAre("all.service"));
  }
  RecordingChannel m3;
  Register("m3", &m3);
  auto full = m3.Take();
  ASSERT_EQ(full.size(), 1u);
  EXPECT_THAT(Names(full[0].full()), ElementsAre("all.service"));
}

TEST_F(EngineTest, EveryMachineHearsOfChangesThatDecideWhereGlobalsRun) {
  // Two globals that conflict: the one submitted first wins on every machine
  // once it is launched.
  ASSERT_TRUE(Create("first.service", std::string(kGlobal) + "Conflicts=second.service\n").ok());
  ASSERT_TRUE(Create("second.service", kGlobal, v1::DESIRED_STATE_LAUNCHED).ok());
  RecordingChannel m1, m2;
  Register("m1", &m1);
  Register("m2", &m2);
  ASSERT_TRUE(engine_->Tick().ok());
  for (RecordingChannel* channel : {&m1, &m2}) {
    auto sent = channel->Take();
    ASSERT_FALSE(sent.empty());
    EXPECT_THAT(Names(sent[0].full()), ElementsAre("second.service"));
  }

  // Each machine gets one delta: `upserted` in, `removed` out.
  auto expect_on_both = [&](const std::string& upserted, const std::string& removed) {
    for (RecordingChannel* channel : {&m1, &m2}) {
      auto sent = channel->Take();
      ASSERT_EQ(sent.size(), 1u);
      EXPECT_THAT(Names(sent[0].delta().upserts()), ElementsAre(upserted));
      EXPECT_THAT(sent[0].delta().removes(), ElementsAre(removed));
    }
  };
  ASSERT_TRUE(SetState("first.service", v1::DESIRED_STATE_LAUNCHED).ok());
  ASSERT_TRUE(engine_->Tick().ok());
  expect_on_both("first.service", "second.service");

  // Destroying the winner lets the other run everywhere again.
  ASSERT_TRUE(engine_->DestroyUnit("first.service").ok());
  ASSERT_TRUE(engine_->Tick().ok());
  expect_on_both("second.service", "first.service");
}

// What an agent holds after applying every message the engine sent it:
// unit -> hash and desired state.
std::map<std::string, std::string> AppliedSet(const std::vector<v1::EngineMessage>& messages) {
  std::map<std::string, std::string> set;
  auto entry = [](const v1::ScheduledUnit& unit) {
    return absl::StrCat(unit.hash(), " ", v1::DesiredState_Name(unit.desired_state()));
  };
  for (const v1::EngineMessage& message : messages) {
    if (message.has_full()) {
      set.clear();
      for (const auto& unit : message.full().units()) set[unit.name()] = entry(unit);
    }
    for (const auto& unit : message.delta().upserts()) set[unit.name()] = entry(unit);
    for (const std::string& name : message.delta().removes()) set.erase(name);
  }
  return set;
}

TEST_F(EngineTest, DeltasAddUpToTheWholeSetWhateverChanged) {
  // The engine sends each agent only the units that changed on its machine.
  // After random changes, what every agent holds must be the set that a
  // freshly started engine computes whole. Globals and machine deaths are
  // rare: a change of either has every set computed whole, which would hide
  // a unit the deltas missed.
  const std::vector<std::string> contents = {
      kPlain, kPlain2, kOnDb, std::string(kPlain) + "[X-Fleet]\nConflicts=u1*\n"};
  const std::vector<std::string> globals = {
      kGlobal, std::string(kGlobal) + "MachineMetadata=role=db\n",
      std::string(kGlobal) + "Conflicts=u2*\n"};
  const std::vector<v1::DesiredState> states = {
      v1::DESIRED_STATE_INACTIVE, v1::DESIRED_STATE_LOADED, v1::DESIRED_STATE_LAUNCHED};
  std::map<std::string, std::unique_ptr<RecordingChannel>> agents;
  std::map<std::string, std::vector<v1::EngineMessage>> received;
  std::map<std::string, int64_t> sessions;
  auto connect = [&](const std::string& id) {
    agents[id] = std::make_unique<RecordingChannel>();
    received[id].clear();
    sessions[id] = Register(id, agents[id].get(), {{"role", id < "m3" ? "db" : "web"}});
  };
  auto collect = [&] {
    for (auto& [id, channel] : agents) {
      for (v1::EngineMessage& message : channel->Take()) received[id].push_back(std::move(message));
    }
  };
  for (const char* id : {"m1", "m2", "m3", "m4"}) connect(id);

  std::mt19937 random(20261127);
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  size_t compared = 0;
  for (int step = 1; step <= 600; ++step) {
    const std::string unit = absl::StrCat("u", pick(40), ".service");
    const size_t what = pick(100);
    if (what < 2) {  // a machine dies (the others beat), then comes back
      const std::string id = absl::StrCat("m", 1 + pick(4));
      clock_.Advance(absl::Seconds(20));
      for (const auto& [other, session] : sessions) {
        if (other != id) {
          ASSERT_TRUE(engine_->AgentHeartbeat(session).ok());
        }
      }
      clock_.Advance(absl::Seconds(11));
      ASSERT_TRUE(engine_->Tick().ok());
      ASSERT_TRUE(agents[id]->closed);
      connect(id);
    } else if (what < 5) {
      (void)Create(unit, globals[pick(globals.size())], states[pick(states.size())], /*replace=*/true);
    } else if (what < 15) {
      (void)engine_->DestroyUnit(unit);
    } else if (what < 50) {
      (void)SetState(unit, states[pick(states.size())]);
    } else {
      (void)Create(unit, contents[pick(contents.size())], states[pick(states.size())],
                   /*replace=*/true);
    }
    if (pick(4) == 0) {
      ASSERT_TRUE(engine_->Tick().ok());
    }
    collect();
    if (step % 50 != 0) continue;

    ASSERT_TRUE(engine_->Tick().ok());
    collect();
    std::map<std::string, std::map<std::string, std::string>> held;
    for (const auto& [id, messages] : received) held[id] = AppliedSet(messages);
    Restart();
    for (const auto& [id, set] : held) connect(id);
    collect();  // each agent's first message: its whole set
    for (const auto& [id, set] : held) {
      EXPECT_EQ(AppliedSet(received[id]), set) << id << " after step " << step;
      compared += set.size();
    }
  }
  EXPECT_GT(compared, 200u) << "the random changes should leave units running";
}

TEST_F(EngineTest, ShutdownClosesStreamsAndRefusesNewOnes) {
  RecordingChannel m1, m2;
  Register("m1", &m1);
  engine_->Shutdown();
  EXPECT_TRUE(m1.closed);
  EXPECT_EQ(m1.close_status.code(), absl::StatusCode::kUnavailable);
  v1::Register reg;
  reg.mutable_machine()->set_id("m2");
  EXPECT_EQ(engine_->AgentRegistered(reg, &m2).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(EngineTest, ManyUnitsAreWrittenInSeveralTransactionsAndSurviveRestart) {
  RecordingChannel m1;
  Register("m1", &m1);
  m1.Take();
  const int n = 3 * kMaxOpsPerTxn + 7;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(Create("u" + std::to_string(i) + ".service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  }
  EXPECT_TRUE(engine_->ReconcilePending());
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_FALSE(engine_->ReconcilePending());
  auto sent = m1.Take();
  ASSERT_EQ(sent.size(), 1u) << "one delta for the whole batch";
  EXPECT_EQ(sent[0].delta().upserts_size(), n);
  auto schedule = store_->Range("/fleet/schedule/");
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(static_cast<int>(schedule->kvs.size()), n);
  std::set<int64_t> transactions;
  for (const KeyValue& kv : schedule->kvs) transactions.insert(kv.mod_revision);
  EXPECT_EQ(transactions.size(), 4u) << "at most kMaxOpsPerTxn per transaction, for etcd";
  Restart();
  EXPECT_EQ(engine_->ListMachines().machines(0).units(), static_cast<uint32_t>(n));
}

TEST_F(EngineTest, OnTheEmbeddedStoreAPassWritesLargerTransactions) {
  engine_.reset();
  EngineOptions options;
  options.max_ops_per_txn = kMaxOpsPerEmbeddedTxn;
  auto engine = Engine::Create(store_.get(), &clock_, options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  engine_ = *std::move(engine);
  RecordingChannel m1;
  Register("m1", &m1);
  for (int i = 0; i < 3 * kMaxOpsPerTxn; ++i) {
    ASSERT_TRUE(Create("u" + std::to_string(i) + ".service", kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
  }
  ASSERT_TRUE(engine_->Tick().ok());
  auto schedule = store_->Range("/fleet/schedule/");
  ASSERT_TRUE(schedule.ok());
  ASSERT_EQ(static_cast<int>(schedule->kvs.size()), 3 * kMaxOpsPerTxn);
  std::set<int64_t> transactions;
  for (const KeyValue& kv : schedule->kvs) transactions.insert(kv.mod_revision);
  EXPECT_EQ(transactions.size(), 1u);
}

// --- Concurrent writers --------------------------------------------------------

// The engine does not hold its lock across the store's fsync: concurrent API
// writes meet in one group commit (fewer syncs than writes; with the lock held
// they were exactly one each), and every acknowledged write survives a restart.
TEST_F(EngineTest, ConcurrentWritesShareSyncsAndAllSurviveARestart) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  const EmbeddedStore::CommitStats before = store_->commit_stats();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto created = Create(absl::StrCat("u-", t, "-", i, ".service"), kPlain, v1::DESIRED_STATE_LAUNCHED);
        EXPECT_TRUE(created.ok()) << created.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const EmbeddedStore::CommitStats after = store_->commit_stats();
  EXPECT_EQ(after.records - before.records, kThreads * kPerThread);
  EXPECT_LT(after.syncs - before.syncs, kThreads * kPerThread);

  Restart();
  v1::ListUnitsRequest request;
  request.set_page_size(kThreads * kPerThread + 1);
  auto units = engine_->ListUnits(request);
  ASSERT_TRUE(units.ok()) << units.status();
  EXPECT_EQ(units->units_size(), kThreads * kPerThread);
}

// Writes of one unit still run one after the other: concurrent callers are
// never told ABORTED because another caller's write was in flight, and memory
// ends where the store is.
TEST_F(EngineTest, ConcurrentWritesOfOneUnitAreNotAborted) {
  ASSERT_TRUE(Create("a.service", kPlain).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 20; ++i) {
        v1::DesiredState state = (t + i) % 2 == 0 ? v1::DESIRED_STATE_LOADED : v1::DESIRED_STATE_LAUNCHED;
        EXPECT_TRUE(SetState("a.service", state).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto unit = engine_->GetUnit("a.service");
  ASSERT_TRUE(unit.ok()) << unit.status();
  auto stored = store_->Get("/fleet/units/a.service");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(unit->mod_revision(), stored->mod_revision);
  v1::Unit stored_unit;
  ASSERT_TRUE(stored_unit.ParseFromString(stored->value));
  EXPECT_EQ(unit->desired_state(), stored_unit.desired_state());
}

// Passes run while units are created and destroyed on other threads: when all
// is done, the schedule names exactly the units that exist and are launched
// (a unit destroyed while its placement was planned gets no schedule key).
TEST_F(EngineTest, PassesDuringConcurrentWritesLeaveAConsistentSchedule) {
  RecordingChannel a, b;
  Register("a", &a);
  Register("b", &b);
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 30; ++i) {
        std::string name = absl::StrCat("w-", t, "-", i, ".service");
        EXPECT_TRUE(Create(name, kPlain, v1::DESIRED_STATE_LAUNCHED).ok());
        if (i % 3 == 0) {
          EXPECT_TRUE(engine_->DestroyUnit(name).ok());
        }
      }
    });
  }
  std::thread ticker([this, &done] {
    while (!done) EXPECT_TRUE(engine_->Tick().ok());
  });
  for (std::thread& thread : threads) thread.join();
  done = true;
  ticker.join();
  ASSERT_TRUE(engine_->Tick().ok());
  EXPECT_FALSE(engine_->ReconcilePending());

  auto schedule = store_->Range("/fleet/schedule/");
  ASSERT_TRUE(schedule.ok()) << schedule.status();
  std::vector<std::string> scheduled;
  for (const KeyValue& kv : schedule->kvs) scheduled.push_back(kv.key.substr(strlen("/fleet/schedule/")));
  std::vector<std::string> launched;
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 30; ++i) {
      if (i % 3 != 0) launched.push_back(absl::StrCat("w-", t, "-", i, ".service"));
    }
  }
  std::sort(launched.begin(), launched.end());
  EXPECT_EQ(scheduled, launched);
  for (const std::string& name : launched) EXPECT_THAT(MachineOf(name), ::testing::AnyOf("a", "b"));
}

}  // namespace
}  // namespace fleet
