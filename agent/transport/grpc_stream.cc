#include "agent/transport/grpc_stream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fleet::agent {
namespace {

// HTTP/2 windows: how much the server may send before we acknowledge. Large
// enough that a schedule of a few MiB arrives without waiting on round trips;
// what arrives is consumed at once, so nothing of this size is kept.
constexpr int32_t kStreamWindow = 4 << 20;
constexpr int32_t kConnectionWindow = 8 << 20;

nghttp2_nv Header(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

// Splits HOST:PORT or [V6]:PORT.
bool SplitTarget(const std::string& target, std::string* host, std::string* port) {
  size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon + 1 == target.size()) return false;
  *port = target.substr(colon + 1);
  *host = target.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty();
}

}  // namespace

std::shared_ptr<GrpcStream> GrpcStream::Open(EventLoop* loop, std::string target, std::string path,
                                             std::shared_ptr<const ClientTls> tls, Callbacks callbacks) {
  std::shared_ptr<GrpcStream> stream(
      new GrpcStream(loop, std::move(target), std::move(path), std::move(tls), std::move(callbacks)));
  // Started by the loop, so that no callback runs inside Open.
  loop->Post([stream] { stream->Start(); });
  return stream;
}

GrpcStream::GrpcStream(EventLoop* loop, std::string target, std::string path,
                       std::shared_ptr<const ClientTls> tls, Callbacks callbacks)
    : loop_(loop),
      target_(std::move(target)),
      path_(std::move(path)),
      tls_(std::move(tls)),
      callbacks_(std::move(callbacks)) {}

GrpcStream::~GrpcStream() { Teardown(); }

void GrpcStream::Start() {
  if (phase_ == Phase::kEnded) return;  // closed before it started
  std::string port;
  if (!SplitTarget(target_, &host_, &port)) {
    Fail("not HOST:PORT");
    return;
  }
  // Resolving blocks the loop for a lookup; engines are named by address or
  // by a name in /etc/hosts or a local resolver, and links reconnect rarely.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host_.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    Fail(absl::StrCat("cannot resolve: ", gai_strerror(rc)));
    return;
  }
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(a->ai_addr);
    addresses_.emplace_back(bytes, bytes + a->ai_addrlen);
  }
  freeaddrinfo(found);
  connect_timer_ = loop_->RunAfter(kConnectTimeout, [weak = weak_from_this()] {
    if (auto self = weak.lock(); self != nullptr && self->phase_ != Phase::kStreaming) {
      self->connect_timer_ = 0;
      self->Fail(absl::StrCat("no connection within ", absl::FormatDuration(kConnectTimeout)));
    }
  });
  ConnectNext();
}

void GrpcStream::CloseSocket() {
  if (fd_ < 0) return;
  loop_->Unwatch(watch_);
  close(fd_);
  fd_ = -1;
}

void GrpcStream::ConnectNext() {
  CloseSocket();
  while (next_address_ < addresses_.size()) {
    const std::vector<uint8_t>& address = addresses_[next_address_++];
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(address.data());
    fd_ = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      last_error_ = absl::StrCat("socket: ", std::strerror(errno));
      continue;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd_, sa, static_cast<socklen_t>(address.size())) == 0 || errno == EINPROGRESS) {
      watched_events_ = EPOLLOUT;
      watch_ = loop_->Watch(fd_, EPOLLOUT, [this](uint32_t events) { OnEvents(events); });
      return;
    }
    last_error_ = std::strerror(errno);
    close(fd_);
    fd_ = -1;
  }
  Fail(last_error_.empty() ? "no address" : last_error_);
}

void GrpcStream::WatchFor(uint32_t events) {
  if (events == watched_events_ || fd_ < 0) return;
  watched_events_ = events;
  loop_->Rewatch(watch_, events);
}

void GrpcStream::OnEvents(uint32_t events) {
  auto self = shared_from_this();  // a callback below may drop the last other reference
  switch (phase_) {
    case Phase::kConnecting: {
      int error = 0;
      socklen_t length = sizeof(error);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        last_error_ = std::strerror(error);
        ConnectNext();
        return;
      }
      if (tls_ == nullptr) {
        StartHttp2();
        return;
      }
      tls_connection_ = std::make_unique<TlsConnection>(tls_, fd_, host_);
      phase_ = Phase::kHandshaking;
      Handshake();
      return;
    }
    case Phase::kHandshaking:
      Handshake();
      return;
    case Phase::kStreaming:
      if (events & EPOLLOUT) write_blocked_ = false;
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ReadAvailable();
      if (phase_ == Phase::kStreaming) Pump();
      return;
    case Phase::kEnded:
      return;
  }
}

void GrpcStream::Handshake() {
  switch (tls_connection_->Handshake()) {
    case TlsConnection::Io::kOk:
      StartHttp2();
      return;
    case TlsConnection::Io::kWantRead:
      WatchFor(EPOLLIN);
      return;
    case TlsConnection::Io::kWantWrite:
      WatchFor(EPOLLOUT);
      return;
    case TlsConnection::Io::kClosed:
      ClosedByEngine(tls_connection_->error());
      return;
    case TlsConnection::Io::kFailed:
      Fail(absl::StrCat("TLS handshake: ", tls_connection_->error()));
      return;
  }
}

