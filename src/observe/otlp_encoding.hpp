// One span's OTLP encoding written into room made ahead, for the exporter that encodes a span
// per request. JSON: its object (tracing.hpp's append_otlp_span_json is the same into a
// string); the bound is taken once, and the text is written with no check per piece.
// Protobuf (otlp_protobuf.cpp): its ScopeSpans.spans field, of an exact size.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <errand/observe/tracing.hpp>

namespace errand::observe {

// A time as OTLP has it: nanoseconds since 1970, unsigned (fixed64); an earlier time is sent
// as 1970, in both encodings.
inline std::uint64_t otlp_unix_nanos(SystemTime t) {
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return nanos < 0 ? 0 : static_cast<std::uint64_t>(nanos);
}

// At least the size of put_otlp_span's text for `span`.
std::size_t otlp_span_bound(const Span& span);
// Writes the span's object at `at`, which has room for otlp_span_bound(span) bytes; returns
// the end of the text.
char* put_otlp_span(char* at, const Span& span);

// At least the size of put_otlp_proto_span's bytes for `span`, found without reading its
// strings; put_otlp_proto_span writes the span as a field of ScopeSpans (its lengths exact),
// given that bound.
std::size_t otlp_proto_span_bound(const Span& span);
char* put_otlp_proto_span(char* at, const Span& span, std::size_t bound);
// The bytes of an ExportTraceServiceRequest before its spans (put_otlp_proto_span's fields
// one after another, `spans_size` bytes of them): its lengths count the spans.
std::string otlp_proto_head(std::string_view service_name, std::size_t spans_size);

}  // namespace errand::observe
