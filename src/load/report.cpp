#include "load/report.hpp"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include <errand/core/duration.hpp>

namespace errand::load {
namespace {

constexpr double percentiles[] = {50, 75, 90, 99, 99.9, 99.99};
constexpr const char* percentile_names[] = {"p50", "p75", "p90", "p99", "p99.9", "p99.99"};

std::uint64_t http_failures(const Tally& t) {
  std::uint64_t n = 0;
  for (std::size_t code = 400; code < t.status.size(); ++code) n += t.status[code];
  return n;
}

std::uint64_t all_errors(const Tally& t) { return t.error_total() + http_failures(t); }

// Attempts that ended: responses, and requests that failed without one.
std::uint64_t attempts(const Tally& t) { return t.requests + t.error_total(); }
// The generator's CPU over every request it finished, failed ones included: a run of fast
// failures (an open breaker) spent its CPU on them, and per response alone it read 134 ms.
double cpu_us_per_outcome(const Tally& t, const RunPoint& p) {
  return t.finished() ? p.cpu_s * 1e6 / static_cast<double>(t.finished()) : 0.0;
}

double error_rate(const Tally& t) {
  std::uint64_t a = attempts(t);
  return a ? static_cast<double>(all_errors(t)) / static_cast<double>(a) : 0.0;
}

double rps(const RunPoint& p) { return p.elapsed_s > 0 ? static_cast<double>(p.tally.requests) / p.elapsed_s : 0.0; }

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// The longest a wake-up waited for other responses (--gather), in microseconds.
double gather_us(const BenchOptions& o) { return static_cast<double>(o.gather.count()) / 1e3; }

nlohmann::ordered_json latency_json(const Histogram& h) {
  nlohmann::ordered_json j;
  j["count"] = h.count();
  j["min"] = round3(us(h.min()));
  j["mean"] = round3(h.mean() / 1000.0);
  j["stdev"] = round3(h.stdev() / 1000.0);
  for (std::size_t i = 0; i < std::size(percentiles); ++i) j[percentile_names[i]] = round3(us(h.percentile(percentiles[i])));
  j["max"] = round3(us(h.max()));
  return j;
}

nlohmann::ordered_json point_json(const RunPoint& p, const BenchOptions& o) {
  const Tally& t = p.tally;
  nlohmann::ordered_json j;
  j["connections"] = {{"configured", p.connections}, {"opened", t.connections_opened}};
  j["threads"] = p.threads;
  if (p.rate > 0) j["rate"] = p.rate;
  j["duration_s"] = round3(p.elapsed_s);
  j["requests"] = t.requests;
  j["warmup_requests"] = t.warmup_requests;
  j["rps"] = round3(rps(p));
  j["bytes"] = t.bytes;
  j["bytes_per_s"] = round3(p.elapsed_s > 0 ? static_cast<double>(t.bytes) / p.elapsed_s : 0.0);
  j["latency_us"] = latency_json(t.latency);
  if (p.rate > 0) j["corrected_latency_us"] = latency_json(t.corrected_latency);
  j["connect_us"] = latency_json(t.connect_time);
  if (o.engine == BenchOptions::Engine::lean)
    j["gather"] = {{"responses", t.gather_responses},
                   {"max_wait_us", t.gather_responses > 1 ? round3(gather_us(o)) : 0.0},
                   {"waits", t.gather_waits},
                   {"empty_waits", t.gather_empty_waits}};
  if (o.stream) {
    j["stream"] = {{"events", t.events},
                   {"events_per_s", round3(p.elapsed_s > 0 ? static_cast<double>(t.events) / p.elapsed_s : 0.0)},
                   {"cut_at_end", t.streams_cut},
                   {"first_byte_us", latency_json(t.first_byte)},
                   {"first_event_us", latency_json(t.first_event)},
                   {"event_gap_us", latency_json(t.event_gap)}};
  }
  nlohmann::ordered_json status = nlohmann::ordered_json::object();
  for (std::size_t code = 0; code < t.status.size(); ++code)
    if (t.status[code]) status[std::to_string(code)] = t.status[code];
  j["status"] = status;
  nlohmann::ordered_json errors = nlohmann::ordered_json::object();
  for (ErrorKind kind : {ErrorKind::dns, ErrorKind::connect, ErrorKind::tls, ErrorKind::timeout, ErrorKind::protocol,
                         ErrorKind::io, ErrorKind::cancelled, ErrorKind::circuit_open, ErrorKind::overloaded}) {
    errors[std::string(to_string(kind))] = t.errors[static_cast<std::size_t>(kind)];
  }
  errors["http_status"] = http_failures(t);
  j["errors"] = errors;
  nlohmann::ordered_json timeouts = nlohmann::ordered_json::object();
  for (Phase phase : {Phase::connect, Phase::tls, Phase::first_byte, Phase::read})
    timeouts[std::string(to_string(phase))] = t.timeouts_by_phase[static_cast<std::size_t>(phase)];
  j["timeouts_by_phase"] = timeouts;
  j["errors_total"] = all_errors(t);
  j["error_rate"] = error_rate(t);
  if (!t.first_error.empty()) j["first_error"] = t.first_error;
  j["reuse_rate"] = round3(t.requests ? static_cast<double>(t.reused_requests) / static_cast<double>(t.requests + t.warmup_requests) : 0.0);
  j["tls"] = {{"full", t.tls_full}, {"resumed", t.tls_resumed}};
  if (t.tls_full_time.count()) j["tls"]["full_us"] = latency_json(t.tls_full_time);
  if (t.tls_resumed_time.count()) j["tls"]["resumed_us"] = latency_json(t.tls_resumed_time);
  j["per_second"] = t.per_second;
  j["per_second_bytes"] = t.per_second_bytes;
  j["cpu_s"] = round3(p.cpu_s);
  j["cpu_us_per_request"] = round3(cpu_us_per_outcome(t, p));
  j["max_rss_kib"] = p.max_rss_kib;
  if (p.allocations_per_request >= 0) j["allocations_per_request"] = round3(p.allocations_per_request);
  if (o.retry || o.breaker)
    j["policies"] = {{"retries", t.retries}, {"budget_exhausted", t.budget_exhausted}, {"breaker_openings", t.breaker_openings}};
  return j;
}

// Microseconds as core's format_duration writes durations ("812.54us", "4.10ms").
std::string human_duration(double microseconds) {
  return format_duration(std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(microseconds * 1000.0))));
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.2f}{}", bytes, units[u]);
}

