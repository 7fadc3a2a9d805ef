// fleetctl ssh: which machine an argument names (fleet's rules: machine-id
// prefixes, units resolved to their machine), the argv handed to ssh, and the
// usage errors caught before the engine is asked.

#include "fleetctl/commands/ssh.h"

#include <sstream>

#include "absl/strings/match.h"
#include "fleetctl/app.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char kA[] = "c31e44e1f858436e933e59c642517860";
const char kA2[] = "c31e99aa00000000000000000000000";  // shares "c31e" with kA
const char kB[] = "595989bbcbb749ce8726722d6e157b4e";
const char kNoIp[] = "77777777000000000000000000000000";

std::vector<v1::Machine> Machines() {
  std::vector<v1::Machine> machines(4);
  machines[0].set_id(kA);
  machines[0].set_public_ip("10.0.0.1");
  machines[1].set_id(kA2);
  machines[1].set_public_ip("10.0.0.2");
  machines[2].set_id(kB);
  machines[2].set_public_ip("10.0.0.3");
  machines[3].set_id(kNoIp);
  return machines;
}

v1::UnitStatus Status(const std::string& name, const std::string& machine,
                      const std::string& reason = "") {
  v1::UnitStatus s;
  s.set_name(name);
  s.set_machine_id(machine);
  s.set_unscheduled_reason(reason);
  return s;
}

std::vector<v1::UnitStatus> States() {
  return {
      Status("web@1.service", kB),
      Status("j1.service", kA),
      Status("gpu.service", "", "no machine matches MachineMetadata gpu=yes"),
      Status("idle.service", ""),
      Status("everywhere.service", kA),
      Status("everywhere.service", kB),
      Status("orphan.service", "deadbeef000000000000000000000000"),
      Status("c31e.service", kA2),  // "c31e" is a machine prefix and a unit
      Status("7.service", kNoIp),
  };
}

absl::StatusOr<SshTarget> Resolve(const std::string& arg, SshLookup lookup = SshLookup::kAuto) {
  return ResolveSshTarget(Machines(), States(), arg, lookup);
}

TEST(ResolveSshTargetTest, FullMachineId) {
  auto target = Resolve(kB);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->machine_id, kB);
  EXPECT_EQ(target->address, "10.0.0.3");
}

TEST(ResolveSshTargetTest, UniqueMachineIdPrefix) {
  auto target = Resolve("5959");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->address, "10.0.0.3");
  target = Resolve("c31e4");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->machine_id, kA);
}

TEST(ResolveSshTargetTest, AmbiguousPrefixListsTheCandidates) {
  auto target = Resolve("c31", SshLookup::kMachine);
  ASSERT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument) << target.status();
  EXPECT_THAT(target.status().message(), HasSubstr("ambiguous"));
  EXPECT_THAT(target.status().message(), HasSubstr(kA));
  EXPECT_THAT(target.status().message(), HasSubstr(kA2));
  // Without --machine too, when no unit has that name.
  target = Resolve("c31");
  EXPECT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument) << target.status();
}

TEST(ResolveSshTargetTest, UnknownMachine) {
  auto target = Resolve("ffff", SshLookup::kMachine);
  EXPECT_EQ(target.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(target.status().message(), HasSubstr("ffff"));
}

TEST(ResolveSshTargetTest, UnitResolvesToItsMachine) {
  auto target = Resolve("web@1.service");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->machine_id, kB);
  EXPECT_EQ(target->address, "10.0.0.3");
}

TEST(ResolveSshTargetTest, UnitNameWithoutSuffixIsAService) {
  auto target = Resolve("j1", SshLookup::kUnit);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->address, "10.0.0.1");
}

