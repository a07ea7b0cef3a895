// `errand bench URL`: the load generator (src/load). Options are wrk's where wrk has one
// (-c -t -d -H --timeout), hey's and h2load's otherwise (-n, -X, --body). Prints the wrk-like
// summary, or one JSON object (--json, schema in docs/bench.md); --fail-if conditions turn the
// run into a verdict (exit 1). Exit 2 for a bad command line, the error kind's code when the run
// could not start at all (docs/cli.md).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <errand/core/duration.hpp>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "load/bench.hpp"
#include "load/html.hpp"
#include "load/report.hpp"

namespace errand::cli {
namespace {

struct BenchCommandOptions {
  load::BenchOptions bench;
  std::string duration = "10s";
  std::string warmup = "0";
  std::string timeout = "10s";
  std::string backend = "auto";
  std::string gather = "50us";
  std::string engine = "lean";
  std::vector<std::string> fail_if;
  std::string html;
  bool json = false;
  bool quiet = false;
};

int report_config(const Error& e) {
  std::fprintf(stderr, "errand bench: %s\n", e.message().c_str());
  return exit_code_for(e.kind());
}

int execute(BenchCommandOptions& o) {
  auto& b = o.bench;
  if (b.url.find("://") == std::string::npos) b.url = "http://" + b.url;
  for (auto [text, target, name] : {std::tuple{&o.duration, &b.duration, "-d"}, std::tuple{&o.warmup, &b.warmup, "--warmup"},
                                    std::tuple{&o.timeout, &b.timeout, "--timeout"}, std::tuple{&o.gather, &b.gather, "--gather"}}) {
    auto d = parse_duration(*text);
    if (!d) return report_config(Error::config(std::string(name) + ": " + d.error().message()));
    *target = *d;
  }
  if (o.backend == "auto") b.backend = load::Backend::automatic;
  else if (o.backend == "io_uring") b.backend = load::Backend::io_uring;
  else if (o.backend == "epoll") b.backend = load::Backend::epoll;
  else return report_config(Error::config("--backend: auto, io_uring or epoll, not \"" + o.backend + "\""));
  if (o.engine == "lean") b.engine = load::BenchOptions::Engine::lean;
  else if (o.engine == "client") b.engine = load::BenchOptions::Engine::client;
  else return report_config(Error::config("--engine: lean or client, not \"" + o.engine + "\""));
  std::vector<load::Condition> conditions;
  for (const auto& text : o.fail_if) {
    auto c = load::parse_condition(text);
    if (!c) return report_config(c.error());
    conditions.push_back(*c);
  }

  load::Progress progress;
  if (!o.quiet && ::isatty(STDERR_FILENO)) {
    progress = [last = std::uint64_t{0}, last_t = 0.0](double t, std::uint64_t responses, std::uint64_t errors) mutable {
      double rate = t > last_t ? static_cast<double>(responses - last) / (t - last_t) : 0.0;
      std::fprintf(stderr, "\r  %5.1fs  %10llu responses  %10.0f req/s  %6llu errors ", t,
                   static_cast<unsigned long long>(responses), rate, static_cast<unsigned long long>(errors));
      std::fflush(stderr);
      last = responses;
      last_t = t;
    };
  }
  auto result = load::run_bench(b, progress);
  if (progress) std::fprintf(stderr, "\r%70s\r", "");
  if (!result) return report_config(result.error());

  if (o.json) {
    std::cout << load::to_json(*result).dump(2) << "\n";
  } else {
    std::cout << load::text_summary(*result);
  }
  std::cout.flush();
  if (!o.html.empty()) {
    std::ofstream out(o.html, std::ios::binary | std::ios::trunc);
    out << load::html_report(*result);
    out.close();
    if (!out) {
      std::fprintf(stderr, "errand bench: cannot write --html %s: %s\n", o.html.c_str(), std::strerror(errno));
      return exit_codes::write_failed;
    }
  }
  if (conditions.empty() || result->points.empty()) return exit_codes::ok;
  // Every point of a sweep must pass.
  std::vector<std::string> failed;
  for (const auto& point : result->points) {
    for (auto& line : load::failed_conditions(conditions, point)) {
      if (!result->sweep_key.empty())
        line = fmt::format("[{}={}] {}", result->sweep_key,
                           result->sweep_key == "c" ? fmt::format("{}", point.connections) : fmt::format("{:g}", point.rate), line);
      failed.push_back(line);
    }
  }
  if (failed.empty()) return exit_codes::ok;
  std::fprintf(stderr, "errand bench: failed conditions:\n");
  for (const auto& line : failed) std::fprintf(stderr, "  %s\n", line.c_str());
  return exit_codes::failure;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchCommandOptions>();
  auto* cmd = app.add_subcommand("bench", "load-test an HTTP server and report latency, throughput and errors");
  auto& b = o->bench;
  cmd->add_option("url", b.url, "URL (http:// is assumed when no scheme is given)")->required();
  cmd->add_option("-c,--connections", b.connections, "connections kept open (in total)")->capture_default_str();
  cmd->add_option("-t,--threads", b.threads, "threads, each with its share of the connections")->capture_default_str();
  cmd->add_option("-d,--duration", o->duration, "how long to measure, e.g. 10s, 1m")->capture_default_str();
  cmd->add_option("-n,--requests", b.requests, "measure this many requests instead of a duration");
  cmd->add_option("--warmup", o->warmup, "load before measuring, not counted (e.g. 2s)");
  cmd->add_option("-X,--method", b.method, "HTTP method")->capture_default_str();
  cmd->add_option("-H,--header", b.headers, "request header 'Name: value' (repeatable)")
      ->allow_extra_args(false);  // one value per -H, so that the URL after it stays the URL
  cmd->add_option("--body", b.body, "request body");
  cmd->add_option("--body-file", b.body_file, "request body read from FILE (once, before the run)");
  cmd->add_option("--timeout", o->timeout, "a request without a complete response after this fails")->capture_default_str();
  cmd->add_option("--rate", b.rate, "open model: requests/s in total, latency corrected for coordinated omission");
  cmd->add_flag("--close", b.close_each, "a new connection for every request");
  cmd->add_flag("--stream", b.stream, "long (chunked or SSE) responses: time to first byte and event, events/s, gaps");
  cmd->add_option("--pipeline", b.pipeline, "HTTP/1.1 requests written back to back per connection")->capture_default_str();
  cmd->add_option("--sweep", b.sweep, "repeat at each value: c=1,10,50 or rate=100,500");
  cmd->add_option("--engine", o->engine, "lean (the tuned loop) or client (errand's http::Client: pool, TLS, decoding)")
      ->capture_default_str();
  cmd->add_flag("-k,--insecure", b.insecure, "https: do not verify the server's certificate");
  cmd->add_option("--cacert", b.ca_file, "https: extra CA certificates (PEM) to trust");
  cmd->add_flag("--retry", b.retry, "client engine: retry by error kind (errand get --retry's tiers and budget)");
  cmd->add_flag("--breaker", b.breaker, "client engine: a circuit breaker per origin (default settings)");
  cmd->add_flag("--tls-resume", b.tls_resume, "https: resume TLS sessions on new connections");
  cmd->add_option("--backend", o->backend, "I/O: auto (io_uring, else epoll), io_uring, epoll")->capture_default_str();
  cmd->add_option("--gather", o->gather,
                  "io_uring, closed model: a wake-up may wait this long for more responses (0: none)")
      ->capture_default_str();
  cmd->add_option("--fail-if", o->fail_if, "exit 1 when a condition holds: 'p99>200ms', 'errors>0.1%', 'rps<5000'")
      ->allow_extra_args(false);
  cmd->add_flag("--json", o->json, "print one JSON object (docs/bench.md)");
  cmd->add_option("--html", o->html, "also write a self-contained HTML report with charts to FILE");
  cmd->add_flag("-q,--quiet", o->quiet, "no live progress");
  cmd->callback([o, &exit_code] { exit_code = execute(*o); });
}

}  // namespace errand::cli