std::string mode_text(const BenchResult& r, const RunPoint& p) {
  std::string mode = r.options.close_each ? "new connection per request" : "keep-alive";
  if (r.options.stream) mode += ", streams";
  if (r.options.pipeline > 1) mode += fmt::format(", pipeline {}", r.options.pipeline);
  mode += p.rate > 0 ? fmt::format(", open model at {} req/s", p.rate) : ", closed model";
  if (r.options.engine == BenchOptions::Engine::client) mode += ", errand Client engine";
  else mode += ", " + std::string(to_string(p.tally.backend));
  if (p.tally.gather_responses > 1)
    mode += fmt::format(", a wake-up waits up to {} for {} responses", human_duration(gather_us(r.options)), p.tally.gather_responses);
  return mode;
}

void latency_block(std::string& out, const char* title, const Histogram& h) {
  out += fmt::format("  {:<18}{:>10}{:>10}{:>10}{:>10}\n", title, "avg", "stdev", "p99", "max");
  out += fmt::format("  {:<18}{:>10}{:>10}{:>10}{:>10}\n", "", human_duration(h.mean() / 1000), human_duration(h.stdev() / 1000),
                     human_duration(us(h.percentile(99))), human_duration(us(h.max())));
}

std::string point_text(const BenchResult& r, const RunPoint& p) {
  const Tally& t = p.tally;
  std::string out;
  out += fmt::format("  {} threads and {} connections ({})\n", p.threads, p.connections, mode_text(r, p));
  latency_block(out, "Latency", t.latency);
  if (p.rate > 0) latency_block(out, "Corrected latency", t.corrected_latency);
  out += "  Latency distribution\n";
  for (std::size_t i = 0; i < std::size(percentiles); ++i)
    out += fmt::format("  {:>8}%  {}\n", fmt::format("{:g}", percentiles[i]), human_duration(us(t.latency.percentile(percentiles[i]))));
  out += fmt::format("  {} requests in {:.2f}s, {} read", t.requests, p.elapsed_s, human_bytes(static_cast<double>(t.bytes)));
  if (t.warmup_requests) out += fmt::format(" ({} more during warm-up, not counted)", t.warmup_requests);
  out += "\n";
  std::string status;
  for (std::size_t code = 0; code < t.status.size(); ++code)
    if (t.status[code]) status += fmt::format(" {}: {}", code, t.status[code]);
  if (!status.empty()) out += "  Status:" + status + "\n";
  if (all_errors(t)) {
    std::string errors;
    for (std::size_t k = 0; k < t.errors.size(); ++k)
      if (t.errors[k]) errors += fmt::format(" {} {},", to_string(static_cast<ErrorKind>(k)), t.errors[k]);
    if (auto h = http_failures(t)) errors += fmt::format(" http_status {},", h);
    errors.pop_back();
    out += fmt::format("  Errors ({:.2f}%):{}\n", error_rate(t) * 100, errors);
    if (!t.first_error.empty()) out += "  First error: " + t.first_error + "\n";
  }
  if (r.options.stream) {
    latency_block(out, "First byte", t.first_byte);
    latency_block(out, "First event", t.first_event);
    latency_block(out, "Gap between events", t.event_gap);
    out += fmt::format("  {} events, {:.1f} events/s; {} streams complete, {} cut at the end\n", t.events,
                       p.elapsed_s > 0 ? static_cast<double>(t.events) / p.elapsed_s : 0.0, t.requests, t.streams_cut);
  }
  if (r.options.retry || r.options.breaker)
    out += fmt::format("  Policies: {} retries, {} refused by the retry budget, {} breaker openings\n", t.retries,
                       t.budget_exhausted, t.breaker_openings);
  if (t.requests == 0 && !(r.options.stream && t.streams_cut > 0)) out += "  No response was received: nothing to measure.\n";
  out += fmt::format("Requests/sec: {:>12.2f}\n", rps(p));
  out += fmt::format("Transfer/sec: {:>12}\n", human_bytes(p.elapsed_s > 0 ? static_cast<double>(t.bytes) / p.elapsed_s : 0.0));
  std::uint64_t served = t.requests + t.warmup_requests;
  out += fmt::format("Connections:  {} opened, {:.2f}% of requests on a reused connection\n", t.connections_opened,
                     served ? 100.0 * static_cast<double>(t.reused_requests) / static_cast<double>(served) : 0.0);
  if (t.tls_full + t.tls_resumed) {
    out += fmt::format("TLS:          {} full handshakes, {} resumed\n", t.tls_full, t.tls_resumed);
    if (t.tls_full_time.count()) latency_block(out, "Full handshake", t.tls_full_time);
    if (t.tls_resumed_time.count()) latency_block(out, "Resumed handshake", t.tls_resumed_time);
  }
  out += fmt::format("Generator:    {:.2f}s CPU ({:.2f}us per request{}), max RSS {}", p.cpu_s, cpu_us_per_outcome(t, p),
                     t.error_total() ? ", failed ones included" : "", human_bytes(static_cast<double>(p.max_rss_kib) * 1024));
  if (p.allocations_per_request >= 0) out += fmt::format(", {:.1f} allocations per request", p.allocations_per_request);
  out += "\n";
  return out;
}

