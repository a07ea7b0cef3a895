// The client's metrics on a real Client against the target server: the metrics layer with the
// retry and breaker layers, the pool and retry-budget collectors, and the exposition checked
// by promtool (Debian package prometheus).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <thread>

#include <boost/asio/awaitable.hpp>

#include <errand/http/client.hpp>
#include <errand/observe/client_metrics.hpp>
#include <errand/observe/metrics.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/fallback.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::observe {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The value of a sample in an exposition (support.hpp).
constexpr auto sample = &testing::metric_sample;

int status_of(const Result<http::Response>& r) { return r ? r->status : -1; }

bool have_promtool() { return std::system("command -v promtool >/dev/null 2>&1") == 0; }

// promtool's verdict on an exposition: its exit status and everything it printed (lint
// findings such as a counter without _total come with exit status 3).
std::pair<int, std::string> promtool_check(const std::string& text) {
  static int serial = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("errand-metrics-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "metrics.txt", std::ios::binary);
    out << text;
  }
  std::string command = "promtool check metrics < " + (dir / "metrics.txt").string() + " > " +
                        (dir / "promtool.out").string() + " 2>&1";
  int status = std::system(command.c_str());
  std::string printed = testing::read_file(dir / "promtool.out");
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, printed};
}

// promtool accepts the exposition: exit status 0 and no lint finding (skipped without promtool).
void expect_promtool_accepts(const std::string& text) {
  if (!have_promtool()) GTEST_SKIP() << "promtool is not installed (scripts/install-deps installs prometheus)";
  auto [status, printed] = promtool_check(text);
  EXPECT_EQ(status, 0) << printed;
  EXPECT_EQ(printed, "");
}

class MetricsTest : public testing::TargetSuite {
 protected:
  static resilience::RetryPolicy fast_retries() {
    resilience::RetryPolicy p;
    p.network = resilience::Tier{2, resilience::Backoff{1ms, 1.0, 0.0}};
    p.status = resilience::Tier{3, resilience::Backoff{1ms, 1.0, 0.0}};
    return p;
  }
  Result<http::Response> send(http::Client& c, const std::string& method, const std::string& u,
                              bool fallback = false) {
    auto r = http::Request::make(method, u);
    EXPECT_TRUE(r);
    if (fallback) {  // this request's own fallback: a static 200 when the origin fails
      auto policy = std::make_shared<resilience::FallbackPolicy>();
      policy->static_response.emplace();
      policy->static_response->status = 200;
      policy->static_response->body = "static\n";
      r->extensions.insert(policy);
    }
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }

  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(MetricsTest, RequestsAttemptsRetriesFallbacksAndThePoolAreCountedAndPromtoolAcceptsTheText) {
  auto registry = std::make_shared<Registry>();
  auto retry_counters = std::make_shared<resilience::RetryCounters>();
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(metrics(registry));
  o.middleware.push_back(resilience::fallback({}));  // no sources of its own: only the requests
  o.middleware.push_back(resilience::retry(fast_retries(), {}, SteadyClock::instance(), retry_counters));
  http::Client c(o);
  auto watch = watch_client(*registry, c);
  watch_retries(*registry, retry_counters);

  std::string refused = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(status_of(send(c, "GET", url("/ok"))), 200);
  auto flaky = send(c, "GET", url("/flaky?fail=2&key=" + testing::unique_key()));  // 503, 503, 200
  ASSERT_TRUE(flaky) << flaky.error().describe();
  EXPECT_EQ(flaky->attempts.size(), 3u);
  EXPECT_EQ(status_of(send(c, "GET", url("/status/404"))), 404);
  EXPECT_EQ(status_of(send(c, "POST", url("/status/503"))), 503);  // not idempotent: one try
  auto failed = send(c, "GET", refused);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind(), ErrorKind::connect);
  EXPECT_EQ(failed.error().attempts().size(), 2u);
  auto rescued = send(c, "GET", refused, true);
  ASSERT_TRUE(rescued);
  ASSERT_TRUE(rescued->fallback);

