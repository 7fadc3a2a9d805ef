#pragma once

// The gRPC wire format over HTTP/2, the parts a client of one streaming call
// needs (see gRPC's PROTOCOL-HTTP2.md): length-prefixed messages and the
// status in the trailers. Pure; tested alone.

#include <cstddef>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fleet::agent {

// A message as sent: flag 0 (not compressed), 4-byte big-endian length, bytes.
std::string FrameMessage(absl::string_view bytes);

// Cuts a stream of DATA bytes into messages. A message longer than
// `max_message_bytes` or a compressed one (none was asked for) is an error,
// and so is everything after it.
class MessageDeframer {
 public:
  explicit MessageDeframer(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Hands every message completed by `data` to `on_message`, in order.
  absl::Status Feed(absl::string_view data, absl::FunctionRef<void(absl::string_view)> on_message);

  // True between messages (nothing of a next one received yet).
  bool AtBoundary() const { return buffer_.empty(); }

 private:
  const size_t max_message_bytes_;
  std::string buffer_;  // the prefix and what has arrived of the current message
  absl::Status error_;
};

// The call's status from its grpc-status and grpc-message trailers
// (grpc-message is percent-encoded). A grpc-status that is not a number from
// 0 to 16 is UNKNOWN, naming what came.
absl::Status StatusFromTrailers(absl::string_view grpc_status, absl::string_view grpc_message);

// grpc-message's percent-decoding: %XX becomes the byte; anything malformed
// is kept as it came.
std::string PercentDecode(absl::string_view text);

}  // namespace fleet::agent
