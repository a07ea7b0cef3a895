#include "load/bench.hpp"

#include <netinet/in.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>

#include <errand/http/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "http/h1/serialize.hpp"
#include "net/connect.hpp"
#include "load/tls_session.hpp"

namespace errand::load {
namespace {

// The net module's resolver (a deadline, IP literals without a lookup), run once before the
// load starts; the engine connects to the first address.
Result<Endpoint> resolve(const http::Url& url, std::chrono::nanoseconds timeout) {
  boost::asio::io_context context;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto future = boost::asio::co_spawn(context, net::resolve(url.host(), url.port(), deadline, nullptr),
                                      boost::asio::use_future);
  context.run();
  auto found = future.get();
  if (!found) return fail(found.error());
  if (found->empty()) return fail(ErrorKind::dns, "no address for " + url.host());
  const net::tcp::endpoint& first = found->front();
  Endpoint e;
  std::memcpy(&e.address, first.data(), first.size());
  e.length = static_cast<socklen_t>(first.size());
  e.text = net::to_string(first);
  return e;
}

Result<std::string> serialize(const BenchOptions& o) {
  auto request = build_request(o);
  if (!request) return fail(request.error());
  const std::string* body = std::get_if<std::string>(&request->body);
  std::optional<std::uint64_t> length;
  if (body) length = body->size();
  std::string bytes = http::h1::serialize_head(*request, length, {"errand-bench/0.1", ""});
  if (body) bytes += *body;
  return bytes;
}

Result<std::vector<double>> parse_list(std::string_view text, std::string_view key) {
  std::vector<double> values;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    double v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size() || v <= 0)
      return fail(Error::config("--sweep " + std::string(key) + ": \"" + std::string(item) + "\" is not a positive number"));
    // Connections, like -c, are a whole number of at least 1 (0.5 would become 0: a run
    // that never ends).
    if (key == "c" && (v != std::floor(v) || v > 1'000'000))
      return fail(Error::config("--sweep c: \"" + std::string(item) + "\" is not a whole number of connections"));
    values.push_back(v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (values.empty()) return fail(Error::config("--sweep " + std::string(key) + " needs at least one value"));
  return values;
}

// One run at `connections` and `rate` (total), the threads sharing both.
Result<RunPoint> run_point(const BenchOptions& o, const Plan& base, unsigned connections, double rate,
                           const Progress& progress) {
  unsigned threads = std::max(1u, std::min(o.threads, connections));
  std::vector<Plan> plans(threads, base);
  std::vector<std::atomic<std::uint64_t>> responses(threads), errors(threads);
  for (unsigned t = 0; t < threads; ++t) {
    plans[t].connections = connections / threads + (t < connections % threads ? 1 : 0);
    if (o.requests > 0) plans[t].max_requests = o.requests / threads + (t < o.requests % threads ? 1 : 0);
    plans[t].rate = rate * plans[t].connections / connections;
    plans[t].live_responses = &responses[t];
    plans[t].live_errors = &errors[t];
  }
  double cpu_before = process_cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  std::vector<Result<Tally>> results(threads, fail(Error::config("not run")));
  std::vector<std::thread> workers;
  std::atomic<unsigned> running{threads};
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      results[t] = run_thread(plans[t], start);
      running.fetch_sub(1);
    });
  }
  if (progress) {
    auto next = start + std::chrono::seconds(1);
    while (running.load() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      auto now = std::chrono::steady_clock::now();
      if (now < next) continue;
      next += std::chrono::seconds(1);
      std::uint64_t r = 0, e = 0;
      for (unsigned t = 0; t < threads; ++t) {
        r += responses[t].load(std::memory_order_relaxed);
        e += errors[t].load(std::memory_order_relaxed);
      }
      progress(std::chrono::duration<double>(now - start).count(), r, e);
    }
  }
  for (auto& w : workers) w.join();
  RunPoint point;
  point.connections = connections;
  point.threads = threads;
  point.rate = rate;
  for (auto& r : results) {
    if (!r) return fail(r.error());
    point.tally.merge(*r);
  }
  point.cpu_s = process_cpu_seconds() - cpu_before;
  point.max_rss_kib = process_max_rss_kib();
  point.elapsed_s = std::chrono::duration<double>(point.tally.measured).count();
  return point;
}

}  // namespace

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long process_max_rss_kib() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

