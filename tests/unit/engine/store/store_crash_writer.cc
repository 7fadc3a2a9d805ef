// Helper of store_crash_test: writes to an EmbeddedStore in a loop from
// several threads until it is killed, and prints "THREAD INDEX\n" on stdout
// (one write(2) per line, so lines never interleave) after each write was
// acknowledged. Thread t writes, in one Txn per index i:
//   /crash/<t>/k/<i, 8 digits> = v<i>    and    /crash/<t>/last = <i>
// and continues after the last index found in the store.
//
// Usage: store_crash_writer DIR THREADS SNAPSHOT_EVERY_RECORDS

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "engine/store/embedded_store.h"

int main(int argc, char** argv) {
  int threads = 0;
  int64_t snapshot_every = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[2], &threads) ||
      !absl::SimpleAtoi(argv[3], &snapshot_every)) {
    std::fprintf(stderr, "usage: %s DIR THREADS SNAPSHOT_EVERY_RECORDS\n", argv[0]);
    return 2;
  }
  fleet::RealClock clock;
  fleet::EmbeddedStoreOptions options;
  options.dir = argv[1];
  options.clock = &clock;
  options.snapshot_every_records = snapshot_every;
  auto store = fleet::EmbeddedStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, t] {
      std::string last_key = absl::StrCat("/crash/", t, "/last");
      int64_t next = 0;
      if (auto last = (*store)->Get(last_key); last.ok()) {
        if (!absl::SimpleAtoi(last->value, &next)) std::abort();
        ++next;
      }
      for (int64_t i = next;; ++i) {
        fleet::Transaction txn;
        txn.on_success.push_back({fleet::Operation::Kind::kPut,
                                  absl::StrFormat("/crash/%d/k/%08d", t, i), absl::StrCat("v", i),
                                  0});
        txn.on_success.push_back({fleet::Operation::Kind::kPut, last_key, absl::StrCat(i), 0});
        if (auto r = (*store)->Txn(txn); !r.ok()) {
          std::fprintf(stderr, "txn: %s\n", r.status().ToString().c_str());
          std::_Exit(1);
        }
        std::string line = absl::StrCat(t, " ", i, "\n");
        if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);  // the reader is gone
        }
      }
    });
  }
  for (auto& w : workers) w.join();  // never: the loops end by kill -9
  return 0;
}
