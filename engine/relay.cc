#include "engine/relay.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fleet {
namespace {

absl::Status CheckLines(const char* field, int lines) {
  if (lines < 0 || lines > kMaxJournalLines) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", lines, " is out of range (0 to ", kMaxJournalLines, ")"));
  }
  return absl::OkStatus();
}

absl::Status AgentError(int code, const std::string& message, const std::string& machine) {
  absl::StatusCode status_code = static_cast<absl::StatusCode>(code);
  if (code <= 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    status_code = absl::StatusCode::kInternal;
  }
  return absl::Status(status_code, absl::StrCat(message, " (on machine ", machine, ")"));
}

}  // namespace

absl::StatusOr<std::pair<int64_t, AgentRoute>> Relay::Start(Kind kind, const std::string& unit,
                                                            const std::string& machine,
                                                            v1::EngineMessage message) {
  int64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    Call& call = calls_[id];
    call.kind = kind;
    call.unit = unit;
    call.first_deadline = absl::Now() + options_.reply_timeout;
  }
  switch (kind) {
    case Kind::kStatus:
      message.mutable_status_request()->set_request_id(id);
      break;
    case Kind::kJournal:
      message.mutable_journal_request()->set_request_id(id);
      break;
  }
  absl::StatusOr<AgentRoute> route =
      engine_->SendToUnitAgent(unit, machine, std::move(message), [this, id](const AgentRoute& r) {
        absl::MutexLock lock(&mu_);
        Call& call = calls_[id];
        call.session = r.session;
        call.machine_id = r.machine_id;
      });
  if (!route.ok()) {
    Forget(id);
    return route.status();
  }
  return std::make_pair(id, *std::move(route));
}

void Relay::Forget(int64_t id) {
  absl::MutexLock lock(&mu_);
  calls_.erase(id);
}

absl::StatusOr<v1::GetUnitStatusResponse> Relay::GetUnitStatus(const v1::GetUnitStatusRequest& request,
                                                               absl::Time deadline) {
  if (absl::Status s = CheckLines("journal_lines", request.journal_lines()); !s.ok()) return s;
  v1::EngineMessage message;
  v1::StatusRequest* ask = message.mutable_status_request();
  ask->set_unit(request.name());
  ask->set_journal_lines(request.journal_lines());
  auto started = Start(Kind::kStatus, request.name(), request.machine_id(), std::move(message));
  if (!started.ok()) return started.status();
  const int64_t id = started->first;

  absl::MutexLock lock(&mu_);
  auto it = calls_.find(id);
  Call* call = &it->second;
  auto done = [call]() { return call->done; };
  mu_.AwaitWithDeadline(absl::Condition(&done), std::min(deadline, call->first_deadline));
  absl::StatusOr<v1::GetUnitStatusResponse> result;
  if (!call->done) {
    result = absl::DeadlineExceededError(absl::StrCat("the agent of machine ", call->machine_id,
                                                      " did not answer the status of unit ",
                                                      request.name(), " in time"));
  } else if (!call->error.ok()) {
    result = call->error;
  } else {
    v1::GetUnitStatusResponse response;
    *response.mutable_unit() = started->second.status;
    *response.mutable_detail() = std::move(call->detail);
    result = std::move(response);
  }
  calls_.erase(it);
  return result;
}

absl::StatusOr<int64_t> Relay::OpenJournal(const v1::ReadJournalRequest& request) {
  if (absl::Status s = CheckLines("lines", request.lines()); !s.ok()) return s;
  v1::EngineMessage message;
  v1::JournalRequest* ask = message.mutable_journal_request();
  ask->set_unit(request.name());
  ask->set_lines(request.lines());
  ask->set_follow(request.follow());
  auto started = Start(Kind::kJournal, request.name(), request.machine_id(), std::move(message));
  if (!started.ok()) return started.status();
  return started->first;
}

absl::StatusOr<Relay::JournalBatch> Relay::NextJournal(int64_t id, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(id);
  if (it == calls_.end() || it->second.kind != Kind::kJournal) {
    return absl::NotFoundError(absl::StrCat("no journal request ", id));
  }
  Call* call = &it->second;
  auto ready = [call]() { return call->done || !call->entries.empty(); };
  mu_.AwaitWithDeadline(absl::Condition(&ready),
                        call->answered ? deadline : std::min(deadline, call->first_deadline));
  if (!call->answered && !call->done && absl::Now() >= call->first_deadline) {
    return absl::DeadlineExceededError(absl::StrCat("the agent of machine ", call->machine_id,
                                                    " did not send the journal of unit ", call->unit,
                                                    " in time"));
  }
  JournalBatch batch;
  batch.entries.assign(std::make_move_iterator(call->entries.begin()),
                       std::make_move_iterator(call->entries.end()));
  call->entries.clear();
  if (call->done) {
    // Entries that came before the end are handed out first.
    if (!batch.entries.empty()) return batch;
    if (!call->error.ok()) return call->error;
    batch.done = true;
  }
  return batch;
}

void Relay::CloseJournal(int64_t id) {
  int64_t session = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    if (!it->second.done) session = it->second.session;
    calls_.erase(it);
  }
  if (session != 0) {
    v1::EngineMessage cancel;
    cancel.mutable_journal_cancel()->set_request_id(id);
    engine_->SendToSession(session, std::move(cancel));
  }
}

Relay::Call* Relay::OpenCallLocked(int64_t id, int64_t session, Kind kind) {
  auto it = calls_.find(id);
  if (it == calls_.end() || it->second.session != session || it->second.kind != kind ||
      it->second.done) {
    return nullptr;
  }
  return &it->second;
}

void Relay::OnAgentMessage(int64_t session, const v1::AgentMessage& message) {
  absl::MutexLock lock(&mu_);
  switch (message.kind_case()) {
    case v1::AgentMessage::kStatusReply: {
      const v1::StatusReply& reply = message.status_reply();
      Call* open = OpenCallLocked(reply.request_id(), session, Kind::kStatus);
      if (open == nullptr) return;
      Call& call = *open;
      call.answered = true;
      call.done = true;
      if (reply.error_code() != 0) {
        call.error = AgentError(reply.error_code(), reply.error_message(), call.machine_id);
      } else {
        call.detail = reply.detail();
      }
      return;
    }
    case v1::AgentMessage::kJournalChunk: {
      const v1::JournalChunk& chunk = message.journal_chunk();
      Call* open = OpenCallLocked(chunk.request_id(), session, Kind::kJournal);
      if (open == nullptr) return;
      Call& call = *open;
      call.answered = true;
      for (const v1::JournalEntry& entry : chunk.entries()) call.entries.push_back(entry);
      if (chunk.done()) {
        call.done = true;
        if (chunk.error_code() != 0) {
          call.error = AgentError(chunk.error_code(), chunk.error_message(), call.machine_id);
        }
      }
      return;
    }
    case v1::AgentMessage::kRegister:
    case v1::AgentMessage::kHeartbeat:
    case v1::AgentMessage::kReport:
    case v1::AgentMessage::KIND_NOT_SET:
      return;
  }
}

void Relay::SessionEnded(int64_t session) {
  if (session == 0) return;
  absl::MutexLock lock(&mu_);
  for (auto& [id, call] : calls_) {
    if (call.session != session || call.done) continue;
    call.done = true;
    call.answered = true;
    call.error = absl::UnavailableError(absl::StrCat("the agent of machine ", call.machine_id,
                                                     " disconnected while answering for unit ", call.unit));
  }
}

size_t Relay::pending() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

}  // namespace fleet