Result<http::Request> build_request(const BenchOptions& o) {
  auto request = http::Request::make(o.method, o.url);
  if (!request) return fail(request.error());
  for (const auto& line : o.headers) {
    auto field = http::parse_header_line(line);  // as errand get -H
    if (!field) return fail(field.error());
    request->headers.add(std::move(field->name), std::move(field->value));
  }
  if (o.close_each) request->headers.set("Connection", "close");
  if (auto ok = http::h1::validate_request(*request); !ok) return fail(ok.error());
  if (!o.body_file.empty()) {
    std::ifstream in(o.body_file, std::ios::binary);
    if (!in) return fail(Error::config("cannot read --body-file " + o.body_file + ": " + std::strerror(errno)));
    request->body = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (!o.body.empty()) {
    request->body = o.body;
  }
  return request;
}

Result<void> ensure_descriptor_limit(std::uint64_t descriptors) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur >= descriptors) return {};
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < descriptors)
    return fail(Error::config("need " + std::to_string(descriptors) + " file descriptors for the connections, but the hard limit (ulimit -Hn) is " +
                              std::to_string(limit.rlim_max) + ": lower -c or raise the limit"));
  limit.rlim_cur = descriptors;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    return fail(Error::config("cannot raise the file-descriptor limit to " + std::to_string(descriptors) + ": " + std::strerror(errno)));
  return {};
}

Result<BenchResult> run_bench(const BenchOptions& o, const Progress& progress) {
  auto url = http::Url::parse(o.url);
  if (!url) return fail(url.error());
  bool lean = o.engine == BenchOptions::Engine::lean;
  if (!lean && (o.stream || o.pipeline > 1 || o.backend != Backend::automatic))
    return fail(Error::config("--engine client does not take --stream, --pipeline or --backend"));
  if (lean && (o.retry || o.breaker))
    return fail(Error::config("--retry and --breaker measure the client's policies: add --engine client"));
  if (o.connections == 0) return fail(Error::config("-c must be at least 1"));
  if (o.threads == 0) return fail(Error::config("-t must be at least 1"));
  if (o.pipeline == 0) return fail(Error::config("--pipeline must be at least 1"));
  if (o.pipeline > 1 && o.close_each) return fail(Error::config("--pipeline and --close exclude each other"));
  if (o.pipeline > 1 && o.stream) return fail(Error::config("--pipeline and --stream exclude each other"));
  if (o.pipeline > 1 && o.rate > 0) return fail(Error::config("--pipeline works with the closed model only (no --rate)"));
  if (o.requests == 0 && o.duration.count() <= 0) return fail(Error::config("give a duration (-d) or a number of requests (-n)"));
  if (o.rate < 0) return fail(Error::config("--rate must be positive"));
  // The loop's own timers (timeouts, the end of the run) tick every millisecond at the finest;
  // a longer gathering wait could never be used. A bare number would be seconds.
  if (o.gather.count() < 0 || o.gather >= std::chrono::milliseconds(1))
    return fail(Error::config("--gather must be under 1ms, with a unit (e.g. 50us; 0 turns it off)"));

  BenchResult result;
  result.options = o;
  std::vector<unsigned> connection_points{o.connections};
  std::vector<double> rate_points{o.rate};
  if (!o.sweep.empty()) {
    auto eq = o.sweep.find('=');
    std::string key = o.sweep.substr(0, eq);
    if (eq == std::string::npos || (key != "c" && key != "rate"))
      return fail(Error::config("--sweep expects c=N,N,... or rate=R,R,..., not \"" + o.sweep + "\""));
    auto values = parse_list(std::string_view(o.sweep).substr(eq + 1), key);
    if (!values) return fail(values.error());
    result.sweep_key = key;
    if (key == "c") {
      connection_points.clear();
      for (double v : *values) connection_points.push_back(static_cast<unsigned>(v));
    } else {
      rate_points = *values;
    }
  }
  unsigned most = *std::max_element(connection_points.begin(), connection_points.end());
  if (auto ok = ensure_descriptor_limit(most + 64); !ok) return fail(ok.error());

  if (!lean) {
    auto request = build_request(o);
    if (!request) return fail(request.error());
    for (unsigned c : connection_points) {
      for (double rate : rate_points) {
        auto point = run_client_point(o, *request, c, rate, progress);
        if (!point) return fail(point.error());
        result.points.push_back(std::move(*point));
      }
    }
    return result;
  }
  auto endpoint = resolve(*url, o.timeout);
  if (!endpoint) return fail(endpoint.error());
  auto request = serialize(o);
  if (!request) return fail(request.error());

  Plan base;
  base.endpoint = *endpoint;
  base.request = std::move(*request);
  base.head_request = o.method == "HEAD";
  base.close_each = o.close_each;
  base.stream = o.stream;
  base.pipeline = o.pipeline;
  base.warmup = o.warmup;
  base.duration = o.requests > 0 ? std::chrono::nanoseconds(0) : o.duration;
  base.timeout = o.timeout;
  base.backend = o.backend;
  base.gather = o.gather;
  if (url->is_https()) {
    auto tls = TlsClient::create(o.insecure, o.ca_file, o.tls_resume);
    if (!tls) return fail(tls.error());
    base.tls = std::move(*tls);
    base.host = url->host();
    base.origin = url->origin();
  }

  for (unsigned c : connection_points) {
    for (double rate : rate_points) {
      auto point = run_point(o, base, c, rate, progress);
      if (!point) return fail(point.error());
      result.points.push_back(std::move(*point));
    }
  }
  return result;
}

}  // namespace errand::load
