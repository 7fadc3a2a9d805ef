// Golden outputs of every listing in table, JSON and YAML.

#include "fleetctl/commands/listings.h"

#include <algorithm>

#include "fleetctl/context.h"

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

const char kMachineA[] = "aaaaaaaa11112222333344445555666";
const char kMachineB[] = "bbbbbbbb11112222333344445555666";

std::vector<v1::UnitStatus> States() {
  std::vector<v1::UnitStatus> states(3);
  states[0].set_name("web@1.service");
  states[0].set_machine_id(kMachineA);
  states[0].set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  states[0].set_hash("0123456789abcdef0123456789abcdef01234567");
  auto* s = states[0].mutable_state();
  s->set_load_state("loaded");
  s->set_active_state("active");
  s->set_sub_state("running");
  s->set_main_pid(4242);
  s->set_unit_hash("0123456789abcdef0123456789abcdef01234567");
  states[1].set_name("db.service");
  states[1].set_machine_id(kMachineB);
  states[1].set_desired_state(v1::DESIRED_STATE_LOADED);
  states[1].set_hash("fedcba9876543210fedcba9876543210fedcba98");
  states[2].set_name("gpu.service");
  states[2].set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  states[2].set_unscheduled_reason("no machine matches MachineMetadata gpu=yes");
  return states;
}

MachineIps Ips() { return {{kMachineA, "127.0.0.2"}, {kMachineB, "127.0.0.3"}}; }

TEST(UnitStatesListingTest, Table) {
  Listing all = UnitStatesListing(States(), Ips(), /*full=*/false);
  auto picked = SelectFields(all, "unit,machine,active,sub");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(FormatTable(*picked, true),
            "UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\n"
            "web@1.service\taaaaaaaa.../127.0.0.2\tactive\trunning\n"
            "db.service\tbbbbbbbb.../127.0.0.3\t-\t-\n"
            "gpu.service\t-\t\t\t-\t-\n");
}

TEST(UnitStatesListingTest, AllFieldsJson) {
  Listing all = UnitStatesListing(States(), Ips(), /*full=*/true);
  EXPECT_EQ(FormatJson(all),
            "[\n"
            "  {\"unit\": \"web@1.service\", \"machine\": "
            "\"aaaaaaaa11112222333344445555666/127.0.0.2\", \"active\": \"active\", \"sub\": "
            "\"running\", \"load\": \"loaded\", \"hash\": "
            "\"0123456789abcdef0123456789abcdef01234567\", \"pid\": \"4242\", \"dstate\": "
            "\"launched\", \"reason\": \"-\"},\n"
            "  {\"unit\": \"db.service\", \"machine\": "
            "\"bbbbbbbb11112222333344445555666/127.0.0.3\", \"active\": \"-\", \"sub\": \"-\", "
            "\"load\": \"-\", \"hash\": \"fedcba9876543210fedcba9876543210fedcba98\", \"pid\": "
            "\"-\", \"dstate\": \"loaded\", \"reason\": \"-\"},\n"
            "  {\"unit\": \"gpu.service\", \"machine\": \"-\", \"active\": \"-\", \"sub\": "
            "\"-\", \"load\": \"-\", \"hash\": \"-\", \"pid\": \"-\", \"dstate\": "
            "\"launched\", \"reason\": \"no machine matches MachineMetadata gpu=yes\"}\n"
            "]\n");
}

TEST(UnitFilesListingTest, TableAndYaml) {
  std::vector<v1::Unit> units(2);
  units[0].set_name("web@1.service");
  units[0].set_contents("[Unit]\nDescription=Web one\n[Service]\nExecStart=/bin/true\n");
  units[0].set_hash("0123456789abcdef0123456789abcdef01234567");
  units[0].set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  units[1].set_name("everywhere.service");
  units[1].set_contents("[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n");
  units[1].set_hash("1111111111111111111111111111111111111111");
  units[1].set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  Listing all = UnitFilesListing(units, States(), Ips(), /*full=*/false);
  auto picked = SelectFields(all, "unit,hash,dstate,state,target");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(FormatTable(*picked, true),
            "UNIT\t\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\n"
            "web@1.service\t\t0123456\tlaunched\tlaunched\taaaaaaaa.../127.0.0.2\n"
            "everywhere.service\t1111111\tlaunched\t-\t\tglobal\n");
  auto desc = SelectFields(all, "unit,global,desc");
  ASSERT_TRUE(desc.ok());
  EXPECT_EQ(FormatYaml(*desc),
            "- unit: \"web@1.service\"\n"
            "  global: \"false\"\n"
            "  desc: \"Web one\"\n"
            "- unit: \"everywhere.service\"\n"
            "  global: \"true\"\n"
            "  desc: \"-\"\n");
}

std::vector<v1::Machine> TwoMachines() {
  std::vector<v1::Machine> machines(2);
  machines[0].set_id(kMachineA);
  machines[0].set_public_ip("127.0.0.2");
  (*machines[0].mutable_metadata())["region"] = "east";
  (*machines[0].mutable_metadata())["disk"] = "ssd";
  machines[0].set_units(3);
  machines[0].set_agent_version("0.1.0");
  machines[1].set_id(kMachineB);
  return machines;
}

TEST(MachinesListingTest, MetadataSortedAndJoined) {
  Listing all = MachinesListing(TwoMachines(), /*full=*/false);
  auto picked = SelectFields(all, "machine,ip,metadata");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(FormatTable(*picked, true),
            "MACHINE\t\tIP\t\tMETADATA\n"
            "aaaaaaaa...\t127.0.0.2\tdisk=ssd,region=east\n"
            "bbbbbbbb...\t-\t\t-\n");
}

