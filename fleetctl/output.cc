#include "fleetctl/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace fleet::ctl {
namespace {

constexpr size_t kTabWidth = 8;
constexpr size_t kPadding = 1;

std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --output \"", text, "\": use table, json or yaml"));
}

std::string FormatTable(const Listing& listing, bool legend) {
  std::vector<std::vector<std::string>> lines;
  if (legend) {
    std::vector<std::string> header;
    for (const auto& c : listing.columns) header.push_back(absl::AsciiStrToUpper(c));
    lines.push_back(std::move(header));
  }
  lines.insert(lines.end(), listing.rows.begin(), listing.rows.end());

  // Every column but the last is padded to a tab stop past its widest cell.
  size_t columns = listing.columns.size();
  std::vector<size_t> width(columns, 0);
  for (const auto& line : lines) {
    for (size_t i = 0; i + 1 < columns && i < line.size(); ++i) {
      width[i] = std::max(width[i], line[i].size() + kPadding);
    }
  }
  std::string out;
  for (const auto& line : lines) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 == line.size()) break;
      size_t cell = (width[i] + kTabWidth - 1) / kTabWidth * kTabWidth;
      size_t tabs = (cell - line[i].size() + kTabWidth - 1) / kTabWidth;
      out.append(tabs, '\t');
    }
    out += '\n';
  }
  return out;
}

std::string FormatJson(const Listing& listing) {
  std::string out = "[";
  for (size_t r = 0; r < listing.rows.size(); ++r) {
    out += r == 0 ? "\n  {" : ",\n  {";
    for (size_t c = 0; c < listing.columns.size(); ++c) {
      absl::StrAppend(&out, c == 0 ? "" : ", ", JsonQuote(listing.columns[c]), ": ",
                      JsonQuote(listing.rows[r][c]));
    }
    out += "}";
  }
  out += listing.rows.empty() ? "]\n" : "\n]\n";
  return out;
}

std::string FormatYaml(const Listing& listing) {
  YAML::Emitter emitter;
  emitter << YAML::BeginSeq;
  for (const auto& row : listing.rows) {
    emitter << YAML::BeginMap;
    for (size_t c = 0; c < listing.columns.size(); ++c) {
      emitter << YAML::Key << listing.columns[c] << YAML::Value << YAML::DoubleQuoted
              << row[c];
    }
    emitter << YAML::EndMap;
  }
  emitter << YAML::EndSeq;
  std::string out = emitter.c_str();
  return out + "\n";
}

std::string Format(const Listing& listing, OutputFormat format, bool legend) {
  switch (format) {
    case OutputFormat::kTable:
      return FormatTable(listing, legend);
    case OutputFormat::kJson:
      return FormatJson(listing);
    case OutputFormat::kYaml:
      return FormatYaml(listing);
  }
  return "";
}

absl::StatusOr<Listing> SelectFields(const Listing& all, const std::string& fields) {
  if (fields.empty()) return absl::InvalidArgumentError("Must define output format");
  std::vector<size_t> picked;
  for (absl::string_view field : absl::StrSplit(fields, ',')) {
    auto it = std::find(all.columns.begin(), all.columns.end(), field);
    if (it == all.columns.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "Invalid key in output format: \"%s\" (valid fields: %s)", field,
          absl::StrJoin(all.columns, ",")));
    }
    picked.push_back(static_cast<size_t>(it - all.columns.begin()));
  }
  Listing out;
  for (size_t i : picked) out.columns.push_back(all.columns[i]);
  for (const auto& row : all.rows) {
    std::vector<std::string> cells;
    for (size_t i : picked) cells.push_back(row[i]);
    out.rows.push_back(std::move(cells));
  }
  return out;
}

std::string MachineLegend(const std::string& id, const std::string& ip, bool full) {
  if (id.empty()) return "-";
  std::string legend = full ? id : absl::StrCat(id.substr(0, 8), "...");
  if (!ip.empty()) absl::StrAppend(&legend, "/", ip);
  return legend;
}

}  // namespace fleet::ctl
