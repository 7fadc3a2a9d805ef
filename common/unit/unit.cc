#include "common/unit/unit.h"

#include <algorithm>
#include <array>
#include <optional>
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

enum class FleetKey { kMachineId, kMachineOf, kMachineMetadata, kConflicts, kGlobal, kReplaces };

std::string_view KeyName(FleetKey key) {
  switch (key) {
    case FleetKey::kMachineId:
      return "MachineID";
    case FleetKey::kMachineOf:
      return "MachineOf";
    case FleetKey::kMachineMetadata:
      return "MachineMetadata";
    case FleetKey::kConflicts:
      return "Conflicts";
    case FleetKey::kGlobal:
      return "Global";
    case FleetKey::kReplaces:
      return "Replaces";
  }
  return "";  // unreachable: the switch is exhaustive
}

struct KeySpelling {
  std::string_view spelling;
  FleetKey key;
};

constexpr std::array<KeySpelling, 10> kKeySpellings = {{
    {"MachineID", FleetKey::kMachineId},
    {"MachineOf", FleetKey::kMachineOf},
    {"MachineMetadata", FleetKey::kMachineMetadata},
    {"Conflicts", FleetKey::kConflicts},
    {"Global", FleetKey::kGlobal},
    {"Replaces", FleetKey::kReplaces},
    {"X-ConditionMachineID", FleetKey::kMachineId},
    {"X-ConditionMachineOf", FleetKey::kMachineOf},
    {"X-ConditionMachineMetadata", FleetKey::kMachineMetadata},
    {"X-Conflicts", FleetKey::kConflicts},
}};

std::optional<FleetKey> LookUpKey(std::string_view spelling) {
  for (const KeySpelling& entry : kKeySpellings) {
    if (entry.spelling == spelling) return entry.key;
  }
  return std::nullopt;
}

// fleet's parseMultivalueLine: a value that starts and ends with '"' is split
// at spaces outside quotes, and the quotes are dropped; any other value is one
// item. Empty items are dropped here.
std::vector<std::string> SplitMultiValue(std::string_view value) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') {
    return {std::string(value)};
  }
  std::vector<std::string> items;
  std::string item;
  bool quoted = false;
  for (char c : value) {
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (c == ' ' && !quoted) {
      if (!item.empty()) items.push_back(std::move(item));
      item.clear();
      continue;
    }
    item += c;
  }
  if (!item.empty()) items.push_back(std::move(item));
  return items;
}

// A value of a list key with the line it came from.
struct Item {
  std::string value;
  int line = 0;
};

// What the [X-Fleet] section says, with lines, before the combination checks.
struct Collected {
  std::vector<Item> machine_id;
  std::vector<Item> machine_of;
  std::vector<Item> metadata;  // "key=value", validated
  std::vector<Item> conflicts;
  std::vector<Item> replaces;
  bool global = false;
  int global_line = 0;

  std::vector<Item>* List(FleetKey key) {
    switch (key) {
      case FleetKey::kMachineId:
        return &machine_id;
      case FleetKey::kMachineOf:
        return &machine_of;
      case FleetKey::kMachineMetadata:
        return &metadata;
      case FleetKey::kConflicts:
        return &conflicts;
      case FleetKey::kReplaces:
        return &replaces;
      case FleetKey::kGlobal:
        return nullptr;
    }
    return nullptr;  // unreachable: the switch is exhaustive
  }

  // The line a key is first used on, or 0 when it is not in effect.
  int LineOf(FleetKey key) const {
    if (key == FleetKey::kGlobal) return global ? global_line : 0;
    const std::vector<Item>* list = const_cast<Collected*>(this)->List(key);
    return list->empty() ? 0 : list->front().line;
  }
};

void AddUnique(std::vector<Item>* list, std::string value, int line) {
  for (const Item& item : *list) {
    if (item.value == value) return;
  }
  list->push_back({std::move(value), line});
}

std::string AllowedKeys() {
  return "allowed: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces, and the "
         "deprecated X-ConditionMachineID, X-ConditionMachineOf, X-ConditionMachineMetadata, "
         "X-Conflicts";
}

