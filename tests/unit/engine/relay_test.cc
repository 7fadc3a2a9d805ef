// The Relay over a real Engine (EmbeddedStore in a temp dir, FakeClock), with
// agents replaced by channels that record what the engine sends them and may
// answer at once (from inside Send, as an agent's reply arriving on its
// stream). No waiting: an answer is there before the relay waits, or the
// deadline has already passed.

#include "engine/relay.h"

#include <functional>
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
constexpr char kGlobal[] = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n";

// An agent stream: records messages; `answer` (when set) is called for each.
class FakeAgent final : public AgentChannel {
 public:
  void Send(v1::EngineMessage message) override {
    messages.push_back(message);
    if (answer) answer(message);
  }
  void Close(absl::Status) override {}

  std::vector<v1::EngineMessage> Requests(v1::EngineMessage::KindCase kind) const {
    std::vector<v1::EngineMessage> out;
    for (const auto& m : messages) {
      if (m.kind_case() == kind) out.push_back(m);
    }
    return out;
  }

  std::vector<v1::EngineMessage> messages;
  std::function<void(const v1::EngineMessage&)> answer;
};

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmbeddedStoreOptions options;
    options.dir = dir_.path();
    options.clock = &clock_;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto engine = Engine::Create(store_.get(), &clock_, EngineOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    relay_ = std::make_unique<Relay>(engine_.get(), RelayOptions{absl::Seconds(10)});
  }
  void TearDown() override {
    relay_.reset();
    engine_.reset();
    store_.reset();
  }

  int64_t Register(const std::string& id, FakeAgent* agent) {
    v1::Register reg;
    reg.mutable_machine()->set_id(id);
    auto session = engine_->AgentRegistered(reg, agent);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : 0;
  }
  void Launch(const std::string& name, const std::string& contents) {
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(contents);
    request.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
    ASSERT_TRUE(engine_->CreateUnit(request).ok());
    ASSERT_TRUE(engine_->Tick().ok());
  }
  // Answers every status request on `agent` (session `session`) with a
  // detail naming `machine`.
  void AnswerStatus(FakeAgent* agent, const int64_t* session, const std::string& machine) {
    agent->answer = [this, session, machine](const v1::EngineMessage& m) {
      if (m.kind_case() != v1::EngineMessage::kStatusRequest) return;
      v1::AgentMessage reply;
      reply.mutable_status_reply()->set_request_id(m.status_request().request_id());
      v1::UnitDetail* detail = reply.mutable_status_reply()->mutable_detail();
      detail->mutable_state()->set_name(m.status_request().unit());
      detail->mutable_state()->set_active_state("active");
      detail->set_hostname(machine);
      relay_->OnAgentMessage(*session, reply);
    };
  }
  v1::GetUnitStatusRequest StatusOf(const std::string& name, int lines = 0) {
    v1::GetUnitStatusRequest request;
    request.set_name(name);
    request.set_journal_lines(lines);
    return request;
  }
  static v1::AgentMessage Chunk(int64_t id, std::vector<std::string> lines, bool done) {
    v1::AgentMessage message;
    message.mutable_journal_chunk()->set_request_id(id);
    for (const auto& line : lines) message.mutable_journal_chunk()->add_entries()->set_line(line);
    message.mutable_journal_chunk()->set_done(done);
    return message;
  }

  testing::TempDir dir_;  // removed after the store closed (declared first)
  FakeClock clock_;
  std::unique_ptr<EmbeddedStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Relay> relay_;
};

TEST_F(RelayTest, StatusGoesToTheMachineThatRunsTheUnitAndTheReplyComesBack) {
  FakeAgent a, b;
  int64_t session_a = Register("machine-a", &a);
  int64_t session_b = Register("machine-b", &b);
  Launch("web.service", kPlain);
  absl::StatusOr<std::string> page = engine_->ListUnitStates({});
  ASSERT_TRUE(page.ok()) << page.status();
  v1::ListUnitStatesResponse placed;
  ASSERT_TRUE(placed.ParseFromString(*page));
  const std::string runs_on = placed.units(0).machine_id();
  FakeAgent& target = runs_on == "machine-a" ? a : b;
  FakeAgent& other = runs_on == "machine-a" ? b : a;
  AnswerStatus(&a, &session_a, "machine-a");
  AnswerStatus(&b, &session_b, "machine-b");

  auto status = relay_->GetUnitStatus(StatusOf("web.service", 7), absl::InfiniteFuture());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->detail().hostname(), runs_on);
  EXPECT_EQ(status->unit().name(), "web.service");
  EXPECT_EQ(status->unit().machine_id(), runs_on);
  EXPECT_EQ(status->unit().desired_state(), v1::DESIRED_STATE_LAUNCHED);
  auto asked = target.Requests(v1::EngineMessage::kStatusRequest);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].status_request().unit(), "web.service");
  EXPECT_EQ(asked[0].status_request().journal_lines(), 7);
  EXPECT_TRUE(other.Requests(v1::EngineMessage::kStatusRequest).empty());
  EXPECT_EQ(relay_->pending(), 0u);
}

