#include "fleetctl/client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"

namespace fleet::ctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ConnectionOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.ca_file.empty() && options.cert_file.empty() && options.key_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      auto ca = ReadFile("--ca-file", options.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!options.cert_file.empty()) {
      auto cert = ReadFile("--cert-file", options.cert_file);
      if (!cert.ok()) return cert.status();
      ssl.pem_cert_chain = *cert;
    }
    if (!options.key_file.empty()) {
      auto key = ReadFile("--key-file", options.key_file);
      if (!key.ok()) return key.status();
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateChannel(options.endpoint, credentials);
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
