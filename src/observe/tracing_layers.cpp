// The tracing layers of the Client: the logical request's span (outer) and one span per attempt
// (inner). They meet through Request::extensions, which every copy of the request made by the
// layers in between (retries) shares.
#include <errand/observe/tracing.hpp>

#include <algorithm>

#include <errand/http/client.hpp>

#include "observe/attempts.hpp"

namespace errand::observe {

namespace {

constexpr std::size_t max_tracestate = 512;

// The spec lets a vendor cut tracestate at 512 bytes by dropping whole list members.
std::string bounded_tracestate(std::string_view value) {
  while (value.size() > max_tracestate) {
    std::size_t comma = value.rfind(',', max_tracestate);
    if (comma == std::string_view::npos) return {};
    value = value.substr(0, comma);
  }
  return std::string(value);
}

// The caller's span, from the request's own traceparent / tracestate headers.
std::optional<SpanContext> incoming_parent(const http::Request& request) {
  auto header = request.headers.get("traceparent");
  if (!header) return std::nullopt;
  auto parent = parse_traceparent(*header);
  if (!parent) return std::nullopt;
  if (auto state = request.headers.get("tracestate")) parent->tracestate = bounded_tracestate(*state);
  return parent;
}

// A tracestate that came with an invalid traceparent must not travel on (W3C: ignore it).
// The traceparent goes in Request::traceparent, which the transport sends in place of the
// caller's header: no allocation for the most frequent change a traced request makes.
void inject(http::Request& request, const SpanContext& context) {
  context.write_traceparent(request.traceparent.emplace());
  if (!context.tracestate.empty()) request.headers.set("tracestate", context.tracestate);
  else if (!request.headers.empty()) request.headers.remove("tracestate");
}

// The attribute names, kept by reference (see http::AttributeName).
const AttributeName key_method = AttributeName::literal("http.request.method");
const AttributeName key_url = AttributeName::literal("url.full");
const AttributeName key_server_address = AttributeName::literal("server.address");
const AttributeName key_server_port = AttributeName::literal("server.port");
const AttributeName key_peer_address = AttributeName::literal("network.peer.address");
const AttributeName key_peer_port = AttributeName::literal("network.peer.port");
const AttributeName key_status_code = AttributeName::literal("http.response.status_code");
const AttributeName key_error_type = AttributeName::literal("error.type");
const AttributeName key_error_phase = AttributeName::literal("errand.error.phase");
const AttributeName key_attempt = AttributeName::literal("errand.attempt");
const AttributeName key_attempts = AttributeName::literal("errand.attempts");
const AttributeName key_resend_count = AttributeName::literal("http.request.resend_count");
const AttributeName key_fallback_source = AttributeName::literal("errand.fallback.source");

// url.full is the URL without userinfo (credentials) and fragment (never sent). Each attempt
// makes its own: a layer between the two may send an attempt elsewhere.
void request_attributes(Span& span, const http::Request& request) {
  span.add(key_method, request.method);  // a new span's first attributes
  span.add(key_url, request.url.without_credentials());
  span.add(key_server_address, request.url.host());
  span.add(key_server_port, std::int64_t{request.url.port()});
}

// "127.0.0.1:8080" / "[::1]:443" → address and port.
void peer_attributes(Span& span, std::string_view remote) {
  std::size_t colon = remote.rfind(':');
  if (remote.empty() || colon == std::string_view::npos) return;
  std::string_view host = remote.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  span.add(key_peer_address, std::string(host));
  std::int64_t port = 0;
  for (char c : remote.substr(colon + 1)) {
    if (c < '0' || c > '9') return;
    port = port * 10 + (c - '0');
  }
  span.add(key_peer_port, port);
}

// The OpenTelemetry HTTP client rules: an error is a failure to get a response, or a status of
// 400 or more (error.type is then the status code).
// Spans get these once, at their end, so they are added with no search for an earlier value.
void outcome_attributes(Span& span, const Result<http::Response>& outcome) {
  if (outcome) {
    span.add(key_status_code, std::int64_t{outcome->status});
    if (outcome->status >= 400) {
      span.add(key_error_type, std::to_string(outcome->status));
      span.status = SpanStatus::error;
    }
    return;
  }
  const Error& e = outcome.error();
  span.add(key_error_type, std::string(to_string(e.kind())));
  if (e.phase() != Phase::none) span.add(key_error_phase, std::string(to_string(e.phase())));
  span.set_error(e.message());
}

using SteadyTime = std::chrono::steady_clock::time_point;

// A span's end on the wall clock: its start plus the steady time since. The wall clock is read
// once per trace (its first span's start), as OpenTelemetry's anchored clocks do: the row's
// steady reading (Stage contexts) serves for every other time, and a wall clock stepped
// meanwhile cannot make a span end before it starts.
SystemTime wall_after(SystemTime start, SteadyTime steady_start, SteadyTime steady_now) {
  return start + std::chrono::duration_cast<SystemTime::duration>(steady_now - steady_start);
}

// The logical request's span, shared by its attempts through Request::extensions; the
// resilience layers' events land on it.
class RequestTrace final : public http::RequestEvents {
 public:
  RequestTrace(Span span, SteadyTime steady_start) : span_(std::move(span)), steady_start_(steady_start) {}

