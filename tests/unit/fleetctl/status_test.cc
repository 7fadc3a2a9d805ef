// Golden outputs of `fleetctl status`: systemctl-like text, and the listing in
// table, JSON and YAML.

#include "fleetctl/commands/status.h"

#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

const char kMachine[] = "aaaaaaaa11112222333344445555666";

absl::Time At(int h, int m, int s) {
  return absl::FromCivil(absl::CivilSecond(2026, 11, 27, h, m, s), absl::UTCTimeZone());
}

v1::GetUnitStatusResponse Running() {
  v1::GetUnitStatusResponse status;
  status.mutable_unit()->set_name("web.service");
  status.mutable_unit()->set_machine_id(kMachine);
  status.mutable_unit()->set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  v1::UnitDetail* detail = status.mutable_detail();
  v1::UnitState* state = detail->mutable_state();
  state->set_load_state("loaded");
  state->set_active_state("active");
  state->set_sub_state("running");
  state->set_main_pid(4242);
  state->set_since_unix_micros(absl::ToUnixMicros(At(5, 12, 1)));
  detail->set_description("Web server");
  detail->set_fragment_path("/run/fleet/units/web.service");
  detail->set_unit_file_state("linked-runtime");
  detail->set_has_memory(true);
  detail->set_memory_bytes(1536 * 1024);
  detail->set_has_tasks(true);
  detail->set_tasks(2);
  detail->add_journal()->set_line("Nov 27 05:12:01 host1 web[4242]: listening on :80");
  detail->add_journal()->set_line("Nov 27 05:13:00 host1 web[4242]: GET /");
  return status;
}

v1::GetUnitStatusResponse Failed() {
  v1::GetUnitStatusResponse status;
  status.mutable_unit()->set_name("job.service");
  status.mutable_unit()->set_machine_id(kMachine);
  status.mutable_unit()->set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  v1::UnitState* state = status.mutable_detail()->mutable_state();
  state->set_load_state("loaded");
  state->set_active_state("failed");
  state->set_sub_state("failed");
  state->set_exit_status(3);
  return status;
}

MachineIps Ips() { return {{kMachine, "127.0.0.2"}}; }

TEST(StatusTextTest, LooksLikeSystemctlStatus) {
  EXPECT_EQ(FormatStatusText(Running(), Ips(), false, At(5, 15, 3), absl::UTCTimeZone()),
            "\u25cf web.service - Web server\n"
            "     Loaded: loaded (/run/fleet/units/web.service; linked-runtime)\n"
            "     Active: active (running) since Fri 2026-11-27 05:12:01 UTC; 3min 2s ago\n"
            "   Main PID: 4242\n"
            "      Tasks: 2\n"
            "     Memory: 1.5M\n"
            "    Machine: aaaaaaaa.../127.0.0.2\n"
            "\n"
            "Nov 27 05:12:01 host1 web[4242]: listening on :80\n"
            "Nov 27 05:13:00 host1 web[4242]: GET /\n");
}

TEST(StatusTextTest, FailedUnitShowsItsExitStatusAndNoLog) {
  EXPECT_EQ(FormatStatusText(Failed(), Ips(), true, At(6, 0, 0), absl::UTCTimeZone()),
            "\u00d7 job.service\n"
            "     Loaded: loaded\n"
            "     Active: failed (failed)\n"
            "Exit status: 3\n"
            "    Machine: aaaaaaaa11112222333344445555666/127.0.0.2\n");
}

TEST(StatusListingTest, TableJsonYaml) {
  Listing all = StatusListing({Running(), Failed()}, Ips(), false);
  auto picked = SelectFields(all, "unit,machine,active,sub,pid,since");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(FormatTable(*picked, true),
            "UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\tPID\tSINCE\n"
            "web.service\taaaaaaaa.../127.0.0.2\tactive\trunning\t4242\t2026-11-27T05:12:01Z\n"
            "job.service\taaaaaaaa.../127.0.0.2\tfailed\tfailed\t-\t-\n");
  auto some = SelectFields(all, "unit,exit,memory,log");
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(FormatJson(*some),
            "[\n"
            "  {\"unit\": \"web.service\", \"exit\": \"0\", \"memory\": \"1572864\", \"log\": "
            "\"Nov 27 05:12:01 host1 web[4242]: listening on :80\\nNov 27 05:13:00 host1 "
            "web[4242]: GET /\"},\n"
            "  {\"unit\": \"job.service\", \"exit\": \"3\", \"memory\": \"-\", \"log\": \"\"}\n"
            "]\n");
  auto yaml = SelectFields(all, "unit,active,dstate,description");
  ASSERT_TRUE(yaml.ok());
  EXPECT_EQ(FormatYaml(*yaml),
            "- unit: \"web.service\"\n"
            "  active: \"active\"\n"
            "  dstate: \"launched\"\n"
            "  description: \"Web server\"\n"
            "- unit: \"job.service\"\n"
            "  active: \"failed\"\n"
            "  dstate: \"launched\"\n"
            "  description: \"-\"\n");
}

TEST(StatusFormatTest, BytesAndTimespans) {
  EXPECT_EQ(FormatBytes(512), "512B");
  EXPECT_EQ(FormatBytes(356 * 1024), "356.0K");
  EXPECT_EQ(FormatBytes(2ull * 1024 * 1024 * 1024), "2.0G");
  EXPECT_EQ(FormatAgo(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAgo(absl::Seconds(182)), "3min 2s");
  EXPECT_EQ(FormatAgo(absl::Hours(2) + absl::Minutes(5)), "2h 5min");
  EXPECT_EQ(FormatAgo(absl::Hours(76)), "3 days 4h");
}

}  // namespace
}  // namespace fleet::ctl
