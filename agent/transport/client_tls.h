#pragma once

// The agent's side of mutual TLS to the engine, on OpenSSL: verifies the
// engine's certificate against the CA and its address against the
// certificate's names, presents the agent's certificate, and offers HTTP/2 by
// ALPN (gRPC servers require it). What tls::MakeChannelCredentials configures
// for gRPC's clients, without gRPC.

#include <memory>

#include <openssl/ssl.h>

#include "absl/status/statusor.h"
#include "common/tls/material.h"

namespace fleet::agent {

class ClientTls {
 public:
  // InvalidArgument when OpenSSL refuses the material (LoadTlsFiles has
  // already checked it, so this names OpenSSL's reason).
  static absl::StatusOr<std::shared_ptr<const ClientTls>> Create(const tls::TlsMaterial& material);
  ~ClientTls();
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

  // Shared by every connection; OpenSSL's contexts are thread-safe once set up.
  SSL_CTX* context() const { return context_; }

 private:
  explicit ClientTls(SSL_CTX* context) : context_(context) {}
  SSL_CTX* const context_;
};

// OpenSSL's queued error reasons, oldest first, joined by "; " (and cleared).
std::string TakeOpenSslErrors();

}  // namespace fleet::agent
