// errand/resilience/breaker.hpp — a circuit breaker and a bulkhead per origin, as a Client
// middleware layer (outside the retry layer: DESIGN.md's chain is breaker → retry).
//
//   options.middleware.push_back(errand::resilience::breaker({.failure_rate = 0.5, .minimum_calls = 10}));
//   options.middleware.push_back(errand::resilience::retry({}));
//
// States, per origin (scheme://host:port):
//   closed     calls pass; outcomes go into a sliding window (the last `window_calls` calls,
//              or the calls of the last `window_time` when set). When at least
//              `minimum_calls` are in it and failures (or slow calls) reach their rate → open.
//   open       calls fail at once with ErrorKind::circuit_open, nothing is sent. After
//              `open_for` → half-open. Each reopening without a close in between waits
//              `open_growth` times longer, up to `max_open_for`.
//   half_open  `half_open_probes` calls pass, the rest fail fast; all probes succeed → closed
//              (window and growth reset); a probe fails → open again.
// A failure, by default: ErrorKind connect, tls, timeout, and statuses 500–599. A slow call:
// one that took over `slow_call` (when set); `slow_call_rate` of them also opens it, as in
// resilience4j. The bulkhead: with `max_concurrent` > 0, a call beyond that many in flight to
// the origin fails at once with ErrorKind::overloaded instead of queueing.
// Transitions are reported to `on_transition` (metrics and tracing hook in there).
//
// CircuitBreaker is the state machine alone, driven with explicit times (unit tests use a
// ManualClock); breaker() wraps one per origin into a thread-safe middleware.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <errand/core/clock.hpp>
#include <errand/core/error.hpp>
#include <errand/http/message.hpp>
#include <errand/http/middleware.hpp>

namespace errand::resilience {

enum class BreakerState { closed, open, half_open };
std::string_view to_string(BreakerState state) noexcept;

struct BreakerOptions {
  std::size_t window_calls = 20;
  std::optional<std::chrono::nanoseconds> window_time;  // set: a window by time instead of count
  std::size_t minimum_calls = 10;
  double failure_rate = 0.5;
  std::optional<std::chrono::nanoseconds> slow_call;
  double slow_call_rate = 1.0;
  std::chrono::nanoseconds open_for = std::chrono::seconds(5);
  double open_growth = 2.0;
  std::chrono::nanoseconds max_open_for = std::chrono::minutes(5);
  std::size_t half_open_probes = 3;
  std::vector<ErrorKind> failure_kinds{ErrorKind::connect, ErrorKind::tls, ErrorKind::timeout};
  int failure_status_min = 500;  // statuses in [min, max] count as failures
  int failure_status_max = 599;
  std::size_t max_concurrent = 0;  // bulkhead per origin; 0: no limit
  // Called on every state change, outside the breaker's lock.
  std::function<void(const std::string& origin, BreakerState from, BreakerState to)> on_transition;
};

class CircuitBreaker {
 public:
  using time_point = Clock::time_point;
  explicit CircuitBreaker(BreakerOptions options);

  // May a call go out now? Moves open → half_open when its time is up.
  bool admit(time_point now);
  // The outcome of an admitted call.
  void record(bool failed, bool slow, time_point now);
  // An admitted call ended without an outcome that says anything (cancelled).
  void release_probe();
  // Whether an outcome counts as a failure under these options.
  bool is_failure(const Result<http::Response>& outcome) const;

  BreakerState state() const noexcept { return state_; }
  std::chrono::nanoseconds current_open_for() const noexcept { return open_for_; }
  // Transitions since the last call (for reporting them outside a lock).
  std::vector<std::pair<BreakerState, BreakerState>> take_transitions();
  bool has_transitions() const noexcept { return !transitions_.empty(); }

 private:
  struct Call {
    time_point at;
    bool failed = false;
    bool slow = false;
  };
  // The window's calls, oldest first, in a ring that doubles when full (a window by time may
  // hold many calls): recording a call allocates nothing, where a deque allocates every few.
  class CallRing {
   public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    const Call& front() const noexcept { return slots_[head_]; }
    void pop_front() noexcept {
      head_ = wrap(head_ + 1);
      --size_;
    }
    void push_back(const Call& call) {
      if (size_ == slots_.size()) regrow(slots_.empty() ? 16 : 2 * slots_.size());
      slots_[wrap(head_ + size_)] = call;
      ++size_;
    }
    void clear() noexcept { head_ = size_ = 0; }
    void reserve(std::size_t capacity) {
      if (capacity > slots_.size()) regrow(capacity);
    }

   private:
    std::size_t wrap(std::size_t i) const noexcept { return i >= slots_.size() ? i - slots_.size() : i; }
    void regrow(std::size_t capacity) {
      std::vector<Call> bigger(capacity);
      for (std::size_t i = 0; i < size_; ++i) bigger[i] = slots_[wrap(head_ + i)];
      slots_.swap(bigger);
      head_ = 0;
    }
    std::vector<Call> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };
  void move_to(BreakerState next, time_point now);
  void prune(time_point now);
  void drop_oldest();
  void clear_window();

  BreakerOptions options_;
  BreakerState state_ = BreakerState::closed;
  // The window and how many of its calls failed or were slow, kept as calls come and go:
  // a window by time may hold many calls, and every call judges the rates.
  CallRing window_;
  std::size_t window_failures_ = 0;
  std::size_t window_slow_ = 0;
  time_point opened_at_{};
  std::chrono::nanoseconds open_for_;
  std::size_t probes_sent_ = 0;
  std::size_t probes_ok_ = 0;
  std::vector<std::pair<BreakerState, BreakerState>> transitions_;
};

std::shared_ptr<http::Middleware> breaker(BreakerOptions options = {}, const Clock& clock = SteadyClock::instance());

}  // namespace errand::resilience
