// errand/resilience/retry.hpp — retries tiered by what failed, with backoff, jitter and a
// retry budget, as a Client middleware layer.
//
//   errand::http::ClientOptions options;
//   options.middleware.push_back(errand::resilience::retry(errand::resilience::RetryPolicy{}));
//   // GET /flaky → 503, 503, 200: one Response, status 200, response.attempts.size() == 3
//
// Default tiers (each: attempts in all, first backoff, growth, ±jitter):
//   transient network (connect refused, reset, io)   3 attempts, 200 ms, ×2, ±15%
//   dns                                               2 attempts, 1 s,    ×2, ±15%
//   tls handshake                                     2 attempts, 3 s, no jitter; the origin's
//                                                     cached TLS session is dropped first
//   timeout in the connect or first_byte phase        3 attempts, 200 ms, ×2, ±15%
//   HTTP 429, 502, 503, 504                           3 attempts, 200 ms, ×2, ±15%, or the
//                                                     server's Retry-After (capped)
// Only idempotent methods (GET HEAD OPTIONS PUT DELETE TRACE) or requests with an
// Idempotency-Key header are retried, unless retry_non_idempotent. Cancellation is never
// retried. With a total deadline on the request (Request::timeouts.total) every attempt gets
// what is left of it, and no backoff sleeps past it. `attempt_timeout` gives each attempt its
// own limit inside that (Envoy's per_try_timeout): an attempt cut off by it is retried as a
// timeout in any phase, with the timeout tier. A retry budget per layer (Envoy's:
// retries at most `ratio` of the requests of the last `window`, but at least
// `min_per_second`) keeps retries from multiplying an outage. Each Response (or the final
// Error) lists the attempts: outcome, the delay before, the duration.
//
// Per request: a RetryPolicy in the request's extensions replaces the layer's for that request
// (a job step with its own retries on a shared Client); the budget stays the layer's:
//   request.extensions.insert(std::make_shared<errand::resilience::RetryPolicy>(step_policy));
//
// Time: decide() and RetryBudget take the time and the random draw from the caller, so the
// unit tests drive them exactly (ManualClock); the middleware uses the steady clock and
// Asio timers. Thread-safe: one layer serves all requests of a Client.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <errand/core/clock.hpp>
#include <errand/core/error.hpp>
#include <errand/http/message.hpp>
#include <errand/http/middleware.hpp>

namespace errand::resilience {

using Duration = std::chrono::nanoseconds;

struct Backoff {
  Duration base = std::chrono::milliseconds(200);
  double multiplier = 2.0;
  double jitter = 0.15;  // the delay is spread uniformly over ±jitter of itself
  Duration cap = std::chrono::seconds(30);
  // The delay before retry number `retry` (1: the first retry); `unit` is a draw in [0, 1).
  Duration delay(int retry, double unit) const;
};

struct Tier {
  int max_attempts = 1;  // in all, the first one included
  Backoff backoff;
};

struct RetryPolicy {
  Tier network{3, {std::chrono::milliseconds(200), 2.0, 0.15}};
  Tier dns{2, {std::chrono::seconds(1), 2.0, 0.15}};
  Tier tls{2, {std::chrono::seconds(3), 1.0, 0.0}};
  Tier timeout{3, {std::chrono::milliseconds(200), 2.0, 0.15}};
  std::vector<Phase> timeout_phases{Phase::connect, Phase::first_byte};
  Tier status{3, {std::chrono::milliseconds(200), 2.0, 0.15}};
  std::vector<int> statuses{429, 502, 503, 504};
  Duration max_retry_after = std::chrono::seconds(30);  // a longer Retry-After is waited for this long at most
  bool retry_non_idempotent = false;
  int max_attempts = 0;              // > 0: caps the attempts of every tier
  std::vector<ErrorKind> only_kinds;  // non-empty: retry only these (http_status for statuses)
  // Each attempt's own time limit, inside the request's deadline: a hung attempt is cut off
  // and retried (timeout tier, whatever its phase) rather than waiting out the whole deadline.
  std::optional<Duration> attempt_timeout;
  // Hedging: when an attempt of an idempotent request has not answered within `hedge_after`,
  // a second copy goes out beside it and the first response wins (the other is cancelled;
  // if one fails, the other is awaited). A hedge takes a retry from the budget; without one
  // left, the attempt just runs on.
  std::optional<Duration> hedge_after;
};

// Which tier an outcome falls in; nullptr when it is not retryable at all.
const Tier* tier_for(const RetryPolicy& policy, const Result<http::Response>& outcome);

bool is_idempotent(const http::Request& request);

// Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
std::optional<Duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

struct Decision {
  bool retry = false;
  Duration delay{0};
  std::string_view why_not;  // when !retry: "attempts exhausted", ... (a static text: no allocation per request)
};

// After attempt number `attempts` (1-based) ended with `outcome`: retry, and after how long?
// `unit`: a random draw in [0, 1) for the jitter; `wall_now` for HTTP-date Retry-After values.
// `attempt_timed_out`: the attempt was cut off by RetryPolicy::attempt_timeout.
Decision decide(const RetryPolicy& policy, const http::Request& request, const Result<http::Response>& outcome,
                int attempts, double unit, std::chrono::system_clock::time_point wall_now,
                bool attempt_timed_out = false);

struct BudgetOptions {
  double ratio = 0.2;
  Duration window = std::chrono::seconds(10);
  double min_per_second = 3;
};

// Counts requests and retries in one-second buckets over the window.
class RetryBudget {
 public:
  RetryBudget(BudgetOptions options, const Clock& clock);
  void on_request();  // counts a request now
  // Counts a request at `now` (a reading of the budget's clock the caller has already); no
  // lock: every request passes here.
  void on_request(Clock::time_point now);
  bool try_retry();  // takes one retry from the budget; false (and counted) when none is left
  std::uint64_t exhausted() const;

 private:
  // One second of the window; reused for a later second once the window has moved past it.
  struct Bucket {
    std::atomic<std::int64_t> second{-1};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> retries{0};
  };
  Bucket& bucket_for(Clock::time_point now);

  BudgetOptions options_;
  const Clock& clock_;
  mutable std::mutex mutex_;  // a bucket's reset to a new second, and try_retry
  std::size_t bucket_count_;
  std::unique_ptr<Bucket[]> buckets_;
  std::uint64_t exhausted_ = 0;
};

// What a retry layer did, for reports (errand bench --engine client) and metrics.
struct RetryCounters {
  std::atomic<std::uint64_t> retries{0};           // attempts after the first
  std::atomic<std::uint64_t> budget_exhausted{0};  // retries (and hedges) the budget refused
  std::atomic<std::uint64_t> hedges{0};            // hedged attempts sent
  std::atomic<std::uint64_t> hedges_won{0};        // of those, the ones that answered first
};

// The middleware. `clock` is for the budget (the sleeps are Asio timers); `counters`, when
// given, are incremented as the layer works.
std::shared_ptr<http::Middleware> retry(RetryPolicy policy, BudgetOptions budget = {},
                                        const Clock& clock = SteadyClock::instance(),
                                        std::shared_ptr<RetryCounters> counters = nullptr);

}  // namespace errand::resilience
