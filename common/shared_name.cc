#include "common/shared_name.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace fleet {

SharedName::SharedName(absl::string_view chars) {
  if (chars.empty()) return;
  // Names are unit names and machine ids, checked far below this at the API.
  if (chars.size() > std::numeric_limits<uint32_t>::max()) std::abort();
  void* memory = ::operator new(sizeof(Block) + chars.size() + 1);
  block_ = new (memory) Block{.holders{1}, .size = static_cast<uint32_t>(chars.size())};
  char* copy = reinterpret_cast<char*>(block_ + 1);
  std::memcpy(copy, chars.data(), chars.size());
  copy[chars.size()] = '\0';
}

SharedName::~SharedName() {
  if (block_ == nullptr || block_->holders.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  block_->~Block();
  ::operator delete(block_);
}

SharedName NamePool::Share(absl::string_view name) {
  if (auto found = names_.find(name); found != names_.end()) return *found;
  if (names_.size() >= sweep_at_) {
    absl::erase_if(names_, [](const SharedName& n) { return n.holders() == 1; });
    sweep_at_ = std::max<size_t>(kMinSweepAt, 2 * names_.size());
  }
  return *names_.emplace(name).first;
}

}  // namespace fleet
