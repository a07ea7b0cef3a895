#include <errand/resilience/breaker.hpp>

#include <gtest/gtest.h>

namespace errand::resilience {
namespace {

using namespace std::chrono_literals;
using S = BreakerState;

BreakerOptions small() {
  BreakerOptions o;
  o.window_calls = 10;
  o.minimum_calls = 4;
  o.failure_rate = 0.5;
  o.open_for = 5s;
  o.open_growth = 2.0;
  o.max_open_for = 15s;
  o.half_open_probes = 2;
  return o;
}

// Admits and records one call; returns whether it was admitted.
bool call(CircuitBreaker& b, ManualClock& clock, bool failed, bool slow = false) {
  if (!b.admit(clock.now())) return false;
  b.record(failed, slow, clock.now());
  return true;
}

TEST(CircuitBreaker, OpensAtTheFailureRateOnlyAfterTheMinimumOfCalls) {
  ManualClock clock;
  CircuitBreaker b(small());
  EXPECT_TRUE(call(b, clock, true));
  EXPECT_TRUE(call(b, clock, true));
  EXPECT_TRUE(call(b, clock, true));
  EXPECT_EQ(b.state(), S::closed);  // 3 of 3 failed, but fewer than 4 calls
  EXPECT_TRUE(call(b, clock, false));
  EXPECT_EQ(b.state(), S::open);    // 3 of 4 = 75% >= 50%
  EXPECT_FALSE(b.admit(clock.now()));
  auto moved = b.take_transitions();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0], std::make_pair(S::closed, S::open));
}

TEST(CircuitBreaker, StaysClosedBelowTheRateAndForgetsOldCalls) {
  ManualClock clock;
  CircuitBreaker b(small());
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(call(b, clock, i % 3 == 2));  // a third fail, at most 4 of any 10
  EXPECT_EQ(b.state(), S::closed);
  for (int i = 0; i < 10; ++i) call(b, clock, false);  // the window holds the last 10 only
  for (int i = 0; i < 4; ++i) call(b, clock, true);
  EXPECT_EQ(b.state(), S::closed);  // 4 of the last 10
  call(b, clock, true);
  EXPECT_EQ(b.state(), S::open);    // 5 of the last 10
}

TEST(CircuitBreaker, HalfOpensAfterTheDurationAndClosesAfterSuccessfulProbes) {
  ManualClock clock;
  CircuitBreaker b(small());
  for (int i = 0; i < 4; ++i) call(b, clock, true);
  ASSERT_EQ(b.state(), S::open);
  clock.advance(4999ms);
  EXPECT_FALSE(b.admit(clock.now()));
  clock.advance(1ms);
  EXPECT_TRUE(b.admit(clock.now()));   // probe 1
  EXPECT_EQ(b.state(), S::half_open);
  EXPECT_TRUE(b.admit(clock.now()));   // probe 2
  EXPECT_FALSE(b.admit(clock.now()));  // only 2 probes
  b.record(false, false, clock.now());
  EXPECT_EQ(b.state(), S::half_open);
  b.record(false, false, clock.now());
  EXPECT_EQ(b.state(), S::closed);
  EXPECT_TRUE(b.admit(clock.now()));
}

TEST(CircuitBreaker, AFailedProbeReopensForLongerEachTimeUpToTheCap) {
  ManualClock clock;
  CircuitBreaker b(small());
  for (int i = 0; i < 4; ++i) call(b, clock, true);
  std::vector<std::chrono::nanoseconds> waits;
  for (int round = 0; round < 4; ++round) {
    waits.push_back(b.current_open_for());
    clock.advance(b.current_open_for());
    ASSERT_TRUE(b.admit(clock.now()));
    b.record(true, false, clock.now());
    ASSERT_EQ(b.state(), S::open);
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::nanoseconds>{5s, 10s, 15s, 15s}));
  // Closing resets the duration.
  clock.advance(15s);
  ASSERT_TRUE(b.admit(clock.now()));
  b.record(false, false, clock.now());
  ASSERT_TRUE(b.admit(clock.now()));
  b.record(false, false, clock.now());
  ASSERT_EQ(b.state(), S::closed);
  for (int i = 0; i < 4; ++i) call(b, clock, true);
  EXPECT_EQ(b.current_open_for(), 5s);
}

