// The example units in units/ are what a new user starts from: each must be
// accepted, and mean what its comments say.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/unit/unit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

namespace fs = std::filesystem;

const fs::path kUnitsDir = fs::path(FLEET_SOURCE_DIR) / "units";

std::string ReadUnit(const std::string& file) {
  std::ifstream in(kUnitsDir / file, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing " << (kUnitsDir / file);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

ParsedUnit MustParse(const std::string& name, const std::string& file) {
  absl::StatusOr<ParsedUnit> unit = ParseUnit(name, ReadUnit(file));
  EXPECT_TRUE(unit.ok()) << file << ": " << unit.status();
  return unit.ok() ? *std::move(unit)
                   : ParsedUnit{*ParseUnitName("invalid.service"), UnitFile("", {}, {}), {}, ""};
}

TEST(ExampleUnitsTest, EveryFileInUnitsParses) {
  int count = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kUnitsDir)) {
    std::string name = entry.path().filename().string();
    if (!ParseUnitName(name).ok()) continue;  // README and the like
    std::vector<UnitError> errors = VerifyUnit(name, ReadUnit(name));
    for (const UnitError& error : errors) {
      ADD_FAILURE() << name << ": " << FormatUnitError(error);
    }
    ++count;
  }
  EXPECT_GE(count, 6);
}

TEST(ExampleUnitsTest, PlainService) {
  ParsedUnit unit = MustParse("hello.service", "hello.service");
  EXPECT_EQ(unit.options, FleetOptions{});
  EXPECT_EQ(unit.file.ListValues("Service", "ExecStart").size(), 1u);
}

TEST(ExampleUnitsTest, DockerTemplateInstances) {
  ParsedUnit tmpl = MustParse("web@.service", "web@.service");
  EXPECT_TRUE(tmpl.name.IsTemplate());
  ParsedUnit unit = MustParse("web@8081.service", "web@.service");
  EXPECT_THAT(unit.options.conflicts, ElementsAre("web@*.service"));
  EXPECT_TRUE(UnitNameGlobMatch(unit.options.conflicts[0], "web@8082.service"));
  std::vector<std::string> exec = unit.file.ListValues("Service", "ExecStart");
  ASSERT_EQ(exec.size(), 1u);
  EXPECT_THAT(exec[0], ::testing::HasSubstr("docker run --rm --name %p-%i"));
  EXPECT_EQ(unit.file.ListValues("Service", "ExecStop").size(), 1u);
  EXPECT_EQ(tmpl.hash, unit.hash);  // same file, same identity
}

TEST(ExampleUnitsTest, GlobalUnit) {
  EXPECT_TRUE(MustParse("machine-heartbeat.service", "machine-heartbeat.service").options.global);
}

TEST(ExampleUnitsTest, MetadataConstrainedUnit) {
  ParsedUnit unit = MustParse("cache.service", "cache.service");
  EXPECT_THAT(
      unit.options.machine_metadata,
      ElementsAre(Pair("disk", ElementsAre("ssd")), Pair("region", ElementsAre("east", "west"))));
}

TEST(ExampleUnitsTest, ConflictingPair) {
  ParsedUnit primary = MustParse("db-primary.service", "db-primary.service");
  ParsedUnit replica = MustParse("db-replica.service", "db-replica.service");
  ASSERT_EQ(primary.options.conflicts.size(), 1u);
  ASSERT_EQ(replica.options.conflicts.size(), 1u);
  EXPECT_TRUE(UnitNameGlobMatch(primary.options.conflicts[0], "db-replica.service"));
  EXPECT_TRUE(UnitNameGlobMatch(replica.options.conflicts[0], "db-primary.service"));
}

}  // namespace
}  // namespace fleet
