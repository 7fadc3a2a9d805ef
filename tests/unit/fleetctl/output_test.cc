#include "fleetctl/output.h"

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

Listing Sample() {
  return Listing{{"unit", "machine", "active"},
                 {{"hello.service", "c31e44e1.../10.10.1.1", "active"},
                  {"a-very-long-unit-name@1.service", "-", "-"}}};
}

TEST(FormatTableTest, AlignsWithTabsLikeGoTabwriter) {
  // Column widths: "a-very-long-unit-name@1.service" is 31 chars, +1 padding
  // = 32 -> 4 tab stops; "c31e44e1.../10.10.1.1" is 21, +1 -> 24.
  EXPECT_EQ(FormatTable(Sample(), /*legend=*/true),
            "UNIT\t\t\t\tMACHINE\t\t\tACTIVE\n"
            "hello.service\t\t\tc31e44e1.../10.10.1.1\tactive\n"
            "a-very-long-unit-name@1.service\t-\t\t\t-\n");
}

TEST(FormatTableTest, NoLegend) {
  EXPECT_EQ(FormatTable(Listing{{"unit"}, {{"a.service"}}}, /*legend=*/false), "a.service\n");
}

TEST(FormatJsonTest, ArrayOfObjectsWithEscapes) {
  Listing listing{{"unit", "desc"}, {{"a.service", "say \"hi\"\\\n"}}};
  EXPECT_EQ(FormatJson(listing),
            "[\n  {\"unit\": \"a.service\", \"desc\": \"say \\\"hi\\\"\\\\\\n\"}\n]\n");
  EXPECT_EQ(FormatJson(Listing{{"unit"}, {}}), "[]\n");
}

TEST(FormatYamlTest, SequenceOfMappings) {
  EXPECT_EQ(FormatYaml(Sample()),
            "- unit: \"hello.service\"\n"
            "  machine: \"c31e44e1.../10.10.1.1\"\n"
            "  active: \"active\"\n"
            "- unit: \"a-very-long-unit-name@1.service\"\n"
            "  machine: \"-\"\n"
            "  active: \"-\"\n");
}

TEST(SelectFieldsTest, PicksAndOrdersColumns) {
  auto picked = SelectFields(Sample(), "active,unit");
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_EQ(picked->columns, (std::vector<std::string>{"active", "unit"}));
  EXPECT_EQ(picked->rows[0], (std::vector<std::string>{"active", "hello.service"}));
}

TEST(SelectFieldsTest, UnknownFieldIsNamed) {
  auto picked = SelectFields(Sample(), "unit,bogus");
  ASSERT_FALSE(picked.ok());
  EXPECT_EQ(picked.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(picked.status().message().find("Invalid key in output format: \"bogus\""),
            std::string::npos);
  EXPECT_FALSE(SelectFields(Sample(), "").ok());
}

TEST(ParseOutputFormatTest, KnownAndUnknown) {
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_FALSE(ParseOutputFormat("xml").ok());
}

TEST(MachineLegendTest, ShortAndFull) {
  const std::string id = "c31e44e1f7d14e9ba1d9f1a8b3c5d7e9";
  EXPECT_EQ(MachineLegend(id, "10.0.0.1", false), "c31e44e1.../10.0.0.1");
  EXPECT_EQ(MachineLegend(id, "", true), id);
  EXPECT_EQ(MachineLegend("", "10.0.0.1", false), "-");
}

}  // namespace
}  // namespace fleet::ctl
