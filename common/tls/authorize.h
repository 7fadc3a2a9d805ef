#pragma once

// Which role may call which method, and the gRPC hook that enforces it.
//
//   viewer: the reads of fleet.v1.Fleet (GetUnit, ListUnits, ListUnitStates,
//           ListMachines, GetUnitStatus, ReadJournal)
//   admin:  every method of fleet.v1.Fleet
//   agent:  /fleet.v1.AgentService/Connect only (that the stream is for the
//           agent's own machine is checked by the handler, see CallerIdentity)
//   engine: every method in the table (engine-to-engine proxying)
// A method not in the table is refused for every role (deny by default), so a
// new RPC needs a row here before anyone can call it; tls_test checks that
// every method of the services in proto/fleet/v1 has one.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/tls/identity.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace fleet::tls {

// OK when `identity` may call `full_method` ("/fleet.v1.Fleet/CreateUnit").
// PERMISSION_DENIED otherwise, naming the role needed and the role held:
// "/fleet.v1.Fleet/SetUnitDesiredState needs role admin; the client
// certificate has role viewer (bob)". Pure, thread-safe.
absl::Status Authorize(const Identity& identity, std::string_view full_method);

// Applies Authorize to every call of a server whose credentials carry it, before
// the handler runs: the call fails with the status Authorize or
// IdentityFromAuthContext returned (UNAUTHENTICATED / PERMISSION_DENIED with
// its message). MakeServerCredentials installs it; it is public for servers
// that build their credentials otherwise:
//   credentials->SetAuthMetadataProcessor(std::make_shared<AuthorizingProcessor>());
// Stateless and thread-safe; runs inline on gRPC's thread (IsBlocking false:
// it does no I/O).
class AuthorizingProcessor : public grpc::AuthMetadataProcessor {
 public:
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata, OutputMetadata* response_metadata) override;
};

}  // namespace fleet::tls
