// scale_bench: a real fleet-engine process and M hollow agents in this one
// process, U units through the public API (fleet.v1.Fleet over gRPC), and the
// figures of issue 9 beside its goals. Prints figures only; never passes or
// fails on time (it exits non-zero only when the cluster does not converge
// within --timeout, or on a setup error).
//
// Hollow agents: each is the agent's own AgentRunner (the same Agent,
// EngineLink and planner the fleet-agent binary runs) on a FakeManager, with
// its own machine id, metadata (region=r{i%4}, disk=ssd on every third,
// hdd otherwise) and its own stream on its own connection, as real agents on
// their hosts have. The links share two EventLoops (a link holds a socket, not
// a thread); the runners are turned by a HollowLoop of one thread per core
// (AgentRunner's Start/Turn/Finish: the turns fleet-agent's Run makes on its
// own thread). So 10,000 agents need a few threads, not one or more each.
//
// What each agent receives is counted on the agent side, through the link's
// observe_register and observe_message hooks: every EngineMessage that
// arrives (messages, serialized bytes, scheduled units) and every Register
// sent.
//
// A run (medians over --runs):
//   1. start fleet-engine (embedded store in a temp dir, or --etcd-endpoints)
//      on 127.0.0.1:0 and read its port from its log; start M hollow agents;
//      wait until each has received its first schedule.
//   2. submit: create the units (desired inactive), 100 per CreateUnits request
//      (as fleetctl sends them), 64 requests at a time.
//   3. launch: set every unit launched, 100 units per SetUnitsDesiredState
//      (as `fleetctl start` sends a long list) from 64 concurrent callers;
//      "placed" = the agents received every
//      placement (agent side); "active" = ListUnitStates (paged, polled) shows
//      every entry active (engine side: what a user sees).
//   4. engine VmRSS and CPU seconds (utime+stime) once everything is active.
//   5. one change: set one unit loaded, then launched again; count the agents
//      that received anything in each step (expected: exactly its machine).
//   6. machine loss: stop 5% of the hollow agents (streams and heartbeats
//      end); time until every entry is active on a live machine, and until
//      the live agents received the moved units.
//   7. restart: SIGKILL (or SIGTERM, --restart-signal) the engine, start it
//      on the same data dir and port; time until every live agent registered
//      again and every entry is active.
//
//   scale_bench [--preset small|medium|large] [--machines M] [--units U]
//               [--runs N] [--agent-ttl 5s] [--engine PATH]
//               [--etcd-endpoints H:P,...] [--restart-signal kill|term]
//               [--timeout 600s] [--tls] [--keep-dir]
//
// Plaintext by default (the engine runs --insecure). With --tls, the engine
// serves mutual TLS, as it does by default, with certificates scripts/pki
// makes in the run's dir; the hollow agents and the API client all present
// the engine's certificate (role engine: any machine, any call), so that
// 10,000 agents need not each have one made.
// Presets (issue 9 item 2): small 100/10,000, medium 1,000/100,000,
// large 10,000/200,000 (machines/units; agent_ttl 30 s, see main);
// --machines/--units/--agent-ttl override.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/journal/journal_reader.h"
#include "agent/runner.h"
#include "agent/systemd/fake_manager.h"
#include "agent/transport/client_tls.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/tls/credentials.h"
#include "common/tls/material.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "fleet/v1/fleet.pb.h"
#include "google/protobuf/arena.h"
#include "grpcpp/grpcpp.h"
#include "tests/support/command.h"

namespace {

using fleet::v1::DesiredState;

// ---------------------------------------------------------------------------
// What each hollow agent receives, counted through its link's observer hooks.

struct Received {
  int64_t messages = 0;   // EngineMessages of any kind
  int64_t bytes = 0;      // their serialized size
  int64_t scheduled = 0;  // units in ScheduleFull / ScheduleDelta upserts
  int64_t registers = 0;  // streams on which the agent sent Register
};

// Counters per machine id and in total. Thread-safe (one mutex, taken once
// per message).
class Observer {
 public:
  // Forgets everything; `ids` are the machines to count (others are ignored).
  void Reset(const std::vector<std::string>& ids) {
    absl::MutexLock lock(&mu_);
    by_machine_.clear();
    for (const std::string& id : ids) by_machine_[id];
    total_ = Received{};
  }
  void OnRegister(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = by_machine_.find(id);
    if (it == by_machine_.end()) return;
    ++it->second.registers;
    ++total_.registers;
  }
  void OnMessage(const std::string& id, const fleet::v1::EngineMessage& message) {
    int64_t bytes = static_cast<int64_t>(message.ByteSizeLong());
    int64_t scheduled = 0;
    if (message.has_full()) scheduled = message.full().units_size();
    if (message.has_delta()) scheduled = message.delta().upserts_size();
    absl::MutexLock lock(&mu_);
    auto it = by_machine_.find(id);
    if (it == by_machine_.end()) return;
    for (Received* r : {&it->second, &total_}) {
      ++r->messages;
      r->bytes += bytes;
      r->scheduled += scheduled;
    }
  }
  std::map<std::string, Received> PerMachine() const {
    absl::MutexLock lock(&mu_);
    return by_machine_;
  }
  Received Total() const {
    absl::MutexLock lock(&mu_);
    return total_;
  }
  // Waits until `done(total)` holds; false at the deadline.
  bool AwaitTotal(const std::function<bool(const Received&)>& done, absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(total_); };
    return mu_.AwaitWithDeadline(absl::Condition(&cond), deadline);
  }
  // Waits until every machine not in `skip` sent more Registers than in
  // `before`; false at the deadline.
  bool AwaitRegistered(const std::map<std::string, Received>& before, const std::set<std::string>& skip,
                       absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& [id, r] : by_machine_) {
        if (skip.contains(id)) continue;
        auto it = before.find(id);
        if (it != before.end() && r.registers <= it->second.registers) return false;
      }
      return true;
    };
    return mu_.AwaitWithDeadline(absl::Condition(&all), deadline);
  }
  // Waits until no message arrived for `quiet` (at most until `deadline`).
  void AwaitQuiet(absl::Duration quiet, absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    while (absl::Now() < deadline) {
      int64_t seen = total_.messages;
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return total_.messages != seen; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&changed), quiet)) return;
    }
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Received> by_machine_ ABSL_GUARDED_BY(mu_);
  Received total_ ABSL_GUARDED_BY(mu_);
};

