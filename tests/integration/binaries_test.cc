// Each binary answers --help and --version and refuses an unknown flag.

#include <string>

#include "common/version.h"
#include "gtest/gtest.h"
#include "tests/support/command.h"

namespace fleet {
namespace {

using ::fleet::test::CommandOutput;
using ::fleet::test::RunCommand;

class BinaryTest : public testing::TestWithParam<std::string> {
 protected:
  // GetParam() is "FOLDER/BINARY" under the build tree.
  std::string Path() const { return std::string(FLEET_BINARY_DIR) + "/" + GetParam(); }
  std::string Name() const { return GetParam().substr(GetParam().find('/') + 1); }
};

TEST_P(BinaryTest, PrintsVersion) {
  CommandOutput out = RunCommand(Path() + " --version");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, Name() + " " + kVersion + "\n");
}

TEST_P(BinaryTest, PrintsHelp) {
  CommandOutput out = RunCommand(Path() + " --help");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_NE(out.text.find("Usage"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("--version"), std::string::npos) << out.text;
}

TEST_P(BinaryTest, RefusesUnknownFlag) {
  CommandOutput out = RunCommand(Path() + " --no-such-flag");
  EXPECT_EQ(out.exit_code, 2) << out.text;
  EXPECT_NE(out.text.find("no-such-flag"), std::string::npos) << out.text;
}

INSTANTIATE_TEST_SUITE_P(AllBinaries, BinaryTest,
                         testing::Values("engine/fleet-engine", "agent/fleet-agent",
                                         "fleetctl/fleetctl"));

}  // namespace
}  // namespace fleet
