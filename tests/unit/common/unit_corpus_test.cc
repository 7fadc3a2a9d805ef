// Parses every unit file the machine ships (written by others, hundreds of
// them) and fails on any error: the parser must accept real systemd units.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/unit/unit.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

namespace fs = std::filesystem;

// Unit files directly in `dir`: regular files (or symlinks to them) whose
// name is a unit name. Skipped: directories (*.wants, *.d), units masked by a
// symlink to /dev/null, dangling symlinks, and names that are not unit names.
std::vector<fs::path> UnitFilesIn(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    fs::file_status status = fs::status(entry.path(), ec);  // follows symlinks
    if (ec || !fs::is_regular_file(status)) continue;
    if (entry.is_symlink() && fs::read_symlink(entry.path(), ec) == "/dev/null") continue;
    if (!ParseUnitName(entry.path().filename().string()).ok()) continue;
    out.push_back(entry.path());
  }
  return out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

TEST(UnitCorpusTest, EveryUnitFileOfThisMachineParses) {
  int parsed = 0;
  for (const char* dir : {"/lib/systemd/system", "/usr/lib/systemd/user"}) {
    for (const fs::path& path : UnitFilesIn(dir)) {
      absl::StatusOr<ParsedUnit> unit = ParseUnit(path.filename().string(), ReadFile(path));
      EXPECT_TRUE(unit.ok()) << path << ": " << unit.status();
      ++parsed;
    }
  }
  if (parsed == 0) GTEST_SKIP() << "no systemd unit files on this machine";
  // Debian 12 with systemd ships a couple of hundred; a handful means the
  // directory walk is broken, not that the machine is small.
  EXPECT_GT(parsed, 50);
}

}  // namespace
}  // namespace fleet
