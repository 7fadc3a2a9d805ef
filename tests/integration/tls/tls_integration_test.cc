// Mutual TLS between a client and a gRPC server that serves the real
// fleet.v1.Fleet and fleet.v1.AgentService interfaces (trivial in-test
// handlers), with credentials from common/tls and certificates from
// scripts/pki: who gets in, who is refused, and what the refusal says. The
// clients are gRPC's, and the agent's own engine link (agent/transport's
// OpenSSL and HTTP/2, not gRPC's client).

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/engine_link.h"
#include "agent/transport/client_tls.h"
#include "common/tls/credentials.h"
#include "common/tls/identity.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/command.h"

namespace fleet::tls {
namespace {

using ::testing::HasSubstr;

// What the handlers saw: how many calls got through, and who made the last one.
struct Calls {
  absl::Mutex mu;
  int count ABSL_GUARDED_BY(mu) = 0;
  std::string last_caller ABSL_GUARDED_BY(mu);

  void Record(const grpc::ServerContextBase& context) {
    absl::StatusOr<Identity> identity = CallerIdentity(context);
    absl::MutexLock lock(&mu);
    ++count;
    last_caller = identity.ok() ? identity->Describe() : std::string(identity.status().message());
  }
  int Count() {
    absl::MutexLock lock(&mu);
    return count;
  }
  std::string LastCaller() {
    absl::MutexLock lock(&mu);
    return last_caller;
  }
};

class TestFleet final : public fleet::v1::Fleet::Service {
 public:
  explicit TestFleet(Calls* calls) : calls_(calls) {}
  grpc::Status CreateUnit(grpc::ServerContext* context, const fleet::v1::CreateUnitRequest* request,
                          fleet::v1::CreateUnitResponse* response) override {
    calls_->Record(*context);
    response->mutable_unit()->set_name(request->name());
    response->set_created(true);
    return grpc::Status::OK;
  }
  grpc::Status GetUnit(grpc::ServerContext* context, const fleet::v1::GetUnitRequest* request,
                       fleet::v1::Unit* response) override {
    calls_->Record(*context);
    response->set_name(request->name());
    return grpc::Status::OK;
  }
  grpc::Status SetUnitDesiredState(grpc::ServerContext* context,
                                   const fleet::v1::SetUnitDesiredStateRequest* request,
                                   fleet::v1::Unit* response) override {
    calls_->Record(*context);
    response->set_name(request->name());
    return grpc::Status::OK;
  }

