#include "agent/transport/client_tls.h"

#include <arpa/inet.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace fleet::agent {
namespace {

// TLS 1.2 suites with forward secrecy and authenticated encryption: what
// gRPC's servers offer, for ECDSA (scripts/pki) and RSA certificates.
constexpr int kCipherSuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};
constexpr mbedtls_ecp_group_id kCurves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                            MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};
const char* kAlpn[] = {"h2", nullptr};

std::string MbedError(int rc) {
  char text[160];
  mbedtls_strerror(rc, text, sizeof(text));
  return text;
}

// PEM must reach Mbed TLS with its terminating NUL counted.
const unsigned char* Bytes(const std::string& pem) {
  return reinterpret_cast<const unsigned char*>(pem.c_str());
}

// The subjectAltName entries of `cert` (an empty list when it has none).
std::vector<SubjectAltName> SubjectAltNamesOf(const mbedtls_x509_crt& cert) {
  std::vector<SubjectAltName> names;
  for (const mbedtls_x509_sequence* name = &cert.subject_alt_names; name != nullptr; name = name->next) {
    if (name->buf.p == nullptr) continue;  // the empty head of a certificate without any
    names.push_back(
        {name->buf.tag, std::string_view(reinterpret_cast<const char*>(name->buf.p), name->buf.len)});
  }
  return names;
}

// The names of the alerts an engine sends when it refuses a handshake.
std::string AlertName(unsigned char code) {
  switch (code) {
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 120: return "no_application_protocol";
    default: return absl::StrCat(code);
  }
}

// True when `pattern`, a dNSName, names `host` (see SubjectAltNamesName).
bool DnsNameMatches(absl::string_view pattern, absl::string_view host) {
  if (absl::EqualsIgnoreCase(pattern, host)) return true;
  if (!absl::StartsWith(pattern, "*.")) return false;
  absl::string_view domain = pattern.substr(2);
  if (domain.find('.') == absl::string_view::npos) return false;  // "*.com"
  size_t dot = host.find('.');
  return dot != absl::string_view::npos && dot > 0 && absl::EqualsIgnoreCase(domain, host.substr(dot + 1));
}

}  // namespace

bool SubjectAltNamesName(std::span<const SubjectAltName> names, const std::string& host) {
  unsigned char address[16];
  size_t address_length = 0;
  if (inet_pton(AF_INET, host.c_str(), address) == 1) {
    address_length = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), address) == 1) {
    address_length = 16;
  }
  for (const SubjectAltName& name : names) {
    if (address_length > 0) {
      if (name.tag == kSanIpAddress && name.value.size() == address_length &&
          std::memcmp(name.value.data(), address, address_length) == 0) {
        return true;
      }
    } else if (name.tag == kSanDnsName &&
               DnsNameMatches(absl::string_view(name.value.data(), name.value.size()), host)) {
      return true;
    }
  }
  return false;
}

struct ClientTls::Contexts {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context random;
  mbedtls_x509_crt authorities;
  mbedtls_x509_crt chain;
  mbedtls_pk_context key;
  mbedtls_ssl_config config;

  Contexts() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&random);
    mbedtls_x509_crt_init(&authorities);
    mbedtls_x509_crt_init(&chain);
    mbedtls_pk_init(&key);
    mbedtls_ssl_config_init(&config);
  }
  ~Contexts() {
    mbedtls_ssl_config_free(&config);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&chain);
    mbedtls_x509_crt_free(&authorities);
    mbedtls_ctr_drbg_free(&random);
    mbedtls_entropy_free(&entropy);
  }
};

ClientTls::ClientTls() : contexts_(std::make_unique<Contexts>()) {}
ClientTls::~ClientTls() = default;

