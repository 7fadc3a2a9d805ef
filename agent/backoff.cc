#include "agent/backoff.h"

#include <algorithm>

namespace fleet::agent {

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), ceiling_(initial), random_(seed) {}

absl::Duration Backoff::Next() {
  int64_t ceiling_us = absl::ToInt64Microseconds(ceiling_);
  std::uniform_int_distribution<int64_t> pick(ceiling_us / 2, ceiling_us);
  absl::Duration wait = absl::Microseconds(pick(random_));
  ceiling_ = std::min(ceiling_ * 2, max_);
  return wait;
}

void Backoff::Reset() { ceiling_ = initial_; }

}  // namespace fleet::agent
