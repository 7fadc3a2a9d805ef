#pragma once

// Unit files for tests that hand them to fleetctl: written into a folder of
// the test process's own, removed when it exits.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fleet::test {

// This test process's folder for unit files, under TempDir(): made on first
// use and removed when the process exits, so that runs leave no unit files
// in /tmp.
inline const std::string& UnitFileDir() {
  // Never freed: the exit handler runs after the destructors of statics
  // whose initialization it was registered in, so it must not use one.
  static const std::string* dir = [] {
    auto* made = new std::string(absl::StrCat(::testing::TempDir(), "/fleet-test-units-", getpid()));
    std::filesystem::create_directories(*made);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(UnitFileDir(), ignored);
    });
    return made;
  }();
  return *dir;
}

// Writes `contents` to UnitFileDir()/NAME and returns the path.
inline std::string WriteUnit(const std::string& name, const std::string& contents) {
  std::string path = absl::StrCat(UnitFileDir(), "/", name);
  std::ofstream(path) << contents;
  return path;
}

}  // namespace fleet::test
