// Spans and their encodings: the OTLP/JSON mapping (exact structure), JSON lines, the text
// tree, bounds (events, status message, collected spans), sampling and the OTLP URL rule.
#include <errand/observe/tracing.hpp>

#include "observe/otlp_encoding.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <errand/core/duration.hpp>

namespace errand::observe {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

SystemTime at(std::int64_t unix_nanos) { return SystemTime(std::chrono::nanoseconds(unix_nanos)); }

SpanContext context(const char* traceparent) {
  auto c = parse_traceparent(traceparent);
  EXPECT_TRUE(c) << traceparent;
  return c.value_or(SpanContext{});
}

// A client span with a value of every type, an event and an error.
Span full_span() {
  Span s;
  s.name = "GET";
  s.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  s.parent_span_id = context("00-4bf92f3577b34da6a3ce929d0e0e4736-a1b2c3d4e5f60718-01").span_id;
  s.kind = SpanKind::client;
  s.start = at(1'700'000'000'123'456'789);
  s.end = at(1'700'000'000'223'456'789);
  s.set("url.full", std::string("http://127.0.0.1:8080/echo"));
  s.set("http.response.status_code", std::int64_t{503});
  s.set("errand.ratio", 0.25);
  s.set("errand.reused", true);
  s.add_event("retry", {{"retry.attempt", std::int64_t{2}}, {"retry.after", std::string("503")}},
              at(1'700'000'000'200'000'000));
  s.set_error("service unavailable");
  return s;
}

TEST(Tracing, OtlpJsonFollowsTheProtobufJsonMappingExactly) {
  json got = json::parse(encode_otlp_json({full_span()}, "checkout"));
  json want = json::parse(R"({
    "resourceSpans": [{
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
      "scopeSpans": [{
        "scope": {"name": "errand", "version": "0.1"},
        "spans": [{
          "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
          "spanId": "00f067aa0ba902b7",
          "parentSpanId": "a1b2c3d4e5f60718",
          "name": "GET",
          "kind": 3,
          "startTimeUnixNano": "1700000000123456789",
          "endTimeUnixNano": "1700000000223456789",
          "attributes": [
            {"key": "url.full", "value": {"stringValue": "http://127.0.0.1:8080/echo"}},
            {"key": "http.response.status_code", "value": {"intValue": "503"}},
            {"key": "errand.ratio", "value": {"doubleValue": 0.25}},
            {"key": "errand.reused", "value": {"boolValue": true}}
          ],
          "events": [{
            "timeUnixNano": "1700000000200000000",
            "name": "retry",
            "attributes": [
              {"key": "retry.attempt", "value": {"intValue": "2"}},
              {"key": "retry.after", "value": {"stringValue": "503"}}
            ]
          }],
          "status": {"code": 2, "message": "service unavailable"}
        }]
      }]
    }]
  })");
  EXPECT_EQ(got, want) << got.dump(2);
}

