// Throughput of the stores: single-key puts from 1..64 concurrent writers, and
// transactions of 100 puts. First the EmbeddedStore in detail, then the
// same writes side by side on the EmbeddedStore, EtcdStore on a 1-member and
// on a 3-member etcd cluster (real /usr/bin/etcd members on 127.0.0.1 started
// by the bench, data under $TMPDIR, every write fsync'ed by etcd too). Each
// figure is the median of several timed runs; nothing passes or fails.
//
// Then end to end: placements/s of the real fleet::Engine (engine/engine.h)
// on each store, side by side, in this process (no gRPC), wired as
// fleet-engine's main wires it: the embedded store with SoleLeader, etcd with
// a running EtcdLeadership (default leader TTL) so that every write carries
// the leader's guard. One run: a fresh store (a new data directory, or a new
// etcd cluster of 1 or 3 members); the engine's loop thread as EngineServer
// runs it (WaitForWork, Tick, then wait as long as the pass took, at most
// EngineServer::kMaxBatchWait); M machines registered with AgentRegistered on
// counting AgentChannels, kept alive by heartbeats every heartbeat_interval;
// U plain units created inactive by 64 threads calling CreateUnit (creates/s);
// then the clock starts and 64 threads set every unit launched, 100 units per
// SetUnitsDesiredState (as `fleetctl start` sends a long list); it stops when the
// channels together have received every unit (upserts of ScheduleFull or
// ScheduleDelta with desired state LAUNCHED, distinct unit names).
// placements/s = U / that time. The agents never report unit states back, so
// the engine does none of the work of StateReports here (bench/scale does).
//
// Usage: store_bench [--dir DIR] [--runs N] [--seconds S] [--etcd yes|no]
//                    [--engine-units U] [--engine-machines M]
//   DIR defaults to a fresh directory under $TMPDIR (or /tmp), removed at the end.
//   --etcd no skips the etcd columns (no etcd installed).
//   --engine-units (default 10000) and --engine-machines (default 100) size
//   the engine section; --engine-units 0 skips it.
//   A run of the engine section that does not deliver every placement within
//   10 minutes ends the bench with exit code 1 (a hang, not a figure).

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "engine/engine.h"
#include "engine/etcd_leadership.h"
#include "engine/leadership.h"
#include "engine/server.h"
#include "engine/store/embedded_store.h"
#include "engine/store/etcd_store.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/fleet.pb.h"
#include "tests/support/etcd_cluster.h"

namespace fleet {
namespace {

struct Scenario {
  const char* name;
  int threads;
  int ops_per_txn;  // 1 = Put
  absl::Duration window;
};

struct RunResult {
  double writes_per_s;  // calls (Put or Txn) per second
  double records_per_sync;
};

// Writes from sc.threads threads for `length`; returns calls (Put or Txn) per
// second. Keys start with `prefix`, so runs on one store do not overwrite.
double RunWrites(Store& store, const Scenario& sc, absl::Duration length, const std::string& prefix) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0};
  std::string value(200, 'v');  // about the size of a schedule or machine record
  std::vector<std::thread> threads;
  absl::Time start = absl::Now();
  for (int t = 0; t < sc.threads; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        absl::Status st;
        if (sc.ops_per_txn == 1) {
          st = store.Put(absl::StrCat(prefix, "u", t, "-", i), value).status();
        } else {
          Transaction txn;
          for (int k = 0; k < sc.ops_per_txn; ++k) {
            txn.on_success.push_back(
                {Operation::Kind::kPut, absl::StrCat(prefix, "u", t, "-", i, "-", k), value, 0});
          }
          st = store.Txn(txn).status();
        }
        if (!st.ok()) {
          std::fprintf(stderr, "write: %s\n", st.ToString().c_str());
          std::exit(1);
        }
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  absl::SleepFor(length);  // the measured interval itself, not a wait for an event
  stop = true;
  for (auto& th : threads) th.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return static_cast<double>(calls.load()) / seconds;
}

RunResult RunOnce(const std::string& dir, const Scenario& sc, absl::Duration length) {
  std::filesystem::remove_all(dir);
  RealClock clock;
  EmbeddedStoreOptions options;
  options.dir = dir;
  options.clock = &clock;
  options.group_commit_window = sc.window;
  auto store = EmbeddedStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), store.status().ToString().c_str());
    std::exit(1);
  }
  double rate = RunWrites(**store, sc, length, "/fleet/schedule/");
  EmbeddedStore::CommitStats stats = (*store)->commit_stats();
  return {rate, stats.syncs ? static_cast<double>(stats.records) / static_cast<double>(stats.syncs)
                            : 0.0};
}