  // On the trace's clock, like every other time in it: a wall-clock reading could fall before
  // the end of the attempt that led to the event.
  void event(std::string_view name, http::EventAttributes attributes) override {
    span_.add_event(name, std::move(attributes), wall_at(std::chrono::steady_clock::now()));
  }

  Span& span() noexcept { return span_; }
  SystemTime wall_at(SteadyTime steady_now) const { return wall_after(span_.start, steady_start_, steady_now); }
  int next_attempt() noexcept { return ++attempts_; }
  int attempts() const noexcept { return attempts_; }

 private:
  Span span_;
  SteadyTime steady_start_;
  int attempts_ = 0;
};

// Marks a request whose trace the outer layer chose not to record, so that the inner layer
// records nothing either without parsing the traceparent back. Static: no allocation.
struct Unrecorded {};
std::shared_ptr<Unrecorded> unrecorded() {
  static Unrecorded marker;
  return std::shared_ptr<Unrecorded>(std::shared_ptr<Unrecorded>(), &marker);
}

struct LogicalSpan {
  std::shared_ptr<RequestTrace> trace;  // none when nothing is recorded
};

class OuterLayer final : public http::StageWith<LogicalSpan> {
 public:
  explicit OuterLayer(std::shared_ptr<Tracer> tracer) : tracer_(std::move(tracer)) {}

  Begin before(http::Request& request, LogicalSpan& state, Result<http::Response>&, http::Client&,
               BeginContext begin) override {
    auto parent = incoming_parent(request);
    if (!tracer_->enabled()) {
      // Nothing is recorded, so no span id is made up: the caller's context goes on as it is
      // (as OpenTelemetry's no-op tracer does), and a request without one starts a trace.
      if (!parent) inject(request, SpanContext::new_root());
      request.extensions.insert(unrecorded());
      return Begin::proceed;
    }
    SpanContext context = tracer_->new_context(parent ? &*parent : nullptr);
    if (!context.sampled) {
      // Not recorded: the context goes on (flag 00) and no span is built.
      inject(request, context);
      request.extensions.insert(unrecorded());
      return Begin::proceed;
    }
    std::optional<SpanId> parent_span_id;
    if (parent) parent_span_id = parent->span_id;  // valid: parse_traceparent refuses zero ids
    state.trace = std::make_shared<RequestTrace>(
        tracer_->start_span_in(std::move(context), request.method, SpanKind::internal, parent_span_id,
                               std::chrono::system_clock::now()),
        begin.now);
    Span& span = state.trace->span();
    request_attributes(span, request);
    inject(request, span.context);
    request.extensions.insert(state.trace);
    request.extensions.insert<http::RequestEvents>(state.trace);
    return Begin::proceed;
  }

