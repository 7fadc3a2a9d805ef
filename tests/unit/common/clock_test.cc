#include "common/clock.h"

#include "gtest/gtest.h"

namespace fleet {
namespace {

TEST(FakeClockTest, MovesOnlyWhenTold) {
  FakeClock clock;
  absl::Time start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Seconds(30));
  EXPECT_EQ(clock.Now() - start, absl::Seconds(30));
  clock.Set(start);
  EXPECT_EQ(clock.Now(), start);
}

}  // namespace
}  // namespace fleet
