#pragma once

// Building blocks of the embedded store's files (write-ahead log segments and
// snapshots): checksummed frames, a small binary encoding, and the file system
// calls with their errors turned into absl::Status. Pure helpers except the
// ones named for files; all are thread-compatible (no shared state).
//
// Frame layout (all integers little-endian):
//   u32 payload length | u32 masked CRC-32C of the 4 length bytes |
//   u32 masked CRC-32C of the payload | payload
// The header has its own checksum so that a scan can tell a damaged record
// from a valid one at any byte offset without trusting a damaged length.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleet::store {

inline constexpr size_t kFrameHeaderSize = 12;
// Frames larger than this are refused when written and treated as damage when read.
inline constexpr uint32_t kMaxFramePayload = 256u << 20;

// Appends one frame holding `payload` to `out`.
void AppendFrame(absl::string_view payload, std::string* out);

struct ScannedFrames {
  std::vector<absl::string_view> payloads;  // views into the scanned data
  std::vector<uint64_t> offsets;            // byte offset of each frame
  uint64_t valid_bytes = 0;                 // end of the last valid frame: the file's good length
  bool torn_tail = false;  // bytes after valid_bytes were damage with nothing valid after
};

// Splits `data` (the contents of the file named `file_name`) into frames. A
// damaged frame with no valid frame anywhere after it is a torn tail: the
// result stops before it and says so. A damaged frame followed by a valid one
// is DATA_LOSS naming the file and the byte offset of the damage.
absl::StatusOr<ScannedFrames> ScanFrames(absl::string_view file_name, absl::string_view data);

// Appends the encodings of integers and byte strings to a string.
class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}
  void Byte(uint8_t b) { out_->push_back(static_cast<char>(b)); }
  void Varint(uint64_t v);
  void Signed(int64_t v) { Varint(static_cast<uint64_t>(v)); }
  void Bytes(absl::string_view s);  // varint length, then the bytes

 private:
  std::string* out_;
};

// Reads what Encoder wrote. Every getter returns false (and leaves the output
// unspecified) when the input ends early or is malformed.
class Decoder {
 public:
  explicit Decoder(absl::string_view in) : in_(in) {}
  bool Byte(uint8_t* b);
  bool Varint(uint64_t* v);
  bool Signed(int64_t* v);
  bool Bytes(std::string* s);
  // Bytes without the copy: `s` views the input (valid while the input is).
  bool View(absl::string_view* s);
  bool done() const { return in_.empty(); }

 private:
  absl::string_view in_;
};

// File helpers. Errors carry the path and strerror; their code is INTERNAL
// unless stated.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
absl::Status WriteAll(int fd, absl::string_view data, const std::string& path);
absl::Status SyncFd(int fd, const std::string& path);  // fdatasync
absl::Status SyncDir(const std::string& dir);          // fsync of the directory itself
absl::Status ErrnoStatus(int err, absl::string_view what, const std::string& path);

}  // namespace fleet::store
