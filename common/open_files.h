#pragma once

// The process's limit on open files. The engine holds a connection per
// agent, and many systems start processes with a soft limit of 1,024, far
// below the hard limit: a cluster of a few thousand machines would find its
// agents refused at accept(2).

#include <cstdint>

#include "absl/status/statusor.h"

namespace fleet {

// Raises the soft RLIMIT_NOFILE to the hard one (to fs.nr_open when the hard
// limit is unlimited) and returns the soft limit now in force. An error names
// the call that failed; the limit is then unchanged.
absl::StatusOr<uint64_t> RaiseOpenFileLimit();

}  // namespace fleet
