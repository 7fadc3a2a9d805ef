#pragma once

// The PEM files of a TLS endpoint (made by scripts/pki): which ones a binary
// was given, and their contents, read and checked. Free of gRPC, so that
// fleet-agent, whose engine link is not gRPC's, links none of it.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

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

// PEM parsed with OpenSSL, for the code that hands TlsMaterial to a TLS
// library: the certificates in `pem`, in order (empty when there are none),
// and its private key (null when there is none). Neither leaves an error in
// OpenSSL's queue.
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Cert = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyFree>;
std::vector<Cert> ReadCerts(const std::string& pem);
PrivateKey ReadPrivateKey(const std::string& pem);

}  // namespace fleet::tls
