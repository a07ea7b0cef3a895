// The --html report: one self-contained page (inline CSS and SVG, no network fetch, no
// script needed to draw) with the summary table and three charts — the latency percentile
// curve on a logarithmic "nines" axis, requests/s for each second of the run, and, when
// sweeping, throughput and p99 at each point. A small inline script only reports, for tests,
// what each chart rendered (data-rendered attributes on <body>).
#pragma once

#include <string>

#include "load/bench.hpp"

namespace errand::load {

std::string html_report(const BenchResult& result);

}  // namespace errand::load