std::string describe(const BenchOptions& o) {
  if (o.requests > 0) return fmt::format("{} requests", o.requests);
  return human_duration(static_cast<double>(o.duration.count()) / 1000.0) + " test";
}

}  // namespace

nlohmann::ordered_json to_json(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["url"] = r.options.url;
  bool client = r.options.engine == BenchOptions::Engine::client;
  j["engine"] = client ? "client" : "lean";
  j["backend"] = client ? "asio" : r.points.empty() ? "auto" : std::string(to_string(r.points.back().tally.backend));
  j["model"] = r.options.rate > 0 || r.sweep_key == "rate" ? "open" : "closed";
  j["mode"] = r.options.close_each ? "close" : "keep-alive";
  j["pipeline"] = r.options.pipeline;
  j["method"] = r.options.method;
  j["warmup_s"] = round3(static_cast<double>(r.options.warmup.count()) / 1e9);
  if (!r.points.empty()) j.update(point_json(r.points.back(), r.options));
  if (!r.sweep_key.empty()) {
    nlohmann::ordered_json sweep = nlohmann::ordered_json::array();
    for (const auto& p : r.points) sweep.push_back(point_json(p, r.options));
    j["sweep_key"] = r.sweep_key;
    j["sweep"] = sweep;
  }
  return j;
}

