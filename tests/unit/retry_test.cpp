#include <errand/resilience/retry.hpp>

#include <gtest/gtest.h>

namespace errand::resilience {
namespace {

using namespace std::chrono_literals;

http::Request request(const std::string& method) {
  auto r = http::Request::make(method, "http://127.0.0.1:9/x");
  EXPECT_TRUE(r);
  return *r;
}

Result<http::Response> status(int code, std::string retry_after = "") {
  http::Response r;
  r.status = code;
  if (!retry_after.empty()) r.headers.add("Retry-After", retry_after);
  return r;
}

Result<http::Response> failure(ErrorKind kind, Phase phase = Phase::none) {
  return fail(Error(kind, "it failed", {}, phase));
}

const auto wall = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(Backoff, GrowsByTheMultiplierWithinTheJitterAndTheCap) {
  Backoff b{200ms, 2.0, 0.15, 1s};
  EXPECT_EQ(b.delay(1, 0.5), 200ms);
  EXPECT_EQ(b.delay(2, 0.5), 400ms);
  EXPECT_EQ(b.delay(3, 0.5), 800ms);
  EXPECT_EQ(b.delay(4, 0.5), 1s);  // capped
  EXPECT_EQ(b.delay(1, 0.0), 170ms);
  using Ms = std::chrono::duration<double, std::milli>;
  EXPECT_NEAR(Ms(b.delay(1, 0.999999)).count(), 230.0, 0.01);
  Backoff flat{3s, 1.0, 0.0};
  EXPECT_EQ(flat.delay(1, 0.9), 3s);
  EXPECT_EQ(flat.delay(5, 0.1), 3s);
}

TEST(RetryTiers, EachKindOfFailureHasItsTier) {
  RetryPolicy p;
  EXPECT_EQ(tier_for(p, failure(ErrorKind::connect)), &p.network);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::io)), &p.network);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::dns)), &p.dns);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::tls)), &p.tls);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::timeout, Phase::connect)), &p.timeout);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::timeout, Phase::first_byte)), &p.timeout);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::timeout, Phase::read)), nullptr);  // the body was under way
  EXPECT_EQ(tier_for(p, failure(ErrorKind::protocol)), nullptr);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::cancelled)), nullptr);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::config)), nullptr);
  for (int code : {429, 502, 503, 504}) EXPECT_EQ(tier_for(p, status(code)), &p.status) << code;
  for (int code : {200, 404, 500}) EXPECT_EQ(tier_for(p, status(code)), nullptr) << code;
  p.only_kinds = {ErrorKind::dns};
  EXPECT_EQ(tier_for(p, failure(ErrorKind::dns)), &p.dns);
  EXPECT_EQ(tier_for(p, failure(ErrorKind::connect)), nullptr);
  EXPECT_EQ(tier_for(p, status(503)), nullptr);
}

TEST(RetryDecision, DefaultsRetryUntilTheTierIsExhausted) {
  RetryPolicy p;
  auto get = request("GET");
  auto first = decide(p, get, failure(ErrorKind::connect), 1, 0.5, wall);
  EXPECT_TRUE(first.retry);
  EXPECT_EQ(first.delay, 200ms);
  auto second = decide(p, get, failure(ErrorKind::connect), 2, 0.5, wall);
  EXPECT_TRUE(second.retry);
  EXPECT_EQ(second.delay, 400ms);
  auto third = decide(p, get, failure(ErrorKind::connect), 3, 0.5, wall);
  EXPECT_FALSE(third.retry);
  EXPECT_EQ(third.why_not, "attempts exhausted");
  EXPECT_TRUE(decide(p, get, failure(ErrorKind::dns), 1, 0.5, wall).retry);
  EXPECT_EQ(decide(p, get, failure(ErrorKind::dns), 1, 0.5, wall).delay, 1s);
  EXPECT_FALSE(decide(p, get, failure(ErrorKind::dns), 2, 0.5, wall).retry);
  auto tls = decide(p, get, failure(ErrorKind::tls), 1, 0.99, wall);
  EXPECT_TRUE(tls.retry);
  EXPECT_EQ(tls.delay, 3s);  // no jitter
  EXPECT_FALSE(decide(p, get, failure(ErrorKind::tls), 2, 0.5, wall).retry);
  p.max_attempts = 2;
  EXPECT_FALSE(decide(p, get, failure(ErrorKind::connect), 2, 0.5, wall).retry);
}

TEST(RetryDecision, AnAttemptCutOffByItsOwnTimeoutIsRetriedInAnyPhase) {
  RetryPolicy p;
  auto get = request("GET");
  auto stalled_body = failure(ErrorKind::timeout, Phase::read);
  EXPECT_FALSE(decide(p, get, stalled_body, 1, 0.5, wall).retry);  // a read timeout is not, by default
  auto cut_off = decide(p, get, stalled_body, 1, 0.5, wall, true);
  EXPECT_TRUE(cut_off.retry);
  EXPECT_EQ(cut_off.delay, 200ms);  // the timeout tier
  EXPECT_FALSE(decide(p, get, stalled_body, 3, 0.5, wall, true).retry);  // its attempts are the tier's
  EXPECT_FALSE(decide(p, request("POST"), stalled_body, 1, 0.5, wall, true).retry);  // still idempotent only
  p.only_kinds = {ErrorKind::http_status};
  EXPECT_FALSE(decide(p, get, stalled_body, 1, 0.5, wall, true).retry);  // timeouts not wanted
}

