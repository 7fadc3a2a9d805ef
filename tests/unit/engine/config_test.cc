#include "engine/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
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
                    BadCase{"agent_ttl: [oops\n", "line "},
                    BadCase{"etcd_endpoints: [127.0.0.1:2379, localhost]\n",
                            "key etcd_endpoints: etcd endpoint \"localhost\" is not HOST:PORT"},
                    BadCase{"etcd_endpoints: []\n", "key etcd_endpoints: no etcd endpoint given"},
                    BadCase{"etcd_endpoints: {a: 1}\n", "key etcd_endpoints: must be a list"},
                    BadCase{"etcd_endpoints: [[a]]\n", "every item must be a single HOST:PORT"},
                    BadCase{"etcd_ca_file: [a, b]\n", "key etcd_ca_file: must be a single value"}));

TEST(EngineConfigTest, EtcdKeysAreRead) {
  EngineConfig config;
  ASSERT_TRUE(ApplyConfigYaml("engine.yaml",
                              "store: etcd\n"
                              "etcd_endpoints: [127.0.0.1:2379, 'http://etcd-2.example:2379']\n"
                              "etcd_ca_file: /etc/fleet/etcd-ca.pem\n"
                              "etcd_cert_file: /etc/fleet/etcd-client.pem\n"
                              "etcd_key_file: /etc/fleet/etcd-client.key\n",
                              config)
                  .ok());
  EXPECT_EQ(config.store, StoreKind::kEtcd);
  EXPECT_THAT(config.etcd_endpoints, ElementsAre("127.0.0.1:2379", "etcd-2.example:2379"));
  EXPECT_EQ(config.etcd_ca_file, "/etc/fleet/etcd-ca.pem");
  EXPECT_EQ(config.etcd_cert_file, "/etc/fleet/etcd-client.pem");
  EXPECT_EQ(config.etcd_key_file, "/etc/fleet/etcd-client.key");
  EXPECT_TRUE(ValidateConfig(config).ok());

  // One string separated by commas works too, as on the command line.
  ASSERT_TRUE(ApplyConfigYaml("engine.yaml", "etcd_endpoints: 10.0.0.1:2379, 10.0.0.2:2379\n", config)
                  .ok());
  EXPECT_THAT(config.etcd_endpoints, ElementsAre("10.0.0.1:2379", "10.0.0.2:2379"));
}

TEST(EngineConfigTest, ParseEtcdEndpointsNamesTheBadOne) {
  absl::StatusOr<std::vector<std::string>> ok = ParseEtcdEndpoints("127.0.0.1:1,[::1]:2,https://h:3");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(*ok, ElementsAre("127.0.0.1:1", "[::1]:2", "h:3"));
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:1,nowhere", "127.0.0.1:0", ":2379"}) {
    absl::StatusOr<std::vector<std::string>> parsed = ParseEtcdEndpoints(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseEtcdEndpoints("127.0.0.1:1,nowhere").status().message(), HasSubstr("\"nowhere\""));
}

TEST(EngineConfigTest, ValidateConfigChecksSettingsThatGoTogether) {
  EngineConfig config;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.store = StoreKind::kEtcd;
  absl::Status no_endpoints = ValidateConfig(config);
  EXPECT_EQ(no_endpoints.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_endpoints.message(), HasSubstr("etcd_endpoints"));
  config.etcd_endpoints = {"127.0.0.1:2379"};
  absl::Status plaintext = ValidateConfig(config);
  EXPECT_EQ(plaintext.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plaintext.message(), HasSubstr("the link to etcd is TLS by default"));
  EXPECT_THAT(plaintext.message(), HasSubstr("--etcd-ca-file"));
  config.insecure = true;
  EXPECT_TRUE(ValidateConfig(config).ok()) << "plaintext to etcd when asked for";
  config.insecure = false;
  config.etcd_ca_file = "/etc/fleet/etcd-ca.pem";
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.etcd_cert_file = "/etc/fleet/etcd-client.pem";
  absl::Status half = ValidateConfig(config);
  EXPECT_EQ(half.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(half.message(), HasSubstr("etcd_key_file"));
  config.etcd_key_file = "/etc/fleet/etcd-client.key";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(EngineConfigTest, EtcdEnginesNeedAnAddressOthersCanReach) {
  EngineConfig config;
  config.store = StoreKind::kEtcd;
  config.etcd_endpoints = {"127.0.0.1:2379"};
  config.etcd_ca_file = "/etc/fleet/etcd-ca.pem";
  for (const char* unreachable : {"0.0.0.0:7001", "[::]:7001"}) {
    config.listen = unreachable;
    absl::Status s = ValidateConfig(config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << unreachable;
    EXPECT_THAT(s.message(), HasSubstr("--advertise")) << unreachable;
  }
  config.advertise = "10.0.0.5:0";
  EXPECT_THAT(ValidateConfig(config).message(), HasSubstr("\"10.0.0.5:0\" is not one they can reach"));
  config.listen = "127.0.0.1:0";  // the bound port is advertised
  config.advertise = "";
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.advertise = "10.0.0.5:7001";
  EXPECT_TRUE(ValidateConfig(config).ok());
  EXPECT_EQ(AdvertiseAddress(config), "10.0.0.5:7001");
  config.leader_ttl = absl::Milliseconds(500);
  EXPECT_THAT(ValidateConfig(config).message(), HasSubstr("leader_ttl 500ms is too short"));

  EngineConfig from_file;
  ASSERT_TRUE(ApplyConfigYaml("engine.yaml",
                              "advertise: 10.0.0.6:7001\nname: engine-b\nleader_ttl: 3s\n", from_file)
                  .ok());
  EXPECT_EQ(from_file.advertise, "10.0.0.6:7001");
  EXPECT_EQ(from_file.name, "engine-b");
  EXPECT_EQ(from_file.leader_ttl, absl::Seconds(3));
  EXPECT_EQ(AdvertiseAddress(EngineConfig()), "127.0.0.1:7001") << "listen when not given";
}

TEST(EngineConfigTest, TlsIsTheDefaultAndInsecureMustBeAskedFor) {
  EngineConfig config;
  absl::Status none = ValidateTls(config);
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.message(), HasSubstr("--ca-file, --cert-file and --key-file"));
  EXPECT_THAT(none.message(), HasSubstr("scripts/pki"));
  EXPECT_THAT(none.message(), HasSubstr("--insecure"));
  config.ca_file = "/etc/fleet/ca.pem";
  EXPECT_THAT(ValidateTls(config).message(), HasSubstr("all three"));
  config.cert_file = "/etc/fleet/engine.pem";
  config.key_file = "/etc/fleet/engine-key.pem";
  EXPECT_TRUE(ValidateTls(config).ok());
  config.insecure = true;
  EXPECT_THAT(ValidateTls(config).message(), HasSubstr("exclude each other"));
  EngineConfig plain;
  plain.insecure = true;
  EXPECT_TRUE(ValidateTls(plain).ok());
}

TEST(EngineConfigTest, InsecureKeyIsABoolean) {
  EngineConfig config;
  ASSERT_TRUE(ApplyConfigYaml("e.yaml", "insecure: true\n", config).ok());
  EXPECT_TRUE(config.insecure);
  ASSERT_TRUE(ApplyConfigYaml("e.yaml", "insecure: false\n", config).ok());
  EXPECT_FALSE(config.insecure);
  absl::Status bad = ApplyConfigYaml("e.yaml", "insecure: maybe\n", config);
  EXPECT_THAT(bad.message(), HasSubstr("key insecure: must be true or false"));
}

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
