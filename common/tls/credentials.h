#pragma once

// gRPC credentials for mutual TLS between fleet's processes, from PEM files
// made by scripts/pki.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace fleet::tls {

// The three files of a TLS endpoint; errors name them by their command-line
// flags (--ca-file, --cert-file, --key-file).
struct TlsFiles {
  std::string ca_file;    // PEM: the CA certificate(s) the peer's certificate must chain to
  std::string cert_file;  // PEM: this process's certificate (the first one is the leaf)
  std::string key_file;   // PEM: the private key of that certificate
};

// What the three TLS files and --insecure ask for together. Each binary says
// in its own words what to give for kNoFiles and kSomeFiles; kConflict reads
// the same everywhere (ConflictError).
enum class TransportChoice {
  kMutualTls,  // all three files, not insecure
  kPlaintext,  // insecure, no file
  kConflict,   // insecure and some file: they exclude each other
  kNoFiles,    // neither a file nor insecure
  kSomeFiles,  // one or two of the three files, not insecure
};
TransportChoice ChooseTransport(const TlsFiles& files, bool insecure);
// INVALID_ARGUMENT for kConflict, naming the flags.
absl::Status ConflictError();

// The contents of TlsFiles, checked: each file is readable and holds PEM of the
// right kind, and the key belongs to the leaf certificate.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Reads and checks the three files. INVALID_ARGUMENT naming the flag, the file
// and the problem: empty path, cannot read (with errno's text), no certificate
// in the file, no private key in the file, or "the key does not belong to the
// certificate". Does no network I/O; thread-safe.
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
