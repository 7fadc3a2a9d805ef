#include "engine/unit_status_wire.h"

#include <utility>

namespace fleet {
namespace {

namespace v1 = fleet::v1;

// Protobuf's encoding (protobuf.dev/programming-guides/encoding): a field is
// a tag (field number << 3 | wire type), then a varint or a length and bytes.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

void PutVarint(uint64_t value, std::string* out) {
  for (; value >= 0x80; value >>= 7) out->push_back(static_cast<char>(value | 0x80));
  out->push_back(static_cast<char>(value));
}

uint32_t Tag(int field, uint32_t wire_type) { return static_cast<uint32_t>(field) << 3 | wire_type; }

// int32 and enum values go out sign-extended to 64 bits, as protobuf sends them.
uint64_t Signed(int64_t value) { return static_cast<uint64_t>(value); }

// proto3: a scalar field that holds its default is not written.
void PutVarintField(int field, uint64_t value, std::string* out) {
  if (value == 0) return;
  PutVarint(Tag(field, kVarint), out);
  PutVarint(value, out);
}
// A message field is written when present, even when empty.
void PutBytesField(int field, absl::string_view bytes, std::string* out) {
  PutVarint(Tag(field, kLengthDelimited), out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}
void PutStringField(int field, absl::string_view value, std::string* out) {
  if (!value.empty()) PutBytesField(field, value, out);
}

void PutState(const UnitStateFields& s, std::string* out) {
  using S = v1::UnitState;
  PutStringField(S::kNameFieldNumber, s.name, out);
  PutStringField(S::kMachineIdFieldNumber, s.machine_id, out);
  PutStringField(S::kLoadStateFieldNumber, s.load_state, out);
  PutStringField(S::kActiveStateFieldNumber, s.active_state, out);
  PutStringField(S::kSubStateFieldNumber, s.sub_state, out);
  PutVarintField(S::kMainPidFieldNumber, s.main_pid, out);
  PutVarintField(S::kSinceUnixMicrosFieldNumber, Signed(s.since_unix_micros), out);
  PutVarintField(S::kExitStatusFieldNumber, Signed(s.exit_status), out);
  PutStringField(S::kUnitHashFieldNumber, s.unit_hash, out);
}

}  // namespace

void FillUnitStatus(const UnitStatusFields& fields, v1::UnitStatus* status) {
  status->set_name(std::string(fields.name));
  status->set_desired_state(fields.desired_state);
  status->set_hash(std::string(fields.hash));
  status->set_machine_id(std::string(fields.machine_id));
  status->set_unscheduled_reason(std::string(fields.unscheduled_reason));
  if (!fields.state.has_value()) return;
  const UnitStateFields& s = *fields.state;
  v1::UnitState* state = status->mutable_state();
  state->set_name(std::string(s.name));
  state->set_machine_id(std::string(s.machine_id));
  state->set_load_state(std::string(s.load_state));
  state->set_active_state(std::string(s.active_state));
  state->set_sub_state(std::string(s.sub_state));
  state->set_main_pid(s.main_pid);
  state->set_since_unix_micros(s.since_unix_micros);
  state->set_exit_status(s.exit_status);
  state->set_unit_hash(std::string(s.unit_hash));
}

void UnitStatusPageWriter::Add(const UnitStatusFields& f) {
  using S = v1::UnitStatus;
  // A nested message's length comes before its bytes: each is written to a
  // scratch buffer first, then appended after its length.
  entry_.clear();
  PutStringField(S::kNameFieldNumber, f.name, &entry_);
  PutVarintField(S::kDesiredStateFieldNumber, Signed(f.desired_state), &entry_);
  PutStringField(S::kHashFieldNumber, f.hash, &entry_);
  PutStringField(S::kMachineIdFieldNumber, f.machine_id, &entry_);
  PutStringField(S::kUnscheduledReasonFieldNumber, f.unscheduled_reason, &entry_);
  if (f.state.has_value()) {
    state_.clear();
    PutState(*f.state, &state_);
    PutBytesField(S::kStateFieldNumber, state_, &entry_);
  }
  PutBytesField(v1::ListUnitStatesResponse::kUnitsFieldNumber, entry_, &wire_);
  ++size_;
}

std::string UnitStatusPageWriter::Finish(absl::string_view next_page_token) && {
  PutStringField(v1::ListUnitStatesResponse::kNextPageTokenFieldNumber, next_page_token, &wire_);
  return std::move(wire_);
}

}  // namespace fleet
