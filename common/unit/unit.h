#pragma once

// A unit as fleet takes it: a valid name, a valid unit file, the [X-Fleet]
// options with fleet's meaning, and fleet's hash. This is the one entry point
// the engine, the agent and fleetctl use to accept a unit. Pure code, no I/O;
// all functions are thread-safe.
//
// [X-Fleet] keys, as in CoreOS fleet (job/job.go, api/units.go):
//   MachineID=        the one machine the unit runs on
//   MachineOf=        unit names; run on the machine that runs them
//   MachineMetadata=  key=value items; values of one key are OR'ed, keys AND'ed
//   Conflicts=        globs of unit names never to share a machine with
//   Global=           systemd boolean; run on every machine that matches
//   Replaces=         unit names this unit evicts from its machine
// and the deprecated aliases X-ConditionMachineID, X-ConditionMachineOf,
// X-ConditionMachineMetadata, X-Conflicts, which mean the same.
// Rules:
//   - repeated lines accumulate (Global: the last one wins); an empty
//     assignment ("Conflicts=") drops the values before it, as in systemd.
//   - a value that starts and ends with '"' holds several values separated by
//     unquoted spaces: MachineMetadata="region=east" "disk=ssd". Empty items
//     (from repeated spaces) are dropped.
//   - %n %N %p %i are expanded for the unit's name in every value. In a
//     template (never scheduled itself) items holding a '%' are skipped: they
//     are read, and judged, for each instance.
//   - refused: an unknown key; a MachineMetadata item that is not key=value;
//     a MachineOf=/Replaces= item that is not a unit name; MachineID= naming two
//     machines; Global= that is not a systemd boolean; MachineID with
//     MachineOf/Conflicts/Global/Replaces; Global with MachineOf/Replaces;
//     Conflicts with Replaces; MachineOf naming the unit itself or a unit that
//     its own Conflicts/Replaces matches.
//   - a unit file without any option is refused (fleet refuses it too).

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unit/fleet_options.h"
#include "common/unit/unit_file.h"
#include "common/unit/unit_name.h"

namespace fleet {

inline constexpr std::string_view kFleetSection = "X-Fleet";

struct ParsedUnit {
  UnitName name;         // the name it was submitted as
  UnitFile file;         // sections/options in order, the raw bytes kept
  FleetOptions options;  // [X-Fleet], specifiers expanded for `name`
  std::string hash;      // fleet's hash: lowercase SHA-1 hex (FleetHash)
};

// Parses and validates a unit submitted as `name` with file `contents`. On
// success the ParsedUnit; on failure INVALID_ARGUMENT whose message is the
// first problem, formatted by FormatUnitError ("line 3, column 1: ..."), plus
// how many more there are.
absl::StatusOr<ParsedUnit> ParseUnit(std::string_view name, std::string_view contents);

// Every problem of the unit `name` with file `contents`, in line order (a
// problem of the name first, with line 0); empty when ParseUnit would accept
// it. For `fleetctl verify`, which prints each as FILE:LINE: message.
std::vector<UnitError> VerifyUnit(std::string_view name, std::string_view contents);

// The [X-Fleet] options of `file` for the unit `name`, checked by the rules
// above. Problems are appended to `errors`; the returned options hold what
// could be read.
FleetOptions ParseFleetOptions(const UnitFile& file, const UnitName& name,
                               std::vector<UnitError>* errors);

// systemd's boolean spellings (parse_boolean): 1/yes/y/true/t/on and
// 0/no/n/false/f/off, any case. Returns false in *ok for anything else.
bool ParseSystemdBoolean(std::string_view text, bool* ok);

}  // namespace fleet
