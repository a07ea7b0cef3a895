// errand/observe/trace_context.hpp — W3C Trace Context (https://www.w3.org/TR/trace-context/):
// the ids of a span and the `traceparent` / `tracestate` headers that carry them between
// processes.
//
//   auto parent = errand::observe::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//   auto child = errand::observe::SpanContext::child_of(*parent);   // same trace, new span id
//   request.headers.set("traceparent", child.traceparent());
//
// Ids come from a per-thread generator seeded from std::random_device; they are never all
// zero. Parsing follows the spec's rules: version ff is invalid, an unknown higher version is
// read by its version-00 prefix, all-zero ids are invalid, hex must be lower case.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace errand::observe {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

std::string to_hex(const TraceId& id);
std::string to_hex(const SpanId& id);

struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = true;     // trace-flags bit 0
  std::string tracestate;  // passed on unchanged (bounded to 512 bytes, as the spec allows)

  bool valid() const noexcept;
  std::string traceparent() const;  // "00-<trace>-<span>-<flags>"
  static constexpr std::size_t traceparent_size = 55;
  void write_traceparent(std::array<char, traceparent_size>& out) const;  // the same, with no allocation

  static SpanContext new_root();                         // a new trace id and span id
  static SpanContext child_of(const SpanContext& parent);  // the parent's trace, a new span id
};

TraceId random_trace_id();
SpanId random_span_id();

// The header's value, or nullopt when it is malformed (then a new trace starts).
std::optional<SpanContext> parse_traceparent(std::string_view value);

}  // namespace errand::observe
