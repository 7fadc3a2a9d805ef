// libFuzzer target for the unit-file parser: any bytes, as a unit file of a
// template instance, must give either a ParsedUnit or INVALID_ARGUMENT errors
// with sensible positions, never a crash, a sanitizer finding or a hang.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/unit/unit.h"

namespace {

// Fails the run (libFuzzer reports a crash with the input) when `ok` is false.
void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view contents(reinterpret_cast<const char*>(data), size);

  fleet::UnitFileParse parse = fleet::ParseUnitFileCollectingErrors(contents);
  Check(parse.file.contents() == contents);
  int lines = 1;
  for (char c : contents) lines += c == '\n';
  for (const fleet::UnitError& error : parse.errors) {
    Check(error.line >= 0 && error.line <= lines && error.column >= 0 && !error.message.empty());
  }
  for (const fleet::UnitOption& option : parse.file.options()) {
    Check(!option.name.empty() && option.line >= 1 && option.line <= lines);
  }
  Check(fleet::ParseUnitFile(contents).ok() == parse.errors.empty());

  absl::StatusOr<fleet::ParsedUnit> unit = fleet::ParseUnit("fuzz@8080.service", contents);
  std::vector<fleet::UnitError> verify = fleet::VerifyUnit("fuzz@8080.service", contents);
  Check(unit.ok() == verify.empty());
  if (unit.ok()) {
    Check(unit->hash.size() == 40);
    Check(unit->hash == fleet::FleetHash(unit->file));
    Check(!unit->file.options().empty());
  } else {
    Check(unit.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
