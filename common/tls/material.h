#pragma once

// The PEM files of a TLS endpoint (made by scripts/pki): which ones a binary
// was given, and their contents, read. Free of any TLS library: gRPC's side
// checks them with OpenSSL (credentials.h), fleet-agent with Mbed TLS.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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

// The contents of the three files, as read (ReadTlsFiles); whether they hold
// what they should is checked by the TLS library that uses them
// (LoadTlsFiles in credentials.h for gRPC's OpenSSL, agent::ClientTls).
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Reads the three files. INVALID_ARGUMENT naming the flag, the file and the
// problem: empty path, cannot read (with errno's text), larger than 1 MiB.
// Does no network I/O; thread-safe.
absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files);

// INVALID_ARGUMENT "FLAG PATH: PROBLEM", the form of every file error above
// (for the checks of the contents, e.g. "no certificate in the file").
absl::Status TlsFileError(std::string_view flag, const std::string& path, std::string_view problem);

}  // namespace fleet::tls
