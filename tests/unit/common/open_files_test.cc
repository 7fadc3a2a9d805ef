// RaiseOpenFileLimit: the soft limit on open files goes up to the hard one.

#include "common/open_files.h"

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace fleet {
namespace {

TEST(OpenFilesTest, SoftLimitIsRaisedToTheHardOne) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max != RLIM_INFINITY && before.rlim_max <= 256) GTEST_SKIP() << "hard limit too low to test";
  rlimit lowered = before;
  lowered.rlim_cur = 256;  // as a process started with a low soft limit
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);

  absl::StatusOr<uint64_t> now = RaiseOpenFileLimit();
  ASSERT_TRUE(now.ok()) << now.status();
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, *now);
  EXPECT_GT(after.rlim_cur, 256u);
  if (before.rlim_max != RLIM_INFINITY) {
    EXPECT_EQ(after.rlim_cur, before.rlim_max);
  }
  EXPECT_EQ(after.rlim_max, before.rlim_max);  // the hard limit is left alone

  EXPECT_EQ(RaiseOpenFileLimit().value_or(0), *now);  // already there: unchanged
  setrlimit(RLIMIT_NOFILE, &before);
}

}  // namespace
}  // namespace fleet
