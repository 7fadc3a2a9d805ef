// EmbeddedStore: the Store behaviour suite, plus durability and recovery.

#include "engine/store/embedded_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "engine/store/wal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/store/store_behaviour.h"
#include "tests/unit/engine/store/temp_dir.h"
#include "tests/unit/engine/store/watch_recorder.h"

namespace fleet::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A fresh EmbeddedStore on a FakeClock; `snapshot_every_records` small makes
// snapshots happen in the middle of every test, which must not change behaviour.
StoreUnderTest MakeEmbedded(int64_t snapshot_every_records) {
  struct Resources {
    TempDir dir;
    FakeClock clock;
  };
  auto resources = std::make_shared<Resources>();
  EmbeddedStoreOptions options;
  options.dir = resources->dir.path();
  options.clock = &resources->clock;
  options.snapshot_every_records = snapshot_every_records;
  absl::StatusOr<std::unique_ptr<EmbeddedStore>> store = EmbeddedStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  EmbeddedStore* raw = store->get();
  StoreUnderTest sut;
  sut.store = std::move(*store);
  sut.advance = [raw, clock = &resources->clock](absl::Duration d) {
    clock->Advance(d);
    raw->ExpireLeases();
  };
  sut.resources = std::move(resources);
  return sut;
}

INSTANTIATE_TEST_SUITE_P(
    Embedded, StoreBehaviourTest,
    ::testing::Values(StoreFactory{"Embedded", [] { return MakeEmbedded(100000); }},
                      StoreFactory{"EmbeddedSnapshotting", [] { return MakeEmbedded(3); }}),
    [](const auto& info) { return info.param.name; });

