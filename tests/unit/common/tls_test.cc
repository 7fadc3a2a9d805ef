// The role encoding of client certificates and the per-method authorization
// table (common/tls). Pure: no certificates, no sockets.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/tls/authorize.h"
#include "common/tls/credentials.h"
#include "common/tls/identity.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace fleet::tls {
namespace {

using ::testing::HasSubstr;

Identity Make(Role role) {
  switch (role) {
    case Role::kAdmin:
      return {Role::kAdmin, "", "alice"};
    case Role::kViewer:
      return {Role::kViewer, "", "bob"};
    case Role::kAgent:
      return {Role::kAgent, "0123456789abcdef0123456789abcdef", ""};
    case Role::kEngine:
      return {Role::kEngine, "", "engine-1"};
  }
  return {};
}

constexpr Role kAllRoles[] = {Role::kAdmin, Role::kViewer, Role::kAgent, Role::kEngine};

// "/package.Service/Method" for every method of the service, from the
// descriptors compiled from proto/fleet/v1: a new RPC shows up here by itself.
std::vector<std::string> MethodsOf(const char* service_full_name) {
  // A message of each file, so the linker keeps the files' descriptors (a
  // static library's object that nothing references would be left out).
  const google::protobuf::FileDescriptor* files[] = {fleet::v1::CreateUnitRequest::descriptor()->file(),
                                                     fleet::v1::AgentMessage::descriptor()->file()};
  const google::protobuf::ServiceDescriptor* service = nullptr;
  for (const google::protobuf::FileDescriptor* file : files) {
    if (service == nullptr) service = file->pool()->FindServiceByName(service_full_name);
  }
  std::vector<std::string> methods;
  if (service == nullptr) return methods;
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back(absl::StrCat("/", service->full_name(), "/", service->method(i)->name()));
  }
  return methods;
}

bool IsRead(const std::string& method) {
  std::string_view name = std::string_view(method).substr(method.rfind('/') + 1);
  return name.starts_with("Get") || name.starts_with("List") || name.starts_with("Read");
}

// ---- IdentityFromSans --------------------------------------------------------

TEST(IdentityFromSansTest, EachRoleUri) {
  auto admin = IdentityFromSans({"fleet://role/admin"}, "alice");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->role, Role::kAdmin);
  EXPECT_EQ(admin->name, "alice");

  auto viewer = IdentityFromSans({"fleet://role/viewer"}, "bob");
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  EXPECT_EQ(viewer->role, Role::kViewer);
  EXPECT_EQ(viewer->name, "bob");

  auto agent = IdentityFromSans({"fleet://agent/0123abcd"}, "0123abcd");
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->role, Role::kAgent);
  EXPECT_EQ(agent->machine_id, "0123abcd");

  auto engine = IdentityFromSans({"fleet://engine/engine-1"});
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ(engine->role, Role::kEngine);
  EXPECT_EQ(engine->name, "engine-1");
  EXPECT_TRUE(engine->machine_id.empty());
}

TEST(IdentityFromSansTest, OtherSchemesAreIgnored) {
  auto id = IdentityFromSans({"spiffe://example.org/x", "fleet://role/viewer", "https://a/b"});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, Role::kViewer);
}

TEST(IdentityFromSansTest, NoRoleIsRefusedWithWhatIsExpected) {
  for (const std::vector<std::string>& sans :
       {std::vector<std::string>{}, std::vector<std::string>{"spiffe://example.org/admin"}}) {
    auto id = IdentityFromSans(sans, "fleet://role/admin");  // a CN never counts
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("certificate has no fleet role"));
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("fleet://role/admin"));
  }
}

TEST(IdentityFromSansTest, TwoRolesAreRefused) {
  for (const std::vector<std::string>& sans :
       {std::vector<std::string>{"fleet://role/viewer", "fleet://role/admin"},
        std::vector<std::string>{"fleet://role/admin", "fleet://role/admin"},
        std::vector<std::string>{"fleet://agent/m1", "fleet://engine/e1"}}) {
    auto id = IdentityFromSans(sans);
    ASSERT_FALSE(id.ok()) << sans[0];
    EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("2 fleet roles"));
  }
}

TEST(IdentityFromSansTest, UnknownOrMalformedFleetUrisAreRefused) {
  for (const char* uri : {"fleet://role/root", "fleet://role/admin/x", "fleet://role/", "fleet://agent/",
                          "fleet://agent/../etc", "fleet://agent/a/b", "fleet://engine/", "fleet://engine/-x",
                          "FLEET://role/admin", "fleet://", "fleet://admin"}) {
    auto id = IdentityFromSans({uri});
    ASSERT_FALSE(id.ok()) << uri;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied) << uri;
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("unknown fleet role")) << uri;
  }
}

TEST(IdentityTest, DescribeNamesRoleAndWho) {
  EXPECT_EQ(Make(Role::kViewer).Describe(), "viewer (bob)");
  EXPECT_EQ(Make(Role::kAgent).Describe(), "agent (machine 0123456789abcdef0123456789abcdef)");
  EXPECT_EQ(Make(Role::kEngine).Describe(), "engine (engine-1)");
  EXPECT_EQ((Identity{Role::kAdmin, "", ""}).Describe(), "admin");
}

// ---- Authorize ---------------------------------------------------------------

