#include "agent/journal/journal_reader.h"

#include <poll.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/systemd/unit_name.h"

namespace fleet::agent {
namespace {

absl::Status JournalError(int r, absl::string_view what) {
  return absl::InternalError(absl::StrCat("journal ", what, ": ", std::strerror(-r)));
}

class SdJournalReader final : public JournalReader {
 public:
  SdJournalReader(sd_journal* journal, absl::TimeZone zone) : j_(journal), zone_(zone) {}
  ~SdJournalReader() override { sd_journal_close(j_); }
  SdJournalReader(const SdJournalReader&) = delete;
  SdJournalReader& operator=(const SdJournalReader&) = delete;

  absl::StatusOr<std::vector<v1::JournalEntry>> Tail(int lines) override {
    int r = sd_journal_seek_tail(j_);
    if (r < 0) return JournalError(r, "seek tail");
    // One entry more than asked: when there is one, the cursor rests on it
    // and ReadNew starts after it; else all entries fit and we read from the
    // head.
    r = sd_journal_previous_skip(j_, static_cast<uint64_t>(lines) + 1);
    if (r < 0) return JournalError(r, "skip back");
    if (r <= lines) {
      if ((r = sd_journal_seek_head(j_)) < 0) return JournalError(r, "seek head");
    }
    return ReadNew(lines);
  }

  absl::StatusOr<std::vector<v1::JournalEntry>> ReadNew(int max) override {
    std::vector<v1::JournalEntry> out;
    while (static_cast<int>(out.size()) < max) {
      int r = sd_journal_next(j_);
      if (r < 0) return JournalError(r, "next");
      if (r == 0) break;
      out.push_back(Current());
    }
    return out;
  }

  absl::StatusOr<bool> Wait(int cancel_fd) override {
    int fd = sd_journal_get_fd(j_);
    if (fd < 0) return JournalError(fd, "get fd");
    int events = sd_journal_get_events(j_);
    if (events < 0) return JournalError(events, "get events");
    uint64_t timeout_usec = UINT64_MAX;
    int timeout_ms = -1;
    if (sd_journal_get_timeout(j_, &timeout_usec) >= 0 && timeout_usec != UINT64_MAX) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
      timeout_ms = timeout_usec > now ? static_cast<int>((timeout_usec - now) / 1000 + 1) : 0;
    }
    struct pollfd fds[2] = {{fd, static_cast<short>(events), 0}, {cancel_fd, POLLIN, 0}};
    int r = poll(fds, 2, timeout_ms);
    if (r < 0 && errno != EINTR) return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    if (fds[1].revents & POLLIN) return true;
    if ((r = sd_journal_process(j_)) < 0) return JournalError(r, "process");
    return false;
  }

 private:
  // The value of `field` of the current entry, "" when absent.
  std::string Field(const char* field) {
    const void* data = nullptr;
    size_t length = 0;
    if (sd_journal_get_data(j_, field, &data, &length) < 0) return "";
    const char* text = static_cast<const char*>(data);
    size_t prefix = std::strlen(field) + 1;  // "FIELD="
    if (length < prefix) return "";
    return std::string(text + prefix, length - prefix);
  }

  v1::JournalEntry Current() {
    v1::JournalEntry entry;
    uint64_t usec = 0;
    if (sd_journal_get_realtime_usec(j_, &usec) >= 0) {
      entry.set_realtime_unix_micros(static_cast<int64_t>(usec));
    }
    std::string message = Field("MESSAGE");
    if (message.size() > kMaxJournalMessageBytes) message.resize(kMaxJournalMessageBytes);
    entry.set_message(std::move(message));
    int priority = 6;
    if (std::string p = Field("PRIORITY"); !p.empty() && absl::SimpleAtoi(p, &priority)) {
      entry.set_priority(priority);
    } else {
      entry.set_priority(6);
    }
    entry.set_hostname(Field("_HOSTNAME"));
    std::string identifier = Field("SYSLOG_IDENTIFIER");
    if (identifier.empty()) identifier = Field("_COMM");
    entry.set_identifier(std::move(identifier));
    uint32_t pid = 0;
    std::string pid_text = Field("_PID");
    if (pid_text.empty()) pid_text = Field("SYSLOG_PID");
    if (absl::SimpleAtoi(pid_text, &pid)) entry.set_pid(pid);
    entry.set_line(FormatShortLine(entry, zone_));
    return entry;
  }

  sd_journal* j_;
  const absl::TimeZone zone_;
};

}  // namespace

std::string FormatShortLine(const v1::JournalEntry& entry, absl::TimeZone zone) {
  std::string when = absl::FormatTime("%b %d %H:%M:%S",
                                      absl::FromUnixMicros(entry.realtime_unix_micros()), zone);
  std::string host = entry.hostname().empty() ? "unknown" : entry.hostname();
  std::string who = entry.identifier().empty() ? "unknown" : entry.identifier();
  if (entry.pid() != 0) absl::StrAppend(&who, "[", entry.pid(), "]");
  return absl::StrCat(when, " ", host, " ", who, ": ", entry.message());
}

JournalOpener SdJournalOpener(JournalScope scope) {
  return [scope](const std::string& unit) -> absl::StatusOr<std::unique_ptr<JournalReader>> {
    if (absl::Status s = ValidateUnitName(unit); !s.ok()) return s;
    sd_journal* j = nullptr;
    int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) {
      return absl::UnavailableError(absl::StrCat("cannot open the journal: ", std::strerror(-r)));
    }
    auto reader = std::make_unique<SdJournalReader>(j, absl::LocalTimeZone());
    sd_journal_set_data_threshold(j, kMaxJournalMessageBytes + 64);
    const bool user = scope == JournalScope::kUser;
    std::string own = absl::StrCat(user ? "_SYSTEMD_USER_UNIT=" : "_SYSTEMD_UNIT=", unit);
    std::string about = absl::StrCat(user ? "USER_UNIT=" : "UNIT=", unit);
    if ((r = sd_journal_add_match(j, own.data(), own.size())) < 0 ||
        (r = sd_journal_add_disjunction(j)) < 0 ||
        (r = sd_journal_add_match(j, about.data(), about.size())) < 0) {
      return JournalError(r, "add match");
    }
    if (user) {
      // A user manager that is not under user@.service (the sandbox, a
      // container) has its units' cgroups at the root of its own hierarchy,
      // so journald files their output under _SYSTEMD_UNIT.
      std::string rooted = absl::StrCat("_SYSTEMD_UNIT=", unit);
      if ((r = sd_journal_add_disjunction(j)) < 0 ||
          (r = sd_journal_add_match(j, rooted.data(), rooted.size())) < 0) {
        return JournalError(r, "add match");
      }
    }
    // Set up the change notification before reading, so no entry written
    // between the tail and the first Wait is missed.
    if ((r = sd_journal_get_fd(j)) < 0) return JournalError(r, "get fd");
    return reader;
  };
}

}  // namespace fleet::agent
