#pragma once

// The engine's API as fleetctl uses it: one channel, a deadline on every call,
// pages followed to the end, and gRPC errors turned into one readable line.

#include <functional>
#include <ostream>
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
  // Mutual TLS (the default): the CA the engine's certificate must chain to,
  // and fleetctl's own certificate and key (scripts/pki admin|viewer).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;  // plaintext, no certificates (--insecure)
};

class Client {
 public:
  // Builds the channel: mutual TLS from the three files, or plaintext with
  // insecure (and then prints one warning line on `err`). INVALID_ARGUMENT,
  // one line saying what to give, when insecure is false and the files are
  // not all given, when both are given, or when a file cannot be read or
  // holds no PEM of its kind. Connecting happens on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ConnectionOptions& options,
                                                        std::ostream& err);

  // Each call returns the engine's answer, or its error with the engine's own
  // message (a call the client certificate's role may not make is the
  // engine's PERMISSION_DENIED naming the role needed); an engine that cannot
  // be reached is UNAVAILABLE with a message that names the endpoint, and a
  // failed TLS handshake is UNAVAILABLE naming the endpoint and the likely
  // causes (wrong CA, expired certificate, address not in the engine's SANs);
  // with insecure, an engine that closes the socket (it speaks TLS) is
  // UNAVAILABLE saying it needs the TLS flags. Create silences gRPC's own
  // log lines for the process, so each error is the one line fleetctl prints.
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
