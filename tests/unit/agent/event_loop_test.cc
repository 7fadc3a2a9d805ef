// EventLoop: the order of posted tasks and timers, cancelling, and file
// descriptors, on its own thread.

#include "agent/transport/event_loop.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

// What ran, in order; thread-safe.
class Log {
 public:
  void Add(const std::string& what) {
    absl::MutexLock lock(&mu_);
    entries_.push_back(what);
  }
  std::vector<std::string> entries() {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> entries_;
};

TEST(EventLoopTest, PostedTasksRunInOrderOnTheLoopThread) {
  Log log;
  absl::Notification done;
  {
    EventLoop loop;
    for (int i = 0; i < 3; ++i) {
      loop.Post([&, i] { log.Add(loop.InLoopThread() ? std::to_string(i) : "wrong thread"); });
    }
    loop.Post([&] { done.Notify(); });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
    EXPECT_FALSE(loop.InLoopThread());
  }
  EXPECT_EQ(log.entries(), (std::vector<std::string>{"0", "1", "2"}));
}

TEST(EventLoopTest, TimersRunWhenDueAndCancelledOnesNever) {
  Log log;
  absl::Notification done;
  EventLoop loop;
  absl::Time start = absl::Now();
  loop.RunAfter(absl::Milliseconds(60), [&] {
    log.Add("late");
    done.Notify();
  });
  loop.RunAfter(absl::Milliseconds(20), [&] { log.Add("early"); });
  EventLoop::TimerId cancelled = loop.RunAfter(absl::Milliseconds(40), [&] { log.Add("cancelled"); });
  loop.CancelTimer(cancelled);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(60));
  EXPECT_EQ(log.entries(), (std::vector<std::string>{"early", "late"}));
}

TEST(EventLoopTest, TimerCancelledByAnotherDueInTheSameRoundDoesNotRun) {
  // Both are due when the loop next looks; the first cancels the second, as
  // EngineLink's shutdown cancels a heartbeat that is already due.
  Log log;
  EventLoop loop;
  absl::Notification blocked, release, done;
  loop.Post([&] {
    blocked.Notify();
    release.WaitForNotification();  // holds the loop while both become due
  });
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(kTimeout));
  EventLoop::TimerId second = 0;
  absl::Mutex mu;
  loop.RunAfter(absl::ZeroDuration(), [&] {
    absl::MutexLock lock(&mu);
    log.Add("first");
    loop.CancelTimer(second);
  });
  {
    absl::MutexLock lock(&mu);
    second = loop.RunAfter(absl::ZeroDuration(), [&] { log.Add("second"); });
  }
  loop.RunAfter(absl::Milliseconds(30), [&] { done.Notify(); });
  release.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
  EXPECT_EQ(log.entries(), (std::vector<std::string>{"first"}));
}

TEST(EventLoopTest, DestructorRunsWhatWasPostedBeforeIt) {
  std::atomic<int> ran = 0;
  {
    EventLoop loop;
    for (int i = 0; i < 100; ++i) loop.Post([&] { ++ran; });
  }
  EXPECT_EQ(ran, 100);
}

TEST(EventLoopTest, WatchedDescriptorReportsReadableUntilUnwatched) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EventLoop loop;
  std::atomic<int> calls = 0;
  absl::Notification readable;
  EventLoop::WatchId watch = 0;  // loop thread only
  loop.Post([&] {
    watch = loop.Watch(fds[0], EPOLLIN, [&](uint32_t events) {
      ++calls;
      char c;
      EXPECT_EQ(read(fds[0], &c, 1), 1);
      EXPECT_TRUE(events & EPOLLIN);
      loop.Unwatch(watch);
      readable.Notify();
    });
  });
  ASSERT_EQ(write(fds[1], "ab", 2), 2);
  ASSERT_TRUE(readable.WaitForNotificationWithTimeout(kTimeout));
  // The second byte is still there, but the watch is gone.
  absl::Notification idle;
  loop.RunAfter(absl::Milliseconds(50), [&] { idle.Notify(); });
  ASSERT_TRUE(idle.WaitForNotificationWithTimeout(kTimeout));
  EXPECT_EQ(calls, 1);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace fleet::agent
