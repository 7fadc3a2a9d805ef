#pragma once

// AgentRunner: the agent's one event loop. Adopts what is in the unit dir,
// keeps the engine link up, applies schedules from the engine, reconciles,
// waits on systemd's signals (not polling) and sends batched state reports.
// A full resync of every unit's state runs every `resync_interval` as a safety
// net; a failed reconcile is retried every `retry_interval`. While the engine
// is unreachable nothing is stopped: units keep running.
//
// The engine's status requests are answered from the loop (systemd's
// properties) and a JournalService thread (the last log lines); journal
// requests run on JournalService threads only, so the loop never waits for the
// journal.
//
// Run() on one thread (or Start, Turn and Finish from one thread at a time);
// Shutdown() from any thread. Logs (it is the top level
// of the agent) through common/log.h.

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent.h"
#include "agent/engine_link.h"
#include "agent/journal/journal_reader.h"
#include "agent/journal/journal_service.h"
#include "agent/systemd/systemd_manager.h"
#include "common/clock.h"

namespace fleet::agent {

struct AgentRunnerOptions {
  fleet::v1::Machine machine;  // id, public_ip, metadata, agent_version
  EngineLinkOptions link;
  absl::Duration resync_interval = absl::Minutes(1);
  absl::Duration retry_interval = absl::Seconds(5);
  // Reads unit journals for the engine's status and journal requests.
  JournalOpener journal = SdJournalOpener(JournalScope::kSystem);
};

class AgentRunner {
 public:
  // `manager` and `clock` are not owned and must outlive the runner; only the
  // thread that turns the runner uses `manager` (except its thread-safe Wake()).
  AgentRunner(SystemdManager* manager, const Clock* clock, AgentRunnerOptions options);
  ~AgentRunner();  // Finish()es

  // The agent's loop: Start, then a Turn whenever the manager reports changes
  // or is woken (a message from the engine, Shutdown) or a turn is due, until
  // Shutdown(); then Finish. OK after Shutdown(); an error when systemd cannot
  // be read (the caller exits; units keep running and a restarted agent adopts
  // them), or InvalidArgument for no engine address. Once quiet after a burst
  // of work it hands the heap's free pages back to the kernel (malloc_trim).
  absl::Status Run();
  // Ends Run() (from any thread).
  void Shutdown();

  // The loop in parts, for a caller that turns many runners on a few shared
  // threads (bench/scale's hollow agents) instead of a thread each in Run().
  // Start adopts the unit dir and starts the engine link; errors as Run's.
  absl::Status Start();
  struct TurnResult {
    absl::Time due;  // the next turn is due by then (resync, retry), changes or not
    bool worked;     // it applied many changes or ran tasks
  };
  // One turn: takes `changes` (from the manager's WaitForChanges) into account,
  // applies the engine's messages, resyncs or retries when due, reconciles and
  // sends the report. An error when systemd cannot be read.
  absl::StatusOr<TurnResult> Turn(const std::vector<UnitStatus>& changes);
  // Stops the engine link and the journal service; idempotent.
  void Finish();

 private:
  // Answers status and journal requests (outside mu_: answering writes to the
  // link, whose Register callback takes mu_).
  void Answer(const std::vector<fleet::v1::EngineMessage>& requests);

  SystemdManager* manager_;
  const Clock* clock_;
  const AgentRunnerOptions options_;
  std::unique_ptr<JournalService> journal_;
  std::unique_ptr<EngineLink> link_;
  absl::Time next_resync_;
  std::optional<absl::Time> retry_at_;
  absl::Mutex mu_;
  Agent agent_ ABSL_GUARDED_BY(mu_);
  std::deque<fleet::v1::EngineMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::agent
