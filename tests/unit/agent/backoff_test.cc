#include "agent/backoff.h"

#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

TEST(BackoffTest, DoublesWithJitterUpToTheMaximumAndResets) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(1), /*seed=*/42);
  absl::Duration ceiling = absl::Milliseconds(100);
  for (int i = 0; i < 8; ++i) {
    absl::Duration wait = b.Next();
    EXPECT_GE(wait, ceiling / 2) << i;
    EXPECT_LE(wait, ceiling) << i;
    ceiling = std::min(ceiling * 2, absl::Seconds(1));
  }
  b.Reset();
  absl::Duration wait = b.Next();
  EXPECT_GE(wait, absl::Milliseconds(50));
  EXPECT_LE(wait, absl::Milliseconds(100));
}

TEST(BackoffTest, DifferentSeedsSpreadAgentsApart) {
  Backoff a(absl::Seconds(1), absl::Seconds(30), 1);
  Backoff b(absl::Seconds(1), absl::Seconds(30), 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ = differ || a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace fleet::agent