std::string text_summary(const BenchResult& r) {
  std::string out = fmt::format("Running {} @ {}\n", describe(r.options), r.options.url);
  if (r.sweep_key.empty()) {
    if (!r.points.empty()) out += point_text(r, r.points.back());
    return out;
  }
  for (const auto& p : r.points) {
    out += fmt::format("\n[{} = {}]\n", r.sweep_key, r.sweep_key == "c" ? fmt::format("{}", p.connections) : fmt::format("{:g}", p.rate));
    out += point_text(r, p);
  }
  out += fmt::format("\nSweep ({}):\n  {:>10} {:>12} {:>10} {:>10} {:>8}\n", r.sweep_key, r.sweep_key, "req/s", "p50", "p99", "errors");
  for (const auto& p : r.points) {
    out += fmt::format("  {:>10} {:>12.1f} {:>10} {:>10} {:>8}\n",
                       r.sweep_key == "c" ? fmt::format("{}", p.connections) : fmt::format("{:g}", p.rate), rps(p),
                       human_duration(us(p.tally.latency.percentile(50))), human_duration(us(p.tally.latency.percentile(99))),
                       all_errors(p.tally));
  }
  return out;
}

Result<Condition> parse_condition(std::string_view text) {
  Condition c;
  c.text = std::string(text);
  std::size_t op_at = text.find_first_of("<>");
  if (op_at == std::string_view::npos || op_at == 0)
    return fail(Error::config("--fail-if \"" + c.text + "\": expected METRIC<VALUE or METRIC>VALUE, e.g. p99>200ms"));
  c.metric = std::string(text.substr(0, op_at));
  std::size_t op_len = (op_at + 1 < text.size() && text[op_at + 1] == '=') ? 2 : 1;
  c.op = std::string(text.substr(op_at, op_len));
  std::string_view value = text.substr(op_at + op_len);
  auto trim = [](std::string& s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  };
  trim(c.metric);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  bool latency = c.metric == "max" || c.metric == "mean";
  for (auto* name : percentile_names) latency |= c.metric == name;
  if (latency) {
    auto d = parse_duration(value);
    if (!d) return fail(Error::config("--fail-if \"" + c.text + "\": " + d.error().message()));
    c.value = static_cast<double>(d->count()) / 1000.0;
    return c;
  }
  if (c.metric != "errors" && c.metric != "rps" && c.metric != "requests")
    return fail(Error::config("--fail-if \"" + c.text + "\": unknown metric \"" + c.metric +
                              "\" (p50 p75 p90 p99 p99.9 p99.99 max mean errors rps requests)"));
  if (!value.empty() && value.back() == '%') {
    if (c.metric != "errors") return fail(Error::config("--fail-if \"" + c.text + "\": only errors takes a percentage"));
    c.percent = true;
    value.remove_suffix(1);
  }
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || value.empty())
    return fail(Error::config("--fail-if \"" + c.text + "\": \"" + std::string(value) + "\" is not a number"));
  c.value = c.percent ? v / 100.0 : v;
  return c;
}

std::vector<std::string> failed_conditions(const std::vector<Condition>& conditions, const RunPoint& p) {
  std::vector<std::string> failed;
  const Tally& t = p.tally;
  for (const auto& c : conditions) {
    double actual = 0;
    std::string shown;
    if (c.metric == "errors") {
      actual = c.percent ? error_rate(t) : static_cast<double>(all_errors(t));
      shown = c.percent ? fmt::format("{:.3f}%", actual * 100) : fmt::format("{}", all_errors(t));
    } else if (c.metric == "rps") {
      actual = rps(p);
      shown = fmt::format("{:.1f}", actual);
    } else if (c.metric == "requests") {
      actual = static_cast<double>(t.requests);
      shown = fmt::format("{}", t.requests);
    } else if (c.metric == "max") {
      actual = us(t.latency.max());
    } else if (c.metric == "mean") {
      actual = t.latency.mean() / 1000.0;
    } else {
      for (std::size_t i = 0; i < std::size(percentiles); ++i)
        if (c.metric == percentile_names[i]) actual = us(t.latency.percentile(percentiles[i]));
    }
    if (shown.empty()) shown = human_duration(actual);
    bool holds = (c.op == ">" && actual > c.value) || (c.op == ">=" && actual >= c.value) ||
                 (c.op == "<" && actual < c.value) || (c.op == "<=" && actual <= c.value);
    if (holds) failed.push_back(fmt::format("{}: {} is {}", c.text, c.metric, shown));
  }
  return failed;
}

}  // namespace errand::load
