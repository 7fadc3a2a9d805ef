// fleetctl status UNIT...: what `systemctl status -l UNIT` shows on each
// unit's machine, asked of its agent through the engine (no SSH). Several
// units are shown one after another with a blank line between; a unit that
// cannot be shown is named on stderr with the reason, and the exit code is 1.

#include "fleetctl/commands/status.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fleetctl/commands/commands.h"
#include "fleetctl/unit_args.h"

namespace fleet::ctl {
namespace {

// systemd 252's status bullets.
std::string Bullet(const std::string& active) {
  if (active == "active" || active == "reloading" || active == "activating") return "\u25cf";
  if (active == "failed") return "\u00d7";
  return "\u25cb";
}

std::string Legend(const std::string& id, const MachineIps& ips, bool full) {
  auto it = ips.find(id);
  return MachineLegend(id, it == ips.end() ? "" : it->second, full);
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::vector<std::string> LogLines(const v1::UnitDetail& detail) {
  std::vector<std::string> lines;
  for (const auto& entry : detail.journal()) {
    lines.push_back(entry.line().empty() ? entry.message() : entry.line());
  }
  return lines;
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, "B");
  const char* units = "KMGTPE";
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f%c", value, units[unit]);
}

std::string FormatAgo(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "min ", s % 60, "s");
  if (s < 86400) return absl::StrCat(s / 3600, "h ", (s % 3600) / 60, "min");
  int64_t days = s / 86400;
  return absl::StrCat(days, days == 1 ? " day " : " days ", (s % 86400) / 3600, "h");
}

std::string FormatStatusText(const v1::GetUnitStatusResponse& status, const MachineIps& ips,
                             bool full, absl::Time now, absl::TimeZone zone) {
  const v1::UnitDetail& detail = status.detail();
  const v1::UnitState& state = detail.state();
  const std::string& name = status.unit().name();
  std::string out = absl::StrCat(Bullet(state.active_state()), " ", name);
  if (!detail.description().empty()) absl::StrAppend(&out, " - ", detail.description());
  out += "\n";
  std::string loaded = OrDash(state.load_state());
  if (!detail.fragment_path().empty()) {
    absl::StrAppend(&loaded, " (", detail.fragment_path());
    if (!detail.unit_file_state().empty()) absl::StrAppend(&loaded, "; ", detail.unit_file_state());
    loaded += ")";
  }
  absl::StrAppend(&out, "     Loaded: ", loaded, "\n");
  std::string active = absl::StrCat(OrDash(state.active_state()), " (", OrDash(state.sub_state()), ")");
  if (state.since_unix_micros() != 0) {
    absl::Time since = absl::FromUnixMicros(state.since_unix_micros());
    absl::StrAppend(&active, " since ", absl::FormatTime("%a %Y-%m-%d %H:%M:%S %Z", since, zone), "; ",
                    FormatAgo(now - since), " ago");
  }
  absl::StrAppend(&out, "     Active: ", active, "\n");
  if (state.main_pid() != 0) absl::StrAppend(&out, "   Main PID: ", state.main_pid(), "\n");
  if (state.exit_status() != 0) absl::StrAppend(&out, "Exit status: ", state.exit_status(), "\n");
  if (detail.has_tasks()) absl::StrAppend(&out, "      Tasks: ", detail.tasks(), "\n");
  if (detail.has_memory()) absl::StrAppend(&out, "     Memory: ", FormatBytes(detail.memory_bytes()), "\n");
  absl::StrAppend(&out, "    Machine: ", Legend(status.unit().machine_id(), ips, full), "\n");
  std::vector<std::string> log = LogLines(detail);
  if (!log.empty()) absl::StrAppend(&out, "\n", absl::StrJoin(log, "\n"), "\n");
  return out;
}

Listing StatusListing(const std::vector<v1::GetUnitStatusResponse>& statuses, const MachineIps& ips,
                      bool full) {
  Listing listing;
  listing.columns = {"unit", "machine", "load",   "active", "sub",   "pid",    "since",
                     "exit", "description", "path", "memory", "tasks", "dstate", "log"};
  for (const auto& status : statuses) {
    const v1::UnitDetail& detail = status.detail();
    const v1::UnitState& state = detail.state();
    std::string since = "-";
    if (state.since_unix_micros() != 0) {
      since = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(state.since_unix_micros()),
                               absl::UTCTimeZone());
    }
    listing.rows.push_back({
        status.unit().name(),
        Legend(status.unit().machine_id(), ips, full),
        OrDash(state.load_state()),
        OrDash(state.active_state()),
        OrDash(state.sub_state()),
        state.main_pid() != 0 ? absl::StrCat(state.main_pid()) : "-",
        since,
        absl::StrCat(state.exit_status()),
        OrDash(detail.description()),
        OrDash(detail.fragment_path()),
        detail.has_memory() ? absl::StrCat(detail.memory_bytes()) : "-",
        detail.has_tasks() ? absl::StrCat(detail.tasks()) : "-",
        DesiredStateWord(status.unit().desired_state()),
        absl::StrJoin(LogLines(detail), "\n"),
    });
  }
  return listing;
}

