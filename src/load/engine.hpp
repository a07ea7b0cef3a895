// The lean load engine: one event loop per thread, each with its own connections, sending a
// request serialized once and framing responses without allocating (load/framer). It does not
// go through http::Client: a load generator must spend less per request than the server it
// measures, and the Client's pool, coroutines and header maps are what `--engine client`
// measures instead.
//
// Two I/O backends with the same connection logic: io_uring (liburing; sends, receives,
// connects and closes of all connections go to the kernel in one system call per loop turn)
// and epoll (non-blocking sockets), used where io_uring is unavailable (old kernels, seccomp
// policies that forbid it) or asked for.
//
// Time: requests belong to the phase in which they were sent (or, in the open model, were
// due): warm-up, then measurement. When the measurement ends no new request starts; those in
// flight are awaited (up to the timeout) and counted, so the count matches what a server logs.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <errand/core/error.hpp>

#include "load/histogram.hpp"

namespace errand::load {
class TlsClient;
}

namespace errand::load {

enum class Backend { automatic, io_uring, epoll };
std::string_view to_string(Backend backend) noexcept;

struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1:8080"
};

struct Plan {
  Endpoint endpoint;
  std::shared_ptr<TlsClient> tls;  // https: set; host for SNI and name checks, origin for sessions
  std::string host;
  std::string origin;
  std::string request;          // one request, serialized (head and body)
  bool head_request = false;    // the responses have no body
  bool close_each = false;      // --close: a new connection per request
  unsigned pipeline = 1;        // requests written back to back on a connection
  bool stream = false;          // --stream: long responses; events, gaps; cut at the end
  unsigned connections = 1;     // for this thread
  std::chrono::nanoseconds warmup{0};
  std::chrono::nanoseconds duration{0};  // 0: until max_requests are done
  std::uint64_t max_requests = 0;        // for this thread; 0: no limit
  double rate = 0;                       // requests/s for this thread; 0: closed model
  std::chrono::nanoseconds timeout{std::chrono::seconds(10)};
  std::size_t header_limit = 1 << 20;
  Backend backend = Backend::automatic;
  // io_uring (kernel 6.1+), closed model, keep-alive, not --stream, enough connections, none
  // of them opening: a loop turn may wait this long, under 1 ms, for several responses before
  // it wakes (0: it wakes for the first). Fewer wake-ups and larger batches of sends cost less
  // CPU per request; a latency sample can include at most this much of the loop's own wait.
  // Engine::plan_gathering has the rule.
  std::chrono::nanoseconds gather{std::chrono::microseconds(50)};
  // For live progress: this thread's responses and failures so far, stored (not added) by the
  // engine so the hot path takes no lock and no read-modify-write. Optional.
  std::atomic<std::uint64_t>* live_responses = nullptr;
  std::atomic<std::uint64_t>* live_errors = nullptr;
};

// Room for every ErrorKind (the enum grows with the resilience layer).
constexpr std::size_t error_kind_slots = 16;

// What one thread saw; merged across threads by merge().
struct Tally {
  Histogram latency;            // from the actual send (wrk's figure)
  Histogram corrected_latency;  // open model: from the time the request was due
  Histogram connect_time;
  std::uint64_t requests = 0;        // responses received in the measurement (any status)
  std::uint64_t warmup_requests = 0;  // responses received to warm-up requests
  std::uint64_t bytes = 0;           // response bytes on the wire (head + body)
  std::array<std::uint64_t, 1000> status{};                // responses by status code
  std::array<std::uint64_t, error_kind_slots> errors{};      // failed requests by kind
  std::array<std::uint64_t, 8> timeouts_by_phase{};          // index Phase
  std::string first_error;                                   // the first error's text, for humans
  // --stream: an event is a server-sent event (text/event-stream), else a chunk.
  Histogram first_byte;   // request sent to the first byte of the response
  Histogram first_event;  // request sent to the end of the response's first event
  Histogram event_gap;    // between consecutive events of one response
  std::uint64_t events = 0;
  std::uint64_t streams_cut = 0;  // still streaming when the measurement ended (not errors)
  // --engine client with --retry / --breaker: what the policies did (whole run).
  std::uint64_t retries = 0;
  std::uint64_t budget_exhausted = 0;
  std::uint64_t breaker_openings = 0;
  std::uint64_t tls_full = 0;     // TLS handshakes of measured connections
  std::uint64_t tls_resumed = 0;
  Histogram tls_full_time;       // lean engine: handshake durations
  Histogram tls_resumed_time;
  std::uint64_t connections_opened = 0;
  std::uint64_t reused_requests = 0;  // responses on a connection that had served one before
  std::vector<std::uint64_t> per_second;  // measured responses completed in each second
  std::vector<std::uint64_t> per_second_bytes;  // bytes received in each second of the measurement
  std::chrono::nanoseconds measured{0};   // measurement start to the last measured response
  Backend backend = Backend::automatic;
  unsigned gather_responses = 1;  // what an io_uring wake-up waited for (Plan::gather); 1: any
                                  // (merged: the largest of the threads)
  std::uint64_t gather_waits = 0;        // waits that asked for several completions
  std::uint64_t gather_empty_waits = 0;  // of those, how many ended with none (a slow server)

  // A measured response completed, or response bytes arrived, `since` the measurement began:
  // the per-second series and the measured span.
  void count_response_at(std::chrono::nanoseconds since);
  void count_bytes_at(std::chrono::nanoseconds since, std::uint64_t bytes);
  void merge(const Tally& other);
  std::uint64_t error_total() const noexcept;
  // Requests the generator finished: responses (warm-up included) and failures. What its CPU
  // and allocations are counted per.
  std::uint64_t finished() const noexcept { return requests + warmup_requests + error_total(); }
};

// Runs one thread's share of the plan on the calling thread. Fails only when the run could not
// start (no io_uring and no epoll, the file-descriptor limit); failures of requests are counted.
Result<Tally> run_thread(const Plan& plan, std::chrono::steady_clock::time_point start);

}  // namespace errand::load
