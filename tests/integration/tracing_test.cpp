// The tracing layers on a real Client against the target server: the traceparent the server
// receives, parent/child linkage with the caller's span, attempt spans and retry events,
// failures, breaker events; and the OTLP/HTTP exporter posting to the target's /v1/traces
// collector, its bounded queue and its shutdown deadline; the protobuf encoding decoded by
// Google's protobuf library (protoc and python3-protobuf) against the JSON one.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <errand/http/client.hpp>
#include <errand/observe/tracing.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/fallback.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::observe {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A fallback that answers any failure with a static 200.
std::shared_ptr<http::Middleware> static_fallback() {
  resilience::FallbackPolicy policy;
  policy.static_response.emplace();
  policy.static_response->status = 200;
  policy.static_response->body = "cached";
  return resilience::fallback(policy);
}

// Retries that do not make the suite slow.
resilience::RetryPolicy quick_retries() {
  resilience::RetryPolicy p;
  p.status = resilience::Tier{3, resilience::Backoff{5ms, 1.0, 0.0}};
  p.network = resilience::Tier{2, resilience::Backoff{5ms, 1.0, 0.0}};
  return p;
}

std::string text(const Span& s, std::string_view key) {
  const AttributeValue* v = s.attribute(key);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : std::string("<absent>");
}
std::int64_t number(const Span& s, std::string_view key) {
  const AttributeValue* v = s.attribute(key);
  return v && std::holds_alternative<std::int64_t>(*v) ? std::get<std::int64_t>(*v) : -1;
}

// The value of a request header as the target's /echo saw it.
std::optional<std::string> echoed_header(const std::string& body, std::string_view name) {
  json echo = json::parse(body);
  for (const auto& field : echo["headers"])
    if (http::iequals(field[0].get<std::string>(), name)) return field[1].get<std::string>();
  return std::nullopt;
}

// What tests/data/otlp_compare.py says of an OTLP protobuf export against the OTLP/JSON export
// of the same spans: "same", or the first difference. It decodes the protobuf with Google's
// library (Debian's python3-protobuf, a schema compiled by protoc), not with errand's code.
std::string protobuf_against_json(const std::string& json_text, const std::string& protobuf) {
  static int serial = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("errand-otlp-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "export.json", std::ios::binary) << json_text;
  std::ofstream(dir / "export.pb", std::ios::binary) << protobuf;
  std::string data = std::string(ERRAND_SOURCE_DIR) + "/tests/data/";
  std::string command = "/usr/bin/python3 " + data + "otlp_compare.py " + data + "otlp_trace.proto " +
                        (dir / "export.json").string() + " " + (dir / "export.pb").string() + " > " +
                        (dir / "out").string() + " 2>&1";
  int status = std::system(command.c_str());
  std::string said = testing::read_file(dir / "out");
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "exit " + std::to_string(status) + ": " + said;
  while (!said.empty() && said.back() == '\n') said.pop_back();
  return said;
}

// Spans with every kind of field and value at their edges: ids, tracestate, parent, events
// with attributes, dropped events, error status; strings empty, long, non-ASCII, and not
// UTF-8 (in names, keys, values, messages); integers and doubles at their extremes.
std::vector<Span> spans_at_the_edges() {
  auto context = [](const char* traceparent) { return parse_traceparent(traceparent).value_or(SpanContext{}); };
  std::vector<Span> spans(3);
  Span& a = spans[0];
  a.name = "GET";
  a.kind = SpanKind::client;
  a.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  a.context.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  a.parent_span_id = context("00-4bf92f3577b34da6a3ce929d0e0e4736-a1b2c3d4e5f60718-01").span_id;
  a.start = SystemTime(std::chrono::nanoseconds(1'700'000'000'123'456'789));
  a.end = a.start + 1500us;
  a.add(AttributeName::literal("http.request.method"), "GET");
  a.add(AttributeName::literal("url.full"), "http://127.0.0.1:8080/a?b=c&d=" + std::string(300, 'x'));
  a.add(AttributeName::literal("empty"), "");
  a.add(AttributeName::literal("unicode"), "caf\u00e9 \u2603 \U0001F600");
  a.add(AttributeName::literal("not.utf8"), std::string("a\xff\xc3(\xed\xa0\x80z\xf0\x9f\x98", 12));
  a.add(AttributeName(std::string("runtime key \xfe")), std::int64_t{7});
  a.add(AttributeName::literal("int.min"), std::numeric_limits<std::int64_t>::min());
  a.add(AttributeName::literal("int.max"), std::numeric_limits<std::int64_t>::max());
  a.add(AttributeName::literal("int.negative"), std::int64_t{-1});
  a.add(AttributeName::literal("int.zero"), std::int64_t{0});
  a.add(AttributeName::literal("double"), 0.1);
  a.add(AttributeName::literal("double.max"), -std::numeric_limits<double>::max());
  a.add(AttributeName::literal("double.tiny"), std::numeric_limits<double>::denorm_min());
  a.add(AttributeName::literal("double.nan"), std::nan(""));
  a.add(AttributeName::literal("double.inf"), -std::numeric_limits<double>::infinity());
  a.add(AttributeName::literal("double.zero"), 0.0);
  a.add(AttributeName::literal("double.negative.zero"), -0.0);
  a.add(AttributeName::literal("yes"), true);
  a.add(AttributeName::literal("no"), false);
  a.add_event("retry", {{"retry.attempt", std::int64_t{2}}, {"retry.reason", "HTTP 503 \"quoted\""}},
              a.start + 200us);
  a.add_event("empty event", {}, a.start + 300us);
  a.dropped_events = 5;
  a.set_error("connect: refused \xc3\xa9 and \xff");
  Span& b = spans[1];  // a root span, internal, nothing set; times at and before 1970
  b.name = "";
  b.context = context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  b.start = SystemTime(std::chrono::nanoseconds(-5));
  b.end = SystemTime(std::chrono::nanoseconds(0));
  b.add_event("before 1970", {}, SystemTime(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::min())));
  Span& c = spans[2];  // status ok, a name of 200 bytes
  c.name = std::string(200, 'n');
  c.context = context("00-0af7651916cd43dd8448eb211c80319c-00000000000000ff-01");
  c.start = SystemTime(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max()));
  c.end = c.start;
  c.status = SpanStatus::ok;
  return spans;
}

