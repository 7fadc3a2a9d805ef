// agent_bench: on one real sandbox host (systemd user manager), the time from
// the schedule arriving at fleet-agent to all of N units active, against the
// physical floor (the same units written by hand, one daemon-reload, one
// `systemctl --user start` of all of them, until all are active), and the
// agent's resident memory idle and with N units. Medians of several runs.
// Prints figures beside the goals; never passes or fails on time.
//
//   agent_bench [--units 100,500,1000] [--runs 3]
// Needs root (sandbox hosts).

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/fake_engine.h"
#include "tests/support/sandbox_host.h"

namespace {

using fleet::test::FakeEngine;
using fleet::test::SandboxHost;

constexpr char kUnit[] = "[Service]\nExecStart=/bin/sleep 100000\n";

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A /proc/PID/status field in KiB (VmRSS, RssAnon, ...), 0 when unreadable.
long StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field + ":")) {
      line = line.substr(field.size() + 1);
      long kib = 0;
      absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                           absl::StripAsciiWhitespace(line), "kB")), &kib);
      return kib;
    }
  }
  return 0;
}

std::unique_ptr<SandboxHost> StartHost(const std::string& tag) {
  static int counter = 0;
  std::string dir = absl::StrCat("/tmp/fleet-agent-bench-", getpid(), "-", counter++);
  auto host = SandboxHost::Start(absl::StrCat(FLEET_SOURCE_DIR, "/scripts/sandbox-host"), dir,
                                 absl::StrCat("bench", tag, counter));
  if (!host.ok()) {
    std::cerr << host.status() << "\n";
    std::exit(1);
  }
  return *std::move(host);
}

struct AgentRun {
  double seconds = 0;
  long idle_kib = 0;     // VmRSS
  long loaded_kib = 0;
  long idle_anon_kib = 0;    // RssAnon: the agent's own heap and stacks
  long loaded_anon_kib = 0;
};

AgentRun RunAgent(int n) {
  AgentRun out;
  std::unique_ptr<SandboxHost> host = StartHost("a");
  FakeEngine engine;
  engine.Start();
  auto pid = host->Spawn({absl::StrCat(FLEET_BINARY_DIR, "/agent/fleet-agent"), "--engine",
                          engine.address(), "--systemd", "user", "--log-level", "warning"},
                         host->dir() + "/agent.log");
  if (!pid.ok()) {
    std::cerr << pid.status() << "\n";
    std::exit(1);
  }
  if (!engine.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, absl::Seconds(30))) {
    std::cerr << "agent did not connect\n";
    std::exit(1);
  }
  out.idle_kib = StatusKib(*pid, "VmRSS");
  out.idle_anon_kib = StatusKib(*pid, "RssAnon");
  std::vector<fleet::v1::ScheduledUnit> units;
  for (int i = 0; i < n; ++i) {
    units.push_back(fleet::test::MakeScheduledUnit(absl::StrCat("bench-", i, ".service"), kUnit,
                                                   fleet::v1::DESIRED_STATE_LAUNCHED));
  }
  absl::Time start = absl::Now();
  engine.UpsertMany(units);
  bool all = engine.WaitFor(
      [n](const FakeEngine::View& v) {
        int active = 0;
        for (const auto& [name, s] : v.states) active += s.active_state() == "active";
        return active == n;
      },
      absl::Minutes(5));
  out.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!all) std::cerr << "not all units became active within 5 minutes\n";
  // Steady state with N units: the agent hands freed buffers back after a
  // quiet second, so memory is read after a few quiet seconds.
  absl::SleepFor(absl::Seconds(3));
  out.loaded_kib = StatusKib(*pid, "VmRSS");
  out.loaded_anon_kib = StatusKib(*pid, "RssAnon");
  host->Stop();
  fleet::test::RunCommand("rm -rf '" + host->dir() + "'");
  return out;
}

double RunRaw(int n) {
  std::unique_ptr<SandboxHost> host = StartHost("r");
  // Written by hand into the manager's runtime dir, one reload, one start of all,
  // then wait (polling the external manager, with a deadline) until all are active.
  std::string script = absl::StrCat(
      "d=/run/user/0/systemd/user; mkdir -p $d; i=0; while [ $i -lt ", n,
      " ]; do printf '", "[Service]\\nExecStart=/bin/sleep 100000\\n",
      "' > $d/raw-$i.service; i=$((i+1)); done; "
      "systemctl --user daemon-reload && systemctl --user start $(i=0; while [ $i -lt ", n,
      " ]; do echo raw-$i.service; i=$((i+1)); done) && "
      "end=$(($(date +%s) + 300)); while [ $(systemctl --user list-units --no-legend --state=active 'raw-*' | wc -l) -lt ",
      n, " ] && [ $(date +%s) -lt $end ]; do sleep 0.05; done");
  absl::Time start = absl::Now();
  fleet::test::CommandOutput out = host->Exec(script);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (out.exit_code != 0) std::cerr << "raw run failed: " << out.text << "\n";
  host->Stop();
  fleet::test::RunCommand("rm -rf '" + host->dir() + "'");
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {100, 500, 1000};
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--units") {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(argv[i + 1], ',')) {
        int n = 0;
        if (absl::SimpleAtoi(s, &n) && n > 0) sizes.push_back(n);
      }
    } else if (flag == "--runs") {
      absl::SimpleAtoi(argv[i + 1], &runs);
    }
  }
  if (geteuid() != 0) {
    std::cerr << "agent_bench needs root (sandbox hosts)\n";
    return 2;
  }
  std::printf("agent_bench: %d runs each, medians; goals: ratio agent/raw <= 1.5, RSS with 1000 units < 10 MiB\n",
              runs);
  std::printf("RSS = VmRSS (includes clean pages of shared libraries: gRPC, protobuf, libstdc++);\n"
              "anon = RssAnon (the agent's own heap and stacks)\n");
  std::printf("%7s %9s %9s %7s %10s %11s %10s %11s\n", "units", "agent s", "raw s", "ratio",
              "idle RSS", "loaded RSS", "idle anon", "loaded anon");
  for (int n : sizes) {
    std::vector<double> agent_s, raw_s, idle, loaded, idle_anon, loaded_anon;
    for (int r = 0; r < runs; ++r) {
      AgentRun a = RunAgent(n);
      agent_s.push_back(a.seconds);
      idle.push_back(static_cast<double>(a.idle_kib));
      loaded.push_back(static_cast<double>(a.loaded_kib));
      idle_anon.push_back(static_cast<double>(a.idle_anon_kib));
      loaded_anon.push_back(static_cast<double>(a.loaded_anon_kib));
      raw_s.push_back(RunRaw(n));
    }
    double ratio = Median(agent_s) / Median(raw_s);
    std::printf("%7d %9.2f %9.2f %7.2f %7.1f MiB %8.1f MiB %6.1f MiB %7.1f MiB\n", n,
                Median(agent_s), Median(raw_s), ratio, Median(idle) / 1024, Median(loaded) / 1024,
                Median(idle_anon) / 1024, Median(loaded_anon) / 1024);
    std::printf("        ratio %.2f vs goal <= 1.5: %s", ratio, ratio <= 1.5 ? "met" : "NOT met");
    if (n == 1000) {
      std::printf("; RSS %.1f MiB vs goal < 10 MiB: %s", Median(loaded) / 1024,
                  Median(loaded) < 10 * 1024 ? "met" : "NOT met");
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
