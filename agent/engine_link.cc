#include "agent/engine_link.h"

#include <algorithm>
#include <utility>

#include "absl/synchronization/notification.h"
#include "agent/transport/grpc_wire.h"

namespace fleet::agent {
namespace {

constexpr char kConnectPath[] = "/fleet.v1.AgentService/Connect";

std::string Framed(const fleet::v1::AgentMessage& message) {
  return FrameMessage(message.SerializeAsString());
}

}  // namespace

EngineLink::EngineLink(EngineLinkOptions options, RegisterFn on_register, MessageFn on_message,
                       LostFn on_lost)
    : options_(std::move(options)),
      on_register_(std::move(on_register)),
      on_message_(std::move(on_message)),
      on_lost_(std::move(on_lost)),
      own_loop_(options_.loop == nullptr ? std::make_unique<EventLoop>() : nullptr),
      loop_(options_.loop != nullptr ? options_.loop : own_loop_.get()),
      heartbeat_interval_(options_.heartbeat_interval),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.seed) {}

EngineLink::~EngineLink() { Stop(); }

void EngineLink::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopped_) return;
    started_ = true;
  }
  loop_->Post([this] { Connect(); });
}

void EngineLink::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  // After this task nothing of the link is left on the loop: its timers are
  // cancelled, its stream closed, and every task it posted before ran first.
  absl::Notification done;
  loop_->Post([this, &done] {
    Shutdown();
    done.Notify();
  });
  done.WaitForNotification();
}

void EngineLink::Shutdown() {
  stopping_ = true;
  loop_->CancelTimer(heartbeat_timer_);
  loop_->CancelTimer(reconnect_timer_);
  std::shared_ptr<GrpcStream> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = std::move(stream_);
  }
  if (stream != nullptr) stream->Close();
}

bool EngineLink::Send(const fleet::v1::AgentMessage& message) {
  std::shared_ptr<GrpcStream> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_;
  }
  if (stream == nullptr) return false;
  return stream->Write(Framed(message), /*wait=*/true, kMaxQueuedBytes);
}

void EngineLink::Connect() {
  reconnect_timer_ = 0;
  if (stopping_) return;
  std::string address;
  if (!redirect_.empty()) {
    address = std::move(redirect_);
    redirect_.clear();
  } else {
    address = options_.engines[next_engine_];
    next_engine_ = (next_engine_ + 1) % options_.engines.size();
  }
  uint64_t serial = ++stream_serial_;
  got_message_ = false;
  GrpcStream::Callbacks callbacks;
  callbacks.on_message = [this, serial](absl::string_view bytes) { return MessageArrived(serial, bytes); };
  callbacks.on_done = [this, serial, address](const absl::Status& status,
                                              const std::map<std::string, std::string>& trailers) {
    StreamDone(serial, address, status, trailers);
  };
  std::shared_ptr<GrpcStream> stream =
      GrpcStream::Open(loop_, address, kConnectPath, options_.tls, std::move(callbacks));
  {
    // The Register is built and queued first while Send is held off, so no
    // report can slip between its snapshot and the stream, or go out before it.
    absl::MutexLock lock(&mu_);
    fleet::v1::AgentMessage hello;
    *hello.mutable_register_() = on_register_();
    if (options_.observe_register) options_.observe_register(hello.register_());
    stream->Write(Framed(hello), /*wait=*/false, kMaxQueuedBytes);
    stream_ = std::move(stream);
  }
  ArmHeartbeat(serial);
}

absl::Status EngineLink::MessageArrived(uint64_t serial, absl::string_view bytes) {
  if (serial != stream_serial_ || stopping_) return absl::OkStatus();
  fleet::v1::EngineMessage message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InternalError("the engine sent a message that does not parse as an EngineMessage");
  }
  got_message_ = true;
  if (options_.observe_message) options_.observe_message(message);
  if (message.heartbeat_interval_ms() > 0) {
    heartbeat_interval_ = absl::Milliseconds(message.heartbeat_interval_ms());
  }
  on_message_(message);
  return absl::OkStatus();
}

void EngineLink::HeartbeatDue(uint64_t serial) {
  heartbeat_timer_ = 0;
  if (stopping_ || serial != stream_serial_) return;
  std::shared_ptr<GrpcStream> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_;
  }
  fleet::v1::AgentMessage beat;
  beat.mutable_heartbeat();
  // Not waiting for room: a heartbeat is tiny, and this is the loop thread.
  if (stream == nullptr || !stream->Write(Framed(beat), /*wait=*/false, kMaxQueuedBytes)) return;
  ArmHeartbeat(serial);
}

void EngineLink::ArmHeartbeat(uint64_t serial) {
  loop_->CancelTimer(heartbeat_timer_);
  heartbeat_timer_ = loop_->RunAfter(heartbeat_interval_, [this, serial] { HeartbeatDue(serial); });
}

void EngineLink::StreamDone(uint64_t serial, const std::string& engine, const absl::Status& status,
                            const std::map<std::string, std::string>& trailers) {
  if (stopping_ || serial != stream_serial_) return;
  {
    absl::MutexLock lock(&mu_);
    stream_.reset();
  }
  loop_->CancelTimer(heartbeat_timer_);
  heartbeat_timer_ = 0;
  on_lost_(engine, status);
  if (got_message_) backoff_.Reset();
  absl::Duration wait;
  // A follower that names the leader is left at once (a few times in a row at
  // most, so two engines that name each other do not spin).
  auto leader = trailers.find(kLeaderMetadataKey);
  if (leader != trailers.end() && !leader->second.empty() && absl::IsUnavailable(status) &&
      redirects_ < 3) {
    ++redirects_;
    redirect_ = leader->second;
    wait = absl::ZeroDuration();
  } else {
    redirects_ = 0;
    wait = std::min(backoff_.Next(), heartbeat_interval_);
  }
  reconnect_timer_ = loop_->RunAfter(wait, [this] { Connect(); });
}

}  // namespace fleet::agent
