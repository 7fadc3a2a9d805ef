#pragma once

// systemd unit names and unit files, as far as the agent must know them.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace fleet::agent {

// OK when `name` is a valid unit name by common/unit's ParseUnitName, the
// rules the engine accepts at submit: systemd's ("prefix.type", at most 255
// bytes, [A-Za-z0-9:_.\-@\\], a known type suffix; the instance of
// "a@x.service" may hold '@'), and no "..", no leading '.'. InvalidArgument
// naming the problem otherwise. A name that passes is safe to use as a file
// name inside the unit dir.
absl::Status ValidateUnitName(absl::string_view name);

// True when the unit file has an [Install] section (so fleet enables it).
bool HasInstallSection(absl::string_view contents);

}  // namespace fleet::agent
