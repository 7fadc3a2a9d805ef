#pragma once

// Helpers shared by the e2e tests: unit files (tests/support/unit_files.h),
// and where fleetctl says units run, as host numbers of a SandboxCluster.

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/support/sandbox_cluster.h"
#include "tests/support/unit_files.h"

namespace fleet::test {

// A service that runs until stopped, with `xfleet` as its [X-Fleet] section.
inline std::string SleepUnit(const std::string& name, const std::string& xfleet) {
  return WriteUnit(name, absl::StrCat("[Service]\nExecStart=/bin/sleep 100000\n[X-Fleet]\n",
                                      xfleet));
}

// The number of the host (1..hosts) whose machine id starts with `machine`
// (the part of list-units' MACHINE column before '/'), 0 if none.
inline int HostOf(const SandboxCluster& cluster, int hosts, const std::string& machine) {
  std::string id = std::vector<std::string>(absl::StrSplit(machine, '/'))[0];
  for (int h = 1; h <= hosts; ++h) {
    if (!id.empty() && absl::StartsWith(cluster.MachineId(h), id)) return h;
  }
  return 0;
}

// Parses `list-units --fields=unit,machine,active` output (columns padded
// with tabs) into
// unit -> hosts where it is active (a global unit has several).
inline std::map<std::string, std::vector<int>> ActiveHosts(const SandboxCluster& cluster,
                                                           int hosts, const std::string& text) {
  std::map<std::string, std::vector<int>> result;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> cells = absl::StrSplit(line, '\t', absl::SkipEmpty());
    if (cells.size() != 3 || cells[2] != "active") continue;
    result[cells[0]].push_back(HostOf(cluster, hosts, cells[1]));
  }
  for (auto& [unit, list] : result) std::sort(list.begin(), list.end());
  return result;
}

// Polls list-units until `want` (unit -> sorted hosts) is exactly what is
// active; returns what was active last.
inline std::map<std::string, std::vector<int>> WaitForActive(
    const SandboxCluster& cluster, int hosts,
    const std::map<std::string, std::vector<int>>& want,
    absl::Duration timeout = absl::Seconds(60)) {
  std::map<std::string, std::vector<int>> got;
  cluster.WaitForListUnits(
      "unit,machine,active",
      [&](const std::string& text) {
        got = ActiveHosts(cluster, hosts, text);
        return got == want;
      },
      timeout);
  return got;
}

// `systemctl --user is-active UNIT` inside host `host`, without the newline.
inline std::string IsActive(const SandboxCluster& cluster, int host, const std::string& unit) {
  return std::string(absl::StripTrailingAsciiWhitespace(
      cluster.Exec(host, "systemctl --user is-active " + unit).text));
}

// `systemctl --user show -p MainPID --value UNIT` inside host `host`.
inline std::string MainPid(const SandboxCluster& cluster, int host, const std::string& unit) {
  return std::string(absl::StripTrailingAsciiWhitespace(
      cluster.Exec(host, "systemctl --user show -p MainPID --value " + unit).text));
}

// Every unit of `units` is active on exactly one host (1..hosts), per the
// hosts' own systemd.
inline void ExpectEachActiveOnce(const SandboxCluster& cluster, int hosts,
                                 const std::vector<std::string>& units) {
  for (const std::string& unit : units) {
    int active = 0;
    for (int h = 1; h <= hosts; ++h) active += IsActive(cluster, h, unit) == "active";
    EXPECT_EQ(active, 1) << unit;
  }
}

}  // namespace fleet::test
