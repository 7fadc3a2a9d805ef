// libFuzzer target for the API's unit-create path: Engine::CreateUnit, in
// process, on an EmbeddedStore in a temporary directory (FakeClock, default
// EngineOptions), with requests built from the fuzz input. After each request
// it checks what a client relies on and traps when it breaks:
//   - a refused request changes nothing: ListUnits is the same before and
//     after, and its code is one a client can act on (INVALID_ARGUMENT,
//     ALREADY_EXISTS, FAILED_PRECONDITION) with a message;
//   - an accepted unit reads back (GetUnit) with exactly the name and contents
//     sent and the desired state asked for (or kept), and no other unit moved;
//   - the engine never crashes (ASan/UBSan findings are crashes too).
//
// Input format. An input that starts with '!' is a request:
//   '!' FLAGS LEN_LO LEN_HI NAME[LEN] CONTENTS...
// FLAGS bits 0-2: desired state 0-3 as in the proto, 4-7 values the proto does
// not know; bit 3: replace; bit 4: the name is "base.service" (a unit stored
// before every input) and no NAME bytes follow; bit 5: send the request twice.
// LEN (little endian, at most 1024) counts NAME's bytes. Any other input is the
// contents of a unit named "seed.service" (so unit files are seeds as they are).
//
// State: one engine per process (creating a store per input costs a directory
// and its files); after each input every unit but base.service is destroyed and
// base.service is put back as it was, so inputs do not depend on each other.
// The directory is on /dev/shm when there is one (fsync costs nothing there).

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/clock.h"
#include "engine/engine.h"
#include "engine/store/embedded_store.h"
#include "fleet/v1/fleet.pb.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

using fleet::v1::CreateUnitRequest;
using fleet::v1::ListUnitsResponse;

constexpr char kBaseName[] = "base.service";
constexpr char kBaseContents[] =
    "[Unit]\nDescription=stored before every input\n[Service]\nExecStart=/bin/sleep 1000\n"
    "[X-Fleet]\nMachineMetadata=role=base\n";
constexpr size_t kMaxNameBytes = 1024;

