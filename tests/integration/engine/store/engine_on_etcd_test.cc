// fleet-engine on a real etcd (`--store etcd --etcd-endpoints ...`): what it
// stores is in etcd, so a new engine process finds it; a missing or dead etcd
// is a clear start-up error; an etcd that serves mutual TLS lets in only an
// engine with a valid certificate of its CA. Every engine process started here
// is recorded by PID and killed in TearDown, also when a test fails; etcd is
// the harness's.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/command.h"
#include "tests/support/engine_process.h"
#include "tests/support/etcd_cluster.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;

constexpr char kEngine[] = FLEET_BINARY_DIR "/engine/fleet-engine";
constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";
const std::string kPki = std::string(FLEET_SOURCE_DIR) + "/scripts/pki";

using test::EngineProcess;

class EngineOnEtcdTest : public ::testing::Test {
 protected:
  EngineProcess* Spawn(const std::vector<std::string>& args) { return engines_.Spawn(args); }

  // fleet-engine on 127.0.0.1:0 with the etcd store and a 2 s leader lease;
  // waits until it listens.
  EngineProcess* StartEngine(const test::EtcdCluster& etcd) {
    EngineProcess* process =
        Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd", "--etcd-endpoints",
               absl::StrJoin(etcd.endpoints(), ","), "--leader-ttl", "2s"});
    EXPECT_NE(process, nullptr);
    if (process == nullptr) return nullptr;
    EXPECT_TRUE(process->WaitListening()) << process->output;
    return process;
  }

  std::unique_ptr<v1::Fleet::Stub> Client(const EngineProcess& process) {
    return v1::Fleet::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(process.port),
                                                  grpc::InsecureChannelCredentials()));
  }

  test::EngineProcesses engines_;
};

// Submits a launched unit `name` through the engine's API: the status.
grpc::Status Submit(v1::Fleet::Stub& client, const std::string& name) {
  grpc::ClientContext context;
  v1::CreateUnitRequest request;
  request.set_name(name);
  request.set_contents(kPlain);
  request.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  v1::CreateUnitResponse response;
  return client.CreateUnit(&context, request, &response);
}

TEST_F(EngineOnEtcdTest, UnitsSurviveAnEngineRestartBecauseTheyAreInEtcd) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EngineProcess* first = StartEngine(**etcd);
  ASSERT_NE(first, nullptr);
  EXPECT_THAT(first->output, HasSubstr("etcd store at " + (*etcd)->endpoint(0)));
  EXPECT_THAT(first->output,
              HasSubstr("campaigning for leader as 127.0.0.1:" + std::to_string(first->port)));
  ASSERT_TRUE(first->ReadUntil("this engine is now the leader")) << first->output;
  auto client = Client(*first);
  for (const char* name : {"a.service", "b.service"}) {
    grpc::Status status = Submit(*client, name);
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
  }
  kill(first->pid, SIGKILL);
  waitpid(first->pid, nullptr, 0);
  first->pid = -1;

  // The killed leader's key lives until its lease expires; then the new
  // engine leads.
  EngineProcess* second = StartEngine(**etcd);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->ReadUntil("this engine is now the leader")) << second->output;
  client = Client(*second);
  grpc::ClientContext context;
  v1::ListUnitsResponse listed;
  ASSERT_TRUE(client->ListUnits(&context, v1::ListUnitsRequest(), &listed).ok());
  ASSERT_EQ(listed.units_size(), 2);
  EXPECT_EQ(listed.units(0).name(), "a.service");
  EXPECT_EQ(listed.units(1).name(), "b.service");
  EXPECT_EQ(listed.units(1).contents(), kPlain);
  EXPECT_EQ(listed.units(1).desired_state(), v1::DESIRED_STATE_LAUNCHED);
  kill(second->pid, SIGTERM);
  EXPECT_EQ(second->Wait(), 0);
}