TEST(AuthorizeTest, ServicesAreFoundInTheDescriptors) {
  EXPECT_EQ(std::string(fleet::v1::Fleet::service_full_name()), "fleet.v1.Fleet");
  EXPECT_GE(MethodsOf(fleet::v1::Fleet::service_full_name()).size(), 7u);
  EXPECT_EQ(MethodsOf(fleet::v1::AgentService::service_full_name()),
            std::vector<std::string>{"/fleet.v1.AgentService/Connect"});
}

TEST(AuthorizeTest, EveryFleetMethodByEveryRole) {
  for (const std::string& method : MethodsOf(fleet::v1::Fleet::service_full_name())) {
    for (Role role : kAllRoles) {
      bool want = false;
      switch (role) {
        case Role::kAdmin:
        case Role::kEngine:
          want = true;
          break;
        case Role::kViewer:
          want = IsRead(method);
          break;
        case Role::kAgent:
          want = false;
          break;
      }
      absl::Status status = Authorize(Make(role), method);
      EXPECT_EQ(status.ok(), want) << method << " by " << RoleName(role) << ": " << status;
      if (!want) {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << method;
      }
    }
  }
}

TEST(AuthorizeTest, AgentServiceOnlyForAgentsAndEngines) {
  for (const std::string& method : MethodsOf(fleet::v1::AgentService::service_full_name())) {
    EXPECT_TRUE(Authorize(Make(Role::kAgent), method).ok()) << method;
    EXPECT_TRUE(Authorize(Make(Role::kEngine), method).ok()) << method;
    EXPECT_EQ(Authorize(Make(Role::kAdmin), method).code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Authorize(Make(Role::kViewer), method).code(), absl::StatusCode::kPermissionDenied);
  }
}

TEST(AuthorizeTest, StatusAndJournalReadsAreForViewers) {
  EXPECT_TRUE(Authorize(Make(Role::kViewer), "/fleet.v1.Fleet/GetUnitStatus").ok());
  EXPECT_TRUE(Authorize(Make(Role::kViewer), "/fleet.v1.Fleet/ReadJournal").ok());
  EXPECT_FALSE(Authorize(Make(Role::kAgent), "/fleet.v1.Fleet/ReadJournal").ok());
}

TEST(AuthorizeTest, RefusalNamesTheRoleNeededAndHeld) {
  absl::Status status = Authorize(Make(Role::kViewer), "/fleet.v1.Fleet/SetUnitDesiredState");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(),
            "/fleet.v1.Fleet/SetUnitDesiredState needs role admin; the client certificate has role "
            "viewer (bob)");

  status = Authorize(Make(Role::kAgent), "/fleet.v1.Fleet/ListUnits");
  EXPECT_THAT(std::string(status.message()), HasSubstr("needs role viewer or admin"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("has role agent (machine "));

  status = Authorize(Make(Role::kAdmin), "/fleet.v1.AgentService/Connect");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("needs role agent; the client certificate has role admin"));
}

TEST(AuthorizeTest, UnknownMethodsAreRefusedForEveryone) {
  for (const char* method :
       {"/fleet.v1.Fleet/NoSuchMethod", "/grpc.health.v1.Health/Check", "/fleet.v1.Fleet/CreateUnit/",
        "fleet.v1.Fleet/CreateUnit", "", "/fleet.v1.fleet/createunit"}) {
    for (Role role : kAllRoles) {
      absl::Status status = Authorize(Make(role), method);
      EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << method << RoleName(role);
      EXPECT_THAT(std::string(status.message()), HasSubstr("not a method this server authorizes"));
    }
  }
}

// ---- LoadTlsFiles (file errors; certificates are tested in tests/integration/tls)

TEST(ChooseTransportTest, AllThreeFilesOrInsecureAloneOrWhatIsWrong) {
  const TlsFiles all{"ca.pem", "a.pem", "a-key.pem"};
  EXPECT_EQ(ChooseTransport(all, /*insecure=*/false), TransportChoice::kMutualTls);
  EXPECT_EQ(ChooseTransport({}, /*insecure=*/true), TransportChoice::kPlaintext);
  EXPECT_EQ(ChooseTransport(all, /*insecure=*/true), TransportChoice::kConflict);
  EXPECT_EQ(ChooseTransport({"ca.pem", "", ""}, /*insecure=*/true), TransportChoice::kConflict);
  EXPECT_EQ(ChooseTransport({}, /*insecure=*/false), TransportChoice::kNoFiles);
  EXPECT_EQ(ChooseTransport({"ca.pem", "a.pem", ""}, /*insecure=*/false), TransportChoice::kSomeFiles);
  EXPECT_EQ(ChooseTransport({"", "", "a-key.pem"}, /*insecure=*/false), TransportChoice::kSomeFiles);
}

TEST(LoadTlsFilesTest, ErrorsNameTheFlagAndFile) {
  auto missing = LoadTlsFiles({"/nonexistent/ca.pem", "/x.pem", "/y.pem"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("--ca-file /nonexistent/ca.pem: cannot read"));

  auto empty = LoadTlsFiles({"", "", ""});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("--ca-file is empty"));

  // /dev/null is readable and holds no PEM at all.
  auto not_pem = LoadTlsFiles({"/dev/null", "/dev/null", "/dev/null"});
  ASSERT_FALSE(not_pem.ok());
  EXPECT_EQ(not_pem.status().message(), "--ca-file /dev/null: no certificate in the file");
}

}  // namespace
}  // namespace fleet::tls
