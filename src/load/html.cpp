#include "load/html.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "load/report.hpp"

namespace errand::load {
namespace {

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // (x, y) in data units; x already log10 when log_x
};

struct Axis {
  std::string label;
  std::vector<std::pair<double, std::string>> ticks;  // empty: computed (linear, 5 ticks)
};

std::string format_number(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.0f}k", v / 1e3);
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2g}", v);
}

// A line chart in SVG. Axes start at the smallest x and at y = 0.
std::string line_chart(const std::string& id, const std::string& title, Axis x_axis, Axis y_axis,
                       const std::vector<Series>& series) {
  constexpr double width = 720, height = 320, left = 70, right = 20, top = 36, bottom = 48;
  double x_min = 1e300, x_max = -1e300, y_max = 0;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  for (const auto& [x, label] : x_axis.ticks) {
    x_min = std::min(x_min, x);
    x_max = std::max(x_max, x);
  }
  if (x_min > x_max) x_min = 0, x_max = 1;
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max <= 0) y_max = 1;
  y_max *= 1.1;
  auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * (width - left - right); };
  auto py = [&](double y) { return height - bottom - y / y_max * (height - top - bottom); };

  std::string svg = fmt::format(
      "<svg class=\"chart\" id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\">\n"
      "<text x=\"{}\" y=\"22\" class=\"title\">{}</text>\n",
      id, width, height, width, height, left, escape(title));
  // Grid and y ticks.
  for (int i = 0; i <= 5; ++i) {
    double y = y_max / 1.1 * i / 5;
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>\n",
                       left, py(y), width - right, py(y), left - 6, py(y) + 4, format_number(y));
  }
  if (x_axis.ticks.empty()) {
    for (int i = 0; i <= 5; ++i) {
      double x = x_min + (x_max - x_min) * i / 5;
      x_axis.ticks.emplace_back(x, format_number(x));
    }
  }
  for (const auto& [x, label] : x_axis.ticks) {
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" class=\"grid\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3:.1f}\" class=\"tick\" text-anchor=\"middle\">{4}</text>\n",
                       px(x), py(0), top, py(0) + 16, escape(label));
  }
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" class=\"axis\"/>"
                     "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1:.1f}\" class=\"axis\"/>\n",
                     left, py(0), width - right, top);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"label\" text-anchor=\"middle\">{}</text>\n",
                     (left + width - right) / 2, height - 8, escape(x_axis.label));
  svg += fmt::format("<text x=\"14\" y=\"{:.1f}\" class=\"label\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1f})\">{}</text>\n",
                     (top + height - bottom) / 2, (top + height - bottom) / 2, escape(y_axis.label));
  double legend_x = width - right - 10;
  for (const auto& s : series) {
    std::string points;
    for (auto [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline class=\"data\" data-series=\"{}\" data-points=\"{}\" fill=\"none\" stroke=\"{}\" "
                       "stroke-width=\"2\" points=\"{}\"/>\n",
                       escape(s.name), s.points.size(), s.color, points);
    if (s.points.size() == 1)
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(s.points[0].first),
                         py(s.points[0].second), s.color);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"legend\" text-anchor=\"end\" fill=\"{}\">{}</text>\n", legend_x,
                       top + 14, s.color, escape(s.name));
    legend_x -= 14.0 + 7.5 * static_cast<double>(s.name.size());
  }
  svg += "</svg>\n";
  return svg;
}

// x = log10(1 / (1 - q)): 0 at the median's left edge, 1 at p90, 2 at p99, ...
Series percentile_series(const std::string& name, const std::string& color, const Histogram& h) {
  Series s{name, color, {}};
  auto points = h.cumulative_points();
  double last_x = std::log10(static_cast<double>(std::max<std::uint64_t>(h.count(), 10)));
  for (const auto& p : points) {
    double x = p.cumulative >= 1.0 ? last_x : std::min(last_x, std::log10(1.0 / (1.0 - p.cumulative)));
    s.points.emplace_back(x, static_cast<double>(p.value_ns) / 1e6);
  }
  return s;
}

