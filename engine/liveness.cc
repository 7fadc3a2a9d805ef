#include "engine/liveness.h"

#include <algorithm>

namespace fleet {

void Liveness::Touch(const std::string& machine_id, absl::Time now) {
  auto [it, inserted] = last_seen_.emplace(machine_id, now);
  if (!inserted) it->second = std::max(it->second, now);
}

void Liveness::Forget(const std::string& machine_id) { last_seen_.erase(machine_id); }

bool Liveness::IsAlive(const std::string& machine_id, absl::Time now) const {
  auto it = last_seen_.find(machine_id);
  return it != last_seen_.end() && now - it->second < ttl_;
}

std::vector<std::string> Liveness::TakeExpired(absl::Time now) {
  std::vector<std::string> expired;
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    if (now - it->second >= ttl_) {
      expired.push_back(it->first);
      it = last_seen_.erase(it);
    } else {
      ++it;
    }
  }
  return expired;
}

absl::Time Liveness::NextExpiry() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [id, seen] : last_seen_) next = std::min(next, seen + ttl_);
  return next;
}

}  // namespace fleet
