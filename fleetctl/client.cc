#include "fleetctl/client.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/tls/credentials.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"

namespace fleet::ctl {
namespace {

// Units per CreateUnits and SetUnitsDesiredState request: the engine's
// kMaxUnitsPerRequest (fleetctl does not link the engine).
constexpr size_t kMaxUnitsPerRequest = 100;

// The transport of `options`, or INVALID_ARGUMENT saying which flags to give.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const ConnectionOptions& options, const std::vector<std::string>& endpoints, std::ostream& err) {
  const tls::TlsFiles files{options.ca_file, options.cert_file, options.key_file};
  switch (tls::ChooseTransport(files, options.insecure)) {
    case tls::TransportChoice::kMutualTls:
      return tls::MakeChannelCredentials(files);
    case tls::TransportChoice::kPlaintext:
      err << "Warning: --insecure: talking to the " << (endpoints.size() == 1 ? "engine" : "engines")
          << " at " << absl::StrJoin(endpoints, ", ") << " in PLAINTEXT and unauthenticated\n";
      return grpc::InsecureChannelCredentials();
    case tls::TransportChoice::kConflict:
      return tls::ConflictError();
    case tls::TransportChoice::kNoFiles:
    case tls::TransportChoice::kSomeFiles:
      break;
  }
  return absl::InvalidArgumentError(
      "the engine speaks mutual TLS: give --ca-file, --cert-file and --key-file (or "
      "FLEETCTL_CA_FILE, FLEETCTL_CERT_FILE, FLEETCTL_KEY_FILE; make a certificate with "
      "scripts/pki admin|viewer), or --insecure (FLEETCTL_INSECURE=1) for an engine started "
      "with --insecure");
}

// Whether a transport failure's text says the TLS handshake failed or the
// engine dropped the connection during it (gRPC reports both as UNAVAILABLE,
// like an engine that is down; an engine that refuses the client's
// certificate closes the socket).
bool IsHandshakeFailure(absl::string_view message) {
  for (absl::string_view mark : {"andshake", "SSL", "certificate", "Socket closed"}) {
    if (message.find(mark) != absl::string_view::npos) return true;
  }
  return false;
}

// The trailing metadata by which a follower engine names the leader
// ("HOST:PORT", empty when it does not know it); as agent/engine_link.h.
constexpr char kLeaderMetadataKey[] = "fleet-leader";
// The trailing metadata that marks an error of a call the engine relayed to an
// agent: the engine answered, and its message is shown as it is.
constexpr char kRelayMetadataKey[] = "fleet-relay";

// How one engine's answer to one try of a call counts.
enum class Outcome {
  kServed,         // an answer (or an error) to show; no other engine is asked
  kRedirect,       // a follower that names the leader; it did not act
  kLeaderUnknown,  // a follower that does not know the leader; it did not act
  kUnreachable,    // no answer at all (connection or handshake failed)
};

// Retrying elsewhere is safe only where the request was certainly not
// applied: a follower's UNAVAILABLE with "fleet-leader" is a refusal before
// acting, and a transport UNAVAILABLE without that trailer is a failure to
// connect, before anything was sent. DEADLINE_EXCEEDED (the engine may have
// acted and been slow to say so) and every other code are the engine's
// answer, as is anything after part of a stream was received. Limit: an
// engine's own UNAVAILABLE without the trailer (e.g. its store is down) cannot
// be told from a transport failure here, so it is treated as one.
Outcome Classify(const grpc::ClientContext& context, const grpc::Status& status, bool partial) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE || partial) return Outcome::kServed;
  const auto& trailers = context.GetServerTrailingMetadata();
  if (trailers.count(kRelayMetadataKey) > 0) return Outcome::kServed;
  auto leader = trailers.find(kLeaderMetadataKey);
  if (leader == trailers.end()) return Outcome::kUnreachable;
  return leader->second.empty() ? Outcome::kLeaderUnknown : Outcome::kRedirect;
}

// Whether `address` is HOST:PORT with a non-empty host (an IPv6 one in
// brackets) and a port 1..65535.
bool IsHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (host.empty()) return false;
  if (host.find(':') != absl::string_view::npos && (host.front() != '[' || host.back() != ']')) {
    return false;
  }
  uint32_t number = 0;
  return !port.empty() && port.find_first_not_of("0123456789") == absl::string_view::npos &&
         absl::SimpleAtoi(port, &number) && number >= 1 && number <= 65535;
}

