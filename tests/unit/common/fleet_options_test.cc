#include "common/unit/fleet_options.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

FleetOptions InRegion(const std::string& region) {
  FleetOptions options;
  options.machine_metadata["region"] = {region};
  return options;
}

TEST(FleetOptionsPoolTest, EqualOptionsShareOneCopyAndDifferentOnesDoNot) {
  FleetOptionsPool pool;
  SharedFleetOptions a = pool.Share(InRegion("east"));
  SharedFleetOptions b = pool.Share(InRegion("east"));
  SharedFleetOptions c = pool.Share(InRegion("west"));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(*c, InRegion("west"));
  EXPECT_EQ(pool.size(), 2u);
}

TEST(FleetOptionsPoolTest, OptionsNoOneHoldsAreForgottenAsThePoolGrows) {
  FleetOptionsPool pool;
  SharedFleetOptions kept = pool.Share(InRegion("kept"));
  for (int i = 0; i < 1000; ++i) pool.Share(InRegion(absl::StrCat("gone-", i)));  // released at once
  EXPECT_LT(pool.size(), 200u);
  EXPECT_EQ(pool.Share(InRegion("kept")).get(), kept.get());  // what is held stays shared
}

}  // namespace
}  // namespace fleet