TEST_F(RelayTest, UnknownUnscheduledAndDisconnectedAreClearErrors) {
  auto unknown = relay_->GetUnitStatus(StatusOf("nope.service"), absl::InfiniteFuture());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("nope.service"));

  Launch("web.service", kPlain);  // no machine at all
  auto unscheduled = relay_->GetUnitStatus(StatusOf("web.service"), absl::InfiniteFuture());
  EXPECT_EQ(unscheduled.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unscheduled.status().message(), HasSubstr("unit web.service is not scheduled on any machine"));

  FakeAgent a;
  int64_t session = Register("machine-a", &a);
  ASSERT_TRUE(engine_->Tick().ok());
  engine_->AgentDisconnected(session);  // the machine stays alive for agent_ttl
  auto gone = relay_->GetUnitStatus(StatusOf("web.service"), absl::InfiniteFuture());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(gone.status().message(), HasSubstr("the agent of machine machine-a"));
  EXPECT_THAT(gone.status().message(), HasSubstr("not connected"));
  EXPECT_EQ(relay_->pending(), 0u);
}

TEST_F(RelayTest, AgentThatDoesNotAnswerInTimeIsNamed) {
  FakeAgent a;
  Register("machine-a", &a);
  Launch("web.service", kPlain);
  auto late = relay_->GetUnitStatus(StatusOf("web.service"), absl::Now());  // deadline already passed
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("machine-a"));
  EXPECT_EQ(relay_->pending(), 0u) << "a timed-out request is forgotten";
}

TEST_F(RelayTest, AgentErrorIsPassedOnWithItsMachine) {
  FakeAgent a;
  int64_t session = Register("machine-a", &a);
  Launch("web.service", kPlain);
  a.answer = [this, &session](const v1::EngineMessage& m) {
    if (m.kind_case() != v1::EngineMessage::kStatusRequest) return;
    v1::AgentMessage reply;
    reply.mutable_status_reply()->set_request_id(m.status_request().request_id());
    reply.mutable_status_reply()->set_error_code(static_cast<int>(absl::StatusCode::kUnavailable));
    reply.mutable_status_reply()->set_error_message("bus gone");
    relay_->OnAgentMessage(session, reply);
  };
  auto status = relay_->GetUnitStatus(StatusOf("web.service"), absl::InfiniteFuture());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.status().message(), "bus gone (on machine machine-a)");
}

TEST_F(RelayTest, AnswerFromAnotherStreamIsIgnored) {
  FakeAgent a, b;
  Register("machine-a", &a);
  int64_t session_b = Register("machine-b", &b);
  // Pin the unit to machine-a.
  Launch("web.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=machine-a\n");
  a.answer = [this, session_b](const v1::EngineMessage& m) {
    if (m.kind_case() != v1::EngineMessage::kStatusRequest) return;
    v1::AgentMessage reply;  // machine-b pretends to answer for machine-a
    reply.mutable_status_reply()->set_request_id(m.status_request().request_id());
    relay_->OnAgentMessage(session_b, reply);
  };
  auto status = relay_->GetUnitStatus(StatusOf("web.service"), absl::Now());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(RelayTest, JournalChunksArriveInOrderUntilDone) {
  FakeAgent a;
  int64_t session = Register("machine-a", &a);
  Launch("web.service", kPlain);
  v1::ReadJournalRequest request;
  request.set_name("web.service");
  request.set_lines(5);
  auto id = relay_->OpenJournal(request);
  ASSERT_TRUE(id.ok()) << id.status();
  auto asked = a.Requests(v1::EngineMessage::kJournalRequest);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].journal_request().request_id(), *id);
  EXPECT_EQ(asked[0].journal_request().lines(), 5);
  EXPECT_FALSE(asked[0].journal_request().follow());

  relay_->OnAgentMessage(session, Chunk(*id, {"one", "two"}, false));
  relay_->OnAgentMessage(session, Chunk(*id, {"three"}, true));
  auto first = relay_->NextJournal(*id, absl::InfiniteFuture());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->entries.size(), 3u);
  EXPECT_EQ(first->entries[0].line(), "one");
  EXPECT_EQ(first->entries[2].line(), "three");
  EXPECT_FALSE(first->done) << "entries are handed out before the end";
  auto end = relay_->NextJournal(*id, absl::InfiniteFuture());
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->done);
  relay_->CloseJournal(*id);
  EXPECT_TRUE(a.Requests(v1::EngineMessage::kJournalCancel).empty()) << "a finished read needs no cancel";
  EXPECT_EQ(relay_->pending(), 0u);
}

