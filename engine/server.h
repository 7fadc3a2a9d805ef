#pragma once

// EngineServer: serves an Engine over gRPC (fleet.v1.Fleet and
// fleet.v1.AgentService on one port) and runs the engine's loop thread, which
// calls Engine::Tick() whenever a change is pending and at least every
// `tick_interval` (so silent machines are declared dead on time). After a
// pass it waits as long as the pass took, at most kMaxBatchWait, so that a
// stream of changes is planned in batches instead of one pass per change
// (a leadership change, Engine::Wake, may wait that long too).
//
// Used by fleet-engine's main and by integration tests (listen on
// 127.0.0.1:0 and read port()).

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/api/fleet_service.h"
#include "engine/engine.h"
#include "engine/leadership.h"
#include "engine/relay.h"
#include "grpcpp/grpcpp.h"

namespace fleet {

struct EngineServerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 = any free port
  // Plaintext when null.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  absl::Duration tick_interval = absl::Seconds(1);
  // How long an agent has to answer a relayed request (status, journal).
  absl::Duration agent_reply_timeout = absl::Seconds(10);
};

class EngineServer {
 public:
  // Idle threads the synchronous gRPC server keeps for the next calls.
  static constexpr int kMaxIdleThreads = 64;
  // The longest the loop waits after a pass before the next one (batching;
  // see Loop in server.cc). A pass plans under the engine's lock and costs
  // O(units): 0.1-0.3 s at 100,000, and 1-1.5 s at 200,000 units on 10,000
  // machines while a launch streams in. With a 50 ms cap, passes ran back to
  // back during a launch and the API had the lock a fifth of the time;
  // bench/scale's medium launch went from 13,000 to 24,000 placements/s
  // with a 500 ms cap, and the large one from 9,000 to 15,000 with 2 s.
  // An idle engine still reacts at once (no pass, no wait).
  static constexpr absl::Duration kMaxBatchWait = absl::Seconds(2);

  // Binds and starts serving. `engine` and `leadership` are not owned and must
  // outlive the server. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<EngineServer>> Start(Engine* engine, const Leadership* leadership,
                                                             EngineServerOptions options);

  EngineServer(const EngineServer&) = delete;
  EngineServer& operator=(const EngineServer&) = delete;
  // Calls Shutdown().
  ~EngineServer();

  // The bound port (useful with port 0).
  int port() const { return port_; }

  // Closes the agent streams, stops accepting calls, waits (up to `grace`) for
  // calls in flight, and stops the loop thread. Idempotent. Not to be called
  // concurrently with itself.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  EngineServer(Engine* engine, const Leadership* leadership, const EngineServerOptions& options);
  void Loop();

  Engine* const engine_;
  Relay relay_;
  FleetService fleet_service_;
  AgentService agent_service_;
  const absl::Duration tick_interval_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread loop_;
  bool shut_down_ = false;
};

}  // namespace fleet