// Fails the run (libFuzzer reports a crash with the input) when `ok` is false.
void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// The engine and its store, made once per process.
class Harness {
 public:
  Harness() {
    std::filesystem::path parent = std::filesystem::is_directory("/dev/shm")
                                       ? "/dev/shm"
                                       : std::filesystem::temp_directory_path();
    std::string pattern = (parent / "unit_create_fuzzer_XXXXXX").string();
    Check(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
    fleet::EmbeddedStoreOptions options;
    options.dir = dir_;
    options.clock = &clock_;
    // Nothing watches: a short history keeps the store's memory flat, so
    // libFuzzer's per-input leak check (run when an input allocates more than
    // it frees) stays the exception.
    options.watch_history_events = 64;
    absl::StatusOr<std::unique_ptr<fleet::EmbeddedStore>> store =
        fleet::EmbeddedStore::Open(options);
    Check(store.ok());
    store_ = std::move(*store);
    absl::StatusOr<std::unique_ptr<fleet::Engine>> engine =
        fleet::Engine::Create(store_.get(), &clock_, fleet::EngineOptions());
    Check(engine.ok());
    engine_ = std::move(*engine);
    PutBase();
  }
  ~Harness() {
    engine_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  fleet::Engine& engine() { return *engine_; }

  ListUnitsResponse ListAll() {
    fleet::v1::ListUnitsRequest request;
    request.set_page_size(fleet::kMaxPageSize);
    absl::StatusOr<ListUnitsResponse> units = engine_->ListUnits(request);
    Check(units.ok());
    return *units;
  }

  // Destroys every unit but base.service and puts base.service back as it was.
  void Reset() {
    const ListUnitsResponse units = ListAll();
    for (const fleet::v1::Unit& unit : units.units()) {
      if (unit.name() != kBaseName) Check(engine_->DestroyUnit(unit.name()).ok());
    }
    PutBase();
  }

 private:
  // Stores base.service as every input finds it (a no-op when it is so).
  void PutBase() {
    CreateUnitRequest base;
    base.set_name(kBaseName);
    base.set_contents(kBaseContents);
    base.set_desired_state(fleet::v1::DESIRED_STATE_LOADED);
    base.set_replace(true);
    Check(engine_->CreateUnit(base).ok());
  }

  std::filesystem::path dir_;
  fleet::FakeClock clock_;
  std::unique_ptr<fleet::EmbeddedStore> store_;
  std::unique_ptr<fleet::Engine> engine_;
};

Harness& TheHarness() {
  static Harness harness;
  return harness;
}

struct Input {
  CreateUnitRequest request;
  bool twice = false;
};

Input Decode(std::string_view data) {
  Input input;
  if (data.empty() || data[0] != '!' || data.size() < 4) {
    input.request.set_name("seed.service");
    input.request.set_contents(std::string(data));
    return input;
  }
  const auto flags = static_cast<unsigned char>(data[1]);
  const int state = flags & 7;
  // 4-7: values the proto does not define, as a hostile client may send.
  constexpr int kUnknownStates[] = {4, 99, -1, 1 << 30};
  input.request.set_desired_state(
      static_cast<fleet::v1::DesiredState>(state < 4 ? state : kUnknownStates[state - 4]));
  input.request.set_replace((flags & 8) != 0);
  input.twice = (flags & 32) != 0;
  data.remove_prefix(2);
  size_t length = static_cast<unsigned char>(data[0]) | (static_cast<unsigned char>(data[1]) << 8);
  data.remove_prefix(2);
  if ((flags & 16) != 0) {
    input.request.set_name(kBaseName);
  } else {
    length = std::min({length, kMaxNameBytes, data.size()});
    input.request.set_name(std::string(data.substr(0, length)));
    data.remove_prefix(length);
  }
  input.request.set_contents(std::string(data));
  return input;
}

bool SameUnits(const ListUnitsResponse& a, const ListUnitsResponse& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// The units of `list` but `name`.
ListUnitsResponse Without(const ListUnitsResponse& list, const std::string& name) {
  ListUnitsResponse out;
  for (const fleet::v1::Unit& unit : list.units()) {
    if (unit.name() != name) *out.add_units() = unit;
  }
  return out;
}

const fleet::v1::Unit* Find(const ListUnitsResponse& list, const std::string& name) {
  for (const fleet::v1::Unit& unit : list.units()) {
    if (unit.name() == name) return &unit;
  }
  return nullptr;
}

// Sends `request` once and checks the invariants against the state before.
void CreateAndCheck(Harness& harness, const CreateUnitRequest& request) {
  const ListUnitsResponse before = harness.ListAll();
  const fleet::v1::Unit* existing = Find(before, request.name());
  absl::StatusOr<fleet::v1::CreateUnitResponse> response = harness.engine().CreateUnit(request);
  const ListUnitsResponse after = harness.ListAll();
  if (!response.ok()) {
    const absl::StatusCode code = response.status().code();
    Check(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kAlreadyExists ||
          code == absl::StatusCode::kFailedPrecondition);
    Check(!response.status().message().empty());
    Check(SameUnits(before, after));
    // Another unit's name with other contents is refused unless asked to replace.
    if (code == absl::StatusCode::kAlreadyExists) Check(existing != nullptr && !request.replace());
    return;
  }
  absl::StatusOr<fleet::v1::Unit> stored = harness.engine().GetUnit(request.name());
  Check(stored.ok());
  Check(stored->name() == request.name());
  Check(stored->contents() == request.contents() ||
        (existing != nullptr && stored->contents() == existing->contents() &&
         stored->hash() == existing->hash()));  // same hash: the stored file is kept
  Check(stored->hash().size() == 40);
  Check(response->unit().name() == request.name() && response->unit().hash() == stored->hash());
  Check(response->created() == (existing == nullptr));
  const fleet::v1::DesiredState kept =
      existing != nullptr ? existing->desired_state() : fleet::v1::DESIRED_STATE_INACTIVE;
  Check(stored->desired_state() == (request.desired_state() == fleet::v1::DESIRED_STATE_UNSPECIFIED
                                        ? kept
                                        : request.desired_state()));
  if (existing != nullptr && existing->hash() != stored->hash()) Check(request.replace());
  Check(SameUnits(Without(before, request.name()), Without(after, request.name())));
  Check(after.units_size() == before.units_size() + (existing == nullptr ? 1 : 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& harness = TheHarness();
  Input input = Decode(std::string_view(reinterpret_cast<const char*>(data), size));
  CreateAndCheck(harness, input.request);
  if (input.twice) CreateAndCheck(harness, input.request);
  harness.Reset();
  return 0;
}
