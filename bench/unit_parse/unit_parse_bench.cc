// Benchmark: parse the machine's unit-file corpus (/lib/systemd/system and
// /usr/lib/systemd/user, or the directories given as arguments) with
// ParseUnit, and print units/s and MB/s as the median of several runs.
// Prints figures only; it never passes or fails on time.
//
//   bench_unit_parse [--runs=N] [DIR...]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/unit/unit.h"

namespace {

namespace fs = std::filesystem;

struct UnitFileData {
  std::string name;
  std::string contents;
};

std::vector<UnitFileData> LoadCorpus(const std::vector<std::string>& dirs) {
  std::vector<UnitFileData> out;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
      if (!fs::is_regular_file(fs::status(entry.path(), ec)) || ec) continue;
      std::string name = entry.path().filename().string();
      if (!fleet::ParseUnitName(name).ok()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::ostringstream contents;
      contents << in.rdbuf();
      if (contents.str().empty()) continue;
      out.push_back({std::move(name), contents.str()});
    }
  }
  return out;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 7;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--runs=")) {
      runs = std::max(1, std::atoi(argv[i] + 7));
    } else {
      dirs.emplace_back(arg);
    }
  }
  if (dirs.empty()) dirs = {"/lib/systemd/system", "/usr/lib/systemd/user"};

  std::vector<UnitFileData> corpus = LoadCorpus(dirs);
  if (corpus.empty()) {
    std::fprintf(stderr, "no unit files found\n");
    return 1;
  }
  size_t bytes = 0;
  for (const UnitFileData& unit : corpus) bytes += unit.contents.size();

  // Repeat the corpus within one run so a run lasts long enough to time.
  const int passes = std::max<int>(1, static_cast<int>(20'000'000 / std::max<size_t>(bytes, 1)));
  std::vector<double> units_per_s, mb_per_s;
  size_t rejected = 0;
  for (int run = 0; run < runs; ++run) {
    rejected = 0;
    auto start = std::chrono::steady_clock::now();
    for (int pass = 0; pass < passes; ++pass) {
      for (const UnitFileData& unit : corpus) {
        rejected += !fleet::ParseUnit(unit.name, unit.contents).ok();
      }
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    units_per_s.push_back(static_cast<double>(corpus.size()) * passes / seconds);
    mb_per_s.push_back(static_cast<double>(bytes) * passes / seconds / 1e6);
  }
  std::printf(
      "unit_parse: corpus %zu files, %zu bytes (%d passes per run, %d runs, %zu rejected)\n",
      corpus.size(), bytes, passes, runs, rejected);
  std::printf("unit_parse: median %.0f units/s, %.1f MB/s (min %.0f, max %.0f units/s)\n",
              Median(units_per_s), Median(mb_per_s),
              *std::min_element(units_per_s.begin(), units_per_s.end()),
              *std::max_element(units_per_s.begin(), units_per_s.end()));
  return 0;
}
