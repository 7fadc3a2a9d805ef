#include "engine/liveness.h"

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(LivenessTest, SilentForTtlIsExpiredHeardFromIsNot) {
  FakeClock clock;
  Liveness liveness(absl::Seconds(30));
  liveness.Touch("a", clock.Now());
  liveness.Touch("b", clock.Now());
  clock.Advance(absl::Seconds(20));
  liveness.Touch("b", clock.Now());
  clock.Advance(absl::Seconds(9));
  EXPECT_THAT(liveness.TakeExpired(clock.Now()), IsEmpty());
  EXPECT_TRUE(liveness.IsAlive("a", clock.Now()));
  clock.Advance(absl::Seconds(1));  // a: 30 s of silence
  EXPECT_FALSE(liveness.IsAlive("a", clock.Now()));
  EXPECT_THAT(liveness.TakeExpired(clock.Now()), ElementsAre("a"));
  EXPECT_THAT(liveness.TakeExpired(clock.Now()), IsEmpty()) << "expired once only";
  EXPECT_TRUE(liveness.IsAlive("b", clock.Now()));
  clock.Advance(absl::Seconds(20));
  EXPECT_THAT(liveness.TakeExpired(clock.Now()), ElementsAre("b"));
}

TEST(LivenessTest, OlderTimeDoesNotMoveLastSeenBack) {
  FakeClock clock;
  Liveness liveness(absl::Seconds(10));
  absl::Time early = clock.Now();
  clock.Advance(absl::Seconds(5));
  liveness.Touch("a", clock.Now());
  liveness.Touch("a", early);
  EXPECT_EQ(liveness.NextExpiry(), clock.Now() + absl::Seconds(10));
}

TEST(LivenessTest, ForgottenMachineNeverExpires) {
  FakeClock clock;
  Liveness liveness(absl::Seconds(10));
  liveness.Touch("a", clock.Now());
  liveness.Forget("a");
  clock.Advance(absl::Hours(1));
  EXPECT_THAT(liveness.TakeExpired(clock.Now()), IsEmpty());
  EXPECT_EQ(liveness.NextExpiry(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace fleet
