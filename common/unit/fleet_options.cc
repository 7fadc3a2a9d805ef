#include "common/unit/fleet_options.h"

namespace fleet {

SharedFleetOptions ShareFleetOptions(FleetOptions options) {
  static const auto* const kNone = new SharedFleetOptions(std::make_shared<const FleetOptions>());
  if (options == **kNone) return *kNone;
  return std::make_shared<const FleetOptions>(std::move(options));
}

}  // namespace fleet
