// `errand bench` as a library call: options in, one result per run (a sweep is several runs)
// out. Threads each run load/engine on their share of the connections and the request
// budget; their tallies are merged afterwards. Reports (text, JSON, verdicts) are in
// load/report.hpp. User documentation: docs/bench.md.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

#include "load/engine.hpp"

namespace errand::load {

struct BenchOptions {
  std::string url;
  unsigned connections = 10;
  unsigned threads = 2;
  std::chrono::nanoseconds duration{std::chrono::seconds(10)};  // ignored when requests > 0
  std::uint64_t requests = 0;                                  // -n: total measured requests
  std::chrono::nanoseconds warmup{0};
  std::chrono::nanoseconds timeout{std::chrono::seconds(10)};
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string body_file;
  double rate = 0;          // requests/s in total; 0: closed model
  bool close_each = false;  // --close
  bool stream = false;      // --stream
  enum class Engine { lean, client };
  Engine engine = Engine::lean;  // --engine: the lean loop, or the errand http::Client
  // https (both engines): verification is on unless insecure; sessions are resumed only with
  // tls_resume, so --close measures full handshakes by default.
  bool insecure = false;
  std::string ca_file;
  bool tls_resume = false;
  // --engine client: the policies under load (issue 4's layers), default settings.
  bool retry = false;
  bool breaker = false;
  unsigned pipeline = 1;
  Backend backend = Backend::automatic;
  std::chrono::nanoseconds gather{std::chrono::microseconds(50)};  // --gather (Plan::gather)
  // --sweep: "c=1,10,50" or "rate=100,200": the run is repeated for each value.
  std::string sweep;
};

struct RunPoint {
  unsigned connections = 0;
  unsigned threads = 0;
  double rate = 0;
  Tally tally;
  double elapsed_s = 0;   // measurement start to its last response
  double cpu_s = 0;       // user + system CPU of the process during the run
  long max_rss_kib = 0;   // peak resident set of the process so far
  double allocations_per_request = -1;  // --engine client: operator new calls per request
};

struct BenchResult {
  BenchOptions options;
  std::string sweep_key;  // "", "c" or "rate"
  std::vector<RunPoint> points;
};

// Called about once a second from the main thread while a run is going: elapsed seconds,
// responses so far (warm-up included), failures so far.
using Progress = std::function<void(double elapsed_s, std::uint64_t responses, std::uint64_t errors)>;

// User + system CPU seconds of this process so far; its peak resident set in KiB.
double process_cpu_seconds();
long process_max_rss_kib();

// The request the options describe (method, URL, headers, body, Connection: close).
Result<http::Request> build_request(const BenchOptions& options);

// --engine client: one run through errand's http::Client (client_engine.cpp).
Result<RunPoint> run_client_point(const BenchOptions& options, const http::Request& request, unsigned connections,
                                  double rate, const Progress& progress);

// Errors: config (bad URL, header, sweep, file; too many connections for the descriptor
// limit), dns. Failures of requests are in the result.
Result<BenchResult> run_bench(const BenchOptions& options, const Progress& progress = {});

// Raises RLIMIT_NOFILE's soft limit to fit `descriptors`; config error explaining the hard
// limit when it cannot.
Result<void> ensure_descriptor_limit(std::uint64_t descriptors);

}  // namespace errand::load
