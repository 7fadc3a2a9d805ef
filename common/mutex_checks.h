#pragma once

// Debian builds Abseil with its Mutex deadlock detection on. It is a debug
// aid: every lock taken while another is held is recorded in one global graph,
// under one global lock. Tests keep it (it finds lock-order bugs); the
// binaries turn it off first thing in main. With 10,000 hollow agents in
// bench/scale it took 16% of the process's CPU, and its global lock most of
// the rest (futex_wake 39%).

#include "absl/synchronization/mutex.h"

namespace fleet {

inline void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace fleet
