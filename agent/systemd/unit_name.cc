#include "agent/systemd/unit_name.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/systemd/systemd_manager.h"

namespace fleet::agent {
namespace {

constexpr std::array<absl::string_view, 11> kUnitTypes = {
    ".service", ".socket", ".target", ".timer", ".path", ".mount",
    ".automount", ".swap", ".slice", ".scope", ".device"};

bool ValidChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_' ||
         c == '.' || c == '-' || c == '\\' || c == '@';
}

}  // namespace

bool IsRunningState(absl::string_view active_state) {
  return active_state == "active" || active_state == "activating" ||
         active_state == "reloading";
}

absl::Status ValidateUnitName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
  if (name.size() > 255) {
    return absl::InvalidArgumentError(absl::StrCat("unit name longer than 255 bytes: ", name.substr(0, 64), "..."));
  }
  for (char c : name) {
    if (!ValidChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unit name '", absl::CHexEscape(name), "' has a character systemd does not allow"));
    }
  }
  if (absl::StrContains(name, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("unit name '", name, "' contains '..'"));
  }
  size_t dot = name.rfind('.');
  absl::string_view prefix = dot == absl::string_view::npos ? name : name.substr(0, dot);
  absl::string_view suffix = dot == absl::string_view::npos ? "" : name.substr(dot);
  bool known = false;
  for (absl::string_view t : kUnitTypes) known = known || suffix == t;
  if (!known) {
    return absl::InvalidArgumentError(
        absl::StrCat("unit name '", name, "' does not end in a unit type such as .service"));
  }
  if (prefix.empty() || prefix[0] == '@' || prefix[0] == '.' || prefix[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat("unit name '", name, "' has a bad prefix"));
  }
  size_t at = prefix.find('@');
  if (at != absl::string_view::npos && prefix.find('@', at + 1) != absl::string_view::npos) {
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
