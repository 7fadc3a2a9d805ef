#include "common/unit/fleet_options.h"

#include <algorithm>

namespace fleet {

SharedFleetOptions ShareFleetOptions(FleetOptions options) {
  static const auto* const kNone = new SharedFleetOptions(std::make_shared<const FleetOptions>());
  if (options == **kNone) return *kNone;
  return std::make_shared<const FleetOptions>(std::move(options));
}

SharedFleetOptions FleetOptionsPool::Share(FleetOptions options) {
  if (options == FleetOptions{}) return ShareFleetOptions({});
  if (auto found = pool_.find(options); found != pool_.end()) return *found;
  if (pool_.size() >= sweep_at_) {
    absl::erase_if(pool_, [](const SharedFleetOptions& o) { return o.use_count() == 1; });
    sweep_at_ = std::max<size_t>(64, 2 * pool_.size());
  }
  return *pool_.insert(std::make_shared<const FleetOptions>(std::move(options))).first;
}

}  // namespace fleet
