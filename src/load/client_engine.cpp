// `errand bench --engine client`: the same load through errand's own http::Client — its pool,
// its coroutines, its parsing and decoding — so a user (and we) can see what the library costs
// per request: CPU, allocations (counted by load/allocation_counter), memory. One coroutine per
// connection, spread over the runtime's workers, each sending its next request when the last
// one is answered (or when it is due, with --rate). Phases and counting follow the lean engine.
#include <atomic>
#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <errand/http/client.hpp>
#include <errand/http/client_builder.hpp>
#include <errand/net/runtime.hpp>

#include <errand/resilience/breaker.hpp>
#include <errand/resilience/retry.hpp>

#include "load/allocation_counter.hpp"
#include "load/bench.hpp"

namespace errand::load {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Shared {
  http::Client* client = nullptr;
  const http::Request* request = nullptr;
  Clock::time_point measure_start, measure_end;
  std::uint64_t max_requests = 0;
  std::atomic<std::uint64_t> issued{0};
  Clock::duration interval{};  // open model: between two requests of one connection
  std::string origin_text;
};

std::uint64_t ns(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

asio::awaitable<void> connection_loop(Shared& s, Tally& tally, std::atomic<std::uint64_t>& live_responses,
                                      std::atomic<std::uint64_t>& live_errors, Clock::time_point first_due) {
  Clock::time_point due = first_due;
  bool open_model = s.interval.count() > 0;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    Clock::time_point now = Clock::now();
    Clock::time_point phase_time = open_model ? due : now;
    if (phase_time >= s.measure_end) break;
    bool measured = phase_time >= s.measure_start;
    if (measured && s.max_requests > 0 && s.issued.fetch_add(1, std::memory_order_relaxed) >= s.max_requests) break;
    if (open_model && due > now) {
      timer.expires_at(due);
      boost::system::error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    Clock::time_point sent = Clock::now();
    auto response = co_await s.client->send(*s.request);
    Clock::time_point done = Clock::now();
    if (open_model) due += s.interval;
    if (!measured) {
      ++tally.warmup_requests;
      if (response && response->reused) ++tally.reused_requests;
      continue;
    }
    if (!response) {
      const Error& e = response.error();
      ++tally.errors[static_cast<std::size_t>(e.kind())];
      if (e.kind() == ErrorKind::timeout) ++tally.timeouts_by_phase[static_cast<std::size_t>(e.phase())];
      if (tally.first_error.empty()) tally.first_error = e.describe() + " (" + s.origin_text + ")";
      live_errors.store(tally.error_total(), std::memory_order_relaxed);
      continue;
    }
    ++tally.requests;
    // Per response, as the lean engine counts: the pool's count is per attempt, and with
    // retries it exceeded the responses (a reuse rate of 205%).
    if (response->reused) ++tally.reused_requests;
    live_responses.store(tally.requests + tally.warmup_requests, std::memory_order_relaxed);
    tally.latency.record(ns(done - sent));
    if (open_model) tally.corrected_latency.record(ns(done - std::min(sent, due - s.interval)));
    if (response->status >= 0 && response->status < static_cast<int>(tally.status.size()))
      ++tally.status[static_cast<std::size_t>(response->status)];
    tally.bytes += response->body.size();
    if (!response->reused) tally.connect_time.record(ns(response->timings.connect));
    auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(done - s.measure_start);
    tally.count_response_at(since);
    tally.count_bytes_at(since, response->body.size());
  }
}

}  // namespace

Result<RunPoint> run_client_point(const BenchOptions& o, const http::Request& request, unsigned connections,
                                  double rate, const Progress& progress) {
  unsigned threads = std::max(1u, std::min(o.threads, connections));
  net::Runtime runtime({.threads = threads});
  http::ClientOptions options;
  options.runtime = &runtime;
  options.pool.max_per_origin = connections;
  options.timeouts.total = o.timeout;
  options.user_agent = "errand-bench/0.1";
  options.tls.insecure = o.insecure;
  options.tls.ca_file = o.ca_file;
  options.tls.session_cache = o.tls_resume;
  http::Client::Builder builder(options);
  std::atomic<std::uint64_t> openings{0};
  if (o.breaker) {
    resilience::BreakerOptions b;
    b.on_transition = [&openings](const std::string&, resilience::BreakerState, resilience::BreakerState to) {
      if (to == resilience::BreakerState::open) openings.fetch_add(1, std::memory_order_relaxed);
    };
    builder.breaker(b);
  }
  if (o.retry) builder.retry();
  const auto& retry_counters = builder.retry_counters();
  http::Client client = builder.build();

  Shared shared;
  shared.client = &client;
  shared.request = &request;
  shared.max_requests = o.requests;
  shared.origin_text = request.url.origin();
  if (rate > 0) shared.interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(connections / rate));
  std::vector<Tally> tallies(threads);
  std::vector<std::atomic<std::uint64_t>> responses(threads), errors(threads);

  double cpu_before = process_cpu_seconds();
  std::uint64_t allocations_before = allocations();
  count_allocations(true);
  auto start = Clock::now();
  shared.measure_start = start + o.warmup;
  shared.measure_end = o.requests > 0 ? Clock::time_point::max() : shared.measure_start + o.duration;
  std::atomic<unsigned> running{connections};
  std::promise<void> all_done;
  for (unsigned k = 0; k < connections; ++k) {
    unsigned worker = k % threads;
    Clock::time_point first_due = start;
    if (rate > 0) first_due += shared.interval * k / connections;  // staggered over one interval
    asio::co_spawn(runtime.context(worker),
                   connection_loop(shared, tallies[worker], responses[worker], errors[worker], first_due),
                   [&](std::exception_ptr) {
                     if (running.fetch_sub(1) == 1) all_done.set_value();
                   });
  }
  auto finished = all_done.get_future();
  auto next = start + std::chrono::seconds(1);
  while (finished.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (!progress || Clock::now() < next) continue;
    next += std::chrono::seconds(1);
    std::uint64_t r = 0, e = 0;
    for (unsigned t = 0; t < threads; ++t) {
      r += responses[t].load(std::memory_order_relaxed);
      e += errors[t].load(std::memory_order_relaxed);
    }
    progress(std::chrono::duration<double>(Clock::now() - start).count(), r, e);
  }
  count_allocations(false);

  RunPoint point;
  point.connections = connections;
  point.threads = threads;
  point.rate = rate;
  for (auto& t : tallies) point.tally.merge(t);
  http::PoolStats stats = client.stats();
  point.tally.connections_opened = stats.opened;
  point.tally.tls_full = stats.tls_full_handshakes;
  point.tally.tls_resumed = stats.tls_resumed_handshakes;
  point.tally.retries = retry_counters->retries.load();
  point.tally.budget_exhausted = retry_counters->budget_exhausted.load();
  point.tally.breaker_openings = openings.load();
  point.cpu_s = process_cpu_seconds() - cpu_before;
  point.max_rss_kib = process_max_rss_kib();
  point.elapsed_s = std::chrono::duration<double>(point.tally.measured).count();
  if (std::uint64_t finished = point.tally.finished(); finished > 0)
    point.allocations_per_request = static_cast<double>(allocations() - allocations_before) / static_cast<double>(finished);
  return point;
}

}  // namespace errand::load
