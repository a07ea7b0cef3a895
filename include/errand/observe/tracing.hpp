// errand/observe/tracing.hpp — spans for the Client's requests, W3C trace context on the wire,
// and exporters (OTLP/HTTP JSON, JSON lines, in memory).
//
//   auto otlp = std::make_shared<errand::observe::OtlpHttpExporter>(
//       errand::observe::OtlpOptions{.endpoint = "http://127.0.0.1:4318"});
//   auto tracer = std::make_shared<errand::observe::Tracer>("my-job");
//   tracer->add_exporter(otlp);
//   auto layers = errand::observe::tracing(tracer);
//   errand::http::ClientOptions options;
//   options.middleware.push_back(layers.outer);   // first: one span per logical request
//   options.middleware.push_back(errand::resilience::retry({}));
//   options.middleware.push_back(layers.inner);   // last: one span per attempt
//   ...
//   otlp->shutdown(std::chrono::seconds(2));       // sends what is queued
//
// The outer layer makes the logical request's span (kind internal): a child of the caller's
// `traceparent` header when it is valid (its `tracestate` is carried on), else a new trace.
// The resilience layers' decisions (retries, breaker transitions, fallbacks) become events on
// it through http::RequestEvents. The inner layer makes one span per attempt (kind client) and
// sends that span's context in `traceparent`, so the server's span is the attempt's child.
// Attributes follow the OpenTelemetry HTTP client semantic conventions (http.request.method,
// url.full, server.address, server.port, http.response.status_code, error.type,
// http.request.resend_count, network.peer.address) plus errand.attempt / errand.attempts.
//
// Sampling follows the parent: a caller's traceparent with the sampled flag off is propagated
// and its spans are not exported. A Tracer with no exporter only propagates the headers.
// Thread-safety: Tracer and the exporters are thread-safe; add exporters before the Tracer is
// used. Exporters never block the request that ends a span.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <errand/core/error.hpp>
#include <errand/http/middleware.hpp>
#include <errand/observe/trace_context.hpp>

namespace errand::observe {

using SystemTime = std::chrono::system_clock::time_point;
using AttributeValue = http::EventValue;  // string, int64, double or bool
using Attributes = http::EventAttributes;
using http::AttributeName;

enum class SpanKind { internal, client };
enum class SpanStatus { unset, ok, error };

struct SpanEvent {
  std::string name;
  SystemTime time;
  Attributes attributes;
};

struct Span {
  static constexpr std::size_t max_events = 128;  // a runaway retry loop cannot grow a span
  static constexpr std::size_t max_status_message = 256;

  std::string name;
  SpanContext context;
  std::optional<SpanId> parent_span_id;
  SpanKind kind = SpanKind::internal;
  SystemTime start;
  SystemTime end;
  Attributes attributes;
  std::vector<SpanEvent> events;
  std::uint32_t dropped_events = 0;  // events past max_events
  SpanStatus status = SpanStatus::unset;
  std::string status_message;  // with error; at most max_status_message bytes, whole UTF-8 characters

  // Replaces an attribute of the same key. A literal key is best given as
  // http::AttributeName::literal("..."), which keeps it without a copy.
  void set(http::AttributeName key, AttributeValue value);
  // Appends an attribute whose key is not set yet (a span's first attributes): no search. The
  // value is made in place (a string, std::int64_t, double or bool, or what converts to one).
  template <class Value>
  void add(http::AttributeName key, Value&& value) {
    attributes.emplace_back(std::move(key), std::forward<Value>(value));
  }
  const AttributeValue* attribute(std::string_view key) const;
  void add_event(std::string_view name, Attributes attributes = {},
                 SystemTime time = std::chrono::system_clock::now());
  void set_error(std::string_view message);
};

// Receives finished spans. export_span() is called on the thread that ended the span (a Client
// worker) and must not block: queue, or drop and count.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual void export_span(const Span& span) = 0;
  // The span is the exporter's to keep (the Tracer's last exporter gets it so): an exporter
  // that queues spans takes it without a copy.
  virtual void export_span(Span&& span) { export_span(static_cast<const Span&>(span)); }
  virtual void flush() {}
  virtual void shutdown() {}
};

