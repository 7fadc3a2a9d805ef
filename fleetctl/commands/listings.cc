#include "fleetctl/commands/listings.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/unit/unit.h"

namespace fleet::ctl {
namespace {

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string ShortHash(const std::string& hash, bool full) {
  if (hash.empty()) return "-";
  return full ? hash : hash.substr(0, 7);
}

std::string Legend(const std::string& id, const MachineIps& ips, bool full) {
  auto it = ips.find(id);
  return MachineLegend(id, it == ips.end() ? "" : it->second, full);
}

// fleet's "current state": what the agent has made of the unit.
std::string CurrentState(const v1::UnitStatus& status) {
  if (!status.has_state()) return "inactive";
  const std::string& active = status.state().active_state();
  if (active == "inactive" || active == "failed") return "loaded";
  return "launched";
}

}  // namespace

std::string DesiredStateWord(v1::DesiredState state) {
  switch (state) {
    case v1::DESIRED_STATE_INACTIVE:
      return "inactive";
    case v1::DESIRED_STATE_LOADED:
      return "loaded";
    case v1::DESIRED_STATE_LAUNCHED:
      return "launched";
    default:
      return "-";
  }
}

Listing UnitStatesListing(const std::vector<v1::UnitStatus>& states, const MachineIps& ips,
                          bool full) {
  Listing listing;
  listing.columns = {"unit", "machine", "active", "sub", "load", "hash", "pid", "dstate",
                     "reason"};
  for (const auto& s : states) {
    bool reported = s.has_state();
    listing.rows.push_back({
        s.name(),
        Legend(s.machine_id(), ips, full),
        reported ? OrDash(s.state().active_state()) : "-",
        reported ? OrDash(s.state().sub_state()) : "-",
        reported ? OrDash(s.state().load_state()) : "-",
        ShortHash(reported ? s.state().unit_hash() : s.hash(), full),
        reported && s.state().main_pid() != 0 ? absl::StrCat(s.state().main_pid()) : "-",
        DesiredStateWord(s.desired_state()),
        OrDash(s.unscheduled_reason()),
    });
  }
  return listing;
}

Listing UnitFilesListing(const std::vector<v1::Unit>& units,
                         const std::vector<v1::UnitStatus>& states, const MachineIps& ips,
                         bool full) {
  std::map<std::string, std::vector<const v1::UnitStatus*>> by_name;
  for (const auto& s : states) by_name[s.name()].push_back(&s);

  Listing listing;
  listing.columns = {"unit", "hash", "dstate", "state", "target", "global", "desc"};
  for (const auto& unit : units) {
    auto parsed = ParseUnit(unit.name(), unit.contents());
    bool global = parsed.ok() && parsed->options.global;
    std::string description = "-";
    if (parsed.ok()) {
      auto values = parsed->file.ListValues("Unit", "Description");
      if (!values.empty() && !values.back().empty()) description = values.back();
    }
    std::string state = "-";
    std::string target = "-";
    const auto& entries = by_name[unit.name()];
    if (global) {
      target = "global";
    } else if (!entries.empty()) {
      state = CurrentState(*entries.front());
      target = Legend(entries.front()->machine_id(), ips, full);
    }
    listing.rows.push_back({unit.name(), ShortHash(unit.hash(), full),
                            DesiredStateWord(unit.desired_state()), state, target,
                            global ? "true" : "false", description});
  }
  return listing;
}

Listing MachinesListing(const std::vector<v1::Machine>& machines, bool full) {
  Listing listing;
  listing.columns = {"machine", "ip", "metadata", "units", "version"};
  for (const auto& m : machines) {
    std::vector<std::pair<std::string, std::string>> metadata(m.metadata().begin(),
                                                              m.metadata().end());
    std::sort(metadata.begin(), metadata.end());
    std::string joined = absl::StrJoin(metadata, ",", absl::PairFormatter("="));
    listing.rows.push_back({MachineLegend(m.id(), "", full), OrDash(m.public_ip()),
                            OrDash(joined), absl::StrCat(m.units()),
                            OrDash(m.agent_version())});
  }
  return listing;
}

}  // namespace fleet::ctl
