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
// waited longer after an outage would find its units moved. An engine that
// ends the stream with UNAVAILABLE and names the leader (trailing metadata
// "fleet-leader: HOST:PORT") is left for that leader at once. The transport is
// EngineLinkOptions::credentials (mutual TLS from
// fleet::tls::MakeChannelCredentials in fleet-agent; plaintext only when the
// caller passes none, i.e. fleet-agent --insecure and tests).
//
// The link has no thread of its own: the stream is gRPC's callback API and the
// heartbeat and reconnect waits are grpc::Alarms, all run on gRPC's shared
// threads. So a process can hold thousands of links (bench/scale's hollow
// agents) on a few threads. Thread-safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/backoff.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "grpcpp/alarm.h"
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
  // Called for each new stream, while Send() is held off; must be thread-safe
  // and must not call Send().
  using RegisterFn = std::function<fleet::v1::Register()>;
  // Called for each message from the engine, in order, on a gRPC thread; must
  // not block (it is a callback reaction).
  using MessageFn = std::function<void(const fleet::v1::EngineMessage&)>;
  // Called on a gRPC thread when a stream ends (status of the stream); must
  // not block.
  using LostFn = std::function<void(const std::string& engine, const grpc::Status&)>;

  EngineLink(EngineLinkOptions options, RegisterFn on_register, MessageFn on_message,
             LostFn on_lost);
  ~EngineLink();  // Stop()s
  EngineLink(const EngineLink&) = delete;
  EngineLink& operator=(const EngineLink&) = delete;

  void Start();
  // Ends the stream and the waits; returns once no callback of the link runs
  // or is pending. Idempotent.
  void Stop();

  // Queues `message` on the current stream. False when there is none or it
  // broke: the message is dropped (the next Register carries the full state,
  // so nothing is lost for good). Waits while more than kMaxQueuedBytes are
  // queued, so a slow engine holds back a journal follow instead of growing
  // the queue.
  bool Send(const fleet::v1::AgentMessage& message);

  static constexpr size_t kMaxQueuedBytes = 4 << 20;

 private:
  class Stream;
  // Opens a stream to the next engine (the leader named last, or the next in
  // turn). Called from Start and from the reconnect wait.
  void Connect();
  // Stream's OnDone: schedules the reconnect.
  void StreamDone(const std::string& engine, const grpc::Status& status, std::string leader,
                  bool got_message);
  // Sets an alarm that runs `fn(ok)` after `after`; every one runs before Stop returns.
  void SetAlarmLocked(absl::Duration after, std::function<void(bool)> fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stream's OnReadDone: a message from the engine.
  void MessageArrived(const fleet::v1::EngineMessage& message);
  // The heartbeat alarm of stream `serial`: queues a beat, sets the next one.
  void HeartbeatDue(uint64_t serial);
  // Sets the alarm for stream `serial`'s next heartbeat, one interval from now.
  void ArmHeartbeatLocked(uint64_t serial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineLinkOptions options_;
  const RegisterFn on_register_;
  const MessageFn on_message_;
  const LostFn on_lost_;

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The stream now (also once ended, until the next one replaces it), and
  // whether gRPC still holds it (OnDone not yet run).
  std::shared_ptr<Stream> stream_ ABSL_GUARDED_BY(mu_);
  bool stream_live_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t stream_serial_ ABSL_GUARDED_BY(mu_) = 0;
  // Alarms set; their callbacks have not finished yet.
  std::vector<std::unique_ptr<grpc::Alarm>> alarms_ ABSL_GUARDED_BY(mu_);
  int alarms_pending_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  Backoff backoff_ ABSL_GUARDED_BY(mu_);
  size_t next_engine_ ABSL_GUARDED_BY(mu_) = 0;
  std::string redirect_ ABSL_GUARDED_BY(mu_);
  int redirects_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleet::agent