// Reads one [X-Fleet] item of `key` into `out`; a bad item is reported.
void ReadItem(FleetKey key, std::string item, const UnitOption& option, Collected* out,
              std::vector<UnitError>* errors) {
  auto error = [&](std::string message) {
    errors->push_back({option.line, option.column, std::move(message)});
  };
  switch (key) {
    case FleetKey::kMachineId:
      for (const Item& existing : out->machine_id) {
        if (existing.value != item) {
          error(absl::StrFormat(
              "%s=%s: the unit already has MachineID=%s (line %d); a unit runs on one machine",
              option.name, Escape(item), Escape(existing.value), existing.line));
          return;
        }
      }
      AddUnique(&out->machine_id, std::move(item), option.line);
      return;
    case FleetKey::kMachineOf:
    case FleetKey::kReplaces:
      if (absl::StatusOr<UnitName> unit = ParseUnitName(item); !unit.ok()) {
        error(absl::StrFormat("%s= must name units: %s", option.name, unit.status().message()));
        return;
      }
      AddUnique(out->List(key), std::move(item), option.line);
      return;
    case FleetKey::kMachineMetadata: {
      size_t eq = item.find('=');
      if (eq == 0 || eq == std::string::npos || eq + 1 == item.size() ||
          item.find('=', eq + 1) != std::string::npos) {
        error(absl::StrFormat(
            "%s item \"%s\" is not key=value (one \"=\", a non-empty key and value; quote "
            "several items: %s=\"region=east\" \"disk=ssd\")",
            option.name, Escape(item), option.name));
        return;
      }
      AddUnique(&out->metadata, std::move(item), option.line);
      return;
    }
    case FleetKey::kConflicts:
      AddUnique(&out->conflicts, std::move(item), option.line);
      return;
    case FleetKey::kGlobal: {
      bool ok = false;
      bool global = ParseSystemdBoolean(item, &ok);
      if (!ok) {
        error(absl::StrFormat(
            "%s=%s is not a boolean (allowed: true/yes/y/on/t/1 or false/no/n/off/f/0)",
            option.name, Escape(item)));
        return;
      }
      out->global = global;
      out->global_line = option.line;
      return;
    }
  }
}

// A combination fleet refuses, with why and what to do.
struct Refused {
  FleetKey a, b;
  std::string_view why;
};

constexpr std::array<Refused, 7> kRefused = {{
    {FleetKey::kMachineId, FleetKey::kMachineOf, "both choose the machine; keep one"},
    {FleetKey::kMachineId, FleetKey::kConflicts,
     "a unit pinned to one machine cannot move away from others; MachineID= combines only with "
     "MachineMetadata="},
    {FleetKey::kMachineId, FleetKey::kGlobal,
     "a global unit runs on every machine; narrow it with MachineMetadata= instead"},
    {FleetKey::kMachineId, FleetKey::kReplaces,
     "a unit pinned to one machine cannot evict others; MachineID= combines only with "
     "MachineMetadata="},
    {FleetKey::kGlobal, FleetKey::kMachineOf,
     "a global unit runs on every machine that matches; Global= combines only with "
     "MachineMetadata= and Conflicts="},
    {FleetKey::kGlobal, FleetKey::kReplaces,
     "a global unit runs on every machine that matches; Global= combines only with "
     "MachineMetadata= and Conflicts="},
    {FleetKey::kConflicts, FleetKey::kReplaces,
     "Replaces= already keeps the replaced unit off the machine; keep one of them"},
}};

void CheckCombinations(const Collected& in, const UnitName& name, std::vector<UnitError>* errors) {
  for (const Refused& refused : kRefused) {
    int line_a = in.LineOf(refused.a);
    int line_b = in.LineOf(refused.b);
    if (line_a == 0 || line_b == 0) continue;
    std::string_view a = KeyName(refused.a), b = KeyName(refused.b);
    std::string a_text = refused.a == FleetKey::kGlobal ? "Global=true" : std::string(a) + "=";
    std::string b_text = refused.b == FleetKey::kGlobal ? "Global=true" : std::string(b) + "=";
    errors->push_back({std::max(line_a, line_b), 0,
                       absl::StrFormat("%s (line %d) cannot be used with %s (line %d): %s", a_text,
                                       line_a, b_text, line_b, refused.why)});
  }
  for (const Item& peer : in.machine_of) {
    if (peer.value == name.full()) {
      errors->push_back({peer.line, 0,
                         absl::StrFormat("MachineOf=%s names the unit itself; name the units it "
                                         "must run beside",
                                         peer.value)});
      continue;
    }
    for (const Item& conflict : in.conflicts) {
      if (UnitNameGlobMatch(conflict.value, peer.value)) {
        errors->push_back(
            {std::max(peer.line, conflict.line), 0,
             absl::StrFormat("MachineOf=%s (line %d) is matched by Conflicts=%s (line %d): the "
                             "unit cannot run both beside and away from %s",
                             peer.value, peer.line, conflict.value, conflict.line, peer.value)});
      }
    }
    for (const Item& replaced : in.replaces) {
      if (replaced.value == peer.value) {
        errors->push_back(
            {std::max(peer.line, replaced.line), 0,
             absl::StrFormat("MachineOf=%s (line %d) is also in Replaces= (line %d): the unit "
                             "cannot run beside a unit it evicts",
                             peer.value, peer.line, replaced.line)});
      }
    }
  }
}

