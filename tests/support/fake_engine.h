#pragma once

// FakeEngine: the engine end of the agent protocol for tests. A real gRPC
// server on 127.0.0.1 (port 0) implementing fleet.v1.AgentService: on Register
// it sends the machine's full schedule, then a delta for every change the test
// makes; it records what agents report, and lets tests wait for a condition on
// it (woken by each message, with a deadline; no sleeping). Thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fleet::test {

class FakeEngine final : public fleet::v1::AgentService::Service {
 public:
  // What the engine has heard from agents.
  struct View {
    std::map<std::string, fleet::v1::UnitState> states;  // latest per unit
    std::map<std::string, std::vector<fleet::v1::UnitState>> history;  // every state reported
    std::set<std::string> removed;                       // reported removed (and not back since)
    std::vector<fleet::v1::Register> registers;          // every Register received
    int reports = 0;                                     // StateReport messages
    int heartbeats = 0;
    int connected = 0;                                   // open streams now
  };

  FakeEngine();
  ~FakeEngine() override;

  // Binds `address` (default 127.0.0.1:0) and serves, in plaintext or with
  // `credentials`. Returns "127.0.0.1:PORT" ("" if it could not bind).
  std::string Start(const std::string& address = "127.0.0.1:0",
                    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  const std::string& address() const { return address_; }

  // Sets the interval sent with every message (0 = not sent).
  void SetHeartbeatIntervalMs(int64_t ms);
  // Adds or replaces a unit of the schedule; connected agents get a delta.
  void Upsert(const fleet::v1::ScheduledUnit& unit);
  // Adds or replaces many units in one delta ("submitted at once").
  void UpsertMany(const std::vector<fleet::v1::ScheduledUnit>& units);
  // Removes a unit of the schedule; connected agents get a delta.
  void Remove(const std::string& name);
  // From now on streams end at once with UNAVAILABLE naming `leader`
  // ("" to serve again). Open streams are cancelled.
  void RedirectTo(const std::string& leader);
  // Ends every open stream (the agent must reconnect).
  void DropStreams();

  // Waits until `done(view)` is true (re-checked on every message) or
  // `timeout` passes. Returns whether it became true.
  bool WaitFor(const std::function<bool(const View&)>& done, absl::Duration timeout);
  View Snapshot() const;

  grpc::Status Connect(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<fleet::v1::EngineMessage, fleet::v1::AgentMessage>*
                           stream) override;

 private:
  using Stream = grpc::ServerReaderWriter<fleet::v1::EngineMessage, fleet::v1::AgentMessage>;
  struct Conn {
    grpc::ServerContext* context;
    Stream* stream;
    absl::Mutex write_mu;
  };
  void Broadcast(const fleet::v1::EngineMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  mutable absl::Mutex mu_;
  View view_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, fleet::v1::ScheduledUnit> schedule_ ABSL_GUARDED_BY(mu_);
  std::set<Conn*> conns_ ABSL_GUARDED_BY(mu_);
  std::string leader_ ABSL_GUARDED_BY(mu_);
  int64_t heartbeat_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

// A ScheduledUnit for tests; the hash is derived from the contents.
fleet::v1::ScheduledUnit MakeScheduledUnit(const std::string& name, const std::string& contents,
                                           fleet::v1::DesiredState state);

}  // namespace fleet::test
