#include "engine/store/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/store/crc32c.h"

namespace fleet::store {
namespace {

void PutFixed32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}

uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

// Returns the payload length when a valid frame starts at `offset`, or -1.
int64_t ValidFrameAt(absl::string_view data, size_t offset) {
  if (data.size() - offset < kFrameHeaderSize) return -1;
  const char* h = data.data() + offset;
  if (UnmaskCrc(GetFixed32(h + 4)) != Crc32c(absl::string_view(h, 4))) return -1;
  uint32_t length = GetFixed32(h);
  if (length > kMaxFramePayload || length > data.size() - offset - kFrameHeaderSize) return -1;
  if (UnmaskCrc(GetFixed32(h + 8)) != Crc32c(absl::string_view(h + kFrameHeaderSize, length))) {
    return -1;
  }
  return length;
}

}  // namespace

void AppendFrame(absl::string_view payload, std::string* out) {
  std::string length;
  PutFixed32(static_cast<uint32_t>(payload.size()), &length);
  out->append(length);
  PutFixed32(MaskCrc(Crc32c(length)), out);
  PutFixed32(MaskCrc(Crc32c(payload)), out);
  out->append(payload.data(), payload.size());
}

absl::StatusOr<ScannedFrames> ScanFrames(absl::string_view file_name, absl::string_view data) {
  ScannedFrames result;
  size_t offset = 0;
  while (offset < data.size()) {
    int64_t length = ValidFrameAt(data, offset);
    if (length < 0) break;
    result.payloads.push_back(data.substr(offset + kFrameHeaderSize, length));
    result.offsets.push_back(offset);
    offset += kFrameHeaderSize + length;
  }
  result.valid_bytes = offset;
  if (offset == data.size()) return result;
  // Damage at `offset`: a torn tail only if nothing valid follows.
  for (size_t next = offset + 1; next + kFrameHeaderSize <= data.size(); ++next) {
    if (ValidFrameAt(data, next) >= 0) {
      return absl::DataLossError(absl::StrCat(
          "store file ", file_name, ": corrupt record at byte offset ", offset,
          " followed by a valid record at byte offset ", next,
          "; refusing to start (restore the file or remove the damaged record by hand)"));
    }
  }
  result.torn_tail = true;
  return result;
}

void Encoder::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(v));
}

void Encoder::Bytes(absl::string_view s) {
  Varint(s.size());
  out_->append(s.data(), s.size());
}

bool Decoder::Byte(uint8_t* b) {
  if (in_.empty()) return false;
  *b = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool Decoder::Varint(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (in_.empty()) return false;
    auto byte = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool Decoder::Signed(int64_t* v) {
  uint64_t u;
  if (!Varint(&u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

bool Decoder::Bytes(std::string* s) {
  absl::string_view view;
  if (!View(&view)) return false;
  s->assign(view.data(), view.size());
  return true;
}

bool Decoder::View(absl::string_view* s) {
  uint64_t n;
  if (!Varint(&n) || n > in_.size()) return false;
  *s = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

absl::Status ErrnoStatus(int err, absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read", path);
    }
    if (n == 0) break;
    data.append(buf, n);
  }
  ::close(fd);
  return data;
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write", path);
    data.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status SyncFd(int fd, const std::string& path) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "fdatasync", path);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  absl::Status status;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      status = ErrnoStatus(errno, "fsync directory", dir);
      break;
    }
  }
  ::close(fd);
  return status;
}

}  // namespace fleet::store
