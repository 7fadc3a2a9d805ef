#pragma once

// Unit names by systemd's rules (unit_name_is_valid in systemd's
// src/basic/unit-name.c): "NAME.TYPE", at most 255 bytes, NAME made of
// [A-Za-z0-9:_.\-\\] plus '@' (fleet also refuses a leading '.' and "..").
// "foo@.service" is a template, "foo@x.service" an instance of it. Pure code,
// no I/O; all functions are thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fleet {

// The unit types systemd knows and fleet accepts, named by their suffix.
enum class UnitType {
  kService,
  kSocket,
  kDevice,
  kMount,
  kAutomount,
  kSwap,
  kTarget,
  kPath,
  kTimer,
  kSlice,
  kScope,
};

// "service", "socket", ... (the suffix without the dot).
std::string_view UnitTypeSuffix(UnitType type);

// The longest valid unit name, in bytes (systemd's UNIT_NAME_MAX - 1).
inline constexpr size_t kMaxUnitNameLength = 255;

// A valid unit name. Made only by ParseUnitName, so every UnitName is valid.
// Copyable value type.
class UnitName {
 public:
  // "web@3.service" (systemd's and fleet's %n).
  const std::string& full() const { return full_; }
  // "web@3": the name without the type suffix (%N).
  std::string_view without_suffix() const;
  // "web": the part before '@', or the whole name without suffix when there is
  // no '@' (%p).
  std::string_view prefix() const;
  // "3": the part between the first '@' and the suffix; empty for templates and
  // plain units (%i).
  std::string_view instance() const;
  // The type, and its suffix ("service").
  UnitType type() const { return type_; }
  std::string_view type_suffix() const { return UnitTypeSuffix(type_); }

  // "web@.service".
  bool IsTemplate() const { return at_ != std::string::npos && instance().empty(); }
  // "web@3.service".
  bool IsInstance() const { return at_ != std::string::npos && !instance().empty(); }
  // The template an instance comes from ("web@3.service" -> "web@.service");
  // a template's own name for a template; empty for a plain unit.
  std::string TemplateName() const;

  bool operator==(const UnitName& other) const { return full_ == other.full_; }
  bool operator<(const UnitName& other) const { return full_ < other.full_; }

 private:
  friend absl::StatusOr<UnitName> ParseUnitName(std::string_view name);
  UnitName(std::string full, size_t at, size_t dot, UnitType type)
      : full_(std::move(full)), at_(at), dot_(dot), type_(type) {}

  std::string full_;
  size_t at_;   // index of the first '@', or npos
  size_t dot_;  // index of the last '.'
  UnitType type_;
};

// Parses and validates `name`. On success the UnitName; on failure
// INVALID_ARGUMENT saying what is wrong (empty, too long, no or unknown type
// suffix, a character systemd does not allow and its position, a name that
// starts with '@'). Stricter than systemd in two ways, because agents write
// the name as a file name: a name may not start with '.' nor hold "..". Any
// byte outside ASCII (so any invalid UTF-8) is a character systemd does not
// allow.
absl::StatusOr<UnitName> ParseUnitName(std::string_view name);

// `name` as a message shows it: unchanged when it is printable ASCII with no
// quote or backslash, else in double quotes with C escapes ("a\nb", "\x1b[2J"),
// so a hostile name given in a request can neither break a log line nor send
// control bytes to a terminal.
std::string ShowName(std::string_view name);

// Expands fleet's specifiers in `value` for `name`: %n (full name), %N (name
// without suffix), %p (prefix), %i (instance). Any other '%' sequence is kept
// as written, as fleet does.
std::string ExpandSpecifiers(std::string_view value, const UnitName& name);

// Whether `name` matches the glob `pattern` ('*', '?', '[...]', '\' escapes),
// the syntax fleet's Conflicts= uses (Go's path.Match; unit names hold no '/').
// A malformed pattern matches nothing.
bool UnitNameGlobMatch(std::string_view pattern, std::string_view name);

}  // namespace fleet