  // A cancelled request still ends its span.
  std::optional<http::Duration> after(http::Request&, LogicalSpan& state, Result<http::Response>& outcome,
                                      http::Client&, EndContext end) override {
    if (!state.trace) return std::nullopt;
    Span& span = state.trace->span();
    span.end = state.trace->wall_at(end.now);
    // Stages further in report events on the way out, after the row read end.now.
    for (const auto& e : span.events) span.end = std::max(span.end, e.time);
    outcome_attributes(span, outcome);
    // Without an inner layer nothing counted the attempts; a retry layer lists them, and a
    // breaker or bulkhead that failed fast sent nothing.
    int attempts = state.trace->attempts();
    if (attempts == 0) attempts = static_cast<int>(attempts_sent(outcome));
    span.add(key_attempts, std::int64_t{attempts});
    if (outcome && outcome->fallback) {
      span.add(key_fallback_source, outcome->fallback->source);
      bool told = std::any_of(span.events.begin(), span.events.end(), [](const SpanEvent& e) { return e.name == "fallback"; });
      if (!told)
        span.add_event("fallback",
                       {{"fallback.source", outcome->fallback->source}, {"fallback.reason", outcome->fallback->reason}},
                       state.trace->wall_at(end.now));
    }
    tracer_->end_span(span);
    return std::nullopt;
  }

 private:
  std::shared_ptr<Tracer> tracer_;
};

struct AttemptSpan {
  std::optional<Span> span;  // none when nothing is recorded
  SteadyTime steady_start;
};

class InnerLayer final : public http::StageWith<AttemptSpan> {
 public:
  explicit InnerLayer(std::shared_ptr<Tracer> tracer) : tracer_(std::move(tracer)) {}

  Begin before(http::Request& request, AttemptSpan& state, Result<http::Response>&, http::Client&,
               BeginContext begin) override {
    auto* trace = request.extensions.get<RequestTrace>();
    std::optional<SpanContext> incoming;  // without an outer layer, the caller's span is the parent
    if (!trace && request.extensions.get<Unrecorded>()) return Begin::proceed;
    if (!trace) {
      incoming = incoming_parent(request);
      if (!tracer_->enabled()) {
        if (!incoming) inject(request, SpanContext::new_root());
        return Begin::proceed;
      }
      // An unsampled trace: the context already on the request goes on; nothing is recorded.
      if (incoming && !incoming->sampled) return Begin::proceed;
    }
    const SpanContext* parent = trace ? &trace->span().context : incoming ? &*incoming : nullptr;
    SpanContext context = tracer_->new_context(parent);
    if (!context.sampled) {  // a new trace, not sampled: its context goes on, nothing is recorded
      inject(request, context);
      return Begin::proceed;
    }
    int attempt = trace ? trace->next_attempt() : 1;
    std::optional<SpanId> parent_span_id;
    if (parent) parent_span_id = parent->span_id;  // valid: a RequestTrace's, or parsed (never zero)
    SystemTime start = trace ? trace->wall_at(begin.now) : std::chrono::system_clock::now();
    state.steady_start = begin.now;
    Span& span = state.span.emplace(
        tracer_->start_span_in(std::move(context), request.method, SpanKind::client, parent_span_id, start));
    request_attributes(span, request);
    span.add(key_attempt, std::int64_t{attempt});
    if (attempt > 1) span.add(key_resend_count, std::int64_t{attempt - 1});
    inject(request, span.context);
    return Begin::proceed;
  }

  std::optional<http::Duration> after(http::Request&, AttemptSpan& state, Result<http::Response>& outcome,
                                      http::Client&, EndContext end) override {
    if (!state.span) return std::nullopt;
    state.span->end = wall_after(state.span->start, state.steady_start, end.now);
    outcome_attributes(*state.span, outcome);
    if (outcome) peer_attributes(*state.span, outcome->remote_address);
    tracer_->end_span(*state.span);
    return std::nullopt;
  }

 private:
  std::shared_ptr<Tracer> tracer_;
};

}  // namespace

TracingLayers tracing(std::shared_ptr<Tracer> tracer) {
  if (!tracer) tracer = std::make_shared<Tracer>();
  return TracingLayers{std::make_shared<OuterLayer>(tracer), std::make_shared<InnerLayer>(tracer)};
}

}  // namespace errand::observe
