#include "common/unit/unit.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kService[] = "[Service]\nExecStart=/bin/true\n";

// A unit with `fleet` as its [X-Fleet] section body.
std::string WithFleet(std::string_view fleet) {
  return std::string(kService) + "[X-Fleet]\n" + std::string(fleet);
}

FleetOptions MustParseOptions(std::string_view name, std::string_view fleet) {
  absl::StatusOr<ParsedUnit> unit = ParseUnit(name, WithFleet(fleet));
  EXPECT_TRUE(unit.ok()) << unit.status();
  return unit.ok() ? unit->options : FleetOptions{};
}

// The message of the error ParseUnit gives, or "" when it accepts the unit.
std::string ErrorOf(std::string_view name, std::string_view fleet) {
  absl::StatusOr<ParsedUnit> unit = ParseUnit(name, WithFleet(fleet));
  if (unit.ok()) return "";
  EXPECT_EQ(unit.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(unit.status().message());
}

TEST(ParseUnitTest, AcceptsAPlainUnit) {
  absl::StatusOr<ParsedUnit> unit = ParseUnit("web.service", kService);
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->name.full(), "web.service");
  EXPECT_EQ(unit->file.contents(), kService);
  EXPECT_EQ(unit->options, FleetOptions{});
  EXPECT_EQ(unit->hash, FleetHash(unit->file));
  EXPECT_EQ(unit->hash.size(), 40u);
}

TEST(ParseUnitTest, RefusesBadNameEmptyFileAndSyntaxErrors) {
  absl::StatusOr<ParsedUnit> unit = ParseUnit("web", kService);
  ASSERT_FALSE(unit.ok());
  EXPECT_THAT(std::string(unit.status().message()), HasSubstr("no type suffix"));

  unit = ParseUnit("web.service", "# nothing\n");
  ASSERT_FALSE(unit.ok());
  EXPECT_THAT(std::string(unit.status().message()), HasSubstr("no options"));

  unit = ParseUnit("web.service", "[Service]\nExecStart=/bin/true\noops\nalso bad\n");
  ASSERT_FALSE(unit.ok());
  EXPECT_EQ(unit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unit.status().message()), HasSubstr("line 3, column 1: "));
  EXPECT_THAT(std::string(unit.status().message()), HasSubstr("(and 1 more)"));
}

TEST(ParseUnitTest, AllFleetKeys) {
  FleetOptions options = MustParseOptions("web@1.service",
                                          "MachineMetadata=region=east\n"
                                          "Conflicts=web@*.service\n"
                                          "Global=false\n");
  EXPECT_THAT(options.machine_metadata, ElementsAre(Pair("region", ElementsAre("east"))));
  EXPECT_THAT(options.conflicts, ElementsAre("web@*.service"));
  EXPECT_FALSE(options.global);

  options = MustParseOptions("a.service", "MachineID=0123456789abcdef0123456789abcdef\n");
  EXPECT_EQ(options.machine_id, "0123456789abcdef0123456789abcdef");

  options = MustParseOptions("sidecar.service", "MachineOf=db.service\nMachineOf=cache.service\n");
  EXPECT_THAT(options.machine_of, ElementsAre("db.service", "cache.service"));

  options = MustParseOptions("v2.service", "Replaces=v1.service\n");
  EXPECT_THAT(options.replaces, ElementsAre("v1.service"));

  options = MustParseOptions("agent.service", "Global=true\nMachineMetadata=role=worker\n");
  EXPECT_TRUE(options.global);
}

TEST(ParseUnitTest, MetadataValuesOfOneKeyOrTogetherAndQuotedMultiValues) {
  FleetOptions options =
      MustParseOptions("web.service",
                       "MachineMetadata=\"region=east\" \"disk=ssd\"\n"
                       "MachineMetadata=region=west\n"
                       "MachineMetadata=\"region=east\"\n");  // a duplicate adds nothing
  EXPECT_THAT(options.machine_metadata,
              UnorderedElementsAre(Pair("region", ElementsAre("east", "west")),
                                   Pair("disk", ElementsAre("ssd"))));
}

TEST(ParseUnitTest, QuotedValueSplitsOnlyOnUnquotedSpaces) {
  FleetOptions options =
      MustParseOptions("web.service", "Conflicts=\"a*.service\"  \"b c*.service\" \"d.service\"\n");
  // Quotes drop out, spaces inside quotes stay, empty items are dropped.
  EXPECT_THAT(options.conflicts, ElementsAre("a*.service", "b c*.service", "d.service"));
  // Not quoted at both ends: one value, as written.
  options = MustParseOptions("web.service", "Conflicts=\"a.service b.service\n");
  EXPECT_THAT(options.conflicts, ElementsAre("\"a.service b.service"));
}

