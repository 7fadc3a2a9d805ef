#pragma once

// The agent's pure planner, after fleet's agent/reconcile.go: from the desired
// set (the engine's schedule for this machine) and what is installed here, the
// typed tasks that bring the host in line, in fleet's fixed order: unload,
// load, daemon-reload, stop, restart, start. No I/O; table-tested.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace fleet::agent {

enum class Target { kLoaded, kLaunched };

// A unit file's text, shared by its copies: the desired set, what is
// installed and the load task hold the same file, once in memory. Compares
// by text. Made implicitly from a string, as the planner's tables are written.
// Every empty text (the tasks other than load, a new InstalledUnit) shares
// one string: no allocation for them.
class UnitText {
 public:
  UnitText() : text_(Empty()) {}
  UnitText(std::string text)
      : text_(text.empty() ? Empty() : std::make_shared<const std::string>(std::move(text))) {}
  UnitText(const char* text) : UnitText(std::string(text)) {}
  const std::string& str() const { return *text_; }
  bool operator==(const UnitText& other) const { return text_ == other.text_ || *text_ == *other.text_; }

 private:
  static const std::shared_ptr<const std::string>& Empty();
  std::shared_ptr<const std::string> text_;  // never null
};

// One unit as the engine wants it on this machine.
struct DesiredUnit {
  UnitText contents;
  std::string hash;
  Target target = Target::kLoaded;
};

// One unit installed in the unit dir.
struct InstalledUnit {
  UnitText contents;
  // The agent started it (or adopted it running) and has not stopped it since.
  // A launched unit that exits or fails stays launched: restarting it is
  // systemd's job (Restart=), and its failure is reported, not hidden. (An
  // agent that restarts adopts a unit as launched only if it runs.)
  bool launched = false;
};

// kUnload stops the unit (when it runs) before it removes the file, so a unit
// never keeps running after it left this machine's schedule. kRestart is one
// systemd restart job: a stop job followed at once by a start job would let
// systemd's "replace" mode cancel the stop while it still waits in the queue,
// leaving the old process running.
enum class TaskKind { kUnload, kLoad, kReload, kStop, kRestart, kStart };

absl::string_view TaskKindName(TaskKind kind);

struct Task {
  TaskKind kind;
  std::string unit;      // empty for kReload
  UnitText contents;     // kLoad only

  bool operator==(const Task&) const = default;
};

// The tasks, in the fixed order (all unloads, then loads, one reload if any
// file changed, stops, restarts, starts; units by name within a kind):
// - installed but not desired: unload (which stops it first, as fleet's did);
// - desired but not installed: load, then start if launched;
// - installed with other contents: load (replace); restart only if it was
//   launched and stays launched; stop if it was launched and is now only
//   loaded; start if it was not launched and is now launched;
// - same contents: start or stop when launched differs from the target.
// `reload_pending`: files changed earlier but their reload failed; plan a
// reload even when no file changes now.
std::vector<Task> PlanTasks(const std::map<std::string, DesiredUnit>& desired,
                            const std::map<std::string, InstalledUnit>& installed,
                            bool reload_pending = false);

}  // namespace fleet::agent