class EmbeddedStoreTest : public ::testing::Test {
 protected:
  EmbeddedStoreOptions Options() {
    EmbeddedStoreOptions o;
    o.dir = dir_.path();
    o.clock = &clock_;
    o.group_commit_window = absl::ZeroDuration();
    o.snapshot_every_records = snapshot_every_;
    return o;
  }
  std::unique_ptr<EmbeddedStore> Open() {
    absl::StatusOr<std::unique_ptr<EmbeddedStore>> s = EmbeddedStore::Open(Options());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string Segment(uint64_t n = 1) {
    char name[64];
    snprintf(name, sizeof(name), "/wal-%016llx.log", static_cast<unsigned long long>(n));
    return dir_.path() + name;
  }
  std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::vector<KeyValue> All(Store& s) { return s.Range("")->kvs; }

  TempDir dir_;
  FakeClock clock_;
  int64_t snapshot_every_ = 1000000;
};

std::string ReadFile(const std::string& path) { return *store::ReadWholeFile(path); }
void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

TEST_F(EmbeddedStoreTest, NewStoreStartsAtRevisionOne) {
  auto s = Open();
  EXPECT_EQ(s->revision(), 1);
  EXPECT_EQ(*s->Put("/a", "x"), 2);
}

TEST_F(EmbeddedStoreTest, ReopenKeepsKeysRevisionsLeasesAndDeletions) {
  std::vector<KeyValue> before;
  int64_t revision;
  LeaseId lease;
  {
    auto s = Open();
    lease = *s->GrantLease(absl::Seconds(30));
    ASSERT_TRUE(s->Put("/a", "1").ok());
    ASSERT_TRUE(s->Put("/a", "2").ok());
    ASSERT_TRUE(s->Put("/b", "leased", lease).ok());
    ASSERT_TRUE(s->Put("/c", "doomed").ok());
    ASSERT_TRUE(s->Delete("/c").ok());
    Transaction txn;
    txn.on_success = {{Operation::Kind::kPut, "/d", "txn", 0},
                      {Operation::Kind::kPut, "/e", "txn", 0}};
    ASSERT_TRUE(s->Txn(txn).ok());
    before = All(*s);
    revision = s->revision();
  }
  auto s = Open();
  EXPECT_EQ(All(*s), before);
  EXPECT_EQ(s->revision(), revision);
  EXPECT_THAT(s->recovery_notes(), IsEmpty());
  EXPECT_TRUE(s->KeepAlive(lease).ok());
  // A new lease does not reuse the id of an old one.
  EXPECT_GT(*s->GrantLease(absl::Seconds(1)), lease);
  EXPECT_EQ(*s->Put("/f", "x"), revision + 1);
}

TEST_F(EmbeddedStoreTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto s = Open();
  EXPECT_EQ(EmbeddedStore::Open(Options()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EmbeddedStoreTest, ExpiredLeaseKeysDoNotComeBackAfterRestart) {
  LeaseId lease;
  {
    auto s = Open();
    lease = *s->GrantLease(absl::Seconds(10));
    ASSERT_TRUE(s->Put("/l/a", "1", lease).ok());
    clock_.Advance(absl::Seconds(11));
    s->ExpireLeases();
    ASSERT_EQ(s->Get("/l/a").status().code(), absl::StatusCode::kNotFound);
  }
  auto s = Open();
  EXPECT_EQ(s->Get("/l/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s->KeepAlive(lease).code(), absl::StatusCode::kNotFound);
}

TEST_F(EmbeddedStoreTest, LeaseRestartsWithFullTtlAfterRestart) {
  LeaseId lease;
  {
    auto s = Open();
    lease = *s->GrantLease(absl::Seconds(10));
    ASSERT_TRUE(s->Put("/l/a", "1", lease).ok());
    clock_.Advance(absl::Seconds(9));
  }
  auto s = Open();
  clock_.Advance(absl::Seconds(9));
  s->ExpireLeases();
  EXPECT_TRUE(s->Get("/l/a").ok());
  clock_.Advance(absl::Seconds(2));
  s->ExpireLeases();
  EXPECT_EQ(s->Get("/l/a").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EmbeddedStoreTest, WatchFromBeforeTheKeptHistoryIsOutOfRange) {
  EmbeddedStoreOptions o = Options();
  o.watch_history_events = 2;
  auto s = *EmbeddedStore::Open(o);
  int64_t first = *s->Put("/w/1", "x");
  for (int i = 2; i <= 5; ++i) ASSERT_TRUE(s->Put(absl::StrCat("/w/", i), "x").ok());
  WatchRecorder rec;
  EXPECT_EQ(s->Watch("/w/", first, rec.Events(), rec.Errors()).status().code(),
            absl::StatusCode::kOutOfRange);
  // The last two revisions are still there.
  auto handle = s->Watch("/w/", s->revision() - 1, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_THAT(rec.WaitForEvents(2), SizeIs(2));
}

TEST_F(EmbeddedStoreTest, WatchFromBeforeARestartIsOutOfRange) {
  int64_t first;
  {
    auto s = Open();
    first = *s->Put("/w/1", "x");
  }
  auto s = Open();
  WatchRecorder rec;
  EXPECT_EQ(s->Watch("/w/", first, rec.Events(), rec.Errors()).status().code(),
            absl::StatusCode::kOutOfRange);
  auto handle = s->Watch("/w/", s->revision() + 1, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(s->Put("/w/2", "x").ok());
  EXPECT_THAT(rec.WaitForEvents(1), SizeIs(1));
}

TEST_F(EmbeddedStoreTest, ClosingTheStoreEndsLiveWatchesWithUnavailable) {
  auto s = Open();
  WatchRecorder rec;
  auto handle = s->Watch("/w/", 0, rec.Events(), rec.Errors());
  ASSERT_TRUE(handle.ok());
  s.reset();
  std::vector<absl::Status> errors = rec.WaitForError();
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].code(), absl::StatusCode::kUnavailable);
  handle->reset();  // outliving the store is allowed
}

// Every byte offset inside the last record: the record is cut, the rest stays.
TEST_F(EmbeddedStoreTest, TornLastRecordIsCutAtEveryByteOffset) {
  uint64_t good_size, full_size;
  std::vector<KeyValue> good_state;
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("/a", "1").ok());
    ASSERT_TRUE(s->Put("/b", "2").ok());
    good_state = All(*s);
    good_size = std::filesystem::file_size(Segment());
    ASSERT_TRUE(s->Put("/torn", std::string(40, 'x')).ok());
    full_size = std::filesystem::file_size(Segment());
  }
  std::string full = ReadFile(Segment());
  ASSERT_EQ(full.size(), full_size);
  for (uint64_t cut = good_size; cut < full_size; ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    WriteFile(Segment(), full.substr(0, cut));
    {
      auto s = Open();
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(All(*s), good_state);
      EXPECT_EQ(std::filesystem::file_size(Segment()), good_size);
      if (cut == good_size) {
        EXPECT_THAT(s->recovery_notes(), IsEmpty());
      } else {
        ASSERT_THAT(s->recovery_notes(), SizeIs(1));
        EXPECT_THAT(s->recovery_notes()[0],
                    HasSubstr(absl::StrCat(Segment(), " at byte offset ", good_size)));
      }
      // The store goes on writing after the cut, and that survives too.
      ASSERT_TRUE(s->Put("/after", "y").ok());
    }
    auto s = Open();
    EXPECT_EQ(s->Get("/after")->value, "y");
    EXPECT_THAT(s->recovery_notes(), IsEmpty());
  }
}

TEST_F(EmbeddedStoreTest, GarbageAfterTheLastRecordIsCut) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("/a", "1").ok());
  }
  uint64_t size = std::filesystem::file_size(Segment());
  WriteFile(Segment(), ReadFile(Segment()) + std::string(4096, '\0') + "garbage");
  auto s = Open();
  EXPECT_EQ(s->Get("/a")->value, "1");
  EXPECT_EQ(std::filesystem::file_size(Segment()), size);
  EXPECT_THAT(s->recovery_notes(), SizeIs(1));
}

TEST_F(EmbeddedStoreTest, CorruptRecordInTheMiddleIsDataLossNamingFileAndOffset) {
  uint64_t second_record;
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("/a", "first").ok());
    second_record = std::filesystem::file_size(Segment());
    ASSERT_TRUE(s->Put("/b", "second").ok());
    ASSERT_TRUE(s->Put("/c", "third").ok());
  }
  std::string original = ReadFile(Segment());
  // A flipped bit in the payload, and in the length of the header.
  for (uint64_t at : {second_record + store::kFrameHeaderSize + 3, second_record + 1}) {
    SCOPED_TRACE(absl::StrCat("damage at ", at));
    std::string damaged = original;
    damaged[at] ^= 0x10;
    WriteFile(Segment(), damaged);
    absl::StatusOr<std::unique_ptr<EmbeddedStore>> s = EmbeddedStore::Open(Options());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(s.status().message(), HasSubstr(Segment()));
    EXPECT_THAT(s.status().message(), HasSubstr(absl::StrCat("byte offset ", second_record)));
    // Nothing was cut: the file is as it was found.
    EXPECT_EQ(ReadFile(Segment()), damaged);
  }
}

