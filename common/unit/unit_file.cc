#include "common/unit/unit_file.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace fleet {
namespace {

// Debian's abseil has its own string_view type; these bridge std::string_view.
std::string Escape(std::string_view s) {
  return absl::CHexEscape(absl::string_view(s.data(), s.size()));
}

constexpr std::string_view kBlanks = " \t\n\v\f\r";

std::string_view TrimLeft(std::string_view s) {
  size_t start = s.find_first_not_of(kBlanks);
  return start == std::string_view::npos ? std::string_view() : s.substr(start);
}

std::string_view TrimRight(std::string_view s) {
  size_t end = s.find_last_not_of(kBlanks);
  return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}

std::string_view Trim(std::string_view s) { return TrimRight(TrimLeft(s)); }

// One physical line of the file, without its line end ("\n" or "\r\n").
struct Line {
  std::string_view text;
  int number = 0;
  bool has_newline = false;  // false only for a last line without "\n"
  bool usable = true;        // false when the line itself is in error
};

// Returns the offset of the first byte of `s` that is not part of well-formed
// UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF), or
// npos when all of `s` is well-formed.
size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > s.size()) return i;
    for (size_t k = 1; k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(s[i + k]);
      unsigned char min = k == 1 ? lo : 0x80;
      unsigned char max = k == 1 ? hi : 0xBF;
      if (next < min || next > max) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

bool IsComment(std::string_view stripped) {
  return !stripped.empty() && (stripped[0] == '#' || stripped[0] == ';');
}

int ColumnOf(const Line& line, std::string_view part) {
  return static_cast<int>(part.data() - line.text.data()) + 1;
}

class Parser {
 public:
  explicit Parser(std::string_view contents) : contents_(contents) {}

  UnitFileParse Run() && {
    if (contents_.size() > kMaxUnitFileSize) {
      errors_.push_back(
          {0, 0,
           absl::StrFormat("unit file is %d bytes; at most %d bytes (1 MiB) are allowed",
                           contents_.size(), kMaxUnitFileSize)});
      return {UnitFile(std::string(contents_), {}, {}), std::move(errors_)};
    }
    SplitLines();
    for (size_t i = 0; i < lines_.size();) i = ParseLine(i);
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const UnitError& a, const UnitError& b) { return a.line < b.line; });
    return {UnitFile(std::string(contents_), std::move(sections_), std::move(options_)),
            std::move(errors_)};
  }

 private:
  // The offset (from 0) in the whole file of byte `index` of `line`, so a
  // client can find a byte that no editor shows.
  size_t OffsetInFile(const Line& line, size_t index) const {
    return static_cast<size_t>(line.text.data() - contents_.data()) + index;
  }

  void Error(const Line& line, int column, std::string message) {
    errors_.push_back({line.number, column, std::move(message)});
  }

  // Cuts the file into lines and checks what applies to every line: length,
  // NUL bytes and UTF-8. A line in error is marked unusable.
  void SplitLines() {
    size_t start = 0;
    int number = 0;
    while (start < contents_.size()) {
      size_t end = contents_.find('\n', start);
      Line line;
      line.number = ++number;
      line.has_newline = end != std::string_view::npos;
      if (!line.has_newline) end = contents_.size();
      line.text = contents_.substr(start, end - start);
      if (line.text.ends_with("\r")) line.text.remove_suffix(1);
      start = end + 1;
      if (line.text.size() >= kMaxLineLength) {
        Error(line, static_cast<int>(kMaxLineLength),
              absl::StrFormat("line is %d bytes long; at most %d bytes with the line end are "
                              "allowed (systemd's LINE_MAX; split it with a trailing \"\\\")",
                              line.text.size() + 1, kMaxLineLength));
        line.usable = false;
      } else if (size_t nul = line.text.find('\0'); nul != std::string_view::npos) {
        Error(line, static_cast<int>(nul) + 1,
              absl::StrFormat("NUL byte at byte %d of the file; a unit file is text",
                              OffsetInFile(line, nul)));
        line.usable = false;
      } else if (size_t bad = FindInvalidUtf8(line.text); bad != std::string_view::npos) {
        Error(line, static_cast<int>(bad) + 1,
              absl::StrFormat("not valid UTF-8 at byte %d of the file (0x%02x); a unit file must "
                              "be UTF-8",
                              OffsetInFile(line, bad), static_cast<unsigned char>(line.text[bad])));
        line.usable = false;
      }
      lines_.push_back(line);
    }
  }

  // Parses the line at `i` (and the lines that continue it); returns the index
  // of the next line to parse.
  size_t ParseLine(size_t i) {
    const Line& line = lines_[i];
    if (!line.usable) return i + 1;
    std::string_view stripped = Trim(line.text);
    if (stripped.empty()) return i + 1;
    if (IsComment(stripped)) {
      if (stripped.ends_with("\\")) {
        Error(line, ColumnOf(line, stripped.substr(stripped.size() - 1)),
              "comment line ends with \"\\\"; systemd and fleet disagree on whether the next "
              "line is part of the comment, remove the \"\\\"");
      }
      return i + 1;
    }
    if (stripped[0] == '[') {
      ParseSectionHeader(line, stripped);
      return i + 1;
    }
    return ParseAssignment(i, stripped);
  }

  void ParseSectionHeader(const Line& line, std::string_view stripped) {
    if (stripped.size() < 2 || stripped.back() != ']') {
      Error(line, ColumnOf(line, stripped),
            "section header must be \"[Name]\" alone on its line (nothing after \"]\")");
      section_.reset();
      return;
    }
    std::string_view name = stripped.substr(1, stripped.size() - 2);
    if (name.empty()) {
      Error(line, ColumnOf(line, stripped), "section header \"[]\" has no name");
      section_.reset();
      return;
    }
    if (size_t bad = name.find_first_of("[]"); bad != std::string_view::npos) {
      Error(line, ColumnOf(line, name.substr(bad)),
            absl::StrFormat("section name \"%s\" contains \"%c\"", Escape(name), name[bad]));
      section_.reset();
      return;
    }
    section_ = std::string(name);
    if (std::find(sections_.begin(), sections_.end(), *section_) == sections_.end()) {
      sections_.push_back(*section_);
    }
  }

  size_t ParseAssignment(size_t i, std::string_view stripped) {
    const Line& line = lines_[i];
    size_t eq = stripped.find('=');
    // Continued lines belong to this line even when it is in error, so they
    // are consumed before any error is reported.
    std::string value, fleet_value;
    size_t next = i + 1;
    if (eq != std::string_view::npos) {
      // The value as written up to the line end (trailing blanks included:
      // "\" followed by blanks is no continuation, for fleet and systemd).
      size_t value_start = static_cast<size_t>(stripped.data() - line.text.data()) + eq + 1;
      next = ReadValue(i, line.text.substr(value_start), &value, &fleet_value);
    } else {
      while (next < lines_.size() && lines_[next - 1].text.ends_with("\\") && lines_[next].usable &&
             !Trim(lines_[next].text).empty()) {
        ++next;
      }
    }
    if (eq == std::string_view::npos) {
      Error(line, ColumnOf(line, stripped),
            absl::StrFormat("\"%s\" is not \"Key=Value\", a \"[Section]\" header or a comment",
                            Escape(stripped.substr(0, 40))));
      return next;
    }
    std::string_view key = TrimRight(stripped.substr(0, eq));
    if (key.empty()) {
      Error(line, ColumnOf(line, stripped), "assignment has no key before \"=\"");
      return next;
    }
    if (!section_.has_value()) {
      Error(line, ColumnOf(line, stripped),
            absl::StrFormat("\"%s=\" is outside of any section; put it under a \"[Section]\" "
                            "header",
                            key));
      return next;
    }
    options_.push_back(UnitOption{.section = *section_,
                                  .name = std::string(key),
                                  .value = std::move(value),
                                  .fleet_value = std::move(fleet_value),
                                  .line = line.number,
                                  .column = ColumnOf(line, stripped)});
    return next;
  }

  // Reads the value that starts with `first` on line `i`, following
  // continuation lines. Sets systemd's value and fleet's (go-systemd's) value;
  // returns the index of the line after the value.
  size_t ReadValue(size_t i, std::string_view first, std::string* value, std::string* fleet_value) {
    std::string joined;        // systemd: "\" replaced by a space
    std::string fleet_joined;  // go-systemd: lines kept, "\n" between them
    std::string_view part = first;
    size_t at = i;  // the line `part` is on
    size_t next;    // the first line after the value
    while (true) {
      fleet_joined += part;
      if (!part.ends_with("\\")) {
        joined += part;
        next = at + 1;
        break;
      }
      joined += part.substr(0, part.size() - 1);
      joined += ' ';
      if (lines_[at].has_newline) fleet_joined += '\n';
      ++at;
      if (at >= lines_.size()) {
        next = at;
        break;
      }
      std::string_view stripped = Trim(lines_[at].text);
      if (!lines_[at].usable || stripped.empty()) {
        // A blank line ends the value; a line in error was reported already.
        next = at + 1;
        break;
      }
      if (IsComment(stripped)) {
        Error(lines_[at], ColumnOf(lines_[at], stripped),
              "comment line inside a value continued with \"\\\": systemd skips it but fleet "
              "ends the value here; move the comment out of the value");
        next = at + 1;
        break;
      }
      part = lines_[at].text;
    }
    *value = std::string(Trim(joined));
    *fleet_value = std::string(Trim(fleet_joined));
    // go-systemd keeps the "\n" after a trailing "\" when a blank line or the
    // end of the file ends the value.
    if (fleet_joined.ends_with("\n")) *fleet_value += '\n';
    return next;
  }

  std::string_view contents_;
  std::vector<Line> lines_;
  std::vector<UnitError> errors_;
  std::vector<std::string> sections_;
  std::vector<UnitOption> options_;
  std::optional<std::string> section_;
};

}  // namespace