// An EtcdStore on a fresh cluster of `members` members; exits on failure.
struct EtcdUnderBench {
  std::unique_ptr<test::EtcdCluster> cluster;
  std::unique_ptr<EtcdStore> store;
};
EtcdUnderBench StartEtcd(int members) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster = test::EtcdCluster::Start(members);
  if (!cluster.ok()) {
    std::fprintf(stderr, "etcd: %s\n", cluster.status().ToString().c_str());
    std::exit(1);
  }
  EtcdStoreOptions options;
  options.endpoints = (*cluster)->endpoints();
  absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "etcd store: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  return {std::move(*cluster), std::move(*store)};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---------------------------------------------------------------------------
// Placements/s of the engine on each store (see the top of this file).

// How long after the first launch call every unit must have been delivered;
// past it the bench exits 1 (a hang, not a figure).
constexpr absl::Duration kEngineRunDeadline = absl::Minutes(10);
// Concurrent API callers, and units per launch request, as bench/scale uses.
constexpr int kEngineCallers = 64;
constexpr int kUnitsPerLaunch = 100;

// What the agents of a run received. Thread-safe (one mutex; the engine calls
// in with its own lock held, and nothing here calls back into the engine).
class PlacementCounter {
 public:
  explicit PlacementCounter(int machines) : per_machine_(machines, 0) {}

  // Counts the units `message` asks machine number `machine` to launch.
  void Received(int machine, const fleet::v1::EngineMessage& message) {
    const google::protobuf::RepeatedPtrField<fleet::v1::ScheduledUnit>* units = nullptr;
    if (message.has_full()) units = &message.full().units();
    if (message.has_delta()) units = &message.delta().upserts();
    absl::MutexLock lock(&mu_);
    if (message.has_delta()) removes_ += message.delta().removes_size();
    if (units == nullptr) return;
    for (const fleet::v1::ScheduledUnit& unit : *units) {
      if (unit.desired_state() != fleet::v1::DESIRED_STATE_LAUNCHED) continue;
      ++upserts_;
      ++per_machine_[machine];
      placed_.insert(unit.name());
    }
  }
  // The engine closed a stream (the first one is kept: during a run only
  // Shutdown may close one).
  void Closed(int machine, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (closed_.ok()) {
      closed_ = absl::Status(status.code(), absl::StrCat("machine ", machine, ": ", status.message()));
    }
  }
  // Waits until `units` distinct units were received; false at `deadline`.
  bool AwaitPlaced(size_t units, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return placed_.size() >= units; };
    return mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  }
  size_t placed() {
    absl::MutexLock lock(&mu_);
    return placed_.size();
  }
  int64_t upserts() {
    absl::MutexLock lock(&mu_);
    return upserts_;
  }
  int64_t removes() {
    absl::MutexLock lock(&mu_);
    return removes_;
  }
  absl::Status closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }
  // Fewest and most units received by one machine.
  std::pair<int64_t, int64_t> Spread() {
    absl::MutexLock lock(&mu_);
    auto [lo, hi] = std::minmax_element(per_machine_.begin(), per_machine_.end());
    return {*lo, *hi};
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> placed_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> per_machine_ ABSL_GUARDED_BY(mu_);
  int64_t upserts_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t removes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status closed_ ABSL_GUARDED_BY(mu_);
};

// The engine end of one hollow agent's stream: counts what arrives.
class CountingChannel final : public AgentChannel {
 public:
  CountingChannel(PlacementCounter* counter, int machine) : counter_(counter), machine_(machine) {}
  void Send(fleet::v1::EngineMessage message) override { counter_->Received(machine_, message); }
  void Close(absl::Status status) override { counter_->Closed(machine_, status); }

 private:
  PlacementCounter* const counter_;
  const int machine_;
};

// Runs `call(i)` for i in [0, n) on `threads` threads; the first error.
absl::Status ForEachParallel(int n, int threads, const std::function<absl::Status(int)>& call) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        absl::Status s = call(i);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = absl::Status(s.code(), absl::StrCat("call ", i, ": ", s.message()));
          next = n;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return first;
}

