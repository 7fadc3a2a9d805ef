#include "agent/journal/journal_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/systemd/unit_name.h"

namespace fleet::agent {
namespace {

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

bool Cancelled(int cancel_fd) {
  struct pollfd fd = {cancel_fd, POLLIN, 0};
  return poll(&fd, 1, 0) > 0 && (fd.revents & POLLIN) != 0;
}

absl::Status CheckLines(int lines) {
  if (lines < 0 || lines > kMaxRequestLines) {
    return absl::InvalidArgumentError(
        absl::StrCat("lines ", lines, " is out of range (0 to ", kMaxRequestLines, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

v1::UnitDetail DetailToProto(const UnitDetails& details, const std::string& machine_id) {
  v1::UnitDetail out;
  v1::UnitState* state = out.mutable_state();
  const UnitStatus& s = details.status;
  state->set_name(s.name);
  state->set_machine_id(machine_id);
  state->set_load_state(s.load_state);
  state->set_active_state(s.active_state);
  state->set_sub_state(s.sub_state);
  state->set_main_pid(s.main_pid);
  state->set_exit_status(s.exit_status);
  if (s.since != absl::InfinitePast()) state->set_since_unix_micros(absl::ToUnixMicros(s.since));
  out.set_description(details.description);
  out.set_fragment_path(details.fragment_path);
  out.set_unit_file_state(details.unit_file_state);
  if (details.memory_bytes.has_value()) {
    out.set_has_memory(true);
    out.set_memory_bytes(*details.memory_bytes);
  }
  if (details.tasks.has_value()) {
    out.set_has_tasks(true);
    out.set_tasks(*details.tasks);
  }
  return out;
}

JournalService::JournalService(JournalOpener opener, std::string machine_id, SendFn send)
    : opener_(std::move(opener)), machine_id_(std::move(machine_id)), send_(std::move(send)) {}

JournalService::~JournalService() { Shutdown(); }

void JournalService::ReapLocked() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second->finished.load()) {
      it->second->thread.join();
      close(it->second->cancel_fd);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

bool JournalService::Spawn(int64_t id, std::function<void(int cancel_fd)> body) {
  absl::MutexLock lock(&mu_);
  ReapLocked();
  if (shut_down_ || workers_.size() >= kMaxJournalWorkers || workers_.contains(id)) return false;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return false;
  auto worker = std::make_unique<Worker>();
  worker->cancel_fd = fd;
  Worker* raw = worker.get();
  worker->thread = std::thread([raw, body = std::move(body)] {
    body(raw->cancel_fd);
    raw->finished.store(true);
  });
  workers_[id] = std::move(worker);
  return true;
}

bool JournalService::SendEntries(int64_t id, std::vector<v1::JournalEntry> entries, bool done,
                                 const absl::Status& error) {
  size_t next = 0;
  do {
    v1::AgentMessage message;
    v1::JournalChunk* chunk = message.mutable_journal_chunk();
    chunk->set_request_id(id);
    size_t bytes = 0;
    while (next < entries.size() && chunk->entries_size() < kMaxChunkEntries) {
      size_t size = entries[next].ByteSizeLong();
      if (chunk->entries_size() > 0 && bytes + size > kMaxChunkBytes) break;
      bytes += size;
      *chunk->add_entries() = std::move(entries[next++]);
    }
    if (next == entries.size() && done) {
      chunk->set_done(true);
      if (!error.ok()) {
        chunk->set_error_code(static_cast<int>(error.code()));
        chunk->set_error_message(std::string(error.message()));
      }
    }
    if (!send_(message)) return false;
  } while (next < entries.size());
  return true;
}

void JournalService::HandleStatus(const v1::StatusRequest& request,
                                  absl::StatusOr<UnitDetails> details) {
  auto reply_error = [this, &request](const absl::Status& error) {
    v1::AgentMessage message;
    v1::StatusReply* reply = message.mutable_status_reply();
    reply->set_request_id(request.request_id());
    reply->set_error_code(static_cast<int>(error.code()));
    reply->set_error_message(std::string(error.message()));
    send_(message);
  };
  if (!details.ok()) return reply_error(details.status());
  if (absl::Status s = CheckLines(request.journal_lines()); !s.ok()) return reply_error(s);
  v1::AgentMessage message;
  v1::StatusReply* reply = message.mutable_status_reply();
  reply->set_request_id(request.request_id());
  *reply->mutable_detail() = DetailToProto(*details, machine_id_);
  reply->mutable_detail()->set_hostname(Hostname());
  if (request.journal_lines() == 0) {
    send_(message);
    return;
  }
  const std::string unit = request.unit();
  const int lines = request.journal_lines();
  bool started = Spawn(request.request_id(), [this, message, unit, lines](int cancel_fd) mutable {
    absl::StatusOr<std::unique_ptr<JournalReader>> reader = opener_(unit);
    absl::StatusOr<std::vector<v1::JournalEntry>> tail =
        reader.ok() ? (*reader)->Tail(lines) : reader.status();
    if (Cancelled(cancel_fd)) return;
    v1::UnitDetail* detail = message.mutable_status_reply()->mutable_detail();
    if (tail.ok()) {
      // The reply is one message: keep the newest entries within the chunk bound.
      size_t bytes = 0;
      size_t first = tail->size();
      while (first > 0 && bytes + (*tail)[first - 1].ByteSizeLong() <= kMaxChunkBytes) {
        bytes += (*tail)[--first].ByteSizeLong();
      }
      for (size_t i = first; i < tail->size(); ++i) *detail->add_journal() = std::move((*tail)[i]);
    } else {
      // The status itself is known; say why the log lines are missing.
      v1::JournalEntry* note = detail->add_journal();
      note->set_priority(3);
      note->set_line(absl::StrCat("(journal not available: ", tail.status().message(), ")"));
      note->set_message(note->line());
    }
    send_(message);
  });
  if (!started) {
    reply_error(absl::ResourceExhaustedError(
        absl::StrCat("the agent serves ", kMaxJournalWorkers, " journal requests already; retry")));
  }
}

void JournalService::HandleJournal(const v1::JournalRequest& request) {
  const int64_t id = request.request_id();
  if (absl::Status s = CheckLines(request.lines()); !s.ok()) {
    SendEntries(id, {}, true, s);
    return;
  }
  if (absl::Status s = ValidateUnitName(request.unit()); !s.ok()) {
    SendEntries(id, {}, true, s);
    return;
  }
  bool started = Spawn(id, [this, request](int cancel_fd) {
    const int64_t id = request.request_id();
    absl::StatusOr<std::unique_ptr<JournalReader>> reader = opener_(request.unit());
    if (!reader.ok()) {
      SendEntries(id, {}, true, reader.status());
      return;
    }
    absl::StatusOr<std::vector<v1::JournalEntry>> tail = (*reader)->Tail(request.lines());
    if (Cancelled(cancel_fd)) return;
    if (!tail.ok()) {
      SendEntries(id, {}, true, tail.status());
      return;
    }
    // The first chunk goes out even when empty: it tells the engine the
    // request is served.
    if (!SendEntries(id, *std::move(tail), !request.follow(), absl::OkStatus())) return;
    if (!request.follow()) return;
    while (true) {
      absl::StatusOr<bool> cancelled = (*reader)->Wait(cancel_fd);
      if (!cancelled.ok()) {
        SendEntries(id, {}, true, cancelled.status());
        return;
      }
      if (*cancelled) return;
      while (true) {
        absl::StatusOr<std::vector<v1::JournalEntry>> fresh = (*reader)->ReadNew(kMaxChunkEntries);
        if (Cancelled(cancel_fd)) return;
        if (!fresh.ok()) {
          SendEntries(id, {}, true, fresh.status());
          return;
        }
        if (fresh->empty()) break;
        if (!SendEntries(id, *std::move(fresh), false, absl::OkStatus())) return;
      }
    }
  });
  if (!started) {
    SendEntries(id, {}, true,
                absl::ResourceExhaustedError(absl::StrCat(
                    "the agent serves ", kMaxJournalWorkers, " journal requests already; retry")));
  }
}

void JournalService::Cancel(int64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(it->second->cancel_fd, &one, sizeof(one));
}

void JournalService::CancelAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, worker] : workers_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(worker->cancel_fd, &one, sizeof(one));
  }
}

void JournalService::Shutdown() {
  std::map<int64_t, std::unique_ptr<Worker>> workers;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    workers = std::move(workers_);
    workers_.clear();
  }
  for (auto& [id, worker] : workers) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(worker->cancel_fd, &one, sizeof(one));
  }
  for (auto& [id, worker] : workers) {
    worker->thread.join();
    close(worker->cancel_fd);
  }
}

size_t JournalService::active() const {
  absl::MutexLock lock(&mu_);
  size_t running = 0;
  for (const auto& [id, worker] : workers_) running += worker->finished.load() ? 0 : 1;
  return running;
}

}  // namespace fleet::agent
