// kill -9 at random moments loses no acknowledged write: a child process
// (store_crash_writer) writes in a loop and reports each acknowledged write
// over a pipe; the parent kills it with SIGKILL after a random number of
// acknowledgements, reopens the store and compares. Several rounds on the same
// directory, so recovery of earlier crashes (torn tails, snapshots cut short)
// is exercised again by the later rounds.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "engine/store/embedded_store.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/store/temp_dir.h"

namespace fleet::testing {
namespace {

constexpr int kThreads = 4;
constexpr int kSnapshotEvery = 300;

// Kills and reaps the child if a test assertion leaves early.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Reaps the (killed) child; returns its wait status.
  int Reap() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

TEST(EmbeddedStoreCrashTest, AcknowledgedWritesSurviveKill9) {
  TempDir dir;
  const uint32_t seed = static_cast<uint32_t>(absl::ToUnixNanos(absl::Now()));
  std::mt19937 rng(seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::vector<int64_t> durable(kThreads, -1);  // highest index known to be in the store
  const absl::Time end = absl::Now() + absl::Seconds(12);
  int rounds = 0;
  int64_t total_acks = 0;
  int torn_tails = 0;  // recoveries that cut a torn last record
  while (rounds < 30 && (rounds < 5 || absl::Now() < end)) {
    ++rounds;
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(fds[1], 1);
      std::string threads = absl::StrCat(kThreads), every = absl::StrCat(kSnapshotEvery);
      ::execl(STORE_CRASH_WRITER, STORE_CRASH_WRITER, dir.path().c_str(), threads.c_str(),
              every.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    Child child(pid);
    ::close(fds[1]);
    const int kill_after = std::uniform_int_distribution<int>(1, 3000)(rng);
    std::vector<int64_t> acked = durable;
    std::string buffer;
    int acks = 0;
    bool killed = false;
    const absl::Time round_deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      pollfd p{fds[0], POLLIN, 0};
      int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(round_deadline - absl::Now()));
      ASSERT_GT(::poll(&p, 1, std::max(timeout_ms, 0)), 0) << "writer made no progress";
      char chunk[4096];
      ssize_t n = ::read(fds[0], chunk, sizeof(chunk));
      ASSERT_GE(n, 0);
      if (n == 0) break;  // the child is gone
      buffer.append(chunk, n);
      size_t newline;
      while ((newline = buffer.find('\n')) != std::string::npos) {
        std::vector<std::string> parts = absl::StrSplit(buffer.substr(0, newline), ' ');
        buffer.erase(0, newline + 1);
        int t;
        int64_t i;
        ASSERT_EQ(parts.size(), 2u);
        ASSERT_TRUE(absl::SimpleAtoi(parts[0], &t) && absl::SimpleAtoi(parts[1], &i));
        ASSERT_TRUE(t >= 0 && t < kThreads);
        ASSERT_EQ(i, acked[t] + 1) << "thread " << t << " skipped or repeated an index";
        acked[t] = i;
        ++acks;
      }
      if (!killed && acks >= kill_after) {
        ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
        killed = true;
      }
    }
    ::close(fds[0]);
    int status = child.Reap();
    ASSERT_TRUE(killed) << "writer ended by itself, status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    total_acks += acks;

    FakeClock clock;
    EmbeddedStoreOptions options;
    options.dir = dir.path();
    options.clock = &clock;
    options.snapshot_every_records = kSnapshotEvery;
    absl::StatusOr<std::unique_ptr<EmbeddedStore>> store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << "round " << rounds << ": " << store.status();
    torn_tails += (*store)->recovery_notes().empty() ? 0 : 1;
    for (int t = 0; t < kThreads; ++t) {
      SCOPED_TRACE(absl::StrCat("round ", rounds, " thread ", t));
      int64_t last = -1;
      if (auto kv = (*store)->Get(absl::StrCat("/crash/", t, "/last")); kv.ok()) {
        ASSERT_TRUE(absl::SimpleAtoi(kv->value, &last));
      }
      // Every acknowledged write is there; at most the one write in flight
      // when the child died is there without an acknowledgement.
      EXPECT_GE(last, acked[t]);
      EXPECT_LE(last, acked[t] + 1);
      // The state is a prefix of the history: indexes 0..last, no gaps.
      absl::StatusOr<RangeResult> keys = (*store)->Range(absl::StrCat("/crash/", t, "/k/"));
      ASSERT_TRUE(keys.ok());
      ASSERT_EQ(keys->kvs.size(), static_cast<size_t>(last + 1));
      for (int64_t i = 0; i <= last; ++i) {
        ASSERT_EQ(keys->kvs[i].key, absl::StrFormat("/crash/%d/k/%08d", t, i));
        ASSERT_EQ(keys->kvs[i].value, absl::StrCat("v", i));
      }
      durable[t] = last;
    }
  }
  int64_t written = 0;
  for (int64_t d : durable) written += d + 1;
  RecordProperty("rounds", rounds);
  RecordProperty("acknowledged_writes", static_cast<int>(total_acks));
  std::printf(
      "%d rounds of kill -9, %lld acknowledged writes, %lld in the store, %d torn tails cut\n",
      rounds, static_cast<long long>(total_acks), static_cast<long long>(written), torn_tails);
  EXPECT_GE(rounds, 5);
}

}  // namespace
}  // namespace fleet::testing