Observer* observer = nullptr;  // set once in main, before any agent starts

// ---------------------------------------------------------------------------
// /proc figures.

// VmRSS or Threads (a "Key:" of /proc/PID/status) as a number; -1 when unreadable.
long ProcStatus(const std::string& pid, const std::string& key) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(key + ":")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    long value = -1;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &value)) return value;
  }
  return -1;
}

// utime+stime of a process in seconds; -1 when unreadable.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  long utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// ---------------------------------------------------------------------------
// The fleet-engine process.

struct EngineArgs {
  std::string binary;
  std::string data_dir;
  std::string agent_ttl;
  std::string etcd_endpoints;  // empty: embedded store
  std::string log_path;
  std::optional<fleet::tls::TlsFiles> tls;  // the engine's; none: plaintext (--insecure)
};

// A started fleet-engine; killed (SIGKILL) and reaped by the destructor if it
// still runs. It also dies with this process (PR_SET_PDEATHSIG).
class EngineProcess {
 public:
  // Starts the engine on `listen` and waits (polling its log, with a
  // deadline) for its "listening on ... (port N)" line. Errors: Internal when
  // it cannot be started, exits first, or does not listen within 60 s.
  static absl::StatusOr<std::unique_ptr<EngineProcess>> Start(const EngineArgs& args,
                                                              const std::string& listen) {
    int log = open(args.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) return absl::InternalError("cannot open " + args.log_path);
    struct stat st {};
    fstat(log, &st);
    const off_t log_start = st.st_size;
    std::vector<std::string> argv = {args.binary, "--listen", listen, "--agent-ttl", args.agent_ttl};
    if (args.tls.has_value()) {
      argv.insert(argv.end(), {"--ca-file", args.tls->ca_file, "--cert-file", args.tls->cert_file,
                               "--key-file", args.tls->key_file});
    } else {
      argv.push_back("--insecure");
    }
    if (args.etcd_endpoints.empty()) {
      argv.insert(argv.end(), {"--data-dir", args.data_dir});
    } else {
      argv.insert(argv.end(), {"--store", "etcd", "--etcd-endpoints", args.etcd_endpoints});
    }
    std::vector<char*> c_argv;
    for (std::string& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      close(log);
      return absl::InternalError("fork failed");
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(log, 1);
      dup2(log, 2);
      execv(c_argv[0], c_argv.data());
      _exit(127);
    }
    close(log);
    auto engine = std::unique_ptr<EngineProcess>(new EngineProcess(pid));
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        engine->pid_ = -1;
        return absl::InternalError("fleet-engine exited at start; see " + args.log_path);
      }
      std::ifstream in(args.log_path);
      in.seekg(log_start);
      std::string line;
      while (std::getline(in, line)) {
        size_t at = line.find(" listening on ");
        size_t port_at = line.find("(port ");
        if (at == std::string::npos || port_at == std::string::npos) continue;
        std::string digits;
        for (size_t i = port_at + 6; i < line.size() && isdigit(line[i]); ++i) digits += line[i];
        if (absl::SimpleAtoi(digits, &engine->port_)) return engine;
      }
      absl::SleepFor(absl::Milliseconds(20));  // an external process: polled, with a deadline
    }
    return absl::InternalError("fleet-engine did not listen within 60 s; see " + args.log_path);
  }

  ~EngineProcess() { Stop(SIGKILL); }

  // Sends `signal` and waits for the exit. Idempotent.
  void Stop(int signal) {
    if (pid_ <= 0) return;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  pid_t pid() const { return pid_; }
  int port() const { return port_; }

 private:
  explicit EngineProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int port_ = 0;
};

// ---------------------------------------------------------------------------
// Hollow agents.

class HollowAgent;

// A few threads turn every hollow agent (AgentRunner::Turn) when it is woken
// (a message from the engine) or its next turn is due, instead of a thread per
// agent waiting in WaitForChanges. An agent is turned by one thread at a time.
class HollowLoop {
 public:
  explicit HollowLoop(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~HollowLoop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }

  // Turns `agent` now, and from then on when woken or due.
  void Add(HollowAgent* agent) {
    absl::MutexLock lock(&mu_);
    slots_[agent] = Slot{};
    QueueLocked(agent);
  }
  void Wake(HollowAgent* agent) {
    absl::MutexLock lock(&mu_);
    QueueLocked(agent);
  }
  // No turn of `agent` runs or starts once this returns.
  void Remove(HollowAgent* agent) {
    absl::MutexLock lock(&mu_);
    auto it = slots_.find(agent);
    if (it == slots_.end()) return;
    it->second.removed = true;
    auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !slots_.at(agent).running; };
    mu_.Await(absl::Condition(&idle));
    slots_.erase(agent);
  }

 private:
  struct Slot {
    bool queued = false;
    bool running = false;
    bool again = false;  // woken while running: turn once more
    bool removed = false;
    absl::Time due = absl::InfiniteFuture();
  };

  void QueueLocked(HollowAgent* agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = slots_.find(agent);
    if (it == slots_.end() || it->second.removed) return;
    Slot& slot = it->second;
    if (slot.running) {
      slot.again = true;
    } else if (!slot.queued) {
      slot.queued = true;
      ready_.push_back(agent);
    }
  }

  // The next agent to turn, waiting for one; nullptr when stopping.
  HollowAgent* NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!stopping_) {
      absl::Time now = absl::Now();
      while (!timers_.empty() && timers_.top().first <= now) {
        auto [due, agent] = timers_.top();
        timers_.pop();
        // A later turn set a new due time: this one is stale.
        if (auto it = slots_.find(agent); it != slots_.end() && it->second.due == due) QueueLocked(agent);
      }
      if (!ready_.empty()) {
        HollowAgent* agent = ready_.front();
        ready_.pop_front();
        auto it = slots_.find(agent);
        if (it == slots_.end() || it->second.removed) continue;
        it->second.queued = false;
        it->second.running = true;
        return agent;
      }
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !ready_.empty(); };
      mu_.AwaitWithDeadline(absl::Condition(&work),
                            timers_.empty() ? absl::InfiniteFuture() : timers_.top().first);
    }
    return nullptr;
  }

  void TurnedLocked(HollowAgent* agent, absl::Time due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Slot& slot = slots_.at(agent);
    slot.running = false;
    if (slot.removed) return;
    if (due != slot.due) {
      slot.due = due;
      if (due != absl::InfiniteFuture()) timers_.push({due, agent});
    }
    if (std::exchange(slot.again, false)) QueueLocked(agent);
  }

  void Work();

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<HollowAgent*, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<HollowAgent*> ready_ ABSL_GUARDED_BY(mu_);
  using Timer = std::pair<absl::Time, HollowAgent*>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

