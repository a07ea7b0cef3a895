#include <errand/core/ids.hpp>

#include <gtest/gtest.h>

#include <set>

namespace errand {
namespace {

// xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx, lower-case hex.
bool has_v7_layout(const std::string& id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (id[i] == '-')) return false;
    if (!dash && !((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return false;
  }
  return id[14] == '7' && std::string("89ab").find(id[19]) != std::string::npos;
}

TEST(UuidV7, HasTheLayoutOfRfc9562) {
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid_v7();
    ASSERT_TRUE(has_v7_layout(id)) << id;
  }
  EXPECT_FALSE(has_v7_layout("01891234-5678-4abc-8def-0123456789ab"));  // version 4
  EXPECT_FALSE(has_v7_layout("01891234-5678-7abc-cdef-0123456789ab"));  // wrong variant
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