// Calls `body` every `interval` on a thread of its own until destroyed.
class Repeater {
 public:
  Repeater(absl::Duration interval, std::function<void()> body)
      : thread_([this, interval, body = std::move(body)] {
          while (!stop_.WaitForNotificationWithTimeout(interval)) body();
        }) {}
  ~Repeater() {
    stop_.Notify();
    thread_.join();
  }

 private:
  absl::Notification stop_;
  std::thread thread_;
};

// The engine's loop, as EngineServer::Loop runs it (engine/server.cc),
// until destroyed.
class EngineLoop {
 public:
  explicit EngineLoop(Engine* engine) : engine_(engine), thread_([this] { Run(); }) {}
  ~EngineLoop() {
    stop_.Notify();
    engine_->Wake();  // WaitForWork returns at once
    thread_.join();
  }

 private:
  void Run() {
    constexpr absl::Duration kTickInterval = absl::Seconds(1);  // EngineServerOptions' default
    while (!stop_.HasBeenNotified()) {
      engine_->WaitForWork(kTickInterval);
      if (stop_.HasBeenNotified()) break;
      const absl::Time start = absl::Now();
      if (absl::Status s = engine_->Tick(); !s.ok()) {
        std::fprintf(stderr, "reconcile: %s\n", s.ToString().c_str());
        stop_.WaitForNotificationWithTimeout(kTickInterval);
        continue;
      }
      stop_.WaitForNotificationWithTimeout(std::min(absl::Now() - start, EngineServer::kMaxBatchWait));
    }
  }

  Engine* const engine_;
  absl::Notification stop_;
  std::thread thread_;
};

struct EngineFigures {
  double creates_per_s = 0;      // CreateUnit calls/s, 64 callers
  double launches_per_s = 0;     // units set launched per second
  double placements_per_s = 0;   // units / (first launch call -> every unit delivered)
};

[[noreturn]] void Fail(const std::string& where, const absl::Status& status) {
  std::fprintf(stderr, "engine bench: %s: %s\n", where.c_str(), status.ToString().c_str());
  std::exit(1);
}