void GrpcStream::StartHttp2() {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_send_callback(callbacks, &GrpcStream::SendCallback);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &GrpcStream::HeaderCallback);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &GrpcStream::DataCallback);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &GrpcStream::CloseCallback);
  int rc = nghttp2_session_client_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rc != 0) {
    Fail(absl::StrCat("HTTP/2: ", nghttp2_strerror(rc)));
    return;
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);

  const char* scheme = tls_ != nullptr ? "https" : "http";
  nghttp2_nv headers[] = {
      Header(":method", "POST"),
      Header(":scheme", scheme),
      Header(":path", path_),
      Header(":authority", target_),
      Header("content-type", "application/grpc"),
      Header("te", "trailers"),
      Header("user-agent", "fleet-agent"),
  };
  nghttp2_data_provider body{};
  body.read_callback = &GrpcStream::ReadCallback;
  stream_id_ = nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &body, nullptr);
  if (stream_id_ < 0) {
    Fail(absl::StrCat("HTTP/2: ", nghttp2_strerror(stream_id_)));
    return;
  }
  phase_ = Phase::kStreaming;
  if (connect_timer_ != 0) loop_->CancelTimer(connect_timer_);
  connect_timer_ = 0;
  Pump();
}

void GrpcStream::ReadAvailable() {
  uint8_t buffer[16384];
  while (phase_ == Phase::kStreaming) {
    ssize_t n = 0;
    if (tls_connection_ != nullptr) {
      size_t got = 0;
      switch (tls_connection_->Read(buffer, sizeof(buffer), &got)) {
        case TlsConnection::Io::kOk:
          n = static_cast<ssize_t>(got);
          break;
        case TlsConnection::Io::kWantRead:
        case TlsConnection::Io::kWantWrite:
          return;
        case TlsConnection::Io::kClosed:
        case TlsConnection::Io::kFailed:
          ClosedByEngine(tls_connection_->error().empty()
                             ? ""
                             : absl::StrCat("TLS read: ", tls_connection_->error()));
          return;
      }
    } else {
      n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        Fail(absl::StrCat("read: ", std::strerror(errno)));
        return;
      }
      if (n == 0) {
        ClosedByEngine("");
        return;
      }
    }
    answered_ = true;
    ssize_t used = nghttp2_session_mem_recv(session_, buffer, static_cast<size_t>(n));
    if (used < 0) {
      if (!callback_error_.ok()) {
        End(callback_error_);
      } else {
        Fail(absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(used))));
      }
      return;
    }
    if (stream_closed_) {
      Pump();  // the end of the call (below)
      return;
    }
  }
}

void GrpcStream::Pump() {
  if (phase_ != Phase::kStreaming) return;
  last_error_.clear();
  int rc = nghttp2_session_send(session_);
  if (rc != 0) {
    if (last_error_.empty()) {
      Fail(absl::StrCat("HTTP/2 send: ", nghttp2_strerror(rc)));
    } else {
      ClosedByEngine(last_error_);  // the socket refused the bytes
    }
    return;
  }
  if (stream_closed_) {
    absl::Status status;
    if (auto it = trailers_.find("grpc-status"); it != trailers_.end()) {
      status = StatusFromTrailers(it->second, trailers_["grpc-message"]);
    } else if (http_status_ != 0 && http_status_ != 200) {
      status = absl::UnavailableError(
          absl::StrCat(target_, ": the engine answered HTTP status ", http_status_));
    } else if (reset_code_ != 0) {
      status = absl::UnavailableError(absl::StrCat(target_, ": the engine reset the stream (",
                                                   nghttp2_http2_strerror(reset_code_), ")"));
    } else {
      status = absl::UnknownError(absl::StrCat(target_, ": the call ended without a status"));
    }
    End(status);
    return;
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    Fail("the HTTP/2 connection ended");
    return;
  }
  WatchFor(EPOLLIN | (write_blocked_ ? EPOLLOUT : 0u));
}

bool GrpcStream::Write(std::string framed, bool wait, size_t max_queued_bytes) {
  absl::MutexLock lock(&mu_);
  if (wait) {
    auto room = [this, max_queued_bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ended_ || queued_bytes_ <= max_queued_bytes;
    };
    mu_.Await(absl::Condition(&room));
  }
  if (ended_) return false;
  queued_bytes_ += framed.size();
  outgoing_.push_back(std::move(framed));
  if (!resume_posted_) {
    resume_posted_ = true;
    loop_->Post([weak = weak_from_this()] {
      if (auto self = weak.lock(); self != nullptr) self->Resume();
    });
  }
  return true;
}

void GrpcStream::Resume() {
  {
    absl::MutexLock lock(&mu_);
    resume_posted_ = false;
  }
  if (phase_ != Phase::kStreaming) return;  // before the stream: sent once it starts
  nghttp2_session_resume_data(session_, stream_id_);
  Pump();
}

