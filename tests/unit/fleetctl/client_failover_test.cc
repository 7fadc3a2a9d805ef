// fleetctl's Client against several engines: real in-process gRPC servers on
// 127.0.0.1 (plaintext) playing a leader, followers and broken engines, with
// the calls each one received counted.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "fleetctl/app.h"
#include "fleetctl/client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace fleet::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// How a fake engine answers every call.
enum class Role {
  kLeader,         // serves: one machine named after the engine, a journal of two entries
  kFollower,       // UNAVAILABLE + "fleet-leader: <leader>" (empty leader: does not know it)
  kSlow,           // answers only when the test releases it (past any short deadline)
  kDenied,         // PERMISSION_DENIED, as an engine refusing the caller's role
  kRelayError,     // UNAVAILABLE + "fleet-relay" (the unit's agent is gone)
  kBrokenJournal,  // ReadJournal: one entry, then UNAVAILABLE without any trailer
};

class FakeFleet final : public v1::Fleet::Service {
 public:
  FakeFleet(std::string name, Role role, std::string leader = "")
      : name_(std::move(name)), role_(role), leader_(std::move(leader)) {}
  ~FakeFleet() override {
    release_.Notify();
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  // Serves on 127.0.0.1:0; returns the address ("" if it could not bind).
  std::string Start() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) return "";
    return absl::StrCat("127.0.0.1:", port);
  }

  int calls() const { return calls_.load(); }
  // Waits (with a deadline) until a call reached this engine.
  bool WaitForCall() { return arrived_.WaitForNotificationWithTimeout(absl::Seconds(10)); }

  grpc::Status ListMachines(grpc::ServerContext* context, const v1::ListMachinesRequest*,
                            v1::ListMachinesResponse* response) override {
    if (grpc::Status s = Answer(context); !s.ok()) return s;
    response->add_machines()->set_id(name_);
    return grpc::Status::OK;
  }

  grpc::Status GetUnitStatus(grpc::ServerContext* context, const v1::GetUnitStatusRequest* request,
                             v1::GetUnitStatusResponse* response) override {
    if (grpc::Status s = Answer(context); !s.ok()) return s;
    response->mutable_unit()->set_name(request->name());
    response->mutable_unit()->set_machine_id(name_);
    return grpc::Status::OK;
  }

  // Batches: records how many units each request carried, and refuses the
  // request numbered `fail_request` (1 = the first) as a refused unit.
  grpc::Status CreateUnits(grpc::ServerContext* context, const v1::CreateUnitsRequest* request,
                           v1::CreateUnitsResponse*) override {
    if (grpc::Status s = Answer(context); !s.ok()) return s;
    return Batch(request->units_size());
  }
  grpc::Status SetUnitsDesiredState(grpc::ServerContext* context,
                                    const v1::SetUnitsDesiredStateRequest* request,
                                    v1::SetUnitsDesiredStateResponse*) override {
    if (grpc::Status s = Answer(context); !s.ok()) return s;
    return Batch(request->names_size());
  }
  void FailRequest(int n) { fail_request_ = n; }
  std::vector<int> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

  grpc::Status ReadJournal(grpc::ServerContext* context, const v1::ReadJournalRequest*,
                           grpc::ServerWriter<v1::JournalEntry>* writer) override {
    if (role_ == Role::kBrokenJournal) {
      Count();
      v1::JournalEntry entry;
      entry.set_message(name_ + " 1");
      writer->Write(entry);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection to the agent broke");
    }
    if (grpc::Status s = Answer(context); !s.ok()) return s;
    for (int i = 1; i <= 2; ++i) {
      v1::JournalEntry entry;
      entry.set_message(absl::StrCat(name_, " ", i));
      writer->Write(entry);
    }
    return grpc::Status::OK;
  }

 private:
  void Count() {
    if (++calls_ == 1) arrived_.Notify();
  }

  grpc::Status Batch(int units) {
    absl::MutexLock lock(&mu_);
    batches_.push_back(units);
    if (static_cast<int>(batches_.size()) == fail_request_) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "unit u150.service already exists");
    }
    return grpc::Status::OK;
  }

  // OK when this engine serves the call, else its refusal.
  grpc::Status Answer(grpc::ServerContext* context) {
    Count();
    switch (role_) {
      case Role::kLeader:
      case Role::kBrokenJournal:
        return grpc::Status::OK;
      case Role::kFollower:
        context->AddTrailingMetadata("fleet-leader", leader_);
        return grpc::Status(
            grpc::StatusCode::UNAVAILABLE,
            leader_.empty()
                ? "this engine is not the leader and does not know the leader yet; retry"
                : absl::StrCat("this engine is not the leader; the leader is at ", leader_));
      case Role::kSlow:
        release_.WaitForNotificationWithTimeout(absl::Seconds(30));
        return grpc::Status::OK;
      case Role::kDenied:
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role viewer may not do this");
      case Role::kRelayError:
        context->AddTrailingMetadata("fleet-relay", "1");
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the agent of machine m1 is not connected");
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "unknown role");
  }

  const std::string name_;
  const Role role_;
  const std::string leader_;
  std::atomic<int> calls_{0};
  std::atomic<int> fail_request_{0};
  absl::Mutex mu_;
  std::vector<int> batches_ ABSL_GUARDED_BY(mu_);
  absl::Notification arrived_;
  absl::Notification release_;
  std::unique_ptr<grpc::Server> server_;
};

