#include <errand/core/ids.hpp>

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace errand {
namespace {

TEST(UuidV7, HasTheLayoutOfRfc9562) {
  std::regex layout("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid_v7();
    ASSERT_TRUE(std::regex_match(id, layout)) << id;
  }
}

TEST(UuidV7, StartsWithTheMillisecondsSoIdsSortByTime) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(0x0189'1234'5678ull));
  std::string id = uuid_v7(t);
  EXPECT_EQ(id.substr(0, 13), "01891234-5678");
  EXPECT_LT(uuid_v7(t), uuid_v7(t + std::chrono::milliseconds(1)));
}

TEST(UuidV7, DoesNotRepeat) {
  std::set<std::string> seen;
  auto t = std::chrono::system_clock::now();
  for (int i = 0; i < 10000; ++i) seen.insert(uuid_v7(t));  // the same millisecond: random bits differ
  EXPECT_EQ(seen.size(), 10000u);
}

}  // namespace
}  // namespace errand
