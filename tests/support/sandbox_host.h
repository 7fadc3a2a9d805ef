#pragma once

// SandboxHost: a test fixture around scripts/sandbox-host. Starts one sandbox
// host (private mount/PID/UTS/cgroup namespaces, tmpfs /run, own machine id,
// journald and a systemd USER manager inside), runs commands and background
// processes inside it, and tears everything down by PID in its destructor, so
// a failing test cleans up too. Needs root. Not thread-safe.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/command.h"

namespace fleet::test {

class SandboxHost {
 public:
  // Starts a host named `name` whose state lives in `dir` (created), using the
  // script at `script` (scripts/sandbox-host). Errors carry the script's output.
  static absl::StatusOr<std::unique_ptr<SandboxHost>> Start(std::string script, std::string dir,
                                                            std::string name);
  ~SandboxHost();  // Stop()
  SandboxHost(const SandboxHost&) = delete;
  SandboxHost& operator=(const SandboxHost&) = delete;

  // Runs `shell_command` with /bin/sh inside the host and waits for it.
  CommandOutput Exec(const std::string& shell_command) const;

  // Starts `argv` inside the host in the background, its stdout and stderr
  // appended to `log_file`. Returns the PID (as seen from outside) of the
  // process itself (not of nsenter), for kill -9 in tests.
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_file);

  // Kills one process started with Spawn (SIGKILL) and reaps its nsenter.
  void Kill(pid_t pid);

  // Kills everything inside and removes the host's cgroups. Idempotent.
  void Stop();

  const std::string& dir() const { return dir_; }
  pid_t pid1() const { return pid1_; }

 private:
  SandboxHost(std::string script, std::string dir, pid_t pid1);

  struct Child {
    pid_t nsenter;  // our child: nsenter, which waits for the process
    pid_t process;  // the process inside the host
  };
  const std::string script_;
  const std::string dir_;
  const pid_t pid1_;
  bool stopped_ = false;
  std::vector<Child> children_;
};

}  // namespace fleet::test
