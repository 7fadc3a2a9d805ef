#include "common/unit/unit_name.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

TEST(UnitNameTest, PlainUnit) {
  absl::StatusOr<UnitName> name = ParseUnitName("web.service");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->full(), "web.service");
  EXPECT_EQ(name->without_suffix(), "web");
  EXPECT_EQ(name->prefix(), "web");
  EXPECT_EQ(name->instance(), "");
  EXPECT_EQ(name->type(), UnitType::kService);
  EXPECT_EQ(name->type_suffix(), "service");
  EXPECT_FALSE(name->IsTemplate());
  EXPECT_FALSE(name->IsInstance());
  EXPECT_EQ(name->TemplateName(), "");
}

TEST(UnitNameTest, TemplateAndInstance) {
  absl::StatusOr<UnitName> tmpl = ParseUnitName("web@.service");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_TRUE(tmpl->IsTemplate());
  EXPECT_FALSE(tmpl->IsInstance());
  EXPECT_EQ(tmpl->prefix(), "web");
  EXPECT_EQ(tmpl->instance(), "");
  EXPECT_EQ(tmpl->TemplateName(), "web@.service");

  absl::StatusOr<UnitName> inst = ParseUnitName("web@3.service");
  ASSERT_TRUE(inst.ok()) << inst.status();
  EXPECT_FALSE(inst->IsTemplate());
  EXPECT_TRUE(inst->IsInstance());
  EXPECT_EQ(inst->prefix(), "web");
  EXPECT_EQ(inst->instance(), "3");
  EXPECT_EQ(inst->without_suffix(), "web@3");
  EXPECT_EQ(inst->TemplateName(), "web@.service");
}

TEST(UnitNameTest, InstanceMayHoldDotsAndAt) {
  // systemd splits at the first '@' and the last '.'.
  absl::StatusOr<UnitName> name = ParseUnitName("getty@tty1.a@b.socket");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->prefix(), "getty");
  EXPECT_EQ(name->instance(), "tty1.a@b");
  EXPECT_EQ(name->type(), UnitType::kSocket);
  EXPECT_EQ(name->TemplateName(), "getty@.socket");
}

TEST(UnitNameTest, EveryKnownTypeAndSystemdCharacters) {
  for (const char* name : {"a.service", "a.socket", "a.device", "a.mount", "a.automount", "a.swap",
                           "a.target", "a.path", "a.timer", "a.slice", "a.scope", "-.slice",
                           "dev-disk-by\\x2duuid.swap", "a:b_c-d.e.service"}) {
    EXPECT_TRUE(ParseUnitName(name).ok()) << name;
  }
}

TEST(UnitNameTest, RefusesBadNamesSayingWhy) {
  struct Case {
    std::string name;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {"web", "no type suffix"},
           {"web.", "unknown type"},
           {"web.conf", "unknown type \".conf\""},
           {".service", "only a type suffix"},
           {"@x.service", "starts with \"@\""},
           {"we b.service", "position 3"},
           {"web/1.service", "position 4"},
           {"wéb.service", "position 2"},
           {std::string(252, 'a') + ".service", "at most 255"},
           // Names an agent turns into file names: nothing may step out of its unit dir.
           {"../x.service", "character / at position 3"},
           {"x..y.service", "\"..\" at position 2"},
           {"web@..service", "\"..\" at position 5"},
           {".hidden.service", "starts with \".\""},
           {std::string("a\0b.service", 11), "character \\x00 at position 2"},
           {"a\nb.service", "character \\n at position 2"},
           {"w\xff\xfe.service", "character \\xff at position 2"},
           {"caf\xc3.service", "character \\xc3 at position 4"},  // truncated UTF-8
           {std::string(292, 'a') + ".service", "300 bytes long"},
       }) {
    absl::StatusOr<UnitName> name = ParseUnitName(c.name);
    ASSERT_FALSE(name.ok()) << c.name;
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(name.status().message()), HasSubstr(c.why)) << c.name;
  }
  EXPECT_TRUE(ParseUnitName(std::string(247, 'a') + ".service").ok());  // 255 bytes
}

TEST(UnitNameTest, DotsInsideANameAreStillFine) {
  for (const char* name : {"a.b.service", "web@10.0.0.1.service", "x.y@z.service", "-.slice"}) {
    EXPECT_TRUE(ParseUnitName(name).ok()) << name << ": " << ParseUnitName(name).status();
  }
}

TEST(UnitNameTest, ExpandsFleetSpecifiers) {
  absl::StatusOr<UnitName> name = ParseUnitName("web@3.service");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(ExpandSpecifiers("%n|%N|%p|%i", *name), "web@3.service|web@3|web|3");
  EXPECT_EQ(ExpandSpecifiers("%p-%i.service", *name), "web-3.service");
  // Unknown specifiers and a trailing '%' stay as written, as in fleet.
  EXPECT_EQ(ExpandSpecifiers("%H %x 100%", *name), "%H %x 100%");
  EXPECT_EQ(ExpandSpecifiers("%%n", *name), "%web@3.service");

  absl::StatusOr<UnitName> plain = ParseUnitName("db.service");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ExpandSpecifiers("[%p][%i]", *plain), "[db][]");
}

TEST(UnitNameTest, ShowNameEscapesWhatCouldBreakALineOrATerminal) {
  EXPECT_EQ(ShowName("web@3.service"), "web@3.service");
  EXPECT_EQ(ShowName("a\nb.service"), "\"a\\nb.service\"");
  EXPECT_EQ(ShowName("\x1b[2J.service"), "\"\\x1b[2J.service\"");
  EXPECT_EQ(ShowName(std::string("a\0z", 3)), "\"a\\x00z\"");
  EXPECT_EQ(ShowName("a b"), "\"a b\"");
  EXPECT_EQ(ShowName("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(ShowName(""), "\"\"");
}

TEST(UnitNameTest, GlobMatch) {
  EXPECT_TRUE(UnitNameGlobMatch("web@*.service", "web@3.service"));
  EXPECT_TRUE(UnitNameGlobMatch("web@?.service", "web@3.service"));
  EXPECT_TRUE(UnitNameGlobMatch("web@[0-9].service", "web@3.service"));
  EXPECT_FALSE(UnitNameGlobMatch("web@[4-9].service", "web@3.service"));
  EXPECT_FALSE(UnitNameGlobMatch("db*", "web@3.service"));
  EXPECT_TRUE(UnitNameGlobMatch("web.service", "web.service"));
  EXPECT_FALSE(UnitNameGlobMatch("web.service", "web.socket"));
}

}  // namespace
}  // namespace fleet