TEST_F(EmbeddedStoreTest, SnapshotBoundsTheLogAndRecoveryReplaysTheRest) {
  snapshot_every_ = 10;
  std::vector<KeyValue> before;
  int64_t revision;
  LeaseId kept, expired;
  {
    auto s = Open();
    kept = *s->GrantLease(absl::Seconds(100));
    expired = *s->GrantLease(absl::Seconds(5));
    for (int i = 0; i < 35; ++i) {
      ASSERT_TRUE(s->Put(absl::StrCat("/k/", i % 7), absl::StrCat(i)).ok());
    }
    ASSERT_TRUE(s->Put("/leased/kept", "x", kept).ok());
    ASSERT_TRUE(s->Put("/leased/expired", "x", expired).ok());
    ASSERT_TRUE(s->Delete("/k/3").ok());
    clock_.Advance(absl::Seconds(6));
    s->ExpireLeases();
    before = All(*s);
    revision = s->revision();
  }
  std::vector<std::string> files = Files();
  // One snapshot and the segment(s) after it; the older ones were deleted.
  int snaps = 0, wals = 0;
  for (const std::string& f : files) {
    snaps += f.starts_with("snap-");
    wals += f.starts_with("wal-");
  }
  EXPECT_EQ(snaps, 1) << ::testing::PrintToString(files);
  EXPECT_EQ(wals, 1) << ::testing::PrintToString(files);
  EXPECT_EQ(std::filesystem::exists(Segment(1)), false);

  auto s = Open();
  EXPECT_EQ(All(*s), before);
  EXPECT_EQ(s->revision(), revision);
  EXPECT_TRUE(s->KeepAlive(kept).ok());
  EXPECT_EQ(s->KeepAlive(expired).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s->Get("/leased/kept")->lease, kept);
}

