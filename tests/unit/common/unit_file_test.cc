#include "common/unit/unit_file.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// (section, key, value, line) of every option, to compare in one go.
struct Flat {
  std::string section, name, value;
  int line;
  bool operator==(const Flat&) const = default;
};

std::vector<Flat> Flatten(const UnitFile& file) {
  std::vector<Flat> out;
  for (const UnitOption& o : file.options()) out.push_back({o.section, o.name, o.value, o.line});
  return out;
}

void PrintTo(const Flat& f, std::ostream* os) {
  *os << "[" << f.section << "] " << f.name << "=" << f.value << " @" << f.line;
}

UnitFile MustParse(std::string_view contents) {
  absl::StatusOr<UnitFile> file = ParseUnitFile(contents);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *file : UnitFile("", {}, {});
}

std::vector<UnitError> ErrorsOf(std::string_view contents) {
  return ParseUnitFileCollectingErrors(contents).errors;
}

TEST(UnitFileTest, SectionsKeysCommentsAndWhitespace) {
  UnitFile file = MustParse(
      "# leading comment\n"
      "[Unit]\n"
      "Description=  Hello world  \n"
      "; another comment\n"
      "   After = network.target\n"
      "\n"
      "  [Service]  \n"
      "ExecStart=/bin/echo a=b\n");
  EXPECT_THAT(Flatten(file), ElementsAre(Flat{"Unit", "Description", "Hello world", 3},
                                         Flat{"Unit", "After", "network.target", 5},
                                         Flat{"Service", "ExecStart", "/bin/echo a=b", 8}));
  EXPECT_THAT(file.sections(), ElementsAre("Unit", "Service"));
}

TEST(UnitFileTest, KeepsContentsByteForByte) {
  std::string contents = "[Service]\r\n# c\r\nExecStart=/bin/true  \r\n\r\n";
  UnitFile file = MustParse(contents);
  EXPECT_EQ(file.contents(), contents);
}

TEST(UnitFileTest, CrlfLineEnds) {
  UnitFile file = MustParse("[Unit]\r\nDescription=x\r\n[Service]\r\nExecStart=/bin/true\r\n");
  EXPECT_THAT(Flatten(file), ElementsAre(Flat{"Unit", "Description", "x", 2},
                                         Flat{"Service", "ExecStart", "/bin/true", 4}));
}

TEST(UnitFileTest, RepeatedKeysKeptInOrderAndEmptyAssignmentResets) {
  UnitFile file = MustParse(
      "[Service]\n"
      "ExecStartPre=/bin/a\n"
      "ExecStartPre=/bin/b\n"
      "ExecStartPre=\n"
      "ExecStartPre=/bin/c\n"
      "ExecStartPre=/bin/d\n");
  EXPECT_EQ(file.Find("Service", "ExecStartPre").size(), 5u);
  EXPECT_THAT(file.ListValues("Service", "ExecStartPre"), ElementsAre("/bin/c", "/bin/d"));
  EXPECT_THAT(file.ListValues("Service", "Nothing"), IsEmpty());
}

TEST(UnitFileTest, RepeatedSectionsMerge) {
  UnitFile file = MustParse("[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n");
  EXPECT_THAT(file.sections(), ElementsAre("Unit", "Service"));
  EXPECT_THAT(file.ListValues("Unit", "A"), ElementsAre("1"));
  EXPECT_THAT(file.ListValues("Unit", "C"), ElementsAre("3"));
}

TEST(UnitFileTest, BackslashContinuation) {
  UnitFile file = MustParse(
      "[Service]\n"
      "ExecStart=/bin/sh -c \\\n"
      "  'echo hi'\n"
      "Restart=always\n");
  ASSERT_EQ(file.options().size(), 2u);
  const UnitOption& exec = file.options()[0];
  EXPECT_EQ(exec.value, "/bin/sh -c    'echo hi'");           // systemd: "\" becomes a space
  EXPECT_EQ(exec.fleet_value, "/bin/sh -c \\\n  'echo hi'");  // fleet keeps the lines
  EXPECT_EQ(exec.line, 2);
  EXPECT_EQ(file.options()[1].line, 4);
}

TEST(UnitFileTest, ContinuationEndsAtBlankLineOrEndOfFile) {
  UnitFile file = MustParse("[Service]\nA=x \\\n\nB=y \\");
  ASSERT_EQ(file.options().size(), 2u);
  EXPECT_EQ(file.options()[0].value, "x");
  EXPECT_EQ(file.options()[0].fleet_value, "x \\\n");  // as go-systemd keeps it
  EXPECT_EQ(file.options()[1].value, "y");
  EXPECT_EQ(file.options()[1].fleet_value, "y \\");
}

