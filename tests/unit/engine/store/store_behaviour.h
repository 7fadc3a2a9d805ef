#pragma once

// A behaviour suite over the Store seam (engine/store/store.h), so that every
// implementation is held to the same etcd-shaped semantics. An implementation
// joins by instantiating it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Embedded, StoreBehaviourTest,
//                            ::testing::Values(StoreFactory{"Embedded", MakeEmbedded}),
//                            [](const auto& info) { return info.param.name; });

#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "engine/store/store.h"
#include "gtest/gtest.h"

namespace fleet::testing {

// What a factory returns: a fresh, empty store and the means to move its time.
struct StoreUnderTest {
  std::shared_ptr<void> resources;  // destroyed after `store` (clock, data dir, ...)
  std::unique_ptr<Store> store;
  // Moves the store's time forward by `d` and lets it expire the leases due by then.
  std::function<void(absl::Duration)> advance;
};

struct StoreFactory {
  std::string name;
  std::function<StoreUnderTest()> make;
  // False for a store whose leases expire on a clock the test cannot move
  // (etcd's own): the tests in TestsThatMoveTime() are skipped for it, and
  // that store's own tests cover lease expiry in real time.
  bool moves_time = true;
};

// The tests of the suite that call Advance(). A new one must be added here,
// or it fails (not skips) for a store that cannot move time.
inline const std::set<std::string>& TestsThatMoveTime() {
  static const std::set<std::string> names = {"LeaseExpiryDeletesItsKeysInOneRevision",
                                              "KeepAliveRenewsForTheFullTtl"};
  return names;
}

// Names the parameter in test output by the factory's name.
inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

class StoreBehaviourTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (!GetParam().moves_time) {
      std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      test = test.substr(0, test.find('/'));
      if (TestsThatMoveTime().count(test) > 0) {
        GTEST_SKIP() << GetParam().name << " expires leases on its own clock; see its own tests";
      }
    }
    sut_ = GetParam().make();
    ASSERT_NE(sut_.store, nullptr) << GetParam().name << ": the factory made no store";
  }
  void TearDown() override {
    sut_.store.reset();
    sut_.resources.reset();
  }
  Store& store() { return *sut_.store; }
  void Advance(absl::Duration d) {
    if (!sut_.advance) {
      ADD_FAILURE() << GetParam().name << " cannot move time: list this test in TestsThatMoveTime()";
      return;
    }
    sut_.advance(d);
  }

 private:
  StoreUnderTest sut_;
};

}  // namespace fleet::testing