// gRPC's own log lines (e.g. "Handshake failed with fatal error") would add to
// fleetctl's one line per error: its errors reach the user through statuses.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEndpoints(absl::string_view endpoints) {
  std::vector<std::string> addresses;
  int position = 0;
  for (absl::string_view item : absl::StrSplit(endpoints, ',')) {
    ++position;
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint list \"", endpoints, "\": item ",
                                                     position, " is empty"));
    }
    if (!IsHostPort(item)) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint \"", item, "\" is not HOST:PORT (e.g. 10.0.0.1:7001, [::1]:7001; "
                       "several: HOST:PORT,HOST:PORT)"));
    }
    if (std::find(addresses.begin(), addresses.end(), item) == addresses.end()) {
      addresses.emplace_back(item);
    }
  }
  return addresses;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ConnectionOptions& options,
                                                       std::ostream& err) {
  gpr_set_log_function(DropGrpcLog);
  absl::StatusOr<std::vector<std::string>> endpoints = ParseEndpoints(options.endpoint);
  if (!endpoints.ok()) return endpoints.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      Credentials(options, *endpoints, err);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<Client>(
      new Client(options, *std::move(endpoints), *std::move(credentials)));
}

v1::Fleet::Stub& Client::StubFor(const std::string& address) {
  std::unique_ptr<v1::Fleet::Stub>& stub = stubs_[address];
  if (stub == nullptr) stub = v1::Fleet::NewStub(grpc::CreateChannel(address, credentials_));
  return *stub;
}

absl::Status Client::ToStatus(const std::string& address, const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (!options_.insecure && IsHandshakeFailure(status.error_message())) {
        return absl::UnavailableError(absl::StrCat(
            "TLS handshake with the engine at ", address,
            " failed: check that --ca-file is the CA that signed the engine's certificate, that the "
            "engine's certificate has a SAN for ", address,
            ", that the engine trusts the CA of --cert-file and that neither certificate has expired (",
            status.error_message(), ")"));
      }
      if (options_.insecure && status.error_message().find("Socket closed") != std::string::npos) {
        return absl::UnavailableError(absl::StrCat(
            "the engine at ", address,
            " closed the plaintext connection: an engine started without --insecure needs "
            "--ca-file, --cert-file and --key-file (",
            status.error_message(), ")"));
      }
      return absl::UnavailableError(
          absl::StrCat("cannot reach the engine at ", address, ": ", status.error_message()));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(
          absl::StrCat("the engine at ", address, " did not answer within ",
                       absl::FormatDuration(options_.request_timeout),
                       " (--request-timeout)"));
    default:
      return absl::Status(code, status.error_message());
  }
}

template <typename Issue>
absl::Status Client::Call(Issue&& issue, Deadline deadline) {
  std::vector<std::string> tried;
  std::vector<std::string> failures;  // why each engine tried did not serve, in order
  std::string unknown_leader;         // a follower's message when every one said so
  bool only_unknown_leader = true;
  bool redirected = false;
  std::string address = current_;
  while (true) {
    tried.push_back(address);
    grpc::ClientContext context;
    if (deadline == Deadline::kRequestTimeout) {
      context.set_deadline(absl::ToChronoTime(absl::Now() + options_.request_timeout));
    }
    Attempt attempt;
    using Result = std::invoke_result_t<Issue&, v1::Fleet::Stub&, grpc::ClientContext&>;
    if constexpr (std::is_same_v<Result, Attempt>) {
      attempt = issue(StubFor(address), context);
    } else {
      attempt.status = issue(StubFor(address), context);
    }
    const grpc::Status& status = attempt.status;
    std::string next;  // where the leader is, when a follower named it
    switch (Classify(context, status, attempt.partial)) {
      case Outcome::kServed:
        current_ = address;
        if (status.ok()) return absl::OkStatus();
        if (context.GetServerTrailingMetadata().count(kRelayMetadataKey) > 0) {
          return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                              status.error_message());
        }
        return ToStatus(address, status);
      case Outcome::kRedirect: {
        const auto& trailers = context.GetServerTrailingMetadata();
        const auto& leader = trailers.find(kLeaderMetadataKey)->second;
        next.assign(leader.data(), leader.size());
        failures.push_back(absl::StrCat("the engine at ", address, ": ", status.error_message()));
        only_unknown_leader = false;
        break;
      }
      case Outcome::kLeaderUnknown:
        failures.push_back(absl::StrCat("the engine at ", address, ": ", status.error_message()));
        unknown_leader = status.error_message();
        break;
      case Outcome::kUnreachable:
        failures.emplace_back(ToStatus(address, status).message());
        only_unknown_leader = false;
        break;
    }
    auto was_tried = [&tried](const std::string& a) {
      return std::find(tried.begin(), tried.end(), a) != tried.end();
    };
    if (!next.empty() && !redirected && !was_tried(next)) {
      redirected = true;
      address = next;
      continue;
    }
    auto untried = std::find_if_not(endpoints_.begin(), endpoints_.end(), was_tried);
    if (untried == endpoints_.end()) break;
    address = *untried;
  }
  if (only_unknown_leader) {
    return absl::UnavailableError(
        absl::StrCat(unknown_leader, " (asked ", absl::StrJoin(tried, ", "), ")"));
  }
  if (failures.size() == 1) return absl::UnavailableError(failures.front());
  return absl::UnavailableError(absl::StrCat("no engine served the call (tried ",
                                             absl::StrJoin(tried, ", "),
                                             "): ", absl::StrJoin(failures, "; ")));
}

