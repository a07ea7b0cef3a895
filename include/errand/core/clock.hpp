// errand/core/clock.hpp — injectable time.
//
// Code that decides by time (pool eviction, backoff, breakers) takes a Clock& so that unit
// tests drive it with a ManualClock: exact and fast, nothing sleeps.
//
//   ManualClock clock;
//   pool.release(conn, clock.now());
//   clock.advance(std::chrono::seconds(91));   // past the idle timeout
//
// SteadyClock is thread-safe. ManualClock is not synchronised: one test thread drives it.
#pragma once

#include <chrono>

namespace errand {

class Clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  static SteadyClock& instance() {
    static SteadyClock clock;
    return clock;
  }
};

// `clock`'s time: `steady_now` (a reading the caller has, such as a Stage's context.now) when
// `clock` is the steady clock, else a reading of `clock` (a ManualClock in tests).
inline Clock::time_point time_on(const Clock& clock, Clock::time_point steady_now) {
  return &clock == &SteadyClock::instance() ? steady_now : clock.now();
}

class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point(std::chrono::hours(1))) : now_(start) {}
  time_point now() const override { return now_; }
  void advance(duration d) { now_ += d; }
  void set(time_point t) { now_ = t; }

 private:
  time_point now_;
};

}  // namespace errand
