// SharedName and NamePool: copies share one block of chars, equal names from
// a pool share one, and containers keyed by names are searched with any string.

#include "common/shared_name.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace fleet {
namespace {

TEST(SharedNameTest, CopiesShareTheChars) {
  SharedName name("web@8081.service");
  SharedName copy = name;
  EXPECT_EQ(copy.view().data(), name.view().data());
  EXPECT_EQ(name.holders(), 2u);
  { SharedName third = copy; EXPECT_EQ(name.holders(), 3u); }
  EXPECT_EQ(name.holders(), 2u);
  SharedName moved = std::move(copy);
  EXPECT_EQ(name.holders(), 2u);
  EXPECT_EQ(moved, "web@8081.service");
}

TEST(SharedNameTest, ComparesByChars) {
  SharedName a("a.service");
  SharedName other_a(std::string("a.service"));
  EXPECT_NE(a.view().data(), other_a.view().data());
  EXPECT_EQ(a, other_a);
  EXPECT_EQ(a, absl::string_view("a.service"));
  EXPECT_EQ(a, std::string("a.service"));
  EXPECT_NE(a, "b.service");
  EXPECT_LT(a, SharedName("b.service"));
  EXPECT_EQ(absl::StrCat(a.view(), "!"), "a.service!");
  EXPECT_STREQ(a.c_str(), "a.service");  // NUL-terminated, for fnmatch(3)
}

TEST(SharedNameTest, EmptyHoldsNothing) {
  SharedName empty("");
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.holders(), 0u);
  EXPECT_EQ(empty, SharedName());
  EXPECT_EQ(empty, "");
  EXPECT_STREQ(empty.c_str(), "");
}

TEST(SharedNameTest, MapsAreSearchedWithAnyString) {
  NameMap<int> map;
  map["x.service"] = 1;
  map[std::string("y.service")] = 2;
  EXPECT_EQ(map.at(absl::string_view("x.service")), 1);
  EXPECT_TRUE(map.contains(SharedName("y.service")));
  EXPECT_FALSE(map.contains("z.service"));
}

TEST(NamePoolTest, EqualNamesShareOneBlock) {
  NamePool pool;
  SharedName a = pool.Share("m1");
  SharedName b = pool.Share(std::string("m1"));
  EXPECT_EQ(a.view().data(), b.view().data());
  EXPECT_NE(pool.Share("m2").view().data(), a.view().data());
}

TEST(NamePoolTest, EntryKeysNewEntriesWithTheSharedName) {
  NamePool pool;
  NameMap<int> map;
  SharedName m1 = pool.Share("m1");
  pool.Entry(map, "m1") = 7;
  EXPECT_EQ(map.begin()->first.view().data(), m1.view().data());
  pool.Entry(map, std::string("m1")) += 1;
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.at("m1"), 8);
}

TEST(NamePoolTest, ForgetsNamesNoOneHolds) {
  NamePool pool;
  std::vector<SharedName> kept;
  for (int i = 0; i < 10000; ++i) {
    SharedName name = pool.Share(absl::StrCat("unit-", i, ".service"));
    if (i % 100 == 0) kept.push_back(name);
  }
  // 100 names are held: the pool keeps at most twice the names in use,
  // plus the names made since its last sweep.
  EXPECT_LT(pool.size(), 1000u);
  for (const SharedName& name : kept) EXPECT_EQ(pool.Share(name.view()).view().data(), name.view().data());
}

// Run under ASan: a count of holders that raced would free the block early.
TEST(SharedNameTest, ThreadsCopyAndDropOneName) {
  SharedName name("shared-by-threads.service");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&name] {
      for (int i = 0; i < 100000; ++i) {
        SharedName copy = name;
        if (copy.view().size() != name.view().size()) std::abort();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(name.holders(), 1u);
}

}  // namespace
}  // namespace fleet
