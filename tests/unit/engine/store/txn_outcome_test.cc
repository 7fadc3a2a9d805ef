// Resolving a transaction whose answer was lost: the decision on the keys as
// they are now (DecideOutcome), and ResolveOutcome on an EmbeddedStore behind
// a FaultStore that loses answers after applying the transaction or instead.

#include "engine/store/txn_outcome.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "engine/store/embedded_store.h"
#include "gtest/gtest.h"
#include "tests/support/fault_store.h"
#include "tests/unit/engine/store/temp_dir.h"

namespace fleet::testing {
namespace {

using Kind = TxnOutcome::Kind;

KeyValue Kv(const std::string& key, const std::string& value, int64_t mod_revision) {
  return KeyValue{.key = key,
                  .value = value,
                  .create_revision = 1,
                  .mod_revision = mod_revision,
                  .version = 1,
                  .lease = 0};
}

Compare ModRevisionIs(const std::string& key, int64_t revision) {
  Compare c;
  c.key = key;
  c.target = Compare::Target::kModRevision;
  c.result = Compare::Result::kEqual;
  c.number = revision;
  return c;
}

Operation PutOp(const std::string& key, const std::string& value) {
  Operation op;
  op.kind = Operation::Kind::kPut;
  op.key = key;
  op.value = value;
  return op;
}

Operation DeleteOp(const std::string& key, Operation::Kind kind = Operation::Kind::kDelete) {
  Operation op;
  op.kind = kind;
  op.key = key;
  return op;
}

Transaction Txn(std::vector<Compare> compares, std::vector<Operation> on_success,
                std::vector<Operation> on_failure = {}) {
  Transaction txn;
  txn.compares = std::move(compares);
  txn.on_success = std::move(on_success);
  txn.on_failure = std::move(on_failure);
  return txn;
}

TEST(OutcomeUnknownTest, MarksOnlyTheStatusItIsGiven) {
  absl::Status unknown = OutcomeUnknownError("etcd at m1: txn may or may not have been applied");
  EXPECT_TRUE(absl::IsUnavailable(unknown));
  EXPECT_TRUE(IsOutcomeUnknown(unknown));
  EXPECT_EQ(unknown.message(), "etcd at m1: txn may or may not have been applied");
  EXPECT_FALSE(IsOutcomeUnknown(absl::UnavailableError("etcd at m1: not connected")));
  EXPECT_FALSE(IsOutcomeUnknown(absl::OkStatus()));
}

TEST(DecideOutcomeTest, ComparesThatStillHoldMeanSendAgain) {
  Transaction txn = Txn({ModRevisionIs("/u/a", 5)}, {PutOp("/u/a", "new")});
  EXPECT_EQ(DecideOutcome(txn, {{"/u/a", Kv("/u/a", "old", 5)}}, 9).kind, Kind::kSendAgain);
  // A new key (compare on revision 0) that is still missing.
  Transaction create = Txn({ModRevisionIs("/u/b", 0)}, {PutOp("/u/b", "v")});
  EXPECT_EQ(DecideOutcome(create, {}, 9).kind, Kind::kSendAgain);
}

TEST(DecideOutcomeTest, KeysAsWrittenAtOneRevisionMeanApplied) {
  Transaction txn = Txn({ModRevisionIs("/u/a", 5), ModRevisionIs("/u/b", 6)},
                        {PutOp("/u/a", "A"), PutOp("/u/b", "B"), DeleteOp("/s/a")});
  TxnOutcome outcome =
      DecideOutcome(txn, {{"/u/a", Kv("/u/a", "A", 8)}, {"/u/b", Kv("/u/b", "B", 8)}}, 11);
  EXPECT_EQ(outcome.kind, Kind::kApplied);
  EXPECT_EQ(outcome.revision, 8) << "the revision of the transaction, not of the read";
}

TEST(DecideOutcomeTest, KeysChangedByAnotherWriterMeanFailed) {
  Transaction txn = Txn({ModRevisionIs("/u/a", 5), ModRevisionIs("/u/b", 6)},
                        {PutOp("/u/a", "A"), PutOp("/u/b", "B")});
  // Another value.
  EXPECT_EQ(
      DecideOutcome(txn, {{"/u/a", Kv("/u/a", "X", 8)}, {"/u/b", Kv("/u/b", "B", 8)}}, 9).kind,
      Kind::kFailed);
  // The same values, but at two revisions: not one transaction.
  EXPECT_EQ(
      DecideOutcome(txn, {{"/u/a", Kv("/u/a", "A", 7)}, {"/u/b", Kv("/u/b", "B", 8)}}, 9).kind,
      Kind::kFailed);
  // A key put with another lease.
  KeyValue leased = Kv("/u/b", "B", 8);
  leased.lease = 42;
  EXPECT_EQ(DecideOutcome(txn, {{"/u/a", Kv("/u/a", "A", 8)}, {"/u/b", leased}}, 9).kind,
            Kind::kFailed);
  // A key deleted by the transaction that exists again.
  Transaction destroy = Txn({ModRevisionIs("/u/a", 5)}, {DeleteOp("/u/a")});
  TxnOutcome outcome = DecideOutcome(destroy, {{"/u/a", Kv("/u/a", "again", 12)}}, 12);
  EXPECT_EQ(outcome.kind, Kind::kFailed);
  EXPECT_EQ(outcome.revision, 12);
}

TEST(DecideOutcomeTest, DeletesOnlyCountAsAppliedAtTheReadRevision) {
  Transaction destroy = Txn({ModRevisionIs("/u/a", 5)}, {DeleteOp("/u/a"), DeleteOp("/s/a")});
  TxnOutcome outcome = DecideOutcome(destroy, {}, 14);
  EXPECT_EQ(outcome.kind, Kind::kApplied);
  EXPECT_EQ(outcome.revision, 14);
}

TEST(DecideOutcomeTest, WhatTheKeysCannotTellStaysUnknown) {
  Transaction with_failure_branch =
      Txn({ModRevisionIs("/u/a", 5)}, {PutOp("/u/a", "A")}, {PutOp("/u/b", "B")});
  EXPECT_EQ(DecideOutcome(with_failure_branch, {{"/u/a", Kv("/u/a", "A", 8)}}, 9).kind,
            Kind::kUnknown);
  Transaction prefix =
      Txn({ModRevisionIs("/u/a", 5)}, {DeleteOp("/s/", Operation::Kind::kDeletePrefix)});
  EXPECT_EQ(DecideOutcome(prefix, {}, 9).kind, Kind::kUnknown);
}

class ResolveOutcomeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmbeddedStoreOptions options;
    options.dir = dir_.path();
    options.clock = &clock_;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    real_ = std::move(*store);
    faulty_ = std::make_unique<FaultStore>(real_.get());
  }