TEST_F(RelayTest, QuietFollowIsNotAnErrorButSilentAgentIs) {
  FakeAgent a;
  int64_t session = Register("machine-a", &a);
  Launch("web.service", kPlain);
  v1::ReadJournalRequest request;
  request.set_name("web.service");
  request.set_follow(true);
  auto id = relay_->OpenJournal(request);
  ASSERT_TRUE(id.ok());
  // Before the first chunk, a passed caller deadline is just an empty batch...
  auto nothing_yet = relay_->NextJournal(*id, absl::Now());
  ASSERT_TRUE(nothing_yet.ok()) << nothing_yet.status();
  EXPECT_TRUE(nothing_yet->entries.empty());
  EXPECT_FALSE(nothing_yet->done);
  relay_->OnAgentMessage(session, Chunk(*id, {}, false));  // the (empty) tail
  auto quiet = relay_->NextJournal(*id, absl::Now());
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  EXPECT_FALSE(quiet->done);
  relay_->CloseJournal(*id);

  // ...but an agent that sends nothing within reply_timeout is named.
  Relay impatient(engine_.get(), RelayOptions{absl::ZeroDuration()});
  auto silent = impatient.OpenJournal(request);
  ASSERT_TRUE(silent.ok());
  auto late = impatient.NextJournal(*silent, absl::InfiniteFuture());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("machine-a"));
}

TEST_F(RelayTest, StreamLossEndsPendingRequestsWithUnavailable) {
  FakeAgent a;
  int64_t session = Register("machine-a", &a);
  Launch("web.service", kPlain);
  v1::ReadJournalRequest request;
  request.set_name("web.service");
  request.set_follow(true);
  auto id = relay_->OpenJournal(request);
  ASSERT_TRUE(id.ok());
  relay_->OnAgentMessage(session, Chunk(*id, {"last words"}, false));
  engine_->AgentDisconnected(session);
  relay_->SessionEnded(session);
  auto batch = relay_->NextJournal(*id, absl::InfiniteFuture());
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->entries.size(), 1u) << "what came before the loss is delivered";
  auto lost = relay_->NextJournal(*id, absl::InfiniteFuture());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(lost.status().message(), HasSubstr("machine-a"));
  relay_->CloseJournal(*id);
  EXPECT_TRUE(a.Requests(v1::EngineMessage::kJournalCancel).empty());
}

TEST_F(RelayTest, ClosingAFollowSendsJournalCancelToTheAgent) {
  FakeAgent a;
  Register("machine-a", &a);
  Launch("web.service", kPlain);
  v1::ReadJournalRequest request;
  request.set_name("web.service");
  request.set_follow(true);
  auto id = relay_->OpenJournal(request);
  ASSERT_TRUE(id.ok());
  relay_->CloseJournal(*id);
  auto cancels = a.Requests(v1::EngineMessage::kJournalCancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].journal_cancel().request_id(), *id);
  EXPECT_EQ(relay_->pending(), 0u);
}

TEST_F(RelayTest, GlobalUnitNeedsAMachine) {
  FakeAgent a, b;
  int64_t session_a = Register("machine-a", &a);
  int64_t session_b = Register("machine-b", &b);
  Launch("everywhere.service", kGlobal);
  AnswerStatus(&a, &session_a, "machine-a");
  AnswerStatus(&b, &session_b, "machine-b");
  auto ambiguous = relay_->GetUnitStatus(StatusOf("everywhere.service"), absl::InfiniteFuture());
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ambiguous.status().message(), HasSubstr("global"));
  v1::GetUnitStatusRequest on_b = StatusOf("everywhere.service");
  on_b.set_machine_id("machine-b");
  auto status = relay_->GetUnitStatus(on_b, absl::InfiniteFuture());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->detail().hostname(), "machine-b");
}

TEST_F(RelayTest, TooManyLinesIsRefused) {
  auto status = relay_->GetUnitStatus(StatusOf("web.service", kMaxJournalLines + 1), absl::InfiniteFuture());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleet
