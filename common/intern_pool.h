#pragma once

// Interning of immutable values that many records hold at once.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace fleet {

// Hands out shared copies of values so that equal values share one copy: the
// engine holds one record per unit, and most units have one of a few equal
// [X-Fleet] sections or reported states. Forgets the values no one else holds
// each time its size doubles, so it stays within twice the values in use. T
// needs operator== and absl::Hash. Not thread-safe.
template <typename T>
class InternPool {
 public:
  std::shared_ptr<const T> Share(T value) {
    if (auto found = pool_.find(value); found != pool_.end()) return *found;
    if (pool_.size() >= sweep_at_) {
      absl::erase_if(pool_, [](const std::shared_ptr<const T>& v) { return v.use_count() == 1; });
      sweep_at_ = std::max<size_t>(kMinSweepAt, 2 * pool_.size());
    }
    return *pool_.insert(std::make_shared<const T>(std::move(value))).first;
  }
  size_t size() const { return pool_.size(); }

 private:
  static constexpr size_t kMinSweepAt = 64;
  // Hash and equality by value, also against a plain T.
  struct ByValue {
    using is_transparent = void;
    static const T& Of(const T& v) { return v; }
    static const T& Of(const std::shared_ptr<const T>& v) { return *v; }
    template <typename A>
    size_t operator()(const A& a) const {
      return absl::Hash<T>()(Of(a));
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Of(a) == Of(b);
    }
  };
  absl::flat_hash_set<std::shared_ptr<const T>, ByValue, ByValue> pool_;
  size_t sweep_at_ = kMinSweepAt;
};

}  // namespace fleet