TEST(ParseUnitTest, DeprecatedAliasesMeanTheSame) {
  FleetOptions options = MustParseOptions("web@2.service",
                                          "X-ConditionMachineMetadata=disk=ssd\n"
                                          "X-Conflicts=web@*.service\n"
                                          "X-ConditionMachineOf=db@%i.service\n");
  EXPECT_THAT(options.machine_metadata, ElementsAre(Pair("disk", ElementsAre("ssd"))));
  EXPECT_THAT(options.conflicts, ElementsAre("web@*.service"));
  EXPECT_THAT(options.machine_of, ElementsAre("db@2.service"));

  options = MustParseOptions("a.service", "X-ConditionMachineID=abc\n");
  EXPECT_EQ(options.machine_id, "abc");
}

TEST(ParseUnitTest, SpecifiersExpandedPerInstance) {
  FleetOptions options = MustParseOptions("web@8081.service",
                                          "Conflicts=%p@*.service\n"
                                          "MachineMetadata=port=%i\n"
                                          "MachineOf=log-%N.service\n");
  EXPECT_THAT(options.conflicts, ElementsAre("web@*.service"));
  EXPECT_THAT(options.machine_metadata, ElementsAre(Pair("port", ElementsAre("8081"))));
  EXPECT_THAT(options.machine_of, ElementsAre("log-web@8081.service"));
}

TEST(ParseUnitTest, TemplateSkipsItemsWithSpecifiers) {
  // %i is empty in a template: "hostname=%i" would not be key=value. The
  // template is accepted; its instances read the item with their own name.
  FleetOptions options = MustParseOptions("web@.service",
                                          "MachineMetadata=hostname=%i\n"
                                          "MachineMetadata=disk=ssd\n"
                                          "Conflicts=%p@*.service\n");
  EXPECT_THAT(options.machine_metadata, ElementsAre(Pair("disk", ElementsAre("ssd"))));
  EXPECT_THAT(options.conflicts, IsEmpty());
  options = MustParseOptions("web@host1.service", "MachineMetadata=hostname=%i\n");
  EXPECT_THAT(options.machine_metadata, ElementsAre(Pair("hostname", ElementsAre("host1"))));
}

TEST(ParseUnitTest, EmptyAssignmentResetsAndGlobalLastWins) {
  FleetOptions options = MustParseOptions("web.service",
                                          "Conflicts=a.service\n"
                                          "Conflicts=\n"
                                          "Conflicts=b.service\n"
                                          "Global=yes\n"
                                          "Global=off\n"
                                          "Global=ON\n"
                                          "MachineMetadata=x=1\n"
                                          "MachineMetadata=\n");
  EXPECT_THAT(options.conflicts, ElementsAre("b.service"));
  EXPECT_TRUE(options.global);
  EXPECT_THAT(options.machine_metadata, IsEmpty());
  EXPECT_FALSE(MustParseOptions("web.service", "Global=1\nGlobal=\n").global);
}

TEST(ParseUnitTest, GlobalTakesSystemdBooleans) {
  for (const char* yes : {"1", "yes", "y", "true", "t", "on", "TRUE", "Yes"}) {
    EXPECT_TRUE(MustParseOptions("a.service", std::string("Global=") + yes + "\n").global) << yes;
  }
  for (const char* no : {"0", "no", "n", "false", "f", "off", "False"}) {
    EXPECT_FALSE(MustParseOptions("a.service", std::string("Global=") + no + "\n").global) << no;
  }
  std::string error = ErrorOf("a.service", "Global=maybe\n");
  EXPECT_THAT(error, HasSubstr("line 4"));
  EXPECT_THAT(error, HasSubstr("Global=maybe is not a boolean"));
  EXPECT_THAT(error, HasSubstr("true/yes"));
}

TEST(ParseUnitTest, UnknownKeyNamesKeyLineAndAllowedKeys) {
  std::string error = ErrorOf("a.service", "MachineMetadata=a=b\nMachineId=abc\n");
  EXPECT_THAT(error, HasSubstr("line 5, column 1"));
  EXPECT_THAT(error, HasSubstr("unknown key \"MachineId\" in [X-Fleet]"));
  EXPECT_THAT(error, HasSubstr("allowed: MachineID, MachineOf, MachineMetadata"));
  // Deprecated fleet spellings not in the list are unknown too.
  EXPECT_THAT(ErrorOf("a.service", "X-ConditionMachineBootID=abc\n"), HasSubstr("unknown key"));
}

TEST(ParseUnitTest, BadMetadataItem) {
  for (const char* bad :
       {"MachineMetadata=region\n", "MachineMetadata==east\n", "MachineMetadata=region=\n",
        "MachineMetadata=a=b=c\n", "MachineMetadata=\"a=b\" \"c\"\n"}) {
    std::string error = ErrorOf("a.service", bad);
    EXPECT_THAT(error, HasSubstr("line 4")) << bad;
    EXPECT_THAT(error, HasSubstr("is not key=value")) << bad;
  }
}

