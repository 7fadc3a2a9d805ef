// Hostile input against a REAL fleet-engine process over its public gRPC API
// (fleet.v1.Fleet): bad unit names, oversized and non-UTF-8 contents, shell
// metacharacters in [X-Fleet] values, and a flood of bad requests. Each bad
// request must be refused with INVALID_ARGUMENT and a message that says what is
// wrong, and must change nothing that is stored. The engine runs with
// --insecure: TLS and roles are engine_tls_test's subject, not this one's. The
// engine is recorded by PID (EngineProcesses) and killed in TearDown, also when
// a test fails.

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fleet/v1/fleet.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/engine_process.h"

namespace fleet::test {
namespace {

using ::testing::HasSubstr;

constexpr char kPlain[] = "[Service]\nExecStart=/bin/sleep 1000\n";
constexpr size_t kOneMiB = 1024 * 1024;  // the limit of a unit file
// A request's deadline, as fleetctl's default: a good call must finish in it.
constexpr auto kDeadline = std::chrono::seconds(10);

// What a hostile request is and what its refusal must say.
struct Hostile {
  std::string label;  // for failure messages
  std::string name;
  std::string contents;
  bool replace = false;
  int desired_state = v1::DESIRED_STATE_UNSPECIFIED;
  std::vector<std::string> says;  // substrings of the error message
};

std::string Printable(const std::string& s) {
  std::string out = absl::CHexEscape(s.substr(0, 200));
  if (s.size() > 200) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

class HostileInputTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "hostile_input_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    engine_ = engines_->Spawn(
        {"--listen", "127.0.0.1:0", "--data-dir", (dir_ / "data").string(), "--insecure"});
    ASSERT_NE(engine_, nullptr);
    ASSERT_TRUE(engine_->WaitListening()) << engine_->output;
    address_ = "127.0.0.1:" + std::to_string(engine_->port);
    stub_ = NewStub();
  }
  void TearDown() override {
    engines_.reset();  // killed before their data dir goes
    std::filesystem::remove_all(dir_);
  }

  // A client on its own channel, as another client program would be.
  std::unique_ptr<v1::Fleet::Stub> NewStub() {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // its own connection
    return v1::Fleet::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

  static grpc::Status Create(v1::Fleet::Stub* stub, const std::string& name,
                             const std::string& contents, bool replace = false,
                             int desired_state = v1::DESIRED_STATE_UNSPECIFIED) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::CreateUnitRequest request;
    request.set_name(name);
    request.set_contents(contents);
    request.set_replace(replace);
    request.set_desired_state(static_cast<v1::DesiredState>(desired_state));
    v1::CreateUnitResponse response;
    return stub->CreateUnit(&context, request, &response);
  }

  // Every stored unit with its contents, or a failure.
  static grpc::Status ListAll(v1::Fleet::Stub* stub, v1::ListUnitsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::ListUnitsRequest request;
    request.set_page_size(10000);
    return stub->ListUnits(&context, request, response);
  }