 private:
  Calls* const calls_;
};

// Connect: the first message must be a Register for the certificate's own
// machine (the check the engine's AgentService makes with CallerIdentity).
class TestAgentService final : public fleet::v1::AgentService::Service {
 public:
  explicit TestAgentService(Calls* calls) : calls_(calls) {}
  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<fleet::v1::EngineMessage, fleet::v1::AgentMessage>* stream) override {
    calls_->Record(*context);
    absl::StatusOr<Identity> identity = CallerIdentity(*context);
    if (!identity.ok()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(identity.status().message()));
    }
    fleet::v1::AgentMessage first;
    if (!stream->Read(&first) || !first.has_register_()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a Register");
    }
    const std::string& machine = first.register_().machine().id();
    if (identity->role == Role::kAgent && identity->machine_id != machine) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "the agent certificate is for machine " +
                                                                   identity->machine_id + ", not " + machine);
    }
    fleet::v1::EngineMessage reply;
    reply.mutable_full();
    stream->Write(reply);
    return grpc::Status::OK;
  }

 private:
  Calls* const calls_;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/fleet-tls-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    const std::string pki = test::ShellQuote(std::string(FLEET_SOURCE_DIR) + "/scripts/pki");
    const std::string ca = test::ShellQuote(*dir_ + "/ca");
    const std::string other = test::ShellQuote(*dir_ + "/other");
    for (const std::string& command : {
             pki + " init " + ca,
             pki + " engine " + ca + " engine-1 --san IP:127.0.0.1,DNS:localhost",
             pki + " admin " + ca + " alice",
             pki + " viewer " + ca + " bob",
             pki + " agent " + ca + " m1",
             pki + " admin " + ca + " old --expired",
             // Signed by our CA but without a fleet:// URI (scripts/pki never makes one).
             "cd " + ca +
                 " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out norole-key.pem"
                 " && openssl req -new -key norole-key.pem -subj /CN=norole -out norole.csr"
                 " && echo subjectAltName=DNS:localhost >norole.ext"
                 " && openssl x509 -req -in norole.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1"
                 " -extfile norole.ext -out norole.pem",
             pki + " init " + other,
             pki + " admin " + other + " mallory",
         }) {
      test::CommandOutput out = test::RunCommand(command);
      ASSERT_EQ(out.exit_code, 0) << command << "\n" << out.text;
    }
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  // DIR/ca (or other) files for NAME.
  static TlsFiles Files(const std::string& ca, const std::string& name) {
    return {*dir_ + "/" + ca + "/ca.pem", *dir_ + "/" + ca + "/" + name + ".pem",
            *dir_ + "/" + ca + "/" + name + "-key.pem"};
  }

  void SetUp() override {
    ASSERT_NE(dir_, nullptr);
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MakeServerCredentials(Files("ca", "engine-1"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    // An address the engine's certificate does not name (IP:127.0.0.1 only).
    builder.AddListeningPort("127.0.0.2:0", *credentials, &unnamed_address_port_);
    builder.RegisterService(&fleet_);
    builder.RegisterService(&agents_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    ASSERT_GT(unnamed_address_port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  // A channel to the server; with `server_name`, the server's certificate is
  // checked against that name instead of the address (no DNS lookup).
  std::shared_ptr<grpc::Channel> Channel(std::shared_ptr<grpc::ChannelCredentials> credentials,
                                         const std::string& server_name = "") {
    grpc::ChannelArguments args;
    if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), credentials, args);
  }
  std::shared_ptr<grpc::Channel> Channel(const TlsFiles& files) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(files);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return Channel(credentials.ok() ? *credentials : grpc::InsecureChannelCredentials());
  }

  static void Deadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }
  static grpc::Status Create(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = fleet::v1::Fleet::NewStub(channel);
    grpc::ClientContext context;
    Deadline(context);
    fleet::v1::CreateUnitRequest request;
    request.set_name("web.service");
    request.set_contents("[Service]\nExecStart=/bin/true\n");
    fleet::v1::CreateUnitResponse response;
    return stub->CreateUnit(&context, request, &response);
  }
  static grpc::Status Get(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = fleet::v1::Fleet::NewStub(channel);
    grpc::ClientContext context;
    Deadline(context);
    fleet::v1::GetUnitRequest request;
    request.set_name("web.service");
    fleet::v1::Unit response;
    return stub->GetUnit(&context, request, &response);
  }
  static grpc::Status SetState(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = fleet::v1::Fleet::NewStub(channel);
    grpc::ClientContext context;
    Deadline(context);
    fleet::v1::SetUnitDesiredStateRequest request;
    request.set_name("web.service");
    request.set_desired_state(fleet::v1::DESIRED_STATE_LAUNCHED);
    fleet::v1::Unit response;
    return stub->SetUnitDesiredState(&context, request, &response);
  }
  // Opens the agent stream, registers as `machine`, and reads the reply.
  static grpc::Status ConnectAs(const std::shared_ptr<grpc::Channel>& channel, const std::string& machine,
                                bool* got_schedule) {
    auto stub = fleet::v1::AgentService::NewStub(channel);
    grpc::ClientContext context;
    Deadline(context);
    auto stream = stub->Connect(&context);
    fleet::v1::AgentMessage hello;
    hello.mutable_register_()->mutable_machine()->set_id(machine);
    stream->Write(hello);
    stream->WritesDone();
    fleet::v1::EngineMessage reply;
    *got_schedule = stream->Read(&reply) && reply.has_full();
    return stream->Finish();
  }

  // What the agent's engine link saw on its first stream to `host` (the
  // server's port appended; its second port for 127.0.0.2) as machine m1:
  // the schedule, and how it ended.
  struct LinkOutcome {
    bool got_schedule = false;
    absl::Status status = absl::UnknownError("the stream did not end");
  };
  LinkOutcome AgentLink(const std::string& host, const TlsFiles* files) {
    fleet::agent::EngineLinkOptions options;
    int port = host == "127.0.0.2" ? unnamed_address_port_ : port_;
    options.engines = {host + ":" + std::to_string(port)};
    options.initial_backoff = options.max_backoff = absl::Hours(1);  // one stream only
    if (files != nullptr) {
      auto tls = fleet::agent::ClientTls::Load(*files);
      EXPECT_TRUE(tls.ok()) << tls.status();
      if (!tls.ok()) return {};
      options.tls = *tls;
    }
    LinkOutcome outcome;
    absl::Notification ended;
    fleet::agent::EngineLink link(
        options,
        [] {
          fleet::v1::Register hello;
          hello.mutable_machine()->set_id("m1");
          return hello;
        },
        [&outcome](const fleet::v1::EngineMessage& message) { outcome.got_schedule |= message.has_full(); },
        [&](const std::string&, const absl::Status& status) {
          if (ended.HasBeenNotified()) return;
          outcome.status = status;
          ended.Notify();
        });
    link.Start();
    EXPECT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(20)));
    link.Stop();
    return outcome;
  }

  // The link was refused before the engine served anything: UNAVAILABLE with
  // `message` in its text, no schedule, no call reached a handler.
  void ExpectRefused(const LinkOutcome& outcome, const std::string& message) {
    EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable) << outcome.status;
    EXPECT_THAT(std::string(outcome.status.message()), HasSubstr(message));
    EXPECT_FALSE(outcome.got_schedule);
    EXPECT_EQ(calls_.Count(), 0);
  }

  static std::string* dir_;
  Calls calls_;
  TestFleet fleet_{&calls_};
  TestAgentService agents_{&calls_};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int unnamed_address_port_ = 0;
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, AdminCertificateIsServedAndIdentified) {
  grpc::Status status = Create(Channel(Files("ca", "alice")));
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(calls_.Count(), 1);
  EXPECT_EQ(calls_.LastCaller(), "admin (alice)");
  // The server's certificate names localhost too (DNS SAN), but not other names.
  status = SetState(Channel(*MakeChannelCredentials(Files("ca", "alice")), "localhost"));
  EXPECT_TRUE(status.ok()) << status.error_message();
  status = SetState(Channel(*MakeChannelCredentials(Files("ca", "alice")), "engine.example.com"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 2);
}

TEST_F(TlsTest, NoClientCertificateIsRefused) {
  grpc::SslCredentialsOptions options;
  absl::StatusOr<TlsMaterial> material = LoadTlsFiles(Files("ca", "alice"));
  ASSERT_TRUE(material.ok()) << material.status();
  options.pem_root_certs = material->ca_pem;  // trusts the server, presents nothing
  grpc::Status status = Get(Channel(grpc::SslCredentials(options)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, PlaintextIsRefused) {
  grpc::Status status = Get(Channel(grpc::InsecureChannelCredentials()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, CertificateFromAnotherCaIsRefused) {
  // mallory's certificate is from another CA; mallory trusts our CA for the server.
  TlsFiles files = Files("other", "mallory");
  files.ca_file = *dir_ + "/ca/ca.pem";
  grpc::Status status = Create(Channel(files));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, ServerFromAnotherCaIsNotTrusted) {
  // A client that trusts only the other CA refuses our server's certificate.
  grpc::Status status = Get(Channel(Files("other", "mallory")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, ExpiredCertificateIsRefused) {
  grpc::Status status = Create(Channel(Files("ca", "old")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, CertificateWithoutRoleIsRefused) {
  grpc::Status status = Get(Channel(Files("ca", "norole")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("certificate has no fleet role (expected a SAN URI"));
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, ViewerReadsButCannotChangeState) {
  std::shared_ptr<grpc::Channel> channel = Channel(Files("ca", "bob"));
  grpc::Status status = Get(channel);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(calls_.LastCaller(), "viewer (bob)");

  status = SetState(channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(),
            "/fleet.v1.Fleet/SetUnitDesiredState needs role admin; the client certificate has role "
            "viewer (bob)");
  status = Create(channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(calls_.Count(), 1);  // only the read reached a handler
}

TEST_F(TlsTest, AgentOpensItsStreamButCannotCreateUnits) {
  std::shared_ptr<grpc::Channel> channel = Channel(Files("ca", "agent-m1"));
  bool got_schedule = false;
  grpc::Status status = ConnectAs(channel, "m1", &got_schedule);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_TRUE(got_schedule);
  EXPECT_EQ(calls_.LastCaller(), "agent (machine m1)");

  status = Create(channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("needs role admin; the client certificate has role agent (machine m1)"));
  EXPECT_EQ(calls_.Count(), 1);
}

TEST_F(TlsTest, AgentCannotRegisterAsAnotherMachine) {
  bool got_schedule = true;
  grpc::Status status = ConnectAs(Channel(Files("ca", "agent-m1")), "m2", &got_schedule);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("for machine m1, not m2"));
  EXPECT_FALSE(got_schedule);
}

TEST_F(TlsTest, AdminCannotOpenTheAgentStream) {
  bool got_schedule = true;
  grpc::Status status = ConnectAs(Channel(Files("ca", "alice")), "m1", &got_schedule);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("/fleet.v1.AgentService/Connect needs role agent"));
  EXPECT_FALSE(got_schedule);
  EXPECT_EQ(calls_.Count(), 0);
}

TEST_F(TlsTest, EngineCertificateMayDoEverything) {
  std::shared_ptr<grpc::Channel> channel = Channel(Files("ca", "engine-1"));
  grpc::Status status = Create(channel);
  EXPECT_TRUE(status.ok()) << status.error_message();
  bool got_schedule = false;
  status = ConnectAs(channel, "m9", &got_schedule);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(calls_.LastCaller(), "engine (engine-1)");
}

TEST_F(TlsTest, UnknownMethodIsRefusedBeforeTheServer) {
  // A generic call to a method no table row names: refused by authorization,
  // not answered UNIMPLEMENTED.
  grpc::GenericStub stub(Channel(Files("ca", "alice")));
  grpc::ClientContext context;
  Deadline(context);
  grpc::Slice empty_message("");  // an empty protobuf message
  grpc::ByteBuffer request(&empty_message, 1), response;
  grpc::Status result;
  absl::Notification done;
  stub.UnaryCall(&context, "/fleet.v1.Fleet/DropEverything", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   result = status;
                   done.Notify();
                 });
  done.WaitForNotification();
  EXPECT_EQ(result.error_code(), grpc::StatusCode::PERMISSION_DENIED) << result.error_message();
  EXPECT_THAT(result.error_message(), HasSubstr("not a method this server authorizes"));
}

TEST_F(TlsTest, AgentLinkRegistersOverMutualTls) {
  TlsFiles files = Files("ca", "agent-m1");
  LinkOutcome outcome = AgentLink("127.0.0.1", &files);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;  // the test server ends the call after one reply
  EXPECT_TRUE(outcome.got_schedule);
  EXPECT_EQ(calls_.LastCaller(), "agent (machine m1)");
}

TEST_F(TlsTest, AgentLinkChecksTheEngineByItsDnsName) {
  // The engine's certificate names DNS:localhost; "localhost" may also
  // resolve to ::1, where nothing listens, before 127.0.0.1.
  TlsFiles files = Files("ca", "agent-m1");
  LinkOutcome outcome = AgentLink("localhost", &files);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_TRUE(outcome.got_schedule);
}

TEST_F(TlsTest, AgentLinkRefusesAnEngineFromAnotherCa) {
  TlsFiles files = Files("other", "mallory");  // trusts only the other CA
  // Mbed TLS's verdict follows ("the certificate is not correctly signed by
  // the trusted ca").
  ExpectRefused(AgentLink("127.0.0.1", &files), "TLS handshake: the engine's certificate: ");
}

TEST_F(TlsTest, AgentLinkRefusesAnEngineWhoseCertificateDoesNotNameTheAddress) {
  TlsFiles files = Files("ca", "agent-m1");
  ExpectRefused(AgentLink("127.0.0.2", &files),
                "TLS handshake: the engine's certificate: it does not name 127.0.0.2 (subjectAltName)");
}

TEST_F(TlsTest, AgentLinkWithACertificateFromAnotherCaIsRefused) {
  TlsFiles files = Files("other", "mallory");
  files.ca_file = *dir_ + "/ca/ca.pem";  // trusts the engine, but the engine does not trust it
  ExpectRefused(AgentLink("127.0.0.1", &files),
                "the engine closed the connection before it answered (does it trust this agent's "
                "certificate?)");
}

TEST_F(TlsTest, AgentLinkInPlaintextIsRefused) {
  ExpectRefused(AgentLink("127.0.0.1", nullptr),
                "before it answered (does it want TLS instead of --insecure?)");
}

TEST_F(TlsTest, FileErrorsNameTheFileAndTheProblem) {
  TlsFiles files = Files("ca", "alice");
  files.key_file = *dir_ + "/ca/bob-key.pem";
  absl::StatusOr<TlsMaterial> material = LoadTlsFiles(files);
  ASSERT_FALSE(material.ok());
  EXPECT_EQ(material.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("--key-file " + files.key_file + ": the key does not belong to the certificate in " +
                        files.cert_file));

  files = Files("ca", "alice");
  files.cert_file = files.key_file;  // a key where a certificate belongs
  EXPECT_EQ(std::string(MakeChannelCredentials(files).status().message()),
            "--cert-file " + files.cert_file + ": no certificate in the file");

  files = Files("ca", "alice");
  files.key_file = files.ca_file;  // a certificate where a key belongs
  EXPECT_THAT(std::string(MakeServerCredentials(files).status().message()),
              HasSubstr("--key-file " + files.key_file + ": no private key in the file"));
}

TEST_F(TlsTest, AgentFileErrorsNameTheFileAndTheProblem) {
  // fleet-agent checks the files with its own TLS library, in the same words.
  TlsFiles files = Files("ca", "agent-m1");
  files.key_file = *dir_ + "/ca/alice-key.pem";
  auto tls = fleet::agent::ClientTls::Load(files);
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(tls.status().message()),
            "--key-file " + files.key_file + ": the key does not belong to the certificate in " +
                files.cert_file);

  files = Files("ca", "agent-m1");
  files.ca_file = files.key_file;
  EXPECT_EQ(std::string(fleet::agent::ClientTls::Load(files).status().message()),
            "--ca-file " + files.ca_file + ": no certificate in the file");

  files = Files("ca", "agent-m1");
  files.cert_file = files.key_file;
  EXPECT_EQ(std::string(fleet::agent::ClientTls::Load(files).status().message()),
            "--cert-file " + files.cert_file + ": no certificate in the file");

  files = Files("ca", "agent-m1");
  files.key_file = files.ca_file;
  EXPECT_EQ(std::string(fleet::agent::ClientTls::Load(files).status().message()),
            "--key-file " + files.key_file + ": no private key in the file (or it is encrypted)");

  files = Files("ca", "agent-m1");
  files.cert_file = *dir_ + "/nonexistent.pem";
  EXPECT_THAT(std::string(fleet::agent::ClientTls::Load(files).status().message()),
              HasSubstr("--cert-file " + files.cert_file + ": cannot read: No such file or directory"));
}

}  // namespace
}  // namespace fleet::tls