// An address where nothing listens: a port bound on 127.0.0.1, then closed.
std::string ClosedAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  std::string address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ::close(fd);
  return address;
}

std::unique_ptr<Client> MakeClient(const std::vector<std::string>& endpoints,
                                   absl::Duration timeout = absl::Seconds(10)) {
  ConnectionOptions options;
  options.endpoint = absl::StrJoin(endpoints, ",");
  options.insecure = true;
  options.request_timeout = timeout;
  std::ostringstream warning;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options, warning);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::string MachineOf(Client& client) {
  absl::StatusOr<std::vector<v1::Machine>> machines = client.ListMachines();
  if (!machines.ok()) return std::string(machines.status().ToString());
  return machines->size() == 1 ? machines->front().id() : "wrong number of machines";
}

TEST(ParseEndpointsTest, SplitsTheListInOrder) {
  absl::StatusOr<std::vector<std::string>> one = ParseEndpoints("127.0.0.1:7001");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, std::vector<std::string>{"127.0.0.1:7001"});
  absl::StatusOr<std::vector<std::string>> several =
      ParseEndpoints("e2.example:7001, 10.0.0.1:7001,[::1]:7002,e2.example:7001");
  ASSERT_TRUE(several.ok()) << several.status();
  EXPECT_EQ(*several, (std::vector<std::string>{"e2.example:7001", "10.0.0.1:7001", "[::1]:7002"}));
}

TEST(ParseEndpointsTest, RefusesABadItemNamingIt) {
  absl::Status empty = ParseEndpoints("a:1,,b:2").status();
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("item 2 is empty"));
  for (const char* bad : {"nohost", ":7001", "h:", "h:0", "h:65536", "h:7x", "::1:7001"}) {
    absl::Status s = ParseEndpoints(absl::StrCat("a:1,", bad)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("\"", bad, "\" is not HOST:PORT"))) << bad;
  }
}

TEST(ParseEndpointsTest, FleetctlCallsABadListAUsageError) {
  std::ostringstream out, err;
  int code = RunFleetctl({"fleetctl", "--endpoint", "a:1,,b:2", "--insecure", "list-machines"}, out,
                         err, false);
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err.str(), "Error: --endpoint: endpoint list \"a:1,,b:2\": item 2 is empty\n");
  std::ostringstream out2, err2;
  code = RunFleetctl({"fleetctl", "--endpoint", "nohost", "--insecure", "list-machines"}, out2,
                     err2, false);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err2.str(), HasSubstr("\"nohost\" is not HOST:PORT"));
}

