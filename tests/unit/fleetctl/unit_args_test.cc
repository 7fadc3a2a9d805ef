#include "fleetctl/unit_args.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

TEST(MangleUnitNameTest, AddsServiceOnlyWithoutSuffix) {
  EXPECT_EQ(MangleUnitName("web"), "web.service");
  EXPECT_EQ(MangleUnitName("web@1"), "web@1.service");
  EXPECT_EQ(MangleUnitName("web.socket"), "web.socket");
}

TEST(IsGlobTest, Metacharacters) {
  EXPECT_TRUE(IsGlob("web@*"));
  EXPECT_TRUE(IsGlob("web@?.service"));
  EXPECT_TRUE(IsGlob("web@[12].service"));
  EXPECT_FALSE(IsGlob("web@1.service"));
}

TEST(ParseUnitArgsTest, PathsAndNames) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / "unit_args_test";
  fs::create_directories(dir);
  std::ofstream(dir / "web@.service") << "[Service]\nExecStart=/bin/true\n";

  auto args = ParseUnitArgs({(dir / "web@.service").string(), (dir / "web@3.service").string(),
                             "hello"});
  ASSERT_TRUE(args.ok()) << args.status();
  ASSERT_EQ(args->size(), 3u);
  EXPECT_EQ((*args)[0].name, "web@.service");
  EXPECT_TRUE((*args)[0].local_path.has_value());
  // An instance path that does not exist stands for its template's file.
  EXPECT_EQ((*args)[1].name, "web@3.service");
  EXPECT_EQ((*args)[2].name, "hello.service");
  EXPECT_FALSE((*args)[2].local_path.has_value());

  auto missing = ParseUnitArgs({(dir / "nope.service").string()});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.service does not exist"), std::string::npos);
}

}  // namespace
}  // namespace fleet::ctl
