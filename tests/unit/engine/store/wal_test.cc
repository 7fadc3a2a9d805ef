#include "engine/store/wal.h"

#include "engine/store/crc32c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // Continuing a CRC gives the CRC of the concatenation.
  EXPECT_EQ(Crc32c("56789", Crc32c("1234")), 0xe3069283u);
  std::string long_input(1000, 'a');
  EXPECT_EQ(Crc32c(long_input.substr(500), Crc32c(long_input.substr(0, 500))), Crc32c(long_input));
  EXPECT_EQ(UnmaskCrc(MaskCrc(0x12345678u)), 0x12345678u);
}

TEST(FrameTest, ScanReturnsWhatWasAppended) {
  std::string data;
  AppendFrame("one", &data);
  AppendFrame("", &data);
  AppendFrame("three", &data);
  absl::StatusOr<ScannedFrames> f = ScanFrames("f", data);
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(f->payloads, ElementsAre("one", "", "three"));
  EXPECT_THAT(f->offsets, ElementsAre(0u, 15u, 27u));
  EXPECT_EQ(f->valid_bytes, data.size());
  EXPECT_FALSE(f->torn_tail);
}

TEST(FrameTest, AllZeroBytesAreNotAValidFrame) {
  std::string data;
  AppendFrame("one", &data);
  size_t good = data.size();
  data.append(64, '\0');
  absl::StatusOr<ScannedFrames> f = ScanFrames("f", data);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->valid_bytes, good);
  EXPECT_TRUE(f->torn_tail);
}

TEST(FrameTest, DamageFollowedByAValidFrameIsDataLoss) {
  std::string data;
  AppendFrame("one", &data);
  AppendFrame("two", &data);
  AppendFrame("three", &data);
  data[15 + 12] ^= 1;  // payload of "two"
  absl::StatusOr<ScannedFrames> f = ScanFrames("the-file", data);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(f.status().message(), HasSubstr("the-file"));
  EXPECT_THAT(f.status().message(), HasSubstr("byte offset 15"));
}

TEST(CodecTest, RoundTrips) {
  std::string out;
  Encoder e(&out);
  e.Byte(7);
  e.Varint(0);
  e.Varint(300);
  e.Signed(-5);
  e.Signed(INT64_MAX);
  e.Bytes("hello");
  e.Bytes("");
  Decoder d(out);
  uint8_t b;
  uint64_t v1, v2;
  int64_t s1, s2;
  std::string t1, t2;
  ASSERT_TRUE(d.Byte(&b) && d.Varint(&v1) && d.Varint(&v2) && d.Signed(&s1) && d.Signed(&s2) &&
              d.Bytes(&t1) && d.Bytes(&t2));
  EXPECT_EQ(b, 7);
  EXPECT_EQ(v1, 0u);
  EXPECT_EQ(v2, 300u);
  EXPECT_EQ(s1, -5);
  EXPECT_EQ(s2, INT64_MAX);
  EXPECT_EQ(t1, "hello");
  EXPECT_EQ(t2, "");
  EXPECT_TRUE(d.done());
  EXPECT_FALSE(d.Byte(&b));
  Decoder short_bytes(
      absl::string_view("\x05"
                        "ab",
                        3));
  EXPECT_FALSE(short_bytes.Bytes(&t1));
}

}  // namespace
}  // namespace fleet::store
