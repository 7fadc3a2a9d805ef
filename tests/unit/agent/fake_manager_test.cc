#include "agent/systemd/fake_manager.h"

#include "common/clock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

TEST(FakeManagerTest, BehavesLikeSystemdForTheAgent) {
  FakeClock clock;
  FakeManager m(&clock);
  EXPECT_EQ(m.InstallUnit("../x.service", "").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(m.InstallUnit("a.service", "A").ok());
  ASSERT_TRUE(m.GetStatus({"a.service"}).ok());
  // Not loaded before a reload.
  EXPECT_EQ(m.StartUnit("a.service").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(m.Reload().ok());
  ASSERT_TRUE(m.StartUnit("a.service").ok());
  auto changes = m.WaitForChanges(absl::ZeroDuration());
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].active_state, "active");
  EXPECT_EQ((*changes)[0].load_state, "loaded");
  // No change, no event.
  changes = m.WaitForChanges(absl::ZeroDuration());
  ASSERT_TRUE(changes.ok());
  EXPECT_TRUE(changes->empty());
  ASSERT_TRUE(m.StopUnit("a.service").ok());
  ASSERT_TRUE(m.RemoveUnit("a.service").ok());
  ASSERT_TRUE(m.Reload().ok());
  EXPECT_EQ(m.status("a.service").load_state, "not-found");
  auto installed = m.ListInstalled();
  ASSERT_TRUE(installed.ok());
  EXPECT_TRUE(installed->empty());
}

TEST(FakeManagerTest, UntrackedUnitsProduceNoEvents) {
  FakeClock clock;
  FakeManager m(&clock);
  ASSERT_TRUE(m.InstallUnit("a.service", "A").ok());
  ASSERT_TRUE(m.Reload().ok());
  ASSERT_TRUE(m.StartUnit("a.service").ok());
  auto changes = m.WaitForChanges(absl::ZeroDuration());
  ASSERT_TRUE(changes.ok());
  EXPECT_TRUE(changes->empty());
}

}  // namespace
}  // namespace fleet::agent