TEST(UnitFileTest, ABackslashInsideALineIsNoContinuation) {
  UnitFile file = MustParse("[Service]\nExecStart=/bin/sh -c \"echo \\\"a\\\"; true\"\nB=1\n");
  ASSERT_EQ(file.options().size(), 2u);
  EXPECT_EQ(file.options()[0].value, "/bin/sh -c \"echo \\\"a\\\"; true\"");
}

TEST(UnitFileTest, EmptyFileAndCommentsOnlyHaveNoOptions) {
  EXPECT_THAT(MustParse("").options(), IsEmpty());
  EXPECT_THAT(MustParse("# nothing\n\n; here\n").options(), IsEmpty());
}

TEST(UnitFileTest, SizeLimit) {
  std::string line = "X=" + std::string(1000, 'a') + "\n";
  std::string big = "[Service]\n";
  while (big.size() <= kMaxUnitFileSize) big += line;
  std::vector<UnitError> errors = ErrorsOf(big);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 0);
  EXPECT_THAT(errors[0].message, HasSubstr("1 MiB"));

  std::string fits = "[Service]\n";
  while (fits.size() + line.size() <= kMaxUnitFileSize) fits += line;
  EXPECT_THAT(ErrorsOf(fits), IsEmpty());
}

TEST(UnitFileTest, LineLengthLimitIsFleets) {
  // fleet (go-systemd) refuses a line when 2048 bytes hold no line end, so a
  // line of 2047 bytes plus "\n" is the longest accepted.
  std::string ok = "[Service]\nX=" + std::string(2045, 'a') + "\n";
  EXPECT_THAT(ErrorsOf(ok), IsEmpty());
  std::string too_long = "[Service]\nX=" + std::string(2046, 'a') + "\nY=1\n";
  std::vector<UnitError> errors = ErrorsOf(too_long);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_THAT(errors[0].message, HasSubstr("2049 bytes"));
  EXPECT_THAT(errors[0].message, HasSubstr("2048"));
}

TEST(UnitFileTest, InvalidUtf8AndNulRefusedWithColumn) {
  std::vector<UnitError> errors =
      ErrorsOf("[Unit]\nDescription=caf\xc3\n[Service]\nA=\xed\xa0\x80\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].column, 16);
  EXPECT_THAT(errors[0].message, HasSubstr("UTF-8"));
  EXPECT_EQ(errors[1].line, 4);  // a UTF-16 surrogate is not UTF-8
  EXPECT_EQ(errors[1].column, 3);

  errors = ErrorsOf(std::string("[Unit]\nA=x\0y\n", 13));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].column, 4);
  EXPECT_THAT(errors[0].message, HasSubstr("NUL"));

  EXPECT_THAT(ErrorsOf("[Unit]\nDescription=café ☃ \xf0\x9f\x9a\x80\n"), IsEmpty());
}

TEST(UnitFileTest, BadBytesNameTheirOffsetInTheFile) {
  // A client cannot see a stray byte in an editor: the message says where it
  // is in the file (from 0) as well as its line and column.
  struct Case {
    std::string contents;
    int line;
    int column;
    std::string what;
  };
  for (const Case& c : std::vector<Case>{
           {"[Service]\nExecStart=/bin/echo \xff\xfe\n", 2, 21, "at byte 30 of the file (0xff)"},
           {"[Service]\nExecStart=/bin/echo \xe2\x82\n", 2, 21, "at byte 30 of the file (0xe2)"},
           {"[Service]\nExecStart=/bin/echo \xe2\x82", 2, 21, "at byte 30 of the file (0xe2)"},
           {"[Service]\r\nX=\xc0\xaf\r\n", 2, 3, "at byte 13 of the file (0xc0)"},  // overlong "/"
           {"[Service]\nX=\xf4\x90\x80\x80\n", 2, 3, "at byte 12 of the file (0xf4)"},  // > U+10FFFF
           {std::string("[Service]\nX=a\0\n", 15), 2, 4, "NUL byte at byte 13 of the file"},
       }) {
    std::vector<UnitError> errors = ErrorsOf(c.contents);
    ASSERT_EQ(errors.size(), 1u) << absl::CHexEscape(c.contents);
    EXPECT_EQ(errors[0].line, c.line) << absl::CHexEscape(c.contents);
    EXPECT_EQ(errors[0].column, c.column) << absl::CHexEscape(c.contents);
    EXPECT_THAT(errors[0].message, HasSubstr(c.what));
  }
}