TEST(OtlpEncodings, ProtobufDecodedByGoogleProtobufSaysWhatTheJsonSays) {
  auto spans = spans_at_the_edges();
  EXPECT_EQ(protobuf_against_json(encode_otlp_json(spans, "edge \xff service"),
                                  encode_otlp_protobuf(spans, "edge \xff service")),
            "same");
  // And a check that can fail: a changed value is found.
  auto other = spans;
  other[0].end += 1ns;
  EXPECT_NE(protobuf_against_json(encode_otlp_json(other, "s"), encode_otlp_protobuf(spans, "s")), "same");
  EXPECT_EQ(protobuf_against_json(encode_otlp_json({}, "s"), encode_otlp_protobuf({}, "s")), "same");
}

// A client span as a Tracer hands it to its exporters: sampled, started and ended.
Span ended_span() {
  Tracer tracer;
  Span span = tracer.start_span("GET", SpanKind::client);
  tracer.end_span(span);
  return span;
}

class TracingTest : public testing::TargetSuite {
 protected:
  // tracing outer → [extra layers] → retry → tracing inner
  http::Client client(std::vector<std::shared_ptr<http::Middleware>> between = {}, bool with_retry = true,
                      std::shared_ptr<Tracer> tracer = nullptr) {
    if (!tracer) {
      tracer = std::make_shared<Tracer>();
      tracer->add_exporter(collected_);
    }
    auto layers = tracing(tracer);
    http::ClientOptions o;
    o.runtime = &runtime_;
    o.middleware.push_back(layers.outer);
    for (auto& layer : between) o.middleware.push_back(layer);
    if (with_retry) o.middleware.push_back(resilience::retry(quick_retries()));
    o.middleware.push_back(layers.inner);
    return http::Client(o);
  }
  Result<http::Response> send(http::Client& c, const std::string& u, http::Headers headers = {},
                              const std::string& method = "GET") {
    auto r = http::Request::make(method, u);
    EXPECT_TRUE(r);
    r->headers = std::move(headers);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }
  // A client without layers, for talking to the target's collector endpoint.
  http::Client plain_client() {
    http::ClientOptions o;
    o.runtime = &runtime_;
    return http::Client(o);
  }
  // The target's collector keeps every POST; a test that reads them starts from none (this
  // suite's target is shared).
  OtlpOptions fresh_collector(http::Client& plain) {
    EXPECT_TRUE(send(plain, url("/v1/traces"), {}, "DELETE"));
    OtlpOptions options;
    options.endpoint = target_->base_url();
    options.flush_interval = 10s;  // only flush() sends
    return options;
  }
  std::vector<Span> spans(SpanKind kind) const {
    std::vector<Span> out;
    for (auto& s : collected_->spans())
      if (s.kind == kind) out.push_back(s);
    return out;
  }

