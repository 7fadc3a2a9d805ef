#pragma once

// fleet-engine processes started by a test: spawned with stderr on a pipe,
// recorded by PID, and killed (SIGKILL) and reaped when the owner goes away,
// also when the test failed.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace fleet::test {

struct EngineProcess {
  pid_t pid = -1;      // -1 once reaped
  int stderr_fd = -1;  // read end of the engine's stderr
  std::string output;  // stderr read so far
  int port = 0;        // set by WaitListening

  // Reads stderr until `needle` appears at or after offset `from` of output
  // (true), or stderr closes or 30 s pass without it (false).
  bool ReadUntil(const std::string& needle, size_t from = 0);
  // Reads the whole start-up line "... listening on ADDRESS (port N), ..." and
  // sets `port`. False when the engine did not get that far within 30 s (see
  // `output`).
  bool WaitListening();
  // Reads stderr to its end and reaps the process (30 s at most); its exit
  // code, -1 when it did not exit or died of a signal.
  int Wait();
};

class EngineProcesses {
 public:
  EngineProcesses() = default;
  EngineProcesses(const EngineProcesses&) = delete;
  EngineProcesses& operator=(const EngineProcesses&) = delete;
  // Kills and reaps every process still running; closes the pipes.
  ~EngineProcesses();

  // Starts the build's fleet-engine with `args`; does not wait for anything.
  // The process stays owned by this object. nullptr when no pipe could be made.
  EngineProcess* Spawn(const std::vector<std::string>& args);

 private:
  std::vector<std::unique_ptr<EngineProcess>> processes_;
};

}  // namespace fleet::test
