// The fallback layer on a real Client: which source answers, and what the Response says.
#include <gtest/gtest.h>

#include <errand/http/client.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/fallback.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::resilience {
namespace {

using namespace std::chrono_literals;

class FallbackTest : public testing::TargetSuite {
 protected:
  Result<http::Response> get(http::Client& c, const std::string& url) {
    auto r = http::Request::make("GET", url);
    EXPECT_TRUE(r);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }
  http::ClientOptions options() {
    http::ClientOptions o;
    o.runtime = &runtime_;
    return o;
  }

  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(FallbackTest, ServesTheLastGoodResponseWhenTheOriginIsGone) {
  server::TargetOptions to;
  auto origin = std::make_unique<server::TargetServer>(to);
  ASSERT_TRUE(origin->start());
  std::string url = origin->base_url() + "/bytes/64";
  FallbackPolicy policy;
  policy.last_good = true;
  auto counters = std::make_shared<FallbackCounters>();
  auto o = options();
  o.middleware.push_back(fallback(policy, SteadyClock::instance(), counters));
  http::Client c(o);

  auto fresh = get(c, url);
  ASSERT_TRUE(fresh) << fresh.error().describe();
  EXPECT_FALSE(fresh->fallback);
  origin.reset();  // the port now refuses connections

  auto stale = get(c, url);
  ASSERT_TRUE(stale) << stale.error().describe();
  ASSERT_TRUE(stale->fallback);
  EXPECT_EQ(stale->fallback->source, "last_good");
  EXPECT_EQ(stale->fallback->reason.rfind("connect: ", 0), 0u) << stale->fallback->reason;
  EXPECT_EQ(stale->status, 200);
  EXPECT_EQ(stale->body, fresh->body);
  EXPECT_EQ(counters->served.load(), 1u);

  // Another URL of the same origin was never good: the failure stands.
  auto other = get(c, url + "?other");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().kind(), ErrorKind::connect);
  EXPECT_EQ(counters->unanswered.load(), 1u);
}

TEST_F(FallbackTest, AStaticDefaultAnswersWhenRetriesAreExhaustedAndKeepsTheAttempts) {
  FallbackPolicy policy;
  policy.static_response.emplace();
  policy.static_response->status = 200;
  policy.static_response->body = "default";
  RetryPolicy retries;
  retries.status.max_attempts = 2;
  retries.status.backoff.base = 1ms;
  auto o = options();
  o.middleware.push_back(fallback(policy));
  o.middleware.push_back(retry(retries));
  http::Client c(o);

  auto r = get(c, url("/status/503"));
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->fallback);
  EXPECT_EQ(r->fallback->source, "static");
  EXPECT_EQ(r->fallback->reason, "http_status: status 503");
  EXPECT_EQ(r->body, "default");
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].status, 503);
  EXPECT_EQ(r->attempts[1].status, 503);

  auto fine = get(c, url("/status/404"));  // not a trigger: a 404 is the origin's answer
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 404);
  EXPECT_FALSE(fine->fallback);
}

TEST_F(FallbackTest, AUserFunctionAnswersAnOpenBreakerAndMayDecline) {
  FallbackPolicy policy;
  std::atomic<int> asked{0};
  policy.function = [&](const http::Request& request, const Error& why) -> Result<http::Response> {
    ++asked;
    if (request.url.path() == "/decline") return fail(ErrorKind::config, "no answer");
    http::Response r;
    r.status = 200;
    r.body = std::string("degraded after ") + std::string(to_string(why.kind()));
    return r;
  };
  BreakerOptions b;
  b.minimum_calls = 2;
  b.window_calls = 2;
  b.open_for = 10s;
  auto o = options();
  o.middleware.push_back(fallback(policy));
  o.middleware.push_back(breaker(b));
  http::Client c(o);

  for (int i = 0; i < 2; ++i) {
    auto r = get(c, url("/status/500"));  // failures for the breaker, not triggers of the fallback
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_FALSE(r->fallback);
  }
  auto r = get(c, url("/ok"));
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->fallback);
  EXPECT_EQ(r->fallback->source, "function");
  EXPECT_EQ(r->body, "degraded after circuit_open");
  EXPECT_EQ(r->fallback->reason.rfind("circuit_open: ", 0), 0u);

  auto declined = get(c, url("/decline"));
  ASSERT_FALSE(declined);
  EXPECT_EQ(declined.error().kind(), ErrorKind::circuit_open);
  EXPECT_EQ(asked.load(), 2);
}

TEST_F(FallbackTest, ARequestsOwnPolicyWinsOverTheLayers) {
  FallbackPolicy layer;
  layer.static_response.emplace();
  layer.static_response->status = 200;
  layer.static_response->body = "client default";
  auto o = options();
  o.middleware.push_back(fallback(layer));
  http::Client c(o);

  auto r = http::Request::make("GET", url("/status/503"));
  ASSERT_TRUE(r);
  auto own = std::make_shared<FallbackPolicy>();
  own->static_response.emplace();
  own->static_response->status = 200;
  own->static_response->body = "step default";
  r->extensions.insert(own);
  auto answered = testing::run_sync(runtime_, c.send(std::move(*r)));
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->body, "step default");

  auto plain = get(c, url("/status/503"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->body, "client default");
}

}  // namespace
}  // namespace errand::resilience
