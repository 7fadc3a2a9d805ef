// JournalService with an in-memory journal (no sd-journal) and FakeManager:
// what the agent sends back for the engine's status and journal requests.
// Requests run on the service's threads; the test waits for the messages they
// send (woken by each send, with a deadline), never by sleeping.

#include "agent/journal/journal_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/systemd/fake_manager.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::HasSubstr;

// One unit's journal in memory, shared by the readers opened on it.
class MemoryJournal {
 public:
  MemoryJournal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~MemoryJournal() { close(fd_); }
  void Append(const std::string& message) {
    {
      absl::MutexLock lock(&mu_);
      v1::JournalEntry entry;
      entry.set_message(message);
      entry.set_line("host unit: " + message);
      entries_.push_back(entry);
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
  }
  std::vector<v1::JournalEntry> From(size_t pos, size_t max) {
    absl::MutexLock lock(&mu_);
    std::vector<v1::JournalEntry> out;
    for (size_t i = pos; i < entries_.size() && out.size() < max; ++i) out.push_back(entries_[i]);
    return out;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }
  int fd() const { return fd_; }

 private:
  absl::Mutex mu_;
  std::vector<v1::JournalEntry> entries_ ABSL_GUARDED_BY(mu_);
  const int fd_;  // readable after an Append
};

class MemoryReader final : public JournalReader {
 public:
  explicit MemoryReader(MemoryJournal* journal) : journal_(journal) {}
  absl::StatusOr<std::vector<v1::JournalEntry>> Tail(int lines) override {
    size_t size = journal_->size();
    size_t from = size > static_cast<size_t>(lines) ? size - lines : 0;
    pos_ = size;
    return journal_->From(from, lines);
  }
  absl::StatusOr<std::vector<v1::JournalEntry>> ReadNew(int max) override {
    auto out = journal_->From(pos_, max);
    pos_ += out.size();
    return out;
  }
  absl::StatusOr<bool> Wait(int cancel_fd) override {
    struct pollfd fds[2] = {{journal_->fd(), POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    poll(fds, 2, -1);
    if (fds[1].revents & POLLIN) return true;
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = read(journal_->fd(), &count, sizeof(count));
    return false;
  }

 private:
  MemoryJournal* journal_;
  size_t pos_ = 0;
};

// Collects what the service sends; tests wait on it.
class Outbox {
 public:
  bool Send(const v1::AgentMessage& message) {
    absl::MutexLock lock(&mu_);
    messages_.push_back(message);
    return true;
  }
  // Waits (up to 10 s, woken by each message) until `done` holds.
  bool WaitFor(const std::function<bool(const std::vector<v1::AgentMessage>&)>& done) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(messages_); };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(10));
  }
  std::vector<v1::AgentMessage> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::AgentMessage> messages_ ABSL_GUARDED_BY(mu_);
};

bool HasDone(const std::vector<v1::AgentMessage>& messages) {
  for (const auto& m : messages) {
    if (m.has_journal_chunk() && m.journal_chunk().done()) return true;
  }
  return false;
}

size_t EntriesSent(const std::vector<v1::AgentMessage>& messages) {
  size_t n = 0;
  for (const auto& m : messages) n += m.journal_chunk().entries_size();
  return n;
}

class JournalServiceTest : public testing::Test {
 protected:
  JournalServiceTest()
      : service_([this](const std::string& unit) -> absl::StatusOr<std::unique_ptr<JournalReader>> {
                   if (unit != "web.service") return absl::NotFoundError("no journal for " + unit);
                   return std::make_unique<MemoryReader>(&journal_);
                 },
                 "machine-a", [this](const v1::AgentMessage& m) { return outbox_.Send(m); }) {}

  v1::JournalRequest Journal(int64_t id, int lines, bool follow) {
    v1::JournalRequest request;
    request.set_request_id(id);
    request.set_unit("web.service");
    request.set_lines(lines);
    request.set_follow(follow);
    return request;
  }

  MemoryJournal journal_;
  Outbox outbox_;
  JournalService service_;
};

TEST_F(JournalServiceTest, TailSendsTheLastLinesAndEnds) {
  for (int i = 1; i <= 5; ++i) journal_.Append("line " + std::to_string(i));
  service_.HandleJournal(Journal(7, 3, false));
  ASSERT_TRUE(outbox_.WaitFor(HasDone));
  auto sent = outbox_.messages();
  ASSERT_EQ(sent.size(), 1u);
  const auto& chunk = sent[0].journal_chunk();
  EXPECT_EQ(chunk.request_id(), 7);
  ASSERT_EQ(chunk.entries_size(), 3);
  EXPECT_EQ(chunk.entries(0).message(), "line 3");
  EXPECT_EQ(chunk.entries(2).message(), "line 5");
  EXPECT_TRUE(chunk.done());
  EXPECT_EQ(chunk.error_code(), 0);
}

TEST_F(JournalServiceTest, BigTailIsSplitIntoBoundedChunks) {
  for (int i = 0; i < 1200; ++i) journal_.Append("entry " + std::to_string(i));
  service_.HandleJournal(Journal(1, 1200, false));
  ASSERT_TRUE(outbox_.WaitFor(HasDone));
  auto sent = outbox_.messages();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].journal_chunk().entries_size(), kMaxChunkEntries);
  EXPECT_EQ(sent[1].journal_chunk().entries_size(), kMaxChunkEntries);
  EXPECT_EQ(sent[2].journal_chunk().entries_size(), 200);
  EXPECT_FALSE(sent[0].journal_chunk().done());
  EXPECT_TRUE(sent[2].journal_chunk().done());
  EXPECT_EQ(sent[2].journal_chunk().entries(199).message(), "entry 1199");
}

