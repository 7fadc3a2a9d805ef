#pragma once

// What every fleetctl command runs with: the global flags, the engine client
// (made on first use, so `verify` and `version` work without an engine), and
// the streams to print to (tests pass string streams).

#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "fleetctl/client.h"
#include "fleetctl/output.h"

namespace fleet::ctl {

// Exit codes: 0 = every named unit reached what was asked; 1 = something
// failed (each failing unit is named on stderr); 2 = usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct GlobalFlags {
  ConnectionOptions connection;
  std::string request_timeout = "10s";
};

class Context {
 public:
  // Makes the client from `flags` when first asked. An INVALID_ARGUMENT from
  // it means the connection flags are wrong (e.g. neither TLS files nor
  // --insecure): Fail returns kExitUsage for that error.
  using ClientFactory = std::function<absl::StatusOr<std::unique_ptr<Client>>()>;

  Context(std::ostream& out, std::ostream& err, bool out_is_terminal, ClientFactory factory)
      : out_(out), err_(err), out_is_terminal_(out_is_terminal), factory_(std::move(factory)) {}

  // The engine client, or the error that kept it from being made.
  absl::StatusOr<Client*> client();

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  bool out_is_terminal() const { return out_is_terminal_; }

  // Prints "Error: <message>" on stderr and returns kExitFailed, or
  // kExitUsage when `status` is the factory's INVALID_ARGUMENT (see above).
  int Fail(const absl::Status& status);

 private:
  std::ostream& out_;
  std::ostream& err_;
  bool out_is_terminal_;
  ClientFactory factory_;
  std::unique_ptr<Client> client_;
  absl::Status client_error_;  // the factory's last error
};

// A command adds its subcommand (flags, positional arguments) to `app` and
// returns what runs it once parsing chose it. Its flag storage lives in the
// returned function.
using CommandRunner = std::function<int(Context&)>;
using CommandDefiner = CommandRunner (*)(CLI::App& app);

// Flags shared by the listings: --fields, --no-legend, -l/--full, --output.
struct ListingFlags {
  std::string fields;
  bool no_legend = false;
  bool full = false;
  std::string output = "table";
  const CLI::Option* fields_option = nullptr;

  void Add(CLI::App& command, const std::string& default_fields);
  // Selects the fields and formats `all`, or says which flag is wrong. JSON
  // and YAML carry every field unless --fields was given.
  absl::StatusOr<std::string> Render(const Listing& all) const;
};

}  // namespace fleet::ctl