// One compare per unit plus the leader's guard: the largest batch must fit
// etcd's 128 compares per transaction.
TEST_F(EngineOnEtcdTest, TheLargestBatchOfStateChangesFitsOneEtcdTransaction) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EngineProcess* engine = StartEngine(**etcd);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->ReadUntil("this engine is now the leader")) << engine->output;
  auto client = Client(*engine);
  v1::SetUnitsDesiredStateRequest request;
  for (int i = 0; i < kMaxUnitsPerRequest; ++i) {
    const std::string name = absl::StrCat("u", i, ".service");
    grpc::ClientContext context;
    v1::CreateUnitRequest create;
    create.set_name(name);
    create.set_contents(kPlain);
    v1::CreateUnitResponse created;
    ASSERT_TRUE(client->CreateUnit(&context, create, &created).ok()) << name;
    request.add_names(name);
  }
  request.set_desired_state(v1::DESIRED_STATE_LAUNCHED);
  grpc::ClientContext context;
  v1::SetUnitsDesiredStateResponse response;
  grpc::Status set = client->SetUnitsDesiredState(&context, request, &response);
  ASSERT_TRUE(set.ok()) << set.error_message();
  ASSERT_EQ(response.units_size(), kMaxUnitsPerRequest);
  for (const v1::Unit& unit : response.units()) {
    EXPECT_EQ(unit.desired_state(), v1::DESIRED_STATE_LAUNCHED) << unit.name();
    EXPECT_EQ(unit.mod_revision(), response.units(0).mod_revision()) << "one transaction";
  }
}

TEST_F(EngineOnEtcdTest, EtcdStoreWithoutEndpointsIsAUsageError) {
  EngineProcess* process = Spawn({"--store", "etcd"});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("store etcd needs etcd_endpoints"));
}

TEST_F(EngineOnEtcdTest, UnreachableEtcdIsAStartupErrorNamingIt) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  (*etcd)->Kill(0);
  EngineProcess* process =
      Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd", "--etcd-endpoints",
             (*etcd)->endpoint(0)});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 1);
  EXPECT_THAT(process->output, HasSubstr("etcd at " + (*etcd)->endpoint(0) + " unavailable"));
}

TEST_F(EngineOnEtcdTest, PlaintextToEtcdMustBeAskedFor) {
  EngineProcess* process =
      Spawn({"--listen", "127.0.0.1:0", "--ca-file", "/nonexistent/ca.pem", "--cert-file",
             "/nonexistent/engine.pem", "--key-file", "/nonexistent/engine-key.pem", "--store",
             "etcd", "--etcd-endpoints", "127.0.0.1:2379"});
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->Wait(), 2);
  EXPECT_THAT(process->output, HasSubstr("the link to etcd is TLS by default"));
  EXPECT_THAT(process->output, HasSubstr("--etcd-ca-file"));
}