  auto stats = c.stats();
  std::string text = registry->prometheus_text();
  SCOPED_TRACE(text);
  EXPECT_EQ(sample(text, R"(errand_http_client_requests_total{method="GET",status_class="2xx",error_kind=""})"), 5);
  EXPECT_EQ(sample(text, R"(errand_http_client_requests_total{method="GET",status_class="4xx",error_kind=""})"), 1);
  EXPECT_EQ(sample(text, R"(errand_http_client_requests_total{method="POST",status_class="5xx",error_kind=""})"), 1);
  EXPECT_EQ(sample(text, R"(errand_http_client_requests_total{method="GET",status_class="",error_kind="connect"})"),
            1);
  // GET: 3 × /ok, 3 for /flaky, 1 for the 404, 2 refused, 2 refused before the fallback.
  EXPECT_EQ(sample(text, R"(errand_http_client_attempts_total{method="GET"})"), 11);
  EXPECT_EQ(sample(text, R"(errand_http_client_retries_total{method="GET"})"), 4);
  EXPECT_EQ(sample(text, R"(errand_http_client_attempts_total{method="POST"})"), 1);
  EXPECT_EQ(sample(text, R"(errand_http_client_retries_total{method="POST"})"), 0);
  EXPECT_EQ(sample(text, R"(errand_http_client_fallbacks_total{source="static"})"), 1);
  EXPECT_EQ(sample(text, "errand_http_client_retry_budget_exhausted_total"), 0);

  EXPECT_EQ(sample(text, "errand_http_client_request_duration_seconds_count"), 8);
  EXPECT_GT(sample(text, "errand_http_client_request_duration_seconds_sum"), 0);
  // Six responses came from the origin; the fallback's has no phases.
  EXPECT_EQ(sample(text, R"(errand_http_client_phase_duration_seconds_count{phase="wait"})"), 6);
  EXPECT_EQ(sample(text, R"(errand_http_client_phase_duration_seconds_count{phase="send"})"), 6);
  EXPECT_EQ(sample(text, R"(errand_http_client_phase_duration_seconds_bucket{phase="wait",le="+Inf"})"), 6);
  double connects = sample(text, R"(errand_http_client_phase_duration_seconds_count{phase="connect"})");
  EXPECT_GE(connects, 1);
  EXPECT_LE(connects, static_cast<double>(stats.opened));

  EXPECT_EQ(sample(text, R"(errand_http_client_connections{state="open"})"), static_cast<double>(stats.open_now));
  EXPECT_EQ(sample(text, R"(errand_http_client_connections{state="idle"})"), static_cast<double>(stats.idle_now));
  EXPECT_GE(stats.open_now, 1u);
  EXPECT_EQ(stats.idle_now, stats.open_now);  // nothing in flight
  EXPECT_EQ(sample(text, "errand_http_client_connections_opened_total"), static_cast<double>(stats.opened));
  EXPECT_EQ(sample(text, "errand_http_client_connections_reused_total"), static_cast<double>(stats.reused));
  EXPECT_GE(stats.reused, 4u);  // keep-alive: most of the eight origin responses shared a connection
  EXPECT_EQ(sample(text, R"(errand_http_client_tls_handshakes_total{resumed="false"})"), 0);

  expect_promtool_accepts(text);
}

TEST_F(MetricsTest, TheBudgetsRefusalsAreCounted) {
  auto registry = std::make_shared<Registry>();
  auto retry_counters = std::make_shared<resilience::RetryCounters>();
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(metrics(registry));
  o.middleware.push_back(resilience::retry(fast_retries(), {.ratio = 0, .window = 10s, .min_per_second = 0},
                                           SteadyClock::instance(), retry_counters));
  http::Client c(o);
  watch_retries(*registry, retry_counters);

  EXPECT_EQ(status_of(send(c, "GET", url("/status/503"))), 503);
  EXPECT_EQ(status_of(send(c, "GET", url("/status/503"))), 503);
  std::string text = registry->prometheus_text();
  SCOPED_TRACE(text);
  EXPECT_EQ(sample(text, "errand_http_client_retry_budget_exhausted_total"), 2);
  EXPECT_EQ(sample(text, R"(errand_http_client_attempts_total{method="GET"})"), 2);
  EXPECT_EQ(sample(text, R"(errand_http_client_retries_total{method="GET"})"), 0);
  // A later exposition adds only what happened since.
  EXPECT_EQ(sample(registry->prometheus_text(), "errand_http_client_retry_budget_exhausted_total"), 2);
}

