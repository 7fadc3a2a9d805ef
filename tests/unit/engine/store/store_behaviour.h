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
};

// Names the parameter in test output by the factory's name.
inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

class StoreBehaviourTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { sut_ = GetParam().make(); }
  void TearDown() override {
    sut_.store.reset();
    sut_.resources.reset();
  }
  Store& store() { return *sut_.store; }
  void Advance(absl::Duration d) { sut_.advance(d); }

 private:
  StoreUnderTest sut_;
};

}  // namespace fleet::testing
