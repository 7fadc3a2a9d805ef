#pragma once

// gRPC credentials for mutual TLS between fleet's processes, from PEM files
// made by scripts/pki (read and checked by material.h).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls/material.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace fleet::tls {

// Server credentials that require a client certificate signed by the CA
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY) and authorize
// every call by the role in it (AuthorizingProcessor, see authorize.h): a call
// is refused with UNAUTHENTICATED / PERMISSION_DENIED before any handler runs.
// Errors as LoadTlsFiles.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFiles& files);

// Channel credentials that verify the server's certificate against the CA (and
// its address against the certificate's SANs) and present the client
// certificate. Errors as LoadTlsFiles.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsFiles& files);

}  // namespace fleet::tls