class Tracer {
 public:
  explicit Tracer(std::string service_name = "errand");

  void add_exporter(std::shared_ptr<SpanExporter> exporter);  // before first use
  bool enabled() const noexcept { return !exporters_.empty(); }
  // The share of new traces that are sampled (recorded and exported), decided from the trace
  // id as OpenTelemetry's TraceIdRatioBased sampler does; a child follows its parent's flag.
  // An unsampled request still carries traceparent (flag 00) and costs almost nothing.
  // Default 1: every trace. Before first use.
  void set_sample_ratio(double ratio) noexcept { sample_ratio_ = ratio < 0 ? 0 : ratio > 1 ? 1 : ratio; }
  double sample_ratio() const noexcept { return sample_ratio_; }
  const std::string& service_name() const noexcept { return service_name_; }

  // A started span: a child of `parent` (same trace, parent span id set), or a new trace.
  Span start_span(std::string name, SpanKind kind, const SpanContext* parent = nullptr) const;
  // The two halves of start_span(), for a layer that builds no span for an unsampled trace:
  // the new span's context (ids, and the sampling decision for a new trace), then the span,
  // started at `start`.
  SpanContext new_context(const SpanContext* parent) const;
  Span start_span_in(SpanContext context, std::string name, SpanKind kind, std::optional<SpanId> parent_span_id,
                     SystemTime start) const;
  // Sets the end time (now, unless set already) and hands the span to every exporter, unless
  // its trace is not sampled; the last exporter takes it by move, so `span` is spent after
  // (its emptied attribute list may serve this thread's next span).
  void end_span(Span& span) const;

  void flush() const;
  void shutdown() const;

 private:
  std::string service_name_;
  std::vector<std::shared_ptr<SpanExporter>> exporters_;
  double sample_ratio_ = 1.0;
};

// The two Client layers (see the top of this file). `outer` goes first in
// ClientOptions::middleware, `inner` last (inside the retries).
struct TracingLayers {
  std::shared_ptr<http::Middleware> outer;
  std::shared_ptr<http::Middleware> inner;
};
TracingLayers tracing(std::shared_ptr<Tracer> tracer);

// ---------------------------------------------------------------------------------------------
// Encodings

// An ExportTraceServiceRequest in the OTLP/JSON mapping (opentelemetry-proto, OTLP spec
// "JSON Protobuf Encoding"): ids as lower-case hex, 64-bit integers and times as decimal strings,
// kind and status code as numbers.
std::string encode_otlp_json(const std::vector<Span>& spans, std::string_view service_name);
// Its pieces, for an exporter that encodes each span as it ends: the head, then the spans'
// texts joined by ',', then the tail.
std::string otlp_json_head(std::string_view service_name);
std::string_view otlp_json_tail();
void append_otlp_span_json(std::string& out, const Span& span);  // one span's object, appended

// The same request in the OTLP protobuf encoding (ExportTraceServiceRequest of
// opentelemetry-proto's collector/trace/v1): ids as bytes, times as fixed64, kind and status
// code as enum numbers. Strings that are not UTF-8 get U+FFFD for each bad byte.
std::string encode_otlp_protobuf(const std::vector<Span>& spans, std::string_view service_name);

// One span as one line of JSON (no newline): {"trace_id", "span_id", "parent_span_id",
// "name", "kind", "start_unix_nano", "end_unix_nano", "duration_ms", "attributes": {k: v},
// "events": [...], "status", "service.name"} — flat attributes, for jq.
std::string encode_json_line(const Span& span, std::string_view service_name);

// The spans as an indented tree (children under their parent, by start time): name, kind,
// duration, status, attributes and events. For `errand get --trace`.
std::string format_span_tree(const std::vector<Span>& spans);

// ---------------------------------------------------------------------------------------------
// Exporters

