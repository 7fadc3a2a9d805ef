#pragma once

// Names that many records hold at once, held once.
//
// The engine holds a unit's name in its record, the scheduler's view of it,
// the schedule, its machine's set and the state its agent reported; and a
// machine's id once for every unit scheduled there. As std::string, each copy
// of a 20-byte name was 32 bytes plus a heap chunk of 32: about 45 MB at
// 100,000 units. A SharedName is one pointer to a block (count of holders,
// size, chars) that its copies share, and NamePool makes equal names share
// one block.

#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace fleet {

// An immutable string whose copies share its chars. Copying, moving and
// destroying are thread-safe (an atomic count of holders), as for
// std::shared_ptr.
class SharedName {
 public:
  SharedName() = default;  // the empty name; holds no block
  // Implicit, as std::string's are, so a SharedName goes where a name did.
  SharedName(absl::string_view chars);  // NOLINT(google-explicit-constructor)
  SharedName(const std::string& chars) : SharedName(absl::string_view(chars)) {}  // NOLINT
  SharedName(const char* chars) : SharedName(absl::string_view(chars)) {}         // NOLINT
  SharedName(const SharedName& other) noexcept : block_(other.block_) {
    if (block_ != nullptr) block_->holders.fetch_add(1, std::memory_order_relaxed);
  }
  SharedName(SharedName&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  SharedName& operator=(SharedName other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~SharedName();

  absl::string_view view() const {
    return block_ == nullptr ? absl::string_view() : absl::string_view(Chars(block_), block_->size);
  }
  // Both views: Debian's Abseil has its own string_view, not std's, and the
  // scheduler's indexes use std's.
  operator absl::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  operator std::string_view() const { return {view().data(), view().size()}; }  // NOLINT
  std::string str() const { return std::string(view()); }
  // NUL-terminated, for C functions such as fnmatch(3).
  const char* c_str() const { return block_ == nullptr ? "" : Chars(block_); }
  bool empty() const { return block_ == nullptr; }
  // How many SharedNames share this one's chars (0 for the empty name).
  uint32_t holders() const {
    return block_ == nullptr ? 0 : block_->holders.load(std::memory_order_acquire);
  }

  // One overload per kind of string, so that comparing with a literal or a
  // std::string is neither ambiguous nor makes a SharedName.
  friend bool operator==(const SharedName& a, const SharedName& b) {
    return a.block_ == b.block_ || a.view() == b.view();
  }
  friend bool operator==(const SharedName& a, absl::string_view b) { return a.view() == b; }
  friend bool operator==(const SharedName& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const SharedName& a, const char* b) { return a.view() == b; }
  friend std::strong_ordering operator<=>(const SharedName& a, const SharedName& b) {
    return a.view().compare(b.view()) <=> 0;
  }
  // Hashes as its chars do, so NameHash finds it from a string_view.
  template <typename H>
  friend H AbslHashValue(H h, const SharedName& name) {
    return H::combine(std::move(h), name.view());
  }
  friend std::ostream& operator<<(std::ostream& os, const SharedName& name) { return os << name.view(); }

 private:
  struct Block {
    std::atomic<uint32_t> holders;
    uint32_t size;
    // The chars follow the block in the same allocation, then a NUL.
  };
  static const char* Chars(const Block* block) { return reinterpret_cast<const char*>(block + 1); }
  Block* block_ = nullptr;
};

// Hash and equality of names by their chars, for containers keyed by
// SharedName that are searched with any string (no SharedName is made to
// look one up).
struct NameHash {
  using is_transparent = void;
  size_t operator()(absl::string_view name) const { return absl::Hash<absl::string_view>()(name); }
};
struct NameEq {
  using is_transparent = void;
  bool operator()(absl::string_view a, absl::string_view b) const { return a == b; }
};
template <typename V>
using NameMap = absl::flat_hash_map<SharedName, V, NameHash, NameEq>;
template <typename V>
using NodeNameMap = absl::node_hash_map<SharedName, V, NameHash, NameEq>;
using NameSet = absl::flat_hash_set<SharedName, NameHash, NameEq>;

// Makes equal names share one block. Forgets the names no one else holds
// each time its size doubles (as InternPool does for its values), so it
// stays within twice the names in use. Not thread-safe.
class NamePool {
 public:
  SharedName Share(absl::string_view name);
  size_t size() const { return names_.size(); }
  // `map[name]` for a map keyed by SharedName; a new entry's key is shared
  // from this pool (a name already in `map` costs no lookup here).
  template <typename Map>
  typename Map::mapped_type& Entry(Map& map, absl::string_view name) {
    auto it = map.find(name);
    if (it == map.end()) it = map.try_emplace(Share(name)).first;
    return it->second;
  }

 private:
  static constexpr size_t kMinSweepAt = 64;
  NameSet names_;
  size_t sweep_at_ = kMinSweepAt;
};

}  // namespace fleet