// fleetctl submit/start of a long list: at most 100 units per request (the
// engine's limit), a create request also within about 1 MiB of files; a
// refused request stops the command and says what the requests before it did.
TEST(ClientBatchTest, LongListsGoInRequestsOf100) {
  FakeFleet engine("leader", Role::kLeader);
  std::string address = engine.Start();
  ASSERT_FALSE(address.empty());
  std::unique_ptr<Client> client = MakeClient({address});
  std::vector<v1::CreateUnitRequest> units(250);
  std::vector<std::string> names;
  for (int i = 0; i < 250; ++i) {
    units[i].set_name(absl::StrCat("u", i, ".service"));
    units[i].set_contents("[Service]\nExecStart=/bin/true\n");
    names.push_back(units[i].name());
  }
  ASSERT_TRUE(client->CreateUnits(units).ok());
  EXPECT_EQ(engine.batches(), (std::vector<int>{100, 100, 50}));
  ASSERT_TRUE(client->SetDesiredStates(names, v1::DESIRED_STATE_LAUNCHED).ok());
  EXPECT_EQ(engine.batches(), (std::vector<int>{100, 100, 50, 100, 100, 50}));
  EXPECT_TRUE(client->CreateUnits({}).ok()) << "nothing to create: no request";
  EXPECT_EQ(engine.batches().size(), 6u);

  // Big files: 400 KiB each, so two fit in a request of at most 1 MiB; a
  // file over 1 MiB goes alone.
  std::vector<v1::CreateUnitRequest> big(3);
  for (int i = 0; i < 3; ++i) {
    big[i].set_name(absl::StrCat("big", i, ".service"));
    big[i].set_contents(std::string(400 << 10, '#'));
  }
  big.push_back(big[0]);
  big.back().set_name("huge.service");
  big.back().set_contents(std::string(1200 << 10, '#'));
  ASSERT_TRUE(client->CreateUnits(big).ok());
  EXPECT_EQ(engine.batches(), (std::vector<int>{100, 100, 50, 100, 100, 50, 2, 1, 1}));
}

TEST(ClientBatchTest, ARefusedRequestSaysHowManyUnitsWentBefore) {
  FakeFleet engine("leader", Role::kLeader);
  std::string address = engine.Start();
  ASSERT_FALSE(address.empty());
  std::unique_ptr<Client> client = MakeClient({address});
  std::vector<v1::CreateUnitRequest> units(250);
  for (int i = 0; i < 250; ++i) units[i].set_name(absl::StrCat("u", i, ".service"));
  engine.FailRequest(2);
  absl::Status s = client->CreateUnits(units);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "unit u150.service already exists (the first 100 of the 250 units were created)");
  EXPECT_EQ(engine.batches(), (std::vector<int>{100, 100})) << "no request after the refused one";
}

TEST(ClientFailoverTest, FollowerSendsTheCallToTheLeaderAndLaterCallsGoThere) {
  FakeFleet leader("leader", Role::kLeader);
  std::string leader_address = leader.Start();
  ASSERT_FALSE(leader_address.empty());
  FakeFleet follower("follower", Role::kFollower, leader_address);
  std::string follower_address = follower.Start();
  ASSERT_FALSE(follower_address.empty());

  std::unique_ptr<Client> client = MakeClient({follower_address});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->endpoint(), follower_address);
  EXPECT_EQ(MachineOf(*client), "leader");
  EXPECT_EQ(follower.calls(), 1);
  EXPECT_EQ(leader.calls(), 1);
  EXPECT_EQ(client->endpoint(), leader_address);

  EXPECT_EQ(MachineOf(*client), "leader");
  EXPECT_EQ(follower.calls(), 1);  // straight to the leader
  EXPECT_EQ(leader.calls(), 2);
}

TEST(ClientFailoverTest, UnreachableEndpointIsSkipped) {
  FakeFleet leader("leader", Role::kLeader);
  std::string leader_address = leader.Start();
  ASSERT_FALSE(leader_address.empty());
  std::string closed = ClosedAddress();
  ASSERT_FALSE(closed.empty());

  std::unique_ptr<Client> client = MakeClient({closed, leader_address});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(MachineOf(*client), "leader");
  EXPECT_EQ(leader.calls(), 1);
  EXPECT_EQ(client->endpoint(), leader_address);
}

TEST(ClientFailoverTest, FollowerNotKnowingTheLeaderIsSkipped) {
  FakeFleet unknowing("unknowing", Role::kFollower);
  std::string unknowing_address = unknowing.Start();
  FakeFleet leader("leader", Role::kLeader);
  std::string leader_address = leader.Start();
  ASSERT_FALSE(unknowing_address.empty());
  ASSERT_FALSE(leader_address.empty());

  std::unique_ptr<Client> client = MakeClient({unknowing_address, leader_address});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(MachineOf(*client), "leader");
  EXPECT_EQ(unknowing.calls(), 1);
  EXPECT_EQ(leader.calls(), 1);
}

