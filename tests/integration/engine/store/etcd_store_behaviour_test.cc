// The Store behaviour suite (tests/unit/engine/store/store_behaviour_test.cc)
// on EtcdStore against a real 1-member etcd, started fresh for every test.

#include <memory>

#include "engine/store/etcd_store.h"
#include "gtest/gtest.h"
#include "tests/support/etcd_cluster.h"
#include "tests/unit/engine/store/store_behaviour.h"

namespace fleet::testing {
namespace {

StoreUnderTest MakeEtcd() {
  StoreUnderTest sut;
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster = test::EtcdCluster::Start(1);
  if (!cluster.ok()) {
    ADD_FAILURE() << cluster.status();
    return sut;
  }
  EtcdStoreOptions options;
  options.endpoints = (*cluster)->endpoints();
  absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::Open(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return sut;
  }
  sut.store = std::move(*store);
  sut.resources = std::shared_ptr<test::EtcdCluster>(std::move(*cluster));
  return sut;  // no `advance`: etcd expires leases on its own clock
}

INSTANTIATE_TEST_SUITE_P(Etcd, StoreBehaviourTest,
                         ::testing::Values(StoreFactory{"Etcd", MakeEtcd, /*moves_time=*/false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace fleet::testing