std::string RenderWith(std::vector<std::string> args, const Listing& all) {
  CLI::App app{"test"};
  ListingFlags flags;
  flags.Add(app, "unit");
  std::reverse(args.begin(), args.end());
  app.parse(args);
  auto text = flags.Render(all);
  return text.ok() ? *text : std::string(text.status().message());
}

TEST(ListingFlagsTest, JsonAndYamlCarryEveryFieldUnlessFieldsGiven) {
  Listing all{{"unit", "machine"}, {{"a.service", "m1"}}};
  EXPECT_EQ(RenderWith({}, all), "UNIT\na.service\n");
  EXPECT_EQ(RenderWith({"-o", "json"}, all),
            "[\n  {\"unit\": \"a.service\", \"machine\": \"m1\"}\n]\n");
  EXPECT_EQ(RenderWith({"-o", "json", "--fields", "machine"}, all),
            "[\n  {\"machine\": \"m1\"}\n]\n");
  EXPECT_EQ(RenderWith({"--output", "xml"}, all),
            "unknown --output \"xml\": use table, json or yaml");
}

// `-o json` / `-o yaml` of each listing as a script reads it: every field,
// through the same flags the commands use.

TEST(UnitStatesListingTest, AllFieldsYaml) {
  Listing all = UnitStatesListing(States(), Ips(), /*full=*/false);
  EXPECT_EQ(RenderWith({"-o", "yaml"}, all),
            "- unit: \"web@1.service\"\n"
            "  machine: \"aaaaaaaa.../127.0.0.2\"\n"
            "  active: \"active\"\n"
            "  sub: \"running\"\n"
            "  load: \"loaded\"\n"
            "  hash: \"0123456\"\n"
            "  pid: \"4242\"\n"
            "  dstate: \"launched\"\n"
            "  reason: \"-\"\n"
            "- unit: \"db.service\"\n"
            "  machine: \"bbbbbbbb.../127.0.0.3\"\n"
            "  active: \"-\"\n"
            "  sub: \"-\"\n"
            "  load: \"-\"\n"
            "  hash: \"fedcba9\"\n"
            "  pid: \"-\"\n"
            "  dstate: \"loaded\"\n"
            "  reason: \"-\"\n"
            "- unit: \"gpu.service\"\n"
            "  machine: \"-\"\n"
            "  active: \"-\"\n"
            "  sub: \"-\"\n"
            "  load: \"-\"\n"
            "  hash: \"-\"\n"
            "  pid: \"-\"\n"
            "  dstate: \"launched\"\n"
            "  reason: \"no machine matches MachineMetadata gpu=yes\"\n");
}

TEST(UnitFilesListingTest, AllFieldsJson) {
  std::vector<v1::Unit> units(2);
  units[0].set_name("web@1.service");
  units[0].set_contents("[Unit]\nDescription=Web \"one\"\n[Service]\nExecStart=/bin/true\n");
  units[0].set_hash("0123456789abcdef0123456789abcdef01234567");
  units[0].set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  units[1].set_name("db.service");
  units[1].set_contents("[Service]\nExecStart=/bin/true\n");
  units[1].set_hash("fedcba9876543210fedcba9876543210fedcba98");
  units[1].set_desired_state(v1::DESIRED_STATE_LOADED);
  Listing all = UnitFilesListing(units, States(), Ips(), /*full=*/true);
  EXPECT_EQ(RenderWith({"--output", "json"}, all),
            "[\n"
            "  {\"unit\": \"web@1.service\", \"hash\": "
            "\"0123456789abcdef0123456789abcdef01234567\", \"dstate\": \"launched\", "
            "\"state\": \"launched\", \"target\": "
            "\"aaaaaaaa11112222333344445555666/127.0.0.2\", \"global\": \"false\", "
            "\"desc\": \"Web \\\"one\\\"\"},\n"
            "  {\"unit\": \"db.service\", \"hash\": "
            "\"fedcba9876543210fedcba9876543210fedcba98\", \"dstate\": \"loaded\", "
            "\"state\": \"inactive\", \"target\": "
            "\"bbbbbbbb11112222333344445555666/127.0.0.3\", \"global\": \"false\", "
            "\"desc\": \"-\"}\n"
            "]\n");
}

TEST(MachinesListingTest, AllFieldsJson) {
  EXPECT_EQ(RenderWith({"-o", "json"}, MachinesListing(TwoMachines(), /*full=*/false)),
            "[\n"
            "  {\"machine\": \"aaaaaaaa...\", \"ip\": \"127.0.0.2\", \"metadata\": "
            "\"disk=ssd,region=east\", \"units\": \"3\", \"version\": \"0.1.0\"},\n"
            "  {\"machine\": \"bbbbbbbb...\", \"ip\": \"-\", \"metadata\": \"-\", "
            "\"units\": \"0\", \"version\": \"-\"}\n"
            "]\n");
}

TEST(MachinesListingTest, AllFieldsYamlFull) {
  EXPECT_EQ(RenderWith({"-o", "yaml", "-l"}, MachinesListing(TwoMachines(), /*full=*/true)),
            "- machine: \"aaaaaaaa11112222333344445555666\"\n"
            "  ip: \"127.0.0.2\"\n"
            "  metadata: \"disk=ssd,region=east\"\n"
            "  units: \"3\"\n"
            "  version: \"0.1.0\"\n"
            "- machine: \"bbbbbbbb11112222333344445555666\"\n"
            "  ip: \"-\"\n"
            "  metadata: \"-\"\n"
            "  units: \"0\"\n"
            "  version: \"-\"\n");
}

}  // namespace
}  // namespace fleet::ctl
