#include "agent/engine_link.h"

#include <algorithm>
#include <utility>

#include "agent/backoff.h"

namespace fleet::agent {

EngineLink::EngineLink(EngineLinkOptions options, RegisterFn on_register, MessageFn on_message,
                       LostFn on_lost)
    : options_(std::move(options)),
      on_register_(std::move(on_register)),
      on_message_(std::move(on_message)),
      on_lost_(std::move(on_lost)),
      heartbeat_interval_(options_.heartbeat_interval) {}

EngineLink::~EngineLink() { Stop(); }

void EngineLink::Start() { thread_ = std::thread([this] { Run(); }); }

void EngineLink::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool EngineLink::Send(const fleet::v1::AgentMessage& message) {
  absl::MutexLock lock(&write_mu_);
  return stream_ != nullptr && stream_->Write(message);
}

std::string EngineLink::connected_engine() const {
  absl::MutexLock lock(&mu_);
  return engine_;
}

void EngineLink::Heartbeats() {
  fleet::v1::AgentMessage beat;
  beat.mutable_heartbeat();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || stream_done_; };
      // Waits for the end of the stream, or the interval.
      if (mu_.AwaitWithTimeout(absl::Condition(&done), heartbeat_interval_)) return;
    }
    if (!Send(beat)) return;
  }
}

grpc::Status EngineLink::RunStream(const std::string& address, std::string* leader,
                                   bool* got_message) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, options_.credentials ? options_.credentials
                                                        : grpc::InsecureChannelCredentials());
  std::unique_ptr<fleet::v1::AgentService::Stub> stub = fleet::v1::AgentService::NewStub(channel);
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
    context_ = &context;
    stream_done_ = false;
  }
  std::unique_ptr<Stream> stream = stub->Connect(&context);
  bool registered = false;
  {
    // Register is built, written and the stream opened for reports in one
    // step, so no report can slip between the Register's snapshot and the
    // stream (it would be lost) or go out before it.
    absl::MutexLock lock(&write_mu_);
    fleet::v1::AgentMessage hello;
    *hello.mutable_register_() = on_register_();
    registered = stream->Write(hello);
    if (registered) stream_ = stream.get();
  }
  std::thread heartbeats;
  if (registered) {
    {
      absl::MutexLock lock(&mu_);
      engine_ = address;
    }
    heartbeats = std::thread([this] { Heartbeats(); });
    fleet::v1::EngineMessage message;
    while (stream->Read(&message)) {
      *got_message = true;
      if (message.heartbeat_interval_ms() > 0) {
        absl::MutexLock lock(&mu_);
        heartbeat_interval_ = absl::Milliseconds(message.heartbeat_interval_ms());
      }
      on_message_(message);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stream_done_ = true;
    engine_.clear();
  }
  if (heartbeats.joinable()) heartbeats.join();
  {
    absl::MutexLock lock(&write_mu_);
    stream_ = nullptr;
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(kLeaderMetadataKey); it != trailers.end()) {
    *leader = std::string(it->second.data(), it->second.size());
  }
  return status;
}

void EngineLink::Run() {
  Backoff backoff(options_.initial_backoff, options_.max_backoff, options_.seed);
  size_t next = 0;
  std::string redirect;
  int redirects = 0;
  while (true) {
    std::string address;
    if (!redirect.empty()) {
      address = std::move(redirect);
      redirect.clear();
    } else {
      address = options_.engines[next];
      next = (next + 1) % options_.engines.size();
    }
    bool got_message = false;
    grpc::Status status = RunStream(address, &redirect, &got_message);
    if (got_message) backoff.Reset();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    on_lost_(address, status);
    // A follower that names the leader is left at once (a few times in a row at
    // most, so two engines that name each other do not spin).
    if (!redirect.empty() && status.error_code() == grpc::StatusCode::UNAVAILABLE &&
        redirects < 3) {
      ++redirects;
      continue;
    }
    redirect.clear();
    redirects = 0;
    absl::Duration wait = backoff.Next();
    absl::MutexLock lock(&mu_);
    wait = std::min(wait, heartbeat_interval_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), wait)) return;
  }
}

}  // namespace fleet::agent
