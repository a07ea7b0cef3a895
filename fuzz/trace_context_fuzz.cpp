// libFuzzer target for what tracing reads from and writes for the outside world: a traceparent
// header from a caller must parse or be refused, never crash, and what it accepts must read
// back the same after writing; any span text written as JSON must be valid JSON.
#include <errand/observe/trace_context.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "observe/json_writer.hpp"

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto context = errand::observe::parse_traceparent(input)) {
    require(context->valid());
    auto written = context->traceparent();
    require(written.size() == 55);
    auto again = errand::observe::parse_traceparent(written);
    require(again.has_value());
    require(again->trace_id == context->trace_id && again->span_id == context->span_id &&
            again->sampled == context->sampled);
  }

  std::string text;
  errand::observe::json_text::string(text, input);
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(!parsed.is_discarded() && parsed.is_string());
  return 0;
}