TEST_F(MetricsTest, TheBreakerStateFollowsItsTransitionsPerOrigin) {
  auto registry = std::make_shared<Registry>();
  resilience::BreakerOptions b;
  b.minimum_calls = 2;
  b.window_calls = 2;
  b.open_for = 200ms;
  b.half_open_probes = 1;
  b.on_transition = breaker_metrics(registry);
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(metrics(registry));
  o.middleware.push_back(resilience::breaker(b));
  http::Client c(o);
  std::string origin = target_->base_url();
  std::string state = R"(errand_http_client_breaker_state{origin=")" + origin + R"("})";
  auto transitions = [&](const std::string& to) {
    return R"(errand_http_client_breaker_transitions_total{origin=")" + origin + R"(",to=")" + to + R"("})";
  };

  EXPECT_EQ(status_of(send(c, "GET", url("/status/503"))), 503);
  EXPECT_EQ(status_of(send(c, "GET", url("/status/503"))), 503);
  auto refused = send(c, "GET", url("/ok"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::circuit_open);
  std::string open = registry->prometheus_text();
  EXPECT_EQ(sample(open, state), 1) << open;
  EXPECT_EQ(sample(open, transitions("open")), 1) << open;
  EXPECT_EQ(sample(open, R"(errand_http_client_requests_total{method="GET",status_class="",error_kind="circuit_open"})"),
            1)
      << open;

  std::this_thread::sleep_for(250ms);
  EXPECT_EQ(status_of(send(c, "GET", url("/ok"))), 200);  // the probe: half-open, then closed
  std::string closed = registry->prometheus_text();
  SCOPED_TRACE(closed);
  EXPECT_EQ(sample(closed, state), 0);
  EXPECT_EQ(sample(closed, transitions("open")), 1);
  EXPECT_EQ(sample(closed, transitions("half_open")), 1);
  EXPECT_EQ(sample(closed, transitions("closed")), 1);

  expect_promtool_accepts(closed);
}

TEST_F(MetricsTest, WatchedClientsAddUpAndADetachedOneLeavesTheGaugesBeforeItIsDestroyed) {
  auto registry = std::make_shared<Registry>();
  http::ClientOptions o;
  o.runtime = &runtime_;
  http::Client kept(o);
  auto kept_watch = watch_client(*registry, kept);
  EXPECT_EQ(status_of(send(kept, "GET", url("/ok"))), 200);
  {
    auto gone = std::make_unique<http::Client>(o);
    auto gone_watch = watch_client(*registry, *gone);
    EXPECT_EQ(status_of(send(*gone, "GET", url("/ok"))), 200);
    std::string both = registry->prometheus_text();
    EXPECT_EQ(sample(both, R"(errand_http_client_connections{state="open"})"), 2) << both;
    EXPECT_EQ(sample(both, R"(errand_http_client_connections{state="idle"})"), 2) << both;
    EXPECT_EQ(sample(both, "errand_http_client_connections_opened_total"), 2) << both;
    gone_watch.detach();
    gone.reset();  // the collector must not touch it any more (ASan would tell)
  }
  std::string one = registry->prometheus_text();
  SCOPED_TRACE(one);
  EXPECT_EQ(sample(one, R"(errand_http_client_connections{state="open"})"), 1);
  EXPECT_EQ(sample(one, R"(errand_http_client_connections{state="idle"})"), 1);
  EXPECT_EQ(sample(one, "errand_http_client_connections_opened_total"), 2);  // counters keep what happened
  EXPECT_EQ(status_of(send(kept, "GET", url("/ok"))), 200);
  EXPECT_EQ(sample(registry->prometheus_text(), "errand_http_client_connections_reused_total"), 1);
}

}  // namespace
}  // namespace errand::observe
