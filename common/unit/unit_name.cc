#include "common/unit/unit_name.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fleet {
namespace {

// Debian's abseil has its own string_view type; these bridge std::string_view.
std::string Escape(std::string_view s) {
  return absl::CHexEscape(absl::string_view(s.data(), s.size()));
}

constexpr std::array<UnitType, 11> kAllUnitTypes = {
    UnitType::kService,   UnitType::kSocket, UnitType::kDevice, UnitType::kMount,
    UnitType::kAutomount, UnitType::kSwap,   UnitType::kTarget, UnitType::kPath,
    UnitType::kTimer,     UnitType::kSlice,  UnitType::kScope,
};

bool IsValidNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '-' || c == '_' ||
         c == '.' || c == '\\' || c == '@';
}

std::string KnownSuffixes() {
  std::string out;
  for (UnitType type : kAllUnitTypes) {
    if (!out.empty()) out += ", ";
    out.append(UnitTypeSuffix(type));
  }
  return out;
}

}  // namespace

std::string_view UnitTypeSuffix(UnitType type) {
  switch (type) {
    case UnitType::kService:
      return "service";
    case UnitType::kSocket:
      return "socket";
    case UnitType::kDevice:
      return "device";
    case UnitType::kMount:
      return "mount";
    case UnitType::kAutomount:
      return "automount";
    case UnitType::kSwap:
      return "swap";
    case UnitType::kTarget:
      return "target";
    case UnitType::kPath:
      return "path";
    case UnitType::kTimer:
      return "timer";
    case UnitType::kSlice:
      return "slice";
    case UnitType::kScope:
      return "scope";
  }
  return "";  // unreachable: the switch is exhaustive
}

std::string_view UnitName::without_suffix() const {
  return std::string_view(full_).substr(0, dot_);
}

std::string_view UnitName::prefix() const {
  if (at_ == std::string::npos) return without_suffix();
  return std::string_view(full_).substr(0, at_);
}

std::string_view UnitName::instance() const {
  if (at_ == std::string::npos) return {};
  return std::string_view(full_).substr(at_ + 1, dot_ - at_ - 1);
}

std::string UnitName::TemplateName() const {
  if (at_ == std::string::npos) return "";
  return std::string(prefix()) + "@." + std::string(type_suffix());
}

absl::StatusOr<UnitName> ParseUnitName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("unit name is empty");
  if (name.size() > kMaxUnitNameLength) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unit name is %d bytes long; at most %d are allowed", name.size(), kMaxUnitNameLength));
  }
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unit name \"%s\" has no type suffix (one of: %s)", Escape(name), KnownSuffixes()));
  }
  std::string_view suffix = name.substr(dot + 1);
  const UnitType* type = nullptr;
  for (const UnitType& candidate : kAllUnitTypes) {
    if (UnitTypeSuffix(candidate) == suffix) type = &candidate;
  }
  if (type == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unit name \"%s\" has unknown type \".%s\" (known: %s)", Escape(name),
                        Escape(suffix), KnownSuffixes()));
  }
  if (dot == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unit name \"%s\" is only a type suffix", Escape(name)));
  }
  size_t at = std::string::npos;
  for (size_t i = 0; i < dot; ++i) {
    char c = name[i];
    if (!IsValidNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "unit name \"%s\" has character %s at position %d; allowed are letters, digits, "
          "\":-_.\\\" and one \"@\" before the instance",
          Escape(name), Escape(std::string(1, c)), i + 1));
    }
    if (c == '@' && at == std::string::npos) at = i;
  }
  if (at == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unit name \"%s\" starts with \"@\"; a template needs a prefix", Escape(name)));
  }
  // systemd would take these two, but every agent writes the name as a file
  // name into its unit dir: fleet refuses them for every unit, everywhere.
  if (name[0] == '.') {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unit name \"%s\" starts with \".\"; it would be a hidden file in the agent's unit dir",
        Escape(name)));
  }
  if (size_t dots = name.find(".."); dots != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unit name \"%s\" has \"..\" at position %d; fleet refuses it in unit names, which "
        "become file names",
        Escape(name), dots + 1));
  }
  return UnitName(std::string(name), at, dot, *type);
}

std::string ShowName(std::string_view name) {
  const bool plain = std::all_of(name.begin(), name.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain && !name.empty()) return std::string(name);
  return absl::StrCat("\"", Escape(name), "\"");
}

std::string ExpandSpecifiers(std::string_view value, const UnitName& name) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 1 < value.size()) {
      switch (value[i + 1]) {
        case 'n':
          out += name.full();
          ++i;
          continue;
        case 'N':
          out += name.without_suffix();
          ++i;
          continue;
        case 'p':
          out += name.prefix();
          ++i;
          continue;
        case 'i':
          out += name.instance();
          ++i;
          continue;
        default:
          break;
      }
    }
    out += value[i];
  }
  return out;
}

bool UnitNameGlobMatch(std::string_view pattern, std::string_view name) {
  // fnmatch needs NUL-terminated strings; a NUL inside either cannot match.
  if (pattern.find('\0') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return false;
  }
  return fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

}  // namespace fleet