TEST(ClientFailoverTest, AllDownIsOneLineNamingEveryEndpoint) {
  std::string first = ClosedAddress();
  std::string second = ClosedAddress();
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  std::unique_ptr<Client> client = MakeClient({first, second});
  ASSERT_NE(client, nullptr);

  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("cannot reach the engine at ", first, ": ")));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("cannot reach the engine at ", second, ": ")));
  EXPECT_THAT(s.message(), Not(HasSubstr("\n")));
}

TEST(ClientFailoverTest, FleetctlPrintsAllDownAsOneErrorLine) {
  std::string first = ClosedAddress();
  std::string second = ClosedAddress();
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  std::ostringstream out, err;
  int code = RunFleetctl({"fleetctl", "--endpoint", absl::StrCat(first, ",", second), "--insecure",
                          "list-machines"},
                         out, err, false);
  EXPECT_EQ(code, 1);
  std::vector<std::string> lines = absl::StrSplit(err.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << err.str();
  EXPECT_EQ(lines[0], absl::StrCat("Warning: --insecure: talking to the engines at ", first, ", ",
                                   second, " in PLAINTEXT and unauthenticated"));
  EXPECT_THAT(lines[1], HasSubstr(absl::StrCat("Error: no engine served the call (tried ", first,
                                               ", ", second, "): cannot reach the engine at ")));
}

TEST(ClientFailoverTest, OneUnreachableEngineKeepsTheSingleEngineMessage) {
  std::string closed = ClosedAddress();
  ASSERT_FALSE(closed.empty());
  std::unique_ptr<Client> client = MakeClient({closed});
  ASSERT_NE(client, nullptr);
  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message().rfind(absl::StrCat("cannot reach the engine at ", closed, ": "), 0), 0u)
      << s.message();
}

TEST(ClientFailoverTest, NoFollowerKnowingTheLeaderGivesTheEnginesMessage) {
  FakeFleet first("first", Role::kFollower);
  FakeFleet second("second", Role::kFollower);
  std::string first_address = first.Start();
  std::string second_address = second.Start();
  ASSERT_FALSE(first_address.empty());
  ASSERT_FALSE(second_address.empty());
  std::unique_ptr<Client> client = MakeClient({first_address, second_address});
  ASSERT_NE(client, nullptr);

  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(),
              HasSubstr("this engine is not the leader and does not know the leader yet; retry"));
  EXPECT_THAT(s.message(), HasSubstr(first_address));
  EXPECT_THAT(s.message(), HasSubstr(second_address));
  EXPECT_EQ(first.calls(), 1);
  EXPECT_EQ(second.calls(), 1);
}

TEST(ClientFailoverTest, ARedirectIsFollowedOncePerCall) {
  // first names second as the leader, second names third: the call stops at second.
  FakeFleet third("third", Role::kLeader);
  std::string third_address = third.Start();
  ASSERT_FALSE(third_address.empty());
  FakeFleet second("second", Role::kFollower, third_address);
  std::string second_address = second.Start();
  ASSERT_FALSE(second_address.empty());
  FakeFleet first("first", Role::kFollower, second_address);
  std::string first_address = first.Start();
  ASSERT_FALSE(first_address.empty());
  std::unique_ptr<Client> client = MakeClient({first_address});
  ASSERT_NE(client, nullptr);

  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("the engine at ", first_address, ": ")));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("the engine at ", second_address, ": ")));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("the leader is at ", third_address)));
  EXPECT_EQ(first.calls(), 1);
  EXPECT_EQ(second.calls(), 1);
  EXPECT_EQ(third.calls(), 0);
}

TEST(ClientFailoverTest, DeadlineExceededIsNotRetried) {
  FakeFleet slow("slow", Role::kSlow);
  FakeFleet leader("leader", Role::kLeader);
  std::string slow_address = slow.Start();
  std::string leader_address = leader.Start();
  ASSERT_FALSE(slow_address.empty());
  ASSERT_FALSE(leader_address.empty());
  std::unique_ptr<Client> client = MakeClient({slow_address, leader_address}, absl::Seconds(1));
  ASSERT_NE(client, nullptr);

  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("the engine at ", slow_address,
                                                  " did not answer within 1s")));
  ASSERT_TRUE(slow.WaitForCall());
  EXPECT_EQ(slow.calls(), 1);
  EXPECT_EQ(leader.calls(), 0);
}

