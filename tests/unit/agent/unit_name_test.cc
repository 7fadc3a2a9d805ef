#include "agent/systemd/unit_name.h"

#include <string>

#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

// The agent installs every name the engine accepts (common/unit's rules):
// a unit the engine scheduled must not fail on the machine for its name.
TEST(ValidateUnitNameTest, AcceptsSystemdNames) {
  for (const char* name : {"web.service", "web@.service", "web@1.service", "a-b_c:d.timer",
                           "x.socket", "foo\\x2dbar.service", "db.mount", "a.b.service",
                           "a@b@c.service", "-x.service"}) {
    EXPECT_TRUE(ValidateUnitName(name).ok()) << name << ": " << ValidateUnitName(name);
  }
}

TEST(ValidateUnitNameTest, RefusesNamesThatCouldEscapeTheUnitDir) {
  for (const char* name : {"", "../x.service", "a/b.service", "/etc/passwd", "..service",
                           "x..service", ".service", "web", "web.exe", "@x.service",
                           "a b.service", "a\n.service"}) {
    absl::Status s = ValidateUnitName(name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "'" << name << "'";
  }
  EXPECT_FALSE(ValidateUnitName(std::string(300, 'a') + ".service").ok());
  EXPECT_FALSE(ValidateUnitName(std::string("a\0b.service", 11)).ok());
}

TEST(HasInstallSectionTest, FindsTheSectionHeaderOnly) {
  EXPECT_TRUE(HasInstallSection("[Unit]\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n"));
  EXPECT_TRUE(HasInstallSection("[Service]\nExecStart=/bin/true\n  [Install]  \n"));
  EXPECT_FALSE(HasInstallSection("[Service]\nExecStart=/bin/echo [Install]\n"));
  EXPECT_FALSE(HasInstallSection(""));
}

}  // namespace
}  // namespace fleet::agent
