// One span's OTLP/JSON object written into room made ahead, for the exporter that encodes a
// span per request (tracing.hpp's append_otlp_span_json is the same into a string): the bound
// is taken once, and the text is written with no check per piece.
#pragma once

#include <cstddef>

#include <errand/observe/tracing.hpp>

namespace errand::observe {

// At least the size of put_otlp_span's text for `span`.
std::size_t otlp_span_bound(const Span& span);
// Writes the span's object at `at`, which has room for otlp_span_bound(span) bytes; returns
// the end of the text.
char* put_otlp_span(char* at, const Span& span);

}  // namespace errand::observe