absl::StatusOr<std::shared_ptr<const ClientTls>> ClientTls::Load(const tls::TlsFiles& files) {
  absl::StatusOr<tls::TlsMaterial> material = tls::ReadTlsFiles(files);
  if (!material.ok()) return material.status();
  std::shared_ptr<ClientTls> tls(new ClientTls());
  Contexts& c = *tls->contexts_;

  // A positive result counts certificates that did not parse; a bundle may
  // hold some Mbed TLS cannot read, as long as one is left.
  mbedtls_x509_crt_parse(&c.authorities, Bytes(material->ca_pem), material->ca_pem.size() + 1);
  if (c.authorities.version == 0) {
    return tls::TlsFileError("--ca-file", files.ca_file, "no certificate in the file");
  }
  mbedtls_x509_crt_parse(&c.chain, Bytes(material->cert_pem), material->cert_pem.size() + 1);
  if (c.chain.version == 0) {
    return tls::TlsFileError("--cert-file", files.cert_file, "no certificate in the file");
  }
  if (mbedtls_pk_parse_key(&c.key, Bytes(material->key_pem), material->key_pem.size() + 1, nullptr, 0) != 0) {
    return tls::TlsFileError("--key-file", files.key_file, "no private key in the file (or it is encrypted)");
  }
  if (mbedtls_pk_check_pair(&c.chain.pk, &c.key) != 0) {
    return tls::TlsFileError("--key-file", files.key_file,
                             absl::StrCat("the key does not belong to the certificate in ", files.cert_file));
  }

  static constexpr char kPersonalization[] = "fleet-agent";
  if (int rc = mbedtls_ctr_drbg_seed(&c.random, mbedtls_entropy_func, &c.entropy,
                                     reinterpret_cast<const unsigned char*>(kPersonalization),
                                     sizeof(kPersonalization) - 1);
      rc != 0) {
    return absl::InternalError(absl::StrCat("TLS: cannot seed the random generator: ", MbedError(rc)));
  }
  if (int rc = mbedtls_ssl_config_defaults(&c.config, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT);
      rc != 0) {
    return absl::InternalError(absl::StrCat("TLS: ", MbedError(rc)));
  }
  mbedtls_ssl_conf_min_version(&c.config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&c.config, kCipherSuites);
  mbedtls_ssl_conf_curves(&c.config, kCurves);
  mbedtls_ssl_conf_authmode(&c.config, MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(&c.config, &c.authorities, nullptr);
  if (int rc = mbedtls_ssl_conf_own_cert(&c.config, &c.chain, &c.key); rc != 0) {
    return absl::InternalError(absl::StrCat("TLS: the agent's certificate: ", MbedError(rc)));
  }
  mbedtls_ssl_conf_rng(&c.config, mbedtls_ctr_drbg_random, &c.random);
  if (int rc = mbedtls_ssl_conf_alpn_protocols(&c.config, kAlpn); rc != 0) {
    return absl::InternalError(absl::StrCat("TLS: ALPN: ", MbedError(rc)));
  }
  return std::shared_ptr<const ClientTls>(std::move(tls));
}

struct TlsConnection::Session {
  mbedtls_ssl_context ssl;
  int fd = -1;
  int setup_rc = 0;          // of mbedtls_ssl_setup; the handshake fails with it
  std::string socket_error;  // errno's text of the last failed send or recv

  Session() { mbedtls_ssl_init(&ssl); }
  ~Session() { mbedtls_ssl_free(&ssl); }

  static int Send(void* context, const unsigned char* data, size_t length) {
    auto* self = static_cast<Session*>(context);
    ssize_t n = send(self->fd, data, length, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_WRITE;
    self->socket_error = std::strerror(errno);
    return MBEDTLS_ERR_NET_SEND_FAILED;
  }

  static int Receive(void* context, unsigned char* buffer, size_t capacity) {
    auto* self = static_cast<Session*>(context);
    ssize_t n = recv(self->fd, buffer, capacity, 0);
    if (n >= 0) return static_cast<int>(n);  // 0: end of stream
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_READ;
    self->socket_error = std::strerror(errno);
    return MBEDTLS_ERR_NET_RECV_FAILED;
  }
};

TlsConnection::TlsConnection(std::shared_ptr<const ClientTls> tls, int fd, std::string host)
    : tls_(std::move(tls)), host_(std::move(host)), session_(std::make_unique<Session>()) {
  session_->fd = fd;
  session_->setup_rc = mbedtls_ssl_setup(&session_->ssl, &tls_->contexts_->config);
  mbedtls_ssl_set_bio(&session_->ssl, session_.get(), &Session::Send, &Session::Receive, nullptr);
  // The engine's certificate must name the address or name dialled. No
  // hostname is given to Mbed TLS, so it sends no SNI (gRPC's server needs
  // none) and leaves the name to this check.
  mbedtls_ssl_set_verify(
      &session_->ssl,
      [](void* context, mbedtls_x509_crt* cert, int depth, uint32_t* flags) {
        const auto* self = static_cast<const TlsConnection*>(context);
        if (depth == 0 && !SubjectAltNamesName(SubjectAltNamesOf(*cert), self->host_)) {
          *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
        }
        return 0;
      },
      this);
}

TlsConnection::~TlsConnection() = default;

TlsConnection::Io TlsConnection::Handshake() {
  if (session_->setup_rc != 0) {
    error_ = MbedError(session_->setup_rc);
    return Io::kFailed;
  }
  int rc;
  {
    absl::MutexLock lock(&tls_->handshake_mu_);
    rc = mbedtls_ssl_handshake(&session_->ssl);
  }
  if (rc != 0) return Result(rc);
  const char* protocol = mbedtls_ssl_get_alpn_protocol(&session_->ssl);
  if (protocol == nullptr || std::strcmp(protocol, "h2") != 0) {
    error_ = "the server did not agree to HTTP/2 (ALPN h2)";
    return Io::kFailed;
  }
  return Io::kOk;
}

TlsConnection::Io TlsConnection::Read(uint8_t* buffer, size_t capacity, size_t* n) {
  int rc = mbedtls_ssl_read(&session_->ssl, buffer, capacity);
  if (rc == 0) {  // the socket ended without close_notify
    error_.clear();
    return Io::kClosed;
  }
  if (rc < 0) return Result(rc);
  *n = static_cast<size_t>(rc);
  return Io::kOk;
}

TlsConnection::Io TlsConnection::Write(const uint8_t* data, size_t length, size_t* n) {
  int rc = mbedtls_ssl_write(&session_->ssl, data, length);
  if (rc < 0) return Result(rc);
  *n = static_cast<size_t>(rc);
  return Io::kOk;
}

TlsConnection::Io TlsConnection::Result(int rc) {
  switch (rc) {
    case MBEDTLS_ERR_SSL_WANT_READ:
      return Io::kWantRead;
    case MBEDTLS_ERR_SSL_WANT_WRITE:
      return Io::kWantWrite;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
      error_.clear();
      return Io::kClosed;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
      error_ = session_->socket_error;
      return Io::kClosed;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
      // Mbed TLS 2.28 leaves the alert received in in_msg (level, description).
      error_ = absl::StrCat("TLS alert ", AlertName(session_->ssl.in_msg[1]));
      return Io::kClosed;
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED: {
      uint32_t flags = mbedtls_ssl_get_verify_result(&session_->ssl);
      std::vector<std::string> problems;
      if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        problems.push_back(absl::StrCat("it does not name ", host_, " (subjectAltName)"));
        flags &= ~MBEDTLS_X509_BADCERT_CN_MISMATCH;
      }
      if (flags != 0) {
        char text[512];
        if (mbedtls_x509_crt_verify_info(text, sizeof(text), "", flags) > 0) {
          for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
            problems.push_back(absl::AsciiStrToLower(line));
          }
        }
      }
      error_ = absl::StrCat("the engine's certificate: ", absl::StrJoin(problems, "; "));
      return Io::kFailed;
    }
    default:
      error_ = MbedError(rc);
      return Io::kFailed;
  }
}

}  // namespace fleet::agent