TEST(ParseUnitTest, MachineOfAndReplacesMustNameUnits) {
  EXPECT_THAT(ErrorOf("a.service", "MachineOf=db\n"), HasSubstr("MachineOf= must name units"));
  EXPECT_THAT(ErrorOf("a.service", "Replaces=old stuff.service\n"),
              HasSubstr("Replaces= must name units"));
}

TEST(ParseUnitTest, MachineIdNamesOneMachine) {
  EXPECT_THAT(ErrorOf("a.service", "MachineID=m1\nX-ConditionMachineID=m2\n"),
              HasSubstr("already has MachineID=m1 (line 4)"));
  EXPECT_EQ(ErrorOf("a.service", "MachineID=m1\nMachineID=m1\n"), "");
}

TEST(ParseUnitTest, RefusedCombinations) {
  struct Case {
    std::string fleet;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"MachineID=m1\nMachineOf=db.service\n",
            "MachineID= (line 4) cannot be used with MachineOf= (line 5)"},
           {"Conflicts=x*.service\nMachineID=m1\n",
            "MachineID= (line 5) cannot be used with Conflicts= (line 4)"},
           {"MachineID=m1\nGlobal=true\n", "MachineID= (line 4) cannot be used with Global=true"},
           {"MachineID=m1\nReplaces=old.service\n",
            "MachineID= (line 4) cannot be used with Replaces="},
           {"Global=true\nMachineOf=db.service\n",
            "Global=true (line 4) cannot be used with MachineOf="},
           {"Global=true\nReplaces=old.service\n",
            "Global=true (line 4) cannot be used with Replaces="},
           {"Conflicts=x.service\nReplaces=old.service\n",
            "Conflicts= (line 4) cannot be used with Replaces= (line 5)"},
           {"MachineOf=web.service\n", "MachineOf=web.service names the unit itself"},
           {"MachineOf=db@1.service\nConflicts=db@*.service\n",
            "MachineOf=db@1.service (line 4) is matched by Conflicts=db@*.service (line 5)"},
           {"MachineOf=%n\n", "names the unit itself"},
       }) {
    std::string error = ErrorOf("web.service", c.fleet);
    EXPECT_THAT(error, HasSubstr(c.message)) << c.fleet;
  }
  // Replaces and MachineOf naming the same unit (Replaces alone is allowed
  // with MachineOf, and both together are refused only for the same unit).
  EXPECT_EQ(ErrorOf("web.service", "MachineOf=db.service\nReplaces=old.service\n"), "");
  EXPECT_THAT(ErrorOf("web.service", "MachineOf=db.service\nReplaces=db.service\n"),
              HasSubstr("MachineOf=db.service (line 4) is also in Replaces= (line 5)"));
  // Allowed combinations.
  EXPECT_EQ(ErrorOf("web.service", "Global=true\nConflicts=x.service\nMachineMetadata=a=b\n"), "");
  EXPECT_EQ(ErrorOf("web.service", "Global=false\nMachineID=m1\n"), "");
  EXPECT_EQ(ErrorOf("web.service", "MachineID=m1\nMachineMetadata=a=b\n"), "");
  EXPECT_EQ(ErrorOf("web.service", "MachineID=m1\nConflicts=x.service\nConflicts=\n"), "");
}

TEST(VerifyUnitTest, ReportsEveryProblemInLineOrder) {
  std::vector<UnitError> errors = VerifyUnit("web",
                                             "[Service]\n"
                                             "ExecStart=/bin/true\n"
                                             "junk\n"
                                             "[X-Fleet]\n"
                                             "Bogus=1\n"
                                             "MachineMetadata=nope\n");
  std::vector<int> lines;
  for (const UnitError& e : errors) lines.push_back(e.line);
  // The name is bad (line 0); X-Fleet is not checked without a valid name.
  EXPECT_THAT(lines, ElementsAre(0, 3));

  errors = VerifyUnit("web.service",
                      "[Service]\n"
                      "ExecStart=/bin/true\n"
                      "junk\n"
                      "[X-Fleet]\n"
                      "Bogus=1\n"
                      "MachineMetadata=nope\n");
  lines.clear();
  for (const UnitError& e : errors) lines.push_back(e.line);
  EXPECT_THAT(lines, ElementsAre(3, 5, 6));
  EXPECT_THAT(VerifyUnit("web.service", kService), IsEmpty());
}

TEST(ParseUnitTest, SameUnitSameHashWhateverTheComments) {
  absl::StatusOr<ParsedUnit> a = ParseUnit("a.service", "[Service]\nExecStart=/bin/true\n");
  absl::StatusOr<ParsedUnit> b =
      ParseUnit("a.service", "# v2: only a comment changed\n[Service]\r\n ExecStart = /bin/true\n");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_NE(a->file.contents(), b->file.contents());
}

}  // namespace
}  // namespace fleet