TEST(ResolveSshTargetTest, UnknownArgumentIsNeitherMachineNorUnit) {
  auto target = Resolve("asdf");
  EXPECT_EQ(target.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(target.status().message(), "no machine or unit matches \"asdf\"");
  target = Resolve("asdf", SshLookup::kUnit);
  EXPECT_EQ(target.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(target.status().message(), "unit asdf.service does not exist");
}

TEST(ResolveSshTargetTest, UnplacedUnitSaysWhy) {
  auto target = Resolve("gpu.service");
  ASSERT_EQ(target.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(target.status().message(),
            "unit gpu.service is not scheduled to any machine: no machine matches "
            "MachineMetadata gpu=yes");
  target = Resolve("idle.service");
  EXPECT_EQ(target.status().message(), "unit idle.service is not scheduled to any machine");
}

TEST(ResolveSshTargetTest, GlobalUnitIsRefusedWithItsMachines) {
  auto target = Resolve("everywhere.service");
  ASSERT_EQ(target.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(target.status().message(), HasSubstr("global"));
  EXPECT_THAT(target.status().message(), HasSubstr(kA));
  EXPECT_THAT(target.status().message(), HasSubstr(kB));
}

TEST(ResolveSshTargetTest, UnitOnAMachineThatIsGone) {
  auto target = Resolve("orphan.service");
  ASSERT_EQ(target.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(target.status().message(), HasSubstr("not connected"));
}

TEST(ResolveSshTargetTest, BothMachineAndUnitIsAmbiguousUnlessForced) {
  auto target = Resolve("c31e");  // the unit c31e.service, and machines kA, kA2
  // The prefix alone is ambiguous, so only the unit matches: no conflict.
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->machine_id, kA2);

  target = Resolve("c31e4");  // machine kA, and no unit c31e4.service
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->machine_id, kA);

  std::vector<v1::UnitStatus> states = States();
  states.push_back(Status("5959.service", kA));
  auto both = ResolveSshTarget(Machines(), states, "5959", SshLookup::kAuto);
  ASSERT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(both.status().message(), HasSubstr("--machine or --unit"));
  auto machine = ResolveSshTarget(Machines(), states, "5959", SshLookup::kMachine);
  ASSERT_TRUE(machine.ok()) << machine.status();
  EXPECT_EQ(machine->machine_id, kB);
  auto unit = ResolveSshTarget(Machines(), states, "5959", SshLookup::kUnit);
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->machine_id, kA);
}

TEST(ResolveSshTargetTest, ForcedMachineIgnoresUnits) {
  auto target = Resolve("web@1.service", SshLookup::kMachine);
  EXPECT_EQ(target.status().code(), absl::StatusCode::kNotFound);
}

TEST(ResolveSshTargetTest, MachineWithoutPublicIp) {
  auto target = Resolve("7777");
  ASSERT_EQ(target.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(target.status().message(), HasSubstr("no public IP"));
  target = Resolve("7.service");
  EXPECT_EQ(target.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ResolveSshTargetTest, EmptyArgument) {
  EXPECT_EQ(Resolve("", SshLookup::kMachine).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SshArgvTest, Defaults) {
  EXPECT_THAT(SshArgv(SshOptions{}, "10.0.0.1", {}),
              ElementsAre("ssh", "-p", "22", "--", "10.0.0.1"));
}

TEST(SshArgvTest, EveryOptionAndACommand) {
  SshOptions options;
  options.forward_agent = true;
  options.port = 2222;
  options.user = "core";
  EXPECT_THAT(SshArgv(options, "10.0.0.1", {"ls", "-l", "/tmp"}),
              ElementsAre("ssh", "-A", "-p", "2222", "-l", "core", "--", "10.0.0.1", "ls", "-l",
                          "/tmp"));
}

TEST(TrimToDashesTest, WordsAfterTheFirstDashes) {
  EXPECT_THAT(TrimToDashes({"ls", "-l"}), ElementsAre("ls", "-l"));
  EXPECT_THAT(TrimToDashes({"--", "ls", "--", "x"}), ElementsAre("ls", "--", "x"));
  EXPECT_THAT(TrimToDashes({"a", "--"}), ElementsAre());
}

struct Result {
  int code;
  std::string err;
};

// Usage errors that end `fleetctl ssh` before any engine is asked (the
// endpoint is a closed port, so reaching the engine would fail differently).
Result RunSsh(std::vector<std::string> args) {
  args.insert(args.begin(),
              {"fleetctl", "--endpoint", "127.0.0.1:1", "--insecure", "--request-timeout", "2s", "ssh"});
  std::ostringstream out, err;
  int code = RunFleetctl(args, out, err, /*out_is_terminal=*/false);
  return {code, err.str()};
}

TEST(SshCommandTest, NeedsATarget) {
  Result r = RunSsh({});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("name one machine or unit"));
}

TEST(SshCommandTest, MachineAndUnitTogetherIsAUsageError) {
  Result r = RunSsh({"--machine", "abc", "--unit", "web.service"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("both --machine and --unit"));
}

TEST(SshCommandTest, UnknownFlagIsNamed) {
  Result r = RunSsh({"--bogus", "abc"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --bogus"));
}

TEST(SshCommandTest, PortOutOfRange) {
  Result r = RunSsh({"--ssh-port", "70000", "abc"});
  EXPECT_EQ(r.code, 2);
}

TEST(SshCommandTest, UnreachableEngineIsOneLine) {
  Result r = RunSsh({"abc"});
  EXPECT_EQ(r.code, 1);
  // --insecure's warning line, then the error in one line.
  EXPECT_EQ(r.err.rfind("Warning: --insecure", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("\nError: cannot reach the engine at 127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
}

}  // namespace
}  // namespace fleet::ctl
