// What `errand bench` prints: the wrk-like text summary, the JSON object (schema in
// docs/bench.md), and the verdicts of --fail-if conditions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <errand/core/error.hpp>

#include "load/bench.hpp"

namespace errand::load {

nlohmann::ordered_json to_json(const BenchResult& result);
std::string text_summary(const BenchResult& result);

// --fail-if 'p99>200ms', 'errors>0.1%', 'rps<5000', 'requests<1000', 'mean>=50ms'.
struct Condition {
  std::string text;    // as given
  std::string metric;  // p50 p75 p90 p99 p99.9 p99.99 max mean errors rps requests
  std::string op;      // > >= < <=
  double value = 0;    // microseconds for latencies; a fraction when percent; else a number
  bool percent = false;
};
Result<Condition> parse_condition(std::string_view text);
// The conditions that hold for the result (each is a failure), as human lines:
// "p99>200ms: p99 is 312.4ms".
std::vector<std::string> failed_conditions(const std::vector<Condition>& conditions, const RunPoint& point);

}  // namespace errand::load
