#include "tests/support/fake_engine.h"

#include <functional>

#include "absl/strings/str_cat.h"

namespace fleet::test {

FakeEngine::FakeEngine() = default;

FakeEngine::~FakeEngine() {
  if (server_ != nullptr) {
    DropStreams();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
}

std::string FakeEngine::Start(const std::string& address,
                              std::shared_ptr<grpc::ServerCredentials> credentials) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, credentials ? credentials : grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) return "";
  address_ = absl::StrCat("127.0.0.1:", port);
  return address_;
}

void FakeEngine::SetHeartbeatIntervalMs(int64_t ms) {
  absl::MutexLock lock(&mu_);
  heartbeat_ms_ = ms;
}

void FakeEngine::Broadcast(const fleet::v1::EngineMessage& message) {
  for (Conn* conn : conns_) {
    absl::MutexLock lock(&conn->write_mu);
    conn->stream->Write(message);
  }
}

void FakeEngine::Upsert(const fleet::v1::ScheduledUnit& unit) {
  absl::MutexLock lock(&mu_);
  schedule_[unit.name()] = unit;
  fleet::v1::EngineMessage message;
  if (heartbeat_ms_ > 0) message.set_heartbeat_interval_ms(heartbeat_ms_);
  *message.mutable_delta()->add_upserts() = unit;
  Broadcast(message);
}

void FakeEngine::UpsertMany(const std::vector<fleet::v1::ScheduledUnit>& units) {
  absl::MutexLock lock(&mu_);
  fleet::v1::EngineMessage message;
  if (heartbeat_ms_ > 0) message.set_heartbeat_interval_ms(heartbeat_ms_);
  for (const auto& unit : units) {
    schedule_[unit.name()] = unit;
    *message.mutable_delta()->add_upserts() = unit;
  }
  Broadcast(message);
}

void FakeEngine::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  schedule_.erase(name);
  fleet::v1::EngineMessage message;
  if (heartbeat_ms_ > 0) message.set_heartbeat_interval_ms(heartbeat_ms_);
  message.mutable_delta()->add_removes(name);
  Broadcast(message);
}

void FakeEngine::RedirectTo(const std::string& leader) {
  absl::MutexLock lock(&mu_);
  leader_ = leader;
  if (!leader.empty()) {
    for (Conn* conn : conns_) conn->context->TryCancel();
  }
}

void FakeEngine::DropStreams() {
  absl::MutexLock lock(&mu_);
  for (Conn* conn : conns_) conn->context->TryCancel();
}

bool FakeEngine::WaitFor(const std::function<bool(const View&)>& done, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(view_); };
  return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
}

FakeEngine::View FakeEngine::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return view_;
}

grpc::Status FakeEngine::Connect(grpc::ServerContext* context, Stream* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (!leader_.empty()) {
      context->AddTrailingMetadata("fleet-leader", leader_);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("not the leader; leader is ", leader_));
    }
  }
  fleet::v1::AgentMessage message;
  if (!stream->Read(&message) || !message.has_register_()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first message must be Register");
  }
  Conn conn{context, stream, {}};
  {
    absl::MutexLock lock(&mu_);
    view_.registers.push_back(message.register_());
    for (const auto& state : message.register_().units()) {
      view_.states[state.name()] = state;
      view_.history[state.name()].push_back(state);
      view_.removed.erase(state.name());
    }
    fleet::v1::EngineMessage full;
    if (heartbeat_ms_ > 0) full.set_heartbeat_interval_ms(heartbeat_ms_);
    full.mutable_full();
    for (const auto& [name, unit] : schedule_) *full.mutable_full()->add_units() = unit;
    stream->Write(full);
    conns_.insert(&conn);
    ++view_.connected;
  }
  while (stream->Read(&message)) {
    absl::MutexLock lock(&mu_);
    switch (message.kind_case()) {
      case fleet::v1::AgentMessage::kHeartbeat:
        ++view_.heartbeats;
        break;
      case fleet::v1::AgentMessage::kReport:
        ++view_.reports;
        for (const auto& state : message.report().states()) {
          view_.states[state.name()] = state;
          view_.history[state.name()].push_back(state);
          view_.removed.erase(state.name());
        }
        for (const std::string& name : message.report().removed()) {
          view_.states.erase(name);
          view_.removed.insert(name);
        }
        break;
      case fleet::v1::AgentMessage::kRegister:
      case fleet::v1::AgentMessage::kStatusReply:
      case fleet::v1::AgentMessage::kJournalChunk:
      case fleet::v1::AgentMessage::KIND_NOT_SET:
        break;
    }
  }
  absl::MutexLock lock(&mu_);
  conns_.erase(&conn);
  --view_.connected;
  return grpc::Status::OK;
}

fleet::v1::ScheduledUnit MakeScheduledUnit(const std::string& name, const std::string& contents,
                                           fleet::v1::DesiredState state) {
  fleet::v1::ScheduledUnit unit;
  unit.set_name(name);
  unit.set_contents(contents);
  unit.set_hash(absl::StrCat(std::hash<std::string>{}(contents)));
  unit.set_desired_state(state);
  return unit;
}

}  // namespace fleet::test