// One run of the engine on a fresh store: `etcd_members` 0 = EmbeddedStore in
// `dir` (removed first), else a new etcd cluster of that many members.
// Exits the process on any error (see Fail).
EngineFigures RunEngineOnce(int etcd_members, const std::string& dir, int units, int machines,
                            int run) {
  const std::string what =
      etcd_members == 0 ? std::string("embedded") : absl::StrCat("etcd ", etcd_members);
  RealClock clock;
  std::unique_ptr<test::EtcdCluster> cluster;
  std::unique_ptr<Store> store;
  if (etcd_members == 0) {
    std::filesystem::remove_all(dir);
    EmbeddedStoreOptions options;  // as fleet-engine's main: dir and clock, defaults otherwise
    options.dir = dir;
    options.clock = &clock;
    absl::StatusOr<std::unique_ptr<EmbeddedStore>> opened = EmbeddedStore::Open(options);
    if (!opened.ok()) Fail(absl::StrCat("open ", dir), opened.status());
    store = *std::move(opened);
  } else {
    absl::StatusOr<std::unique_ptr<test::EtcdCluster>> started = test::EtcdCluster::Start(etcd_members);
    if (!started.ok()) Fail("etcd", started.status());
    cluster = *std::move(started);
    EtcdStoreOptions options;
    options.endpoints = cluster->endpoints();
    absl::StatusOr<std::unique_ptr<EtcdStore>> opened = EtcdStore::Open(options);
    if (!opened.ok()) Fail("etcd store", opened.status());
    store = *std::move(opened);
  }

  // Who leads, as fleet-engine's main decides it.
  std::atomic<Engine*> engine_to_wake{nullptr};
  absl::Notification became_leader;
  std::atomic<bool> lost_lead{false};
  std::unique_ptr<Leadership> leadership;
  EtcdLeadership* election = nullptr;
  if (etcd_members == 0) {
    leadership = std::make_unique<SoleLeader>("127.0.0.1:0");
  } else {
    EtcdLeadershipOptions options;  // default ttl and margin, as fleet-engine's defaults
    options.engine_id = "store_bench";
    options.address = "127.0.0.1:0";
    options.clock = &clock;
    options.on_change = [&](bool leading, const absl::Status&) {
      if (leading && !became_leader.HasBeenNotified()) became_leader.Notify();
      if (!leading) lost_lead = true;
      if (Engine* engine = engine_to_wake.load(); engine != nullptr) engine->Wake();
    };
    absl::StatusOr<std::unique_ptr<EtcdLeadership>> created =
        EtcdLeadership::Create(store.get(), std::move(options));
    if (!created.ok()) Fail("leadership", created.status());
    election = created->get();
    leadership = *std::move(created);
  }

  // Declared before the engine: the channels outlive it.
  PlacementCounter counter(machines);
  std::vector<std::unique_ptr<CountingChannel>> channels;
  EngineOptions engine_options;  // agent_ttl as fleet-engine's default
  engine_options.leadership = leadership.get();
  if (etcd_members == 0) engine_options.max_ops_per_txn = kMaxOpsPerEmbeddedTxn;
  absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(store.get(), &clock, engine_options);
  if (!created.ok()) Fail("Engine::Create", created.status());
  std::unique_ptr<Engine> engine = *std::move(created);
  engine_to_wake = engine.get();
  if (election != nullptr) {
    election->Start();
    if (!became_leader.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      Fail("leadership", absl::DeadlineExceededError("not the leader after 30 s"));
    }
  }
  // Take the lead (the first Tick reloads from the store) before agents may register.
  if (absl::Status s = engine->Tick(); !s.ok()) Fail("first Tick", s);
  if (!engine->leading()) Fail("first Tick", absl::InternalError("the engine does not lead"));

  std::vector<int64_t> sessions;
  EngineFigures f;
  {
    EngineLoop loop(engine.get());
    for (int m = 0; m < machines; ++m) {
      channels.push_back(std::make_unique<CountingChannel>(&counter, m));
      fleet::v1::Register reg;
      reg.mutable_machine()->set_id(absl::StrFormat("machine-%05d", m));
      absl::StatusOr<int64_t> session = engine->AgentRegistered(reg, channels.back().get());
      if (!session.ok()) Fail("AgentRegistered", session.status());
      sessions.push_back(*session);
    }
    // The agents' heartbeats, as each agent sends them.
    Repeater heartbeats(engine->heartbeat_interval(), [&] {
      for (int64_t session : sessions) {
        if (absl::Status s = engine->AgentHeartbeat(session); !s.ok()) Fail("heartbeat", s);
      }
    });

    auto unit_name = [](int i) { return absl::StrFormat("plain-%06d.service", i); };
    const absl::Time t0 = absl::Now();
    absl::Status s = ForEachParallel(units, kEngineCallers, [&](int i) {
      fleet::v1::CreateUnitRequest request;
      request.set_name(unit_name(i));
      request.set_contents(absl::StrCat("[Unit]\nDescription=plain ", i,
                                        "\n\n[Service]\nExecStart=/bin/sleep infinity\nRestart=always\n"));
      request.set_desired_state(fleet::v1::DESIRED_STATE_INACTIVE);
      return engine->CreateUnit(request).status();
    });
    if (!s.ok()) Fail("CreateUnit", s);
    const absl::Duration created_in = absl::Now() - t0;

    const absl::Time t1 = absl::Now();
    const int requests = (units + kUnitsPerLaunch - 1) / kUnitsPerLaunch;
    s = ForEachParallel(requests, kEngineCallers, [&](int r) {
      fleet::v1::SetUnitsDesiredStateRequest request;
      for (int i = r * kUnitsPerLaunch; i < std::min(units, (r + 1) * kUnitsPerLaunch); ++i) {
        request.add_names(unit_name(i));
      }
      request.set_desired_state(fleet::v1::DESIRED_STATE_LAUNCHED);
      request.set_omit_contents(true);
      return engine->SetUnitsDesiredState(request).status();
    });
    if (!s.ok()) Fail("SetUnitsDesiredState", s);
    const absl::Duration launched_in = absl::Now() - t1;
    if (!counter.AwaitPlaced(static_cast<size_t>(units), t1 + kEngineRunDeadline)) {
      Fail("placements", absl::DeadlineExceededError(absl::StrCat(
                             counter.placed(), " of ", units, " units delivered after ",
                             absl::FormatDuration(kEngineRunDeadline))));
    }
    const absl::Duration delivered_in = absl::Now() - t1;
    if (absl::Status closed = counter.closed(); !closed.ok()) Fail("a stream was closed", closed);
    if (lost_lead) Fail("leadership", absl::UnavailableError("the engine lost the lead during the run"));
    auto [fewest, most] = counter.Spread();
    std::fprintf(stderr,
                 "engine run %d on %s: %d units created in %.2f s, launched in %.2f s, all delivered "
                 "after %.2f s (%lld upserts, %lld removes; %lld..%lld units per machine)\n",
                 run, what.c_str(), units, absl::ToDoubleSeconds(created_in),
                 absl::ToDoubleSeconds(launched_in), absl::ToDoubleSeconds(delivered_in),
                 static_cast<long long>(counter.upserts()), static_cast<long long>(counter.removes()),
                 static_cast<long long>(fewest), static_cast<long long>(most));
    f.creates_per_s = units / absl::ToDoubleSeconds(created_in);
    f.launches_per_s = units / absl::ToDoubleSeconds(launched_in);
    f.placements_per_s = units / absl::ToDoubleSeconds(delivered_in);
  }  // stops the heartbeats, then the loop

  // As fleet-engine stops: resign first (its thread and callbacks end), then
  // the engine, then the store (then the cluster, then the channels).
  if (election != nullptr) {
    if (absl::Status s = election->Resign(); !s.ok()) {
      std::fprintf(stderr, "engine bench: resigning: %s\n", s.ToString().c_str());
    }
  }
  engine_to_wake = nullptr;
  engine->Shutdown();
  engine.reset();
  leadership.reset();
  store.reset();
  return f;
}

}  // namespace
}  // namespace fleet

