#pragma once

// fleetctl status: what `systemctl status` shows on a unit's machine, as text
// (the default) or as a listing (table, json, yaml). Pure formatting, so
// golden tests need no engine.

#include <string>

#include "absl/time/time.h"
#include "fleet/v1/fleet.pb.h"
#include "fleetctl/commands/listings.h"
#include "fleetctl/output.h"

namespace fleet::ctl {

// systemctl's look:
//   ● web.service - Web server
//        Loaded: loaded (/run/fleet/units/web.service; linked-runtime)
//        Active: active (running) since Fri 2026-11-27 05:12:01 UTC; 3min 2s ago
//      Main PID: 4242
//         Tasks: 2
//        Memory: 1.5M
//       Machine: aaaaaaaa.../127.0.0.2
//
//   Nov 27 05:12:01 host web[4242]: listening
// Times in `zone`; "ago" counted from `now`.
std::string FormatStatusText(const v1::GetUnitStatusResponse& status, const MachineIps& ips,
                             bool full, absl::Time now, absl::TimeZone zone);

// Fields unit, machine, load, active, sub, pid, since (RFC 3339 in UTC, "-"
// when unknown), exit, description, path, memory (bytes), tasks, dstate, log
// (the journal lines, joined by newlines). One row per response.
Listing StatusListing(const std::vector<v1::GetUnitStatusResponse>& statuses,
                      const MachineIps& ips, bool full);

// systemd's format_bytes: 512B, 356.0K, 1.5M, 2.0G.
std::string FormatBytes(uint64_t bytes);

// systemd's timespan as status prints it: "42s", "3min 2s", "2h 5min", "3 days 4h".
std::string FormatAgo(absl::Duration d);

}  // namespace fleet::ctl
