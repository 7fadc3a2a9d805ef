#include "agent/config.h"

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(ParseMetadataTest, ParsesPairsAndRefusesBadEntries) {
  auto m = ParseMetadata("region=eu, role=web,empty=");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(*m, UnorderedElementsAre(Pair("region", "eu"), Pair("role", "web"), Pair("empty", "")));
  EXPECT_THAT(ParseMetadata("novalue").status().message(), HasSubstr("novalue"));
  EXPECT_FALSE(ParseMetadata("=x").ok());
  EXPECT_TRUE(ParseMetadata("")->empty());
}

TEST(ParseEnginesTest, NeedsHostPort) {
  auto e = ParseEngines("10.0.0.1:7000,engine-2:7000");
  ASSERT_TRUE(e.ok());
  EXPECT_THAT(*e, ElementsAre("10.0.0.1:7000", "engine-2:7000"));
  EXPECT_FALSE(ParseEngines("").ok());
  EXPECT_FALSE(ParseEngines("host").ok());
  EXPECT_FALSE(ParseEngines("host:0").ok());
  EXPECT_FALSE(ParseEngines("host:99999").ok());
  EXPECT_FALSE(ParseEngines(":7000").ok());
}

TEST(ParseBusKindTest, SystemOrUser) {
  EXPECT_EQ(*ParseBusKind("system"), BusKind::kSystem);
  EXPECT_EQ(*ParseBusKind("user"), BusKind::kUser);
  EXPECT_FALSE(ParseBusKind("session").ok());
}

TEST(MergeYamlConfigTest, FileFillsWhatTheCommandLineLeftOpen) {
  AgentConfig config;
  config.machine_id = "from-flag";
  const char* yaml = R"(
engine: [a:1, b:2]
machine-id: from-file
metadata: {region: eu, disk: ssd}
public-ip: 192.0.2.7
systemd: user
unit-dir: /run/x
resync-interval: 2.5
log-level: debug
)";
  ASSERT_TRUE(MergeYamlConfig(yaml, {"machine-id"}, &config).ok());
  EXPECT_THAT(config.engines, ElementsAre("a:1", "b:2"));
  EXPECT_EQ(config.machine_id, "from-flag");  // the flag wins
  EXPECT_THAT(config.metadata, UnorderedElementsAre(Pair("region", "eu"), Pair("disk", "ssd")));
  EXPECT_EQ(config.public_ip, "192.0.2.7");
  EXPECT_EQ(config.systemd, BusKind::kUser);
  EXPECT_EQ(config.unit_dir, "/run/x");
  EXPECT_EQ(config.resync_interval, absl::Milliseconds(2500));
  EXPECT_EQ(config.log_level, "debug");
}

TEST(MergeYamlConfigTest, AcceptsFlagStyleStrings) {
  AgentConfig config;
  ASSERT_TRUE(MergeYamlConfig("engine: a:1,b:2\nmetadata: k=v,x=y\n", {}, &config).ok());
  EXPECT_THAT(config.engines, ElementsAre("a:1", "b:2"));
  EXPECT_THAT(config.metadata, UnorderedElementsAre(Pair("k", "v"), Pair("x", "y")));
}

TEST(MergeYamlConfigTest, RefusesUnknownKeysAndBadValuesNamingThem) {
  AgentConfig config;
  absl::Status s = MergeYamlConfig("enigne: a:1\n", {}, &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("enigne"));
  s = MergeYamlConfig("systemd: both\n", {}, &config);
  EXPECT_THAT(s.message(), HasSubstr("systemd"));
  s = MergeYamlConfig("resync-interval: -1\n", {}, &config);
  EXPECT_THAT(s.message(), HasSubstr("resync-interval"));
  EXPECT_FALSE(MergeYamlConfig("[1, 2]\n", {}, &config).ok());
  EXPECT_FALSE(MergeYamlConfig("a: [\n", {}, &config).ok());
  EXPECT_TRUE(MergeYamlConfig("", {}, &config).ok());
}

TEST(MergeYamlConfigTest, ReadsTheTlsKeys) {
  AgentConfig config;
  ASSERT_TRUE(MergeYamlConfig("ca-file: /c.pem\ncert-file: /a.pem\nkey-file: /k.pem\ninsecure: false\n", {},
                              &config)
                  .ok());
  EXPECT_EQ(config.ca_file, "/c.pem");
  EXPECT_EQ(config.cert_file, "/a.pem");
  EXPECT_EQ(config.key_file, "/k.pem");
  EXPECT_FALSE(config.insecure);
  ASSERT_TRUE(MergeYamlConfig("insecure: true\n", {}, &config).ok());
  EXPECT_TRUE(config.insecure);
}

TEST(ValidateTlsTest, TlsUnlessInsecureAndNeverBoth) {
  AgentConfig config;
  absl::Status none = ValidateTls(config);
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.message(), HasSubstr("--ca-file, --cert-file and --key-file"));
  EXPECT_THAT(none.message(), HasSubstr("scripts/pki agent"));
  EXPECT_THAT(none.message(), HasSubstr("--insecure"));
  config.cert_file = "/a.pem";
  EXPECT_THAT(ValidateTls(config).message(), HasSubstr("all three"));
  config.ca_file = "/c.pem";
  config.key_file = "/k.pem";
  EXPECT_TRUE(ValidateTls(config).ok());
  config.insecure = true;
  EXPECT_THAT(ValidateTls(config).message(), HasSubstr("exclude each other"));
  AgentConfig plain;
  plain.insecure = true;
  EXPECT_TRUE(ValidateTls(plain).ok());
}

TEST(ResolveMachineIdTest, FlagThenFile) {
  EXPECT_EQ(*ResolveMachineId("abc", "/nonexistent"), "abc");
  EXPECT_EQ(ResolveMachineId("", "/nonexistent/machine-id").status().code(),
            absl::StatusCode::kNotFound);
  std::string path = ::testing::TempDir() + "/machine-id-test";
  {
    std::ofstream out(path);
    out << "0123456789abcdef\n";
  }
  EXPECT_EQ(*ResolveMachineId("", path), "0123456789abcdef");
  {
    std::ofstream out(path);
    out << "\n";
  }
  EXPECT_EQ(ResolveMachineId("", path).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace fleet::agent
