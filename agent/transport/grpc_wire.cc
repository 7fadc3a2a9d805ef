#include "agent/transport/grpc_wire.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fleet::agent {
namespace {

constexpr size_t kPrefixBytes = 5;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string FrameMessage(absl::string_view bytes) {
  std::string out;
  out.reserve(kPrefixBytes + bytes.size());
  uint32_t n = static_cast<uint32_t>(bytes.size());
  out.push_back('\0');
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(bytes.data(), bytes.size());
  return out;
}

absl::Status MessageDeframer::Feed(absl::string_view data,
                                   absl::FunctionRef<void(absl::string_view)> on_message) {
  if (!error_.ok()) return error_;
  while (!data.empty()) {
    if (buffer_.size() < kPrefixBytes) {
      size_t take = std::min(kPrefixBytes - buffer_.size(), data.size());
      buffer_.append(data.data(), take);
      data.remove_prefix(take);
      if (buffer_.size() < kPrefixBytes) break;
      if (buffer_[0] != '\0') {
        error_ = absl::InternalError("the engine sent a compressed message, which was not asked for");
        return error_;
      }
    }
    auto byte = [this](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(buffer_[i])); };
    size_t length = (byte(1) << 24) | (byte(2) << 16) | (byte(3) << 8) | byte(4);
    if (length > max_message_bytes_) {
      error_ = absl::ResourceExhaustedError(absl::StrCat("the engine sent a message of ", length,
                                                         " bytes; at most ", max_message_bytes_,
                                                         " are accepted"));
      return error_;
    }
    size_t have = buffer_.size() - kPrefixBytes;
    if (have == 0 && data.size() >= length) {
      // The whole message is in this chunk: no copy.
      on_message(data.substr(0, length));
      data.remove_prefix(length);
      buffer_.clear();
      continue;
    }
    size_t take = std::min(length - have, data.size());
    buffer_.append(data.data(), take);
    data.remove_prefix(take);
    if (buffer_.size() - kPrefixBytes == length) {
      on_message(absl::string_view(buffer_).substr(kPrefixBytes));
      buffer_.clear();
      buffer_.shrink_to_fit();  // a large schedule's buffer is not kept
    }
  }
  return absl::OkStatus();
}

absl::Status StatusFromTrailers(absl::string_view grpc_status, absl::string_view grpc_message) {
  int code = 0;
  if (!absl::SimpleAtoi(grpc_status, &code) || code < 0 || code > 16) {
    return absl::UnknownError(absl::StrCat("the engine ended the call with grpc-status \"",
                                           absl::CEscape(grpc_status), "\""));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), PercentDecode(grpc_message));
}

std::string PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int high = HexDigit(text[i + 1]);
      int low = HexDigit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace fleet::agent
