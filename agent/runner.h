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
// Run() on one thread; Shutdown() from any thread. Logs (it is the top level
// of the agent) through common/log.h.

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent.h"
#include "agent/engine_link.h"
#include "agent/journal/journal_reader.h"
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
  // Hands the heap's free pages back to the kernel once quiet after a burst
  // (malloc_trim). Off for hollow agents (bench/scale): a thousand runners
  // share one process's heap, and every trim walks all of it.
  bool release_free_memory = true;
};

class AgentRunner {
 public:
  // `manager` and `clock` are not owned and must outlive the runner; only the
  // thread in Run() uses `manager` (except its thread-safe Wake()).
  AgentRunner(SystemdManager* manager, const Clock* clock, AgentRunnerOptions options);

  // Runs until Shutdown(). OK after Shutdown(); an error when systemd cannot
  // be read (the caller exits; units keep running and a restarted agent
  // adopts them), or InvalidArgument for no engine address.
  absl::Status Run();

  void Shutdown();

 private:
  SystemdManager* manager_;
  const Clock* clock_;
  const AgentRunnerOptions options_;
  absl::Mutex mu_;
  Agent agent_ ABSL_GUARDED_BY(mu_);
  std::deque<fleet::v1::EngineMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::agent
