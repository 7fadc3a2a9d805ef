#include "agent/engine_link.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <utility>

namespace fleet::agent {

// One Connect call. Its writes go out one at a time from a queue (the callback
// API allows one in flight); its reads run back to back until the stream ends.
// gRPC may run a reaction inline in any Start* call, so no lock is held across
// one. A hold for the write flow keeps OnDone back until no write is in
// flight and none can start.
class EngineLink::Stream final
    : public grpc::ClientBidiReactor<fleet::v1::AgentMessage, fleet::v1::EngineMessage> {
 public:
  Stream(EngineLink* link, std::string engine)
      : link_(link),
        engine_(std::move(engine)),
        channel_(grpc::CreateChannel(engine_, link->options_.credentials
                                                  ? link->options_.credentials
                                                  : grpc::InsecureChannelCredentials())),
        stub_(fleet::v1::AgentService::NewStub(channel_)) {}

  // Queues `hello` as the stream's first message; before Open.
  void QueueFirst(fleet::v1::AgentMessage hello) {
    absl::MutexLock lock(&mu_);
    size_t bytes = hello.ByteSizeLong();
    queue_.push_back({std::move(hello), bytes});
    queued_bytes_ += bytes;
    writing_ = true;
  }

  // Starts the call: the queued first message, the reads.
  void Open() {
    const fleet::v1::AgentMessage* first;
    {
      absl::MutexLock lock(&mu_);
      first = &queue_.front().message;
    }
    stub_->async()->Connect(&context_, this);
    StartWrite(first);
    StartRead(&in_);
    AddHold();
    StartCall();
  }

  // Queues `message`; false once the stream ended. With `wait`, waits while
  // more than kMaxQueuedBytes are queued.
  bool Enqueue(const fleet::v1::AgentMessage& message, bool wait) {
    const fleet::v1::AgentMessage* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (wait) {
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return ended_ || queued_bytes_ <= kMaxQueuedBytes;
        };
        mu_.Await(absl::Condition(&room));
      }
      if (ended_) return false;
      size_t bytes = message.ByteSizeLong();
      queue_.push_back({message, bytes});
      queued_bytes_ += bytes;
      if (!writing_) {
        writing_ = true;
        start = &queue_.front().message;
      }
    }
    if (start != nullptr) StartWrite(start);
    return true;
  }

  void Cancel() { context_.TryCancel(); }

  void OnWriteDone(bool ok) override {
    const fleet::v1::AgentMessage* next = nullptr;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      queued_bytes_ -= queue_.front().bytes;
      queue_.pop_front();
      writing_ = false;
      if (!ok) EndLocked();
      if (!ended_ && !queue_.empty()) {
        writing_ = true;
        next = &queue_.front().message;
      } else {
        release = TakeHoldLocked();
      }
    }
    if (next != nullptr) StartWrite(next);
    if (release) RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      got_message_ = true;
      link_->MessageArrived(in_);
      StartRead(&in_);
      return;
    }
    bool release;
    {
      absl::MutexLock lock(&mu_);
      EndLocked();
      release = !writing_ && TakeHoldLocked();
    }
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    std::string leader;
    const auto& trailers = context_.GetServerTrailingMetadata();
    if (auto it = trailers.find(kLeaderMetadataKey); it != trailers.end()) {
      leader.assign(it->second.data(), it->second.size());
    }
    // Last: the link may drop this stream as soon as it knows it is done.
    link_->StreamDone(engine_, status, std::move(leader), got_message_);
  }

 private:
  struct Queued {
    fleet::v1::AgentMessage message;
    size_t bytes;
  };

  // No more writes: drops what is queued but not in flight.
  void EndLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ended_ = true;
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back().bytes;
      queue_.pop_back();
    }
  }
  // True once, when the write hold is to be removed.
  bool TakeHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ended_ || hold_removed_) return false;
    hold_removed_ = true;
    return true;
  }

  EngineLink* const link_;
  const std::string engine_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<fleet::v1::AgentService::Stub> stub_;
  grpc::ClientContext context_;
  fleet::v1::EngineMessage in_;  // touched by the read reactions only
  bool got_message_ = false;     // read reactions, then OnDone

  absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);  // front: in flight while writing_
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_removed_ ABSL_GUARDED_BY(mu_) = false;
};

EngineLink::EngineLink(EngineLinkOptions options, RegisterFn on_register, MessageFn on_message,
                       LostFn on_lost)
    : options_(std::move(options)),
      on_register_(std::move(on_register)),
      on_message_(std::move(on_message)),
      on_lost_(std::move(on_lost)),
      heartbeat_interval_(options_.heartbeat_interval),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.seed) {}

