#include "engine/api/fleet_service.h"

#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/tls/identity.h"

namespace fleet {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

// An error of a relayed request (unit unknown, not placed, agent gone or slow),
// marked so clients show it as it is instead of as a failure to reach the engine.
grpc::Status RelayError(grpc::ServerContext* context, const absl::Status& status) {
  context->AddTrailingMetadata("fleet-relay", "1");
  return ToGrpcStatus(status);
}

std::string NotLeaderMessage(const Leadership& leadership) {
  std::string address = leadership.LeaderAddress();
  if (!address.empty()) return absl::StrCat("this engine is not the leader; the leader is at ", address);
  std::string reason = leadership.NoLeaderReason();
  return absl::StrCat(
      "no engine leads now, so changes are refused (reads answer from the last known state); ",
      reason.empty() ? "the engines are electing one: retry in a few seconds"
                     : absl::StrCat("this engine cannot elect one: ", reason));
}

}  // namespace

grpc::Status FleetService::CheckLeader(grpc::ServerContextBase* context) const {
  if (leadership_->IsLeader()) return grpc::Status::OK;
  context->AddTrailingMetadata("fleet-leader", leadership_->LeaderAddress());
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, NotLeaderMessage(*leadership_));
}

grpc::Status FleetService::CheckReadable(grpc::ServerContextBase* context) const {
  if (leadership_->LeaderAddress().empty()) return grpc::Status::OK;
  return CheckLeader(context);
}

