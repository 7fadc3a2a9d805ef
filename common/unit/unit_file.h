#pragma once

// The systemd unit-file syntax (systemd.syntax(7)) and fleet's identity of a
// unit file (its hash). Pure code, no I/O beyond the given buffer; every
// function is thread-safe, every type a copyable value.
//
// Syntax accepted:
//   - "[Section]" headers; "Key=Value" assignments inside a section; both may
//     be surrounded by whitespace. Repeated keys are kept, in order; sections
//     may be repeated (their options merge, as in systemd).
//   - comment lines whose first non-blank character is '#' or ';'.
//   - a line ending in '\' continues on the next line; systemd's value joins
//     the lines with a space and skips comment lines between them, a blank
//     line or the end of the file ends it.
//   - LF or CRLF line ends.
// Refused (each one an error with its line, and column where useful):
//   - a file over kMaxUnitFileSize bytes; bytes that are not UTF-8; NUL bytes
//     (these two also say the byte's offset in the file, counted from 0).
//   - a line longer than kMaxLineLength bytes with its line end (fleet's and
//     systemd's LINE_MAX; fleet refuses such lines).
//   - an assignment before the first section header, a line in a section that
//     is neither a comment nor "Key=Value", an empty key, a malformed header.
//   - a comment line ending in '\': systemd and fleet disagree on whether the
//     next line is part of the comment, so the file would mean two things.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fleet {

inline constexpr size_t kMaxUnitFileSize = 1 << 20;  // 1 MiB
inline constexpr size_t kMaxLineLength = 2048;       // bytes, with the line end

// One problem found in a unit file. `line` and `column` count from 1 and are 0
// when they do not apply (e.g. a file too large, or a problem of the name).
struct UnitError {
  int line = 0;
  int column = 0;
  std::string message;

  bool operator==(const UnitError&) const = default;
};

// "line 3, column 7: message" (the parts that apply).
std::string FormatUnitError(const UnitError& error);

// One "Key=Value" assignment.
struct UnitOption {
  std::string section;  // the section it is in, e.g. "Service"
  std::string name;     // the key, e.g. "ExecStart"
  // The value as systemd reads it: surrounding whitespace trimmed, continued
  // lines joined with a space. Empty for an empty assignment ("Key="), which
  // resets a list in systemd.
  std::string value;
  // The value as fleet (go-systemd's deserializer) keeps it, used for the hash:
  // the continued lines as written, joined by "\n" (backslashes kept).
  // Equal to `value` unless the assignment spans several lines.
  std::string fleet_value;
  int line = 0;    // the line of the key
  int column = 0;  // the column of the key

  bool operator==(const UnitOption&) const = default;
};

// A parsed unit file: the bytes as submitted and the options in file order.
class UnitFile {
 public:
  // Normally made by ParseUnitFile; `options` must be in file order and
  // `sections` the section names in first-seen order.
  UnitFile(std::string contents, std::vector<std::string> sections, std::vector<UnitOption> options)
      : contents_(std::move(contents)),
        sections_(std::move(sections)),
        options_(std::move(options)) {}

  // The file byte for byte as submitted (what `cat` shows).
  const std::string& contents() const { return contents_; }
  // Section names in first-seen order, including sections without options.
  const std::vector<std::string>& sections() const { return sections_; }
  // Every assignment, in file order.
  const std::vector<UnitOption>& options() const { return options_; }

  // The assignments of `key` in `section`, in file order (empty if none).
  std::vector<const UnitOption*> Find(std::string_view section, std::string_view key) const;
  // The values of `key` in `section` with systemd's list meaning: in order,
  // an empty assignment drops the values before it (and adds none).
  std::vector<std::string> ListValues(std::string_view section, std::string_view key) const;

  bool operator==(const UnitFile&) const = default;

 private:
  std::string contents_;
  std::vector<std::string> sections_;
  std::vector<UnitOption> options_;
};

// The result of parsing with every error collected (for `fleetctl verify`).
struct UnitFileParse {
  UnitFile file;                  // what could be parsed; lines in error are left out
  std::vector<UnitError> errors;  // in line order; empty when the file is valid
};

// Parses `contents` and collects every syntax error (the parse goes on after
// an error on a line). A file over kMaxUnitFileSize gives one error and no
// options.
UnitFileParse ParseUnitFileCollectingErrors(std::string_view contents);

// Parses `contents`. On success the UnitFile; on failure INVALID_ARGUMENT with
// the first error, formatted by FormatUnitError.
absl::StatusOr<UnitFile> ParseUnitFile(std::string_view contents);

// fleet's normalized serialization of a unit file (go-systemd's
// unit.Serialize): for each section in first-seen order that has options,
// "[Section]\n" then "Key=Value\n" for each of its options in file order (the
// fleet_value), with one blank line between sections. Comments, blank lines
// and the whitespace around keys and values are gone; "" for a file without
// options.
std::string SerializeForHash(const UnitFile& file);

// fleet's hash of a unit file: lowercase hex SHA-1 of SerializeForHash, so a
// unit shows the same hash here as in fleet, and a comment or whitespace edit
// does not change it.
std::string FleetHash(const UnitFile& file);

}  // namespace fleet