  v1::ListUnitsResponse MustListAll() {
    v1::ListUnitsResponse response;
    grpc::Status status = ListAll(stub_.get(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Sends each of `cases` and checks that it is refused as it should be and
  // that the stored units, and "web.service" in particular, did not change.
  void ExpectEachRefusedAndNothingChanged(const std::vector<Hostile>& cases) {
    ASSERT_TRUE(Create(stub_.get(), "web.service", kPlain, false, v1::DESIRED_STATE_LOADED).ok());
    const v1::ListUnitsResponse before = MustListAll();
    ASSERT_EQ(before.units_size(), 1);
    for (const Hostile& c : cases) {
      SCOPED_TRACE(c.label + ": name \"" + Printable(c.name) + "\", contents \"" +
                   Printable(c.contents) + "\"");
      grpc::Status status = Create(stub_.get(), c.name, c.contents, c.replace, c.desired_state);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
      for (const std::string& part : c.says) {
        EXPECT_THAT(status.error_message(), HasSubstr(part));
      }
      // fleetctl prints the message: a hostile name reaches it escaped.
      const std::string& message = status.error_message();
      EXPECT_FALSE(std::any_of(message.begin(), message.end(),
                               [](char b) { return (b >= 0 && b < ' ') || b == 0x7f; }))
          << "control bytes in: " << Printable(message);
      const v1::ListUnitsResponse after = MustListAll();
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, after))
          << "before:\n"
          << before.DebugString() << "after:\n"
          << after.DebugString();
    }
    ASSERT_EQ(MustListAll().units_size(), 1);
    EXPECT_EQ(MustListAll().units(0).contents(), kPlain);
    EXPECT_EQ(MustListAll().units(0).desired_state(), v1::DESIRED_STATE_LOADED);
  }

  std::filesystem::path dir_;
  std::unique_ptr<EngineProcesses> engines_ = std::make_unique<EngineProcesses>();
  EngineProcess* engine_ = nullptr;
  std::string address_;
  std::unique_ptr<v1::Fleet::Stub> stub_;
};

TEST_F(HostileInputTest, BadUnitNamesAreRefusedSayingWhy) {
  ExpectEachRefusedAndNothingChanged({
      {"slash", "a/b.service", kPlain, false, 0, {"a/b.service", "character / at position 2"}},
      {"parent dir", "../x.service", kPlain, false, 0, {"../x.service", "character /"}},
      {"parent dir over the unit", "../web.service", kPlain, true, 0, {"character /"}},
      {"absolute", "/etc/passwd.service", kPlain, false, 0, {"character / at position 1"}},
      {"dot dot", "x..y.service", kPlain, false, 0, {"x..y.service", "\"..\" at position 2"}},
      {"only dots", "...service", kPlain, false, 0, {"starts with \".\""}},
      {"hidden", ".web.service", kPlain, false, 0, {"starts with \".\""}},
      {"NUL",
       std::string("web.service\0.service", 20),
       kPlain,
       false,
       0,
       {"character \\x00 at position 12"}},
      {"NUL over the unit",
       std::string("web\0.service", 12),
       kPlain,
       true,
       0,
       {"character \\x00 at position 4"}},
      {"newline", "web\n.service", kPlain, false, 0, {"character \\n at position 4"}},
      {"terminal escape", "\x1b[2J.service", kPlain, false, 0, {"character \\x1b at position 1"}},
      {"300 characters",
       std::string(292, 'a') + ".service",
       kPlain,
       false,
       0,
       {"300 bytes long", "at most 255"}},
      {"empty", "", kPlain, false, 0, {"unit name is empty"}},
      {"no type", "web", kPlain, false, 0, {"no type suffix"}},
      {"shell in a name", "$(touch x).service", kPlain, false, 0, {"character $ at position 1"}},
      {"unknown desired state", "new.service", kPlain, false, 99, {"unknown desired state 99"}},
  });
}

TEST_F(HostileInputTest, ContentsOverTheLimitAreRefusedSayingTheLimit) {
  std::string big = kPlain + std::string(kOneMiB + 1 - std::string(kPlain).size(), '#');
  ExpectEachRefusedAndNothingChanged({
      {"1 MiB + 1", "big.service", big, false, 0, {"big.service", "1048577 bytes", "(1 MiB) are allowed"}},
      {"1 MiB + 1 over the unit", "web.service", big, true, 0, {"web.service", "1048577 bytes"}},
      {"3 MiB", "big.service", std::string(3 * kOneMiB, '#'), false, 0, {"3145728 bytes", "1 MiB"}},
  });
}

// These reach the engine only when the request's name and contents are not
// checked for UTF-8 by protobuf before the engine sees them (proto3 `string`
// fields are: a request with invalid UTF-8 fails to parse in gRPC, INTERNAL
// with no message). The engine's own check says where the bad byte is.
TEST_F(HostileInputTest, InvalidUtf8IsRefusedSayingWhere) {
  const std::string head = "[Service]\nExecStart=/bin/echo ";  // 30 bytes
  ExpectEachRefusedAndNothingChanged({
      {"0xff 0xfe in a value",
       "bad.service",
       head + "\xff\xfe\n",
       false,
       0,
       {"bad.service", "line 2, column 21", "not valid UTF-8 at byte 30"}},
      {"over the unit",
       "web.service",
       head + "\xff\xfe\n",
       true,
       0,
       {"web.service", "not valid UTF-8 at byte 30"}},
      {"truncated sequence",
       "bad.service",
       head + "caf\xc3\n",
       false,
       0,
       {"not valid UTF-8 at byte 33 of the file (0xc3)"}},
      {"truncated at the end",
       "bad.service",
       head + "\xe2\x82",
       false,
       0,
       {"not valid UTF-8 at byte 30"}},
      {"overlong slash",
       "bad.service",
       head + "\xc0\xaf\n",
       false,
       0,
       {"not valid UTF-8 at byte 30"}},
      {"surrogate",
       "bad.service",
       head + "\xed\xa0\x80\n",
       false,
       0,
       {"not valid UTF-8 at byte 30"}},
      {"NUL", "bad.service", head + std::string("a\0b\n", 4), false, 0, {"NUL byte at byte 31"}},
      {"name", "w\xff\xfe.service", kPlain, false, 0, {"character \\xff at position 2"}},
      {"name over the unit", "web.service\xc3", kPlain, true, 0, {"unknown type"}},
  });
}

// [X-Fleet] values are data: whatever the engine decides about the unit
// (accepted by the grammar, or refused by it), nothing in them is executed.
TEST_F(HostileInputTest, ShellMetacharactersInXFleetAreData) {
  const std::filesystem::path marker = dir_ / "PWNED";
  const std::string m = marker.string();
  struct Case {
    std::string name;
    std::string fleet;  // the [X-Fleet] section's body
  };
  std::vector<Case> cases = {
      {"dollar.service", "MachineMetadata=role=$(touch " + m + ")\n"},
      {"backtick.service", "MachineMetadata=role=`touch " + m + "`\n"},
      {"semicolon.service", "MachineMetadata=role=x; touch " + m + "\n"},
      {"quoted.service", "MachineMetadata=\"role=a\" \"x=$(touch " + m + ")\"\n"},
      {"pipe.service", "MachineMetadata=role=a|touch " + m + "&&true\n"},
      {"machineid.service", "MachineID=$(touch " + m + ")\n"},
      {"conflicts.service", "Conflicts=`touch " + m + "`*\n"},
      {"machineof.service", "MachineOf=$(touch " + m + ").service\n"},
  };
  int accepted = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fleet);
    std::string contents = std::string(kPlain) + "[X-Fleet]\n" + c.fleet;
    grpc::Status status = Create(stub_.get(), c.name, contents, false, v1::DESIRED_STATE_LAUNCHED);
    if (status.ok()) {
      ++accepted;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + kDeadline);
      v1::GetUnitRequest request;
      request.set_name(c.name);
      v1::Unit unit;
      ASSERT_TRUE(stub_->GetUnit(&context, request, &unit).ok());
      EXPECT_EQ(unit.contents(), contents);  // kept verbatim, as data
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr(c.name));
    }
  }
  // The metadata values above are plain key=value items: the grammar takes them.
  EXPECT_GE(accepted, 4);
  EXPECT_FALSE(std::filesystem::exists(marker)) << m << " was created: something ran";
  EXPECT_EQ(kill(engine_->pid, 0), 0) << "the engine died: " << engine_->output;
}

