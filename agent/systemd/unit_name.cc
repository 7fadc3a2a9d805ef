#include "agent/systemd/unit_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/systemd/systemd_manager.h"
#include "common/unit/unit_name.h"

namespace fleet::agent {

bool IsRunningState(absl::string_view active_state) {
  return active_state == "active" || active_state == "activating" ||
         active_state == "reloading";
}

absl::Status ValidateUnitName(absl::string_view name) {
  // systemd's rules (characters, length, type suffix) are common/unit's,
  // which also refuse a leading '.' and "..": a name that passes them is
  // printable ASCII without '/', NUL or "..", so UNIT_DIR "/" NAME is a file
  // directly in the unit dir. Names arrive over the network, so the agent
  // refuses two more shapes that systemd would take but no unit of fleet needs.
  auto parsed = ParseUnitName(std::string_view(name.data(), name.size()));
  if (!parsed.ok()) return parsed.status();
  if (name[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat("unit name '", name, "' starts with '-'"));
  }
  size_t at = name.find('@');
  if (at != absl::string_view::npos && name.find('@', at + 1) != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("unit name '", name, "' has more than one '@'"));
  }
  return absl::OkStatus();
}

bool HasInstallSection(absl::string_view contents) {
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (absl::StripAsciiWhitespace(line) == "[Install]") return true;
  }
  return false;
}

}  // namespace fleet::agent
