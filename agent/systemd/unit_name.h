#pragma once

// systemd unit names and unit files, as far as the agent must know them.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace fleet::agent {

// OK when `name` is a valid systemd unit name: "prefix.type", at most 255
// bytes, prefix of [A-Za-z0-9:_.\-] with at most one '@' (template "a@.service"
// or instance "a@x.service"), a known unit type suffix, no "..", no '/'.
// InvalidArgument naming the problem otherwise. A name that passes is safe to
// use as a file name inside the unit dir.
absl::Status ValidateUnitName(absl::string_view name);

// True when the unit file has an [Install] section (so fleet enables it).
bool HasInstallSection(absl::string_view contents);

}  // namespace fleet::agent
