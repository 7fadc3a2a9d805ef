// agent_bench: on one real sandbox host (systemd user manager), the time from
// the schedule arriving at fleet-agent to all of N units active, against the
// physical floor (the same units written by hand, one daemon-reload, one
// `systemctl --user start` of all of them, until all are active), and the
// agent's resident memory idle and with N units. Medians of several runs.
// Prints figures beside the goals; never passes or fails on time.
//
// Memory is read from /proc/PID/smaps_rollup while the agent runs: RSS (the
// goal), PSS (shared-library pages divided by their sharers) and private dirty
// (pages only this process has written: heap, stacks, relocated data).
//
//   agent_bench [--units 100,500,1000] [--runs 3] [--smaps-dir DIR] [--no-raw]
//               [--insecure] [--agent-log-level error|warning|info|debug]
// --no-raw skips the raw systemctl runs (memory figures only, no ratio).
// The agent talks to the engine over mutual TLS, as fleet-agent does by
// default (certificates from scripts/pki in a temporary dir); --insecure
// measures it in plaintext instead.
// With --smaps-dir, /proc/PID/smaps of every agent idle and loaded is copied
// to DIR (per-mapping analysis) with the agent's log (--agent-log-level,
// default warning). Needs root (sandbox hosts).

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/tls/credentials.h"
#include "tests/support/fake_engine.h"
#include "tests/support/sandbox_host.h"

namespace {

using fleet::test::FakeEngine;
using fleet::test::SandboxHost;

constexpr char kUnit[] = "[Service]\nExecStart=/bin/sleep 100000\n";
constexpr char kMachine[] = "benchmachine";  // the agent's --machine-id, named in its certificate

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The agent's memory at one moment, in KiB (0 when unreadable).
struct Memory {
  long rss = 0;            // Rss: every resident page mapped (the goal)
  long pss = 0;            // Pss: shared pages divided by their sharers
  long private_dirty = 0;  // Private_Dirty: pages only the agent has written
  long anon = 0;           // Anonymous: heap, stacks, copied-on-write data
};

// Reads /proc/PID/smaps_rollup; copies /proc/PID/smaps to `smaps_copy` when
// it is not empty.
Memory ReadMemory(pid_t pid, const std::string& smaps_copy) {
  Memory m;
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() < 2) continue;
    long kib = 0;
    if (!absl::SimpleAtoi(parts[1], &kib)) continue;
    if (parts[0] == "Rss:") m.rss = kib;
    if (parts[0] == "Pss:") m.pss = kib;
    if (parts[0] == "Private_Dirty:") m.private_dirty = kib;
    if (parts[0] == "Anonymous:") m.anon = kib;
  }
  if (!smaps_copy.empty()) {
    fleet::test::RunCommand(absl::StrCat("cp /proc/", pid, "/smaps '", smaps_copy, "'"));
  }
  return m;
}

std::string smaps_dir;  // --smaps-dir, empty for none
bool insecure = false;  // --insecure

// The engine's TLS credentials and the agent's TLS flags, from certificates
// made once by scripts/pki (empty with --insecure).
struct Tls {
  std::shared_ptr<grpc::ServerCredentials> engine;
  std::vector<std::string> agent_flags;
};
const Tls& BenchTls() {
  static const Tls* tls = [] {
    auto* t = new Tls;
    if (insecure) {
      t->agent_flags = {"--insecure"};
      return t;
    }
    static const std::string dir = absl::StrCat("/tmp/fleet-agent-bench-pki-", getpid());
    std::atexit([] { fleet::test::RunCommand("rm -rf '" + dir + "'"); });  // also after exit(1)
    std::string pki = absl::StrCat(FLEET_SOURCE_DIR, "/scripts/pki");
    for (const std::string& command :
         {absl::StrCat(pki, " init ", dir), absl::StrCat(pki, " engine ", dir, " engine --san IP:127.0.0.1"),
          absl::StrCat(pki, " agent ", dir, " ", kMachine)}) {
      fleet::test::CommandOutput out = fleet::test::RunCommand(command);
      if (out.exit_code != 0) {
        std::cerr << command << ": " << out.text << "\n";
        std::exit(1);
      }
    }
    auto credentials = fleet::tls::MakeServerCredentials(
        {.ca_file = dir + "/ca.pem", .cert_file = dir + "/engine.pem", .key_file = dir + "/engine-key.pem"});
    if (!credentials.ok()) {
      std::cerr << credentials.status() << "\n";
      std::exit(1);
    }
    t->engine = *credentials;
    std::string agent = absl::StrCat(dir, "/agent-", kMachine);
    t->agent_flags = {"--ca-file", dir + "/ca.pem", "--cert-file", agent + ".pem", "--key-file", agent + "-key.pem"};
    return t;
  }();
  return *tls;
}
std::string agent_log_level = "warning";  // --agent-log-level

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
  Memory idle;    // connected, no units
  Memory loaded;  // with N units active, after a few quiet seconds
};

std::string SmapsCopy(int n, const char* phase) {
  static int counter = 0;
  if (smaps_dir.empty()) return "";
  return absl::StrCat(smaps_dir, "/smaps-", n, "-", phase, "-", counter++);
}

