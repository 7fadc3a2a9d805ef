#include "agent/transport/client_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace fleet::agent {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::Status Refused(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("TLS: ", what, ": ", TakeOpenSslErrors()));
}

// Puts the certificates and key into `context`.
absl::Status Configure(SSL_CTX* context, const tls::TlsMaterial& material) {
  X509_STORE* store = SSL_CTX_get_cert_store(context);
  BioPtr ca = MemoryBio(material.ca_pem);
  int authorities = 0;
  while (X509* cert = PEM_read_bio_X509(ca.get(), nullptr, nullptr, nullptr)) {
    int added = X509_STORE_add_cert(store, cert);
    X509_free(cert);
    if (added != 1) return Refused("the CA certificate");
    ++authorities;
  }
  ERR_clear_error();  // the end of the PEM file reads as an error
  if (authorities == 0) return absl::InvalidArgumentError("TLS: no CA certificate in --ca-file");

  BioPtr chain = MemoryBio(material.cert_pem);
  X509* leaf = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return Refused("the certificate");
  int used = SSL_CTX_use_certificate(context, leaf);
  X509_free(leaf);
  if (used != 1) return Refused("the certificate");
  while (X509* intermediate = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(context, intermediate) != 1) {
      X509_free(intermediate);
      return Refused("the certificate chain");
    }
  }
  ERR_clear_error();

  BioPtr key_pem = MemoryBio(material.key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_pem.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return Refused("the private key");
  used = SSL_CTX_use_PrivateKey(context, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(context) != 1) return Refused("the private key");

  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(context, kAlpn, sizeof(kAlpn)) != 0) return Refused("ALPN");
  // nghttp2 retries a blocked write with the same bytes, not always from the same buffer.
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return absl::OkStatus();
}

}  // namespace

std::string TakeOpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    absl::StrAppend(&out, out.empty() ? "" : "; ", text);
  }
  return out.empty() ? "no reason given" : out;
}

absl::StatusOr<std::shared_ptr<const ClientTls>> ClientTls::Create(const tls::TlsMaterial& material) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) return Refused("cannot make a context");
  std::shared_ptr<const ClientTls> tls(new ClientTls(context));
  if (absl::Status s = Configure(context, material); !s.ok()) return s;
  return tls;
}

ClientTls::~ClientTls() { SSL_CTX_free(context_); }

}  // namespace fleet::agent
