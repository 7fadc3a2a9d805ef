#pragma once

// CRC-32C (Castagnoli), the checksum of every record of the embedded store's
// write-ahead log and snapshots. Uses the SSE4.2 instruction when the CPU has
// it, a table otherwise; both give the same result. Pure, thread-safe.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace fleet::store {

// Returns the CRC-32C of `data`, continuing from `crc` (0 to start).
uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);

// A CRC stored next to the data it covers is masked (as leveldb does), so that
// a checksum of data that itself contains checksums, or a run of zero bytes,
// does not look valid by accident.
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t UnmaskCrc(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace fleet::store
