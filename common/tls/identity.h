#pragma once

// Who is calling: the fleet role a client certificate carries.
//
// The role is a URI in the certificate's subjectAltName (scripts/pki writes it):
//   fleet://role/admin          Role::kAdmin   (name = the subject's common name)
//   fleet://role/viewer         Role::kViewer  (name = the subject's common name)
//   fleet://agent/MACHINE_ID    Role::kAgent   (machine_id = MACHINE_ID)
//   fleet://engine/NAME         Role::kEngine  (name = NAME)
// Exactly one fleet:// URI per certificate: none, two, or an unknown one is
// refused. URIs of other schemes (spiffe://...) are ignored. Only URI SANs
// count, never DNS names or the free-form subject, so a certificate made for an
// address cannot pass for a role.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"

namespace fleet::tls {

enum class Role { kAdmin, kViewer, kAgent, kEngine };

// "admin", "viewer", "agent", "engine".
std::string_view RoleName(Role role);

struct Identity {
  Role role = Role::kViewer;
  std::string machine_id;  // agents only: the machine it may act for
  std::string name;        // engines: from the URI; admin/viewer: the common name; agents: ""
  // "viewer (bob)", "agent (machine 0123...)", "engine (engine-1)": for messages and logs.
  std::string Describe() const;
};

// The identity encoded in `uri_sans` (the certificate's URI SANs, in any
// order); `common_name` becomes the name of an admin or viewer. Pure.
// PERMISSION_DENIED when no fleet:// URI is present, when several are, or when
// one is not a known role (the message says what was expected and found).
absl::StatusOr<Identity> IdentityFromSans(absl::Span<const std::string> uri_sans,
                                          std::string_view common_name = "");

// The identity of the peer of a TLS connection whose client certificate gRPC
// verified (the "peer_uri" and "x509_common_name" properties of `context`).
// UNAUTHENTICATED when the peer is not authenticated (plaintext connection or
// no client certificate); otherwise as IdentityFromSans.
absl::StatusOr<Identity> IdentityFromAuthContext(const grpc::AuthContext& context);

// The identity of the caller of the call `context` serves (sync or callback
// API), for handlers that check more than the method, e.g. that an agent opens
// the stream for its own machine id. Errors as IdentityFromAuthContext.
absl::StatusOr<Identity> CallerIdentity(const grpc::ServerContextBase& context);

}  // namespace fleet::tls