TEST_F(JournalServiceTest, FollowSendsNewEntriesUntilCancelled) {
  journal_.Append("old");
  service_.HandleJournal(Journal(3, 0, true));
  ASSERT_TRUE(outbox_.WaitFor([](const auto& m) { return m.size() == 1; }));
  EXPECT_EQ(outbox_.messages()[0].journal_chunk().entries_size(), 0) << "the empty tail says: served";
  EXPECT_FALSE(outbox_.messages()[0].journal_chunk().done());
  journal_.Append("new one");
  ASSERT_TRUE(outbox_.WaitFor([](const auto& m) { return EntriesSent(m) == 1; }));
  auto sent = outbox_.messages();
  EXPECT_EQ(sent.back().journal_chunk().entries(0).message(), "new one");
  EXPECT_EQ(service_.active(), 1u);
  service_.Cancel(3);
  service_.Shutdown();  // joins: the follow thread ended
  EXPECT_EQ(service_.active(), 0u);
  EXPECT_FALSE(HasDone(outbox_.messages())) << "nothing is sent after a cancel";
}

TEST_F(JournalServiceTest, ErrorsEndTheRequestWithTheirReason) {
  v1::JournalRequest request = Journal(4, 5, false);
  request.set_unit("other.service");
  service_.HandleJournal(request);
  ASSERT_TRUE(outbox_.WaitFor(HasDone));
  auto chunk = outbox_.messages()[0].journal_chunk();
  EXPECT_EQ(chunk.error_code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_THAT(chunk.error_message(), HasSubstr("other.service"));

  v1::JournalRequest too_many = Journal(5, kMaxRequestLines + 1, false);
  service_.HandleJournal(too_many);
  ASSERT_TRUE(outbox_.WaitFor([](const auto& m) { return m.size() == 2; }));
  EXPECT_EQ(outbox_.messages()[1].journal_chunk().error_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
}

TEST_F(JournalServiceTest, StatusCarriesSystemdsViewAndTheLastLines) {
  FakeClock clock;
  FakeManager manager(&clock);
  ASSERT_TRUE(manager.InstallUnit("web.service", "[Unit]\nDescription=Web server\n[Service]\nExecStart=/bin/true\n").ok());
  ASSERT_TRUE(manager.Reload().ok());
  ASSERT_TRUE(manager.StartUnit("web.service").ok());
  manager.SetAccounting("web.service", 1536 * 1024, 3);
  for (int i = 1; i <= 4; ++i) journal_.Append("log " + std::to_string(i));

  v1::StatusRequest request;
  request.set_request_id(9);
  request.set_unit("web.service");
  request.set_journal_lines(2);
  service_.HandleStatus(request, manager.GetUnitDetails("web.service"));
  ASSERT_TRUE(outbox_.WaitFor([](const auto& m) { return !m.empty(); }));
  const v1::StatusReply reply = outbox_.messages()[0].status_reply();
  EXPECT_EQ(reply.request_id(), 9);
  EXPECT_EQ(reply.error_code(), 0);
  const v1::UnitDetail& detail = reply.detail();
  EXPECT_EQ(detail.state().machine_id(), "machine-a");
  EXPECT_EQ(detail.state().active_state(), "active");
  EXPECT_EQ(detail.state().sub_state(), "running");
  EXPECT_NE(detail.state().main_pid(), 0u);
  EXPECT_EQ(detail.state().since_unix_micros(), absl::ToUnixMicros(clock.Now()));
  EXPECT_EQ(detail.description(), "Web server");
  EXPECT_EQ(detail.fragment_path(), "/fake/units/web.service");
  EXPECT_TRUE(detail.has_memory());
  EXPECT_EQ(detail.memory_bytes(), 1536u * 1024);
  EXPECT_EQ(detail.tasks(), 3u);
  ASSERT_EQ(detail.journal_size(), 2);
  EXPECT_EQ(detail.journal(0).message(), "log 3");
  EXPECT_EQ(detail.journal(1).message(), "log 4");
}

TEST_F(JournalServiceTest, StatusOfABadNameIsAnError) {
  FakeClock clock;
  FakeManager manager(&clock);
  v1::StatusRequest request;
  request.set_request_id(2);
  request.set_unit("../etc/passwd");
  service_.HandleStatus(request, manager.GetUnitDetails(request.unit()));
  ASSERT_TRUE(outbox_.WaitFor([](const auto& m) { return !m.empty(); }));
  EXPECT_EQ(outbox_.messages()[0].status_reply().error_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
}

TEST(FormatShortLineTest, AsJournalctlShort) {
  v1::JournalEntry entry;
  entry.set_realtime_unix_micros(absl::ToUnixMicros(absl::FromCivil(absl::CivilSecond(2026, 11, 7, 5, 12, 1),
                                                                    absl::UTCTimeZone())));
  entry.set_hostname("host1");
  entry.set_identifier("hello");
  entry.set_pid(1234);
  entry.set_message("hello world");
  EXPECT_EQ(FormatShortLine(entry, absl::UTCTimeZone()), "Nov 07 05:12:01 host1 hello[1234]: hello world");
  entry.set_pid(0);
  entry.set_hostname("");
  EXPECT_EQ(FormatShortLine(entry, absl::UTCTimeZone()), "Nov 07 05:12:01 unknown hello: hello world");
}

}  // namespace
}  // namespace fleet::agent