ssize_t GrpcStream::SendCallback(nghttp2_session*, const uint8_t* data, size_t length, int,
                                 void* user) {
  auto* self = static_cast<GrpcStream*>(user);
  ssize_t n = 0;
  if (self->tls_connection_ != nullptr) {
    size_t sent = 0;
    switch (self->tls_connection_->Write(data, length, &sent)) {
      case TlsConnection::Io::kOk:
        n = static_cast<ssize_t>(sent);
        break;
      case TlsConnection::Io::kWantWrite:
      case TlsConnection::Io::kWantRead:
        self->write_blocked_ = true;
        return NGHTTP2_ERR_WOULDBLOCK;
      case TlsConnection::Io::kClosed:
      case TlsConnection::Io::kFailed: {
        const std::string& error = self->tls_connection_->error();
        self->last_error_ = absl::StrCat("TLS write: ", error.empty() ? "the connection ended" : error);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
  } else {
    n = send(self->fd_, data, length, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        self->write_blocked_ = true;
        return NGHTTP2_ERR_WOULDBLOCK;
      }
      self->last_error_ = absl::StrCat("write: ", std::strerror(errno));
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return n;
}

ssize_t GrpcStream::ReadCallback(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                 uint32_t*, nghttp2_data_source*, void* user) {
  auto* self = static_cast<GrpcStream*>(user);
  absl::MutexLock lock(&self->mu_);
  size_t copied = 0;
  while (copied < length && !self->outgoing_.empty()) {
    const std::string& front = self->outgoing_.front();
    size_t take = std::min(length - copied, front.size() - self->front_offset_);
    std::memcpy(buf + copied, front.data() + self->front_offset_, take);
    copied += take;
    self->front_offset_ += take;
    if (self->front_offset_ == front.size()) {
      self->outgoing_.pop_front();
      self->front_offset_ = 0;
    }
  }
  self->queued_bytes_ -= copied;
  if (copied == 0) return NGHTTP2_ERR_DEFERRED;  // resumed by the next Write
  return static_cast<ssize_t>(copied);
}

int GrpcStream::HeaderCallback(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                               size_t name_length, const uint8_t* value, size_t value_length,
                               uint8_t, void* user) {
  auto* self = static_cast<GrpcStream*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != self->stream_id_) return 0;
  absl::string_view key(reinterpret_cast<const char*>(name), name_length);
  absl::string_view text(reinterpret_cast<const char*>(value), value_length);
  if (key == ":status") {
    if (!absl::SimpleAtoi(text, &self->http_status_)) self->http_status_ = -1;
  } else {
    self->trailers_[std::string(key)] = std::string(text);
  }
  return 0;
}

int GrpcStream::DataCallback(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                             size_t length, void* user) {
  auto* self = static_cast<GrpcStream*>(user);
  if (stream_id != self->stream_id_) return 0;
  absl::Status status = self->deframer_.Feed(
      absl::string_view(reinterpret_cast<const char*>(data), length), [self](absl::string_view message) {
        if (!self->callback_error_.ok()) return;
        absl::Status s = self->callbacks_.on_message(message);
        if (!s.ok()) self->callback_error_ = s;
      });
  if (!status.ok() && self->callback_error_.ok()) self->callback_error_ = status;
  return self->callback_error_.ok() ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

int GrpcStream::CloseCallback(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
  auto* self = static_cast<GrpcStream*>(user);
  if (stream_id == self->stream_id_) {
    self->stream_closed_ = true;
    self->reset_code_ = error_code;
  }
  return 0;
}

void GrpcStream::ClosedByEngine(absl::string_view detail) {
  std::string what = "the engine closed the connection";
  if (!answered_) {
    // Nothing came back at all: most often the engine refused who we are.
    absl::StrAppend(&what, tls_ != nullptr ? " before it answered (does it trust this agent's certificate?)"
                                           : " before it answered (does it want TLS instead of --insecure?)");
  }
  if (!detail.empty()) absl::StrAppend(&what, ": ", detail);
  Fail(what);
}

void GrpcStream::Fail(absl::string_view what) {
  End(absl::UnavailableError(absl::StrCat(target_, ": ", what)));
}

void GrpcStream::End(absl::Status status) {
  if (phase_ == Phase::kEnded) return;
  auto self = shared_from_this();  // on_done may drop the last other reference
  Teardown();
  callbacks_.on_done(status, trailers_);
}

void GrpcStream::Close() {
  if (phase_ == Phase::kEnded) return;
  if (phase_ == Phase::kStreaming && !stream_closed_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id_, NGHTTP2_CANCEL);
    nghttp2_session_send(session_);  // best effort: the socket is closed next
  }
  Teardown();
}

void GrpcStream::Teardown() {
  if (phase_ == Phase::kEnded) return;
  phase_ = Phase::kEnded;
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;  // wakes writers waiting for room
    outgoing_.clear();
    queued_bytes_ = 0;
  }
  if (connect_timer_ != 0) loop_->CancelTimer(connect_timer_);
  connect_timer_ = 0;
  if (session_ != nullptr) nghttp2_session_del(session_);
  session_ = nullptr;
  tls_connection_.reset();
  CloseSocket();
}

}  // namespace fleet::agent
