#include <errand/core/duration.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace errand {

namespace {

Error bad(std::string_view text, std::string_view why) {
  return Error::config("invalid duration \"" + std::string(text.substr(0, 64)) + "\": " + std::string(why) +
                       " (examples: 2.5, 500ms, 2s, 1m30s)");
}

}  // namespace

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  std::string_view rest = text;
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!rest.empty() && blank(rest.front())) rest.remove_prefix(1);
  while (!rest.empty() && blank(rest.back())) rest.remove_suffix(1);
  if (rest.empty()) return fail(bad(text, "empty"));
  if (rest.front() == '-') return fail(bad(text, "negative"));
  long double total_ns = 0;
  bool any = false;
  while (!rest.empty()) {
    std::size_t i = 0;
    bool digits = false, dot = false;
    while (i < rest.size() && ((rest[i] >= '0' && rest[i] <= '9') || (rest[i] == '.' && !dot))) {
      if (rest[i] == '.') dot = true;
      else digits = true;
      ++i;
    }
    if (!digits) return fail(bad(text, "expected a number"));
    double value = 0;
    auto parsed = std::from_chars(rest.data(), rest.data() + i, value);  // locale-independent
    if (parsed.ec != std::errc() || parsed.ptr != rest.data() + i) return fail(bad(text, "expected a number"));
    rest.remove_prefix(i);
    std::size_t u = 0;
    while (u < rest.size() && ((rest[u] >= 'a' && rest[u] <= 'z') || (rest[u] >= 'A' && rest[u] <= 'Z'))) ++u;
    std::string_view unit = rest.substr(0, u);
    rest.remove_prefix(u);
    long double scale;
    if (unit.empty()) {
      if (any || !rest.empty()) return fail(bad(text, "missing unit"));
      scale = 1e9;
    } else if (unit == "ns") scale = 1;
    else if (unit == "us") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return fail(bad(text, "unknown unit \"" + std::string(unit) + "\""));
    total_ns += value * scale;
    any = true;
  }
  if (!std::isfinite(static_cast<double>(total_ns)) || total_ns > 1e18L) return fail(bad(text, "too large"));
  return std::chrono::nanoseconds(static_cast<long long>(std::llround(static_cast<double>(total_ns))));
}

std::string format_duration(std::chrono::nanoseconds d) {
  char buf[32];
  double ns = static_cast<double>(d.count());
  // Thresholds sit where rounding to two decimals would reach the next unit (999.996us).
  if (ns < 999.5) std::snprintf(buf, sizeof buf, "%.0fns", ns);
  else if (ns < 999'995) std::snprintf(buf, sizeof buf, "%.2fus", ns / 1e3);
  else if (ns < 999'995'000) std::snprintf(buf, sizeof buf, "%.2fms", ns / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2fs", ns / 1e9);
  return buf;
}

}  // namespace errand
