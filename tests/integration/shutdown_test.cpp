// Client::shutdown against the target server: grace, then cancellation, and the counts.
#include <gtest/gtest.h>

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <errand/http/client.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class ShutdownTest : public testing::TargetSuite {
 protected:
  std::future<Result<Response>> start(Client& c, const std::string& path) {
    auto r = Request::make("GET", url(path));
    EXPECT_TRUE(r);
    return asio::co_spawn(runtime_.context(0), c.send(std::move(*r)), asio::use_future);
  }
  // Until `n` requests reached the transport (the target has them).
  static void wait_for_requests(Client& c, std::uint64_t n) {
    for (int i = 0; i < 400 && c.stats().requests < n; ++i) std::this_thread::sleep_for(5ms);
  }

  net::Runtime runtime_{{.threads = 2}};
};

TEST_F(ShutdownTest, RequestsThatEndWithinTheGraceFinishAndTheRestAreCancelled) {
  ClientOptions o;
  o.runtime = &runtime_;
  Client c(o);
  auto quick = start(c, "/delay/100");
  auto slow1 = start(c, "/delay/5000");
  auto slow2 = start(c, "/delay/5000");
  wait_for_requests(c, 3);

  auto began = Clock::now();
  ShutdownReport report = c.shutdown(600ms);
  auto took = Clock::now() - began;
  EXPECT_EQ(report.in_flight, 3u);
  EXPECT_EQ(report.finished, 1u);
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_EQ(report.still_running, 0u);
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 2s);  // the slow requests were cut off, not waited for

  auto q = quick.get();
  ASSERT_TRUE(q) << q.error().describe();
  EXPECT_EQ(q->status, 200);
  for (auto* f : {&slow1, &slow2}) {
    auto r = f->get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::cancelled);
    EXPECT_NE(r.error().message().find("shut down"), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(c.stats().open_now, 0u);

  auto late = start(c, "/ok").get();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind(), ErrorKind::cancelled);
  EXPECT_TRUE(c.shutting_down());
}

TEST_F(ShutdownTest, ANothingInFlightShutdownReturnsAtOnce) {
  ClientOptions o;
  o.runtime = &runtime_;
  Client c(o);
  ASSERT_TRUE(start(c, "/ok").get());
  auto began = Clock::now();
  auto report = c.shutdown(5s);
  EXPECT_LT(Clock::now() - began, 500ms);
  EXPECT_EQ(report.in_flight, 0u);
  EXPECT_EQ(report.cancelled, 0u);
  EXPECT_EQ(c.stats().idle_now, 0u);  // idle connections closed
}

TEST_F(ShutdownTest, ABackoffSleepIsCutOffAndKeepsItsAttempts) {
  resilience::RetryPolicy retries;
  retries.status.backoff.base = 10s;  // the request would sleep long before its second attempt
  ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(resilience::retry(retries));
  Client c(o);
  auto sleeping = start(c, "/status/503");
  wait_for_requests(c, 1);
  std::this_thread::sleep_for(50ms);  // past the first attempt, into the sleep

  auto began = Clock::now();
  auto report = c.shutdown(100ms);
  EXPECT_LT(Clock::now() - began, 1s);
  EXPECT_EQ(report.cancelled, 1u);
  auto r = sleeping.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::cancelled);
  ASSERT_EQ(r.error().attempts().size(), 1u);
  EXPECT_EQ(r.error().attempts()[0].status, 503);
}

TEST_F(ShutdownTest, CallingItFromAWorkerIsAProgrammingError) {
  ClientOptions o;
  o.runtime = &runtime_;
  Client c(o);
  auto threw = asio::co_spawn(
      runtime_.context(0),
      [&]() -> asio::awaitable<bool> {
        try {
          c.shutdown(1s);
        } catch (const std::logic_error&) {
          co_return true;
        }
        co_return false;
      },
      asio::use_future);
  EXPECT_TRUE(threw.get());
  EXPECT_FALSE(c.shutting_down());
}

}  // namespace
}  // namespace errand::http