std::vector<std::string> Values(const std::vector<Item>& items) {
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const Item& item : items) out.push_back(item.value);
  return out;
}

void SortByLine(std::vector<UnitError>* errors) {
  std::stable_sort(errors->begin(), errors->end(),
                   [](const UnitError& a, const UnitError& b) { return a.line < b.line; });
}

}  // namespace

bool ParseSystemdBoolean(std::string_view text, bool* ok) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  *ok = true;
  if (lower == "1" || lower == "yes" || lower == "y" || lower == "true" || lower == "t" ||
      lower == "on") {
    return true;
  }
  if (lower == "0" || lower == "no" || lower == "n" || lower == "false" || lower == "f" ||
      lower == "off") {
    return false;
  }
  *ok = false;
  return false;
}

FleetOptions ParseFleetOptions(const UnitFile& file, const UnitName& name,
                               std::vector<UnitError>* errors) {
  Collected collected;
  size_t first_error = errors->size();
  for (const UnitOption& option : file.options()) {
    if (option.section != kFleetSection) continue;
    std::optional<FleetKey> key = LookUpKey(option.name);
    if (!key.has_value()) {
      errors->push_back({option.line, option.column,
                         absl::StrFormat("unknown key \"%s\" in [X-Fleet] (%s)",
                                         Escape(option.name), AllowedKeys())});
      continue;
    }
    if (option.value.empty()) {  // an empty assignment resets the key
      if (*key == FleetKey::kGlobal) {
        collected.global = false;
      } else {
        collected.List(*key)->clear();
      }
      continue;
    }
    for (std::string& item : SplitMultiValue(option.value)) {
      // A template is never scheduled, and a specifier means something only
      // for an instance (%i is empty here: MachineMetadata=hostname=%i would
      // read as "hostname="). Each instance is parsed with its own name.
      if (name.IsTemplate() && item.find('%') != std::string::npos) continue;
      ReadItem(*key, ExpandSpecifiers(item, name), option, &collected, errors);
    }
  }
  // Combinations are judged only on what could be read without error, so one
  // bad line does not hide or invent others.
  if (errors->size() == first_error) CheckCombinations(collected, name, errors);

  FleetOptions options;
  if (!collected.machine_id.empty()) options.machine_id = collected.machine_id.front().value;
  options.machine_of = Values(collected.machine_of);
  for (const Item& item : collected.metadata) {
    size_t eq = item.value.find('=');
    options.machine_metadata[item.value.substr(0, eq)].push_back(item.value.substr(eq + 1));
  }
  options.conflicts = Values(collected.conflicts);
  options.global = collected.global;
  options.replaces = Values(collected.replaces);
  return options;
}

namespace {

// Everything ParseUnit and VerifyUnit find.
struct Checked {
  absl::StatusOr<UnitName> name;
  UnitFileParse parse;
  FleetOptions options;
  std::vector<UnitError> errors;  // in line order
};

Checked Check(std::string_view name, std::string_view contents) {
  Checked out{.name = ParseUnitName(name),
              .parse = ParseUnitFileCollectingErrors(contents),
              .options = {},
              .errors = {}};
  if (!out.name.ok()) out.errors.push_back({0, 0, std::string(out.name.status().message())});
  out.errors.insert(out.errors.end(), out.parse.errors.begin(), out.parse.errors.end());
  if (out.parse.file.options().empty() && out.parse.errors.empty()) {
    out.errors.push_back({0, 0, "unit file has no options; there is nothing to run"});
  }
  if (out.name.ok()) out.options = ParseFleetOptions(out.parse.file, *out.name, &out.errors);
  SortByLine(&out.errors);
  return out;
}

}  // namespace

std::vector<UnitError> VerifyUnit(std::string_view name, std::string_view contents) {
  return Check(name, contents).errors;
}

absl::StatusOr<ParsedUnit> ParseUnit(std::string_view name, std::string_view contents) {
  Checked checked = Check(name, contents);
  if (!checked.errors.empty()) {
    std::string message = FormatUnitError(checked.errors.front());
    if (checked.errors.size() > 1) {
      absl::StrAppend(&message, " (and ", checked.errors.size() - 1, " more)");
    }
    return absl::InvalidArgumentError(message);
  }
  std::string hash = FleetHash(checked.parse.file);
  return ParsedUnit{.name = *std::move(checked.name),
                    .file = std::move(checked.parse.file),
                    .options = std::move(checked.options),
                    .hash = std::move(hash)};
}

}  // namespace fleet