  // Sends `txn` through the FaultStore and resolves it as the engine does.
  absl::StatusOr<TxnResult> Commit(const Transaction& txn) {
    absl::StatusOr<TxnResult> result = faulty_->Txn(txn);
    if (IsOutcomeUnknown(result.status())) result = ResolveOutcome(*faulty_, txn, result.status());
    return result;
  }
  std::string ValueOf(const std::string& key) {
    absl::StatusOr<KeyValue> kv = real_->Get(key);
    return kv.ok() ? kv->value
                   : "<" + std::string(absl::StatusCodeToString(kv.status().code())) + ">";
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<EmbeddedStore> real_;
  std::unique_ptr<FaultStore> faulty_;
};

TEST_F(ResolveOutcomeTest, AnswerLostAfterApplyingIsReportedAppliedAndNotAppliedTwice) {
  absl::StatusOr<int64_t> put = real_->Put("/u/a", "old");
  ASSERT_TRUE(put.ok());
  Transaction txn = Txn({ModRevisionIs("/u/a", *put)}, {PutOp("/u/a", "new")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kApplied);
  absl::StatusOr<TxnResult> result = Commit(txn);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(faulty_->lost_answers(), 1);
  EXPECT_TRUE(result->succeeded);
  absl::StatusOr<KeyValue> kv = real_->Get("/u/a");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, "new");
  EXPECT_EQ(kv->version, 2) << "written once, not again";
  EXPECT_EQ(result->revision, kv->mod_revision);
}

TEST_F(ResolveOutcomeTest, AnswerLostBeforeApplyingIsSentOnceMore) {
  Transaction create = Txn({ModRevisionIs("/u/b", 0)}, {PutOp("/u/b", "v"), PutOp("/s/b", "m1")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kNotApplied);
  absl::StatusOr<TxnResult> result = Commit(create);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  EXPECT_EQ(ValueOf("/u/b"), "v");
  EXPECT_EQ(ValueOf("/s/b"), "m1");
  EXPECT_EQ(real_->Get("/u/b")->mod_revision, result->revision);
}

TEST_F(ResolveOutcomeTest, AnotherWriterInBetweenMakesItAFailedCompareAndIsKept) {
  absl::StatusOr<int64_t> put = real_->Put("/u/a", "old");
  ASSERT_TRUE(put.ok());
  Transaction txn = Txn({ModRevisionIs("/u/a", *put)}, {PutOp("/u/a", "mine")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kNotApplied,
                             [this] { ASSERT_TRUE(real_->Put("/u/a", "theirs").ok()); });
  absl::StatusOr<TxnResult> result = Commit(txn);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->succeeded);
  EXPECT_EQ(ValueOf("/u/a"), "theirs");
}

TEST_F(ResolveOutcomeTest, DeleteWhoseAnswerWasLostAfterApplyingSucceeds) {
  absl::StatusOr<int64_t> put = real_->Put("/u/a", "old");
  ASSERT_TRUE(put.ok());
  Transaction destroy = Txn({ModRevisionIs("/u/a", *put)}, {DeleteOp("/u/a")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kApplied);
  absl::StatusOr<TxnResult> result = Commit(destroy);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  EXPECT_EQ(ValueOf("/u/a"), "<NOT_FOUND>");
}

// The read-back finds nothing, so the transaction is sent again; but the
// first send is applied just before (etcd applying a proposal it had read
// before it stopped answering). The second send fails on its compare, and a
// second read-back finds the first send's write: succeeded, exactly once.
TEST_F(ResolveOutcomeTest, FirstSendAppliedWhileResolvingIsReportedAppliedOnce) {
  Transaction create = Txn({ModRevisionIs("/u/b", 0)}, {PutOp("/u/b", "v")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kAppliedLater);
  absl::StatusOr<TxnResult> result = Commit(create);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  absl::StatusOr<KeyValue> kv = real_->Get("/u/b");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->version, 1);
  EXPECT_EQ(result->revision, kv->mod_revision);
}

TEST_F(ResolveOutcomeTest, AKeyComparedAndWrittenIsReadOnce) {
  Transaction create = Txn({ModRevisionIs("/u/b", 0)}, {PutOp("/u/b", "v"), PutOp("/s/b", "m1")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kApplied);
  const int reads_before = faulty_->reads();
  absl::StatusOr<TxnResult> result = Commit(create);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  EXPECT_EQ(faulty_->reads() - reads_before, 2) << "/u/b and /s/b, each once";
}

TEST_F(ResolveOutcomeTest, ATransactionTheKeysCannotSettleIsNotReadBack) {
  Transaction either = Txn({ModRevisionIs("/u/a", 0)}, {PutOp("/u/a", "v")});
  either.on_failure.push_back(PutOp("/u/other", "w"));
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kApplied);
  const int reads_before = faulty_->reads();
  absl::StatusOr<TxnResult> result = Commit(either);
  EXPECT_TRUE(IsOutcomeUnknown(result.status())) << result.status();
  EXPECT_EQ(faulty_->reads(), reads_before);
}

TEST_F(ResolveOutcomeTest, UnreadableStoreKeepsTheUnknownOutcome) {
  Transaction create = Txn({ModRevisionIs("/u/b", 0)}, {PutOp("/u/b", "v")});
  faulty_->LoseNextTxnAnswer(FaultStore::LostAnswer::kNotApplied,
                             [this] { faulty_->set_down(true); });
  absl::StatusOr<TxnResult> result = Commit(create);
  EXPECT_TRUE(IsOutcomeUnknown(result.status())) << result.status();
  EXPECT_EQ(result.status().message(), "fault store: the answer was lost");
  EXPECT_EQ(ValueOf("/u/b"), "<NOT_FOUND>") << "not sent again while the outcome is unknown";
}

}  // namespace
}  // namespace fleet::testing
