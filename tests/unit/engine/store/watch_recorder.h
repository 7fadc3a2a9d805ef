#pragma once

// Collects what a Store watch delivers, and lets a test wait (with a deadline,
// woken by the delivery itself) until enough has arrived.

#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/store/store.h"

namespace fleet::testing {

class WatchRecorder {
 public:
  Store::EventsCallback Events() {
    return [this](const std::vector<WatchEvent>& events) {
      absl::MutexLock lock(&mu_);
      batches_.push_back(events);
      for (const WatchEvent& e : events) events_.push_back(e);
    };
  }
  Store::ErrorCallback Errors() {
    return [this](const absl::Status& status) {
      absl::MutexLock lock(&mu_);
      errors_.push_back(status);
    };
  }

  // Waits until at least `n` events arrived or 10 s passed; returns all events so far.
  std::vector<WatchEvent> WaitForEvents(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return events_;
  }
  std::vector<absl::Status> WaitForError() {
    absl::MutexLock lock(&mu_);
    auto any = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !errors_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&any), absl::Seconds(10));
    return errors_;
  }
  std::vector<WatchEvent> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<std::vector<WatchEvent>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<absl::Status> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Mutex mu_;
  std::vector<WatchEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<WatchEvent>> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::testing