TEST(ClientFailoverTest, OtherErrorsAreTheEnginesAnswer) {
  FakeFleet denying("denying", Role::kDenied);
  FakeFleet leader("leader", Role::kLeader);
  std::string denying_address = denying.Start();
  std::string leader_address = leader.Start();
  ASSERT_FALSE(denying_address.empty());
  ASSERT_FALSE(leader_address.empty());
  std::unique_ptr<Client> client = MakeClient({denying_address, leader_address});
  ASSERT_NE(client, nullptr);

  absl::Status s = client->ListMachines().status();
  EXPECT_EQ(s, absl::PermissionDeniedError("role viewer may not do this"));
  EXPECT_EQ(denying.calls(), 1);
  EXPECT_EQ(leader.calls(), 0);
}

TEST(ClientFailoverTest, RelayErrorIsShownAsItIsAndNotRetried) {
  FakeFleet relaying("relaying", Role::kRelayError);
  FakeFleet leader("leader", Role::kLeader);
  std::string relaying_address = relaying.Start();
  std::string leader_address = leader.Start();
  ASSERT_FALSE(relaying_address.empty());
  ASSERT_FALSE(leader_address.empty());
  std::unique_ptr<Client> client = MakeClient({relaying_address, leader_address});
  ASSERT_NE(client, nullptr);

  v1::GetUnitStatusRequest request;
  request.set_name("web.service");
  absl::Status s = client->GetUnitStatus(request).status();
  EXPECT_EQ(s, absl::UnavailableError("the agent of machine m1 is not connected"));
  EXPECT_EQ(relaying.calls(), 1);
  EXPECT_EQ(leader.calls(), 0);
}

TEST(ClientFailoverTest, GetUnitStatusFollowsTheLeader) {
  FakeFleet leader("leader", Role::kLeader);
  std::string leader_address = leader.Start();
  ASSERT_FALSE(leader_address.empty());
  FakeFleet follower("follower", Role::kFollower, leader_address);
  std::string follower_address = follower.Start();
  ASSERT_FALSE(follower_address.empty());
  std::unique_ptr<Client> client = MakeClient({follower_address});
  ASSERT_NE(client, nullptr);

  v1::GetUnitStatusRequest request;
  request.set_name("web.service");
  absl::StatusOr<v1::GetUnitStatusResponse> status = client->GetUnitStatus(request);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->unit().machine_id(), "leader");
  EXPECT_EQ(follower.calls(), 1);
  EXPECT_EQ(leader.calls(), 1);
}

std::vector<std::string> Journal(Client& client, absl::Status* status) {
  std::vector<std::string> lines;
  v1::ReadJournalRequest request;
  request.set_name("web.service");
  *status = client.ReadJournal(request, [&lines](const v1::JournalEntry& entry) {
    lines.push_back(entry.message());
  });
  return lines;
}

TEST(ClientFailoverTest, JournalFollowsTheLeaderBeforeAnyEntry) {
  FakeFleet leader("leader", Role::kLeader);
  std::string leader_address = leader.Start();
  ASSERT_FALSE(leader_address.empty());
  FakeFleet follower("follower", Role::kFollower, leader_address);
  std::string follower_address = follower.Start();
  ASSERT_FALSE(follower_address.empty());
  std::unique_ptr<Client> client = MakeClient({follower_address});
  ASSERT_NE(client, nullptr);

  absl::Status s;
  EXPECT_EQ(Journal(*client, &s), (std::vector<std::string>{"leader 1", "leader 2"}));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(follower.calls(), 1);
  EXPECT_EQ(leader.calls(), 1);
}

TEST(ClientFailoverTest, JournalIsNotRetriedAfterAnEntry) {
  FakeFleet broken("broken", Role::kBrokenJournal);
  FakeFleet leader("leader", Role::kLeader);
  std::string broken_address = broken.Start();
  std::string leader_address = leader.Start();
  ASSERT_FALSE(broken_address.empty());
  ASSERT_FALSE(leader_address.empty());
  std::unique_ptr<Client> client = MakeClient({broken_address, leader_address});
  ASSERT_NE(client, nullptr);

  absl::Status s;
  EXPECT_EQ(Journal(*client, &s), std::vector<std::string>{"broken 1"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(broken_address));
  EXPECT_EQ(broken.calls(), 1);
  EXPECT_EQ(leader.calls(), 0);
}

}  // namespace
}  // namespace fleet::ctl
