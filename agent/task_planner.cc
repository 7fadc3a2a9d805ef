#include "agent/task_planner.h"

namespace fleet::agent {

const std::shared_ptr<const std::string>& UnitText::Empty() {
  // Never destroyed: a UnitText may still be alive while statics are torn down.
  static const auto* empty = new std::shared_ptr<const std::string>(std::make_shared<const std::string>());
  return *empty;
}

absl::string_view TaskKindName(TaskKind kind) {
  switch (kind) {
    case TaskKind::kUnload:
      return "unload";
    case TaskKind::kLoad:
      return "load";
    case TaskKind::kReload:
      return "daemon-reload";
    case TaskKind::kStop:
      return "stop";
    case TaskKind::kRestart:
      return "restart";
    case TaskKind::kStart:
      return "start";
  }
  return "unknown";
}

std::vector<Task> PlanTasks(const std::map<std::string, DesiredUnit>& desired,
                            const std::map<std::string, InstalledUnit>& installed,
                            bool reload_pending) {
  std::vector<Task> unloads, loads, stops, restarts, starts;
  for (const auto& entry : installed) {
    const std::string& name = entry.first;
    if (desired.contains(name)) continue;
    unloads.push_back({TaskKind::kUnload, name, ""});
  }
  for (const auto& [name, want] : desired) {
    bool launch = want.target == Target::kLaunched;
    auto it = installed.find(name);
    if (it == installed.end()) {
      loads.push_back({TaskKind::kLoad, name, want.contents});
      if (launch) starts.push_back({TaskKind::kStart, name, ""});
      continue;
    }
    const InstalledUnit& have = it->second;
    bool changed = have.contents != want.contents;
    if (changed) loads.push_back({TaskKind::kLoad, name, want.contents});
    if (have.launched && launch && changed) {
      restarts.push_back({TaskKind::kRestart, name, ""});
    } else if (have.launched && !launch) {
      stops.push_back({TaskKind::kStop, name, ""});
    } else if (!have.launched && launch) {
      starts.push_back({TaskKind::kStart, name, ""});
    }
  }
  std::vector<Task> tasks;
  tasks.reserve(unloads.size() + loads.size() + stops.size() + restarts.size() + starts.size() +
                1);
  for (auto* group : {&unloads, &loads}) {
    for (Task& t : *group) tasks.push_back(std::move(t));
  }
  if (reload_pending || !unloads.empty() || !loads.empty()) tasks.push_back({TaskKind::kReload, "", ""});
  for (auto* group : {&stops, &restarts, &starts}) {
    for (Task& t : *group) tasks.push_back(std::move(t));
  }
  return tasks;
}

}  // namespace fleet::agent