class HollowAgent {
 public:
  HollowAgent(int index, const std::string& engine_address, std::shared_ptr<const fleet::agent::ClientTls> tls,
              const fleet::Clock* clock, HollowLoop* loop, fleet::agent::EventLoop* link_loop)
      : id_(MachineId(index)), manager_(clock), loop_(loop) {
    fleet::agent::AgentRunnerOptions options;
    options.machine.set_id(id_);
    options.machine.set_public_ip(absl::StrCat("10.", index / 65536 % 256, ".", index / 256 % 256, ".",
                                               index % 256));
    (*options.machine.mutable_metadata())["region"] = absl::StrCat("r", index % 4);
    (*options.machine.mutable_metadata())["disk"] = index % 3 == 0 ? "ssd" : "hdd";
    options.machine.set_agent_version("hollow");
    options.link.engines = {engine_address};
    options.link.tls = std::move(tls);
    options.link.seed = static_cast<uint64_t>(index) + 1;
    options.link.loop = link_loop;
    options.link.observe_register = [this](const fleet::v1::Register&) { observer->OnRegister(id_); };
    options.link.observe_message = [this](const fleet::v1::EngineMessage& message) {
      observer->OnMessage(id_, message);
    };
    options.journal = [](const std::string&)
        -> absl::StatusOr<std::unique_ptr<fleet::agent::JournalReader>> {
      return absl::UnavailableError("a hollow agent has no journal");
    };
    runner_ = std::make_unique<fleet::agent::AgentRunner>(&manager_, clock, std::move(options));
    manager_.SetWakeListener([this] { loop_->Wake(this); });
  }
  ~HollowAgent() { Stop(); }

  static std::string MachineId(int index) { return absl::StrFormat("hollow-%05d", index); }

  absl::Status Start() {
    if (absl::Status s = runner_->Start(); !s.ok()) return s;
    loop_->Add(this);
    started_ = true;
    return absl::OkStatus();
  }
  // Ends the agent's turns, stream and heartbeats.
  void Stop() {
    if (!std::exchange(started_, false)) return;
    loop_->Remove(this);
    runner_->Finish();
  }

  // Turns the runner until its own work (starts, stops) left no change
  // behind; when the next turn is due. On the loop's threads only.
  absl::Time Turn() {
    absl::Time due = absl::InfiniteFuture();
    for (bool first = true;; first = false) {
      absl::StatusOr<std::vector<fleet::agent::UnitStatus>> changes =
          manager_.WaitForChanges(absl::ZeroDuration());
      if (changes.ok() && changes->empty() && !first) return due;
      absl::StatusOr<fleet::agent::AgentRunner::TurnResult> turn =
          changes.ok() ? runner_->Turn(*changes) : changes.status();
      if (!turn.ok()) {
        fleet::LogError("hollow agent %s ended: %s", id_, turn.status().ToString());
        return absl::InfiniteFuture();
      }
      due = turn->due;
    }
  }

 private:
  const std::string id_;
  fleet::agent::FakeManager manager_;
  HollowLoop* const loop_;
  std::unique_ptr<fleet::agent::AgentRunner> runner_;
  bool started_ = false;
};

void HollowLoop::Work() {
  HollowAgent* agent = nullptr;
  absl::Time due;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (agent != nullptr) TurnedLocked(agent, due);
      agent = NextLocked();
      if (agent == nullptr) return;
    }
    due = agent->Turn();
  }
}

// ---------------------------------------------------------------------------
// The workload.

struct UnitSpec {
  std::string name;
  std::string contents;
  bool global = false;
  bool is_template = false;  // stored only (a template is never launched)
};

std::string UnitFile(const std::string& description, const std::string& fleet_section) {
  std::string file = absl::StrCat("[Unit]\nDescription=", description,
                                   "\n\n[Service]\nExecStart=/bin/sleep infinity\nRestart=always\n");
  if (!fleet_section.empty()) absl::StrAppend(&file, "\n[X-Fleet]\n", fleet_section);
  return file;
}

