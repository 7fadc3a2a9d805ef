#include "tests/support/engine_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/numbers.h"

namespace fleet::test {
namespace {

constexpr char kEngine[] = FLEET_BINARY_DIR "/engine/fleet-engine";
constexpr auto kPatience = std::chrono::seconds(30);

}  // namespace

bool EngineProcess::ReadUntil(const std::string& needle, size_t from) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (output.find(needle, from) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fd{stderr_fd, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    ssize_t n = read(stderr_fd, buffer, sizeof buffer);
    if (n <= 0) return output.find(needle, from) != std::string::npos;
    output.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

bool EngineProcess::WaitListening() {
  if (!ReadUntil(" listening on ")) return false;
  const size_t line = output.find(" listening on ");
  if (!ReadUntil("\n", line)) return false;
  size_t at = output.find("(port ", line);
  if (at == std::string::npos) return false;
  size_t end = output.find(')', at);
  return absl::SimpleAtoi(output.substr(at + 6, end - at - 6), &port) && port > 0;
}

int EngineProcess::Wait() {
  ReadUntil("\x01never\x01");  // drain stderr until the process closes it
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    // Polling: a child's exit has no file descriptor to wait on here.
    if (waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    usleep(10000);
  }
  return -1;
}

EngineProcesses::~EngineProcesses() {
  for (auto& process : processes_) {
    if (process->pid > 0) {
      kill(process->pid, SIGKILL);
      waitpid(process->pid, nullptr, 0);
    }
    if (process->stderr_fd >= 0) close(process->stderr_fd);
  }
}

EngineProcess* EngineProcesses::Spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return nullptr;
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
  argv.push_back(const_cast<char*>(kEngine));
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    execv(kEngine, argv.data());
    _exit(127);
  }
  close(fds[1]);
  auto process = std::make_unique<EngineProcess>();
  process->pid = pid;
  process->stderr_fd = fds[0];
  processes_.push_back(std::move(process));
  return processes_.back().get();
}

}  // namespace fleet::test