// 10,000 bad CreateUnit requests from a few clients while another client
// makes good calls: every good call succeeds within the normal deadline, every
// bad one is refused, and the engine lives. Latencies are printed, not judged.
TEST_F(HostileInputTest, FloodOfBadRequestsLeavesTheEngineResponsive) {
  ASSERT_TRUE(Create(stub_.get(), "web.service", kPlain).ok());
  constexpr int kFloodThreads = 4;
  constexpr int kBadRequests = 10000;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"../x.service", kPlain},
      {std::string("a\0b.service", 11), kPlain},
      {std::string(300, 'a'), kPlain},
      {"web.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nNoSuchKey=1\n"},
      {"web.service", "ExecStart=/bin/true\n"},
      {"web.service", std::string("[Service]\nExecStart=/bin/\0true\n", 31)},
  };
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::atomic<int> flooders_done{0};
  std::string first_other;  // written by the thread that saw it first (guarded by `other`)
  std::vector<std::thread> flood;
  const auto flood_start = std::chrono::steady_clock::now();
  for (int t = 0; t < kFloodThreads; ++t) {
    flood.emplace_back([&, t] {
      std::unique_ptr<v1::Fleet::Stub> stub = NewStub();
      for (int i = t; i < kBadRequests; i += kFloodThreads) {
        const auto& [name, contents] = bad[static_cast<size_t>(i) % bad.size()];
        // Every 500th request is also too large (1 MiB + 1 byte of contents).
        grpc::Status status =
            i % 500 == 0 ? Create(stub.get(), "big.service",
                                  contents + std::string(kOneMiB + 1 - contents.size(), '#'), true)
                         : Create(stub.get(), name, contents, true);
        if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
          refused.fetch_add(1);
        } else if (other.fetch_add(1) == 0) {
          first_other = absl::StrCat(status.error_code(), " ", status.error_message());
        }
      }
      flooders_done.fetch_add(1);
    });
  }

  // The good client: alternately lists every unit and creates a new one, until
  // the flood is over (and at least 20 times).
  std::vector<double> latencies_ms;
  std::vector<std::string> failures;
  std::unique_ptr<v1::Fleet::Stub> good = NewStub();
  int created = 0;
  while (flooders_done.load() < kFloodThreads || latencies_ms.size() < 20) {
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status;
    if (latencies_ms.size() % 2 == 0) {
      v1::ListUnitsResponse response;
      status = ListAll(good.get(), &response);
    } else {
      status = Create(good.get(), absl::StrCat("good-", created, ".service"), kPlain);
      if (status.ok()) ++created;
    }
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!status.ok())
      failures.push_back(absl::StrCat(status.error_code(), " ", status.error_message()));
  }
  for (std::thread& thread : flood) thread.join();
  const double flood_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - flood_start).count();

  EXPECT_EQ(refused.load(), kBadRequests) << other.load() << " not refused, first: " << first_other;
  EXPECT_THAT(failures, testing::IsEmpty());
  ASSERT_FALSE(latencies_ms.empty());
  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "flood: %d bad CreateUnit requests from %d clients in %.2f s (%.0f/s); %zu good calls "
      "meanwhile: median %.2f ms, worst %.2f ms\n",
      kBadRequests, kFloodThreads, flood_s, kBadRequests / flood_s, sorted.size(),
      sorted[sorted.size() / 2], sorted.back());
  const double deadline_ms = std::chrono::duration<double, std::milli>(kDeadline).count();
  EXPECT_LT(sorted.back(), deadline_ms);

  // Nothing bad was stored; every good unit was, and web.service is as it was.
  v1::ListUnitsResponse after = MustListAll();
  ASSERT_EQ(after.units_size(), created + 1);
  std::map<std::string, std::string> stored;
  for (const v1::Unit& unit : after.units()) stored[unit.name()] = unit.contents();
  EXPECT_EQ(stored["web.service"], kPlain);
  for (int i = 0; i < created; ++i)
    EXPECT_EQ(stored.count(absl::StrCat("good-", i, ".service")), 1u);
  EXPECT_EQ(kill(engine_->pid, 0), 0) << "the engine died: " << engine_->output;
}

}  // namespace
}  // namespace fleet::test
