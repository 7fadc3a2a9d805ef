#pragma once

// The engine's API as fleetctl uses it: one channel, a deadline on every call,
// pages followed to the end, and gRPC errors turned into one readable line.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fleet/v1/fleet.grpc.pb.h"

namespace fleet::ctl {

struct ConnectionOptions {
  std::string endpoint = "127.0.0.1:7001";
  absl::Duration request_timeout = absl::Seconds(10);
  std::string ca_file;    // with cert_file/key_file: TLS with a client certificate
  std::string cert_file;
  std::string key_file;
};

class Client {
 public:
  // Builds the channel; INVALID_ARGUMENT when a TLS file cannot be read.
  // Connecting happens on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ConnectionOptions& options);

  // Each call returns the engine's answer, or its error with the engine's own
  // message; an engine that cannot be reached is UNAVAILABLE with a message
  // that names the endpoint.
  absl::StatusOr<v1::CreateUnitResponse> CreateUnit(const v1::CreateUnitRequest& request);
  absl::StatusOr<v1::Unit> GetUnit(const std::string& name);
  absl::StatusOr<std::vector<v1::Unit>> ListUnits(const std::string& name_glob,
                                                  bool omit_contents);
  absl::StatusOr<v1::Unit> SetDesiredState(const std::string& name, v1::DesiredState state);
  absl::Status DestroyUnit(const std::string& name);
  absl::StatusOr<std::vector<v1::UnitStatus>> ListUnitStates(const std::string& name_glob);
  absl::StatusOr<std::vector<v1::Machine>> ListMachines();

  // What systemctl status says on the unit's machine (asked of its agent
  // through the engine). The engine's errors about the unit or its agent
  // (not scheduled, agent not connected, agent too slow) come as the engine
  // wrote them.
  absl::StatusOr<v1::GetUnitStatusResponse> GetUnitStatus(const v1::GetUnitStatusRequest& request);
  // Streams the unit's journal to `on_entry` until the engine ends the stream
  // (OK), or with `follow` until the unit's machine goes away (the engine's
  // UNAVAILABLE). Without follow the whole call has --request-timeout; with
  // follow it has no deadline. Errors as GetUnitStatus.
  absl::Status ReadJournal(const v1::ReadJournalRequest& request,
                           const std::function<void(const v1::JournalEntry&)>& on_entry);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  Client(ConnectionOptions options, std::unique_ptr<v1::Fleet::Stub> stub)
      : options_(std::move(options)), stub_(std::move(stub)) {}
  void SetDeadline(grpc::ClientContext& context) const;
  absl::Status ToStatus(const grpc::Status& status) const;
  // As ToStatus, but errors the engine says come from relaying to an agent
  // (trailing metadata "fleet-relay") are kept as they are.
  absl::Status RelayStatus(const grpc::ClientContext& context, const grpc::Status& status) const;

  ConnectionOptions options_;
  std::unique_ptr<v1::Fleet::Stub> stub_;
};

}  // namespace fleet::ctl