// An etcd member that serves mutual TLS with certificates of scripts/pki:
// the cluster's CA ("ca": etcd, engine, engine-expired) and another CA
// ("other": engine).
class EngineOnTlsEtcdTest : public EngineOnEtcdTest {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "etcd_tls_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    pki_ = pattern;
    std::string p = test::ShellQuote(pattern);
    test::CommandOutput made = test::RunCommand(absl::StrCat(
        kPki, " init ", p, "/ca && ", kPki, " engine ", p, "/ca etcd --san IP:127.0.0.1 && ", kPki,
        " engine ", p, "/ca engine && ", kPki, " engine ", p, "/ca engine-expired --expired && ",
        kPki, " init ", p, "/other && ", kPki, " engine ", p, "/other engine"));
    ASSERT_EQ(made.exit_code, 0) << made.text;
    absl::StatusOr<std::unique_ptr<test::EtcdCluster>> etcd = test::EtcdCluster::Start(
        1, absl::Seconds(30),
        tls::TlsFiles{.ca_file = pki_ + "/ca/ca.pem",
                           .cert_file = pki_ + "/ca/etcd.pem",
                           .key_file = pki_ + "/ca/etcd-key.pem"});
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
  }
  void TearDown() override {
    etcd_.reset();
    if (!pki_.empty()) std::filesystem::remove_all(pki_);
  }

  // fleet-engine on the TLS etcd with the CA `ca` of the PKI and the client
  // certificate `ca`/`cert` (none when empty); the API is plaintext, as
  // this test is about the link to etcd.
  EngineProcess* SpawnOnTlsEtcd(const std::string& ca, const std::string& cert) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd",
                                     "--etcd-endpoints", etcd_->endpoint(0), "--leader-ttl", "2s",
                                     "--etcd-ca-file", absl::StrCat(pki_, "/", ca, "/ca.pem")};
    if (!cert.empty()) {
      args.insert(args.end(), {"--etcd-cert-file", absl::StrCat(pki_, "/", cert, ".pem"),
                               "--etcd-key-file", absl::StrCat(pki_, "/", cert, "-key.pem")});
    }
    return Spawn(args);
  }

  std::string pki_;
  std::unique_ptr<test::EtcdCluster> etcd_;
};

TEST_F(EngineOnTlsEtcdTest, EngineWithACertificateOfTheCaStoresItsUnitsInEtcd) {
  EngineProcess* first = SpawnOnTlsEtcd("ca", "ca/engine");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->WaitListening()) << first->output;
  EXPECT_THAT(first->output, HasSubstr("etcd store at " + etcd_->endpoint(0) + " (TLS)"));
  ASSERT_TRUE(first->ReadUntil("this engine is now the leader")) << first->output;
  grpc::Status submitted = Submit(*Client(*first), "a.service");
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  kill(first->pid, SIGTERM);  // resigns: the next engine leads at once
  ASSERT_EQ(first->Wait(), 0) << first->output;

  EngineProcess* second = SpawnOnTlsEtcd("ca", "ca/engine");
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->WaitListening()) << second->output;
  ASSERT_TRUE(second->ReadUntil("this engine is now the leader")) << second->output;
  grpc::ClientContext context;
  v1::ListUnitsResponse listed;
  ASSERT_TRUE(Client(*second)->ListUnits(&context, v1::ListUnitsRequest(), &listed).ok());
  ASSERT_EQ(listed.units_size(), 1);
  EXPECT_EQ(listed.units(0).name(), "a.service");
}

TEST_F(EngineOnTlsEtcdTest, EtcdRefusesEnginesWithoutAValidCertificateOfItsCa) {
  struct Case {
    const char* what;
    std::string ca;    // the engine's CA for etcd's certificate
    std::string cert;  // the engine's client certificate
  };
  for (const Case& c : {Case{"no client certificate", "ca", ""},
                        Case{"a certificate of another CA", "ca", "other/engine"},
                        Case{"an expired certificate", "ca", "ca/engine-expired"},
                        Case{"etcd's certificate checked against another CA", "other", "ca/engine"}}) {
    EngineProcess* process = SpawnOnTlsEtcd(c.ca, c.cert);
    ASSERT_NE(process, nullptr);
    EXPECT_EQ(process->Wait(), 1) << c.what << ": " << process->output;
    EXPECT_THAT(process->output, HasSubstr("etcd at " + etcd_->endpoint(0) + " unavailable"))
        << c.what;
  }
  // A plaintext engine is refused too.
  EngineProcess* plaintext = Spawn({"--listen", "127.0.0.1:0", "--insecure", "--store", "etcd",
                                    "--etcd-endpoints", etcd_->endpoint(0)});
  ASSERT_NE(plaintext, nullptr);
  EXPECT_EQ(plaintext->Wait(), 1) << plaintext->output;
  EXPECT_THAT(plaintext->output, HasSubstr("etcd at " + etcd_->endpoint(0) + " unavailable"));
}

}  // namespace
}  // namespace fleet