CommandRunner DefineStatus(CLI::App& app) {
  struct Flags {
    std::vector<std::string> units;
    int lines = 10;
    std::string machine;
    ListingFlags listing;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "status", "Output the unit's status as systemctl shows it on its machine (through the engine)");
  command->add_option("units", flags->units, "Unit names or globs")->required();
  command->add_option("-n,--lines", flags->lines, "Number of journal lines to show (0 to 10000)")
      ->capture_default_str();
  command->add_option("--machine", flags->machine,
                      "For a global unit: the machine (id or unique prefix) to ask");
  flags->listing.Add(*command, "unit,machine,active,sub,pid,since");
  flags->listing.output = "text";
  command->get_option("--output")->description("Output format: text (as systemctl), table, json or yaml")
      ->default_str("text");
  return [flags](Context& context) {
    if (flags->lines < 0 || flags->lines > 10000) {
      context.err() << "Error: --lines " << flags->lines << " is out of range (0 to 10000)\n";
      return kExitUsage;
    }
    const bool text = flags->listing.output == "text";
    if (!text) {
      if (auto format = ParseOutputFormat(flags->listing.output); !format.ok()) {
        context.err() << "Error: unknown --output \"" << flags->listing.output
                      << "\": use text, table, json or yaml\n";
        return kExitUsage;
      }
    }
    auto client = context.client();
    if (!client.ok()) return context.Fail(client.status());
    auto names = ExpandNames(**client, flags->units, Templates::kSkip);
    if (!names.ok()) return context.Fail(names.status());
    MachineIps ips = FetchMachineIps(**client);
    std::vector<v1::GetUnitStatusResponse> shown;
    int code = kExitOk;
    for (const std::string& name : *names) {
      v1::GetUnitStatusRequest request;
      request.set_name(name);
      request.set_journal_lines(flags->lines);
      request.set_machine_id(flags->machine);
      auto status = (*client)->GetUnitStatus(request);
      if (!status.ok()) {
        context.err() << "Error: " << status.status().message() << "\n";
        code = kExitFailed;
        continue;
      }
      if (text) {
        if (!shown.empty()) context.out() << "\n";
        context.out() << FormatStatusText(*status, ips, flags->listing.full, absl::Now(),
                                          absl::LocalTimeZone());
        context.out().flush();
      }
      shown.push_back(*std::move(status));
    }
    if (!text && !shown.empty()) {
      auto rendered = flags->listing.Render(StatusListing(shown, ips, flags->listing.full));
      if (!rendered.ok()) return context.Fail(rendered.status());
      context.out() << *rendered;
    }
    return code;
  };
}

}  // namespace fleet::ctl
