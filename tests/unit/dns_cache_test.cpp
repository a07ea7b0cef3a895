// The per-worker DNS cache and the RFC 8305 address ordering, without sockets.
#include <gtest/gtest.h>

#include "net/connect.hpp"

namespace errand::net {
namespace {

using namespace std::chrono_literals;
using boost::asio::ip::make_address;

tcp::endpoint ep(const char* address, std::uint16_t port = 80) { return tcp::endpoint(make_address(address), port); }

TEST(InterleaveFamiliesTest, AlternatesFamiliesStartingWithTheFirstAddress) {
  auto ordered = interleave_families({ep("::1"), ep("2001:db8::1"), ep("127.0.0.1"), ep("127.0.0.2")});
  ASSERT_EQ(ordered.size(), 4u);
  EXPECT_EQ(ordered[0], ep("::1"));
  EXPECT_EQ(ordered[1], ep("127.0.0.1"));
  EXPECT_EQ(ordered[2], ep("2001:db8::1"));
  EXPECT_EQ(ordered[3], ep("127.0.0.2"));
}

TEST(InterleaveFamiliesTest, KeepsASingleFamilyInOrder) {
  auto ordered = interleave_families({ep("127.0.0.3"), ep("127.0.0.1")});
  ASSERT_EQ(ordered.size(), 2u);
  EXPECT_EQ(ordered[0], ep("127.0.0.3"));
  EXPECT_EQ(ordered[1], ep("127.0.0.1"));
  EXPECT_TRUE(interleave_families({}).empty());
}

TEST(DnsCacheTest, ServesAnEntryUntilItsTtlPasses) {
  DnsCache cache(30s);
  TimePoint t0{std::chrono::hours(1)};
  cache.store("api.internal", 443, {ep("127.0.0.1", 443)}, t0);
  auto* hit = cache.lookup("api.internal", 443, t0 + 29s);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->front(), ep("127.0.0.1", 443));
  EXPECT_EQ(cache.lookup("api.internal", 443, t0 + 30s), nullptr);
  EXPECT_EQ(cache.lookup("api.internal", 443, t0 + 31s), nullptr) << "an expired entry is gone";
}

TEST(DnsCacheTest, KeysByHostAndPort) {
  DnsCache cache(30s);
  TimePoint t0{std::chrono::hours(1)};
  cache.store("a.internal", 80, {ep("127.0.0.1")}, t0);
  EXPECT_EQ(cache.lookup("a.internal", 8080, t0), nullptr);
  EXPECT_EQ(cache.lookup("b.internal", 80, t0), nullptr);
  EXPECT_NE(cache.lookup("a.internal", 80, t0), nullptr);
}

TEST(DnsCacheTest, ZeroTtlCachesNothing) {
  DnsCache cache(0s);
  TimePoint t0{std::chrono::hours(1)};
  cache.store("a.internal", 80, {ep("127.0.0.1")}, t0);
  EXPECT_EQ(cache.lookup("a.internal", 80, t0), nullptr);
}

}  // namespace
}  // namespace errand::net
