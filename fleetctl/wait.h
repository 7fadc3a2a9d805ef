#pragma once

// Blocking until agents report that units reached what was asked, as fleet's
// load/start/stop/unload do: poll the engine every interval up to
// `block_attempts` times (0 = forever). A unit that cannot be placed, or that
// failed on its machine, ends the wait for that unit with the reason.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fleet/v1/fleet.pb.h"
#include "fleetctl/context.h"

namespace fleet::ctl {

// What a command waits for.
enum class Goal {
  kLoaded,    // load, stop: installed on its machine and not running
  kLaunched,  // start: active on its machine
  kUnloaded,  // unload: on no machine
};

// The word fleet prints for a reached goal: "loaded", "launched", "inactive".
const char* GoalWord(Goal goal);

enum class Progress { kReached, kWaiting, kFailed };

// Where one unit stands against `goal`, given every status entry the engine
// returned for it (several for a global unit, one per machine; none when the
// engine knows nothing of it). `detail` is set to a short state for progress
// lines or to the reason of a failure. Pure.
Progress Assess(Goal goal, const std::vector<const v1::UnitStatus*>& entries,
                std::string* detail);

struct WaitOptions {
  int block_attempts = 0;  // 0 = forever
  absl::Duration interval = absl::Milliseconds(500);
};

// Waits for `names`; prints fleet's "Unit NAME launched on MACHINE" line per
// unit as it gets there (on a terminal, a progress line while waiting), and
// each failure on stderr. Returns kExitOk when every unit reached the goal.
int WaitForUnits(Context& context, const std::vector<std::string>& names, Goal goal,
                 const WaitOptions& options);

}  // namespace fleet::ctl
