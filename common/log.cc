#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace fleet {
namespace {
std::atomic<int> max_priority{static_cast<int>(LogPriority::kInfo)};
}  // namespace

void SetLogLevel(LogPriority priority) { max_priority.store(static_cast<int>(priority)); }

void Log(LogPriority priority, std::string_view message) {
  if (static_cast<int>(priority) > max_priority.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrFormat("<%d>%s\n", static_cast<int>(priority), message);
  // One write(2) per line; a short write on a pipe is finished, an error dropped.
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace fleet
