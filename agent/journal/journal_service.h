#pragma once

// JournalService: answers the engine's StatusRequest and JournalRequest
// messages off the agent's loop. Each request runs on a thread of its own
// (reading the journal can take a while, and a follow waits for new entries
// with sd_journal's fd, not by polling), so the reconcile loop never waits
// for the journal. Answers go out through `send` (EngineLink::Send) as
// StatusReply / JournalChunk messages of at most kMaxChunkEntries entries and
// about kMaxChunkBytes.
//
// Thread-safe. Shutdown() (or the destructor) cancels and joins every thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/journal/journal_reader.h"
#include "agent/systemd/systemd_manager.h"
#include "fleet/v1/agent.pb.h"

namespace fleet::agent {

inline constexpr int kMaxChunkEntries = 500;
inline constexpr size_t kMaxChunkBytes = 256 * 1024;
inline constexpr int kMaxRequestLines = 10000;
// Requests served at once; more are refused with RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxJournalWorkers = 32;

// The proto of `details` for machine `machine_id`.
fleet::v1::UnitDetail DetailToProto(const UnitDetails& details, const std::string& machine_id);

class JournalService {
 public:
  // Sends one message to the engine; false when it could not (dropped).
  using SendFn = std::function<bool(const fleet::v1::AgentMessage&)>;

  JournalService(JournalOpener opener, std::string machine_id, SendFn send);
  ~JournalService();  // Shutdown()
  JournalService(const JournalService&) = delete;
  JournalService& operator=(const JournalService&) = delete;

  // Answers `request` with `details` (read by the caller from its
  // SystemdManager, or the error doing so) plus the last journal lines.
  void HandleStatus(const fleet::v1::StatusRequest& request, absl::StatusOr<UnitDetails> details);
  // Sends the tail of the unit's journal, then (follow) new entries until
  // Cancel; the last chunk has done set (with the error, if any).
  void HandleJournal(const fleet::v1::JournalRequest& request);
  // Stops request `id` (no-op when unknown or finished); nothing more is sent for it.
  void Cancel(int64_t id);
  // Stops every request (the stream they came on ended).
  void CancelAll();
  // CancelAll, and joins every thread. Later requests are refused.
  void Shutdown();

  // Threads running now (for tests).
  size_t active() const;

 private:
  struct Worker {
    std::thread thread;
    int cancel_fd = -1;  // eventfd, written by Cancel
    std::atomic<bool> finished{false};
  };
  // Starts `body(cancel_fd)` on a new thread for request `id`; false (and
  // nothing started) when shut down or too many run.
  bool Spawn(int64_t id, std::function<void(int cancel_fd)> body);
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `entries` for request `id` in bounded chunks; the last one carries
  // `done` and `error`. False when a send failed.
  bool SendEntries(int64_t id, std::vector<fleet::v1::JournalEntry> entries, bool done,
                   const absl::Status& error);

  const JournalOpener opener_;
  const std::string machine_id_;
  const SendFn send_;
  mutable absl::Mutex mu_;
  std::map<int64_t, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::agent
