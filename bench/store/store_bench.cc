// Throughput of the stores: single-key puts from 1..64 concurrent writers, and
// transactions of 100 puts. First the EmbeddedStore in detail, then the
// same writes side by side on the EmbeddedStore, EtcdStore on a 1-member and
// on a 3-member etcd cluster (real /usr/bin/etcd members on 127.0.0.1 started
// by the bench, data under $TMPDIR, every write fsync'ed by etcd too). Each
// figure is the median of several timed runs; nothing passes or fails.
//
// Usage: store_bench [--dir DIR] [--runs N] [--seconds S] [--etcd yes|no]
//   DIR defaults to a fresh directory under $TMPDIR (or /tmp), removed at the end.
//   --etcd no skips the etcd columns (no etcd installed).

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "engine/store/embedded_store.h"
#include "engine/store/etcd_store.h"
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

}  // namespace
}  // namespace fleet

int main(int argc, char** argv) {
  std::string dir;
  int runs = 5;
  double seconds = 1.0;
  bool with_etcd = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) {
      dir = argv[i + 1];
    } else if (std::strcmp(argv[i], "--runs") == 0 && absl::SimpleAtoi(argv[i + 1], &runs)) {
    } else if (std::strcmp(argv[i], "--seconds") == 0 && absl::SimpleAtod(argv[i + 1], &seconds)) {
    } else if (std::strcmp(argv[i], "--etcd") == 0 &&
               (std::strcmp(argv[i + 1], "yes") == 0 || std::strcmp(argv[i + 1], "no") == 0)) {
      with_etcd = std::strcmp(argv[i + 1], "yes") == 0;
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--runs N] [--seconds S] [--etcd yes|no]\n",
                   argv[0]);
      return 2;
    }
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

  if (with_etcd) {
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
  std::filesystem::remove_all(data_dir);
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