AgentRun RunAgent(int n) {
  AgentRun out;
  std::unique_ptr<SandboxHost> host = StartHost("a");
  FakeEngine engine;
  engine.Start("127.0.0.1:0", BenchTls().engine);
  // The agent runs from a copy in the host's dir, as installed (cp, cmake
  // --install, a package): the linker writes its output in a way that gives
  // the file large page-cache folios, and a process maps a whole folio around
  // every code page it touches, so the freshly linked file itself would show
  // several hundred KiB more RSS than the same bytes installed. Synced, so
  // its pages are clean and do not count as the agent's private dirty pages.
  std::string binary = host->dir() + "/fleet-agent";
  fleet::test::RunCommand(
      absl::StrCat("cp '", FLEET_BINARY_DIR, "/agent/fleet-agent' '", binary, "' && sync '", binary, "'"));
  std::vector<std::string> argv = {binary,     "--engine",    engine.address(), "--systemd",
                                   "user",     "--log-level", agent_log_level,  "--machine-id",
                                   kMachine};
  argv.insert(argv.end(), BenchTls().agent_flags.begin(), BenchTls().agent_flags.end());
  auto pid = host->Spawn(argv, host->dir() + "/agent.log");
  if (!pid.ok()) {
    std::cerr << pid.status() << "\n";
    std::exit(1);
  }
  if (!engine.WaitFor([](const FakeEngine::View& v) { return v.connected == 1; }, absl::Seconds(30))) {
    std::cerr << "agent did not connect\n";
    std::exit(1);
  }
  out.idle = ReadMemory(*pid, SmapsCopy(n, "idle"));
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
  std::string copy = SmapsCopy(n, "loaded");
  out.loaded = ReadMemory(*pid, copy);
  if (!copy.empty()) fleet::test::RunCommand("cp '" + host->dir() + "/agent.log' '" + copy + ".log'");
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
  bool raw = true;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--no-raw" || flag == "--insecure") {
      if (flag == "--no-raw") raw = false;
      if (flag == "--insecure") insecure = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) break;
    if (flag == "--units") {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(argv[i + 1], ',')) {
        int n = 0;
        if (absl::SimpleAtoi(s, &n) && n > 0) sizes.push_back(n);
      }
    } else if (flag == "--runs") {
      absl::SimpleAtoi(argv[i + 1], &runs);
    } else if (flag == "--agent-log-level") {
      agent_log_level = argv[i + 1];
    } else if (flag == "--smaps-dir") {
      smaps_dir = argv[i + 1];
      fleet::test::RunCommand("mkdir -p '" + smaps_dir + "'");
    }
  }
  if (geteuid() != 0) {
    std::cerr << "agent_bench needs root (sandbox hosts)\n";
    return 2;
  }
  std::printf("agent_bench: %d runs each, medians; goals: ratio agent/raw <= 1.5, RSS with 1000 units < 10 MiB\n",
              runs);
  std::printf("the agent's engine link: %s\n",
              insecure ? "plaintext (--insecure)" : "mutual TLS (fleet-agent's default)");
  std::printf("RSS includes the resident pages of shared libraries (libc, libsystemd, ...);\n"
              "PSS divides shared pages by their sharers; priv = private dirty pages (heap, stacks,\n"
              "relocated data); idle = connected with no units, loaded = N units active\n");
  std::printf("%6s %8s %7s %6s | %21s | %21s\n", "", "", "", "", "idle MiB", "loaded MiB");
  std::printf("%6s %8s %7s %6s | %6s %6s %7s | %6s %6s %7s\n", "units", "agent s", "raw s",
              "ratio", "RSS", "PSS", "priv", "RSS", "PSS", "priv");
  for (int n : sizes) {
    std::vector<double> agent_s, raw_s;
    std::vector<double> idle_rss, idle_pss, idle_priv, rss, pss, priv;
    for (int r = 0; r < runs; ++r) {
      AgentRun a = RunAgent(n);
      agent_s.push_back(a.seconds);
      idle_rss.push_back(static_cast<double>(a.idle.rss) / 1024);
      idle_pss.push_back(static_cast<double>(a.idle.pss) / 1024);
      idle_priv.push_back(static_cast<double>(a.idle.private_dirty) / 1024);
      rss.push_back(static_cast<double>(a.loaded.rss) / 1024);
      pss.push_back(static_cast<double>(a.loaded.pss) / 1024);
      priv.push_back(static_cast<double>(a.loaded.private_dirty) / 1024);
      if (raw) raw_s.push_back(RunRaw(n));
    }
    // Without the raw runs (--no-raw, memory only) the ratio is printed as 0.
    double ratio = raw ? Median(agent_s) / Median(raw_s) : 0;
    std::printf("%6d %8.2f %7.2f %6.2f | %6.1f %6.1f %7.1f | %6.1f %6.1f %7.1f\n", n,
                Median(agent_s), raw ? Median(raw_s) : 0.0, ratio, Median(idle_rss), Median(idle_pss),
                Median(idle_priv), Median(rss), Median(pss), Median(priv));
    if (raw) {
      std::printf("       ratio %.2f vs goal <= 1.5: %s", ratio, ratio <= 1.5 ? "met" : "NOT met");
    } else {
      std::printf("       ratio not measured (--no-raw)");
    }
    if (n == 1000) {
      std::printf("; RSS %.1f MiB (runs:", Median(rss));
      for (double v : rss) std::printf(" %.1f", v);
      std::printf(") vs goal < 10 MiB: %s", Median(rss) < 10 ? "met" : "NOT met");
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
