#pragma once

// GrpcStream: one bidirectional-streaming gRPC call on an HTTP/2 connection of
// its own (nghttp2), over TCP, with TLS when given a ClientTls. It is what
// fleet-agent needs of gRPC: one stream to one engine. gRPC's own client
// library costs the agent about 3 MiB of resident code (bench/agent), and the
// agent's memory per host is the product's promise; the engine stays a gRPC
// server, and this speaks its wire format (gRPC's PROTOCOL-HTTP2.md).
//
// Runs on an EventLoop: Open, Close and every callback are on the loop
// thread; Write is thread-safe. Connection failures, a refused handshake and
// the call's end all arrive once through on_done.

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/transport/client_tls.h"
#include "agent/transport/event_loop.h"
#include "agent/transport/grpc_wire.h"

namespace fleet::agent {

class GrpcStream : public std::enable_shared_from_this<GrpcStream> {
 public:
  // The largest message accepted from the server: gRPC's default for clients.
  static constexpr size_t kMaxReceiveMessageBytes = 4 << 20;
  // Connect, TLS handshake and HTTP/2 settings must be done within this.
  static constexpr absl::Duration kConnectTimeout = absl::Seconds(10);

  struct Callbacks {
    // A message from the server. A non-OK return ends the call with that status.
    std::function<absl::Status(absl::string_view message)> on_message;
    // The call ended: the server's status (or UNAVAILABLE naming what failed
    // on the way), and its trailers (also those of a trailers-only answer).
    std::function<void(const absl::Status& status, const std::map<std::string, std::string>& trailers)>
        on_done;
  };

  // Loop thread. Connects to `target` (HOST:PORT, [V6]:PORT) and starts the
  // call of `path` ("/package.Service/Method"); `tls` nullptr = plaintext.
  // The work starts in a task of the loop: no callback runs inside Open, and
  // Writes made before the connection is up are sent once it is.
  static std::shared_ptr<GrpcStream> Open(EventLoop* loop, std::string target, std::string path,
                                          std::shared_ptr<const ClientTls> tls, Callbacks callbacks);
  // Closes what is still open, which only the loop thread may do: drop the
  // last reference there, or after the call ended (Close, on_done).
  ~GrpcStream();
  GrpcStream(const GrpcStream&) = delete;
  GrpcStream& operator=(const GrpcStream&) = delete;

  // Any thread. Queues `framed` (FrameMessage) to be sent; false once the call
  // ended. With `wait`, first waits while more than `max_queued_bytes` are
  // queued (a slow server holds the writer back instead of growing the queue).
  bool Write(std::string framed, bool wait, size_t max_queued_bytes);

  // Loop thread. Ends the call (RST_STREAM CANCEL, best effort) and the
  // connection at once; on_done is not called. Idempotent.
  void Close();

 private:
  GrpcStream(EventLoop* loop, std::string target, std::string path,
             std::shared_ptr<const ClientTls> tls, Callbacks callbacks);

  enum class Phase { kConnecting, kHandshaking, kStreaming, kEnded };

  void Start();             // resolves the target, then connects
  void ConnectNext();       // to the next resolved address
  void CloseSocket();       // unwatches and closes fd_, if open
  void OnEvents(uint32_t events);
  void Handshake();
  void StartHttp2();
  void ReadAvailable();
  void Pump();              // sends what nghttp2 has; ends the call when it is over
  void Resume();            // Write queued bytes: wake the data source
  void ClosedByEngine(absl::string_view detail);  // EOF or a TLS error while reading
  void Fail(absl::string_view what);
  void End(absl::Status status);
  void Teardown();
  void WatchFor(uint32_t events);

  // nghttp2's callbacks.
  static ssize_t SendCallback(nghttp2_session*, const uint8_t* data, size_t length, int flags,
                                    void* user);
  static ssize_t ReadCallback(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                                    uint32_t* data_flags, nghttp2_data_source*, void* user);
  static int HeaderCallback(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                            size_t name_length, const uint8_t* value, size_t value_length,
                            uint8_t flags, void* user);
  static int DataCallback(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                          size_t length, void* user);
  static int CloseCallback(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);

  EventLoop* const loop_;
  const std::string target_;
  const std::string path_;
  const std::shared_ptr<const ClientTls> tls_;
  const Callbacks callbacks_;

  // Loop thread only.
  Phase phase_ = Phase::kConnecting;
  std::string host_;  // of target_, without brackets
  std::vector<std::vector<uint8_t>> addresses_;  // resolved sockaddrs, tried in turn
  size_t next_address_ = 0;
  std::string last_error_;  // of the address tried last
  int fd_ = -1;
  EventLoop::WatchId watch_ = 0;
  uint32_t watched_events_ = 0;
  EventLoop::TimerId connect_timer_ = 0;
  std::unique_ptr<TlsConnection> tls_connection_;  // null in plaintext and until connected
  nghttp2_session* session_ = nullptr;
  int32_t stream_id_ = -1;
  bool write_blocked_ = false;  // the socket took less than nghttp2 gave it
  bool answered_ = false;       // bytes came back after the handshake
  bool stream_closed_ = false;
  uint32_t reset_code_ = 0;     // RST_STREAM's error code, 0 when closed cleanly
  int http_status_ = 0;
  std::map<std::string, std::string> trailers_;
  MessageDeframer deframer_{kMaxReceiveMessageBytes};
  absl::Status callback_error_;  // set by a callback that failed the session

  absl::Mutex mu_;
  std::deque<std::string> outgoing_ ABSL_GUARDED_BY(mu_);  // framed messages not yet given to nghttp2
  size_t front_offset_ ABSL_GUARDED_BY(mu_) = 0;           // bytes of the front one already given
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool resume_posted_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::agent
