#pragma once

// Output of listings: fleet's tab-aligned table, or JSON / YAML for scripts.
// Pure formatting, no I/O: callers print the returned string.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fleet::ctl {

enum class OutputFormat { kTable, kJson, kYaml };

// Parses "table", "json" or "yaml"; INVALID_ARGUMENT names the bad value.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);

// One listing: column names (fleet's field names, lower case) and rows of
// cells in the same order.
struct Listing {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// fleet's table: upper-case legend line (unless `legend` is false), cells
// separated and aligned with tabs exactly as Go's tabwriter with minwidth 0,
// tabwidth 8, padding 1 and padchar '\t' does, so `awk`/`cut -f` scripts
// written for fleetctl keep working.
std::string FormatTable(const Listing& listing, bool legend);

// A JSON array of objects, one per row, keyed by column name; values are
// strings. Ends with a newline.
std::string FormatJson(const Listing& listing);

// A YAML sequence of mappings, one per row, keyed by column name.
std::string FormatYaml(const Listing& listing);

std::string Format(const Listing& listing, OutputFormat format, bool legend);

// Picks `fields` (comma-separated, fleet's --fields syntax) out of `all`.
// INVALID_ARGUMENT, as fleet says it, for an empty list or an unknown field:
// `Invalid key in output format: "x"`.
absl::StatusOr<Listing> SelectFields(const Listing& all, const std::string& fields);

// fleet's short machine legend: the first 8 characters of the id and "..."
// (unless `full`), then "/IP" when the address is known.
std::string MachineLegend(const std::string& id, const std::string& ip, bool full);

}  // namespace fleet::ctl
