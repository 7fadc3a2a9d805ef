#pragma once

// Relay: requests of clients that only a unit's machine can answer
// (`fleetctl status`, `fleetctl journal`), carried to that machine's agent on
// its Connect stream and the answers carried back.
//
//   client --GetUnitStatus--> FleetService --Relay::GetUnitStatus--> Engine::SendToUnitAgent
//     --EngineMessage.status_request--> agent --AgentMessage.status_reply--> AgentStream
//     --Relay::OnAgentMessage--> the waiting call
//
// Every request gets an id unique in this engine; answers are matched by id
// and by the stream (session) they must come on, so an agent cannot answer for
// another machine. When a stream ends (Relay::SessionEnded) every request that
// waits on it ends with UNAVAILABLE naming the machine. Waits use real time
// with a deadline given by the caller and never hold the Engine's lock.
//
// Thread-safety: thread-safe. Lock order: Engine -> Relay (the Engine calls
// the route callback with its lock held); the Relay never calls the Engine
// while holding its own lock.

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/fleet.pb.h"

namespace fleet {

// Bounds of relayed requests.
inline constexpr int kMaxJournalLines = 10000;

struct RelayOptions {
  // How long an agent has to answer a status request, or to send the first
  // chunk of a journal request.
  absl::Duration reply_timeout = absl::Seconds(10);
};

class Relay {
 public:
  // `engine` is not owned and must outlive the Relay.
  Relay(Engine* engine, RelayOptions options) : engine_(engine), options_(options) {}
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Asks the agent of the unit's machine for its status and waits for the
  // answer until `deadline` or reply_timeout, whichever comes first. Errors:
  // INVALID_ARGUMENT (journal_lines out of 0..10000), those of
  // Engine::SendToUnitAgent, DEADLINE_EXCEEDED naming the machine, UNAVAILABLE
  // when its stream ends meanwhile, or the agent's own error.
  absl::StatusOr<fleet::v1::GetUnitStatusResponse> GetUnitStatus(
      const fleet::v1::GetUnitStatusRequest& request, absl::Time deadline);

  // Starts reading the unit's journal; returns the call id for NextJournal and
  // CloseJournal. Errors as GetUnitStatus (before anything was sent).
  absl::StatusOr<int64_t> OpenJournal(const fleet::v1::ReadJournalRequest& request);

  struct JournalBatch {
    std::vector<fleet::v1::JournalEntry> entries;
    bool done = false;  // the agent sent the last chunk: CloseJournal and stop
  };
  // Waits for the next entries of call `id` until `deadline`: an empty, not
  // done batch when `deadline` passed first (a quiet follow; callers use short
  // deadlines to notice their own client going away). DEADLINE_EXCEEDED
  // naming the machine when the agent's first chunk did not come within
  // reply_timeout of OpenJournal. Errors: the agent's error, UNAVAILABLE when
  // the stream of the machine ended, NOT_FOUND for an unknown id. Entries that
  // came before an error are returned first. Not to be called concurrently
  // with itself or CloseJournal for one id.
  absl::StatusOr<JournalBatch> NextJournal(int64_t id, absl::Time deadline);

  // Ends call `id`: when the agent has not finished it, sends it a
  // JournalCancel. Forgets the call. No-op for an unknown id.
  void CloseJournal(int64_t id);

  // From the agent stream `session`: a StatusReply or JournalChunk. Answers
  // for unknown ids or from another stream than the request went to are
  // dropped.
  void OnAgentMessage(int64_t session, const fleet::v1::AgentMessage& message);
  // The agent stream `session` ended: its requests end with UNAVAILABLE.
  void SessionEnded(int64_t session);

  // Requests in flight (for tests).
  size_t pending() const;

 private:
  enum class Kind { kStatus, kJournal };
  struct Call {
    Kind kind = Kind::kStatus;
    int64_t session = 0;
    std::string machine_id;
    std::string unit;
    absl::Time first_deadline;  // the first answer must come by then
    bool answered = false;      // a first answer came
    bool done = false;          // no more answers will come
    absl::Status error;         // how it ended, when not OK
    fleet::v1::UnitDetail detail;                  // kStatus
    std::deque<fleet::v1::JournalEntry> entries;   // kJournal, not yet taken
  };
  // Registers a call, sends `message` (with the id set by `set_id`) to the
  // unit's agent. Returns the id and the route.
  absl::StatusOr<std::pair<int64_t, AgentRoute>> Start(Kind kind, const std::string& unit,
                                                       const std::string& machine,
                                                       fleet::v1::EngineMessage message);
  void Forget(int64_t id);
  // The call `id` when it is still open and was sent on `session` as `kind`;
  // null for an answer to forget (unknown, ended, or from another stream).
  Call* OpenCallLocked(int64_t id, int64_t session, Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Engine* const engine_;
  const RelayOptions options_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace fleet