// Values are kept in the store's files, not in memory: whatever file holds
// one (the segment it was written to, then the snapshot that took it over,
// then the next), reads give back exactly what was written. Sizes span the
// empty value and values larger than a snapshot's chunk of 1 MiB.
TEST_F(EmbeddedStoreTest, ValuesAreReadBackFromTheirFilesThroughSnapshotsAndRestarts) {
  snapshot_every_ = 3;
  const std::vector<std::string> values = {"", "x", std::string(300 << 10, 'a'), std::string(1536 << 10, 'b'),
                                           "the last"};
  std::map<std::string, std::string> expected;
  auto check = [&](Store& s) {
    for (const auto& [key, value] : expected) {
      absl::StatusOr<KeyValue> kv = s.Get(key);
      ASSERT_TRUE(kv.ok()) << key << ": " << kv.status();
      EXPECT_EQ(kv->value.size(), value.size()) << key;
      EXPECT_TRUE(kv->value == value) << key;
    }
  };
  {
    auto s = Open();
    for (int round = 0; round < 12; ++round) {
      Transaction txn;  // several values in one record
      for (int k = 0; k < 3; ++k) {
        const std::string key = absl::StrCat("/v/", (round + k) % 7);
        const std::string& value = values[(round * 3 + k) % values.size()];
        txn.on_success.push_back({.kind = Operation::Kind::kPut, .key = key, .value = value, .lease = 0});
        expected[key] = value;
      }
      ASSERT_TRUE(s->Txn(txn).ok());
      ASSERT_TRUE(s->Put("/single", values[round % values.size()]).ok());
      expected["/single"] = values[round % values.size()];
      check(*s);
    }
  }
  int snaps = 0;
  for (const std::string& f : Files()) snaps += f.starts_with("snap-");
  EXPECT_EQ(snaps, 1);
  auto s = Open();
  check(*s);
  EXPECT_EQ(All(*s).size(), expected.size());
}

TEST_F(EmbeddedStoreTest, MissingSegmentAfterSnapshotIsDataLoss) {
  snapshot_every_ = 5;
  {
    auto s = Open();
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(s->Put("/k", absl::StrCat(i)).ok());
  }
  for (const std::string& f : Files()) {
    if (f.starts_with("wal-")) std::filesystem::remove(dir_.path() + "/" + f);
  }
  absl::StatusOr<std::unique_ptr<EmbeddedStore>> s = EmbeddedStore::Open(Options());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("missing"));
}

TEST_F(EmbeddedStoreTest, CorruptSnapshotIsDataLoss) {
  snapshot_every_ = 5;
  {
    auto s = Open();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->Put(absl::StrCat("/k/", i), "value").ok());
  }
  std::string snap;
  for (const std::string& f : Files()) {
    if (f.starts_with("snap-")) snap = dir_.path() + "/" + f;
  }
  ASSERT_FALSE(snap.empty());
  std::string data = ReadFile(snap);
  WriteFile(snap, data.substr(0, data.size() - 3));
  absl::StatusOr<std::unique_ptr<EmbeddedStore>> s = EmbeddedStore::Open(Options());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr(snap));
}

TEST_F(EmbeddedStoreTest, LeftoverTemporarySnapshotIsIgnoredAndRemoved) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("/a", "1").ok());
  }
  WriteFile(dir_.path() + "/snap-0000000000000009.snap.tmp", "half a snapshot");
  auto s = Open();
  EXPECT_EQ(s->Get("/a")->value, "1");
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/snap-0000000000000009.snap.tmp"));
}

TEST_F(EmbeddedStoreTest, TxnOfManyOperationsIsOneRecord) {
  auto s = Open();
  Transaction txn;
  for (int i = 0; i < 100; ++i) {
    txn.on_success.push_back({Operation::Kind::kPut, absl::StrCat("/k/", i), "v", 0});
  }
  EmbeddedStore::CommitStats before = s->commit_stats();
  ASSERT_TRUE(s->Txn(txn).ok());
  EXPECT_EQ(s->commit_stats().records, before.records + 1);
  EXPECT_EQ(s->commit_stats().syncs, before.syncs + 1);
}

TEST_F(EmbeddedStoreTest, ConcurrentWritersShareFsyncs) {
  EmbeddedStoreOptions o = Options();
  o.group_commit_window = absl::Milliseconds(2);
  auto s = *EmbeddedStore::Open(o);
  constexpr int kThreads = 16, kEach = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(s->Put(absl::StrCat("/c/", t, "/", i), "x").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EmbeddedStore::CommitStats stats = s->commit_stats();
  EXPECT_EQ(stats.records, kThreads * kEach);
  // Writers that wait together share one write + fdatasync.
  EXPECT_LT(stats.syncs, stats.records / 2);
  std::printf("%lld records in %lld syncs\n", static_cast<long long>(stats.records),
              static_cast<long long>(stats.syncs));
}

TEST_F(EmbeddedStoreTest, BadOptionsAreInvalid) {
  EmbeddedStoreOptions no_clock = Options();
  no_clock.clock = nullptr;
  EXPECT_EQ(EmbeddedStore::Open(no_clock).status().code(), absl::StatusCode::kInvalidArgument);
  EmbeddedStoreOptions no_dir = Options();
  no_dir.dir = "";
  EXPECT_EQ(EmbeddedStore::Open(no_dir).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleet::testing
