#pragma once

// EventLoop: one thread that waits on file descriptors (epoll), timers and
// posted tasks, and runs their callbacks one at a time. The agent's engine
// link runs on it; bench/scale's hollow agents share a few loops among
// thousands of links, so a link costs a socket, not a thread.
//
// Post, RunAfter and CancelTimer are thread-safe. Watch, Rewatch and Unwatch
// are for the loop thread (inside a callback). Callbacks must not block.
// Sockets written here must be written with MSG_NOSIGNAL: the loop does not
// block SIGPIPE.

#include <sys/epoll.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fleet::agent {

class EventLoop {
 public:
  using Task = std::function<void()>;
  using IoHandler = std::function<void(uint32_t events)>;  // EPOLLIN, EPOLLOUT, EPOLLERR, ...
  using TimerId = uint64_t;
  using WatchId = uint64_t;

  EventLoop();   // starts the thread; aborts when the kernel refuses epoll or eventfd
  ~EventLoop();  // runs the tasks posted before it, then joins; timers not yet due never run
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `task` on the loop thread, after the tasks posted before it.
  void Post(Task task);
  // Runs `task` on the loop thread once `after` has passed, unless cancelled.
  TimerId RunAfter(absl::Duration after, Task task);
  // The timer will not run once this returns (a no-op when it ran or is
  // running; from the loop thread, also when it is due in the same round).
  void CancelTimer(TimerId id);

  // Loop thread only. Calls `handler` with the ready events of `fd` (level
  // triggered) until Unwatch. The id, not the fd, names the watch, so an
  // event for a closed fd never reaches the next owner of its number.
  WatchId Watch(int fd, uint32_t events, IoHandler handler);
  void Rewatch(WatchId id, uint32_t events);
  void Unwatch(WatchId id);  // before the fd is closed

  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Run();
  void Wake();

  const int epoll_fd_;
  const int wake_fd_;  // eventfd: Post and RunAfter end the wait

  absl::Mutex mu_;
  std::deque<Task> posted_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, TimerId> due_ ABSL_GUARDED_BY(mu_);
  std::map<TimerId, Task> timers_ ABSL_GUARDED_BY(mu_);
  TimerId next_timer_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  struct Watched {
    int fd;
    IoHandler handler;
  };
  std::map<WatchId, Watched> watched_;  // loop thread only
  WatchId next_watch_ = 1;              // loop thread only

  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace fleet::agent
