// The gRPC wire format of the agent's engine link: framing, cutting DATA
// bytes into messages wherever HTTP/2 splits them, and the call's status.

#include "agent/transport/grpc_wire.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(GrpcWireTest, FrameIsUncompressedFlagAndBigEndianLength) {
  std::string framed = FrameMessage(std::string(300, 'x'));
  ASSERT_EQ(framed.size(), 305u);
  EXPECT_EQ(framed.substr(0, 5), std::string("\0\0\0\x01\x2c", 5));
  EXPECT_EQ(FrameMessage(""), std::string(5, '\0'));
}

TEST(GrpcWireTest, MessagesSplitAnywhereArriveWholeAndInOrder) {
  const std::vector<std::string> sent = {"first", "", std::string(70000, 'b'), "last"};
  std::string stream;
  for (const std::string& m : sent) stream += FrameMessage(m);
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{5}, size_t{16384}, stream.size()}) {
    MessageDeframer deframer(1 << 20);
    std::vector<std::string> got;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      absl::Status s = deframer.Feed(absl::string_view(stream).substr(at, chunk),
                                     [&got](absl::string_view m) { got.emplace_back(m); });
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ(got, sent) << "chunks of " << chunk;
    EXPECT_TRUE(deframer.AtBoundary());
  }
}

TEST(GrpcWireTest, MessageOverTheLimitIsRefusedAndSoIsEverythingAfter) {
  MessageDeframer deframer(100);
  std::vector<std::string> got;
  auto keep = [&got](absl::string_view m) { got.emplace_back(m); };
  ASSERT_TRUE(deframer.Feed(FrameMessage("ok"), keep).ok());
  absl::Status s = deframer.Feed(FrameMessage(std::string(101, 'x')), keep);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("a message of 101 bytes; at most 100"));
  EXPECT_FALSE(deframer.Feed(FrameMessage("later"), keep).ok());
  EXPECT_THAT(got, ElementsAre("ok"));
}

TEST(GrpcWireTest, CompressedMessageIsRefused) {
  MessageDeframer deframer(100);
  std::string framed = FrameMessage("zz");
  framed[0] = 1;
  absl::Status s = deframer.Feed(framed, [](absl::string_view) { ADD_FAILURE() << "delivered"; });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("compressed"));
}

TEST(GrpcWireTest, StatusComesFromTheTrailers) {
  absl::Status s = StatusFromTrailers("14", "not the leader%3B leader is 10.0.0.1:2379");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "not the leader; leader is 10.0.0.1:2379");
  EXPECT_TRUE(StatusFromTrailers("0", "").ok());
  for (const char* odd : {"17", "-1", "abc", ""}) {
    absl::Status bad = StatusFromTrailers(odd, "x");
    EXPECT_EQ(bad.code(), absl::StatusCode::kUnknown) << odd;
    EXPECT_THAT(bad.message(), HasSubstr("grpc-status")) << odd;
  }
}

TEST(GrpcWireTest, PercentDecodingKeepsWhatIsMalformed) {
  EXPECT_EQ(PercentDecode("%41%62c"), "Abc");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
  EXPECT_EQ(PercentDecode("%E2%9C%93"), "\xE2\x9C\x93");
}

}  // namespace
}  // namespace fleet::agent
