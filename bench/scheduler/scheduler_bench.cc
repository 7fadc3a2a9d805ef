// Scheduler benchmark. Prints, for 10k and 100k units over 100, 1,000 and
// 10,000 machines with a realistic mix of [X-Fleet] options, the median over
// several runs of:
//   - placements/s of Reconcile on a snapshot where nothing is scheduled yet,
//   - the time of Reconcile on the same snapshot once fully placed (the
//     steady state: nothing to do),
//   - the time to re-place the units of one lost machine;
// the last two also by a Reconciler that kept its unit indexes from the pass
// before (as the engine's does while no unit changes);
// and the resident memory a ClusterSnapshot holds per 1k units. Figures only:
// nothing here passes or fails on time. Single-threaded (one core).
//
// Usage: scheduler_bench [runs]   (default 5)

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/unit/fleet_options.h"
#include "engine/scheduler/scheduler.h"

namespace fleet {
namespace {

constexpr double kTargetPlacementsPerSecond = 100000;

// The unit mix, per 100 units:
//   55 plain services,
//   15 with MachineMetadata= (region, sometimes two values or two keys),
//   15 template instances with Conflicts=<template>@*.service (5 per template),
//   10 sidecars with MachineOf= an earlier plain unit,
//    4 with Conflicts= naming one unit,
//    1 with Replaces= an earlier plain unit;
// plus 5 Global=true units (3 of them with MachineMetadata=).
// Units with equal options share one FleetOptions, as in the engine (which
// interns them): the planner keeps facts per options instance.
ClusterSnapshot MakeSnapshot(int units, int machines) {
  ClusterSnapshot s;
  FleetOptionsPool options_pool;
  static const char* kRegions[] = {"east", "west", "north"};
  for (int i = 0; i < machines; ++i) {
    MachineView m;
    m.id = absl::StrCat("machine-", 100000 + i);
    m.metadata["region"] = kRegions[i % 3];
    m.metadata["disk"] = i % 4 == 0 ? "hdd" : "ssd";
    m.metadata["rack"] = absl::StrCat("r", i / 40);
    s.machines[m.id] = std::move(m);
  }
  int64_t revision = 1;
  std::vector<std::string> plain;
  for (int i = 0; i < 5; ++i) {
    UnitView g;
    g.name = absl::StrCat("global-", i, ".service");
    FleetOptions options;
    options.global = true;
    if (i < 3) options.machine_metadata["region"] = {kRegions[i]};
    g.options = options_pool.Share(std::move(options));
    g.create_revision = revision++;
    s.units[g.name] = std::move(g);
  }
  for (int i = 0; i < units; ++i) {
    UnitView u;
    FleetOptions options;
    u.create_revision = revision++;
    const int kind = i % 100;
    if (kind < 55 || plain.empty()) {
      u.name = absl::StrCat("app-", i, ".service");
      plain.push_back(u.name.str());
    } else if (kind < 70) {
      u.name = absl::StrCat("regional-", i, ".service");
      options.machine_metadata["region"] = {kRegions[i % 3]};
      if (i % 3 == 0) options.machine_metadata["region"].push_back(kRegions[(i + 1) % 3]);
      if (i % 5 == 0) options.machine_metadata["disk"] = {"ssd"};
    } else if (kind < 85) {
      const int template_id = i / 5;
      u.name = absl::StrCat("web", template_id, "@", i % 5, ".service");
      options.conflicts = {absl::StrCat("web", template_id, "@*.service")};
    } else if (kind < 95) {
      u.name = absl::StrCat("sidecar-", i, ".service");
      options.machine_of = {plain[(i * 7919) % plain.size()]};
    } else if (kind < 99) {
      u.name = absl::StrCat("lonely-", i, ".service");
      options.conflicts = {plain[(i * 104729) % plain.size()]};
    } else {
      u.name = absl::StrCat("upgrade-", i, ".service");
      options.replaces = {plain[(i * 31) % plain.size()]};
    }
    u.options = options_pool.Share(std::move(options));
    s.units[u.name] = std::move(u);
  }
  return s;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// CPU time of this thread: what one core spends, whatever else runs on the
// machine (wall time is printed too).
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Timer {
  absl::Time wall = absl::Now();
  double cpu = ThreadCpuSeconds();
  double WallSeconds() const { return absl::ToDoubleSeconds(absl::Now() - wall); }
  double CpuSeconds() const { return ThreadCpuSeconds() - cpu; }
};

long ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void MeasureMemory() {
  constexpr int kUnits = 100000;
  constexpr int kMachines = 1000;
  const long before = ResidentBytes();
  ClusterSnapshot s = MakeSnapshot(kUnits, kMachines);
  // Hold a schedule too, as the engine does (a round-robin one: Reconcile's
  // own temporary memory must not count here).
  int next = 0;
  for (const auto& [name, unit] : s.units) {
    if (!unit.options->global) s.schedule[name] = absl::StrCat("machine-", 100000 + next++ % kMachines);
  }
  const long after = ResidentBytes();
  std::printf("memory: ClusterSnapshot with %d units, 1000 machines, fully scheduled: "
              "%.1f MiB resident, %.1f KiB per 1k units (RSS from /proc/self/statm)\n",
              kUnits, (after - before) / 1048576.0,
              (after - before) / 1024.0 / (kUnits / 1000.0));
}

void Run(int units, int machines, int runs) {
  std::vector<double> cpu_rate, wall_rate, steady_ms, loss_ms, kept_steady_ms, kept_loss_ms;
  size_t placed = 0, unplaceable = 0, moved = 0;
  for (int r = 0; r < runs; ++r) {
    ClusterSnapshot s = MakeSnapshot(units, machines);
    Timer timer;
    Plan plan = Reconcile(s);
    const double cpu = timer.CpuSeconds(), wall = timer.WallSeconds();
    placed = plan.assign.size();
    unplaceable = plan.unplaceable.size();
    cpu_rate.push_back(placed / cpu);
    wall_rate.push_back(placed / wall);

    ApplyPlan(plan, &s);
    Reconciler kept;
    kept.Reconcile(s);  // builds its indexes, kept from here on
    Timer kept_steady_timer;
    kept.Reconcile(s);
    kept_steady_ms.push_back(kept_steady_timer.CpuSeconds() * 1000);
    Timer steady_timer;
    Plan steady = Reconcile(s);
    steady_ms.push_back(steady_timer.CpuSeconds() * 1000);
    if (!steady.assign.empty() || !steady.unassign.empty()) {
      std::fprintf(stderr, "BUG: reconcile of a placed snapshot changed %zu units\n",
                   steady.assign.size() + steady.unassign.size());
      std::exit(1);
    }

    s.machines.erase(s.machines.begin());  // one machine dies
    Timer loss_timer;
    Plan loss = Reconcile(s);
    loss_ms.push_back(loss_timer.CpuSeconds() * 1000);
    moved = loss.assign.size();
    Timer kept_loss_timer;
    Plan kept_loss = kept.Reconcile(s);
    kept_loss_ms.push_back(kept_loss_timer.CpuSeconds() * 1000);
    if (kept_loss != loss) {
      std::fprintf(stderr, "BUG: the Reconciler's plan differs from Reconcile's\n");
      std::exit(1);
    }
  }
  const double rate = Median(cpu_rate);
  std::printf("%7d units %6d machines: %9.0f placements/s CPU (%9.0f wall; %zu placed, "
              "%zu unplaceable) [target >= %.0f/s on one core: %s] | steady reconcile "
              "%7.1f ms CPU (%6.1f kept) | one machine lost: %zu moved in %7.1f ms CPU "
              "(%6.1f kept)\n",
              units, machines, rate, Median(wall_rate), placed, unplaceable,
              kTargetPlacementsPerSecond, rate >= kTargetPlacementsPerSecond ? "met" : "NOT met",
              Median(steady_ms), Median(kept_steady_ms), moved, Median(loss_ms),
              Median(kept_loss_ms));
  std::fflush(stdout);
}

}  // namespace
}  // namespace fleet

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  fleet::MeasureMemory();
  std::printf("median of %d runs, single thread; placements/s = units placed by one Reconcile of "
              "a snapshot where nothing is scheduled / its thread CPU time\n",
              runs);
  for (int units : {10000, 100000}) {
    for (int machines : {100, 1000, 10000}) fleet::Run(units, machines, runs);
  }
  return 0;
}
