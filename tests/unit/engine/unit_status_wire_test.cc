// UnitStatusPageWriter writes the bytes protobuf's serializer writes for the
// same ListUnitStatesResponse, whatever fields an entry has.

#include "engine/unit_status_wire.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fleet/v1/fleet.pb.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

namespace v1 = fleet::v1;

// The page as messages: what clients parse, and protobuf's bytes for it.
v1::ListUnitStatesResponse AsMessage(const std::vector<UnitStatusFields>& entries, const std::string& token) {
  v1::ListUnitStatesResponse response;
  for (const UnitStatusFields& entry : entries) FillUnitStatus(entry, response.add_units());
  response.set_next_page_token(token);
  return response;
}

std::string Written(const std::vector<UnitStatusFields>& entries, const std::string& token) {
  UnitStatusPageWriter page;
  for (const UnitStatusFields& entry : entries) page.Add(entry);
  EXPECT_EQ(page.size(), static_cast<int>(entries.size()));
  return std::move(page).Finish(token);
}

void ExpectSameAsProtobuf(const std::vector<UnitStatusFields>& entries, const std::string& token) {
  const v1::ListUnitStatesResponse want = AsMessage(entries, token);
  const std::string wire = Written(entries, token);
  EXPECT_EQ(wire, want.SerializeAsString());
  v1::ListUnitStatesResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.DebugString(), want.DebugString());
}

const UnitStateFields kRunning{.name = "web@8081.service",
                               .machine_id = "0123456789abcdef0123456789abcdef",
                               .load_state = "loaded",
                               .active_state = "active",
                               .sub_state = "running",
                               .main_pid = 4242,
                               .since_unix_micros = 1795867692917096,
                               .exit_status = 0,
                               .unit_hash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"};

TEST(UnitStatusWireTest, AnEntryWithItsReportedState) {
  ExpectSameAsProtobuf({{.name = "web@8081.service",
                         .desired_state = v1::DESIRED_STATE_LAUNCHED,
                         .hash = "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                         .machine_id = "0123456789abcdef0123456789abcdef",
                         .state = kRunning}},
                       "");
}

TEST(UnitStatusWireTest, UnplacedEntryWithAReasonAndNoState) {
  ExpectSameAsProtobuf({{.name = "db.service",
                         .desired_state = v1::DESIRED_STATE_LOADED,
                         .hash = "abc",
                         .unscheduled_reason = "no machine matches MachineMetadata region=east"}},
                       "");
}

TEST(UnitStatusWireTest, AStateOfDefaultsIsStillPresent) {
  const std::string wire = Written({{.name = "a.service", .state = UnitStateFields{}}}, "");
  v1::ListUnitStatesResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_EQ(parsed.units_size(), 1);
  EXPECT_TRUE(parsed.units(0).has_state());
  ExpectSameAsProtobuf({{.name = "a.service", .state = UnitStateFields{}}}, "");
}

// Negative int32s take ten bytes on the wire; lengths past 127 take two.
TEST(UnitStatusWireTest, ExtremeNumbersAndLongStrings) {
  UnitStateFields failed = kRunning;
  failed.active_state = "failed";
  failed.exit_status = -1;
  failed.main_pid = std::numeric_limits<uint32_t>::max();
  failed.since_unix_micros = std::numeric_limits<int64_t>::min();
  const std::string long_reason(300, 'r');
  ExpectSameAsProtobuf({{.name = "x.service",
                         .desired_state = v1::DESIRED_STATE_LAUNCHED,
                         .machine_id = "m1",
                         .unscheduled_reason = long_reason,
                         .state = failed}},
                       "x.service");
}

TEST(UnitStatusWireTest, ManyEntriesThenTheNextPageToken) {
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back("app-" + std::to_string(i) + ".service");
  std::vector<UnitStatusFields> entries;
  for (int i = 0; i < 200; ++i) {
    UnitStatusFields entry{.name = names[i], .desired_state = v1::DESIRED_STATE_LAUNCHED, .hash = "h"};
    if (i % 3 != 0) {
      entry.machine_id = "m";
      entry.state = kRunning;
      entry.state->name = names[i];
    }
    entries.push_back(entry);
  }
  ExpectSameAsProtobuf(entries, names.back());
}

TEST(UnitStatusWireTest, AnEmptyPage) {
  ExpectSameAsProtobuf({}, "");
  EXPECT_EQ(Written({}, ""), "");
}

}  // namespace
}  // namespace fleet
