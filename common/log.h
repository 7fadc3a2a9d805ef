#pragma once

// Logging for the top level of each binary: one line per message on stderr,
// prefixed with a syslog priority ("<6>") so journald keeps the level when the
// binary runs as a systemd service. Libraries return absl::Status and leave
// the logging to their caller, once.

#include <string_view>

#include "absl/strings/str_format.h"

namespace fleet {

enum class LogPriority { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

// Messages above this priority (numerically) are dropped. Thread-safe.
void SetLogLevel(LogPriority max_priority);

// Writes "<N>message\n" to stderr in one write(2), so lines of concurrent
// threads never interleave. Thread-safe.
void Log(LogPriority priority, std::string_view message);

template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogPriority::kError, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogPriority::kWarning, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogPriority::kInfo, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogDebug(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogPriority::kDebug, absl::StrFormat(format, args...));
}

}  // namespace fleet
