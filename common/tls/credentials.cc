#include "common/tls/credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tls/authorize.h"
#include "grpcpp/security/server_credentials.h"

namespace fleet::tls {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Bio MemoryBio(const std::string& data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// The certificates in `pem`, in order (empty when there are none).
std::vector<Cert> ReadCerts(const std::string& pem) {
  std::vector<Cert> certs;
  Bio bio = MemoryBio(pem);
  while (bio != nullptr) {
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // The read that ends the loop leaves "no start line" in the thread's queue.
  ERR_clear_error();
  return certs;
}

// The private key in `pem`, null when there is none.
PrivateKey ReadPrivateKey(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  PrivateKey key(bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsFiles(const TlsFiles& files) {
  absl::StatusOr<TlsMaterial> material = ReadTlsFiles(files);
  if (!material.ok()) return material.status();
  if (ReadCerts(material->ca_pem).empty()) {
    return TlsFileError("--ca-file", files.ca_file, "no certificate in the file");
  }
  std::vector<Cert> chain = ReadCerts(material->cert_pem);
  if (chain.empty()) return TlsFileError("--cert-file", files.cert_file, "no certificate in the file");
  PrivateKey key = ReadPrivateKey(material->key_pem);
  if (key == nullptr) {
    return TlsFileError("--key-file", files.key_file, "no private key in the file (or it is encrypted)");
  }
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return TlsFileError("--key-file", files.key_file,
                        absl::StrCat("the key does not belong to the certificate in ", files.cert_file));
  }
  return material;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFiles& files) {
  absl::StatusOr<TlsMaterial> material = LoadTlsFiles(files);
  if (!material.ok()) return material.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material->ca_pem;
  options.pem_key_cert_pairs.push_back({material->key_pem, material->cert_pem});
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the TLS server credentials");
  }
  credentials->SetAuthMetadataProcessor(std::make_shared<AuthorizingProcessor>());
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsFiles& files) {
  absl::StatusOr<TlsMaterial> material = LoadTlsFiles(files);
  if (!material.ok()) return material.status();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = material->ca_pem;
  options.pem_cert_chain = material->cert_pem;
  options.pem_private_key = material->key_pem;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the TLS channel credentials");
  }
  return credentials;
}

}  // namespace fleet::tls
