#include <errand/resilience/breaker.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <errand/http/client.hpp>

namespace errand::resilience {

std::string_view to_string(BreakerState state) noexcept {
  switch (state) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options) : options_(std::move(options)), open_for_(options_.open_for) {
  // A window by count holds at most one call more than its size, before the oldest goes.
  if (!options_.window_time) window_.reserve(std::min<std::size_t>(options_.window_calls + 1, 4096));
}

bool CircuitBreaker::is_failure(const Result<http::Response>& outcome) const {
  if (outcome) return outcome->status >= options_.failure_status_min && outcome->status <= options_.failure_status_max;
  const auto& kinds = options_.failure_kinds;
  return std::find(kinds.begin(), kinds.end(), outcome.error().kind()) != kinds.end();
}

void CircuitBreaker::move_to(BreakerState next, time_point now) {
  if (next == state_) return;
  transitions_.emplace_back(state_, next);
  BreakerState previous = state_;
  state_ = next;
  if (next == BreakerState::open) {
    // Reopening straight from half-open waits longer each time; a close resets it.
    if (previous == BreakerState::half_open) {
      auto grown = std::chrono::duration<double, std::nano>(open_for_) * options_.open_growth;
      open_for_ = std::min(std::chrono::duration_cast<std::chrono::nanoseconds>(grown), options_.max_open_for);
    }
    opened_at_ = now;
    clear_window();
  } else if (next == BreakerState::half_open) {
    probes_sent_ = 0;
    probes_ok_ = 0;
  } else {
    clear_window();
    open_for_ = options_.open_for;
  }
}

void CircuitBreaker::drop_oldest() {
  window_failures_ -= window_.front().failed ? 1 : 0;
  window_slow_ -= window_.front().slow ? 1 : 0;
  window_.pop_front();
}

void CircuitBreaker::clear_window() {
  window_.clear();
  window_failures_ = window_slow_ = 0;
}

void CircuitBreaker::prune(time_point now) {
  if (options_.window_time) {
    while (!window_.empty() && now - window_.front().at > *options_.window_time) drop_oldest();
    while (window_.size() > 100000) drop_oldest();  // bounded whatever the rate
  } else {
    while (window_.size() > options_.window_calls) drop_oldest();
  }
}

bool CircuitBreaker::admit(time_point now) {
  if (state_ == BreakerState::open) {
    if (now - opened_at_ < open_for_) return false;
    move_to(BreakerState::half_open, now);
  }
  if (state_ == BreakerState::half_open) {
    if (probes_sent_ >= options_.half_open_probes) return false;
    ++probes_sent_;
  }
  return true;
}

void CircuitBreaker::record(bool failed, bool slow, time_point now) {
  if (state_ == BreakerState::half_open) {
    if (failed || slow) {
      move_to(BreakerState::open, now);
      return;
    }
    if (++probes_ok_ >= options_.half_open_probes) move_to(BreakerState::closed, now);
    return;
  }
  if (state_ == BreakerState::open) return;  // a call admitted before it opened
  window_.push_back({now, failed, slow});
  window_failures_ += failed ? 1 : 0;
  window_slow_ += slow ? 1 : 0;
  prune(now);
  if (window_.size() < options_.minimum_calls) return;
  double n = static_cast<double>(window_.size());
  auto failures = static_cast<double>(window_failures_);
  auto slows = static_cast<double>(window_slow_);
  bool too_many_failures = failures / n >= options_.failure_rate;
  bool too_slow = options_.slow_call && slows / n >= options_.slow_call_rate;
  if (too_many_failures || too_slow) move_to(BreakerState::open, now);
}

void CircuitBreaker::release_probe() {
  if (state_ == BreakerState::half_open && probes_sent_ > probes_ok_) --probes_sent_;
}

std::vector<std::pair<BreakerState, BreakerState>> CircuitBreaker::take_transitions() {
  std::vector<std::pair<BreakerState, BreakerState>> out;
  out.swap(transitions_);
  return out;
}

namespace {

struct Origin {
  explicit Origin(const BreakerOptions& o) : breaker(o) {}
  CircuitBreaker breaker;
  std::size_t in_flight = 0;  // the calls counted for the bulkhead
  // Whether the breaker is closed, written under the layer's lock after each change: a call to
  // a closed breaker without a bulkhead is admitted without the lock. One that reads `true`
  // just as another thread opens the breaker goes out, like a call admitted a moment earlier.
  std::atomic<bool> closed{true};
};

// One call through the breaker, from admission to its record.
struct BreakerCall {
  Origin* slot = nullptr;
  const std::string* origin = nullptr;  // the map's key: stable
  Clock::time_point started;
  bool counted = false;  // in slot->in_flight
};

class BreakerLayer final : public http::StageWith<BreakerCall> {
 public:
  BreakerLayer(BreakerOptions options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}

