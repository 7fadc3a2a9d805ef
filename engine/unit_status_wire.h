#pragma once

// A unit's entry of ListUnitStates (fleet.v1.UnitStatus) as views into the
// engine's state, and the two forms it is sent in: a message (one entry, as
// the relay's route has it) and the wire bytes of a whole
// ListUnitStatesResponse page, written entry by entry without messages.
//
// Why the page is written by hand: a listing has one entry per unit and
// machine it runs on (230,000 in bench/scale's large preset). Built as
// messages, each entry made and freed six heap strings (names, machine ids
// and hashes are longer than std::string's inline 15 chars) and two
// messages, then was serialized; that was most of the engine's CPU while a
// client polled, and a full listing took 1.45 s. Here an entry is a few
// appends to one buffer. The bytes are those protobuf's serializer gives for
// the same message: fields in number order, proto3 defaults left out (the
// unit test compares them).

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "fleet/v1/fleet.pb.h"

namespace fleet {

// fleet.v1.UnitState; empty strings and zeros are the defaults.
struct UnitStateFields {
  absl::string_view name = {};
  absl::string_view machine_id = {};
  absl::string_view load_state = {};
  absl::string_view active_state = {};
  absl::string_view sub_state = {};
  uint32_t main_pid = 0;
  int64_t since_unix_micros = 0;
  int32_t exit_status = 0;
  absl::string_view unit_hash = {};
};

// fleet.v1.UnitStatus.
struct UnitStatusFields {
  absl::string_view name = {};
  fleet::v1::DesiredState desired_state = fleet::v1::DESIRED_STATE_UNSPECIFIED;
  absl::string_view hash = {};
  absl::string_view machine_id = {};
  absl::string_view unscheduled_reason = {};
  std::optional<UnitStateFields> state = {};  // absent until the agent reported
};

// The message form of one entry. `status` starts empty.
void FillUnitStatus(const UnitStatusFields& fields, fleet::v1::UnitStatus* status);

// Writes one serialized fleet.v1.ListUnitStatesResponse.
class UnitStatusPageWriter {
 public:
  void Add(const UnitStatusFields& fields);
  // Entries added so far.
  int size() const { return size_; }
  // The page: the entries added, then `next_page_token` ("" on the last page).
  std::string Finish(absl::string_view next_page_token) &&;

 private:
  std::string wire_;
  int size_ = 0;
  std::string entry_;  // scratch: the entry being added, then its state
  std::string state_;
};

}  // namespace fleet
