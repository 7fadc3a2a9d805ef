#include "common/tls/credentials.h"

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tls/authorize.h"
#include "grpcpp/security/server_credentials.h"

namespace fleet::tls {

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