TEST(CircuitBreaker, SlowCallsCanOpenIt) {
  ManualClock clock;
  auto o = small();
  o.slow_call = 1s;
  o.slow_call_rate = 0.75;
  CircuitBreaker b(o);
  call(b, clock, false, true);
  call(b, clock, false, true);
  call(b, clock, false, false);
  call(b, clock, false, true);
  EXPECT_EQ(b.state(), S::open);  // 3 of 4 slow
}

TEST(CircuitBreaker, AWindowByTimeForgetsCallsOlderThanIt) {
  ManualClock clock;
  auto o = small();
  o.window_time = 10s;
  CircuitBreaker b(o);
  for (int i = 0; i < 3; ++i) call(b, clock, true);
  clock.advance(11s);
  call(b, clock, true);  // the three old failures have left the window: 1 call
  EXPECT_EQ(b.state(), S::closed);
  for (int i = 0; i < 3; ++i) call(b, clock, false);
  EXPECT_EQ(b.state(), S::closed);  // 1 of 4 failed
}

// The window is a ring that grows when full: calls that wrap around it and then outgrow it
// must leave in the order they came, each taking its failure with it.
TEST(CircuitBreaker, AWindowByTimeKeepsItsCallsInOrderAcrossGrowth) {
  ManualClock clock;
  auto o = small();
  o.window_time = 10s;
  o.minimum_calls = 1;
  o.failure_rate = 0.5;
  CircuitBreaker b(o);
  for (int i = 0; i < 12; ++i) call(b, clock, false);  // t = 0
  clock.advance(6s);
  for (int i = 0; i < 12; ++i) call(b, clock, i % 3 == 0);  // t = 6 s: 4 failures of 12, the ring wraps
  clock.advance(5s);  // t = 11 s: the calls of t = 0 leave
  for (int i = 0; i < 40; ++i) call(b, clock, false);  // it grows while wrapped
  EXPECT_EQ(b.state(), S::closed);  // 4 failures of 52
  clock.advance(6s);  // t = 17 s: the calls of t = 6 s leave, with their four failures
  for (int i = 0; i < 39; ++i) call(b, clock, true);
  EXPECT_EQ(b.state(), S::closed);  // 39 failures of 79: under half only if all four left
  call(b, clock, true);
  EXPECT_EQ(b.state(), S::open);  // 40 of 80
}

TEST(CircuitBreaker, WhatCountsAsAFailure) {
  CircuitBreaker b(small());
  http::Response ok;
  ok.status = 200;
  http::Response server_error;
  server_error.status = 503;
  http::Response not_found;
  not_found.status = 404;
  EXPECT_FALSE(b.is_failure(ok));
  EXPECT_TRUE(b.is_failure(server_error));
  EXPECT_FALSE(b.is_failure(not_found));
  EXPECT_TRUE(b.is_failure(fail(Error(ErrorKind::connect, "refused"))));
  EXPECT_TRUE(b.is_failure(fail(Error::timeout(Phase::first_byte, "slow"))));
  EXPECT_FALSE(b.is_failure(fail(Error(ErrorKind::protocol, "bad"))));
  EXPECT_FALSE(b.is_failure(fail(Error(ErrorKind::dns, "nxdomain"))));
}

TEST(CircuitBreaker, ACancelledProbeFreesItsSlot) {
  ManualClock clock;
  CircuitBreaker b(small());
  for (int i = 0; i < 4; ++i) call(b, clock, true);
  clock.advance(5s);
  ASSERT_TRUE(b.admit(clock.now()));
  ASSERT_TRUE(b.admit(clock.now()));
  EXPECT_FALSE(b.admit(clock.now()));
  b.release_probe();
  EXPECT_TRUE(b.admit(clock.now()));
  EXPECT_EQ(b.state(), S::half_open);
}

}  // namespace
}  // namespace errand::resilience
