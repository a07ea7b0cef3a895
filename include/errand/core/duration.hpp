// errand/core/duration.hpp — human durations as the command line and job files write them.
//
//   parse_duration("2.5")    -> 2.5 s   (a bare number is seconds)
//   parse_duration("500ms")  -> 500 ms  (units: ns, us, ms, s, m, h)
//   parse_duration("1m30s")  -> 90 s
//   format_duration(1'500'000ns) -> "1.50ms"
//
// Errors: config, with the offending text quoted. Negative durations are refused.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <errand/core/error.hpp>

namespace errand {

Result<std::chrono::nanoseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace errand