  std::shared_ptr<CollectingExporter> collected_ = std::make_shared<CollectingExporter>();
  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(TracingTest, TheServerSeesTheAttemptSpanAsParentInTheLogicalSpansTrace) {
  auto c = client();
  auto r = send(c, url("/echo"));
  ASSERT_TRUE(r) << r.error().describe();
  auto header = echoed_header(r->body, "traceparent");
  ASSERT_TRUE(header);
  auto seen = parse_traceparent(*header);
  ASSERT_TRUE(seen) << *header;

  auto logical = spans(SpanKind::internal);
  auto attempts = spans(SpanKind::client);
  ASSERT_EQ(logical.size(), 1u);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(seen->trace_id, logical[0].context.trace_id);
  EXPECT_EQ(seen->span_id, attempts[0].context.span_id);
  EXPECT_EQ(attempts[0].context.trace_id, logical[0].context.trace_id);
  ASSERT_TRUE(attempts[0].parent_span_id);
  EXPECT_EQ(*attempts[0].parent_span_id, logical[0].context.span_id);
  EXPECT_FALSE(logical[0].parent_span_id);  // a new trace: the caller sent none

  const Span& a = attempts[0];
  EXPECT_EQ(a.name, "GET");
  EXPECT_EQ(text(a, "http.request.method"), "GET");
  EXPECT_EQ(text(a, "url.full"), url("/echo"));
  EXPECT_EQ(text(a, "server.address"), "127.0.0.1");
  EXPECT_EQ(number(a, "server.port"), target_->port());
  EXPECT_EQ(number(a, "http.response.status_code"), 200);
  EXPECT_EQ(number(a, "errand.attempt"), 1);
  EXPECT_EQ(a.attribute("http.request.resend_count"), nullptr);
  EXPECT_EQ(a.attribute("error.type"), nullptr);
  EXPECT_EQ(text(a, "network.peer.address"), "127.0.0.1");
  EXPECT_EQ(number(a, "network.peer.port"), target_->port());
  EXPECT_EQ(a.status, SpanStatus::unset);
  EXPECT_LE(logical[0].start, a.start);
  EXPECT_GE(logical[0].end, a.end);
  EXPECT_EQ(number(logical[0], "errand.attempts"), 1);
}

TEST_F(TracingTest, ACallersTraceparentMakesTheLogicalSpanItsChildAndTracestateIsCarried) {
  auto c = client();
  http::Headers h;
  h.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  h.add("tracestate", "congo=t61rcWkgMzE");
  auto r = send(c, url("/echo"), h);
  ASSERT_TRUE(r) << r.error().describe();
  auto logical = spans(SpanKind::internal);
  ASSERT_EQ(logical.size(), 1u);
  EXPECT_EQ(to_hex(logical[0].context.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(logical[0].parent_span_id);
  EXPECT_EQ(to_hex(*logical[0].parent_span_id), "00f067aa0ba902b7");

  auto seen = parse_traceparent(echoed_header(r->body, "traceparent").value_or(""));
  ASSERT_TRUE(seen);
  EXPECT_EQ(to_hex(seen->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(seen->span_id, spans(SpanKind::client).at(0).context.span_id);
  EXPECT_EQ(echoed_header(r->body, "tracestate"), "congo=t61rcWkgMzE");
  // Replaced, not added: the server sees one traceparent.
  json echo = json::parse(r->body);
  int count = 0;
  for (const auto& field : echo["headers"]) count += http::iequals(field[0].get<std::string>(), "traceparent");
  EXPECT_EQ(count, 1);
}

TEST_F(TracingTest, AFlakyEndpointGivesOneLogicalSpanThreeAttemptSpansAndTwoRetryEvents) {
  auto c = client();
  auto r = send(c, url("/flaky?fail=2&key=" + testing::unique_key()));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  auto logical = spans(SpanKind::internal);
  auto attempts = spans(SpanKind::client);
  ASSERT_EQ(logical.size(), 1u);
  ASSERT_EQ(attempts.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Span& a = attempts[static_cast<std::size_t>(i)];
    EXPECT_EQ(number(a, "errand.attempt"), i + 1);
    EXPECT_EQ(*a.parent_span_id, logical[0].context.span_id);
    if (i > 0) {
      EXPECT_EQ(number(a, "http.request.resend_count"), i);
    }
  }
  EXPECT_EQ(number(attempts[0], "http.response.status_code"), 503);
  EXPECT_EQ(text(attempts[0], "error.type"), "503");
  EXPECT_EQ(attempts[0].status, SpanStatus::error);
  EXPECT_EQ(number(attempts[2], "http.response.status_code"), 200);
  EXPECT_EQ(attempts[2].status, SpanStatus::unset);

  const Span& l = logical[0];
  EXPECT_EQ(number(l, "errand.attempts"), 3);
  EXPECT_EQ(number(l, "http.response.status_code"), 200);
  EXPECT_EQ(l.status, SpanStatus::unset);
  ASSERT_EQ(l.events.size(), 2u);
  for (const auto& e : l.events) EXPECT_EQ(e.name, "retry");
  EXPECT_EQ(std::get<std::int64_t>(l.events[0].attributes.at(0).second), 2);  // retry.attempt
  EXPECT_EQ(std::get<std::int64_t>(l.events[1].attributes.at(0).second), 3);
  // Each retry event falls between the attempt it follows and the next one.
  EXPECT_GE(l.events[0].time, attempts[0].end);
  EXPECT_LE(l.events[0].time, attempts[1].start);
}

// Without the outer layer each attempt is a child of the caller's span: an attempt's own
// traceparent goes only on the wire (Request::traceparent), so the next attempt does not take
// it for the caller's.
TEST_F(TracingTest, WithOnlyTheInnerLayerEveryAttemptIsAChildOfTheCallersSpan) {
  auto tracer = std::make_shared<Tracer>();
  tracer->add_exporter(collected_);
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(resilience::retry(quick_retries()));
  o.middleware.push_back(tracing(tracer).inner);
  http::Client c(o);
  http::Headers h;
  h.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto r = send(c, url("/flaky?fail=2&key=" + testing::unique_key()), h);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  auto attempts = spans(SpanKind::client);
  ASSERT_EQ(attempts.size(), 3u);
  for (const auto& a : attempts) {
    EXPECT_EQ(to_hex(a.context.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    ASSERT_TRUE(a.parent_span_id);
    EXPECT_EQ(to_hex(*a.parent_span_id), "00f067aa0ba902b7");
  }
}

TEST_F(TracingTest, ARefusedConnectionEndsBothSpansInErrorWithTypeConnect) {
  auto c = client({}, /*with_retry=*/false);
  auto r = send(c, "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().kind(), ErrorKind::connect);
  auto logical = spans(SpanKind::internal);
  auto attempts = spans(SpanKind::client);
  ASSERT_EQ(logical.size(), 1u);
  ASSERT_EQ(attempts.size(), 1u);
  for (const Span* s : {&logical[0], &attempts[0]}) {
    EXPECT_EQ(s->status, SpanStatus::error);
    EXPECT_EQ(text(*s, "error.type"), "connect");
    EXPECT_EQ(s->status_message, r.error().message().substr(0, Span::max_status_message));
    EXPECT_FALSE(s->status_message.empty());
    EXPECT_EQ(s->attribute("http.response.status_code"), nullptr);
  }
}

TEST_F(TracingTest, ABreakerOpeningIsAnEventAndAFastFailureSendsNoAttempt) {
  resilience::BreakerOptions o;
  o.minimum_calls = 2;
  o.window_calls = 2;
  o.open_for = 10s;
  auto c = client({resilience::breaker(o)}, /*with_retry=*/false);
  ASSERT_TRUE(send(c, url("/status/500")));
  ASSERT_TRUE(send(c, url("/status/500")));
  auto refused = send(c, url("/ok"));
  ASSERT_FALSE(refused);
  ASSERT_EQ(refused.error().kind(), ErrorKind::circuit_open);

  auto logical = spans(SpanKind::internal);
  ASSERT_EQ(logical.size(), 3u);
  EXPECT_TRUE(logical[0].events.empty());
  ASSERT_EQ(logical[1].events.size(), 1u);
  EXPECT_EQ(logical[1].events[0].name, "breaker.transition");
  EXPECT_LE(logical[1].events[0].time, logical[1].end);
  const auto& attrs = logical[1].events[0].attributes;
  auto to = std::find_if(attrs.begin(), attrs.end(), [](const auto& kv) { return kv.first == "breaker.to"; });
  ASSERT_NE(to, attrs.end());
  EXPECT_EQ(std::get<std::string>(to->second), "open");
  EXPECT_EQ(text(logical[2], "error.type"), "circuit_open");
  EXPECT_EQ(number(logical[2], "errand.attempts"), 0);
  EXPECT_EQ(spans(SpanKind::client).size(), 2u);  // the refused call never reached the inner layer
}

TEST_F(TracingTest, AFallbackAnswerIsAnEventOnTheLogicalSpanWhileTheAttemptShowsTheFailure) {
  auto c = client({static_fallback()}, /*with_retry=*/false);
  auto r = send(c, "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->fallback);
  auto logical = spans(SpanKind::internal);
  auto attempts = spans(SpanKind::client);
  ASSERT_EQ(logical.size(), 1u);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(text(attempts[0], "error.type"), "connect");
  EXPECT_EQ(text(logical[0], "errand.fallback.source"), "static");
  EXPECT_EQ(number(logical[0], "http.response.status_code"), 200);
  ASSERT_EQ(logical[0].events.size(), 1u);
  EXPECT_EQ(logical[0].events[0].name, "fallback");
  EXPECT_LE(logical[0].events[0].time, logical[0].end);  // reported on the way out, inside the span
  ASSERT_EQ(logical[0].events[0].attributes.size(), 2u);
  EXPECT_EQ(std::get<std::string>(logical[0].events[0].attributes[1].second).rfind("connect: ", 0), 0u);
}

TEST_F(TracingTest, WithoutExportersTheCallersTraceparentGoesOnUnchanged) {
  auto c = client({}, true, std::make_shared<Tracer>());
  http::Headers h;
  h.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto r = send(c, url("/echo"), h);
  ASSERT_TRUE(r);
  auto seen = parse_traceparent(echoed_header(r->body, "traceparent").value_or(""));
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  // Without one, a request starts a trace all the same.
  auto fresh = send(c, url("/echo"));
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(parse_traceparent(echoed_header(fresh->body, "traceparent").value_or("")));
}

TEST_F(TracingTest, AnInvalidTraceparentStartsANewTraceAndItsTracestateIsNotPassedOn) {
  auto c = client();
  http::Headers h;
  h.add("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  h.add("tracestate", "congo=t61rcWkgMzE");
  auto r = send(c, url("/echo"), h);
  ASSERT_TRUE(r) << r.error().describe();
  auto logical = spans(SpanKind::internal);
  ASSERT_EQ(logical.size(), 1u);
  EXPECT_FALSE(logical[0].parent_span_id);
  auto seen = parse_traceparent(echoed_header(r->body, "traceparent").value_or(""));
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->trace_id, logical[0].context.trace_id);
  EXPECT_FALSE(echoed_header(r->body, "tracestate"));
}

bool all_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

TEST_F(TracingTest, TheOtlpExporterPostsSpansThatTheCollectorEndpointKeepsInTheOtlpJsonShape) {
  http::Client plain = plain_client();
  OtlpOptions options = fresh_collector(plain);
  options.service_name = "tracing-test";
  auto otlp = std::make_shared<OtlpHttpExporter>(options);
  EXPECT_EQ(otlp->url(), url("/v1/traces"));
  auto tracer = std::make_shared<Tracer>("tracing-test");
  tracer->add_exporter(otlp);
  auto c = client({}, true, tracer);
  ASSERT_TRUE(send(c, url("/flaky?fail=1&key=" + testing::unique_key())));
  ASSERT_TRUE(otlp->flush(5000ms));
  EXPECT_EQ(otlp->stats().exported, 3u);
  EXPECT_EQ(otlp->dropped(), 0u);

  auto got = send(plain, url("/v1/traces"));
  ASSERT_TRUE(got);
  json exports = json::parse(got->body);
  ASSERT_EQ(exports.size(), 1u) << got->body;  // one batch
  const json& rs = exports[0]["resourceSpans"];
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0]["resource"]["attributes"][0],
            (json{{"key", "service.name"}, {"value", {{"stringValue", "tracing-test"}}}}));
  const json& ss = rs[0]["scopeSpans"];
  ASSERT_EQ(ss.size(), 1u);
  EXPECT_EQ(ss[0]["scope"]["name"], "errand");
  const json& list = ss[0]["spans"];
  ASSERT_EQ(list.size(), 3u);

  const json* logical = nullptr;
  std::vector<const json*> attempts;
  for (const auto& s : list) {
    std::string trace = s["traceId"], span = s["spanId"];
    EXPECT_EQ(trace.size(), 32u);
    EXPECT_EQ(span.size(), 16u);
    EXPECT_TRUE(all_hex(trace) && all_hex(span)) << s.dump();
    EXPECT_TRUE(all_digits(s["startTimeUnixNano"]) && all_digits(s["endTimeUnixNano"])) << s.dump();
    EXPECT_LE(std::stoull(s["startTimeUnixNano"].get<std::string>()), std::stoull(s["endTimeUnixNano"].get<std::string>()));
    EXPECT_EQ(s["name"], "GET");
    if (s["kind"] == 1) logical = &s;
    else if (s["kind"] == 3) attempts.push_back(&s);
    else ADD_FAILURE() << "kind " << s["kind"];
  }
  ASSERT_NE(logical, nullptr);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_FALSE(logical->contains("parentSpanId"));
  ASSERT_EQ((*logical)["events"].size(), 1u);
  EXPECT_EQ((*logical)["events"][0]["name"], "retry");
  EXPECT_TRUE(all_digits((*logical)["events"][0]["timeUnixNano"]));
  for (const json* a : attempts) {
    EXPECT_EQ((*a)["traceId"], (*logical)["traceId"]);
    EXPECT_EQ((*a)["parentSpanId"], (*logical)["spanId"]);
    std::map<std::string, json> attrs;
    for (const auto& kv : (*a)["attributes"]) attrs[kv["key"]] = kv["value"];
    EXPECT_EQ(attrs["http.request.method"], (json{{"stringValue", "GET"}}));
    EXPECT_EQ(attrs["server.address"], (json{{"stringValue", "127.0.0.1"}}));
    EXPECT_TRUE(attrs.count("url.full"));
    EXPECT_TRUE(attrs["http.response.status_code"].contains("intValue"));
  }
  std::set<std::string> codes;
  for (const json* a : attempts) {
    std::string code;
    for (const auto& kv : (*a)["attributes"])
      if (kv["key"] == "http.response.status_code") code = kv["value"]["intValue"].get<std::string>();
    codes.insert(code);
    // A 503 attempt is an error span; the 200 attempt leaves the status unset.
    if (code == "503") {
      EXPECT_EQ((*a)["status"], (json{{"code", 2}}));
    } else {
      EXPECT_EQ(code, "200");
      EXPECT_EQ((*a)["status"], json::object());
    }
  }
  EXPECT_EQ(codes, (std::set<std::string>{"503", "200"}));
  otlp->shutdown(1000ms);
}

// The exporter in protobuf: what the target's collector received, decoded by Google's
// protobuf library, is the JSON encoding of the very spans the tracer ended (a second exporter
// on the same tracer keeps them).
TEST_F(TracingTest, TheOtlpExporterPostsProtobufThatDecodesToTheSpansItWasGiven) {
  http::Client plain = plain_client();
  OtlpOptions options = fresh_collector(plain);
  options.service_name = "tracing-test";
  options.encoding = OtlpEncoding::protobuf;
  auto otlp = std::make_shared<OtlpHttpExporter>(options);
  auto kept = std::make_shared<CollectingExporter>();
  auto tracer = std::make_shared<Tracer>("tracing-test");
  tracer->add_exporter(kept);
  tracer->add_exporter(otlp);
  auto c = client({}, true, tracer);
  ASSERT_TRUE(send(c, url("/flaky?fail=1&key=" + testing::unique_key())));
  ASSERT_TRUE(send(c, url("/status/404")));
  ASSERT_TRUE(otlp->flush(5000ms));
  EXPECT_EQ(otlp->stats().exported, 5u);

  auto json_exports = send(plain, url("/v1/traces"));
  ASSERT_TRUE(json_exports);
  EXPECT_EQ(json::parse(json_exports->body).size(), 0u);  // it went as protobuf only
  auto body = send(plain, url("/v1/traces?protobuf=0"));
  ASSERT_TRUE(body);
  ASSERT_EQ(body->status, 200);
  EXPECT_EQ(send(plain, url("/v1/traces?protobuf=1"))->status, 404);  // one batch
  ASSERT_EQ(kept->spans().size(), 5u);
  EXPECT_EQ(protobuf_against_json(encode_otlp_json(kept->spans(), "tracing-test"), body->body), "same");
  otlp->shutdown(1000ms);
}

// A batch of 16 KiB to 2 MiB has its head written into room kept ahead of its spans (smaller
// ones, as above, get a head of their own size); both decode to the spans given.
TEST_F(TracingTest, ALargeProtobufBatchDecodesToTheSpansItWasGiven) {
  http::Client plain = plain_client();
  OtlpOptions options = fresh_collector(plain);
  options.encoding = OtlpEncoding::protobuf;
  OtlpHttpExporter otlp(options);
  std::vector<Span> spans = spans_at_the_edges();
  while (spans.size() < 90) spans.push_back(spans[spans.size() % 3]);
  for (const auto& span : spans) otlp.export_span(span);
  ASSERT_TRUE(otlp.flush(5000ms));
  EXPECT_EQ(otlp.stats().exported, spans.size());
  auto body = send(plain, url("/v1/traces?protobuf=0"));
  ASSERT_TRUE(body);
  ASSERT_EQ(body->status, 200);
  EXPECT_GT(body->body.size(), 16u * 1024);
  EXPECT_LT(body->body.size(), 2u * 1024 * 1024);
  EXPECT_EQ(protobuf_against_json(encode_otlp_json(spans, "errand"), body->body), "same");
  otlp.shutdown(1000ms);
}

// A queue longer than a batch goes out in batches of max_batch, in order, each span once: the
// worker takes the first max_batch and leaves the rest queued.
TEST_F(TracingTest, ABacklogIsSentInBatchesOfMaxBatchEachSpanOnce) {
  http::Client plain = plain_client();
  OtlpOptions options = fresh_collector(plain);
  options.max_batch = 4;
  OtlpHttpExporter otlp(options);
  Tracer tracer;
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) {
    names.push_back("span-" + std::to_string(i));
    Span s = tracer.start_span(names.back(), SpanKind::client);
    tracer.end_span(s);
    otlp.export_span(std::move(s));
  }
  // Four spans fill a batch and wake the exporter's worker, so it may post before flush(); what matters
  // is the batch sizes and that every span arrives once, in order.
  ASSERT_TRUE(otlp.flush(5000ms));
  EXPECT_EQ(otlp.stats().exported, 10u);
  EXPECT_EQ(otlp.dropped(), 0u);

  auto got = send(plain, url("/v1/traces"));
  ASSERT_TRUE(got);
  json exports = json::parse(got->body);
  std::vector<std::string> received;
  for (const auto& batch : exports) {
    const json& list = batch["resourceSpans"][0]["scopeSpans"][0]["spans"];
    EXPECT_GE(list.size(), 1u);
    EXPECT_LE(list.size(), 4u) << batch.dump();
    for (const auto& s : list) received.push_back(s["name"]);
  }
  EXPECT_GE(exports.size(), 3u);
  EXPECT_EQ(received, names);
  otlp.shutdown(1000ms);
}

// Batches end before their body would pass max_batch_bytes, whichever the encoding; a span
// larger than that goes alone. Every span arrives once, in order.
TEST_F(TracingTest, ABatchIsSentBeforeItsBodyPassesMaxBatchBytes) {
  for (OtlpEncoding encoding : {OtlpEncoding::json, OtlpEncoding::protobuf}) {
    http::Client plain = plain_client();
    OtlpOptions options = fresh_collector(plain);
    options.encoding = encoding;
    options.max_batch_bytes = 2048;
    OtlpHttpExporter otlp(options);
    Tracer tracer;
    std::vector<Span> spans;
    for (int i = 0; i < 12; ++i) {
      // Names that are no part of one another: "span-1-…" is not in "span-11-…".
      Span s = tracer.start_span("span-" + std::to_string(i) + "-" + std::string(i == 7 ? 3000 : 500, 'n'),
                                 SpanKind::client);
      tracer.end_span(s);
      spans.push_back(s);
      otlp.export_span(std::move(s));
    }
    ASSERT_TRUE(otlp.flush(5000ms));
    EXPECT_EQ(otlp.stats().exported, 12u);
    std::vector<std::string> received;
    std::size_t posts = 0;
    if (encoding == OtlpEncoding::json) {
      auto got = send(plain, url("/v1/traces"));
      ASSERT_TRUE(got);
      for (const auto& batch : json::parse(got->body)) {
        ++posts;
        const json& list = batch["resourceSpans"][0]["scopeSpans"][0]["spans"];
        if (list.size() > 1) {
          EXPECT_LE(batch.dump().size(), 2048u);
        }
        for (const auto& s : list) received.push_back(s["name"]);
      }
    } else {
      for (;; ++posts) {
        auto got = send(plain, url("/v1/traces?protobuf=" + std::to_string(posts)));
        ASSERT_TRUE(got);
        if (got->status == 404) break;
        std::vector<Span> in_batch;
        for (const auto& s : spans)
          if (got->body.find(s.name) != std::string::npos) in_batch.push_back(s);
        if (in_batch.size() > 1) {
          EXPECT_LE(got->body.size(), 2048u);
        }
        EXPECT_EQ(protobuf_against_json(encode_otlp_json(in_batch, "errand"), got->body), "same");
        for (const auto& s : in_batch) received.push_back(s.name);
      }
    }
    std::vector<std::string> names;
    for (const auto& s : spans) names.push_back(s.name);
    EXPECT_EQ(received, names) << to_string(encoding);
    EXPECT_GE(posts, 4u) << to_string(encoding);
    otlp.shutdown(1000ms);
  }
}

TEST_F(TracingTest, AFullQueueDropsAndCountsWithoutBlockingAndShutdownEndsWithADeadCollector) {
  OtlpOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(testing::free_port());
  options.max_queue = 10;
  options.max_batch = 1000;      // never a full batch: nothing is sent before shutdown
  options.flush_interval = 60s;
  OtlpHttpExporter otlp(options);
  Span s = ended_span();
  auto started = Clock::now();
  for (int i = 0; i < 100; ++i) otlp.export_span(s);
  EXPECT_LT(Clock::now() - started, 1s);
  EXPECT_EQ(otlp.dropped(), 90u);
  started = Clock::now();
  otlp.shutdown(2000ms);  // one POST, refused at once
  EXPECT_LT(Clock::now() - started, 2500ms);
  auto stats = otlp.stats();
  EXPECT_EQ(stats.dropped, 100u);
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_EQ(stats.failed_posts, 1u);
  EXPECT_NE(stats.last_error.find("connect"), std::string::npos) << stats.last_error;
  otlp.export_span(s);  // after shutdown: dropped, not queued
  EXPECT_EQ(otlp.dropped(), 101u);
}

TEST_F(TracingTest, ShutdownCancelsAPostToAStalledCollectorAtItsDeadline) {
  OtlpOptions options;
  options.endpoint = url("/delay/20000");  // answers after 20 s: a collector that hangs
  options.timeout = 30s;
  options.flush_interval = 10ms;
  OtlpHttpExporter otlp(options);
  Span s = ended_span();
  otlp.export_span(s);
  EXPECT_FALSE(otlp.flush(300ms));  // the POST is under way and does not finish
  auto started = Clock::now();
  otlp.shutdown(200ms);
  EXPECT_LT(Clock::now() - started, 2s);
  EXPECT_EQ(otlp.stats().dropped, 1u);
  EXPECT_NE(otlp.stats().last_error.find("cancelled"), std::string::npos) << otlp.stats().last_error;
}

TEST_F(TracingTest, UnderSteadyTrafficAPartialBatchGoesOncePerFlushIntervalNotAfterEveryPost) {
  // A span a millisecond for 1.2 s, to a collector that takes 20 ms to answer: when a partial
  // batch goes at each tick of a 200 ms interval, about six POSTs; when every POST's end sent
  // what arrived during it, one per 20 ms.
  auto plain = plain_client();
  auto metrics_before = send(plain, url("/metrics"));
  ASSERT_TRUE(metrics_before);
  OtlpOptions options;
  options.endpoint = url("/delay/20");
  options.flush_interval = 200ms;
  OtlpHttpExporter otlp(options);
  Span s = ended_span();
  for (int i = 0; i < 1200; ++i) {
    otlp.export_span(s);
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(otlp.flush(5000ms));
  auto metrics_after = send(plain, url("/metrics"));
  ASSERT_TRUE(metrics_after);
  const std::string posts_to_delay = R"(errand_target_requests_total{endpoint="delay"})";
  double posts = testing::metric_sample(metrics_after->body, posts_to_delay) -
                 testing::metric_sample(metrics_before->body, posts_to_delay);
  EXPECT_EQ(otlp.stats().exported, 1200u);
  EXPECT_GE(posts, 3);
  EXPECT_LE(posts, 12) << "POSTs shrank to what arrives during one";
  otlp.shutdown(1000ms);
}

TEST_F(TracingTest, UnderSteadyTrafficAFlushWaitsForWhatWasQueuedBeforeItNotForAnEmptyQueue) {
  // A span a millisecond to a collector that takes 20 ms to answer: the queue is never empty.
  // A flush that waited for an empty queue ran to its deadline; it waits for the spans queued
  // before it.
  OtlpOptions options;
  options.endpoint = url("/delay/20");
  options.flush_interval = 60s;  // no tick sends anything during the test
  OtlpHttpExporter otlp(options);
  std::atomic<std::uint64_t> exported_by_thread{0};
  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    Span s = ended_span();
    auto until = Clock::now() + 10s;  // bounded, whatever the flush does
    while (!stop.load() && Clock::now() < until) {
      otlp.export_span(s);
      exported_by_thread.fetch_add(1);
      std::this_thread::sleep_for(1ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  std::uint64_t before_flush = exported_by_thread.load();
  auto started = Clock::now();
  bool flushed = otlp.flush(3000ms);
  auto took = Clock::now() - started;
  std::uint64_t exported_after_flush = otlp.stats().exported;
  stop = true;
  traffic.join();
  EXPECT_TRUE(flushed);
  EXPECT_LT(took, 1500ms);
  EXPECT_GE(exported_after_flush, before_flush);
  EXPECT_GT(before_flush, 100u);
  otlp.shutdown(2000ms);
  auto stats = otlp.stats();
  EXPECT_EQ(stats.exported + stats.dropped, exported_by_thread.load());
}

TEST_F(TracingTest, ShutdownsFromSeveralThreadsAtOnceEndOnce) {
  // Each round: a POST under way to a slow collector, and four threads shutting down at once.
  // Two shutdowns at once both shut the Client down and reset it (a null dereference or a
  // double shutdown when they interleave).
  for (int round = 0; round < 20; ++round) {
    OtlpOptions options;
    options.endpoint = url("/delay/3000");
    options.flush_interval = 60s;
    OtlpHttpExporter otlp(options);
    Span s = ended_span();
    for (int i = 0; i < 3; ++i) otlp.export_span(s);
    EXPECT_FALSE(otlp.flush(0ms));  // starts the POST
    std::atomic<int> ready{0};
    std::vector<std::thread> closers;
    for (int t = 0; t < 4; ++t) {
      closers.emplace_back([&] {
        ready.fetch_add(1);
        while (ready.load() < 4) std::this_thread::yield();
        otlp.shutdown(0ms);
      });
    }
    for (auto& closer : closers) closer.join();
    auto stats = otlp.stats();
    EXPECT_EQ(stats.dropped, 3u) << "round " << round;
    EXPECT_EQ(stats.exported, 0u) << "round " << round;
    otlp.export_span(s);  // after shutdown: dropped, not sent
    EXPECT_EQ(otlp.stats().dropped, 4u) << "round " << round;
  }
}

TEST_F(TracingTest, AnEndpointThatIsNoUrlDropsEveryBatchWithoutDeepeningTheStack) {
  OtlpOptions options;
  options.endpoint = "not a url";
  options.max_batch = 1;  // a batch, and a failed POST, per span
  options.max_queue = 1'000'000;
  options.flush_interval = 60s;
  OtlpHttpExporter otlp(options);
  Span s = ended_span();
  constexpr std::uint64_t spans = 200'000;
  for (std::uint64_t i = 0; i < spans; ++i) otlp.export_span(s);
  ASSERT_TRUE(otlp.flush(20000ms));
  auto stats = otlp.stats();
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_EQ(stats.dropped, spans);
  EXPECT_EQ(stats.failed_posts, spans);
  otlp.shutdown(1000ms);
}

TEST_F(TracingTest, ShutdownCancelsAPostWhateverPhaseItIsIn) {
  // Shut down at once, and a few microseconds apart up to 100 µs: the POST is queued,
  // connecting, or sending. A cancellation that arrived as the connection was made was lost
  // (the POST then ran to the collector's answer, 3 s on).
  for (int wait_us = 0; wait_us <= 100; wait_us += 5) {
    OtlpOptions options;
    options.endpoint = url("/delay/3000");
    options.timeout = 30s;
    options.flush_interval = 60s;
    OtlpHttpExporter otlp(options);
    Span s = ended_span();
    otlp.export_span(s);
    EXPECT_FALSE(otlp.flush(0ms));  // starts the POST
    std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
    auto started = Clock::now();
    otlp.shutdown(0ms);
    EXPECT_LT(Clock::now() - started, 1s) << "after " << wait_us << " µs";
    EXPECT_EQ(otlp.stats().dropped, 1u) << "after " << wait_us << " µs";
  }
}

}  // namespace
}  // namespace errand::observe
