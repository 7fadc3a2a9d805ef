#pragma once

// Machine liveness, decided from time alone: a machine is alive while its agent
// was heard from less than `ttl` ago. Pure (the caller passes the time), so the
// engine drives it with its Clock and tests with FakeClock. Not thread-safe: the
// engine calls it under its own lock.
//
// After an engine start, machines known from the store are given one full ttl
// from the start (Touch them with the start time) before they can be declared
// dead, so agents have time to reconnect to a new leader.

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fleet {

class Liveness {
 public:
  explicit Liveness(absl::Duration ttl) : ttl_(ttl) {}

  absl::Duration ttl() const { return ttl_; }

  // Records that `machine_id` was heard from at `now` (adds it when new).
  // A time earlier than the recorded one is ignored.
  void Touch(const std::string& machine_id, absl::Time now);

  // Stops tracking `machine_id` (no-op when unknown).
  void Forget(const std::string& machine_id);

  // True when `machine_id` is tracked and was heard from less than ttl before `now`.
  bool IsAlive(const std::string& machine_id, absl::Time now) const;

  // Removes and returns, sorted by id, every machine last heard from ttl or
  // more before `now`.
  std::vector<std::string> TakeExpired(absl::Time now);

  // The earliest time at which a tracked machine expires; InfiniteFuture when none.
  absl::Time NextExpiry() const;

 private:
  absl::Duration ttl_;
  std::map<std::string, absl::Time> last_seen_;
};

}  // namespace fleet
