#pragma once

// gRPC adapters of the Engine: fleet.v1.Fleet (the public API, synchronous
// handlers) and fleet.v1.AgentService (one callback reactor per agent stream).
// They translate messages and status codes and check leadership; every
// decision is the Engine's. A follower (Leadership::IsLeader() false) answers
// UNAVAILABLE naming the leader, with the address also in the "fleet-leader"
// trailing metadata.
//
// Thread-safety: both services are thread-safe; the Engine and Leadership
// passed in are not owned and must outlive the grpc::Server serving them.

#include "absl/status/status.h"
#include "engine/engine.h"
#include "engine/leadership.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fleet {

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class FleetService final : public fleet::v1::Fleet::Service {
 public:
  FleetService(Engine* engine, const Leadership* leadership) : engine_(engine), leadership_(leadership) {}

  grpc::Status CreateUnit(grpc::ServerContext* context, const fleet::v1::CreateUnitRequest* request,
                          fleet::v1::CreateUnitResponse* response) override;
  grpc::Status GetUnit(grpc::ServerContext* context, const fleet::v1::GetUnitRequest* request,
                       fleet::v1::Unit* response) override;
  grpc::Status ListUnits(grpc::ServerContext* context, const fleet::v1::ListUnitsRequest* request,
                         fleet::v1::ListUnitsResponse* response) override;
  grpc::Status SetUnitDesiredState(grpc::ServerContext* context,
                                   const fleet::v1::SetUnitDesiredStateRequest* request,
                                   fleet::v1::Unit* response) override;
  grpc::Status DestroyUnit(grpc::ServerContext* context, const fleet::v1::DestroyUnitRequest* request,
                           fleet::v1::DestroyUnitResponse* response) override;
  grpc::Status ListUnitStates(grpc::ServerContext* context,
                              const fleet::v1::ListUnitStatesRequest* request,
                              fleet::v1::ListUnitStatesResponse* response) override;
  grpc::Status ListMachines(grpc::ServerContext* context, const fleet::v1::ListMachinesRequest* request,
                            fleet::v1::ListMachinesResponse* response) override;

 private:
  // OK when this engine leads; else UNAVAILABLE (and the trailing metadata).
  grpc::Status CheckLeader(grpc::ServerContext* context) const;

  Engine* const engine_;
  const Leadership* const leadership_;
};

class AgentService final : public fleet::v1::AgentService::CallbackService {
 public:
  AgentService(Engine* engine, const Leadership* leadership) : engine_(engine), leadership_(leadership) {}

  grpc::ServerBidiReactor<fleet::v1::AgentMessage, fleet::v1::EngineMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  Engine* const engine_;
  const Leadership* const leadership_;
};

}  // namespace fleet
