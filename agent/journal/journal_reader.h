#pragma once

// Reading one unit's journal on this machine. JournalReader is the seam;
// SdJournalReader reads the local journal with sd-journal, matching the unit
// as journalctl -u (system manager) or journalctl --user -u (user manager)
// does: its own output (_SYSTEMD_UNIT= / _SYSTEMD_USER_UNIT=) and the
// manager's messages about it (UNIT= / USER_UNIT=). For a user manager,
// _SYSTEMD_UNIT= matches too: one that does not run under user@.service (the
// sandbox hosts, containers) has its units' cgroups at the root of its
// hierarchy, and journald files their output as a system unit's.
//
// A reader is used by one thread at a time.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fleet/v1/fleet.pb.h"

namespace fleet::agent {

// Which manager runs the units: decides the journal fields that name them.
enum class JournalScope { kSystem, kUser };

// The longest MESSAGE kept of one entry; longer ones are cut.
inline constexpr size_t kMaxJournalMessageBytes = 64 * 1024;

class JournalReader {
 public:
  virtual ~JournalReader() = default;
  // The last `lines` entries of the unit, oldest first; later calls of
  // ReadNew continue after them. Errors: Internal from sd-journal.
  virtual absl::StatusOr<std::vector<fleet::v1::JournalEntry>> Tail(int lines) = 0;
  // Up to `max` entries written after the last one returned, oldest first
  // (none when there are no new ones).
  virtual absl::StatusOr<std::vector<fleet::v1::JournalEntry>> ReadNew(int max) = 0;
  // Blocks until the journal may have new entries or `cancel_fd` (an eventfd)
  // becomes readable. Returns true when cancelled.
  virtual absl::StatusOr<bool> Wait(int cancel_fd) = 0;
};

// Opens a reader for unit `unit`. Errors: InvalidArgument for a bad name,
// Unavailable when the journal cannot be opened.
using JournalOpener =
    std::function<absl::StatusOr<std::unique_ptr<JournalReader>>(const std::string& unit)>;

// The opener of SdJournalReader for `scope` (local journal only).
JournalOpener SdJournalOpener(JournalScope scope);

// "Nov 27 05:12:01 host ident[pid]: message" as `journalctl -o short` prints
// `entry` in `zone` ("ident: message" without a pid, "unknown" for an empty
// hostname). Pure.
std::string FormatShortLine(const fleet::v1::JournalEntry& entry, absl::TimeZone zone);

}  // namespace fleet::agent
