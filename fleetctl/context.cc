#include "fleetctl/context.h"

namespace fleet::ctl {

absl::StatusOr<Client*> Context::client() {
  if (client_ == nullptr) {
    auto made = factory_();
    if (!made.ok()) {
      client_error_ = made.status();
      return made.status();
    }
    client_ = std::move(*made);
  }
  return client_.get();
}

int Context::Fail(const absl::Status& status) {
  err_ << "Error: " << status.message() << "\n";
  bool usage = !client_error_.ok() && status == client_error_ &&
               client_error_.code() == absl::StatusCode::kInvalidArgument;
  return usage ? kExitUsage : kExitFailed;
}

void ListingFlags::Add(CLI::App& command, const std::string& default_fields) {
  fields = default_fields;
  fields_option = command.add_option("--fields", fields, "Columns to print (comma-separated)")
                      ->capture_default_str();
  command.add_flag("--no-legend", no_legend, "Do not print a legend (column headers)");
  command.add_flag("-l,--full", full, "Do not ellipsize fields on output");
  command.add_option("-o,--output", output, "Output format: table, json or yaml")
      ->capture_default_str();
}

absl::StatusOr<std::string> ListingFlags::Render(const Listing& all) const {
  auto format = ParseOutputFormat(output);
  if (!format.ok()) return format.status();
  bool every_field = *format != OutputFormat::kTable && fields_option->count() == 0;
  auto selected = every_field ? all : SelectFields(all, fields);
  if (!selected.ok()) return selected.status();
  return Format(*selected, *format, !no_legend);
}

}  // namespace fleet::ctl
