// The breaker and bulkhead layer on a real Client against the target server.
#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <errand/http/client.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class BreakerTest : public testing::TargetSuite {
 protected:
  Result<http::Response> get(http::Client& c, const std::string& path) {
    auto r = http::Request::make("GET", target_->base_url() + path);
    EXPECT_TRUE(r);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }

  // The breaker's window and minimum: the last three calls.
  static BreakerOptions over_three_calls() {
    BreakerOptions o;
    o.minimum_calls = 3;
    o.window_calls = 3;
    return o;
  }
  // The next call is refused by the open breaker, not sent.
  void expect_open(http::Client& c) {
    auto refused = get(c, "/ok");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind(), ErrorKind::circuit_open);
  }
  // A Client whose only layer is a breaker with these options.
  http::Client client_behind(BreakerOptions o) {
    http::ClientOptions co;
    co.runtime = &runtime_;
    co.middleware.push_back(breaker(std::move(o)));
    return http::Client(co);
  }

  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(BreakerTest, OpensAfterTheThresholdFailsFastHalfOpensAndClosesAfterGoodProbes) {
  std::mutex m;
  std::vector<std::string> transitions;
  BreakerOptions o;
  o.minimum_calls = 4;
  o.window_calls = 4;
  o.open_for = 300ms;
  o.half_open_probes = 2;
  o.on_transition = [&](const std::string&, BreakerState from, BreakerState to) {
    std::lock_guard lock(m);
    transitions.push_back(std::string(to_string(from)) + ">" + std::string(to_string(to)));
  };
  http::Client c = client_behind(o);

  for (int i = 0; i < 4; ++i) {
    auto r = get(c, "/status/503");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
  }
  auto started = Clock::now();
  auto refused = get(c, "/ok");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::circuit_open);
  EXPECT_LT(Clock::now() - started, 50ms);
  auto before = c.stats().requests;
  EXPECT_FALSE(get(c, "/ok"));
  EXPECT_EQ(c.stats().requests, before);  // nothing reached the transport

  std::this_thread::sleep_for(320ms);
  auto probe1 = get(c, "/ok");
  ASSERT_TRUE(probe1) << probe1.error().describe();
  auto probe2 = get(c, "/ok");
  ASSERT_TRUE(probe2) << probe2.error().describe();
  auto after = get(c, "/ok");
  ASSERT_TRUE(after) << after.error().describe();
  std::lock_guard lock(m);
  EXPECT_EQ(transitions, (std::vector<std::string>{"closed>open", "open>half_open", "half_open>closed"}));
}

TEST_F(BreakerTest, AnOpenBreakerStopsRetriesToo) {
  BreakerOptions o;
  o.minimum_calls = 2;
  o.window_calls = 2;
  o.open_for = 10s;
  http::ClientOptions co;
  co.runtime = &runtime_;
  co.middleware.push_back(breaker(o));   // DESIGN.md's order: breaker outside retry
  RetryPolicy p;
  p.status = Tier{3, Backoff{1ms, 1.0, 0.0}};
  co.middleware.push_back(retry(p));
  http::Client c(co);
  ASSERT_TRUE(get(c, "/status/503"));
  ASSERT_TRUE(get(c, "/status/503"));
  auto before = c.stats().requests;
  auto r = get(c, "/status/503");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::circuit_open);
  EXPECT_EQ(c.stats().requests, before);
}

TEST_F(BreakerTest, TheBulkheadFailsFastBeyondItsLimit) {
  BreakerOptions o;
  o.max_concurrent = 2;
  http::Client c = client_behind(o);
  std::vector<std::future<Result<http::Response>>> calls;
  for (int i = 0; i < 5; ++i) {
    auto r = http::Request::make("GET", target_->base_url() + "/delay/300");
    ASSERT_TRUE(r);
    calls.push_back(asio::co_spawn(runtime_.context(0), c.send(std::move(*r)), asio::use_future));
  }
  int ok = 0, overloaded = 0;
  for (auto& f : calls) {
    auto r = f.get();
    if (r) ++ok;
    else if (r.error().kind() == ErrorKind::overloaded) ++overloaded;
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(overloaded, 3);
  EXPECT_TRUE(get(c, "/ok"));  // the slots came back
}

// Slow calls open it too: answers that all succeed, each over `slow_call`.
TEST_F(BreakerTest, SlowCallsOverTheirRateOpenItThoughEveryCallSucceeded) {
  BreakerOptions o = over_three_calls();
  o.slow_call = 50ms;
  o.slow_call_rate = 1.0;
  http::Client c = client_behind(o);
  EXPECT_TRUE(get(c, "/ok"));  // fast: not slow
  for (int i = 0; i < 3; ++i) {
    auto r = get(c, "/delay/100");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->status, 200);
  }
  expect_open(c);
}

// One fast call among slow ones keeps the rate under 100%: it stays closed.
TEST_F(BreakerTest, SlowCallsUnderTheirRateLeaveItClosed) {
  BreakerOptions o = over_three_calls();
  o.slow_call = 50ms;
  o.slow_call_rate = 1.0;
  http::Client c = client_behind(o);
  EXPECT_TRUE(get(c, "/delay/100"));
  EXPECT_TRUE(get(c, "/delay/100"));
  EXPECT_TRUE(get(c, "/ok"));  // fast
  EXPECT_TRUE(get(c, "/ok"));
}

// What counts as a failure is the user's: here 4xx counts and 5xx does not.
TEST_F(BreakerTest, TheFailureDefinitionIsTheUsers) {
  BreakerOptions o = over_three_calls();
  o.failure_rate = 1.0;  // the whole window: it opens on the third 404, not before
  o.failure_status_min = 400;
  o.failure_status_max = 499;
  http::Client c = client_behind(o);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(get(c, "/status/503"));
  EXPECT_TRUE(get(c, "/ok")) << "5xx opened a breaker told to count only 4xx";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(get(c, "/status/404"));
  expect_open(c);
}

// An error kind left out of failure_kinds does not count: refused connections here.
TEST_F(BreakerTest, AnErrorKindLeftOutDoesNotCount) {
  BreakerOptions o = over_three_calls();
  o.failure_kinds = {ErrorKind::timeout};
  http::Client c = client_behind(o);
  std::string refused_url = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/";
  for (int i = 0; i < 4; ++i) {
    auto r = testing::run_sync(runtime_, c.send(*http::Request::make("GET", refused_url)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::connect);  // sent, not refused by the breaker
  }
}

}  // namespace
}  // namespace errand::resilience
