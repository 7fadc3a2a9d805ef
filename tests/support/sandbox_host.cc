#include "tests/support/sandbox_host.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace fleet::test {
namespace {

// The first child of `pid` (from /proc), or 0.
pid_t FirstChild(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  pid_t child = 0;
  in >> child;
  return child;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SandboxHost>> SandboxHost::Start(std::string script, std::string dir,
                                                                 std::string name) {
  CommandOutput out = RunCommand(absl::StrCat(ShellQuote(script), " start ", ShellQuote(dir), " ", ShellQuote(name)));
  if (out.exit_code != 0) {
    return absl::InternalError(absl::StrCat("sandbox-host start failed: ", out.text));
  }
  int pid1 = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(out.text), &pid1) || pid1 <= 1) {
    RunCommand(absl::StrCat(ShellQuote(script), " stop ", ShellQuote(dir)));
    return absl::InternalError(absl::StrCat("sandbox-host start printed no PID: ", out.text));
  }
  return std::unique_ptr<SandboxHost>(new SandboxHost(std::move(script), std::move(dir), pid1));
}

SandboxHost::SandboxHost(std::string script, std::string dir, pid_t pid1)
    : script_(std::move(script)), dir_(std::move(dir)), pid1_(pid1) {}

SandboxHost::~SandboxHost() { Stop(); }

CommandOutput SandboxHost::Exec(const std::string& shell_command) const {
  return RunCommand(absl::StrCat(ShellQuote(script_), " exec ", ShellQuote(dir_), " -- /bin/sh -c ",
                                 ShellQuote(shell_command)));
}

absl::StatusOr<pid_t> SandboxHost::Spawn(const std::vector<std::string>& argv,
                                         const std::string& log_file) {
  std::vector<std::string> args = {"nsenter", "-t", std::to_string(pid1_), "-m", "-p", "-u", "-C",
                                   "env", "XDG_RUNTIME_DIR=/run/user/0",
                                   "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus"};
  args.insert(args.end(), argv.begin(), argv.end());
  int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return absl::InternalError(absl::StrCat("cannot open ", log_file));
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    dup2(log, 1);
    dup2(log, 2);
    std::vector<char*> cargv;
    for (std::string& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(log);
  // nsenter forks the process into the PID namespace; wait (with a deadline)
  // for that child to appear.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  pid_t process = 0;
  while (absl::Now() < deadline) {
    process = FirstChild(pid);
    if (process != 0) break;
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      return absl::InternalError(absl::StrCat("nsenter exited early; see ", log_file));
    }
    usleep(2000);
  }
  if (process == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::DeadlineExceededError("process inside the host did not appear");
  }
  children_.push_back({pid, process});
  return process;
}

void SandboxHost::Kill(pid_t pid) {
  for (auto it = children_.begin(); it != children_.end(); ++it) {
    if (it->process != pid) continue;
    // Only while it is still nsenter's child, so a recycled PID is never hit.
    if (FirstChild(it->nsenter) == pid) kill(pid, SIGKILL);
    waitpid(it->nsenter, nullptr, 0);
    children_.erase(it);
    return;
  }
}

void SandboxHost::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Killing PID 1 of the namespace ends every process inside; then reap our
  // nsenter children and remove the cgroups.
  RunCommand(absl::StrCat(ShellQuote(script_), " stop ", ShellQuote(dir_)));
  for (const Child& child : children_) {
    kill(child.nsenter, SIGKILL);
    waitpid(child.nsenter, nullptr, 0);
  }
  children_.clear();
}

}  // namespace fleet::test