EngineLink::~EngineLink() { Stop(); }

void EngineLink::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  Connect();
}

void EngineLink::Stop() {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stream = stream_;
    // A cancelled alarm runs its callback (not ok) on a gRPC thread, never inline.
    for (const std::unique_ptr<grpc::Alarm>& alarm : alarms_) alarm->Cancel();
  }
  if (stream != nullptr) stream->Cancel();
  absl::MutexLock lock(&mu_);
  auto quiet = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !stream_live_ && alarms_pending_ == 0;
  };
  mu_.Await(absl::Condition(&quiet));
}

bool EngineLink::Send(const fleet::v1::AgentMessage& message) {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (!stream_live_) return false;
    stream = stream_;
  }
  return stream->Enqueue(message, /*wait=*/true);
}

void EngineLink::Connect() {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<Stream> previous;  // done; dropped outside the lock
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    std::string address;
    if (!redirect_.empty()) {
      address = std::move(redirect_);
      redirect_.clear();
    } else {
      address = options_.engines[next_engine_];
      next_engine_ = (next_engine_ + 1) % options_.engines.size();
    }
    stream = std::make_shared<Stream>(this, std::move(address));
    // The Register is built and queued first while Send is held off, so no
    // report can slip between its snapshot and the stream, or go out before it.
    fleet::v1::AgentMessage hello;
    *hello.mutable_register_() = on_register_();
    stream->QueueFirst(std::move(hello));
    previous = std::exchange(stream_, stream);
    stream_live_ = true;
    uint64_t serial = ++stream_serial_;
    ArmHeartbeatLocked(serial);
  }
  stream->Open();
}

void EngineLink::MessageArrived(const fleet::v1::EngineMessage& message) {
  if (message.heartbeat_interval_ms() > 0) {
    absl::MutexLock lock(&mu_);
    heartbeat_interval_ = absl::Milliseconds(message.heartbeat_interval_ms());
  }
  on_message_(message);
}

void EngineLink::HeartbeatDue(uint64_t serial) {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || serial != stream_serial_ || !stream_live_) return;
    stream = stream_;
  }
  fleet::v1::AgentMessage beat;
  beat.mutable_heartbeat();
  // Not waiting for room: a heartbeat is tiny, and this is a gRPC thread.
  if (!stream->Enqueue(beat, /*wait=*/false)) return;
  absl::MutexLock lock(&mu_);
  if (stopping_ || serial != stream_serial_) return;
  ArmHeartbeatLocked(serial);
}

void EngineLink::ArmHeartbeatLocked(uint64_t serial) {
  SetAlarmLocked(heartbeat_interval_, [this, serial](bool ok) {
    if (ok) HeartbeatDue(serial);
  });
}

void EngineLink::StreamDone(const std::string& engine, const grpc::Status& status,
                            std::string leader, bool got_message) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      stream_live_ = false;
      return;
    }
  }
  on_lost_(engine, status);
  absl::MutexLock lock(&mu_);
  // Stop() waits for this, so it is the last thing the stream's OnDone changes.
  stream_live_ = false;
  if (stopping_) return;
  if (got_message) backoff_.Reset();
  absl::Duration wait;
  // A follower that names the leader is left at once (a few times in a row at
  // most, so two engines that name each other do not spin).
  if (!leader.empty() && status.error_code() == grpc::StatusCode::UNAVAILABLE && redirects_ < 3) {
    ++redirects_;
    redirect_ = std::move(leader);
    wait = absl::ZeroDuration();
  } else {
    redirects_ = 0;
    wait = std::min(backoff_.Next(), heartbeat_interval_);
  }
  SetAlarmLocked(wait, [this](bool ok) {
    if (ok) Connect();
  });
}

void EngineLink::SetAlarmLocked(absl::Duration after, std::function<void(bool)> fn) {
  alarms_.push_back(std::make_unique<grpc::Alarm>());
  grpc::Alarm* alarm = alarms_.back().get();
  ++alarms_pending_;
  alarm->Set(absl::ToChronoTime(absl::Now() + after), [this, alarm, fn = std::move(fn)](bool ok) {
    fn(ok);
    std::unique_ptr<grpc::Alarm> fired;  // destroyed after the lock is released
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(alarms_.begin(), alarms_.end(),
                           [alarm](const std::unique_ptr<grpc::Alarm>& a) { return a.get() == alarm; });
    fired = std::move(*it);
    alarms_.erase(it);
    --alarms_pending_;
  });
}

}  // namespace fleet::agent
