#include "common/cli.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fleet {
namespace {

int Parse(CLI::App& app, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(app, static_cast<int>(argv.size()), argv.data());
}

TEST(CommandLineTest, VersionAndHelpExitZero) {
  CLI::App app{"test"};
  AddVersionFlag(app, "prog");
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(app, {"prog", "--version"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("prog 0."), std::string::npos);
  CLI::App app2{"test"};
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(app2, {"prog", "--help"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("Usage"), std::string::npos);
}

TEST(CommandLineTest, UnknownFlagIsAUsageError) {
  CLI::App app{"test"};
  testing::internal::CaptureStderr();
  EXPECT_EQ(Parse(app, {"prog", "--no-such-flag"}), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("no-such-flag"), std::string::npos);
}

TEST(CommandLineTest, NothingToDoGoesOn) {
  CLI::App app{"test"};
  EXPECT_EQ(Parse(app, {"prog"}), -1);
}

}  // namespace
}  // namespace fleet
