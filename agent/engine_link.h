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
// mutual TLS when EngineLinkOptions::tls is set (fleet-agent builds it from
// its TLS files), plaintext only when it is not (--insecure, tests).
//
// The stream is a GrpcStream (agent/transport), not gRPC's client library,
// which would cost the agent several MiB of resident code for one call. The
// link runs on an EventLoop, its own or one shared with other links
// (bench/scale's hollow agents: thousands of links on a few threads).
// Thread-safe; Stop (and the destructor) must not run on the loop thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/status/status.h"
#include "agent/backoff.h"
#include "agent/transport/client_tls.h"
#include "agent/transport/event_loop.h"
#include "agent/transport/grpc_stream.h"
#include "fleet/v1/agent.pb.h"

namespace fleet::agent {

struct EngineLinkOptions {
  std::vector<std::string> engines;  // HOST:PORT, tried in turn
  absl::Duration heartbeat_interval = absl::Seconds(1);  // until the engine says otherwise
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);  // and at most one heartbeat interval
  uint64_t seed = 0;  // of the backoff jitter
  // Of every connection to an engine; nullptr = plaintext.
  std::shared_ptr<const ClientTls> tls;
  // The loop the link runs on, shared with other links; nullptr = a loop of
  // the link's own. Must outlive the link.
  EventLoop* loop = nullptr;
  // For bench/scale's counts of what agents receive: called on the loop
  // thread with each Register sent and each message received. Empty = none.
  std::function<void(const fleet::v1::Register&)> observe_register;
  std::function<void(const fleet::v1::EngineMessage&)> observe_message;
};

// The trailing-metadata key by which a follower names the leader.
inline constexpr char kLeaderMetadataKey[] = "fleet-leader";

class EngineLink {
 public:
  // Called for each new stream, while Send() is held off; must be thread-safe
  // and must not call Send().
  using RegisterFn = std::function<fleet::v1::Register()>;
  // Called for each message from the engine, in order, on the loop thread;
  // must not block.
  using MessageFn = std::function<void(const fleet::v1::EngineMessage&)>;
  // Called on the loop thread when a stream ends (status of the stream); must
  // not block.
  using LostFn = std::function<void(const std::string& engine, const absl::Status& status)>;

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
  // On the loop thread from here on.
  // Opens a stream to the next engine (the leader named last, or the next in
  // turn). Called from Start and from the reconnect wait.
  void Connect();
  // The stream ended: schedules the reconnect.
  void StreamDone(uint64_t serial, const std::string& engine, const absl::Status& status,
                  const std::map<std::string, std::string>& trailers);
  // A message from the engine on stream `serial`.
  absl::Status MessageArrived(uint64_t serial, absl::string_view bytes);
  // The heartbeat of stream `serial`: queues a beat, sets the next one.
  void HeartbeatDue(uint64_t serial);
  void ArmHeartbeat(uint64_t serial);
  void Shutdown();  // Stop's part on the loop

  const EngineLinkOptions options_;
  const RegisterFn on_register_;
  const MessageFn on_message_;
  const LostFn on_lost_;
  std::unique_ptr<EventLoop> own_loop_;  // when options_.loop is nullptr
  EventLoop* const loop_;

  // The stream Send writes to; null between streams.
  absl::Mutex mu_;
  std::shared_ptr<GrpcStream> stream_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  // Loop thread only.
  bool stopping_ = false;
  uint64_t stream_serial_ = 0;
  bool got_message_ = false;  // on the current stream
  EventLoop::TimerId heartbeat_timer_ = 0;
  EventLoop::TimerId reconnect_timer_ = 0;
  absl::Duration heartbeat_interval_;
  Backoff backoff_;
  size_t next_engine_ = 0;
  std::string redirect_;
  int redirects_ = 0;
};

}  // namespace fleet::agent
