#include "fleetctl/app.h"

#include <map>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "fleetctl/client.h"
#include "fleetctl/commands/commands.h"
#include "fleetctl/context.h"

namespace fleet::ctl {

int RunFleetctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                bool out_is_terminal) {
  CLI::App app{"fleetctl: submit, start, stop and inspect the units of a fleet cluster"};
  app.name("fleetctl");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the verb
  AddVersionFlag(app, "fleetctl");

  GlobalFlags flags;
  app.add_option("--endpoint", flags.connection.endpoint,
                 "Engine address HOST:PORT, or the engines of the cluster HOST:PORT,HOST:PORT,...")
      ->envname("FLEETCTL_ENDPOINT")
      ->capture_default_str();
  app.add_option("--request-timeout", flags.request_timeout,
                 "Time to wait for each answer of the engine (e.g. 10s)")
      ->envname("FLEETCTL_REQUEST_TIMEOUT")
      ->capture_default_str();
  app.add_option("--ca-file", flags.connection.ca_file,
                 "CA certificate the engine's certificate must chain to (PEM)")
      ->envname("FLEETCTL_CA_FILE");
  app.add_option("--cert-file", flags.connection.cert_file,
                 "Client certificate (PEM; scripts/pki admin|viewer)")
      ->envname("FLEETCTL_CERT_FILE");
  app.add_option("--key-file", flags.connection.key_file, "Client private key (PEM)")
      ->envname("FLEETCTL_KEY_FILE");
  app.add_flag("--insecure", flags.connection.insecure,
               "Talk PLAINTEXT to an engine started with --insecure (no certificates)")
      ->envname("FLEETCTL_INSECURE");

  std::map<const CLI::App*, CommandRunner> runners;
  for (CommandDefiner define : kCommands) {
    CommandRunner runner = define(app);
    runners[app.get_subcommands({}).back()] = std::move(runner);
  }

  // The first word that is not a flag (or a global flag's value) is the verb;
  // CLI11 alone would only say that a subcommand is required.
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) == 0) {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* option = app.get_option_no_throw(name);
      if (option == nullptr) {
        err << "Error: unknown flag " << name << "; see fleetctl --help\n";
        return kExitUsage;
      }
      bool value_follows = arg.find('=') == std::string::npos && option->get_expected_min() > 0;
      if (value_follows) ++i;
      continue;
    }
    if (arg.rfind("-", 0) == 0) continue;
    auto verbs = app.get_subcommands([&arg](CLI::App* verb) { return verb->get_name() == arg; });
    if (verbs.empty()) {
      err << "Error: unknown command \"" << arg << "\"; see fleetctl --help\n";
      return kExitUsage;
    }
    break;
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    std::ostringstream usage_out, usage_err;
    int code = app.exit(e, usage_out, usage_err);
    out << usage_out.str();
    err << usage_err.str();
    return code == 0 ? kExitOk : kExitUsage;
  }

  absl::Duration timeout;
  if (!absl::ParseDuration(flags.request_timeout, &timeout) || timeout <= absl::ZeroDuration()) {
    err << "Error: --request-timeout \"" << flags.request_timeout
        << "\" is not a positive duration (e.g. 10s, 500ms)\n";
    return kExitUsage;
  }
  flags.connection.request_timeout = timeout;
  if (absl::Status s = ParseEndpoints(flags.connection.endpoint).status(); !s.ok()) {
    err << "Error: --endpoint: " << s.message() << "\n";
    return kExitUsage;
  }

  Context context(out, err, out_is_terminal,
                  [&flags, &err] { return Client::Create(flags.connection, err); });
  for (const auto& [command, run] : runners) {
    if (command->parsed()) return run(context);
  }
  err << "Error: no command given; see fleetctl --help\n";
  return kExitUsage;
}

}  // namespace fleet::ctl
