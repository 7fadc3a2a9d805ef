#include "agent/transport/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace fleet::agent {
namespace {

int OrDie(int fd, const char* what) {
  if (fd < 0) {
    std::fprintf(stderr, "EventLoop: %s: %s\n", what, std::strerror(errno));
    std::abort();
  }
  return fd;
}

}  // namespace

EventLoop::EventLoop()
    : epoll_fd_(OrDie(epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      wake_fd_(OrDie(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // watch ids start at 1
  OrDie(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event), "epoll_ctl(eventfd)");
  thread_ = std::thread([this] { Run(); });
}

EventLoop::~EventLoop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::Post(Task task) {
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(task));
  }
  Wake();
}

EventLoop::TimerId EventLoop::RunAfter(absl::Duration after, Task task) {
  TimerId id;
  {
    absl::MutexLock lock(&mu_);
    id = next_timer_++;
    timers_.emplace(id, std::move(task));
    due_.emplace(absl::Now() + after, id);
  }
  Wake();
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  absl::MutexLock lock(&mu_);
  timers_.erase(id);  // its entry in due_ is skipped when it comes up
}

EventLoop::WatchId EventLoop::Watch(int fd, uint32_t events, IoHandler handler) {
  WatchId id = next_watch_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  OrDie(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event), "epoll_ctl(ADD)");
  watched_.emplace(id, Watched{fd, std::move(handler)});
  return id;
}

void EventLoop::Rewatch(WatchId id, uint32_t events) {
  auto it = watched_.find(id);
  if (it == watched_.end()) return;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  OrDie(epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &event), "epoll_ctl(MOD)");
}

void EventLoop::Unwatch(WatchId id) {
  auto it = watched_.find(id);
  if (it == watched_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  watched_.erase(it);
}

void EventLoop::Wake() {
  uint64_t one = 1;
  // A full counter (EAGAIN) already means "wake up".
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::Run() {
  std::vector<epoll_event> events(256);
  while (true) {
    std::deque<Task> tasks;
    {
      absl::MutexLock lock(&mu_);
      tasks.swap(posted_);
    }
    for (Task& task : tasks) task();
    // Due timers one at a time, each taken out just before it runs, so a timer
    // cancelled by an earlier task or timer never runs.
    int timeout_ms = -1;
    while (true) {
      Task task;
      {
        absl::MutexLock lock(&mu_);
        absl::Time now = absl::Now();
        while (!due_.empty() && due_.begin()->first <= now && !timers_.contains(due_.begin()->second)) {
          due_.erase(due_.begin());  // cancelled
        }
        if (due_.empty() || due_.begin()->first > now) {
          if (!posted_.empty()) {
            timeout_ms = 0;
          } else if (stopping_) {
            return;
          } else if (!due_.empty()) {
            timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(
                absl::Ceil(due_.begin()->first - now, absl::Milliseconds(1))));
          }
          break;
        }
        auto timer = timers_.find(due_.begin()->second);
        task = std::move(timer->second);
        timers_.erase(timer);
        due_.erase(due_.begin());
      }
      task();
    }

    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      WatchId id = events[i].data.u64;
      if (id == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
        continue;
      }
      // An earlier handler of this round may have unwatched it.
      auto it = watched_.find(id);
      if (it == watched_.end()) continue;
      IoHandler handler = it->second.handler;  // the handler may unwatch itself
      handler(events[i].events);
    }
  }
}

}  // namespace fleet::agent
