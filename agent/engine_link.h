#pragma once

// EngineLink: the agent's one gRPC stream to the leader engine
// (fleet.v1.AgentService/Connect). On every new stream it sends Register
// (built by the caller at that moment, so it carries everything the agent runs
// now), then heartbeats at the interval the engine asks for
// (EngineMessage.heartbeat_interval_ms; 1 s until it says), and hands every
// EngineMessage to the caller. On loss it retries with jittered exponential
// backoff (reset after the first message on a stream), cycling through the
// configured engines. The wait never exceeds the heartbeat interval: the
// engine declares the machine dead after about three of those without news
// (also a new leader, one agent_ttl after it took over), so an agent that
// waited longer after an outage would find its units moved. An engine that ends the stream with UNAVAILABLE and
// names the leader (trailing metadata "fleet-leader: HOST:PORT") is left for
// that leader at once. The transport is EngineLinkOptions::credentials (mutual
// TLS from fleet::tls::MakeChannelCredentials in fleet-agent; plaintext only
// when the caller passes none, i.e. fleet-agent --insecure and tests).
//
// Thread-safe. Runs its own thread between Start() and Stop().

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fleet::agent {

struct EngineLinkOptions {
  std::vector<std::string> engines;  // HOST:PORT, tried in turn
  absl::Duration heartbeat_interval = absl::Seconds(1);  // until the engine says otherwise
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);  // and at most one heartbeat interval
  uint64_t seed = 0;  // of the backoff jitter
  // Of every channel to an engine; nullptr = plaintext (grpc::InsecureChannelCredentials).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// The trailing-metadata key by which a follower names the leader.
inline constexpr char kLeaderMetadataKey[] = "fleet-leader";

class EngineLink {
 public:
  // Called on the link's thread for each new stream, while Send() is held
  // off; must be thread-safe and must not call Send().
  using RegisterFn = std::function<fleet::v1::Register()>;
  // Called on the link's thread for each message from the engine.
  using MessageFn = std::function<void(const fleet::v1::EngineMessage&)>;
  // Called on the link's thread when a stream ends (status of the stream).
  using LostFn = std::function<void(const std::string& engine, const grpc::Status&)>;

  EngineLink(EngineLinkOptions options, RegisterFn on_register, MessageFn on_message,
             LostFn on_lost);
  ~EngineLink();  // Stop()s
  EngineLink(const EngineLink&) = delete;
  EngineLink& operator=(const EngineLink&) = delete;

  void Start();
  // Ends the stream and the thread; returns once both are gone. Idempotent.
  void Stop();

  // Writes `message` on the current stream. False when there is none or the
  // write failed: the message is dropped (the next Register carries the full
  // state, so nothing is lost for good).
  bool Send(const fleet::v1::AgentMessage& message);

  // The engine of the current stream ("" when disconnected).
  std::string connected_engine() const;

 private:
  using Stream = grpc::ClientReaderWriter<fleet::v1::AgentMessage, fleet::v1::EngineMessage>;
  void Run();
  // One stream to `address`. Sets `*leader` when the engine named another,
  // `*got_message` once a message arrived.
  grpc::Status RunStream(const std::string& address, std::string* leader, bool* got_message);
  void Heartbeats();

  const EngineLinkOptions options_;
  const RegisterFn on_register_;
  const MessageFn on_message_;
  const LostFn on_lost_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string engine_ ABSL_GUARDED_BY(mu_);
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);

  absl::Mutex write_mu_ ABSL_ACQUIRED_AFTER(mu_);
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;
};

}  // namespace fleet::agent