// `units` launchable units for `machines` machines (metadata as HollowAgent
// sets it), plus 10 templates. The mix: 3 global units (1 below 100 units);
// min(machines/2, 50, units/100) units that conflict with each other; 40%
// instances of the templates (half of those constrained to a region); 20%
// constrained to a region; 10% to region and disk=ssd (when there are at
// least 12 machines, so every pair exists); the rest plain.
std::vector<UnitSpec> MakeWorkload(int units, int machines) {
  std::vector<UnitSpec> out;
  constexpr int kTemplates = 10;
  std::vector<std::string> template_files;
  for (int t = 0; t < kTemplates; ++t) {
    std::string constraint = t % 2 == 0 ? absl::StrCat("MachineMetadata=region=r", t % 4, "\n") : "";
    template_files.push_back(UnitFile(absl::StrCat("app", t, " instance %i"), constraint));
    out.push_back({absl::StrCat("app", t, "@.service"), template_files.back(), false, true});
  }
  int globals = units >= 100 ? 3 : 1;
  int conflicting = std::min({machines / 2, 50, units / 100});
  int made = 0;
  for (int g = 0; g < globals && made < units; ++g, ++made) {
    out.push_back({absl::StrCat("global-", g, ".service"),
                   UnitFile(absl::StrCat("global ", g), "Global=true\n"), true, false});
  }
  for (int c = 0; c < conflicting && made < units; ++c, ++made) {
    out.push_back({absl::StrCat("solo-", c, ".service"),
                   UnitFile(absl::StrCat("solo ", c), "Conflicts=solo-*.service\n"), false, false});
  }
  const int rest = units - made;
  const int instances = rest * 4 / 10;
  const int region = rest * 2 / 10;
  const int region_ssd = machines >= 12 ? rest / 10 : 0;
  for (int i = 0; i < instances; ++i) {
    int t = i % kTemplates;
    out.push_back({absl::StrCat("app", t, "@", i / kTemplates, ".service"), template_files[t], false, false});
  }
  for (int i = 0; i < region; ++i) {
    out.push_back({absl::StrCat("region-", i, ".service"),
                   UnitFile(absl::StrCat("region ", i), absl::StrCat("MachineMetadata=region=r", i % 4, "\n")),
                   false, false});
  }
  for (int i = 0; i < region_ssd; ++i) {
    out.push_back({absl::StrCat("ssd-", i, ".service"),
                   UnitFile(absl::StrCat("ssd ", i),
                            absl::StrCat("MachineMetadata=region=r", i % 4, "\nMachineMetadata=disk=ssd\n")),
                   false, false});
  }
  for (int i = 0, plain = rest - instances - region - region_ssd; i < plain; ++i) {
    out.push_back({absl::StrCat("plain-", i, ".service"), UnitFile(absl::StrCat("plain ", i), ""), false, false});
  }
  return out;
}

// ---------------------------------------------------------------------------
// The API client.

// Runs `call(i)` for i in [0, n) on `threads` threads; the first error.
// Prints progress (`what`) to stderr every 10 s.
absl::Status ForEachParallel(const std::string& what, int n, int threads,
                             const std::function<grpc::Status(int)>& call) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  bool done = false;
  std::thread progress([&] {
    absl::Time start = absl::Now();
    absl::MutexLock lock(&mu);
    while (!mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10))) {
      int started = std::min(next.load(), n);
      std::fprintf(stderr, "  %s: %d of %d after %.0f s\n", what.c_str(), started, n,
                   absl::ToDoubleSeconds(absl::Now() - start));
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        grpc::Status s = call(i);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) {
            first = absl::InternalError(absl::StrCat("call ", i, ": ", s.error_message()));
          }
          next = n;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  {
    absl::MutexLock lock(&mu);
    done = true;
  }
  progress.join();
  return first;
}

// Calls `visit` on every unit's entries (one per machine for a global unit),
// a page at a time. A page is parsed on an arena and dropped once visited:
// the bench's client shares the cores with the engine and the hollow agents,
// and moving 230,000 entries out of their pages into one vector only added to
// the listings that the "active" figures wait on.
absl::Status ForEachStatePage(fleet::v1::Fleet::Stub& stub,
                              const std::function<void(const fleet::v1::ListUnitStatesResponse&)>& visit) {
  std::string token;
  do {
    fleet::v1::ListUnitStatesRequest request;
    request.set_page_size(10000);
    request.set_page_token(token);
    google::protobuf::Arena arena;
    auto* response = google::protobuf::Arena::CreateMessage<fleet::v1::ListUnitStatesResponse>(&arena);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status s = stub.ListUnitStates(&context, request, response);
    if (!s.ok()) return absl::UnavailableError("ListUnitStates: " + s.error_message());
    visit(*response);
    token = response->next_page_token();
  } while (!token.empty());
  return absl::OkStatus();
}

// Launched entries active on a machine not in `dead`.
absl::StatusOr<int64_t> CountActive(fleet::v1::Fleet::Stub& stub, const std::set<std::string>& dead) {
  int64_t n = 0;
  absl::Status s = ForEachStatePage(stub, [&](const fleet::v1::ListUnitStatesResponse& page) {
    for (const auto& u : page.units()) {
      n += u.desired_state() == fleet::v1::DESIRED_STATE_LAUNCHED && !u.machine_id().empty() &&
           !dead.contains(u.machine_id()) && u.has_state() && u.state().active_state() == "active" &&
           u.state().machine_id() == u.machine_id();
    }
  });
  if (!s.ok()) return s;
  return n;
}