int main(int argc, char** argv) {
  std::string dir;
  int runs = 5;
  double seconds = 1.0;
  bool with_etcd = true;
  int engine_units = 10000;
  int engine_machines = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) {
      dir = argv[i + 1];
    } else if (std::strcmp(argv[i], "--runs") == 0 && absl::SimpleAtoi(argv[i + 1], &runs)) {
    } else if (std::strcmp(argv[i], "--seconds") == 0 && absl::SimpleAtod(argv[i + 1], &seconds)) {
    } else if (std::strcmp(argv[i], "--etcd") == 0 &&
               (std::strcmp(argv[i + 1], "yes") == 0 || std::strcmp(argv[i + 1], "no") == 0)) {
      with_etcd = std::strcmp(argv[i + 1], "yes") == 0;
    } else if (std::strcmp(argv[i], "--engine-units") == 0 &&
               absl::SimpleAtoi(argv[i + 1], &engine_units) && engine_units >= 0) {
    } else if (std::strcmp(argv[i], "--engine-machines") == 0 &&
               absl::SimpleAtoi(argv[i + 1], &engine_machines) && engine_machines > 0) {
    } else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--runs N] [--seconds S] [--etcd yes|no] "
                   "[--engine-units U] [--engine-machines M]\n",
                   argv[0]);
      return 2;
    }
  }
  if (runs < 1) {
    std::fprintf(stderr, "--runs must be at least 1\n");
    return 2;
  }
  bool own_dir = dir.empty();
  if (own_dir) {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp ? tmp : "/tmp") + "/fleet-store-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  }
  std::string data_dir = dir + "/data";

  using fleet::Scenario;
  const Scenario scenarios[] = {
      {"put, 1 writer", 1, 1, absl::Milliseconds(2)},
      {"put, 4 writers", 4, 1, absl::Milliseconds(2)},
      {"put, 16 writers", 16, 1, absl::Milliseconds(2)},
      {"put, 64 writers", 64, 1, absl::Milliseconds(2)},
      {"put, 64 writers, window 0", 64, 1, absl::ZeroDuration()},
      {"txn of 100 puts, 1 writer", 1, 100, absl::Milliseconds(2)},
      {"txn of 100 puts, 8 writers", 8, 100, absl::Milliseconds(2)},
  };
  std::printf("EmbeddedStore, data dir %s, median of %d runs of %.1f s, value 200 bytes\n",
              data_dir.c_str(), runs, seconds);
  std::printf("%-30s %14s %14s %16s\n", "scenario", "calls/s", "keys/s", "records/fsync");
  for (const Scenario& sc : scenarios) {
    std::vector<double> rates, batch;
    for (int r = 0; r < runs; ++r) {
      fleet::RunResult res = fleet::RunOnce(data_dir, sc, absl::Seconds(seconds));
      rates.push_back(res.writes_per_s);
      batch.push_back(res.records_per_sync);
    }
    double rate = fleet::Median(rates);
    std::printf("%-30s %14.0f %14.0f %16.1f\n", sc.name, rate, rate * sc.ops_per_txn,
                fleet::Median(batch));
  }
  std::printf("target of the scale issue: >= 20000 placements/s (one placement = one key)\n");

  if (with_etcd) {  // the clusters stop at the end of this block
    // The same writes on each store, side by side: keys written per second.
    const Scenario side_by_side[] = {
        {"put, 1 writer", 1, 1, absl::Milliseconds(2)},
        {"put, 64 writers", 64, 1, absl::Milliseconds(2)},
        {"txn of 100 puts, 1 writer", 1, 100, absl::Milliseconds(2)},
        {"txn of 100 puts, 8 writers", 8, 100, absl::Milliseconds(2)},
    };
    fleet::EtcdUnderBench etcd1 = fleet::StartEtcd(1);
    fleet::EtcdUnderBench etcd3 = fleet::StartEtcd(3);
    std::printf("\nkeys/s side by side (median of %d runs of %.1f s; etcd: %s, members on "
                "127.0.0.1, data in %s and %s)\n",
                runs, seconds, "/usr/bin/etcd", etcd1.cluster->dir().c_str(),
                etcd3.cluster->dir().c_str());
    std::printf("%-30s %14s %14s %14s\n", "scenario", "embedded", "etcd 1 member", "etcd 3 members");
    int run_number = 0;
    for (const Scenario& sc : side_by_side) {
      std::vector<double> embedded, one, three;
      for (int r = 0; r < runs; ++r) {
        embedded.push_back(fleet::RunOnce(data_dir, sc, absl::Seconds(seconds)).writes_per_s);
        std::string prefix = absl::StrCat("/fleet/bench/", run_number++, "/");
        one.push_back(fleet::RunWrites(*etcd1.store, sc, absl::Seconds(seconds), prefix));
        three.push_back(fleet::RunWrites(*etcd3.store, sc, absl::Seconds(seconds), prefix));
      }
      std::printf("%-30s %14.0f %14.0f %14.0f\n", sc.name, fleet::Median(embedded) * sc.ops_per_txn,
                  fleet::Median(one) * sc.ops_per_txn, fleet::Median(three) * sc.ops_per_txn);
    }
  }

  if (engine_units > 0) {
    // Placements/s of the engine on each store, side by side.
    std::vector<int> stores = {0};  // etcd members; 0 = embedded
    if (with_etcd) {
      stores.push_back(1);
      stores.push_back(3);
    }
    std::vector<std::vector<fleet::EngineFigures>> figures(stores.size());
    for (int r = 0; r < runs; ++r) {
      for (size_t k = 0; k < stores.size(); ++k) {
        figures[k].push_back(fleet::RunEngineOnce(stores[k], dir + "/engine", engine_units,
                                                  engine_machines, r));
      }
    }
    std::filesystem::remove_all(dir + "/engine");
    std::printf("\nfleet::Engine end to end, in process (no gRPC): %d machines, %d plain units, %d "
                "callers;\nmedian of %d runs, each on a fresh store (new data dir; new etcd cluster)\n",
                engine_machines, engine_units, fleet::kEngineCallers, runs);
    std::printf("%-46s %14s", "", "embedded");
    if (with_etcd) std::printf(" %14s %14s", "etcd 1 member", "etcd 3 members");
    std::printf("\n");
    auto row = [&](const char* name, double fleet::EngineFigures::*field) {
      std::printf("%-46s", name);
      for (const std::vector<fleet::EngineFigures>& column : figures) {
        std::vector<double> values;
        for (const fleet::EngineFigures& f : column) values.push_back(f.*field);
        std::printf(" %14.0f", fleet::Median(values));
      }
      std::printf("\n");
    };
    row("unit creates/s", &fleet::EngineFigures::creates_per_s);
    row("units set launched/s (100 per request)", &fleet::EngineFigures::launches_per_s);
    row("placements/s (launch -> delivered to agents)", &fleet::EngineFigures::placements_per_s);
    std::printf("goal of issue 9: >= 20000 placements/s with the embedded store\n");
  }

  std::filesystem::remove_all(data_dir);
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
