#include "engine/scheduler/scheduler.h"

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// The cases below name only the fields they set (designated initializers);
// GCC 12 warns about the others even though they are value-initialized.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace fleet {
namespace {

using ::testing::HasSubstr;
using Schedule = std::map<std::string, std::string>;

MachineView M(std::string id, std::map<std::string, std::string> metadata = {},
              uint32_t capacity = 0) {
  return MachineView{.id = std::move(id), .metadata = std::move(metadata), .capacity = capacity};
}

UnitView U(std::string name, int64_t revision, FleetOptions options = {}) {
  return UnitView{.name = std::move(name), .options = ShareFleetOptions(std::move(options)),
                  .create_revision = revision};
}

ClusterSnapshot Snapshot(const std::vector<MachineView>& machines,
                         const std::vector<UnitView>& units, const Schedule& schedule) {
  ClusterSnapshot snapshot;
  for (const MachineView& m : machines) snapshot.machines[m.id] = m;
  for (const UnitView& u : units) snapshot.units[u.name] = u;
  for (const auto& [unit, machine] : schedule) snapshot.schedule[unit] = machine;
  return snapshot;
}

Schedule AsMap(const NameMap<SharedName>& schedule) {
  Schedule out;
  for (const auto& [unit, machine] : schedule) out.emplace(unit.str(), machine.str());
  return out;
}

// The cases are written with strings; the scheduler hands out SharedNames.
std::vector<std::string> Strings(const std::vector<SharedName>& names) {
  return std::vector<std::string>(names.begin(), names.end());
}

struct Case {
  std::string name;
  std::vector<MachineView> machines;
  std::vector<UnitView> units;
  Schedule schedule;                                 // stored before
  Schedule want_schedule;                            // stored after applying the plan
  std::map<std::string, std::string> want_unplaceable;  // unit -> part of its reason
  std::map<std::string, std::vector<std::string>> want_runs;  // machine -> what it runs
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ReconcileTest : public ::testing::TestWithParam<Case> {};

// What the engine relies on to write one store change per unit of `plan`,
// made from `before`: every assignment changes the unit's stored machine,
// every unassigned unit is in the schedule, and no unit is in both lists.
void ExpectEveryEntryChangesTheSchedule(const ClusterSnapshot& before, const Plan& plan) {
  for (const auto& [unit, machine] : plan.assign) {
    auto stored = before.schedule.find(unit);
    EXPECT_TRUE(stored == before.schedule.end() || stored->second != machine) << unit << " stays on " << machine;
    EXPECT_FALSE(std::binary_search(plan.unassign.begin(), plan.unassign.end(), unit)) << unit;
  }
  for (const SharedName& unit : plan.unassign) EXPECT_TRUE(before.schedule.contains(unit)) << unit;
}

TEST_P(ReconcileTest, PlacesAsFleetDoes) {
  const Case& c = GetParam();
  ClusterSnapshot snapshot = Snapshot(c.machines, c.units, c.schedule);
  const Plan plan = Reconcile(snapshot);
  ExpectEveryEntryChangesTheSchedule(snapshot, plan);
  ApplyPlan(plan, &snapshot);
  EXPECT_EQ(AsMap(snapshot.schedule), c.want_schedule);

  std::map<std::string, std::string> unplaceable(plan.unplaceable.begin(),
                                                 plan.unplaceable.end());
  std::vector<std::string> got_names, want_names;
  for (const auto& [unit, reason] : unplaceable) got_names.push_back(unit);
  for (const auto& [unit, reason] : c.want_unplaceable) want_names.push_back(unit);
  EXPECT_EQ(got_names, want_names);
  for (const auto& [unit, reason] : c.want_unplaceable) {
    EXPECT_THAT(unplaceable[unit], HasSubstr(reason)) << unit;
  }
  for (const auto& [machine, units] : c.want_runs) {
    EXPECT_EQ(Strings(UnitsForMachine(snapshot, machine)), units) << machine;
  }

  // The result is a fixed point: reconciling again changes nothing.
  const Plan again = Reconcile(snapshot);
  EXPECT_TRUE(again.assign.empty()) << again.assign.front().first;
  EXPECT_TRUE(again.unassign.empty()) << again.unassign.front();
  EXPECT_EQ(again.unplaceable, plan.unplaceable);
}

// Options shorthands.
FleetOptions MachineId(std::string id) { return FleetOptions{.machine_id = std::move(id)}; }
FleetOptions MachineOf(std::vector<std::string> peers) {
  return FleetOptions{.machine_of = std::move(peers)};
}
FleetOptions Metadata(std::map<std::string, std::vector<std::string>> metadata) {
  return FleetOptions{.machine_metadata = std::move(metadata)};
}
FleetOptions Conflicts(std::vector<std::string> globs) {
  return FleetOptions{.conflicts = std::move(globs)};
}
FleetOptions Global(std::map<std::string, std::vector<std::string>> metadata = {},
                    std::vector<std::string> conflicts = {}) {
  return FleetOptions{
      .machine_metadata = std::move(metadata), .conflicts = std::move(conflicts), .global = true};
}
FleetOptions Replaces(std::vector<std::string> globs) {
  return FleetOptions{.replaces = std::move(globs)};
}

const std::vector<MachineView> kTwo = {M("m1"), M("m2")};
const std::vector<MachineView> kRegions = {M("m1", {{"region", "east"}, {"disk", "ssd"}}),
                                           M("m2", {{"region", "west"}, {"disk", "ssd"}}),
                                           M("m3", {{"region", "west"}, {"disk", "hdd"}}),
                                           M("m4")};

INSTANTIATE_TEST_SUITE_P(
    Options, ReconcileTest,
    ::testing::Values(
        // --- load and ties ---
        Case{.name = "FewestUnitsThenId",
             .machines = kTwo,
             .units = {U("a.service", 1), U("b.service", 2), U("c.service", 3)},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"c.service", "m1"}}},
        Case{.name = "CountsUnitsAlreadyScheduled",
             .machines = {M("m1"), M("m2"), M("m3")},
             .units = {U("a.service", 1), U("b.service", 2), U("new.service", 3)},
             .schedule = {{"a.service", "m1"}, {"b.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"new.service", "m3"}}},
        Case{.name = "SubmissionOrderNotNameOrder",
             .machines = kTwo,
             .units = {U("z.service", 1), U("a.service", 2)},
             .want_schedule = {{"a.service", "m2"}, {"z.service", "m1"}}},
        Case{.name = "NoMachineAlive",
             .units = {U("a.service", 1)},
             .want_unplaceable = {{"a.service", "no machine is alive"}}},
        // --- MachineID= ---
        Case{.name = "MachineIdPinsEvenWhenBusier",
             .machines = kTwo,
             .units = {U("a.service", 1, MachineId("m1")), U("b.service", 2, MachineId("m1"))},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m1"}}},
        Case{.name = "MachineIdNotAlive",
             .machines = kTwo,
             .units = {U("a.service", 1, MachineId("m9"))},
             .want_unplaceable = {{"a.service", "MachineID=m9: the machine is not alive"}}},
        Case{.name = "MachineIdAndMetadataDisagree",
             .machines = kRegions,
             .units = {U("a.service", 1,
                         FleetOptions{.machine_id = "m1",
                                      .machine_metadata = {{"region", {"west"}}}})},
             .want_unplaceable = {
                 {"a.service", "MachineID=m1: machine m1 does not match MachineMetadata "
                               "region=west"}}},
        // --- MachineMetadata= ---
        Case{.name = "MetadataOneKey",
             .machines = kRegions,
             .units = {U("a.service", 1, Metadata({{"region", {"west"}}})),
                       U("b.service", 2, Metadata({{"region", {"west"}}})),
                       U("c.service", 3, Metadata({{"region", {"west"}}}))},
             .want_schedule = {{"a.service", "m2"}, {"b.service", "m3"}, {"c.service", "m2"}}},
        Case{.name = "MetadataSeveralValuesAreAny",
             .machines = kRegions,
             .units = {U("a.service", 1, Metadata({{"region", {"east", "west"}}})),
                       U("b.service", 2, Metadata({{"region", {"east", "west"}}})),
                       U("c.service", 3, Metadata({{"region", {"east", "west"}}}))},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"c.service", "m3"}}},
        Case{.name = "MetadataEveryKeyMustMatch",
             .machines = kRegions,
             .units = {U("a.service", 1,
                         Metadata({{"region", {"west"}}, {"disk", {"hdd"}}})),
                       U("b.service", 2,
                         Metadata({{"region", {"west"}}, {"disk", {"hdd"}}}))},
             .want_schedule = {{"a.service", "m3"}, {"b.service", "m3"}}},
        Case{.name = "MetadataMatchesNoMachine",
             .machines = kRegions,
             .units = {U("a.service", 1, Metadata({{"region", {"north"}}})),
                       U("b.service", 2, Metadata({{"region", {"east"}}, {"disk", {"hdd"}}}))},
             .want_unplaceable = {{"a.service", "no machine matches MachineMetadata region=north"},
                                  {"b.service",
                                   "no machine matches MachineMetadata disk=hdd region=east"}}},
        Case{.name = "MachineWithoutTheKeyDoesNotMatch",
             .machines = {M("m1"), M("m2", {{"gpu", "yes"}})},
             .units = {U("a.service", 1, Metadata({{"gpu", {"yes"}}})),
                       U("b.service", 2, Metadata({{"gpu", {"yes"}}}))},
             .want_schedule = {{"a.service", "m2"}, {"b.service", "m2"}}},
        // --- MachineOf= ---
        Case{.name = "MachineOfFollowsPeer",
             .machines = kTwo,
             .units = {U("db.service", 1), U("other.service", 2),
                       U("backup.service", 3, MachineOf({"db.service"}))},
             .want_schedule = {{"backup.service", "m1"},
                               {"db.service", "m1"},
                               {"other.service", "m2"}}},
        Case{.name = "MachineOfChainSubmittedBackwards",
             .machines = {M("m1"), M("m2"), M("m3")},
             .units = {U("c.service", 1, MachineOf({"b.service"})),
                       U("b.service", 2, MachineOf({"a.service"})),
                       U("x.service", 3), U("a.service", 4)},
             .schedule = {{"x.service", "m1"}},
             .want_schedule = {{"a.service", "m2"},
                               {"b.service", "m2"},
                               {"c.service", "m2"},
                               {"x.service", "m1"}}},
        Case{.name = "MachineOfPeerNotLoaded",
             .machines = kTwo,
             .units = {U("b.service", 1, MachineOf({"a.service"})),
                       U("c.service", 2, MachineOf({"b.service"}))},
             .want_unplaceable = {
                 {"b.service", "waits for MachineOf=a.service, which is not loaded"},
                 {"c.service", "waits for MachineOf=b.service, which is not scheduled"}}},
        Case{.name = "MachineOfPeerUnplaceable",
             .machines = kTwo,
             .units = {U("a.service", 1, MachineId("m9")),
                       U("b.service", 2, MachineOf({"a.service"}))},
             .want_unplaceable = {
                 {"a.service", "MachineID=m9"},
                 {"b.service", "waits for MachineOf=a.service, which is not scheduled"}}},
        Case{.name = "MachineOfCycle",
             .machines = kTwo,
             .units = {U("a.service", 1, MachineOf({"b.service"})),
                       U("b.service", 2, MachineOf({"a.service"}))},
             .want_unplaceable = {{"a.service", "MachineOf="}, {"b.service", "cycle"}}},
        Case{.name = "MachineOfPeersOnDifferentMachines",
             .machines = kTwo,
             .units = {U("a.service", 1), U("b.service", 2),
                       U("c.service", 3, MachineOf({"a.service", "b.service"}))},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}},
             .want_unplaceable = {{"c.service", "MachineOf= peers are on different machines"}}},
        Case{.name = "MachineOfPeerMachineDoesNotFit",
             .machines = kRegions,
             .units = {U("a.service", 1, MachineId("m1")),
                       U("b.service", 2,
                         FleetOptions{.machine_of = {"a.service"},
                                      .machine_metadata = {{"region", {"west"}}}})},
             .want_schedule = {{"a.service", "m1"}},
             .want_unplaceable = {
                 {"b.service", "MachineOf=a.service is on m1: machine m1 does not match "
                               "MachineMetadata region=west"}}},
        Case{.name = "MachineOfGlobalPeer",
             .machines = kRegions,
             .units = {U("agent.service", 1, Global({{"disk", {"hdd"}}})),
                       U("b.service", 2, MachineOf({"agent.service"}))},
             .want_schedule = {{"b.service", "m3"}}},
        // --- Conflicts= ---
        Case{.name = "ConflictsGlobSpreadsInstances",
             .machines = kTwo,
             .units = {U("web@1.service", 1, Conflicts({"web@*.service"})),
                       U("web@2.service", 2, Conflicts({"web@*.service"})),
                       U("web@3.service", 3, Conflicts({"web@*.service"})),
                       U("db.service", 4)},
             .want_schedule = {{"db.service", "m1"},
                               {"web@1.service", "m1"},
                               {"web@2.service", "m2"}},
             .want_unplaceable = {{"web@3.service",
                                   "conflicts with web@1.service, web@2.service on every "
                                   "fitting machine"}}},
        Case{.name = "ConflictDeclaredOnFirstOnly",
             .machines = kTwo,
             .units = {U("a.service", 1, Conflicts({"b.service"})), U("x.service", 2),
                       U("b.service", 3)},
             .schedule = {{"a.service", "m1"}, {"x.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"x.service", "m2"}}},
        Case{.name = "ConflictDeclaredOnSecondOnly",
             .machines = kTwo,
             .units = {U("a.service", 1), U("x.service", 2),
                       U("b.service", 3, Conflicts({"a.service"}))},
             .schedule = {{"a.service", "m1"}, {"x.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"x.service", "m2"}}},
        Case{.name = "SeveralConflictsOnOneLine",
             .machines = {M("m1"), M("m2"), M("m3")},
             .units = {U("a.service", 1), U("b.service", 2), U("x.service", 3),
                       U("y.service", 4),
                       U("c.service", 5, Conflicts({"a.service", "b.service"}))},
             .schedule = {{"a.service", "m1"},
                          {"b.service", "m2"},
                          {"x.service", "m3"},
                          {"y.service", "m3"}},
             .want_schedule = {{"a.service", "m1"},
                               {"b.service", "m2"},
                               {"c.service", "m3"},
                               {"x.service", "m3"},
                               {"y.service", "m3"}}},
        Case{.name = "ConflictEverywhereIsUnplaceable",
             .machines = {M("m1")},
             .units = {U("a.service", 1), U("b.service", 2, Conflicts({"a*"}))},
             .want_schedule = {{"a.service", "m1"}},
             .want_unplaceable = {{"b.service",
                                   "conflicts with a.service on every fitting machine"}}},
        Case{.name = "StoredConflictingPairLaterMoves",
             .machines = kTwo,
             .units = {U("a.service", 1, Conflicts({"b.service"})), U("b.service", 2)},
             .schedule = {{"a.service", "m1"}, {"b.service", "m1"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}}},
        // --- Global= ---
        Case{.name = "GlobalRunsEverywhereAndIsNotScheduled",
             .machines = kTwo,
             .units = {U("log.service", 1, Global()), U("a.service", 2)},
             .schedule = {{"log.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}},
             .want_runs = {{"m1", {"a.service", "log.service"}}, {"m2", {"log.service"}}}},
        Case{.name = "GlobalWithMetadata",
             .machines = kRegions,
             .units = {U("log.service", 1, Global({{"region", {"west"}}}))},
             .want_runs = {{"m1", {}}, {"m2", {"log.service"}}, {"m3", {"log.service"}},
                           {"m4", {}}}},
        Case{.name = "GlobalsCountTowardLoad",
             .machines = kRegions,
             .units = {U("log.service", 1, Global({{"disk", {"ssd"}}})), U("a.service", 2),
                       U("b.service", 3), U("c.service", 4)},
             .want_schedule = {{"a.service", "m3"}, {"b.service", "m4"}, {"c.service", "m1"}}},
        Case{.name = "ConflictingGlobalsFirstSubmittedWins",
             .machines = kRegions,
             .units = {U("g2.service", 2, Global()),
                       U("g1.service", 1, Global({{"region", {"west"}}}, {"g2.service"}))},
             .want_runs = {{"m1", {"g2.service"}}, {"m2", {"g1.service"}},
                           {"m3", {"g1.service"}}, {"m4", {"g2.service"}}}},
        Case{.name = "GlobalBlockedEverywhere",
             .machines = kTwo,
             .units = {U("g1.service", 1, Global({}, {"g*.service"})),
                       U("g2.service", 2, Global())},
             .want_unplaceable = {{"g2.service",
                                   "conflicts with global g1.service on every matching "
                                   "machine"}},
             .want_runs = {{"m1", {"g1.service"}}, {"m2", {"g1.service"}}}},
        Case{.name = "GlobalMatchesNoMachine",
             .machines = kTwo,
             .units = {U("g.service", 1, Global({{"region", {"east"}}}))},
             .want_unplaceable = {{"g.service", "no machine matches MachineMetadata region=east"}}},
        Case{.name = "GlobalWithMachineOfRunsNowhere",
             .machines = kTwo,
             .units = {U("a.service", 1),
                       U("g.service", 2,
                         FleetOptions{.machine_of = {"a.service"}, .global = true})},
             .want_schedule = {{"a.service", "m1"}},
             .want_unplaceable = {{"g.service", "Global=true units cannot use MachineOf="}}},
        Case{.name = "NonGlobalAvoidsConflictingGlobal",
             .machines = kRegions,
             .units = {U("g.service", 1, Global({{"region", {"west"}}})),
                       U("a.service", 2, Conflicts({"g.service"})),
                       U("b.service", 3, Conflicts({"g.service"}))},
             .schedule = {{"a.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m4"}}},
        // --- Replaces= ---
        Case{.name = "ReplacesTakesTheMachineAndEvicts",
             .machines = {M("m1"), M("m2"), M("m3")},
             .units = {U("old.service", 1), U("x.service", 2), U("new.service", 3,
                                                                   Replaces({"old.service"}))},
             .schedule = {{"old.service", "m1"}, {"x.service", "m1"}},
             .want_schedule = {{"new.service", "m1"},
                               {"old.service", "m2"},
                               {"x.service", "m1"}}},
        Case{.name = "ReplacedUnitTakesItsFollowersAlong",
             .machines = kTwo,
             .units = {U("old.service", 1), U("side.service", 2, MachineOf({"old.service"})),
                       U("new.service", 3, Replaces({"old*"}))},
             .schedule = {{"old.service", "m1"}, {"side.service", "m1"}},
             .want_schedule = {{"new.service", "m1"},
                               {"old.service", "m2"},
                               {"side.service", "m2"}}},
        Case{.name = "ReplacedUnitWithNowhereToGo",
             .machines = {M("m1")},
             .units = {U("old.service", 1), U("new.service", 2, Replaces({"old.service"}))},
             .schedule = {{"old.service", "m1"}},
             .want_schedule = {{"new.service", "m1"}},
             .want_unplaceable = {{"old.service",
                                   "cannot share a machine with new.service (Replaces=)"}}},
        Case{.name = "ReplacesBothWaysExactlyOnePlaced",
             .machines = kTwo,
             .units = {U("b.service", 2, Replaces({"a.service"})),
                       U("a.service", 1, Replaces({"b.service"}))},
             .schedule = {{"b.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}},
             .want_unplaceable = {{"b.service", "replaces a.service, which replaces it too"}}},
        Case{.name = "ReplacedByGlobalMoves",
             .machines = kRegions,
             .units = {U("old.service", 1),
                       U("g.service", 2,
                         FleetOptions{.machine_metadata = {{"region", {"east"}}},
                                      .global = true,
                                      .replaces = {"old.service"}})},
             .schedule = {{"old.service", "m1"}},
             .want_schedule = {{"old.service", "m2"}}},
        // --- capacity ---
        Case{.name = "CapacityFillsThenRefuses",
             .machines = {M("m1", {}, 1), M("m2", {}, 2)},
             .units = {U("a.service", 1), U("b.service", 2), U("c.service", 3),
                       U("d.service", 4)},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}, {"c.service", "m2"}},
             .want_unplaceable = {{"d.service", "every fitting machine is at capacity"}}},
        Case{.name = "CapacityCountsGlobals",
             .machines = {M("m1", {{"role", "edge"}}, 1), M("m2", {}, 5)},
             .units = {U("g.service", 1, Global({{"role", {"edge"}}})), U("b.service", 2),
                       U("a.service", 3)},
             .schedule = {{"b.service", "m2"}},
             .want_schedule = {{"a.service", "m2"}, {"b.service", "m2"}}},
        Case{.name = "MixedReasons",
             .machines = {M("m1", {}, 1), M("m2")},
             .units = {U("a.service", 1, MachineId("m1")), U("b.service", 2, MachineId("m2")),
                       U("c.service", 3, Conflicts({"b.service"}))},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}},
             .want_unplaceable = {{"c.service",
                                   "no fitting machine: 1 at capacity; 1 with conflicting "
                                   "units (b.service)"}}},
        Case{.name = "CapacityLoweredMovesTheLaterUnit",
             .machines = {M("m1", {}, 1), M("m2")},
             .units = {U("a.service", 1), U("b.service", 2)},
             .schedule = {{"a.service", "m1"}, {"b.service", "m1"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m2"}}},
        // --- what the reconciler changes ---
        Case{.name = "KeepsUnitsOnLiveMachinesThatFit",
             .machines = {M("m1"), M("m2"), M("m3")},
             .units = {U("a.service", 1), U("b.service", 2), U("c.service", 3)},
             .schedule = {{"a.service", "m1"}, {"b.service", "m1"}, {"c.service", "m1"}},
             .want_schedule = {{"a.service", "m1"}, {"b.service", "m1"}, {"c.service", "m1"}}},
        Case{.name = "UnassignsGoneAndInactiveUnits",
             .machines = kTwo,
             .units = {U("a.service", 1)},
             .schedule = {{"a.service", "m1"}, {"gone.service", "m2"}},
             .want_schedule = {{"a.service", "m1"}}},
        Case{.name = "MovesUnitsOfDeadMachines",
             .machines = {M("m1", {{"region", "east"}}), M("m2")},
             .units = {U("a.service", 1), U("b.service", 2, MachineId("dead")),
                       U("c.service", 3, Metadata({{"region", {"east"}}}))},
             .schedule = {{"a.service", "dead"}, {"b.service", "dead"}, {"c.service", "dead"}},
             .want_schedule = {{"a.service", "m1"}, {"c.service", "m1"}},
             .want_unplaceable = {{"b.service", "MachineID=dead: the machine is not alive"}}},
        Case{.name = "MovesUnitWhenLiveMachineStopsMatching",
             .machines = {M("m1", {{"region", "west"}}), M("m2", {{"region", "east"}})},
             .units = {U("a.service", 1, Metadata({{"region", {"east"}}}))},
             .schedule = {{"a.service", "m1"}},
             .want_schedule = {{"a.service", "m2"}}}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// The plan does not depend on the order in which the snapshot was filled.
TEST(ReconcileDeterminism, SamePlanWhateverTheInsertionOrder) {
  std::vector<MachineView> machines;
  for (int i = 0; i < 20; ++i) {
    machines.push_back(M(absl::StrCat("m", i), {{"zone", absl::StrCat("z", i % 3)}}));
  }
  std::vector<UnitView> units;
  for (int i = 0; i < 200; ++i) {
    FleetOptions options;
    if (i % 5 == 0) options.machine_metadata["zone"] = {"z1"};
    if (i % 7 == 0) options.conflicts = {absl::StrCat("u", i + 1, ".service")};
    if (i % 11 == 0 && i > 0) options.machine_of = {absl::StrCat("u", i - 1, ".service")};
    units.push_back(U(absl::StrCat("u", i, ".service"), i % 13, options));  // revision ties
  }
  const Plan forward = Reconcile(Snapshot(machines, units, {}));
  std::reverse(machines.begin(), machines.end());
  std::reverse(units.begin(), units.end());
  ClusterSnapshot reversed = Snapshot(machines, units, {});
  reversed.units.reserve(4096);  // a different bucket layout, so a different iteration order
  EXPECT_EQ(Reconcile(reversed), forward);
  EXPECT_FALSE(forward.assign.empty());
}

// Checks, by brute force and independently of the scheduler's indexes, that a
// schedule obeys every option.
void ExpectScheduleObeysOptions(const ClusterSnapshot& s) {
  auto matches = [](const std::vector<std::string>& globs, const std::string& name) {
    return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
      return fnmatch(g.c_str(), name.c_str(), 0) == 0;
    });
  };
  for (const auto& [machine_id, machine] : s.machines) {
    const std::vector<std::string> names = Strings(UnitsForMachine(s, machine_id));
    int non_global = 0;
    for (const std::string& name : names) {
      const UnitView& unit = s.units.at(name);
      const FleetOptions& o = *unit.options;
      if (!o.global) ++non_global;
      if (!o.machine_id.empty()) {
        EXPECT_EQ(o.machine_id, machine_id) << name;
      }
      for (const auto& [key, values] : o.machine_metadata) {
        auto it = machine.metadata.find(key);
        ASSERT_NE(it, machine.metadata.end()) << name << " on " << machine_id;
        EXPECT_NE(std::find(values.begin(), values.end(), it->second), values.end()) << name;
      }
      for (const std::string& peer : o.machine_of) {
        EXPECT_TRUE(std::binary_search(names.begin(), names.end(), peer))
            << name << " without its peer " << peer << " on " << machine_id;
      }
      for (const std::string& other : names) {
        if (other == name) continue;
        const UnitView& x = s.units.at(other);
        EXPECT_FALSE(matches(o.conflicts, other) || matches(o.replaces, other) ||
                     matches(x.options->replaces, name))
            << name << " and " << other << " share " << machine_id;
      }
    }
    if (machine.capacity != 0 && non_global > 0) {
      EXPECT_LE(names.size(), machine.capacity) << machine_id;
    }
  }
}

// Random clusters: the plan obeys every option and is a fixed point.
TEST(ReconcileProperty, RandomClustersObeyEveryOption) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    ClusterSnapshot s;
    const int machines = 1 + pick(12);
    for (int i = 0; i < machines; ++i) {
      std::map<std::string, std::string> metadata = {{"zone", absl::StrCat("z", pick(3))}};
      if (pick(2) == 0) metadata["disk"] = pick(2) ? "ssd" : "hdd";
      s.machines[absl::StrCat("m", i)] =
          M(absl::StrCat("m", i), metadata, pick(4) == 0 ? 1 + pick(6) : 0);
    }
    const int units = pick(80);
    for (int i = 0; i < units; ++i) {
      FleetOptions o;
      const std::string name = absl::StrCat(pick(3) ? "web@" : "db@", i, ".service");
      switch (pick(10)) {
        case 0: o.machine_metadata["zone"] = {absl::StrCat("z", pick(3))}; break;
        case 1: o.machine_metadata["disk"] = {"ssd", "hdd"}; break;
        case 2: o.conflicts = {name.substr(0, name.find('@') + 1) + "*.service"}; break;
        case 3: o.machine_of = {absl::StrCat("web@", pick(units), ".service")}; break;
        case 4: o.replaces = {absl::StrCat("db@", pick(units), ".service")}; break;
        case 5: o.machine_id = absl::StrCat("m", pick(machines + 2)); break;
        case 6:
          if (pick(4) == 0) {
            o.global = true;
            if (pick(2)) o.conflicts = {"db@*.service"};
          }
          break;
        default: break;
      }
      s.units[name] = U(name, pick(50), o);
      // Stale entries too: of global units, and of units that are gone.
      if (pick(3) == 0) s.schedule[name] = absl::StrCat("m", pick(machines + 3));
      if (pick(20) == 0) s.schedule[absl::StrCat("gone@", i, ".service")] = "m0";
    }
    const Plan plan = Reconcile(s);
    ExpectEveryEntryChangesTheSchedule(s, plan);
    ApplyPlan(plan, &s);
    SCOPED_TRACE(absl::StrCat("round ", round));
    ExpectScheduleObeysOptions(s);
    for (const auto& [unit, machine] : s.schedule) {
      EXPECT_TRUE(s.units.contains(unit));
      EXPECT_TRUE(s.machines.contains(machine));
      EXPECT_FALSE(plan.unplaceable.contains(unit));
    }
    for (const auto& [unit, view] : s.units) {
      if (!view.options->global) {
        EXPECT_NE(s.schedule.contains(unit), plan.unplaceable.contains(unit)) << unit;
      }
    }
    for (const auto& [unit, reason] : plan.unplaceable) EXPECT_FALSE(reason.empty()) << unit;
    const Plan again = Reconcile(s);
    EXPECT_TRUE(again.assign.empty() && again.unassign.empty());
    EXPECT_EQ(again.unplaceable, plan.unplaceable);
  }
}

// A Reconciler keeps its unit indexes between passes while units_version
// stays the same: through any sequence of changes to units, machines and the
// schedule, each of its plans equals a fresh Reconcile of the same snapshot.
TEST(Reconciler, KeptIndexesGiveTheSamePlanAsAFreshReconcile) {
  std::mt19937 rng(11);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  ClusterSnapshot s;
  int next_machine = 0;
  auto add_machine = [&] {
    const std::string id = absl::StrCat("m", next_machine++);
    s.machines[id] = M(id, {{"zone", absl::StrCat("z", pick(3))}}, pick(5) == 0 ? 1 + pick(8) : 0);
  };
  for (int i = 0; i < 8; ++i) add_machine();
  auto random_unit = [&](int i, int64_t revision) {
    FleetOptions o;
    const std::string name = absl::StrCat(pick(3) ? "web@" : "db@", i, ".service");
    switch (pick(9)) {
      case 0: o.machine_metadata["zone"] = {absl::StrCat("z", pick(3))}; break;
      case 1: o.conflicts = {name.substr(0, name.find('@') + 1) + "*.service"}; break;
      case 2: o.conflicts = {absl::StrCat("web@", pick(60), ".service")}; break;
      case 3: o.machine_of = {absl::StrCat("web@", pick(60), ".service")}; break;
      case 4: o.replaces = {absl::StrCat("db@", pick(60), ".service")}; break;
      case 5: o.global = pick(3) == 0; break;
      default: break;
    }
    return U(name, revision, o);
  };
  Reconciler reconciler;
  int64_t revision = 0;
  int unit_changes = 0;
  for (int step = 0; step < 600; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    switch (pick(8)) {
      case 0:
      case 1: {  // a unit submitted, or one changed (new options, same name)
        UnitView u = random_unit(pick(60), ++revision);
        s.units.insert_or_assign(u.name, u);
        s.units_version.Bump();
        ++unit_changes;
        break;
      }
      case 2:  // a unit destroyed or stopped
        if (!s.units.empty()) {
          auto it = s.units.begin();
          std::advance(it, pick(static_cast<int>(s.units.size())));
          s.units.erase(it);
          s.units_version.Bump();
          ++unit_changes;
        }
        break;
      case 3:  // a machine dies
        if (s.machines.size() > 1) {
          auto it = s.machines.begin();
          std::advance(it, pick(static_cast<int>(s.machines.size())));
          s.machines.erase(it);
        }
        break;
      case 4:  // a machine joins
        add_machine();
        break;
      default:  // nothing changed but the schedule the last plan wrote
        break;
    }
    const Plan kept = reconciler.Reconcile(s);
    ASSERT_EQ(kept, Reconcile(s));
    ApplyPlan(kept, &s);
  }
  EXPECT_GT(unit_changes, 100);
  EXPECT_FALSE(s.schedule.empty());
}

// A ring of Replaces= (a replaces b replaces c replaces a) must not evict
// forever: each unit is evicted at most once per Reconcile.
TEST(ReconcileReplaces, RingEndsAndObeysOptions) {
  for (int machines = 1; machines <= 3; ++machines) {
    std::vector<MachineView> ms;
    for (int i = 0; i < machines; ++i) ms.push_back(M(absl::StrCat("m", i)));
    ClusterSnapshot s = Snapshot(ms,
                                 {U("a.service", 1, Replaces({"b.service"})),
                                  U("b.service", 2, Replaces({"c.service"})),
                                  U("c.service", 3, Replaces({"a.service"}))},
                                 {});
    ApplyPlan(Reconcile(s), &s);
    SCOPED_TRACE(absl::StrCat(machines, " machines"));
    ExpectScheduleObeysOptions(s);
    EXPECT_EQ(s.schedule.size(), static_cast<size_t>(std::min(machines, 3)));
    const Plan again = Reconcile(s);
    EXPECT_TRUE(again.assign.empty() && again.unassign.empty());
  }
}

TEST(UnitsForMachine, ScheduledLoadedUnitsPlusGlobalsSorted) {
  ClusterSnapshot s = Snapshot({M("m1", {{"role", "db"}}), M("m2")},
                               {U("b.service", 1), U("a.service", 2),
                                U("g.service", 3, Global({{"role", {"db"}}}))},
                               {{"b.service", "m1"},
                                {"a.service", "m1"},
                                {"inactive.service", "m1"},
                                {"c.service", "m2"}});
  EXPECT_EQ(Strings(UnitsForMachine(s, "m1")),
            (std::vector<std::string>{"a.service", "b.service", "g.service"}));
  EXPECT_EQ(Strings(UnitsForMachine(s, "m2")), std::vector<std::string>{});
  // A machine that is not alive: what is scheduled there, no globals.
  s.schedule["a.service"] = "gone";
  EXPECT_EQ(Strings(UnitsForMachine(s, "gone")), std::vector<std::string>{"a.service"});
}

TEST(UnitsForMachine, FromAnIndexAndAGlobalSetThatOutlivesItsSnapshot) {
  auto snapshot = std::make_unique<ClusterSnapshot>(
      Snapshot({M("m1", {{"role", "db"}})},
               {U("b.service", 1), U("g.service", 2, Global({{"role", {"db"}}})),
                U("h.service", 3, Global({{"role", {"web"}}}))},
               {{"b.service", "m1"}, {"inactive.service", "m1"}}));
  const GlobalSet globals(*snapshot);
  const ClusterSnapshot kept = *snapshot;
  snapshot.reset();  // the set holds its own copies (AddressSanitizer checks)
  EXPECT_EQ(Strings(UnitsForMachine(kept, "m1", {"b.service", "inactive.service"}, globals)),
            (std::vector<std::string>{"b.service", "g.service"}));
  EXPECT_EQ(UnitsForMachine(kept, "m1", {"b.service", "inactive.service"}, globals),
            UnitsForMachine(kept, "m1"));
}

TEST(RunsOnMachine, AgreesWithTheListForEveryUnitAndMachine) {
  // Scheduled, inactive-but-scheduled, a global that fits one machine, two
  // globals that conflict (the first submitted wins), a machine gone.
  ClusterSnapshot s = Snapshot(
      {M("m1", {{"role", "db"}}), M("m2")},
      {U("a.service", 1), U("b.service", 2), U("g.service", 3, Global({{"role", {"db"}}})),
       U("h.service", 4, Global({})),
       U("i.service", 5, Global({}, {"h.service"}))},
      {{"a.service", "m1"}, {"b.service", "gone"}, {"inactive.service", "m2"}});
  const GlobalSet globals(s);
  for (const std::string machine : {"m1", "m2", "gone"}) {
    NameSet here;
    for (const auto& [unit, on] : s.schedule) {
      if (on == machine) here.insert(unit);
    }
    const std::vector<std::string> list = Strings(UnitsForMachine(s, machine));
    for (const std::string unit : {"a.service", "b.service", "g.service", "h.service", "i.service",
                                   "inactive.service", "unknown.service"}) {
      EXPECT_EQ(RunsOnMachine(s, machine, here, globals, unit),
                std::find(list.begin(), list.end(), unit) != list.end())
          << unit << " on " << machine;
    }
  }
  EXPECT_TRUE(RunsOnMachine(s, "m2", {}, globals, "h.service"));
  EXPECT_FALSE(RunsOnMachine(s, "m2", {}, globals, "i.service"));  // h was submitted first
  EXPECT_FALSE(RunsOnMachine(s, "m2", {}, globals, "g.service"));  // metadata
}

TEST(ApplyPlan, AssignsThenUnassigns) {
  ClusterSnapshot s = Snapshot({}, {}, {{"a", "m1"}, {"b", "m1"}});
  ApplyPlan(Plan{.assign = {{"a", "m2"}, {"c", "m3"}}, .unassign = {"b"}}, &s);
  EXPECT_EQ(AsMap(s.schedule), (Schedule{{"a", "m2"}, {"c", "m3"}}));
}

}  // namespace
}  // namespace fleet