TEST(RetryDecision, OnlyIdempotentRequestsOrRequestsWithAKeyAreRetried) {
  RetryPolicy p;
  EXPECT_FALSE(decide(p, request("POST"), status(503), 1, 0.5, wall).retry);
  EXPECT_NE(decide(p, request("POST"), status(503), 1, 0.5, wall).why_not.find("not idempotent"), std::string::npos);
  EXPECT_FALSE(decide(p, request("PATCH"), failure(ErrorKind::io), 1, 0.5, wall).retry);
  auto keyed = request("POST");
  keyed.headers.add("Idempotency-Key", "0192-abc");
  EXPECT_TRUE(decide(p, keyed, status(503), 1, 0.5, wall).retry);
  for (const char* m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}) EXPECT_TRUE(decide(p, request(m), status(503), 1, 0.5, wall).retry) << m;
  p.retry_non_idempotent = true;
  EXPECT_TRUE(decide(p, request("POST"), status(503), 1, 0.5, wall).retry);
}

TEST(RetryDecision, RetryAfterReplacesTheBackoffUpToTheCap) {
  RetryPolicy p;
  auto get = request("GET");
  EXPECT_EQ(decide(p, get, status(503, "2"), 1, 0.5, wall).delay, 2s);
  EXPECT_EQ(decide(p, get, status(429, "Sun, 06 Nov 1994 08:49:47 GMT"), 1, 0.5, wall).delay, 10s);
  EXPECT_EQ(decide(p, get, status(503, "3600"), 1, 0.5, wall).delay, 30s);  // capped
  EXPECT_EQ(decide(p, get, status(503, "soon"), 1, 0.5, wall).delay, 200ms);  // unreadable: the backoff
}

TEST(RetryAfter, SecondsAndHttpDates) {
  EXPECT_EQ(parse_retry_after("120", wall), 120s);
  EXPECT_EQ(parse_retry_after(" 0 ", wall), 0s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", wall), 60s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", wall), 0s);  // already past
  EXPECT_FALSE(parse_retry_after("", wall));
  EXPECT_FALSE(parse_retry_after("-5", wall));
  EXPECT_FALSE(parse_retry_after("1.5", wall));
  EXPECT_FALSE(parse_retry_after("Sunday", wall));
  EXPECT_FALSE(parse_retry_after("99999999999999999999", wall));
}

// Readings taken a moment earlier on another thread can arrive after a newer one: they count
// in the current second instead of resetting the bucket back to theirs.
TEST(RetryBudget, AnOlderReadingDoesNotResetANewerSecond) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0.5, .window = 1s, .min_per_second = 0}, clock);  // one bucket
  auto second = clock.now();
  for (int i = 0; i < 3; ++i) budget.on_request(second + 1s);
  budget.on_request(second + 999ms);  // the second before
  clock.set(second + 1s);
  EXPECT_TRUE(budget.try_retry());  // half of 4 requests: 2 retries
  EXPECT_TRUE(budget.try_retry());
  EXPECT_FALSE(budget.try_retry());
}

TEST(RetryBudget, AllowsAShareOfRequestsAndAFloorPerSecond) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0.2, .window = 10s, .min_per_second = 1}, clock);
  // No traffic: the floor, 1 per second over 10 s.
  int allowed = 0;
  while (budget.try_retry()) ++allowed;
  EXPECT_EQ(allowed, 10);
  EXPECT_EQ(budget.exhausted(), 1u);
  // 200 requests: 20% of them, 40, of which 10 are spent.
  for (int i = 0; i < 200; ++i) budget.on_request();
  allowed = 0;
  while (budget.try_retry()) ++allowed;
  EXPECT_EQ(allowed, 30);
  // Eleven seconds later the window has moved past all of it.
  clock.advance(11s);
  allowed = 0;
  while (budget.try_retry()) ++allowed;
  EXPECT_EQ(allowed, 10);
}

TEST(RetryBudget, OldSecondsLeaveTheWindowOneByOne) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0.5, .window = 3s, .min_per_second = 0}, clock);
  for (int i = 0; i < 10; ++i) budget.on_request();  // second 0: 10 requests
  clock.advance(1s);
  for (int i = 0; i < 4; ++i) budget.on_request();   // second 1: 4 requests
  int allowed = 0;
  while (budget.try_retry()) ++allowed;
  EXPECT_EQ(allowed, 7);  // half of 14
  clock.advance(2s);      // second 3: second 0 has left the 3-second window
  allowed = 0;
  while (budget.try_retry()) ++allowed;
  EXPECT_EQ(allowed, 0);  // half of 4 is 2, and 7 retries of second 1 are still in the window
}

}  // namespace
}  // namespace errand::resilience
