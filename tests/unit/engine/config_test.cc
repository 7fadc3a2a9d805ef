#include "engine/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

TEST(EngineConfigTest, DefaultsAreLoopbackEmbeddedThirtySeconds) {
  EngineConfig config;
  EXPECT_EQ(config.listen, "127.0.0.1:7001");
  EXPECT_EQ(config.agent_ttl, absl::Seconds(30));
  EXPECT_EQ(config.store, StoreKind::kEmbedded);
}

TEST(EngineConfigTest, EveryKeyIsRead) {
  EngineConfig config;
  ASSERT_TRUE(ApplyConfigYaml("engine.yaml",
                              "listen: 0.0.0.0:7100\n"
                              "data_dir: /srv/fleet\n"
                              "agent_ttl: 1m30s\n"
                              "store: etcd\n"
                              "ca_file: /etc/fleet/ca.pem\n"
                              "cert_file: /etc/fleet/engine.pem\n"
                              "key_file: /etc/fleet/engine.key\n",
                              config)
                  .ok());
  EXPECT_EQ(config.listen, "0.0.0.0:7100");
  EXPECT_EQ(config.data_dir, "/srv/fleet");
  EXPECT_EQ(config.agent_ttl, absl::Seconds(90));
  EXPECT_EQ(config.store, StoreKind::kEtcd);
  EXPECT_EQ(config.ca_file, "/etc/fleet/ca.pem");
  EXPECT_EQ(config.cert_file, "/etc/fleet/engine.pem");
  EXPECT_EQ(config.key_file, "/etc/fleet/engine.key");
}

TEST(EngineConfigTest, KeysNotInTheFileKeepTheirValue) {
  EngineConfig config;
  config.data_dir = "/from/before";
  ASSERT_TRUE(ApplyConfigYaml("engine.yaml", "agent_ttl: 10s\n", config).ok());
  EXPECT_EQ(config.data_dir, "/from/before");
  EXPECT_EQ(config.agent_ttl, absl::Seconds(10));
  ASSERT_TRUE(ApplyConfigYaml("empty.yaml", "", config).ok());
  EXPECT_EQ(config.agent_ttl, absl::Seconds(10));
}

struct BadCase {
  const char* yaml;
  const char* expected;  // substring of the message, besides the file name
};

class EngineConfigErrorTest : public testing::TestWithParam<BadCase> {};

TEST_P(EngineConfigErrorTest, ErrorNamesFileKeyAndProblemAndChangesNothing) {
  EngineConfig config;
  config.data_dir = "/unchanged";
  absl::Status status = ApplyConfigYaml("/etc/fleet/engine.yaml",
                                        std::string("data_dir: /changed\n") + GetParam().yaml, config);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("/etc/fleet/engine.yaml"));
  EXPECT_THAT(status.message(), HasSubstr(GetParam().expected));
  EXPECT_EQ(config.data_dir, "/unchanged");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EngineConfigErrorTest,
    testing::Values(BadCase{"listn: 1.2.3.4:5\n", "key listn: unknown key"},
                    BadCase{"agent_ttl: soon\n", "key agent_ttl: \"soon\" is not a duration"},
                    BadCase{"agent_ttl: -5s\n", "key agent_ttl: \"-5s\" must be more than zero"},
                    BadCase{"agent_ttl: 0s\n", "must be more than zero"},
                    BadCase{"store: zookeeper\n", "key store: \"zookeeper\" is not a store"},
                    BadCase{"listen: localhost\n", "key listen: listen address \"localhost\" is not HOST:PORT"},
                    BadCase{"listen: 127.0.0.1:99999\n", "bad port"},
                    BadCase{"listen: :7001\n", "has no host"},
                    BadCase{"listen: [1, 2]\n", "key listen: must be a single value"},
                    BadCase{"agent_ttl: [oops\n", "line "}));

TEST(EngineConfigTest, NotAMappingIsRefused) {
  EngineConfig config;
  absl::Status status = ApplyConfigYaml("x.yaml", "- listen\n- data_dir\n", config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("x.yaml: the document must be a mapping"));
}

TEST(EngineConfigTest, LoadConfigFileReadsTheFileAndNamesAMissingOne) {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("engine_config_test_" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "listen: 127.0.0.1:0\nagent_ttl: 2s\n";
  }
  EngineConfig config;
  ASSERT_TRUE(LoadConfigFile(path.string(), config).ok());
  EXPECT_EQ(config.listen, "127.0.0.1:0");
  EXPECT_EQ(config.agent_ttl, absl::Seconds(2));
  std::filesystem::remove(path);

  absl::Status missing = LoadConfigFile(path.string(), config);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr(path.string()));
}

TEST(EngineConfigTest, ListenAddressForms) {
  EXPECT_TRUE(ValidateListenAddress("127.0.0.1:7001").ok());
  EXPECT_TRUE(ValidateListenAddress("[::1]:7001").ok());
  EXPECT_TRUE(ValidateListenAddress("engine.example:0").ok());
  EXPECT_FALSE(ValidateListenAddress("::1:7001").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1:").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1:+80").ok());
}

}  // namespace
}  // namespace fleet