grpc::Status FleetService::CreateUnit(grpc::ServerContext* context, const v1::CreateUnitRequest* request,
                                      v1::CreateUnitResponse* response) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  absl::StatusOr<v1::CreateUnitResponse> result = engine_->CreateUnit(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::CreateUnits(grpc::ServerContext* context, const v1::CreateUnitsRequest* request,
                                       v1::CreateUnitsResponse* response) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  absl::StatusOr<v1::CreateUnitsResponse> result = engine_->CreateUnits(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::GetUnit(grpc::ServerContext* context, const v1::GetUnitRequest* request,
                                   v1::Unit* response) {
  if (grpc::Status s = CheckReadable(context); !s.ok()) return s;
  absl::StatusOr<v1::Unit> result = engine_->GetUnit(request->name());
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::ListUnits(grpc::ServerContext* context, const v1::ListUnitsRequest* request,
                                     v1::ListUnitsResponse* response) {
  if (grpc::Status s = CheckReadable(context); !s.ok()) return s;
  absl::StatusOr<v1::ListUnitsResponse> result = engine_->ListUnits(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::SetUnitDesiredState(grpc::ServerContext* context,
                                               const v1::SetUnitDesiredStateRequest* request,
                                               v1::Unit* response) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  absl::StatusOr<v1::Unit> result = engine_->SetUnitDesiredState(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::SetUnitsDesiredState(grpc::ServerContext* context,
                                                const v1::SetUnitsDesiredStateRequest* request,
                                                v1::SetUnitsDesiredStateResponse* response) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  absl::StatusOr<v1::SetUnitsDesiredStateResponse> result = engine_->SetUnitsDesiredState(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::DestroyUnit(grpc::ServerContext* context, const v1::DestroyUnitRequest* request,
                                       v1::DestroyUnitResponse* /*response*/) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  return ToGrpcStatus(engine_->DestroyUnit(request->name()));
}

grpc::ServerUnaryReactor* FleetService::ListUnitStates(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request,
                                                       grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish([&]() -> grpc::Status {
    if (grpc::Status s = CheckReadable(context); !s.ok()) return s;
    v1::ListUnitStatesRequest parsed;
    grpc::ByteBuffer request_bytes(*request);  // Deserialize consumes its buffer
    if (grpc::Status s = grpc::SerializationTraits<v1::ListUnitStatesRequest>::Deserialize(&request_bytes, &parsed);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::string> page = engine_->ListUnitStates(parsed);
    if (!page.ok()) return ToGrpcStatus(page.status());
    grpc::Slice slice(*page);
    *response = grpc::ByteBuffer(&slice, 1);
    return grpc::Status::OK;
  }());
  return reactor;
}

grpc::Status FleetService::ListMachines(grpc::ServerContext* context, const v1::ListMachinesRequest*,
                                        v1::ListMachinesResponse* response) {
  if (grpc::Status s = CheckReadable(context); !s.ok()) return s;
  *response = engine_->ListMachines();
  return grpc::Status::OK;
}

grpc::Status FleetService::GetUnitStatus(grpc::ServerContext* context,
                                         const v1::GetUnitStatusRequest* request,
                                         v1::GetUnitStatusResponse* response) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  // Answer a little before the client's deadline, so it hears which machine was slow.
  absl::StatusOr<v1::GetUnitStatusResponse> result = relay_->GetUnitStatus(
      *request, absl::FromChrono(context->deadline()) - absl::Milliseconds(250));
  if (!result.ok()) return RelayError(context, result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status FleetService::ReadJournal(grpc::ServerContext* context, const v1::ReadJournalRequest* request,
                                       grpc::ServerWriter<v1::JournalEntry>* writer) {
  if (grpc::Status s = CheckLeader(context); !s.ok()) return s;
  absl::StatusOr<int64_t> id = relay_->OpenJournal(*request);
  if (!id.ok()) return RelayError(context, id.status());
  constexpr absl::Duration kCancelCheck = absl::Milliseconds(500);
  while (true) {
    if (context->IsCancelled()) {
      relay_->CloseJournal(*id);
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
    }
    absl::StatusOr<Relay::JournalBatch> batch = relay_->NextJournal(*id, absl::Now() + kCancelCheck);
    if (!batch.ok()) {
      relay_->CloseJournal(*id);
      return RelayError(context, batch.status());
    }
    for (const v1::JournalEntry& entry : batch->entries) {
      if (!writer->Write(entry)) {
        relay_->CloseJournal(*id);
        return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      }
    }
    if (batch->done) {
      relay_->CloseJournal(*id);
      return grpc::Status::OK;
    }
  }
}

// ---------------------------------------------------------------------------
// One agent stream. Reads run one at a time (gRPC guarantees it); writes are
// queued by Send (called by the Engine, with the Engine's lock held) and
// written one at a time. The reactor never calls the Engine while holding its
// own mutex, so the lock order is always Engine -> stream. It deletes itself
// in OnDone, after telling the Engine the session ended.
//
// The agent's identity (mutual TLS): when the connection carries a verified
// client certificate, an agent certificate (fleet://agent/ID) may register only
// machine ID; an engine certificate may register any machine (hollow agents,
// tests). The AuthorizingProcessor already refused every other role. Without a
// client identity the server runs --insecure (with TLS the processor refuses
// unauthenticated calls before this handler), and nothing is checked.
// Every UnitState of a report must be for the stream's machine (an empty
// machine_id means "this machine"); a report with another machine's state is
// refused as a whole, nothing of it is stored, and the stream ends with
// PERMISSION_DENIED saying which machine it named.
namespace {

// OK when the caller of `context` may register `machine_id` (see above).
absl::Status CheckAgentIdentity(const grpc::CallbackServerContext& context, const std::string& machine_id) {
  absl::StatusOr<tls::Identity> identity = tls::CallerIdentity(context);
  if (!identity.ok()) return absl::OkStatus();  // plaintext server (--insecure)
  switch (identity->role) {
    case tls::Role::kEngine:
      return absl::OkStatus();
    case tls::Role::kAgent:
      if (identity->machine_id == machine_id) return absl::OkStatus();
      return absl::PermissionDeniedError(absl::StrCat("the agent certificate is for machine ",
                                                      identity->machine_id, ", not ", machine_id));
    case tls::Role::kAdmin:
    case tls::Role::kViewer:
      break;
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "registering a machine needs an agent certificate for it; the client certificate has role ",
      identity->Describe()));
}

// OK when every state of `report` is for `machine_id` (or names no machine).
absl::Status CheckReportMachine(const v1::StateReport& report, const std::string& machine_id) {
  for (const v1::UnitState& state : report.states()) {
    if (!state.machine_id().empty() && state.machine_id() != machine_id) {
      return absl::PermissionDeniedError(
          absl::StrCat("the report of machine ", machine_id, " has a state of unit ", state.name(),
                       " for machine ", state.machine_id(), ": an agent reports only for its own machine"));
    }
  }
  return absl::OkStatus();
}

class AgentStream final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::EngineMessage>,
                          public AgentChannel {
 public:
  AgentStream(Engine* engine, const Leadership* leadership, Relay* relay, WriteStarter* write_starter,
              grpc::CallbackServerContext* context)
      : engine_(engine), relay_(relay), write_starter_(write_starter), context_(context) {
    if (!leadership->IsLeader()) {
      context->AddTrailingMetadata("fleet-leader", leadership->LeaderAddress());
      Close(absl::UnavailableError(NotLeaderMessage(*leadership)));
      return;
    }
    StartRead(&in_);
  }

  void Send(v1::EngineMessage message) override {
    const v1::EngineMessage* first = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      queue_.push_back(std::move(message));
      if (writing_) return;
      writing_ = true;
      first = &queue_.front();  // stays valid: deque::push_back keeps references
    }
    // Not here: the engine calls Send with its lock held.
    write_starter_->Post([this, first] { StartWrite(first); });
  }

  void Close(absl::Status status) override {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      final_status_ = ToGrpcStatus(status);
      if (writing_) return;  // OnWriteDone finishes once the queue is written
    }
    Finish(final_status_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the agent closed its side, or the stream broke
      engine_->AgentDisconnected(session_);
      relay_->SessionEnded(session_);
      Close(absl::OkStatus());
      return;
    }
    absl::Status status;
    switch (in_.kind_case()) {
      case v1::AgentMessage::kRegister: {
        if (session_ != 0) {
          status = absl::InvalidArgumentError("Register was sent twice on one stream");
          break;
        }
        status = CheckAgentIdentity(*context_, in_.register_().machine().id());
        if (!status.ok()) {
          LogWarning("agent stream from %s refused: %s", context_->peer(), status.message());
          break;
        }
        absl::StatusOr<int64_t> session = engine_->AgentRegistered(in_.register_(), this);
        if (session.ok()) {
          session_ = *session;
          machine_id_ = in_.register_().machine().id();
        } else {
          status = session.status();
        }
        break;
      }
      case v1::AgentMessage::kHeartbeat:
        status = session_ == 0 ? absl::FailedPreconditionError("send Register before Heartbeat")
                               : engine_->AgentHeartbeat(session_);
        break;
      case v1::AgentMessage::kReport:
        if (session_ == 0) {
          status = absl::FailedPreconditionError("send Register before StateReport");
          break;
        }
        status = CheckReportMachine(in_.report(), machine_id_);
        if (!status.ok()) {
          LogWarning("agent stream from %s refused: %s", context_->peer(), status.message());
          break;
        }
        status = engine_->AgentReport(session_, std::move(*in_.mutable_report()));
        break;
      case v1::AgentMessage::kStatusReply:
      case v1::AgentMessage::kJournalChunk:
        if (session_ == 0) {
          status = absl::FailedPreconditionError("send Register before answering requests");
        } else {
          relay_->OnAgentMessage(session_, in_);
        }
        break;
      case v1::AgentMessage::KIND_NOT_SET:
        status = absl::InvalidArgumentError("empty AgentMessage (no register, heartbeat or report)");
        break;
    }
    if (!status.ok()) {
      engine_->AgentDisconnected(session_);
      relay_->SessionEnded(session_);
      Close(status);
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    const v1::EngineMessage* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (!ok) {  // the stream is broken: drop what is queued, reads fail too
        queue_.clear();
        if (!finishing_) {
          finishing_ = true;
          final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write to the agent failed");
        }
      }
      if (!queue_.empty()) {
        next = &queue_.front();
      } else {
        writing_ = false;
        finish = finishing_;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish) {
      Finish(final_status_);
    }
  }

  void OnDone() override {
    engine_->AgentDisconnected(session_);
    relay_->SessionEnded(session_);
    delete this;
  }

 private:
  Engine* const engine_;
  Relay* const relay_;
  WriteStarter* const write_starter_;
  grpc::CallbackServerContext* const context_;  // gRPC's; outlives the reactor
  v1::AgentMessage in_;
  int64_t session_ = 0;  // touched by read reactions and OnDone only (never concurrent)
  std::string machine_id_;  // of the Register; as session_

  absl::Mutex mu_;
  std::deque<v1::EngineMessage> queue_ ABSL_GUARDED_BY(mu_);  // front = being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  // Written once under mu_ before finishing_ is set; read after.
  grpc::Status final_status_;
};

}  // namespace

grpc::ServerBidiReactor<v1::AgentMessage, v1::EngineMessage>* AgentService::Connect(
    grpc::CallbackServerContext* context) {
  return new AgentStream(engine_, leadership_, relay_, &write_starter_, context);
}

WriteStarter::WriteStarter() : thread_([this] { Run(); }) {}

WriteStarter::~WriteStarter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void WriteStarter::Post(std::function<void()> start_write) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(start_write));
}

void WriteStarter::Run() {
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
  while (true) {
    std::deque<std::function<void()>> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and nothing left to start
      batch.swap(queue_);
    }
    for (std::function<void()>& start_write : batch) start_write();
  }
}

}  // namespace fleet
