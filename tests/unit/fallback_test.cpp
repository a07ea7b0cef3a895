#include <errand/resilience/fallback.hpp>

#include <gtest/gtest.h>

namespace errand::resilience {
namespace {

using namespace std::chrono_literals;

http::Request request(const char* method, const char* url) {
  auto r = http::Request::make(method, url);
  EXPECT_TRUE(r);
  return r ? std::move(*r) : http::Request{};
}

http::Response response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(LastGoodCache, KeepsOnlyGoodAnswersToSafeRequests) {
  ManualClock clock;
  LastGoodCache cache(8, 1024, 1 << 20);
  cache.store(request("GET", "http://a.test/x"), response(200, "x"), clock.now());
  cache.store(request("POST", "http://a.test/p"), response(200, "p"), clock.now());
  cache.store(request("GET", "http://a.test/e"), response(503, "e"), clock.now());
  cache.store(request("GET", "http://a.test/big"), response(200, std::string(2048, 'b')), clock.now());
  EXPECT_EQ(cache.size(), 1u);
  auto hit = cache.find(request("GET", "http://a.test/x"), clock.now(), std::nullopt);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->body, "x");
  EXPECT_FALSE(cache.find(request("HEAD", "http://a.test/x"), clock.now(), std::nullopt));  // per method
  EXPECT_FALSE(cache.find(request("POST", "http://a.test/p"), clock.now(), std::nullopt));
}

TEST(LastGoodCache, ANewerAnswerReplacesTheOldAndAgeIsBounded) {
  ManualClock clock;
  LastGoodCache cache(8, 1024, 1 << 20);
  auto get = request("GET", "http://a.test/x");
  cache.store(get, response(200, "old"), clock.now());
  clock.advance(10s);
  cache.store(get, response(200, "new"), clock.now());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), 3u);
  clock.advance(5s);
  EXPECT_EQ(cache.find(get, clock.now(), 5s)->body, "new");
  clock.advance(1ns);
  EXPECT_FALSE(cache.find(get, clock.now(), 5s));
  EXPECT_TRUE(cache.find(get, clock.now(), std::nullopt));
}

TEST(LastGoodCache, EvictsTheOldestByCountAndByBytes) {
  ManualClock clock;
  LastGoodCache by_count(2, 1024, 1 << 20);
  for (const char* u : {"http://a.test/1", "http://a.test/2", "http://a.test/3"})
    by_count.store(request("GET", u), response(200, "b"), clock.now());
  EXPECT_EQ(by_count.size(), 2u);
  EXPECT_FALSE(by_count.find(request("GET", "http://a.test/1"), clock.now(), std::nullopt));
  EXPECT_TRUE(by_count.find(request("GET", "http://a.test/3"), clock.now(), std::nullopt));

  LastGoodCache by_bytes(100, 1024, 250);
  for (const char* u : {"http://a.test/1", "http://a.test/2", "http://a.test/3"})
    by_bytes.store(request("GET", u), response(200, std::string(100, 'b')), clock.now());
  EXPECT_EQ(by_bytes.size(), 2u);
  EXPECT_EQ(by_bytes.bytes(), 200u);
  EXPECT_FALSE(by_bytes.find(request("GET", "http://a.test/1"), clock.now(), std::nullopt));
}

}  // namespace
}  // namespace errand::resilience