TEST(UnitFileTest, CollectsEveryErrorWithLineAndColumn) {
  std::vector<UnitError> errors = ErrorsOf(
      "Orphan=1\n"             // 1: before any section
      "[Unit]\n"               // 2
      "Description=ok\n"       // 3
      "  just words\n"         // 4: no '='
      "=value\n"               // 5: no key
      "[Broken\n"              // 6: header without ']'
      "[Service] extra\n"      // 7: text after the header
      "[]\n"                   // 8: empty section name
      "# comment \\\n"         // 9: comment ending in a backslash
      "[Service]\n"            // 10
      "ExecStart=/bin/true\n"  // 11
  );
  std::vector<std::pair<int, int>> where;
  for (const UnitError& e : errors) where.push_back({e.line, e.column});
  EXPECT_THAT(where, ElementsAre(std::pair(1, 1), std::pair(4, 3), std::pair(5, 1), std::pair(6, 1),
                                 std::pair(7, 1), std::pair(8, 1), std::pair(9, 11)));
  EXPECT_THAT(errors[0].message, HasSubstr("outside of any section"));
  EXPECT_THAT(errors[1].message, HasSubstr("not \"Key=Value\""));
  EXPECT_THAT(errors[2].message, HasSubstr("no key"));
  EXPECT_THAT(errors[6].message, HasSubstr("comment line ends with"));
}

TEST(UnitFileTest, FirstErrorBecomesTheStatus) {
  absl::StatusOr<UnitFile> file = ParseUnitFile("[Unit]\nDescription=x\nbogus\n");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("line 3, column 1: "));
}

TEST(UnitFileTest, CommentInsideContinuationRefused) {
  std::vector<UnitError> errors = ErrorsOf("[Service]\nExecStart=/bin/a \\\n# note\n  --flag\n");
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_THAT(errors[0].message, HasSubstr("comment line inside a value"));
}

TEST(UnitFileTest, FormatUnitError) {
  EXPECT_EQ(FormatUnitError({3, 7, "bad"}), "line 3, column 7: bad");
  EXPECT_EQ(FormatUnitError({3, 0, "bad"}), "line 3: bad");
  EXPECT_EQ(FormatUnitError({0, 0, "bad"}), "bad");
}

// The expected hashes below were computed outside this code, with
//   printf '<serialization>' | sha1sum
// on the serialization go-systemd's unit.Serialize produces (sections in
// first-seen order, "Key=Value\n" lines, one blank line between sections).
TEST(FleetHashTest, MatchesGoSystemdSerialization) {
  UnitFile file = MustParse(
      "# comment\n"
      "[Unit]\n"
      "Description=Hello   \n"
      "  \n"
      "[Service]\n"
      "ExecStart=/bin/echo hi\n"
      "ExecStart=/bin/true\n"
      "[Unit]\n"
      "After=network.target\n"
      "\n"
      "[X-Fleet]\n"
      "MachineMetadata=\"region=east\" \"disk=ssd\"\n");
  EXPECT_EQ(SerializeForHash(file),
            "[Unit]\nDescription=Hello\nAfter=network.target\n\n"
            "[Service]\nExecStart=/bin/echo hi\nExecStart=/bin/true\n\n"
            "[X-Fleet]\nMachineMetadata=\"region=east\" \"disk=ssd\"\n");
  EXPECT_EQ(FleetHash(file), "a5c465fa205c7f0f1d4de7083b947f90e4372e48");
}

TEST(FleetHashTest, SimpleServiceAndEmptyFile) {
  EXPECT_EQ(FleetHash(MustParse("[Service]\nExecStart=/bin/sleep 100\n")),
            "1c6fb6f3684bafb0c173d8b8b957ceff031180c1");
  EXPECT_EQ(FleetHash(MustParse("# only a comment\n[Unit]\n")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709");  // SHA-1 of ""
}

TEST(FleetHashTest, ContinuationKeptAsFleetKeepsIt) {
  UnitFile file = MustParse("[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\nRestart=always\n");
  EXPECT_EQ(FleetHash(file), "cfee9c22e5fe40baf1eaff38a33766840fb81b1a");
  // A trailing "\" before the end of the file: go-systemd keeps "\\\n" in the
  // value, and Serialize adds the line's own "\n".
  EXPECT_EQ(FleetHash(MustParse("[Service]\nExecStart=/bin/true \\\n")),
            "0a06e52c278530ab573936d0d1084131cd98c1b9");
}

TEST(FleetHashTest, CommentsAndWhitespaceAreNotAChange) {
  std::string a = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n";
  std::string b =
      "# edited\r\n[Unit]\r\n  Description =  x \r\n\r\n\r\n[Service]\r\n;c\r\nExecStart=/bin/true";
  std::string c = "[Unit]\nDescription=y\n[Service]\nExecStart=/bin/true\n";
  EXPECT_EQ(FleetHash(MustParse(a)), FleetHash(MustParse(b)));
  EXPECT_NE(FleetHash(MustParse(a)), FleetHash(MustParse(c)));
  // Order of options within a section is meaningful.
  EXPECT_NE(FleetHash(MustParse("[S]\nA=1\nB=2\n")), FleetHash(MustParse("[S]\nB=2\nA=1\n")));
}

}  // namespace
}  // namespace fleet
