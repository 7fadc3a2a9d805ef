#pragma once

// The agent's side of mutual TLS to the engine: verifies the engine's
// certificate against the CA and the address dialled against its names,
// presents the agent's certificate, and offers HTTP/2 by ALPN (gRPC servers
// require it). The checks gRPC's clients make (tls::MakeChannelCredentials),
// without gRPC and without OpenSSL.
//
// On Mbed TLS (Debian's libmbedtls 2.28): OpenSSL's handshake and certificate
// code kept 3.3 MiB of the agent resident, a third of its memory; Mbed TLS
// keeps well under 1 MiB. Why, and what it costs: agent/README.md, "TLS".
//
// TLS 1.2 with ECDHE and AEAD cipher suites only (Mbed TLS 2.28 has no TLS
// 1.3); the engine's gRPC server accepts it.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tls/material.h"

namespace fleet::agent {

// One subjectAltName entry of a certificate: its GeneralName tag (RFC 5280;
// the constants below) and its raw value.
struct SubjectAltName {
  int tag;
  std::string_view value;
};
inline constexpr int kSanDnsName = 0x82;    // [2] dNSName
inline constexpr int kSanUri = 0x86;        // [6] uniformResourceIdentifier
inline constexpr int kSanIpAddress = 0x87;  // [7] iPAddress (4 or 16 bytes)

// True when `names` name `host`, as dialled: an IPv4 or IPv6 address by an
// equal iPAddress entry, a DNS name by a dNSName entry, compared without case.
// A dNSName may start with a "*" label, which stands for exactly one label
// and only below a domain of two labels or more ("*.example.com", not
// "*.com"). No other kind of entry names a host. Mbed TLS 2.28's own check is
// not used: it compares every kind of entry with a name, and none with an
// address.
bool SubjectAltNamesName(std::span<const SubjectAltName> names, const std::string& host);

class ClientTls {
 public:
  // Reads and checks the three files. INVALID_ARGUMENT naming the flag, the
  // file and the problem, in the words of tls::LoadTlsFiles: those of
  // tls::ReadTlsFiles, no certificate in the file, no private key in the file
  // (or it is encrypted), the key does not belong to the certificate.
  static absl::StatusOr<std::shared_ptr<const ClientTls>> Load(const tls::TlsFiles& files);
  ~ClientTls();
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

 private:
  friend class TlsConnection;
  struct Contexts;  // Mbed TLS's configuration, certificates, key and random generator
  ClientTls();

  const std::unique_ptr<Contexts> contexts_;
  // Handshakes share the CA's and the agent's keys, whose elliptic-curve
  // tables Mbed TLS fills in on first use: one handshake step at a time.
  mutable absl::Mutex handshake_mu_;
};

// TLS on one connected, non-blocking socket, as a client of `host` (an IP
// address or a DNS name, as dialled). Not thread-safe; the socket stays the
// caller's.
class TlsConnection {
 public:
  enum class Io {
    kOk,         // done (Handshake), or bytes moved (Read, Write)
    kWantRead,   // call again with the same arguments once the socket is readable
    kWantWrite,  // ... once it is writable
    kClosed,     // the engine ended the connection (EOF, reset, close_notify or an alert)
    kFailed,     // this side gave up: the engine's certificate, or a protocol error
  };

  TlsConnection(std::shared_ptr<const ClientTls> tls, int fd, std::string host);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // kOk once the handshake is done, the engine's certificate verified and
  // HTTP/2 agreed by ALPN.
  Io Handshake();
  // Decrypted bytes into `buffer`; *n set on kOk.
  Io Read(uint8_t* buffer, size_t capacity, size_t* n);
  // Encrypts and sends up to `length` bytes; *n set on kOk. After kWantWrite
  // the same bytes must be offered again (from any buffer).
  Io Write(const uint8_t* data, size_t length, size_t* n);

  // What went wrong, for kClosed ("" when the engine closed cleanly) and kFailed.
  const std::string& error() const { return error_; }

 private:
  struct Session;  // Mbed TLS's context of this connection
  Io Result(int rc);  // of a failed Mbed TLS call

  const std::shared_ptr<const ClientTls> tls_;
  const std::string host_;
  const std::unique_ptr<Session> session_;
  std::string error_;
};

}  // namespace fleet::agent