Axis nines_axis(const Histogram& h) {
  Axis a{"percentile", {}};
  const char* names[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
  int most = static_cast<int>(std::ceil(std::log10(static_cast<double>(std::max<std::uint64_t>(h.count(), 10)))));
  for (int i = 0; i <= std::min(most, 6); ++i) a.ticks.emplace_back(i, names[i]);
  return a;
}

std::string summary_table(const nlohmann::ordered_json& j) {
  auto row = [](const std::string& k, const std::string& v) {
    return "<tr><th>" + escape(k) + "</th><td>" + escape(v) + "</td></tr>\n";
  };
  std::string t = "<table>\n";
  t += row("URL", j.value("url", ""));
  t += row("model, mode", j.value("model", "") + ", " + j.value("mode", "") + " (" + j.value("backend", "") + ")");
  t += row("connections, threads", fmt::format("{}, {}", j["connections"]["configured"].get<unsigned>(), j["threads"].get<unsigned>()));
  t += row("requests", fmt::format("{} in {:.2f} s ({} during warm-up)", j["requests"].get<std::uint64_t>(),
                                   j["duration_s"].get<double>(), j["warmup_requests"].get<std::uint64_t>()));
  t += row("requests/s", fmt::format("{:.1f}", j["rps"].get<double>()));
  const auto& l = j["latency_us"];
  t += row("latency p50 / p90 / p99 / p99.9 / max",
           fmt::format("{:.3f} / {:.3f} / {:.3f} / {:.3f} / {:.3f} ms", l["p50"].get<double>() / 1000, l["p90"].get<double>() / 1000,
                       l["p99"].get<double>() / 1000, l["p99.9"].get<double>() / 1000, l["max"].get<double>() / 1000));
  std::string status;
  for (auto& [code, n] : j["status"].items()) status += fmt::format("{}: {}  ", code, n.get<std::uint64_t>());
  t += row("status", status.empty() ? "none" : status);
  t += row("errors", fmt::format("{} ({:.3f}%)", j["errors_total"].get<std::uint64_t>(), j["error_rate"].get<double>() * 100));
  if (j.contains("first_error")) t += row("first error", j["first_error"].get<std::string>());
  t += row("generator", fmt::format("{:.2f} s CPU ({:.2f} us per request), max RSS {} KiB", j["cpu_s"].get<double>(),
                                    j["cpu_us_per_request"].get<double>(), j["max_rss_kib"].get<long>()));
  t += "</table>\n";
  return t;
}

}  // namespace

std::string html_report(const BenchResult& result) {
  auto j = to_json(result);
  std::string body;
  body += "<h1>errand bench</h1>\n" + summary_table(j);
  if (!result.points.empty()) {
    const RunPoint& last = result.points.back();
    std::vector<Series> latency{percentile_series("latency", "#1f77b4", last.tally.latency)};
    if (last.rate > 0) latency.push_back(percentile_series("corrected for coordinated omission", "#d62728", last.tally.corrected_latency));
    body += line_chart("latency", "Latency by percentile" + std::string(result.sweep_key.empty() ? "" : " (last sweep point)"),
                       nines_axis(last.tally.latency), Axis{"milliseconds", {}}, latency);
    Series per_second{"requests/s", "#2ca02c", {}};
    // The last second is usually partial: its count is scaled to a rate, and a sliver under
    // a quarter second (responses to requests sent just before the end) is left out.
    for (std::size_t i = 0; i < last.tally.per_second.size(); ++i) {
      double length = std::min(1.0, last.elapsed_s - static_cast<double>(i));
      if (length < 0.25) break;
      per_second.points.emplace_back(static_cast<double>(i + 1), static_cast<double>(last.tally.per_second[i]) / length);
    }
    body += line_chart("rps", "Requests per second over the run", Axis{"second", {}}, Axis{"requests/s", {}}, {per_second});
  }
  if (!result.sweep_key.empty()) {
    bool by_rate = result.sweep_key == "rate";
    Series rps{"requests/s", "#2ca02c", {}}, p99{"p99 (ms)", "#d62728", {}};
    const auto& sweep = j["sweep"];
    for (std::size_t i = 0; i < result.points.size(); ++i) {
      double x = by_rate ? result.points[i].rate : static_cast<double>(result.points[i].connections);
      rps.points.emplace_back(x, sweep[i]["rps"].get<double>());
      p99.points.emplace_back(x, sweep[i]["latency_us"]["p99"].get<double>() / 1000);
    }
    std::string x_label = by_rate ? "offered rate (requests/s)" : "connections";
    body += line_chart("sweep-rps", "Throughput at each " + std::string(by_rate ? "rate" : "concurrency"), Axis{x_label, {}},
                       Axis{"requests/s", {}}, {rps});
    body += line_chart("sweep-p99", "p99 latency at each " + std::string(by_rate ? "rate" : "concurrency"), Axis{x_label, {}},
                       Axis{"milliseconds", {}}, {p99});
  }
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>errand bench: " + escape(result.options.url) +
         "</title>\n<style>\n"
         "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}\n"
         "table{border-collapse:collapse;margin-bottom:16px}th,td{text-align:left;padding:3px 12px 3px 0;font-size:13px}\n"
         "th{color:#555;font-weight:normal}svg.chart{display:block;margin:12px 0;background:#fff}\n"
         ".title{font-size:14px;font-weight:bold}.tick{font-size:11px;fill:#555}.label{font-size:12px;fill:#333}\n"
         ".legend{font-size:12px}.grid{stroke:#eee}.axis{stroke:#888}\n"
         "</style></head>\n<body>\n" +
         body +
         // For tests and tools: what each chart drew, measured by the browser's layout.
         "<script>\naddEventListener('load',()=>{const r=[];for(const s of document.querySelectorAll('svg.chart')){"
         "for(const p of s.querySelectorAll('polyline.data')){const b=p.getBBox();"
         "r.push(s.id+':'+p.dataset.series+':'+p.points.numberOfItems+':'+Math.round(b.width)+'x'+Math.round(b.height));}}"
         "document.body.dataset.rendered=r.join(';');});\n</script>\n</body></html>\n";
}

}  // namespace errand::load