// Keeps finished spans in memory (at most `max_spans`; later ones are dropped and counted).
class CollectingExporter final : public SpanExporter {
 public:
  explicit CollectingExporter(std::size_t max_spans = 10'000) : max_spans_(max_spans) {}
  void export_span(const Span& span) override;
  std::vector<Span> spans() const;  // in the order they ended
  std::uint64_t dropped() const;
  void clear();

 private:
  std::size_t max_spans_;
  mutable std::mutex mutex_;
  std::vector<Span> spans_;
  std::uint64_t dropped_ = 0;
};

// Writes each finished span as one JSON line (encode_json_line) to a file or stderr.
class JsonLinesExporter final : public SpanExporter {
 public:
  // Appends to `path`; "-" is stderr. Errors: io (the file cannot be opened).
  static Result<std::shared_ptr<JsonLinesExporter>> open(const std::string& path,
                                                         std::string service_name = "errand");
  JsonLinesExporter(std::FILE* out, bool owned, std::string service_name);
  ~JsonLinesExporter() override;
  void export_span(const Span& span) override;
  void flush() override;

 private:
  std::mutex mutex_;
  std::FILE* out_;
  bool owned_;
  std::string service_name_;
};

// How OTLP/HTTP bodies are encoded: JSON (Content-Type application/json) or binary protobuf
// (application/x-protobuf, OpenTelemetry's default protocol "http/protobuf"). Collectors take
// both; protobuf is about half the bytes and a third of the CPU to encode.
enum class OtlpEncoding { json, protobuf };
// "json" or "http/json", "protobuf" or "http/protobuf" (the values of OTEL_EXPORTER_OTLP_PROTOCOL).
std::optional<OtlpEncoding> parse_otlp_encoding(std::string_view name);
std::string_view to_string(OtlpEncoding encoding);

struct OtlpOptions {
  // The collector: a base URL ("http://127.0.0.1:4318") gets /v1/traces appended; a URL with
  // a path is used as it is.
  std::string endpoint = "http://127.0.0.1:4318";
  OtlpEncoding encoding = OtlpEncoding::json;
  std::string service_name = "errand";
  std::size_t max_queue = 2048;  // spans waiting; more are dropped (and counted)
  std::size_t max_batch = 512;   // spans per POST
  // Bytes per POST: a batch is sent before a span would take its body past this (collectors
  // limit request bodies); a span larger than this goes alone.
  std::size_t max_batch_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds flush_interval{1000};  // a partial batch waits at most this long
  std::chrono::milliseconds timeout{5000};         // per POST
};

struct OtlpStats {
  std::uint64_t exported = 0;  // spans the collector accepted (2xx)
  std::uint64_t dropped = 0;   // queue full, POST failed, or still queued at shutdown
  std::uint64_t failed_posts = 0;
  std::string last_error;      // of the last failed POST: "connect: ...", "HTTP 500"
};

// Batches spans and POSTs them as OTLP/HTTP (JSON or protobuf) from its own thread with its
// own Client (no middleware: exporting is never traced). export_span() encodes the span on the
// calling thread, into the batch being filled, so that only bytes cross threads; it never waits.
// A failed POST is not retried: its spans are dropped and counted, so a dead collector costs
// a bounded queue and nothing else.
class OtlpHttpExporter final : public SpanExporter {
 public:
  explicit OtlpHttpExporter(OtlpOptions options);
  ~OtlpHttpExporter() override;  // shutdown(0): what is queued is dropped
  OtlpHttpExporter(const OtlpHttpExporter&) = delete;
  OtlpHttpExporter& operator=(const OtlpHttpExporter&) = delete;

  // Encodes, then locks and appends or drops; never waits. A span given by move is encoded
  // the same (SpanExporter's default): it is not kept.
  void export_span(const Span& span) override;
  // Sends what is queued now and waits until it is sent (or failed), at most 5 s.
  void flush() override;
  bool flush(std::chrono::milliseconds deadline);  // false if the deadline passed first
  void shutdown() override;                        // shutdown(5 s)
  // Sends what is queued within `deadline`, then stops; a POST still running is cancelled and
  // what is left is dropped. Idempotent; export_span() after it drops.
  void shutdown(std::chrono::milliseconds deadline);

  std::uint64_t dropped() const;
  OtlpStats stats() const;
  const std::string& url() const noexcept;  // where the POSTs go

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The URL an OTLP endpoint option means: /v1/traces appended to a base URL without a path.
std::string otlp_traces_url(std::string_view endpoint);

}  // namespace errand::observe
