#include "agent/transport/client_tls.h"

#include <openssl/err.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fleet::agent {
namespace {

absl::Status Refused(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("TLS: ", what, ": ", TakeOpenSslErrors()));
}

// Puts the certificates and key into `context`.
absl::Status Configure(SSL_CTX* context, const tls::TlsMaterial& material) {
  // LoadTlsFiles has checked that each file holds what it should.
  X509_STORE* store = SSL_CTX_get_cert_store(context);
  std::vector<tls::Cert> authorities = tls::ReadCerts(material.ca_pem);
  if (authorities.empty()) return absl::InvalidArgumentError("TLS: no CA certificate in --ca-file");
  for (const tls::Cert& cert : authorities) {
    if (X509_STORE_add_cert(store, cert.get()) != 1) return Refused("the CA certificate");
  }

  std::vector<tls::Cert> chain = tls::ReadCerts(material.cert_pem);
  if (chain.empty() || SSL_CTX_use_certificate(context, chain.front().get()) != 1) {
    return Refused("the certificate");
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    // add1: the context takes its own reference.
    if (SSL_CTX_add1_chain_cert(context, chain[i].get()) != 1) return Refused("the certificate chain");
  }

  tls::PrivateKey key = tls::ReadPrivateKey(material.key_pem);
  if (key == nullptr || SSL_CTX_use_PrivateKey(context, key.get()) != 1 ||
      SSL_CTX_check_private_key(context) != 1) {
    return Refused("the private key");
  }

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