TEST(Tracing, OtlpJsonOfARootInternalSpanHasNoParentAndAnEmptyStatus) {
  Span s;
  s.name = "POST";
  s.context = context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  s.context.tracestate = "vendor=1";
  s.start = at(5);
  s.end = at(7);
  s.set("errand.nan", std::numeric_limits<double>::quiet_NaN());
  s.set("errand.inf", -std::numeric_limits<double>::infinity());
  json span = json::parse(encode_otlp_json({s}, "errand"))["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_FALSE(span.contains("parentSpanId"));
  EXPECT_EQ(span["kind"], 1);
  EXPECT_EQ(span["traceState"], "vendor=1");
  EXPECT_EQ(span["status"], json::object());
  EXPECT_EQ(span["startTimeUnixNano"], "5");
  EXPECT_EQ(span["attributes"][0]["value"]["doubleValue"], "NaN");
  EXPECT_EQ(span["attributes"][1]["value"]["doubleValue"], "-Infinity");
}

TEST(Tracing, AnAttributeSetTwiceKeepsItsPlaceAndTheNewValue) {
  Span s;
  s.set("a", std::int64_t{1});
  s.set("b", true);
  s.set("a", std::string("x"));
  ASSERT_EQ(s.attributes.size(), 2u);
  EXPECT_EQ(s.attributes[0].first, "a");
  ASSERT_NE(s.attribute("a"), nullptr);
  EXPECT_EQ(std::get<std::string>(*s.attribute("a")), "x");
  EXPECT_EQ(s.attribute("missing"), nullptr);
}

TEST(Tracing, TheStatusMessageIsCutAt256BytesOnACharacterBoundary) {
  Span s;
  std::string message(255, 'x');
  message += "\xc3\xa9tail";  // 'é' straddles byte 256
  s.set_error(message);
  EXPECT_EQ(s.status, SpanStatus::error);
  EXPECT_EQ(s.status_message, std::string(255, 'x'));
  EXPECT_NO_THROW(json::parse(encode_otlp_json({s}, "errand")));
}

TEST(Tracing, EventsBeyondTheLimitAreCountedNotKept) {
  Span s;
  for (std::size_t i = 0; i < Span::max_events + 5; ++i) s.add_event("retry");
  EXPECT_EQ(s.events.size(), Span::max_events);
  EXPECT_EQ(s.dropped_events, 5u);
  json span = json::parse(encode_otlp_json({s}, "errand"))["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["droppedEventsCount"], 5);
}

// A literal name made of letters, digits, '.', '_' and '-' is written without an escaping
// pass; any other name, literal or not, is escaped as every string is.
TEST(Tracing, OnlyPlainLiteralAttributeNamesSkipEscapingAndEveryNameEncodesRight) {
  EXPECT_TRUE(AttributeName::literal("http.request.method").plain());
  EXPECT_TRUE(AttributeName::literal("errand_attempt-2").plain());
  EXPECT_FALSE(AttributeName::literal("say \"hi\"").plain());
  EXPECT_FALSE(AttributeName::literal("caf\xc3\xa9").plain());
  EXPECT_FALSE(AttributeName::literal("").plain());
  EXPECT_FALSE(AttributeName(std::string("http.request.method")).plain());

  Span s;
  s.name = "GET";
  s.context = context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  s.add(AttributeName::literal("server.address"), std::string("h"));
  s.add(AttributeName::literal("say \"hi\"\n"), std::int64_t{1});
  s.add(std::string("tab\there"), true);
  json span = json::parse(encode_otlp_json({s}, "errand"))["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["attributes"][0]["key"], "server.address");
  EXPECT_EQ(span["attributes"][1]["key"], "say \"hi\"\n");
  EXPECT_EQ(span["attributes"][2]["key"], "tab\there");
  json line = json::parse(encode_json_line(s, "errand"));
  EXPECT_EQ(line["attributes"]["server.address"], "h");
  EXPECT_EQ(line["attributes"]["say \"hi\"\n"], 1);
  EXPECT_EQ(line["attributes"]["tab\there"], true);
}

// The exporter writes a span's OTLP text into room of otlp_span_bound(span) with no check per
// piece: a span whose every text needs the longest escape (six bytes per byte), with values
// of every type at their longest, must stay inside it and still parse.
TEST(Tracing, TheOtlpTextOfTheWorstSpanStaysWithinItsBound) {
  const std::string worst(40, '\x01');  // each becomes \u0001
  Span s;
  s.name = worst;
  s.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  s.context.tracestate = worst;
  s.parent_span_id = s.context.span_id;
  s.start = at(std::numeric_limits<std::int64_t>::min());
  s.end = at(std::numeric_limits<std::int64_t>::max());
  s.set_error(std::string(Span::max_status_message, '\x01'));
  s.dropped_events = std::numeric_limits<std::uint32_t>::max();
  auto fill = [&](Attributes& attributes) {
    attributes.emplace_back(worst, worst);
    attributes.emplace_back(worst, std::numeric_limits<std::int64_t>::min());
    attributes.emplace_back(worst, -std::numeric_limits<double>::max());
    attributes.emplace_back(worst, -std::numeric_limits<double>::denorm_min());
    attributes.emplace_back(worst, std::numeric_limits<double>::quiet_NaN());
    attributes.emplace_back(worst, -std::numeric_limits<double>::infinity());
    attributes.emplace_back(worst, false);
    attributes.emplace_back(AttributeName::literal(""), std::string());
  };
  fill(s.attributes);
  for (int i = 0; i < 3; ++i) {
    Attributes event_attributes;
    fill(event_attributes);
    s.add_event(worst, std::move(event_attributes), at(std::numeric_limits<std::int64_t>::min()));
  }
  s.add_event("", {}, at(0));

  std::string text = "x";  // appended after what is there
  append_otlp_span_json(text, s);
  EXPECT_LE(text.size() - 1, otlp_span_bound(s));
  std::vector<char> room(otlp_span_bound(s));
  char* end = put_otlp_span(room.data(), s);
  EXPECT_EQ(std::string_view(room.data(), static_cast<std::size_t>(end - room.data())), text.substr(1));
  json span = json::parse(text.substr(1));
  EXPECT_EQ(span["name"], worst);
  EXPECT_EQ(span["attributes"].size(), 8u);
  EXPECT_EQ(span["events"].size(), 4u);
  EXPECT_EQ(span["events"][3]["attributes"].size(), 0u);
  EXPECT_EQ(span["droppedEventsCount"], std::numeric_limits<std::uint32_t>::max());
  // OTLP times are unsigned: one before 1970 goes as 1970.
  EXPECT_EQ(span["startTimeUnixNano"], "0");
  EXPECT_EQ(span["events"][0]["timeUnixNano"], "0");
  EXPECT_EQ(span["endTimeUnixNano"], std::to_string(std::numeric_limits<std::int64_t>::max()));
}

// The protobuf encoding byte by byte, for a span with only what every span has: the
// ScopeSpans.spans field (key 0x12, length), then trace_id (0x0a), span_id (0x12), name (0x2a),
// kind (0x30, varint), start and end (0x39, 0x41, fixed64 little-endian).
TEST(Tracing, OtlpProtobufOfAPlainSpanIsTheWireFormatByteForByte) {
  Span s;
  s.name = "GET";
  s.kind = SpanKind::client;
  s.context = context("00-0102030405060708090a0b0c0d0e0f10-1112131415161718-01");
  s.start = at(1);
  s.end = at(0x0102030405060708);
  static constexpr char bytes[] = "\x12\x35"
                                  "\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
                                  "\x12\x08\x11\x12\x13\x14\x15\x16\x17\x18"
                                  "\x2a\x03GET"
                                  "\x30\x03"
                                  "\x39\x01\x00\x00\x00\x00\x00\x00\x00"
                                  "\x41\x08\x07\x06\x05\x04\x03\x02\x01";
  const std::string want(bytes, sizeof bytes - 1);
  ASSERT_EQ(want.size(), 2u + 0x35);
  ASSERT_GE(otlp_proto_span_bound(s), want.size());
  std::string got(otlp_proto_span_bound(s), '\0');
  got.resize(static_cast<std::size_t>(put_otlp_proto_span(got.data(), s, otlp_proto_span_bound(s)) - got.data()));
  EXPECT_EQ(got, want);
}

// The length before a span is exactly what follows it, and the bound holds, for the worst
// spans (long and replaced strings, extremes, many attributes, events) as for an empty one.
TEST(Tracing, TheOtlpProtobufLengthOfASpanIsExactAndWithinItsBound) {
  Span empty;
  Span worst;
  worst.name = std::string(200, '\xff');  // each byte becomes U+FFFD: three bytes
  worst.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  worst.context.tracestate = std::string(130, 'a');  // a two-byte length
  worst.parent_span_id = worst.context.span_id;
  worst.set_error(std::string(Span::max_status_message, '\xc3'));
  worst.dropped_events = std::numeric_limits<std::uint32_t>::max();
  Span few = worst;  // attributes sized on the stack
  for (int i = 0; i < 40; ++i) {
    worst.attributes.emplace_back(std::string(i, '\xe2'), std::string(i * 10, '\xf0'));
    worst.attributes.emplace_back(AttributeName::literal("n"), std::int64_t{-i});
    worst.add_event(std::string(i, 'e'), {{"d", i * 0.5}, {"b", i % 2 == 0}, {std::string(i, '\x80'), "\xf4\x90"}});
  }
  few.attributes.assign(worst.attributes.begin(), worst.attributes.begin() + 16);
  const Span full = full_span();
  for (const Span* s : std::initializer_list<const Span*>{&empty, &few, &worst, &full}) {
    std::size_t bound = otlp_proto_span_bound(*s);
    std::string room(bound + 64, '\x55');
    auto written = static_cast<std::size_t>(put_otlp_proto_span(room.data(), *s, bound) - room.data());
    EXPECT_LE(written, bound);
    EXPECT_EQ(room.substr(bound), std::string(64, '\x55'));  // nothing past the bound
    ASSERT_EQ(room[0], '\x12');  // ScopeSpans.spans
    std::uint64_t length = 0;
    std::size_t at = 1;
    for (int shift = 0;; shift += 7) {
      auto byte = static_cast<unsigned char>(room[at++]);
      length |= std::uint64_t{byte & 0x7Fu} << shift;
      if (byte < 0x80) break;
    }
    EXPECT_EQ(length, written - at);
  }
}

// Protobuf strings must be UTF-8: a byte that starts no valid sequence becomes U+FFFD, as in
// the JSON text, and valid sequences go through unchanged.
TEST(Tracing, OtlpProtobufStringsThatAreNotUtf8GetAReplacementPerBadByte) {
  Span s;
  s.name = std::string("a\xff" "b\xc3\xa9" "c\xed\xa0\x80", 9);
  std::string got(otlp_proto_span_bound(s), '\0');
  got.resize(static_cast<std::size_t>(put_otlp_proto_span(got.data(), s, otlp_proto_span_bound(s)) - got.data()));
  std::string want_name = "a\xef\xbf\xbd" "b\xc3\xa9" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
  EXPECT_NE(got.find("\x2a" + std::string(1, static_cast<char>(want_name.size())) + want_name), std::string::npos);
  EXPECT_EQ(got.find('\xff'), std::string::npos);
}

TEST(Tracing, OtlpEncodingNamesAreThoseOfOtelExporterOtlpProtocol) {
  EXPECT_EQ(parse_otlp_encoding("json"), OtlpEncoding::json);
  EXPECT_EQ(parse_otlp_encoding("http/json"), OtlpEncoding::json);
  EXPECT_EQ(parse_otlp_encoding("protobuf"), OtlpEncoding::protobuf);
  EXPECT_EQ(parse_otlp_encoding("http/protobuf"), OtlpEncoding::protobuf);
  EXPECT_EQ(parse_otlp_encoding("grpc"), std::nullopt);
  EXPECT_EQ(parse_otlp_encoding(""), std::nullopt);
  EXPECT_EQ(to_string(OtlpEncoding::protobuf), "protobuf");
}

// A literal name is kept by reference, any other is copied: a copy or a move of an owned name
// keeps its text after the original is gone.
TEST(Tracing, AnAttributeNameBuiltAtRunTimeOutlivesItsSource) {
  std::optional<AttributeName> copy, moved, assigned = AttributeName::literal("first");
  {
    std::string source = "retry.attempt.of.a.name.long.enough.to.allocate";
    AttributeName original(source);
    source.assign(source.size(), 'x');
    copy.emplace(original);
    AttributeName other(std::string_view("second"));
    assigned = other;
    moved.emplace(std::move(original));
  }
  EXPECT_EQ(copy->view(), "retry.attempt.of.a.name.long.enough.to.allocate");
  EXPECT_EQ(moved->view(), "retry.attempt.of.a.name.long.enough.to.allocate");
  EXPECT_EQ(assigned->view(), "second");
  EXPECT_FALSE(copy->plain());
  AttributeName empty{std::string_view()};  // no data at all: nothing to copy
  EXPECT_EQ(empty.view(), "");
  AttributeName from_literal = AttributeName::literal("server.port");
  AttributeName taken(std::move(from_literal));
  EXPECT_TRUE(taken.plain());
  EXPECT_FALSE(from_literal.plain());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(from_literal.view(), "");
  AttributeName literal = AttributeName::literal("http.request.method");
  AttributeName literal_copy = literal;
  EXPECT_TRUE(literal_copy.plain());
  EXPECT_EQ(literal_copy.view().data(), literal.view().data());  // by reference, not copied
}

TEST(Tracing, AJsonLineIsOneFlatObject) {
  json line = json::parse(encode_json_line(full_span(), "checkout"));
  EXPECT_EQ(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(line["span_id"], "00f067aa0ba902b7");
  EXPECT_EQ(line["parent_span_id"], "a1b2c3d4e5f60718");
  EXPECT_EQ(line["kind"], "client");
  EXPECT_EQ(line["start_unix_nano"], 1'700'000'000'123'456'789);
  EXPECT_EQ(line["duration_ms"], 100.0);
  EXPECT_EQ(line["attributes"]["http.response.status_code"], 503);
  EXPECT_EQ(line["attributes"]["errand.reused"], true);
  EXPECT_EQ(line["events"][0]["name"], "retry");
  EXPECT_EQ(line["events"][0]["attributes"]["retry.attempt"], 2);
  EXPECT_EQ(line["status"], (json{{"code", "error"}, {"message", "service unavailable"}}));
  EXPECT_EQ(line["service.name"], "checkout");
}

TEST(Tracing, TheJsonLinesExporterAppendsOneLinePerSpan) {
  auto path = std::filesystem::temp_directory_path() / ("errand-spans-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  {
    auto exporter = JsonLinesExporter::open(path.string(), "svc");
    ASSERT_TRUE(exporter) << exporter.error().describe();
    Span a = full_span();
    Span b = full_span();
    b.name = "POST";
    (*exporter)->export_span(a);
    (*exporter)->export_span(b);
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::filesystem::remove(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["name"], "GET");
  EXPECT_EQ(json::parse(lines[1])["name"], "POST");
  EXPECT_EQ(json::parse(lines[1])["service.name"], "svc");
}

TEST(Tracing, TheJsonLinesExporterWritesToStderrForADash) {
  ::testing::internal::CaptureStderr();
  {
    auto exporter = JsonLinesExporter::open("-", "svc");
    ASSERT_TRUE(exporter) << exporter.error().describe();
    (*exporter)->export_span(full_span());
    (*exporter)->flush();
  }
  bool still_open = ::fcntl(STDERR_FILENO, F_GETFD) != -1;  // the exporter does not own stderr
  std::string written = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(still_open);
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(written.back(), '\n');
  EXPECT_EQ(json::parse(written)["name"], "GET");
}

TEST(Tracing, TheJsonLinesExporterReportsAFileItCannotOpen) {
  auto exporter = JsonLinesExporter::open("/nonexistent-dir/spans.jsonl");
  ASSERT_FALSE(exporter);
  EXPECT_EQ(exporter.error().kind(), ErrorKind::io);
}

TEST(Tracing, TheSpanTreeIndentsChildrenUnderTheirParentInStartOrder) {
  Span root;
  root.name = "GET";
  root.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01");
  root.start = at(1'000'000'000);
  root.end = at(1'300'000'000);
  root.set("errand.attempts", std::int64_t{2});
  root.add_event("retry", {{"retry.attempt", std::int64_t{2}}}, at(1'100'000'000));
  Span first;
  first.name = "GET";
  first.kind = SpanKind::client;
  first.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-2222222222222222-01");
  first.parent_span_id = root.context.span_id;
  first.start = at(1'000'000'000);
  first.end = at(1'050'000'000);
  first.set("http.response.status_code", std::int64_t{503});
  first.status = SpanStatus::error;
  Span second = first;
  second.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-3333333333333333-01");
  second.start = at(1'200'000'000);
  second.end = at(1'250'000'000);
  second.status = SpanStatus::unset;
  second.set("http.response.status_code", std::int64_t{200});

  // Given in the order they ended: children first, the second before the first.
  std::string tree = format_span_tree({second, first, root});
  auto d = [](std::chrono::nanoseconds n) { return format_duration(n); };
  std::string want = "trace 4bf92f3577b34da6a3ce929d0e0e4736\n"
                     "  GET [internal] " + d(300ms) + "  span 1111111111111111\n"
                     "      errand.attempts=2\n"
                     "      @+" + d(100ms) + " retry retry.attempt=2\n"
                     "    GET [client] " + d(50ms) + " error  span 2222222222222222\n"
                     "        http.response.status_code=503\n"
                     "    GET [client] " + d(50ms) + "  span 3333333333333333\n"
                     "        http.response.status_code=200\n";
  EXPECT_EQ(tree, want);
}

TEST(Tracing, ASpanWhoseParentIsElsewhereIsARootThatNamesItsParent) {
  Span s;
  s.name = "GET";
  s.context = context("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01");
  s.parent_span_id = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").span_id;
  std::string tree = format_span_tree({s});
  EXPECT_EQ(tree.substr(0, tree.find('\n')),
            "trace 4bf92f3577b34da6a3ce929d0e0e4736 (parent span 00f067aa0ba902b7)");
}

TEST(Tracing, AChildSpanSharesItsParentsTraceAndNamesItsParent) {
  Tracer tracer;
  auto parent = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  Span child = tracer.start_span("GET", SpanKind::client, &parent);
  EXPECT_EQ(child.context.trace_id, parent.trace_id);
  EXPECT_NE(child.context.span_id, parent.span_id);
  ASSERT_TRUE(child.parent_span_id);
  EXPECT_EQ(*child.parent_span_id, parent.span_id);
  Span root = tracer.start_span("GET", SpanKind::internal);
  EXPECT_TRUE(root.context.valid());
  EXPECT_FALSE(root.parent_span_id);
  EXPECT_NE(root.context.trace_id, parent.trace_id);
}

TEST(Tracing, SpansOfAnUnsampledTraceAreNotExported) {
  auto collected = std::make_shared<CollectingExporter>();
  Tracer tracer;
  tracer.add_exporter(collected);
  auto unsampled = context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  Span quiet = tracer.start_span("GET", SpanKind::client, &unsampled);
  tracer.end_span(quiet);
  Span loud = tracer.start_span("GET", SpanKind::client);
  SpanId loud_id = loud.context.span_id;
  tracer.end_span(loud);  // spent: the exporter has it
  auto spans = collected->spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].context.span_id, loud_id);
  EXPECT_GE(spans[0].end, spans[0].start);
}

// An ended span's attribute list serves the thread's next span: what an exporter kept (a
// copy, or the list itself taken by move) is not touched by the spans after it.
TEST(Tracing, SpansAfterAnExportDoNotTouchWhatTheExportersKept) {
  struct TakingExporter final : SpanExporter {
    void export_span(const Span& span) override { kept.push_back(span); }
    void export_span(Span&& span) override { kept.push_back(std::move(span)); }
    std::vector<Span> kept;
  };
  for (bool taking : {false, true}) {
    auto collected = std::make_shared<CollectingExporter>();
    auto taker = std::make_shared<TakingExporter>();
    Tracer tracer;
    if (taking) tracer.add_exporter(taker);
    else tracer.add_exporter(collected);
    for (int i = 0; i < 20; ++i) {
      Span span = tracer.start_span("GET", SpanKind::client);
      EXPECT_TRUE(span.attributes.empty());
      for (int j = 0; j <= i; ++j) span.add(AttributeName::literal("n"), "value " + std::to_string(i) + std::string(40, 'x'));
      tracer.end_span(span);
    }
    std::vector<Span> spans = taking ? taker->kept : collected->spans();
    ASSERT_EQ(spans.size(), 20u);
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(spans[i].attributes.size(), static_cast<std::size_t>(i + 1)) << i;
      for (const auto& [key, value] : spans[i].attributes)
        EXPECT_EQ(std::get<std::string>(value), "value " + std::to_string(i) + std::string(40, 'x'));
    }
  }
}

// A span ended while its thread's objects are being destroyed (here from a thread_local made
// before the tracer's own, so destroyed after them) is exported like any other. ASan finds
// a use of the destroyed attribute lists, if there is one.
TEST(Tracing, ASpanEndedAsItsThreadEndsIsExported) {
  auto collected = std::make_shared<CollectingExporter>();
  auto tracer = std::make_shared<Tracer>();
  tracer->add_exporter(collected);
  struct EndsAtThreadExit {
    std::shared_ptr<Tracer> tracer;
    std::optional<Span> span;
    ~EndsAtThreadExit() {
      if (!tracer || !span) return;
      tracer->end_span(*span);  // its list given back after the thread's lists are gone
      Span after = tracer->start_span("after", SpanKind::client);  // and one taken
      after.add(AttributeName::literal("n"), std::int64_t{4});
      tracer->end_span(after);
    }
  };
  std::thread([&] {
    thread_local EndsAtThreadExit holder;  // made first: destroyed last
    holder.tracer = tracer;
    for (int i = 0; i < 3; ++i) {  // the thread's attribute lists are made, and fill
      Span s = tracer->start_span("early", SpanKind::client);
      s.add(AttributeName::literal("n"), std::int64_t{i});
      tracer->end_span(s);
    }
    holder.span = tracer->start_span("late", SpanKind::client);
    holder.span->add(AttributeName::literal("n"), std::int64_t{3});
  }).join();
  auto spans = collected->spans();
  ASSERT_EQ(spans.size(), 5u);
  EXPECT_EQ(spans[3].name, "late");
  ASSERT_EQ(spans[3].attributes.size(), 1u);
  EXPECT_EQ(std::get<std::int64_t>(spans[3].attributes[0].second), 3);
  EXPECT_EQ(spans[4].name, "after");
  ASSERT_EQ(spans[4].attributes.size(), 1u);
  EXPECT_EQ(std::get<std::int64_t>(spans[4].attributes[0].second), 4);
}

TEST(Tracing, TheCollectingExporterKeepsAtMostItsLimitAndCountsTheRest) {
  CollectingExporter collected(3);
  for (int i = 0; i < 5; ++i) collected.export_span(Span{});
  EXPECT_EQ(collected.spans().size(), 3u);
  EXPECT_EQ(collected.dropped(), 2u);
  collected.clear();
  EXPECT_TRUE(collected.spans().empty());
  EXPECT_EQ(collected.dropped(), 0u);
}

TEST(Tracing, AnOtlpBaseUrlGetsTheTracesPathAndAFullUrlIsKept) {
  EXPECT_EQ(otlp_traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(otlp_traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(otlp_traces_url("https://collector.example/otlp/v1/traces"), "https://collector.example/otlp/v1/traces");
  EXPECT_EQ(otlp_traces_url("http://127.0.0.1:4318?tenant=a"), "http://127.0.0.1:4318?tenant=a");  // not a base URL
}

}  // namespace
}  // namespace errand::observe

namespace errand::observe {
namespace {

TEST(TracingSampler, TheRatioDecidesNewTracesAndChildrenFollowTheirParent) {
  Tracer none;
  none.set_sample_ratio(0.0);
  Tracer all;
  Tracer half;
  half.set_sample_ratio(0.5);
  int sampled = 0;
  for (int i = 0; i < 4000; ++i) {
    EXPECT_FALSE(none.start_span("GET", SpanKind::internal).context.sampled);
    EXPECT_TRUE(all.start_span("GET", SpanKind::internal).context.sampled);
    sampled += half.start_span("GET", SpanKind::internal).context.sampled ? 1 : 0;
  }
  EXPECT_GT(sampled, 1700);  // 2000 expected; 1700..2300 is beyond 9 standard deviations
  EXPECT_LT(sampled, 2300);
  auto parent = all.start_span("GET", SpanKind::internal);
  EXPECT_TRUE(none.start_span("GET", SpanKind::client, &parent.context).context.sampled);
  auto unsampled = none.start_span("GET", SpanKind::internal);
  EXPECT_FALSE(all.start_span("GET", SpanKind::client, &unsampled.context).context.sampled);
}

}  // namespace
}  // namespace errand::observe
