// errand/resilience/fallback.hpp — degrade instead of failing: when a request fails for good
// (the breaker is open, retries are exhausted, the origin is down), answer with something
// known instead — a user function's answer, the last good response to the same request, or a
// static default, tried in that order — and say so on the Response.
//
//   FallbackPolicy policy;
//   policy.last_good = true;                           // serve what /config said last time
//   policy.static_response.emplace().status = 200;           // an empty 200 as the last resort
//   options.middleware.push_back(errand::resilience::fallback(policy));   // outside breaker and retry
//   // later: if (res->fallback) log("served from", res->fallback->source, "because", res->fallback->reason);
//
// Triggers: an Error of a kind in `on_kinds` (default: every kind but cancelled and config —
// a cancelled request must stay cancelled, a bad request must be fixed, not hidden), or a
// response whose status is in `on_statuses` (default 502, 503, 504). The Response keeps the
// attempts of the failure it replaces, and `fallback` says which source answered and why.
//
// Per request: a FallbackPolicy in the request's extensions replaces the layer's for that
// request: request.extensions.insert(std::make_shared<errand::resilience::FallbackPolicy>(p)).
//
// The last-good cache: successful (2xx) responses to GET and HEAD, per method and URL,
// bounded by entries and bytes (a body over `max_body_bytes` is not kept), least recently
// stored first out; `max_age` bounds how stale an answer may be. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <errand/core/clock.hpp>
#include <errand/core/error.hpp>
#include <errand/http/message.hpp>
#include <errand/http/middleware.hpp>

namespace errand::resilience {

struct FallbackPolicy {
  // Asked first; returning an Error passes on to the next source.
  std::function<Result<http::Response>(const http::Request&, const Error& why)> function;
  bool last_good = false;
  std::size_t max_entries = 256;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_total_bytes = 16u << 20;
  std::optional<std::chrono::nanoseconds> max_age;  // unset: any age
  std::optional<http::Response> static_response;    // asked last
  std::vector<ErrorKind> on_kinds{ErrorKind::dns,     ErrorKind::connect,      ErrorKind::tls,
                                  ErrorKind::timeout, ErrorKind::protocol,     ErrorKind::io,
                                  ErrorKind::http_status, ErrorKind::circuit_open, ErrorKind::overloaded};
  std::vector<int> on_statuses{502, 503, 504};
};

// The bounded store of last good responses (the layer's; public for its unit tests).
class LastGoodCache {
 public:
  LastGoodCache(std::size_t max_entries, std::size_t max_body_bytes, std::size_t max_total_bytes);
  // Keeps a copy when the request is a GET or HEAD and the response a 2xx within the bounds.
  void store(const http::Request& request, const http::Response& response, Clock::time_point now);
  std::optional<http::Response> find(const http::Request& request, Clock::time_point now,
                                     std::optional<std::chrono::nanoseconds> max_age) const;
  std::size_t size() const;
  std::size_t bytes() const;

 private:
  struct Entry {
    std::string key;
    http::Response response;
    Clock::time_point stored_at;
  };
  void evict_oldest();  // under mutex_

  std::size_t max_entries_, max_body_bytes_, max_total_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // oldest store first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::size_t bytes_ = 0;
};

// What a fallback layer did, for reports and metrics.
struct FallbackCounters {
  std::atomic<std::uint64_t> served{0};     // failures answered by a fallback
  std::atomic<std::uint64_t> unanswered{0}; // failures no source could answer (passed on)
};

std::shared_ptr<http::Middleware> fallback(FallbackPolicy policy, const Clock& clock = SteadyClock::instance(),
                                           std::shared_ptr<FallbackCounters> counters = nullptr);

}  // namespace errand::resilience
