#include "agent/runner.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "common/log.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace fleet::agent {
namespace {

// A burst of work (a big schedule, thousands of signals queued by sd-bus while
// the agent was busy) leaves freed buffers in the heap; once quiet, hand them
// back to the kernel: the agent's resident memory is a promise.
void ReleaseFreeMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
  struct mallinfo2 info = mallinfo2();
  LogDebug("released free memory: heap %d KiB in use, %d KiB free, %d KiB mmapped",
           static_cast<int>(info.uordblks / 1024), static_cast<int>(info.fordblks / 1024),
           static_cast<int>(info.hblkhd / 1024));
#endif
}

constexpr absl::Duration kQuietBeforeTrim = absl::Seconds(1);

}  // namespace

AgentRunner::AgentRunner(SystemdManager* manager, const Clock* clock, AgentRunnerOptions options)
    : manager_(manager),
      clock_(clock),
      options_(std::move(options)),
      agent_(manager, options_.machine.id()) {}

AgentRunner::~AgentRunner() { Finish(); }

void AgentRunner::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  manager_->Wake();
}

absl::Status AgentRunner::Start() {
  if (options_.link.engines.empty()) return absl::InvalidArgumentError("no engine address given");
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = agent_.Adopt(); !s.ok()) return s;
    LogInfo("adopted %d units from the unit dir", static_cast<int>(agent_.installed().size()));
  }
  next_resync_ = clock_->Now() + options_.resync_interval;
  // Journal answers go out on the link; it is set before the link starts, and
  // the journal threads are joined before the link stops (Finish).
  journal_ = std::make_unique<JournalService>(
      options_.journal, options_.machine.id(),
      [this](const fleet::v1::AgentMessage& message) { return link_->Send(message); });
  link_ = std::make_unique<EngineLink>(
      options_.link,
      [this] {
        absl::MutexLock lock(&mu_);
        return agent_.MakeRegister(options_.machine);
      },
      [this](const fleet::v1::EngineMessage& message) {
        {
          absl::MutexLock lock(&mu_);
          inbox_.push_back(message);
        }
        manager_->Wake();
      },
      [this](const std::string& engine, const absl::Status& status) {
        // The engine forgot the requests of that stream.
        journal_->CancelAll();
        LogWarning("stream to engine %s ended: %s; units keep running", engine, status.ToString());
      });
  link_->Start();
  return absl::OkStatus();
}

void AgentRunner::Finish() {
  if (journal_ != nullptr) journal_->Shutdown();
  if (link_ != nullptr) link_->Stop();
}

absl::Status AgentRunner::Run() {
  if (absl::Status s = Start(); !s.ok()) return s;
  absl::Time due = next_resync_;
  bool trim_pending = false;
  absl::Status result = absl::OkStatus();
  while (true) {
    absl::Time wake_at = due;
    if (trim_pending) wake_at = std::min(wake_at, clock_->Now() + kQuietBeforeTrim);
    absl::StatusOr<std::vector<UnitStatus>> changes =
        manager_->WaitForChanges(std::max(wake_at - clock_->Now(), absl::ZeroDuration()));
    if (!changes.ok()) {
      result = changes.status();
      break;
    }
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) break;
    }
    if (changes->empty() && trim_pending) {
      ReleaseFreeMemory();
      trim_pending = false;
    }
    absl::StatusOr<TurnResult> turn = Turn(*changes);
    if (!turn.ok()) {
      result = turn.status();
      break;
    }
    due = turn->due;
    trim_pending = trim_pending || turn->worked;
  }
  Finish();
  return result;
}

absl::StatusOr<AgentRunner::TurnResult> AgentRunner::Turn(const std::vector<UnitStatus>& changes) {
  bool worked = changes.size() > 16;
  std::optional<fleet::v1::StateReport> report;
  std::vector<fleet::v1::EngineMessage> requests;
  {
    absl::MutexLock lock(&mu_);
    agent_.Observe(changes);
    bool reconcile = false;
    while (!inbox_.empty()) {
      fleet::v1::EngineMessage message = std::move(inbox_.front());
      inbox_.pop_front();
      absl::Status s = absl::OkStatus();
      switch (message.kind_case()) {
        case fleet::v1::EngineMessage::kFull:
          s = agent_.ApplyFull(message.full());
          reconcile = true;
          break;
        case fleet::v1::EngineMessage::kDelta:
          s = agent_.ApplyDelta(message.delta());
          reconcile = true;
          break;
        case fleet::v1::EngineMessage::kStatusRequest:
        case fleet::v1::EngineMessage::kJournalRequest:
        case fleet::v1::EngineMessage::kJournalCancel:
          requests.push_back(std::move(message));
          break;
        case fleet::v1::EngineMessage::KIND_NOT_SET:
          break;
      }
      if (!s.ok()) LogWarning("schedule from engine: %s", s.ToString());
    }
    absl::Time now = clock_->Now();
    if (now >= next_resync_) {
      next_resync_ = now + options_.resync_interval;
      if (absl::Status s = agent_.Resync(); !s.ok()) return s;
      reconcile = true;
    }
    if (retry_at_.has_value() && now >= *retry_at_) reconcile = true;
    if (reconcile) {
      absl::Time started = absl::Now();
      size_t tasks = agent_.Plan().size();
      absl::Status s = agent_.Reconcile();
      LogDebug("reconcile: %d tasks in %s", static_cast<int>(tasks),
               absl::FormatDuration(absl::Now() - started));
      worked = worked || tasks > 0;
      if (!s.ok()) {
        LogWarning("reconcile failed, retrying in %s: %s",
                   absl::FormatDuration(options_.retry_interval), s.ToString());
        retry_at_ = now + options_.retry_interval;
      } else {
        retry_at_.reset();
      }
    }
    report = agent_.TakeReport();
  }
  if (report.has_value()) {
    fleet::v1::AgentMessage message;
    *message.mutable_report() = *std::move(report);
    // Dropped when disconnected: the next Register carries the full state.
    link_->Send(message);
  }
  Answer(requests);
  return TurnResult{retry_at_.has_value() ? std::min(*retry_at_, next_resync_) : next_resync_,
                    worked};
}

void AgentRunner::Answer(const std::vector<fleet::v1::EngineMessage>& requests) {
  for (const fleet::v1::EngineMessage& request : requests) {
    switch (request.kind_case()) {
      case fleet::v1::EngineMessage::kStatusRequest:
        // The manager belongs to this thread; mu_ guards the Agent only.
        journal_->HandleStatus(request.status_request(),
                               manager_->GetUnitDetails(request.status_request().unit()));
        break;
      case fleet::v1::EngineMessage::kJournalRequest:
        journal_->HandleJournal(request.journal_request());
        break;
      case fleet::v1::EngineMessage::kJournalCancel:
        journal_->Cancel(request.journal_cancel().request_id());
        break;
      case fleet::v1::EngineMessage::kFull:
      case fleet::v1::EngineMessage::kDelta:
      case fleet::v1::EngineMessage::KIND_NOT_SET:
        break;
    }
  }
}

}  // namespace fleet::agent
