#pragma once

// gRPC credentials for mutual TLS between fleet's processes, from PEM files
// made by scripts/pki (read by material.h, checked here with OpenSSL, which
// gRPC's TLS uses too).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls/material.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace fleet::tls {

// Reads the three files (ReadTlsFiles) and checks that each holds PEM of the
// right kind and that the key belongs to the leaf certificate.
// INVALID_ARGUMENT naming the flag, the file and the problem: those of
// ReadTlsFiles, no certificate in the file, no private key in the file, or
// "the key does not belong to the certificate in CERT_FILE".
absl::StatusOr<TlsMaterial> LoadTlsFiles(const TlsFiles& files);

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