absl::Status Client::CreateUnits(const std::vector<v1::CreateUnitRequest>& units) {
  constexpr size_t kMaxFileBytesPerRequest = 1 << 20;  // a larger file goes alone
  size_t first = 0;
  while (first < units.size()) {
    v1::CreateUnitsRequest request;
    request.set_omit_contents(true);  // the files are ours already
    size_t bytes = 0;
    size_t next = first;
    while (next < units.size() && static_cast<size_t>(request.units_size()) < kMaxUnitsPerRequest &&
           (request.units_size() == 0 || bytes + units[next].contents().size() <= kMaxFileBytesPerRequest)) {
      bytes += units[next].contents().size();
      *request.add_units() = units[next++];
    }
    v1::CreateUnitsResponse response;
    absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
      return stub.CreateUnits(&c, request, &response);
    });
    if (!s.ok() && first > 0) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (the first ", first, " of the ",
                                                 units.size(), " units were created)"));
    }
    if (!s.ok()) return s;
    first = next;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Unit> Client::GetUnit(const std::string& name) {
  v1::GetUnitRequest request;
  request.set_name(name);
  v1::Unit unit;
  absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
    return stub.GetUnit(&c, request, &unit);
  });
  if (!s.ok()) return s;
  return unit;
}

absl::StatusOr<std::vector<v1::Unit>> Client::ListUnits(const std::string& name_glob,
                                                        bool omit_contents) {
  std::vector<v1::Unit> units;
  v1::ListUnitsRequest request;
  request.set_name_glob(name_glob);
  request.set_omit_contents(omit_contents);
  do {
    v1::ListUnitsResponse page;
    absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
      return stub.ListUnits(&c, request, &page);
    });
    if (!s.ok()) return s;
    for (auto& unit : *page.mutable_units()) units.push_back(std::move(unit));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return units;
}

absl::Status Client::SetDesiredStates(const std::vector<std::string>& names, v1::DesiredState state) {
  for (size_t first = 0; first < names.size(); first += kMaxUnitsPerRequest) {
    v1::SetUnitsDesiredStateRequest request;
    for (size_t i = first; i < std::min(names.size(), first + kMaxUnitsPerRequest); ++i) {
      request.add_names(names[i]);
    }
    request.set_desired_state(state);
    request.set_omit_contents(true);
    v1::SetUnitsDesiredStateResponse response;
    absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
      return stub.SetUnitsDesiredState(&c, request, &response);
    });
    if (!s.ok() && first > 0) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (the first ", first, " of the ",
                                                 names.size(), " units were changed)"));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Client::DestroyUnit(const std::string& name) {
  v1::DestroyUnitRequest request;
  request.set_name(name);
  v1::DestroyUnitResponse response;
  return Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
    return stub.DestroyUnit(&c, request, &response);
  });
}

absl::StatusOr<std::vector<v1::UnitStatus>> Client::ListUnitStates(
    const std::string& name_glob) {
  std::vector<v1::UnitStatus> states;
  v1::ListUnitStatesRequest request;
  request.set_name_glob(name_glob);
  do {
    v1::ListUnitStatesResponse page;
    absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
      return stub.ListUnitStates(&c, request, &page);
    });
    if (!s.ok()) return s;
    for (auto& state : *page.mutable_units()) states.push_back(std::move(state));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return states;
}

absl::StatusOr<std::vector<v1::Machine>> Client::ListMachines() {
  v1::ListMachinesRequest request;
  v1::ListMachinesResponse response;
  absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
    return stub.ListMachines(&c, request, &response);
  });
  if (!s.ok()) return s;
  return std::vector<v1::Machine>(response.machines().begin(), response.machines().end());
}

absl::StatusOr<v1::GetUnitStatusResponse> Client::GetUnitStatus(
    const v1::GetUnitStatusRequest& request) {
  v1::GetUnitStatusResponse response;
  absl::Status s = Call([&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
    return stub.GetUnitStatus(&c, request, &response);
  });
  if (!s.ok()) return s;
  return response;
}

absl::Status Client::ReadJournal(const v1::ReadJournalRequest& request,
                                 const std::function<void(const v1::JournalEntry&)>& on_entry) {
  auto issue = [&](v1::Fleet::Stub& stub, grpc::ClientContext& c) {
    std::unique_ptr<grpc::ClientReader<v1::JournalEntry>> reader = stub.ReadJournal(&c, request);
    Attempt attempt;
    v1::JournalEntry entry;
    while (reader->Read(&entry)) {
      attempt.partial = true;
      on_entry(entry);
    }
    attempt.status = reader->Finish();
    return attempt;
  };
  return Call(issue, request.follow() ? Deadline::kNone : Deadline::kRequestTimeout);
}

}  // namespace fleet::ctl