// Polls ListUnitStates (the engine is another process and has no watch API)
// until `target` entries are active off `dead`; the time it took since
// `since`, or nullopt at the deadline.
std::optional<double> AwaitActive(fleet::v1::Fleet::Stub& stub, int64_t target,
                                  const std::set<std::string>& dead, absl::Time since,
                                  absl::Time deadline) {
  int64_t last = -1;
  absl::Status last_error;  // said at the deadline: a poll that keeps failing is not "not yet"
  while (absl::Now() < deadline) {
    absl::StatusOr<int64_t> active = CountActive(stub, dead);
    if (active.ok()) {
      last = *active;
      if (last >= target) return absl::ToDoubleSeconds(absl::Now() - since);
    } else {
      last_error = active.status();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::fprintf(stderr, "timed out: %lld of %lld entries active%s%s\n", static_cast<long long>(last),
               static_cast<long long>(target), last_error.ok() ? "" : "; last poll error: ",
               last_error.ok() ? "" : last_error.ToString().c_str());
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// One run.

struct Config {
  int machines = 100;
  int units = 10000;
  int runs = 1;
  std::string agent_ttl = "5s";
  std::string engine;
  std::string etcd_endpoints;
  int restart_signal = SIGKILL;
  absl::Duration timeout = absl::Seconds(600);
  bool tls = false;
  bool keep_dir = false;
};

struct Figures {
  double submit_s = 0;            // creating the units
  double placed_s = 0;            // launch -> the agents received every placement
  double active_s = 0;            // launch -> every entry active
  double end_to_end_s = 0;        // submit + active
  double placements_per_s = 0;
  double create_per_s = 0;        // units created/s (100 per CreateUnits, 64 concurrent callers)
  double launch_per_s = 0;        // units set launched per second
  double engine_rss_start_kib = 0;  // agents connected, no units
  double engine_rss_kib = 0;
  double engine_cpu_s = 0;
  double messages = 0;            // to agents during launch
  double bytes = 0;
  double agents_reached = 0;      // agents that received anything during launch
  double woken_unload = 0;        // agents that received anything for one change
  double woken_relaunch = 0;
  double woken_right = 0;         // 1 when the woken agents were exactly the unit's machine, both times
  double loss_s = 0;              // 5% of machines stopped -> their units active elsewhere
  double loss_delivered_s = 0;    // ... -> their placements delivered to live agents
  double loss_units = 0;          // units that had to move
  double listing_s = 0;           // one ListUnitStates of every entry, all active, the cluster quiet
  double reregister_s = 0;        // engine killed -> every live agent registered again
  double restart_s = 0;           // engine killed -> every agent re-registered, every entry active
  double bench_rss_kib = 0;
  double bench_threads = 0;
};

// Agents that received anything between `before` and now.
std::set<std::string> Woken(const std::map<std::string, Received>& before) {
  std::set<std::string> out;
  for (const auto& [id, r] : observer->PerMachine()) {
    auto it = before.find(id);
    if (it == before.end() || it->second.messages != r.messages) out.insert(id);
  }
  return out;
}

absl::StatusOr<Figures> RunOnce(const Config& config, int run) {
  Figures f;
  char dir_template[] = "/tmp/fleet-scale-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string dir = dir_template;
  EngineArgs args{config.engine, dir + "/data", config.agent_ttl, config.etcd_endpoints, dir + "/engine.log",
                  std::nullopt};
  std::shared_ptr<const fleet::agent::ClientTls> agent_tls;  // none: plaintext
  std::shared_ptr<grpc::ChannelCredentials> api_credentials = grpc::InsecureChannelCredentials();
  if (config.tls) {
    const std::string pki = fleet::test::ShellQuote(absl::StrCat(FLEET_SOURCE_DIR, "/scripts/pki"));
    const std::string pki_dir = dir + "/pki";
    for (const std::string& command :
         {absl::StrCat(pki, " init ", fleet::test::ShellQuote(pki_dir)),
          absl::StrCat(pki, " engine ", fleet::test::ShellQuote(pki_dir), " engine --san IP:127.0.0.1")}) {
      fleet::test::CommandOutput out = fleet::test::RunCommand(command);
      if (out.exit_code != 0) return absl::InternalError(absl::StrCat(command, ": ", out.text));
    }
    args.tls = fleet::tls::TlsFiles{.ca_file = pki_dir + "/ca.pem",
                                    .cert_file = pki_dir + "/engine.pem",
                                    .key_file = pki_dir + "/engine-key.pem"};
    absl::StatusOr<std::shared_ptr<const fleet::agent::ClientTls>> loaded = fleet::agent::ClientTls::Load(*args.tls);
    if (!loaded.ok()) return loaded.status();
    agent_tls = *loaded;
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        fleet::tls::MakeChannelCredentials(*args.tls);
    if (!credentials.ok()) return credentials.status();
    api_credentials = *credentials;
  }
  absl::Duration ttl;
  if (!absl::ParseDuration(config.agent_ttl, &ttl)) return absl::InvalidArgumentError("bad --agent-ttl");
  const absl::Time deadline = absl::Now() + config.timeout;
  std::fprintf(stderr, "run %d: engine log %s\n", run, args.log_path.c_str());

  std::vector<std::string> ids;
  for (int i = 0; i < config.machines; ++i) ids.push_back(HollowAgent::MachineId(i));
  observer->Reset(ids);

  absl::StatusOr<std::unique_ptr<EngineProcess>> engine = EngineProcess::Start(args, "127.0.0.1:0");
  if (!engine.ok()) return engine.status();
  const int port = (*engine)->port();
  const std::string address = absl::StrCat("127.0.0.1:", port);

  fleet::RealClock clock;
  HollowLoop loop(static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  std::vector<std::unique_ptr<fleet::agent::EventLoop>> link_loops;
  for (int i = 0; i < 2; ++i) link_loops.push_back(std::make_unique<fleet::agent::EventLoop>());
  std::vector<std::unique_ptr<HollowAgent>> agents;
  for (int i = 0; i < config.machines; ++i) {
    agents.push_back(std::make_unique<HollowAgent>(i, address, agent_tls, &clock, &loop,
                                                   link_loops[i % link_loops.size()].get()));
    if (absl::Status s = agents.back()->Start(); !s.ok()) return s;
  }
  // Each agent's first message is its (empty) full schedule.
  absl::Time started = absl::Now();
  if (!observer->AwaitTotal(
          [&](const Received& r) { return r.messages >= config.machines; }, deadline)) {
    return absl::DeadlineExceededError("hollow agents did not all connect");
  }
  for (const auto& [id, r] : observer->PerMachine()) {
    if (r.messages == 0) return absl::InternalError(id + " received nothing");
  }
  f.engine_rss_start_kib = static_cast<double>(ProcStatus(std::to_string((*engine)->pid()), "VmRSS"));
  std::fprintf(stderr, "run %d: %d hollow agents connected in %.2f s\n", run, config.machines,
               absl::ToDoubleSeconds(absl::Now() - started));

  // The API calls get a gRPC connection of their own, as fleetctl has
  // (gRPC's global subchannel pool would share one among this process's
  // channels to the engine, such as the listing poller's).
  grpc::ChannelArguments own_connection;
  own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(address, api_credentials, own_connection);
  std::unique_ptr<fleet::v1::Fleet::Stub> stub = fleet::v1::Fleet::NewStub(channel);
  constexpr int kCallers = 64;
  auto call_deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(120); };

  // Submit: 100 units per CreateUnits request, as fleetctl sends them.
  constexpr int kUnitsPerRequest = 100;  // the engine's limit per request
  auto requests_for = [](size_t units) { return static_cast<int>((units + kUnitsPerRequest - 1) / kUnitsPerRequest); };
  std::vector<UnitSpec> workload = MakeWorkload(config.units, config.machines);
  absl::Time t0 = absl::Now();
  absl::Status s = ForEachParallel("create", requests_for(workload.size()), kCallers, [&](int i) {
    fleet::v1::CreateUnitsRequest request;
    request.set_omit_contents(true);  // as fleetctl asks
    const size_t first = static_cast<size_t>(i) * kUnitsPerRequest;
    for (size_t u = first; u < std::min(workload.size(), first + kUnitsPerRequest); ++u) {
      fleet::v1::CreateUnitRequest* unit = request.add_units();
      unit->set_name(workload[u].name);
      unit->set_contents(workload[u].contents);
      unit->set_desired_state(fleet::v1::DESIRED_STATE_INACTIVE);
    }
    fleet::v1::CreateUnitsResponse response;
    grpc::ClientContext context;
    context.set_deadline(call_deadline());
    return stub->CreateUnits(&context, request, &response);
  });
  if (!s.ok()) return s;
  f.submit_s = absl::ToDoubleSeconds(absl::Now() - t0);
  f.create_per_s = static_cast<double>(workload.size()) / f.submit_s;

  // Launch.
  std::vector<const UnitSpec*> launchable;
  int64_t globals = 0;
  for (const UnitSpec& u : workload) {
    if (u.is_template) continue;
    launchable.push_back(&u);
    globals += u.global;
  }
  const int64_t placements = static_cast<int64_t>(launchable.size()) - globals + globals * config.machines;
  const Received before_launch = observer->Total();
  const std::map<std::string, Received> per_before_launch = observer->PerMachine();
  absl::Time t1 = absl::Now();
  s = ForEachParallel("launch", requests_for(launchable.size()), kCallers, [&](int i) {
    fleet::v1::SetUnitsDesiredStateRequest request;
    const size_t first = static_cast<size_t>(i) * kUnitsPerRequest;
    for (size_t u = first; u < std::min(launchable.size(), first + kUnitsPerRequest); ++u) {
      request.add_names(launchable[u]->name);
    }
    request.set_desired_state(fleet::v1::DESIRED_STATE_LAUNCHED);
    request.set_omit_contents(true);
    fleet::v1::SetUnitsDesiredStateResponse response;
    grpc::ClientContext context;
    context.set_deadline(call_deadline());
    return stub->SetUnitsDesiredState(&context, request, &response);
  });
  if (!s.ok()) return s;
  f.launch_per_s = static_cast<double>(launchable.size()) / absl::ToDoubleSeconds(absl::Now() - t1);
  std::fprintf(stderr, "run %d: %zu units created in %.2f s, launched in %.2f s\n", run, workload.size(),
               f.submit_s, absl::ToDoubleSeconds(absl::Now() - t1));
  if (!observer->AwaitTotal(
          [&](const Received& r) { return r.scheduled - before_launch.scheduled >= placements; }, deadline)) {
    return absl::DeadlineExceededError("the agents did not receive every placement");
  }
  f.placed_s = absl::ToDoubleSeconds(absl::Now() - t1);
  f.placements_per_s = static_cast<double>(placements) / f.placed_s;
  std::optional<double> active = AwaitActive(*stub, placements, {}, t1, deadline);
  if (!active.has_value()) return absl::DeadlineExceededError("not every unit became active");
  f.active_s = *active;
  f.end_to_end_s = f.submit_s + f.active_s;
  f.engine_rss_kib = static_cast<double>(ProcStatus(std::to_string((*engine)->pid()), "VmRSS"));
  f.engine_cpu_s = CpuSeconds((*engine)->pid());
  f.bench_rss_kib = static_cast<double>(ProcStatus("self", "VmRSS"));
  f.bench_threads = static_cast<double>(ProcStatus("self", "Threads"));
  observer->AwaitQuiet(absl::Milliseconds(500), deadline);
  const Received after_launch = observer->Total();
  f.messages = static_cast<double>(after_launch.messages - before_launch.messages);
  f.bytes = static_cast<double>(after_launch.bytes - before_launch.bytes);
  f.agents_reached = static_cast<double>(Woken(per_before_launch).size());
  std::fprintf(stderr, "run %d: %lld placements delivered in %.2f s, all active after %.2f s\n", run,
               static_cast<long long>(placements), f.placed_s, f.active_s);

  // One change: a plain unit to loaded, then launched again.
  const absl::Time listing_start = absl::Now();
  std::string changed_unit, changed_machine;
  s = ForEachStatePage(*stub, [&](const fleet::v1::ListUnitStatesResponse& page) {
    for (const auto& u : page.units()) {
      if (changed_unit.empty() && (u.name().starts_with("plain-") || u.name().starts_with("region-"))) {
        changed_unit = u.name();
        changed_machine = u.machine_id();
      }
    }
  });
  if (!s.ok()) return s;
  f.listing_s = absl::ToDoubleSeconds(absl::Now() - listing_start);
  bool woken_right = !changed_unit.empty();
  for (DesiredState state : {fleet::v1::DESIRED_STATE_LOADED, fleet::v1::DESIRED_STATE_LAUNCHED}) {
    if (changed_unit.empty()) break;
    std::map<std::string, Received> before = observer->PerMachine();
    int64_t messages_before = observer->Total().messages;
    fleet::v1::SetUnitDesiredStateRequest request;
    request.set_name(changed_unit);
    request.set_desired_state(state);
    fleet::v1::Unit response;
    grpc::ClientContext context;
    context.set_deadline(call_deadline());
    if (grpc::Status gs = stub->SetUnitDesiredState(&context, request, &response); !gs.ok()) {
      return absl::InternalError("SetUnitDesiredState: " + gs.error_message());
    }
    // Wait for the first message (10 s at most), then for 1 s of quiet.
    observer->AwaitTotal([&](const Received& r) { return r.messages > messages_before; },
                         absl::Now() + absl::Seconds(10));
    observer->AwaitQuiet(absl::Seconds(1), absl::Now() + absl::Seconds(10));
    std::set<std::string> woken = Woken(before);
    (state == fleet::v1::DESIRED_STATE_LOADED ? f.woken_unload : f.woken_relaunch) =
        static_cast<double>(woken.size());
    woken_right = woken_right && woken == std::set<std::string>{changed_machine};
  }
  f.woken_right = woken_right ? 1 : 0;
  if (!AwaitActive(*stub, placements, {}, absl::Now(), deadline).has_value()) {
    return absl::DeadlineExceededError("the changed unit did not become active again");
  }

  // Machine loss: every 20th agent (5%, at least one).
  std::set<std::string> dead;
  for (int i = 0; i < config.machines; i += 20) dead.insert(HollowAgent::MachineId(i));
  s = ForEachStatePage(*stub, [&](const fleet::v1::ListUnitStatesResponse& page) {
    for (const auto& u : page.units()) {
      f.loss_units += dead.contains(u.machine_id()) && !u.name().starts_with("global-");
    }
  });
  if (!s.ok()) return s;
  const int64_t placements_after = placements - static_cast<int64_t>(dead.size()) * globals;
  // Also timed at the agents: when the live ones had received as many
  // placements as units moved (nothing else changes meanwhile). Apart from
  // the listing's time, that shows how long the engine itself took: a full
  // listing at 10,000 machines takes seconds while passes hold the lock.
  const int64_t scheduled_before_loss = observer->Total().scheduled;
  absl::Time t2 = absl::Now();
  for (int i = 0; i < config.machines; i += 20) agents[i]->Stop();
  std::optional<absl::Time> delivered;
  std::thread watch_delivery([&] {
    const auto moved = static_cast<int64_t>(f.loss_units);
    if (observer->AwaitTotal([&](const Received& r) { return r.scheduled - scheduled_before_loss >= moved; },
                             deadline)) {
      delivered = absl::Now();
    }
  });
  std::optional<double> loss = AwaitActive(*stub, placements_after, dead, t2, deadline);
  watch_delivery.join();
  if (!loss.has_value() || !delivered.has_value()) {
    return absl::DeadlineExceededError("lost machines' units did not move");
  }
  f.loss_s = *loss;
  f.loss_delivered_s = absl::ToDoubleSeconds(*delivered - t2);
  std::fprintf(stderr, "run %d: %zu machines lost, %.0f units delivered elsewhere after %.2f s, active after %.2f s\n",
               run, dead.size(), f.loss_units, f.loss_delivered_s, f.loss_s);

  // Engine restart on the same data dir and port.
  std::map<std::string, Received> before_restart = observer->PerMachine();
  absl::Time t3 = absl::Now();
  (*engine)->Stop(config.restart_signal);
  engine = EngineProcess::Start(args, address);
  if (!engine.ok()) return engine.status();
  if (!observer->AwaitRegistered(before_restart, dead, deadline)) {
    return absl::DeadlineExceededError("not every live agent registered again");
  }
  f.reregister_s = absl::ToDoubleSeconds(absl::Now() - t3);
  std::optional<double> whole = AwaitActive(*stub, placements_after, dead, t3, deadline);
  if (!whole.has_value()) return absl::DeadlineExceededError("the cluster was not whole after the restart");
  f.restart_s = *whole;
  std::fprintf(stderr, "run %d: engine restarted: agents back after %.2f s, cluster whole after %.2f s\n",
               run, f.reregister_s, f.restart_s);

  agents.clear();
  engine->reset();
  if (!config.keep_dir) std::filesystem::remove_all(dir);
  return f;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void PrintTable(const Config& config, const std::vector<Figures>& runs) {
  auto med = [&](double Figures::*field) {
    std::vector<double> v;
    for (const Figures& f : runs) v.push_back(f.*field);
    return Median(v);
  };
  absl::Duration ttl;
  absl::ParseDuration(config.agent_ttl, &ttl);
  const double budget_kib = config.units * 1.0 + config.machines * 20.0;
  std::printf("\nscale_bench: %d machines, %d units, %s store, agent_ttl %s, %s; medians of %zu run(s)\n",
              config.machines, config.units, config.etcd_endpoints.empty() ? "embedded" : "etcd",
              config.agent_ttl.c_str(), config.tls ? "mutual TLS" : "plaintext", runs.size());
  std::printf("%-52s %16s   %s\n", "figure", "measured", "goal (issue 9)");
  auto row = [](const std::string& name, const std::string& value, const std::string& goal) {
    std::printf("%-52s %16s   %s\n", name.c_str(), value.c_str(), goal.c_str());
  };
  row("submit (create all units), s", absl::StrFormat("%.2f", med(&Figures::submit_s)), "-");
  row("units created/s (100 per request, 64 callers)", absl::StrFormat("%.0f", med(&Figures::create_per_s)), "-");
  row("units set launched/s (100 per request, 64 callers)", absl::StrFormat("%.0f", med(&Figures::launch_per_s)), "-");
  row("launch -> placements delivered to agents, s", absl::StrFormat("%.2f", med(&Figures::placed_s)), "-");
  row("launch -> all active (ListUnitStates), s", absl::StrFormat("%.2f", med(&Figures::active_s)), "-");
  row("end to end: submit + launch -> all active, s", absl::StrFormat("%.2f", med(&Figures::end_to_end_s)),
      "< 30 (100k units, 1,000 machines)");
  row("placements/s (launch -> delivered)", absl::StrFormat("%.0f", med(&Figures::placements_per_s)),
      ">= 20,000 (embedded store)");
  row("engine RSS, agents connected, no units, MiB", absl::StrFormat("%.1f", med(&Figures::engine_rss_start_kib) / 1024),
      "-");
  row("engine RSS when all active, MiB", absl::StrFormat("%.1f", med(&Figures::engine_rss_kib) / 1024),
      absl::StrFormat("< %.1f (1 KiB/unit + 20 KiB/machine)", budget_kib / 1024));
  row("  growth from no units to all active, KiB per unit",
      absl::StrFormat("%.2f", (med(&Figures::engine_rss_kib) - med(&Figures::engine_rss_start_kib)) / config.units),
      "< 1 (units only; machines counted at start)");
  row("engine CPU (utime+stime) when all active, s", absl::StrFormat("%.2f", med(&Figures::engine_cpu_s)), "-");
  row("messages to agents during launch", absl::StrFormat("%.0f", med(&Figures::messages)), "-");
  row("bytes to agents during launch, MiB", absl::StrFormat("%.2f", med(&Figures::bytes) / 1048576), "-");
  row("agents that received anything during launch",
      absl::StrFormat("%.0f of %d", med(&Figures::agents_reached), config.machines), "-");
  row("agents woken by one change (launched -> loaded)", absl::StrFormat("%.0f", med(&Figures::woken_unload)),
      "1: exactly the unit's machine");
  row("agents woken by one change (loaded -> launched)", absl::StrFormat("%.0f", med(&Figures::woken_relaunch)),
      "1: exactly the unit's machine");
  row("  ... and it was the unit's machine (runs ok)",
      absl::StrFormat("%.0f of %zu", [&] {
        double n = 0;
        for (const Figures& f : runs) n += f.woken_right;
        return n;
      }(), runs.size()),
      "all");
  row("units on the lost 5% of machines", absl::StrFormat("%.0f", med(&Figures::loss_units)), "-");
  row("machine loss -> their units active elsewhere, s", absl::StrFormat("%.2f", med(&Figures::loss_s)),
      absl::StrFormat("< %.1f (agent_ttl + 2 s)", absl::ToDoubleSeconds(ttl) + 2));
  row("  ... their placements delivered to live agents, s", absl::StrFormat("%.2f", med(&Figures::loss_delivered_s)),
      "- (the engine's part: the listing above takes seconds)");
  row("ListUnitStates of every entry (pages of 10,000), s", absl::StrFormat("%.2f", med(&Figures::listing_s)),
      "- (how often the figures above are polled)");
  row(absl::StrFormat("engine restart (%s) -> live agents registered, s",
                      config.restart_signal == SIGKILL ? "kill -9" : "SIGTERM"),
      absl::StrFormat("%.2f", med(&Figures::reregister_s)), "-");
  row(absl::StrFormat("engine restart (%s) -> cluster whole, s",
                      config.restart_signal == SIGKILL ? "kill -9" : "SIGTERM"),
      absl::StrFormat("%.2f", med(&Figures::restart_s)), "-");
  row("this process (hollow agents) RSS, MiB", absl::StrFormat("%.1f", med(&Figures::bench_rss_kib) / 1024), "-");
  row("this process threads", absl::StrFormat("%.0f", med(&Figures::bench_threads)), "-");
  std::printf("Figures are indicative when other work shares the machine.\n");
}

int Usage() {
  std::fprintf(stderr,
               "usage: scale_bench [--preset small|medium|large] [--machines M] [--units U] [--runs N]\n"
               "                   [--agent-ttl 5s] [--engine PATH] [--etcd-endpoints H:P,...]\n"
               "                   [--restart-signal kill|term] [--timeout 600s] [--tls] [--keep-dir]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil with Mutex deadlock detection on: every lock taken
  // under another is recorded in one graph under one global lock. With 10,000
  // hollow agents in this process that graph took most of its CPU and the
  // agents did not all connect. It is off here only: this process is the
  // harness; the engine measured keeps Debian's default.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Config config;
  config.engine = std::string(FLEET_BINARY_DIR) + "/engine/fleet-engine";
  std::optional<int> machines, units;
  // --agent-ttl wins over a preset's, whichever comes first.
  const bool ttl_given = std::find(argv + 1, argv + argc, std::string("--agent-ttl")) != argv + argc;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--keep-dir") {
      config.keep_dir = true;
      continue;
    }
    if (flag == "--tls") {
      config.tls = true;
      continue;
    }
    if (i + 1 >= argc) return Usage();
    std::string value = argv[++i];
    int n = 0;
    if (flag == "--preset") {
      if (value == "small") {
        config.machines = 100, config.units = 10000;
      } else if (value == "medium") {
        config.machines = 1000, config.units = 100000;
      } else if (value == "large") {
        config.machines = 10000, config.units = 200000;
        // The engine's default ttl (fleet's too): what a cluster of this
        // size runs with.
        if (!ttl_given) config.agent_ttl = "30s";
      } else {
        return Usage();
      }
    } else if (flag == "--machines" && absl::SimpleAtoi(value, &n) && n > 0) {
      machines = n;
    } else if (flag == "--units" && absl::SimpleAtoi(value, &n) && n > 0) {
      units = n;
    } else if (flag == "--runs" && absl::SimpleAtoi(value, &n) && n > 0) {
      config.runs = n;
    } else if (flag == "--agent-ttl") {
      config.agent_ttl = value;
    } else if (flag == "--engine") {
      config.engine = value;
    } else if (flag == "--etcd-endpoints") {
      config.etcd_endpoints = value;
    } else if (flag == "--restart-signal" && (value == "kill" || value == "term")) {
      config.restart_signal = value == "kill" ? SIGKILL : SIGTERM;
    } else if (flag == "--timeout" && absl::ParseDuration(value, &config.timeout)) {
    } else {
      return Usage();
    }
  }
  if (machines.has_value()) config.machines = *machines;
  if (units.has_value()) config.units = *units;
  absl::Duration ttl;
  if (!absl::ParseDuration(config.agent_ttl, &ttl) || ttl <= absl::ZeroDuration()) return Usage();

  // 10,000 agents log their connects and losses: only errors.
  fleet::SetLogLevel(fleet::LogPriority::kError);
  Observer the_observer;
  observer = &the_observer;

  std::vector<Figures> runs;
  for (int run = 1; run <= config.runs; ++run) {
    absl::StatusOr<Figures> f = RunOnce(config, run);
    if (!f.ok()) {
      std::fprintf(stderr, "run %d failed: %s\n", run, f.status().ToString().c_str());
      return 1;
    }
    runs.push_back(*f);
  }
  PrintTable(config, runs);
  return 0;
}