  Begin before(http::Request& request, BreakerCall& call, Result<http::Response>& outcome, http::Client&,
               BeginContext context) override {
    auto now = time_on(clock_, context.now);  // for admission and the call's start
    if (options_.max_concurrent == 0 && last_origin(request.url, call) && call.slot->closed.load(std::memory_order_acquire)) {
      call.started = now;
      return Begin::proceed;
    }
    bool admitted = false;
    bool over_limit = false;
    std::vector<std::pair<BreakerState, BreakerState>> moved;
    {
      std::lock_guard lock(mutex_);
      find_origin(request.url, call);
      if (options_.max_concurrent > 0 && call.slot->in_flight >= options_.max_concurrent) {
        over_limit = true;
      } else {
        admitted = call.slot->breaker.admit(now);
        if (admitted && options_.max_concurrent > 0) {
          ++call.slot->in_flight;
          call.counted = true;
        }
      }
      publish(*call.slot);
      if (call.slot->breaker.has_transitions()) moved = call.slot->breaker.take_transitions();
    }
    report(request.extensions, *call.origin, moved);
    if (over_limit) {
      outcome = fail(Error(ErrorKind::overloaded, "more than " + std::to_string(options_.max_concurrent) +
                                                      " requests in flight to " + *call.origin));
      return Begin::answered;
    }
    if (!admitted) {
      outcome = fail(Error(ErrorKind::circuit_open, "the circuit breaker for " + *call.origin + " is open"));
      return Begin::answered;
    }
    call.started = now;
    return Begin::proceed;
  }

  std::optional<http::Duration> after(http::Request& request, BreakerCall& call, Result<http::Response>& outcome,
                                      http::Client&, EndContext context) override {
    auto now = time_on(clock_, context.now);
    std::vector<std::pair<BreakerState, BreakerState>> moved;
    {
      std::lock_guard lock(mutex_);
      if (call.counted) --call.slot->in_flight;
      bool cancelled = !outcome && outcome.error().kind() == ErrorKind::cancelled;
      if (!cancelled) {
        bool slow = options_.slow_call && now - call.started > *options_.slow_call;
        call.slot->breaker.record(call.slot->breaker.is_failure(outcome), slow, now);
      } else {
        call.slot->breaker.release_probe();  // a cancelled probe proves nothing; let another go
      }
      publish(*call.slot);
      if (call.slot->breaker.has_transitions()) moved = call.slot->breaker.take_transitions();
    }
    report(request.extensions, *call.origin, moved);
    return std::nullopt;
  }

 private:
  // The thread's last origin of this layer, so that a run of requests to one origin builds and
  // hashes no key. Layers are told apart by a serial number: an address could be reused.
  struct LastOrigin {
    std::uint64_t layer = 0;
    std::string scheme, host;
    std::uint16_t port = 0;
    Origin* slot = nullptr;
    const std::string* origin = nullptr;
  };

  static void publish(Origin& slot) {
    slot.closed.store(slot.breaker.state() == BreakerState::closed, std::memory_order_release);
  }

  static LastOrigin& last_origin_of_thread() {
    thread_local LastOrigin last;
    return last;
  }

  // The thread's last origin, when `url` is of it (no lock: the entry is the thread's own, and
  // origins are never erased).
  bool last_origin(const http::Url& url, BreakerCall& call) const {
    const LastOrigin& last = last_origin_of_thread();
    if (last.layer != serial_ || last.port != url.port() || last.host != url.host() || last.scheme != url.scheme())
      return false;
    call.slot = last.slot;
    call.origin = last.origin;
    return true;
  }

  // Called under mutex_. Origins are never erased, so a cached entry stays valid.
  void find_origin(const http::Url& url, BreakerCall& call) {
    if (last_origin(url, call)) return;
    thread_local std::string key;  // no allocation once the origin is known
    url.origin_into(key);
    auto it = origins_.find(key);
    if (it == origins_.end()) it = origins_.try_emplace(key, options_).first;
    last_origin_of_thread() = LastOrigin{serial_, url.scheme(), url.host(), url.port(), &it->second, &it->first};
    call.slot = &it->second;
    call.origin = &it->first;
  }

  void report(const http::Extensions& extensions, const std::string& origin,
              const std::vector<std::pair<BreakerState, BreakerState>>& moved) {
    for (auto [from, to] : moved) {
      http::report_event(extensions, "breaker.transition",
                         {{"breaker.origin", origin},
                          {"breaker.from", std::string(to_string(from))},
                          {"breaker.to", std::string(to_string(to))}});
      if (options_.on_transition) options_.on_transition(origin, from, to);
    }
  }

  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> serials{0};
    return ++serials;
  }

  BreakerOptions options_;
  const Clock& clock_;
  const std::uint64_t serial_ = next_serial();
  std::mutex mutex_;
  std::unordered_map<std::string, Origin> origins_;  // node-based: Origin addresses stay valid
};

}  // namespace

std::shared_ptr<http::Middleware> breaker(BreakerOptions options, const Clock& clock) {
  return std::make_shared<BreakerLayer>(std::move(options), clock);
}

}  // namespace errand::resilience