std::string FormatUnitError(const UnitError& error) {
  if (error.line == 0) return error.message;
  if (error.column == 0) return absl::StrCat("line ", error.line, ": ", error.message);
  return absl::StrCat("line ", error.line, ", column ", error.column, ": ", error.message);
}

std::vector<const UnitOption*> UnitFile::Find(std::string_view section,
                                              std::string_view key) const {
  std::vector<const UnitOption*> out;
  for (const UnitOption& option : options_) {
    if (option.section == section && option.name == key) out.push_back(&option);
  }
  return out;
}

std::vector<std::string> UnitFile::ListValues(std::string_view section,
                                              std::string_view key) const {
  std::vector<std::string> out;
  for (const UnitOption* option : Find(section, key)) {
    if (option->value.empty()) {
      out.clear();
    } else {
      out.push_back(option->value);
    }
  }
  return out;
}

UnitFileParse ParseUnitFileCollectingErrors(std::string_view contents) {
  return Parser(contents).Run();
}

absl::StatusOr<UnitFile> ParseUnitFile(std::string_view contents) {
  UnitFileParse parse = ParseUnitFileCollectingErrors(contents);
  if (!parse.errors.empty()) {
    return absl::InvalidArgumentError(FormatUnitError(parse.errors.front()));
  }
  return std::move(parse.file);
}

std::string SerializeForHash(const UnitFile& file) {
  // Sections in first-seen order of their options (go-systemd groups options,
  // so a section without options does not appear).
  std::vector<std::string_view> order;
  absl::flat_hash_map<std::string_view, std::vector<const UnitOption*>> by_section;
  for (const UnitOption& option : file.options()) {
    auto [it, inserted] = by_section.try_emplace(option.section);
    if (inserted) order.push_back(option.section);
    it->second.push_back(&option);
  }
  std::string out;
  for (size_t s = 0; s < order.size(); ++s) {
    out.append("[").append(order[s]).append("]\n");
    for (const UnitOption* option : by_section[order[s]]) {
      out.append(option->name).append("=").append(option->fleet_value).append("\n");
    }
    if (s + 1 < order.size()) out += '\n';
  }
  return out;
}

std::string FleetHash(const UnitFile& file) {
  std::string serialized = SerializeForHash(file);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // SHA-1 of a buffer in memory fails only when libcrypto is broken: an
  // invariant, so crash loudly rather than hand out a wrong identity.
  if (EVP_Digest(serialized.data(), serialized.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    std::fputs("fleet: EVP_Digest(SHA-1) failed\n", stderr);
    std::abort();
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace fleet
