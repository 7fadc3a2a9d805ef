#pragma once

// gRPC adapters of the Engine: fleet.v1.Fleet (the public API, synchronous
// handlers, except ListUnitStates: a raw callback handler, whose response
// bytes the Engine writes) and fleet.v1.AgentService (one callback reactor
// per agent stream).
// They translate messages and status codes and check leadership; every
// decision is the Engine's. A follower (Leadership::IsLeader() false) answers
// UNAVAILABLE naming the leader, with the address also in the "fleet-leader"
// trailing metadata. Except reads (GetUnit and the listings) while no leader
// is known at all (etcd unreachable): those get the last known state, which
// beats no answer when units keep running anyway.
//
// GetUnitStatus and ReadJournal go through the Relay to the unit's agent;
// AgentStream hands the agents' answers (and the end of each stream) to it.
// A following ReadJournal holds one server thread and looks at its client's
// cancellation every 500 ms (the synchronous API has no cancellation event).
//
// Thread-safety: both services are thread-safe; the Engine, Leadership and
// Relay passed in are not owned and must outlive the grpc::Server serving them.

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/leadership.h"
#include "engine/relay.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fleet {

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class FleetService final
    : public fleet::v1::Fleet::WithRawCallbackMethod_ListUnitStates<fleet::v1::Fleet::Service> {
 public:
  FleetService(Engine* engine, const Leadership* leadership, Relay* relay)
      : engine_(engine), leadership_(leadership), relay_(relay) {}

  grpc::Status CreateUnit(grpc::ServerContext* context, const fleet::v1::CreateUnitRequest* request,
                          fleet::v1::CreateUnitResponse* response) override;
  grpc::Status CreateUnits(grpc::ServerContext* context, const fleet::v1::CreateUnitsRequest* request,
                           fleet::v1::CreateUnitsResponse* response) override;
  grpc::Status GetUnit(grpc::ServerContext* context, const fleet::v1::GetUnitRequest* request,
                       fleet::v1::Unit* response) override;
  grpc::Status ListUnits(grpc::ServerContext* context, const fleet::v1::ListUnitsRequest* request,
                         fleet::v1::ListUnitsResponse* response) override;
  grpc::Status SetUnitsDesiredState(grpc::ServerContext* context,
                                    const fleet::v1::SetUnitsDesiredStateRequest* request,
                                    fleet::v1::SetUnitsDesiredStateResponse* response) override;
  grpc::Status SetUnitDesiredState(grpc::ServerContext* context,
                                   const fleet::v1::SetUnitDesiredStateRequest* request,
                                   fleet::v1::Unit* response) override;
  grpc::Status DestroyUnit(grpc::ServerContext* context, const fleet::v1::DestroyUnitRequest* request,
                           fleet::v1::DestroyUnitResponse* response) override;
  // Raw: the Engine writes the response's bytes itself (engine/unit_status_wire.h).
  grpc::ServerUnaryReactor* ListUnitStates(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::Status ListMachines(grpc::ServerContext* context, const fleet::v1::ListMachinesRequest* request,
                            fleet::v1::ListMachinesResponse* response) override;
  grpc::Status GetUnitStatus(grpc::ServerContext* context, const fleet::v1::GetUnitStatusRequest* request,
                             fleet::v1::GetUnitStatusResponse* response) override;
  grpc::Status ReadJournal(grpc::ServerContext* context, const fleet::v1::ReadJournalRequest* request,
                           grpc::ServerWriter<fleet::v1::JournalEntry>* writer) override;

 private:
  // OK when this engine leads; else UNAVAILABLE (and the trailing metadata).
  grpc::Status CheckLeader(grpc::ServerContextBase* context) const;
  // CheckLeader, but OK too while no leader is known (a stale read).
  grpc::Status CheckReadable(grpc::ServerContextBase* context) const;

  Engine* const engine_;
  const Leadership* const leadership_;
  Relay* const relay_;
};

// Starts writes to agent streams on a thread of its own. The engine sends
// to agents with its lock held (AgentChannel), and starting a write
// serializes the message and hands it to the transport: at 10,000 agents
// that was a sixth of the engine's CPU, spent under the lock that API calls
// wait for. A stream waits for its started writes before it finishes, so a
// stream whose write is queued here outlives its turn.
class WriteStarter {
 public:
  WriteStarter();
  // Starts what is queued, then stops the thread.
  ~WriteStarter();
  void Post(std::function<void()> start_write);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Destroy it only after the grpc::Server serving it has shut down (its
// WriteStarter must start the writes of the streams still open).
class AgentService final : public fleet::v1::AgentService::CallbackService {
 public:
  AgentService(Engine* engine, const Leadership* leadership, Relay* relay)
      : engine_(engine), leadership_(leadership), relay_(relay) {}

  grpc::ServerBidiReactor<fleet::v1::AgentMessage, fleet::v1::EngineMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  Engine* const engine_;
  const Leadership* const leadership_;
  Relay* const relay_;
  WriteStarter write_starter_;
};

}  // namespace fleet
