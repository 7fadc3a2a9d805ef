// A unit's life through fleetctl on a real sandbox cluster: submit, load,
// start, stop, unload, destroy; what fleetctl lists agrees with what the
// host's own systemd says.

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sandbox_cluster.h"

namespace fleet::test {
namespace {

TEST(LifecycleTest, SubmitLoadStartStopUnloadDestroy) {
  auto cluster = SandboxCluster::Up(WithHosts(2));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  SandboxCluster& c = **cluster;
  std::string path = WriteUnit("hello.service",
                               "[Unit]\nDescription=Hello\n[Service]\n"
                               "ExecStart=/bin/sh -c 'echo hello; exec sleep 1000'\n");

  CommandOutput out = c.Fleetctl("submit " + path);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  out = c.Fleetctl("list-unit-files --no-legend --fields=unit,dstate");
  EXPECT_EQ(out.text, "hello.service\tinactive\n");

  out = c.Fleetctl("load hello.service --block-attempts=100");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "Unit hello.service loaded on ")) << out.text;

  out = c.Fleetctl("start hello.service --block-attempts=100");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "Unit hello.service launched on ")) << out.text;

  out = c.Fleetctl("list-units --no-legend --full --fields=unit,machine,active,sub");
  std::vector<std::string> cells = absl::StrSplit(absl::StripTrailingAsciiWhitespace(out.text),
                                                  '\t', absl::SkipEmpty());
  ASSERT_EQ(cells.size(), 4u) << out.text;
  EXPECT_EQ(cells[0], "hello.service");
  EXPECT_EQ(cells[2], "active");
  EXPECT_EQ(cells[3], "running");
  int host = HostOf(c, 2, std::vector<std::string>(absl::StrSplit(cells[1], '/'))[0]);
  ASSERT_NE(host, 0) << out.text;
  // The host's own systemd agrees, and the other host does not run it.
  EXPECT_EQ(c.Exec(host, "systemctl --user is-active hello.service").text, "active\n");
  EXPECT_NE(c.Exec(3 - host, "systemctl --user is-active hello.service").text, "active\n");

  out = c.Fleetctl("stop hello.service --block-attempts=100");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(c.Exec(host, "systemctl --user is-active hello.service").text, "inactive\n");
  out = c.Fleetctl("list-unit-files --no-legend --fields=unit,dstate,state");
  EXPECT_EQ(out.text, "hello.service\tloaded\tloaded\n");

  out = c.Fleetctl("unload hello.service --block-attempts=100");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(c.Exec(host, "systemctl --user show -p LoadState --value hello.service").text,
            "not-found\n");

  out = c.Fleetctl("destroy hello.service");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "Destroyed hello.service\n");
  EXPECT_EQ(c.Fleetctl("list-unit-files --no-legend").text, "");
}

TEST(LifecycleTest, UnplaceableUnitEndsTheWaitWithItsReason) {
  auto cluster = SandboxCluster::Up(WithHosts(1));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::string path = WriteUnit("gpu.service",
                               "[Service]\nExecStart=/bin/sleep 1000\n"
                               "[X-Fleet]\nMachineMetadata=gpu=yes\n");
  CommandOutput out = (*cluster)->Fleetctl("start " + path + " --block-attempts=100");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(out.text, "gpu.service")) << out.text;
  EXPECT_TRUE(absl::StrContains(out.text, "gpu")) << out.text;
}

}  // namespace
}  // namespace fleet::test
