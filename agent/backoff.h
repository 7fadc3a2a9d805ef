#pragma once

// Jittered exponential backoff for reconnecting to the engine. Pure: the
// caller waits; tests seed the generator. Not thread-safe.

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace fleet::agent {

class Backoff {
 public:
  // Waits grow from `initial` by doubling up to `max`; each wait is drawn
  // uniformly from [ceiling/2, ceiling] so agents that lost the same engine
  // do not come back in step.
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);

  // The next wait; doubles the ceiling for the one after.
  absl::Duration Next();

  // Back to `initial` (after the first message on a new stream).
  void Reset();

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration ceiling_;
  std::mt19937_64 random_;
};

}  // namespace fleet::agent
