// Client::Builder: the chain it assembles works as one against the target server.
#include <gtest/gtest.h>

#include <random>

#include <boost/asio/awaitable.hpp>

#include <errand/http/client_builder.hpp>
#include <errand/observe/tracing.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::http {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

class ClientBuilderTest : public testing::TargetSuite {
 protected:
  Result<Response> send(Client& c, const std::string& method, const std::string& path) {
    auto r = Request::make(method, url(path));
    EXPECT_TRUE(r);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }
  static resilience::RetryPolicy quick_retries() {
    resilience::RetryPolicy retries;
    retries.status.backoff.base = 1ms;
    return retries;
  }
  static resilience::FallbackPolicy static_fallback(std::string body) {
    resilience::FallbackPolicy fallback;
    fallback.static_response.emplace();
    fallback.static_response->status = 200;
    fallback.static_response->body = std::move(body);
    return fallback;
  }
  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(ClientBuilderTest, RetriesMetricsBreakerAndFallbackWorkTogether) {
  auto registry = std::make_shared<observe::Registry>();
  Client::Builder builder;
  builder.runtime(runtime_).retry(quick_retries()).breaker().fallback(static_fallback("static")).idempotency_keys().metrics(registry);
  auto options = builder.options();
  ASSERT_EQ(options.middleware.size(), 5u);  // metrics, fallback, breaker, idempotency, retry
  Client c = builder.build();

  auto flaky = send(c, "GET", "/flaky?fail=2&key=" + testing::unique_key());
  ASSERT_TRUE(flaky) << flaky.error().describe();
  EXPECT_EQ(flaky->status, 200);
  EXPECT_EQ(flaky->attempts.size(), 3u);
  EXPECT_EQ(builder.retry_counters()->retries.load(), 2u);

  auto down = send(c, "GET", "/status/503");  // retries exhausted → the static default
  ASSERT_TRUE(down) << down.error().describe();
  ASSERT_TRUE(down->fallback);
  EXPECT_EQ(down->body, "static");
  EXPECT_EQ(builder.fallback_counters()->served.load(), 1u);

  // A POST whose first attempt is reset after the server applied it: keyed, retried, applied once.
  std::string counter = testing::unique_key();
  auto post = send(c, "POST", "/idempotent?reset_first=1&counter=" + counter);
  ASSERT_TRUE(post) << post.error().describe();
  EXPECT_EQ(post->attempts.size(), 2u);
  auto peek = send(c, "GET", "/idempotent?peek=1&counter=" + counter);
  ASSERT_TRUE(peek);
  EXPECT_NE(peek->body.find("\"applications\":1"), std::string::npos) << peek->body;

  auto text = registry->prometheus_text();
  EXPECT_NE(text.find("errand_http_client_requests_total{method=\"GET\",status_class=\"2xx\",error_kind=\"\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("errand_http_client_fallbacks_total{source=\"static\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("errand_http_client_connections_opened_total"), std::string::npos) << text;
}

TEST_F(ClientBuilderTest, TracingWrapsThePoliciesWithOneSpanPerRequestAndPerAttempt) {
  auto collected = std::make_shared<observe::CollectingExporter>();
  auto tracer = std::make_shared<observe::Tracer>("builder-test");
  tracer->add_exporter(collected);
  Client::Builder builder;
  builder.runtime(runtime_).tracing(tracer).metrics(std::make_shared<observe::Registry>()).breaker().retry(quick_retries());
  ASSERT_EQ(builder.options().middleware.size(), 5u);  // tracing, metrics, breaker, retry, attempt spans
  Client c = builder.build();

  auto r = send(c, "GET", "/flaky?fail=1&key=" + testing::unique_key());
  ASSERT_TRUE(r) << r.error().describe();
  auto spans = collected->spans();
  ASSERT_EQ(spans.size(), 3u);  // two attempts, then the logical request
  const auto& logical = spans.back();
  EXPECT_EQ(logical.kind, observe::SpanKind::internal);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(spans[i].kind, observe::SpanKind::client);
    EXPECT_EQ(spans[i].context.trace_id, logical.context.trace_id);
    ASSERT_TRUE(spans[i].parent_span_id);
    EXPECT_EQ(*spans[i].parent_span_id, logical.context.span_id);
    // The attempts lie within the logical request, one after the other (the retry's pause
    // between them): times read from one anchored clock.
    EXPECT_LE(logical.start, spans[i].start);
    EXPECT_LT(spans[i].start, spans[i].end);
    EXPECT_LE(spans[i].end, logical.end);
  }
  EXPECT_LT(spans[0].end, spans[1].start);  // the retry paused between them
  bool retry_event = false;
  for (const auto& e : logical.events) retry_event = retry_event || e.name == "retry";
  EXPECT_TRUE(retry_event);
}

TEST_F(ClientBuilderTest, OpenGoesThroughThePoliciesAndTheBodyIsStreamedAfterThem) {
  auto collected = std::make_shared<observe::CollectingExporter>();
  auto tracer = std::make_shared<observe::Tracer>("open-test");
  tracer->add_exporter(collected);
  auto registry = std::make_shared<observe::Registry>();
  Client::Builder builder;
  builder.runtime(runtime_).tracing(tracer).metrics(registry).fallback(static_fallback("static default")).breaker().retry(quick_retries());
  Client c = builder.build();
  auto open = [&](const std::string& path) {
    auto r = Request::make("GET", url(path));
    EXPECT_TRUE(r);
    return testing::run_sync(runtime_, testing::open_and_read(c, std::move(*r)));
  };

  // Retried until a head is accepted; the two 503s' bodies are dropped with their attempts.
  auto flaky = open("/flaky?fail=2&key=" + testing::unique_key());
  ASSERT_TRUE(flaky) << flaky.error().describe();
  EXPECT_EQ(flaky->head.status, 200);
  EXPECT_EQ(flaky->head.attempts.size(), 3u);
  EXPECT_FALSE(flaky->body().empty());
  EXPECT_FALSE(flaky->head.unread_body);  // open() took it into the stream
  auto spans = collected->spans();
  ASSERT_EQ(spans.size(), 4u);  // three attempts, then the logical request
  EXPECT_EQ(spans.back().kind, observe::SpanKind::internal);

  // Streamed, not buffered by the layers: five chunks arrive as five reads or more.
  auto stream = open("/stream/5?interval_ms=50");
  ASSERT_TRUE(stream) << stream.error().describe();
  EXPECT_EQ(stream->head.status, 200);
  EXPECT_GE(stream->pieces.size(), 5u);
  EXPECT_GT(stream->head.timings.receive, Duration::zero());  // set at the end of the body

  // A response a layer made is streamed from its body.
  auto down = open("/status/503");
  ASSERT_TRUE(down) << down.error().describe();
  ASSERT_TRUE(down->head.fallback);
  EXPECT_EQ(down->body(), "static default");

  auto text = registry->prometheus_text();
  EXPECT_NE(text.find("errand_http_client_requests_total{method=\"GET\",status_class=\"2xx\",error_kind=\"\"} 3"),
            std::string::npos)
      << text;
}

TEST_F(ClientBuilderTest, WithoutPoliciesTheChainIsEmpty) {
  Client::Builder builder;
  builder.runtime(runtime_);
  EXPECT_TRUE(builder.options().middleware.empty());
  Client c = builder.build();
  auto r = send(c, "GET", "/ok");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->attempts.empty());
}

}  // namespace
}  // namespace errand::http
