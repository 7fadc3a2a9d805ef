#include "fleetctl/client.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/tls/credentials.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"

namespace fleet::ctl {
namespace {

// The transport of `options`, or INVALID_ARGUMENT saying which flags to give.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const ConnectionOptions& options,
                                                                      std::ostream& err) {
  const tls::TlsFiles files{options.ca_file, options.cert_file, options.key_file};
  switch (tls::ChooseTransport(files, options.insecure)) {
    case tls::TransportChoice::kMutualTls:
      return tls::MakeChannelCredentials(files);
    case tls::TransportChoice::kPlaintext:
      err << "Warning: --insecure: talking to the engine at " << options.endpoint
          << " in PLAINTEXT and unauthenticated\n";
      return grpc::InsecureChannelCredentials();
    case tls::TransportChoice::kConflict:
      return absl::InvalidArgumentError(
          "--insecure and the TLS files (--ca-file, --cert-file, --key-file) exclude each other: "
          "give one or the other");
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
bool IsHandshakeFailure(std::string_view message) {
  for (std::string_view mark : {"andshake", "SSL", "certificate", "Socket closed"}) {
    if (message.find(mark) != std::string_view::npos) return true;
  }
  return false;
}

// gRPC's own log lines (e.g. "Handshake failed with fatal error") would add to
// fleetctl's one line per error: its errors reach the user through statuses.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ConnectionOptions& options,
                                                       std::ostream& err) {
  gpr_set_log_function(DropGrpcLog);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(options, err);
  if (!credentials.ok()) return credentials.status();
  auto channel = grpc::CreateChannel(options.endpoint, *credentials);
  return std::unique_ptr<Client>(new Client(options, v1::Fleet::NewStub(channel)));
}

void Client::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.request_timeout));
}

absl::Status Client::ToStatus(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (!options_.insecure && IsHandshakeFailure(status.error_message())) {
        return absl::UnavailableError(absl::StrCat(
            "TLS handshake with the engine at ", options_.endpoint,
            " failed: check that --ca-file is the CA that signed the engine's certificate, that the "
            "engine's certificate has a SAN for ", options_.endpoint,
            ", that the engine trusts the CA of --cert-file and that neither certificate has expired (",
            status.error_message(), ")"));
      }
      if (options_.insecure && status.error_message().find("Socket closed") != std::string::npos) {
        return absl::UnavailableError(absl::StrCat(
            "the engine at ", options_.endpoint,
            " closed the plaintext connection: an engine started without --insecure needs "
            "--ca-file, --cert-file and --key-file (",
            status.error_message(), ")"));
      }
      return absl::UnavailableError(
          absl::StrCat("cannot reach the engine at ", options_.endpoint, ": ",
                       status.error_message()));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(
          absl::StrCat("the engine at ", options_.endpoint, " did not answer within ",
                       absl::FormatDuration(options_.request_timeout),
                       " (--request-timeout)"));
    default:
      return absl::Status(code, status.error_message());
  }
}

absl::StatusOr<v1::CreateUnitResponse> Client::CreateUnit(
    const v1::CreateUnitRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CreateUnitResponse response;
  if (auto s = ToStatus(stub_->CreateUnit(&context, request, &response)); !s.ok()) return s;
  return response;
}

absl::StatusOr<v1::Unit> Client::GetUnit(const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetUnitRequest request;
  request.set_name(name);
  v1::Unit unit;
  if (auto s = ToStatus(stub_->GetUnit(&context, request, &unit)); !s.ok()) return s;
  return unit;
}

absl::StatusOr<std::vector<v1::Unit>> Client::ListUnits(const std::string& name_glob,
                                                        bool omit_contents) {
  std::vector<v1::Unit> units;
  v1::ListUnitsRequest request;
  request.set_name_glob(name_glob);
  request.set_omit_contents(omit_contents);
  do {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListUnitsResponse page;
    if (auto s = ToStatus(stub_->ListUnits(&context, request, &page)); !s.ok()) return s;
    for (auto& unit : *page.mutable_units()) units.push_back(std::move(unit));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return units;
}

absl::StatusOr<v1::Unit> Client::SetDesiredState(const std::string& name,
                                                 v1::DesiredState state) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SetUnitDesiredStateRequest request;
  request.set_name(name);
  request.set_desired_state(state);
  v1::Unit unit;
  if (auto s = ToStatus(stub_->SetUnitDesiredState(&context, request, &unit)); !s.ok()) {
    return s;
  }
  return unit;
}

absl::Status Client::DestroyUnit(const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::DestroyUnitRequest request;
  request.set_name(name);
  v1::DestroyUnitResponse response;
  return ToStatus(stub_->DestroyUnit(&context, request, &response));
}

absl::StatusOr<std::vector<v1::UnitStatus>> Client::ListUnitStates(
    const std::string& name_glob) {
  std::vector<v1::UnitStatus> states;
  v1::ListUnitStatesRequest request;
  request.set_name_glob(name_glob);
  do {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListUnitStatesResponse page;
    if (auto s = ToStatus(stub_->ListUnitStates(&context, request, &page)); !s.ok()) return s;
    for (auto& state : *page.mutable_units()) states.push_back(std::move(state));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return states;
}

absl::StatusOr<std::vector<v1::Machine>> Client::ListMachines() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListMachinesRequest request;
  v1::ListMachinesResponse response;
  if (auto s = ToStatus(stub_->ListMachines(&context, request, &response)); !s.ok()) return s;
  return std::vector<v1::Machine>(response.machines().begin(), response.machines().end());
}

absl::Status Client::RelayStatus(const grpc::ClientContext& context,
                                 const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  if (context.GetServerTrailingMetadata().count("fleet-relay") > 0) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return ToStatus(status);
}

absl::StatusOr<v1::GetUnitStatusResponse> Client::GetUnitStatus(
    const v1::GetUnitStatusRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetUnitStatusResponse response;
  grpc::Status status = stub_->GetUnitStatus(&context, request, &response);
  if (auto s = RelayStatus(context, status); !s.ok()) return s;
  return response;
}

absl::Status Client::ReadJournal(const v1::ReadJournalRequest& request,
                                 const std::function<void(const v1::JournalEntry&)>& on_entry) {
  grpc::ClientContext context;
  if (!request.follow()) SetDeadline(context);
  std::unique_ptr<grpc::ClientReader<v1::JournalEntry>> reader =
      stub_->ReadJournal(&context, request);
  v1::JournalEntry entry;
  while (reader->Read(&entry)) on_entry(entry);
  grpc::Status status = reader->Finish();
  return RelayStatus(context, status);
}

}  // namespace fleet::ctl
