#include "agent/systemd/unit_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "agent/systemd/systemd_manager.h"
#include "common/unit/unit_name.h"

namespace fleet::agent {

bool IsRunningState(absl::string_view active_state) {
  return active_state == "active" || active_state == "activating" ||
         active_state == "reloading";
}

absl::Status ValidateUnitName(absl::string_view name) {
  // The engine refused at submit what this refuses (common/unit's rules);
  // the agent checks again because names arrive over the network. A name
  // that passes is printable ASCII without '/', NUL or "..", so
  // UNIT_DIR "/" NAME is a file directly in the unit dir.
  return ParseUnitName(std::string_view(name.data(), name.size())).status();
}

bool HasInstallSection(absl::string_view contents) {
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (absl::StripAsciiWhitespace(line) == "[Install]") return true;
  }
  return false;
}

}  // namespace fleet::agent
