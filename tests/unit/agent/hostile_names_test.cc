// The agent never writes outside its unit dir, whatever names the engine (or
// something that took its place) sends. Two levels:
//   - the agent's install path (Agent::ApplyFull/ApplyDelta/Reconcile over
//     FakeManager), fed hostile names next to a good unit;
//   - the rule the real file-writing code relies on. SdBusManager::InstallUnit
//     writes UNIT_DIR "/" NAME and UNIT_DIR "/." NAME ".tmp" after
//     ValidateUnitName(NAME) passes; it cannot be built without a D-Bus
//     connection to a systemd manager (its Create connects and subscribes), so
//     here ValidateUnitName is checked against those two path shapes for every
//     hostile name below and for every name over a small alphabet of dangerous
//     characters: whatever it accepts stays a plain file directly in the dir.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/systemd/fake_manager.h"
#include "agent/systemd/unit_name.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kUnitDir[] = "/run/fleet/units";
constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";

const std::vector<std::string>& HostileNames() {
  static const auto* names = new std::vector<std::string>{
      "../x.service",
      "../../etc/systemd/system/x.service",
      "a/b.service",
      "/etc/passwd",
      "/x.service",
      ".service",
      "..service",
      "...service",
      ".x.service",
      "x/..service",
      "x/../../y.service",
      "..",
      ".",
      "",
      std::string("a\0/../../b.service", 18),
      std::string("x.service\0", 10),
      std::string("\0.service", 9),
      "a\n.service",
      "a\\/b.service",
      "x.service/",
      "x.service/..",
      std::string(300, 'a') + ".service",
      "w\xff\xfe.service",
      "\xc0\xaf.service",  // overlong "/"
  };
  return *names;
}

// Whether `path` is lexically a plain entry directly inside kUnitDir.
bool DirectlyInUnitDir(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  return p.parent_path() == kUnitDir && p.filename() != "." && p.filename() != ".." &&
         !p.filename().empty();
}

// The two paths SdBusManager::InstallUnit writes for `name`, when it writes.
std::vector<std::string> WrittenPaths(const std::string& name) {
  return {absl::StrCat(kUnitDir, "/", name), absl::StrCat(kUnitDir, "/.", name, ".tmp")};
}

TEST(HostileNamesTest, ValidateUnitNameRefusesEachHostileName) {
  for (const std::string& name : HostileNames()) {
    absl::Status status = ValidateUnitName(name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(name);
  }
}

TEST(HostileNamesTest, EveryAcceptedNameIsAFileDirectlyInTheUnitDir) {
  // Every name of up to 4 characters over this alphabet, with each suffix: the
  // characters that build paths ('/', '.', NUL, '\\'), the ones systemd
  // allows, and one byte outside ASCII.
  const std::string alphabet(std::string("a./\\@-:_\0\xff", 10));
  std::vector<std::string> names = {""};
  for (int length = 1; length <= 4; ++length) {
    std::vector<std::string> longer;
    for (const std::string& base : names) {
      if (base.size() + 1 != static_cast<size_t>(length)) continue;
      for (char c : alphabet) longer.push_back(base + c);
    }
    names.insert(names.end(), longer.begin(), longer.end());
  }
  int accepted = 0;
  int checked = 0;
  for (const std::string& stem : names) {
    for (const char* suffix : {".service", ".timer", "/.service", ""}) {
      std::string name = stem + suffix;
      ++checked;
      if (!ValidateUnitName(name).ok()) continue;
      ++accepted;
      EXPECT_EQ(name.find('\0'), std::string::npos) << absl::CHexEscape(name);
      for (const std::string& path : WrittenPaths(name)) {
        EXPECT_TRUE(DirectlyInUnitDir(path)) << absl::CHexEscape(path);
      }
    }
  }
  // The check above must have seen both kinds of names.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(checked - accepted, 1000);
  for (const std::string& name : HostileNames()) {
    if (ValidateUnitName(name).ok()) ADD_FAILURE() << "accepted " << absl::CHexEscape(name);
  }
}

TEST(HostileNamesTest, FakeManagerInstallsAndRemovesNothingForAHostileName) {
  FakeClock clock;
  FakeManager manager(&clock);
  ASSERT_TRUE(manager.InstallUnit("web.service", kPlain).ok());
  for (const std::string& name : HostileNames()) {
    EXPECT_EQ(manager.InstallUnit(name, "[Service]\nExecStart=/bin/evil\n").code(),
              absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(name);
    EXPECT_EQ(manager.RemoveUnit(name).code(), absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(name);
  }
  absl::StatusOr<std::map<std::string, std::string>> installed = manager.ListInstalled();
  ASSERT_TRUE(installed.ok());
  ASSERT_EQ(installed->size(), 1u);
  EXPECT_EQ(installed->at("web.service"), kPlain);
}

fleet::v1::ScheduledUnit Scheduled(const std::string& name) {
  fleet::v1::ScheduledUnit unit;
  unit.set_name(name);
  unit.set_contents("[Service]\nExecStart=/bin/evil\n");
  unit.set_hash("0123456789012345678901234567890123456789");
  unit.set_desired_state(fleet::v1::DESIRED_STATE_LAUNCHED);
  return unit;
}

TEST(HostileNamesTest, AgentRefusesHostileScheduleEntriesAndRunsTheRest) {
  FakeClock clock;
  FakeManager manager(&clock);
  Agent agent(&manager, "m1");
  ASSERT_TRUE(agent.Adopt().ok());

  fleet::v1::ScheduleFull full;
  fleet::v1::ScheduledUnit good = Scheduled("web.service");
  good.set_contents(kPlain);
  *full.add_units() = good;
  for (const std::string& name : HostileNames()) *full.add_units() = Scheduled(name);
  absl::Status applied = agent.ApplyFull(full);
  EXPECT_EQ(applied.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(applied.message()), HasSubstr("../x.service"));
  ASSERT_TRUE(agent.Reconcile().ok());

  absl::StatusOr<std::map<std::string, std::string>> installed = manager.ListInstalled();
  ASSERT_TRUE(installed.ok());
  std::vector<std::string> names;
  for (const auto& [name, contents] : *installed) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("web.service"));
  EXPECT_EQ(manager.starts("web.service"), 1);

  // A delta that adds hostile names and removes others changes nothing but
  // what it may: web.service stays installed and running.
  fleet::v1::ScheduleDelta delta;
  for (const std::string& name : HostileNames()) {
    *delta.add_upserts() = Scheduled(name);
    delta.add_removes(name);
  }
  EXPECT_EQ(agent.ApplyDelta(delta).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(agent.Reconcile().ok());
  installed = manager.ListInstalled();
  ASSERT_TRUE(installed.ok());
  ASSERT_EQ(installed->size(), 1u);
  EXPECT_EQ(installed->at("web.service"), kPlain);
  EXPECT_EQ(manager.starts("web.service"), 1);
}

}  // namespace
}  // namespace fleet::agent
