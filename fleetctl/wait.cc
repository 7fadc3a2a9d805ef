#include "fleetctl/wait.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace fleet::ctl {
namespace {

bool IsRunning(const v1::UnitState& state) {
  const std::string& active = state.active_state();
  return active == "active" || active == "activating" || active == "reloading" ||
         active == "deactivating";
}

std::string ShortState(const v1::UnitStatus& entry) {
  if (entry.machine_id().empty()) return "not scheduled";
  if (!entry.has_state()) return "scheduled, not reported yet";
  return absl::StrCat(entry.state().active_state(), "/", entry.state().sub_state());
}

}  // namespace

const char* GoalWord(Goal goal) {
  switch (goal) {
    case Goal::kLoaded:
      return "loaded";
    case Goal::kLaunched:
      return "launched";
    case Goal::kUnloaded:
      return "inactive";
  }
  return "";
}

Progress Assess(Goal goal, const std::vector<const v1::UnitStatus*>& entries,
                std::string* detail) {
  if (goal == Goal::kUnloaded) {
    for (const auto* entry : entries) {
      if (entry->has_state()) {
        *detail = absl::StrCat("still on ", entry->machine_id(), ": ", ShortState(*entry));
        return Progress::kWaiting;
      }
    }
    return Progress::kReached;
  }
  if (entries.empty()) {
    *detail = "unknown to the engine";
    return Progress::kFailed;
  }
  for (const auto* entry : entries) {
    if (!entry->unscheduled_reason().empty()) {
      *detail = absl::StrCat("cannot be placed: ", entry->unscheduled_reason());
      return Progress::kFailed;
    }
    if (entry->machine_id().empty() || !entry->has_state()) {
      *detail = ShortState(*entry);
      return Progress::kWaiting;
    }
    const v1::UnitState& state = entry->state();
    if (state.load_state() != "loaded") {
      if (state.load_state() == "error" || state.load_state() == "bad-setting") {
        *detail = absl::StrCat("systemd could not load it (", state.load_state(), ") on ",
                               entry->machine_id());
        return Progress::kFailed;
      }
      *detail = absl::StrCat("load state ", state.load_state());
      return Progress::kWaiting;
    }
    if (goal == Goal::kLaunched) {
      if (state.active_state() == "failed") {
        *detail = absl::StrCat("failed on ", entry->machine_id(), " (", state.sub_state(),
                               ", exit status ", state.exit_status(), ")");
        return Progress::kFailed;
      }
      if (state.active_state() != "active") {
        *detail = ShortState(*entry);
        return Progress::kWaiting;
      }
    } else if (IsRunning(state)) {
      *detail = ShortState(*entry);
      return Progress::kWaiting;
    }
  }
  return Progress::kReached;
}

int WaitForUnits(Context& context, const std::vector<std::string>& names, Goal goal,
                 const WaitOptions& options) {
  auto client = context.client();
  if (!client.ok()) return context.Fail(client.status());

  std::set<std::string> pending(names.begin(), names.end());
  std::map<std::string, std::string> machines;  // id -> IP, for the legend
  bool failed = false;
  for (int attempt = 1; !pending.empty(); ++attempt) {
    auto states = (*client)->ListUnitStates("");
    if (!states.ok()) return context.Fail(states.status());
    if (machines.empty()) {
      if (auto listed = (*client)->ListMachines(); listed.ok()) {
        for (const auto& m : *listed) machines[m.id()] = m.public_ip();
      }
    }
    std::map<std::string, std::vector<const v1::UnitStatus*>> by_name;
    for (const auto& entry : *states) by_name[entry.name()].push_back(&entry);

    std::string slowest;
    for (auto it = pending.begin(); it != pending.end();) {
      std::string detail;
      const auto& entries = by_name[*it];
      switch (Assess(goal, entries, &detail)) {
        case Progress::kReached: {
          if (context.out_is_terminal()) context.out() << "\r\033[K";
          context.out() << "Unit " << *it << " " << GoalWord(goal);
          if (goal != Goal::kUnloaded && entries.size() == 1) {
            const std::string& id = entries[0]->machine_id();
            context.out() << " on " << MachineLegend(id, machines[id], false);
          }
          context.out() << "\n";
          it = pending.erase(it);
          break;
        }
        case Progress::kFailed:
          if (context.out_is_terminal()) context.out() << "\r\033[K" << std::flush;
          context.err() << "Error: unit " << *it << " " << detail << "\n";
          failed = true;
          it = pending.erase(it);
          break;
        case Progress::kWaiting:
          if (slowest.empty()) slowest = absl::StrCat(*it, " ", detail);
          ++it;
          break;
      }
    }
    if (pending.empty()) break;
    if (options.block_attempts > 0 && attempt >= options.block_attempts) {
      if (context.out_is_terminal()) context.out() << "\r\033[K" << std::flush;
      for (const auto& name : pending) {
        context.err() << "Error: timed out waiting for unit " << name << " to report state "
                      << GoalWord(goal) << "\n";
      }
      return kExitFailed;
    }
    if (context.out_is_terminal()) {
      context.out() << "\r\033[K" << (names.size() - pending.size()) << "/" << names.size()
                    << " units " << GoalWord(goal) << "; waiting for " << slowest
                    << std::flush;
    }
    absl::SleepFor(options.interval);
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace fleet::ctl
