#include <errand/resilience/retry.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <ctime>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <errand/http/client.hpp>

#include "http/h1/serialize.hpp"

namespace errand::resilience {

namespace asio = boost::asio;

Duration Backoff::delay(int retry, double unit) const {
  double d = static_cast<double>(base.count()) * std::pow(multiplier, std::max(0, retry - 1));
  d = std::min(d, static_cast<double>(cap.count()));
  d *= 1.0 + jitter * (2.0 * unit - 1.0);
  return Duration(static_cast<Duration::rep>(std::max(0.0, d)));
}

namespace {

bool wanted(const RetryPolicy& policy, ErrorKind kind) {
  return policy.only_kinds.empty() ||
         std::find(policy.only_kinds.begin(), policy.only_kinds.end(), kind) != policy.only_kinds.end();
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, the form servers send).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  std::tm tm{};
  std::string copy(text);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

}  // namespace

const Tier* tier_for(const RetryPolicy& policy, const Result<http::Response>& outcome) {
  if (outcome) {
    if (!wanted(policy, ErrorKind::http_status)) return nullptr;
    bool listed = std::find(policy.statuses.begin(), policy.statuses.end(), outcome->status) != policy.statuses.end();
    return listed ? &policy.status : nullptr;
  }
  const Error& e = outcome.error();
  if (!wanted(policy, e.kind())) return nullptr;
  switch (e.kind()) {
    case ErrorKind::connect:
    case ErrorKind::io:
      return &policy.network;
    case ErrorKind::dns:
      return &policy.dns;
    case ErrorKind::tls:
      return &policy.tls;
    case ErrorKind::timeout: {
      bool listed = std::find(policy.timeout_phases.begin(), policy.timeout_phases.end(), e.phase()) !=
                    policy.timeout_phases.end();
      return listed ? &policy.timeout : nullptr;
    }
    default:
      return nullptr;  // protocol, config, cancelled, http_status: retrying cannot help
  }
}

bool is_idempotent(const http::Request& request) {
  return http::h1::is_idempotent(request.method) || request.headers.contains("Idempotency-Key");
}

std::optional<Duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::uint64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || seconds > 365ull * 24 * 3600) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  if (*when <= now) return Duration(0);
  return std::chrono::duration_cast<Duration>(*when - now);
}

Decision decide(const RetryPolicy& policy, const http::Request& request, const Result<http::Response>& outcome,
                int attempts, double unit, std::chrono::system_clock::time_point wall_now, bool attempt_timed_out) {
  Decision d;
  const Tier* tier = tier_for(policy, outcome);
  if (!tier && attempt_timed_out && wanted(policy, ErrorKind::timeout)) tier = &policy.timeout;
  if (!tier) {
    d.why_not = outcome ? "the status is not retryable" : "this kind of failure is not retryable";
    return d;
  }
  if (!policy.retry_non_idempotent && !is_idempotent(request)) {
    d.why_not = "the method is not idempotent and the request has no Idempotency-Key";
    return d;
  }
  int most = tier->max_attempts;
  if (policy.max_attempts > 0) most = std::min(most, policy.max_attempts);
  if (attempts >= most) {
    d.why_not = "attempts exhausted";
    return d;
  }
  d.retry = true;
  d.delay = tier->backoff.delay(attempts, unit);
  if (outcome) {
    if (auto header = outcome->headers.get("Retry-After")) {
      if (auto after = parse_retry_after(*header, wall_now)) d.delay = std::min(*after, policy.max_retry_after);
    }
  }
  return d;
}

RetryBudget::RetryBudget(BudgetOptions options, const Clock& clock)
    : options_(options),
      clock_(clock),
      bucket_count_(static_cast<std::size_t>(std::max<std::int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(options.window).count()))),
      buckets_(new Bucket[bucket_count_]) {}

RetryBudget::Bucket& RetryBudget::bucket_for(Clock::time_point now) {
  auto second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Bucket& b = buckets_[static_cast<std::size_t>(second) % bucket_count_];
  // Only a newer second resets the bucket: a reading taken a little earlier on another thread
  // may arrive after the reset, and then counts in the bucket as it is.
  if (b.second.load(std::memory_order_acquire) < second) {
    // A new second for this bucket: once a second, so a lock is fine here.
    std::lock_guard lock(mutex_);
    if (b.second.load(std::memory_order_relaxed) < second) {
      b.requests.store(0, std::memory_order_relaxed);
      b.retries.store(0, std::memory_order_relaxed);
      b.second.store(second, std::memory_order_release);
    }
  }
  return b;
}

void RetryBudget::on_request() { on_request(clock_.now()); }

void RetryBudget::on_request(Clock::time_point now) {
  bucket_for(now).requests.fetch_add(1, std::memory_order_relaxed);
}

bool RetryBudget::try_retry() {
  Bucket& now = bucket_for(clock_.now());
  std::lock_guard lock(mutex_);  // one retry at a time: the sum and the take agree
  std::int64_t current = now.second.load(std::memory_order_relaxed);
  std::uint64_t requests = 0, retries = 0;
  std::int64_t oldest = current - static_cast<std::int64_t>(bucket_count_) + 1;
  for (std::size_t i = 0; i < bucket_count_; ++i) {
    const Bucket& b = buckets_[i];
    std::int64_t second = b.second.load(std::memory_order_relaxed);
    if (second < oldest || second > current) continue;
    requests += b.requests.load(std::memory_order_relaxed);
    retries += b.retries.load(std::memory_order_relaxed);
  }
  double allowed = std::max(options_.ratio * static_cast<double>(requests),
                            options_.min_per_second * static_cast<double>(bucket_count_));
  if (static_cast<double>(retries) + 1 > allowed) {
    ++exhausted_;
    return false;
  }
  now.retries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::uint64_t RetryBudget::exhausted() const {
  std::lock_guard lock(mutex_);
  return exhausted_;
}

namespace {

double random_unit() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

Attempt attempt_of(const Result<http::Response>& outcome, Duration delay, Duration took) {
  Attempt a;
  a.delay = delay;
  a.duration = took;
  if (outcome) {
    a.ok = true;
    a.status = outcome->status;
  } else {
    a.kind = outcome.error().kind();
    a.phase = outcome.error().phase();
    a.message = outcome.error().message().substr(0, 256);
  }
  return a;
}

// One logical request through the retry layer: its attempts so far and its deadline.
struct RetryRun {
  const RetryPolicy* policy = nullptr;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::optional<http::Duration> caller_total;  // the request's own total timeout, put back at the end
  std::vector<Attempt> attempts;
  Duration delay{0};  // the pause before the current attempt
  std::chrono::steady_clock::time_point started;
  bool attempt_limited = false;  // the current attempt's limit is the policy's attempt_timeout
  int n = 1;  // the current attempt
};

// Whether the attempt that began at run.started and ended at `now` with `outcome` was cut off
// by the policy's attempt_timeout; if so, its error says so.
bool cut_off_by_attempt_timeout(const RetryRun& run, Result<http::Response>& outcome,
                                std::chrono::steady_clock::time_point now) {
  if (!run.attempt_limited || outcome || outcome.error().kind() != ErrorKind::timeout) return false;
  // The transport's deadline is armed after run.started, so a cut-off attempt is at least this long.
  if (now - run.started < *run.policy->attempt_timeout) return false;
  Error& e = outcome.error();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*run.policy->attempt_timeout).count();
  e = Error::timeout(e.phase(), "the attempt's own timeout of " + std::to_string(ms) + " ms passed: " + e.message());
  return true;
}

class RetryLayer final : public http::StageWith<RetryRun> {
 public:
  RetryLayer(RetryPolicy policy, BudgetOptions budget, const Clock& clock, std::shared_ptr<RetryCounters> counters)
      : policy_(std::move(policy)), clock_(clock), budget_(budget, clock), counters_(std::move(counters)) {}

  Begin before(http::Request& request, RetryRun& run, Result<http::Response>&, http::Client&,
               BeginContext context) override {
    // A policy of the request's own (Request::extensions) wins over the layer's.
    const RetryPolicy* own = request.extensions.get<RetryPolicy>();
    run.policy = own ? own : &policy_;
    if (run.policy->hedge_after && is_idempotent(request)) return Begin::suspend;  // attempts race: a coroutine
    open(request, run, context.now);
    begin_attempt(request, run, context.now);
    return Begin::proceed;
  }

  std::optional<http::Duration> after(http::Request& request, RetryRun& run, Result<http::Response>& outcome,
                                      http::Client& client, EndContext context) override {
    if (context.interrupted) {  // the pause before the next attempt was cut short: `outcome` says why
      close(request, run, outcome);
      return std::nullopt;
    }
    bool timed_out = cut_off_by_attempt_timeout(run, outcome, context.now);
    run.attempts.push_back(attempt_of(outcome, run.delay, context.now - run.started));
    return next_pause(request, run, outcome, client, context.cancelled, timed_out);
  }

  void before_again(http::Request& request, RetryRun& run, BeginContext context) override {
    ++run.n;
    begin_attempt(request, run, context.now);
  }

  // With hedging: each attempt may race a copy of itself.
  asio::awaitable<Result<http::Response>> run_suspended(http::Request& request, RetryRun& run, http::Next next,
                                                        http::Client& client) override {
    open(request, run, std::chrono::steady_clock::now());
    for (;;) {
      begin_attempt(request, run, std::chrono::steady_clock::now());
      Result<http::Response> outcome = co_await hedged(next, request, *run.policy->hedge_after, run.delay, run.attempts);
      auto cancellation = co_await asio::this_coro::cancellation_state;  // not in an expression: GCC 12
      bool cancelled = cancellation.cancelled() != asio::cancellation_type::none;
      bool timed_out = cut_off_by_attempt_timeout(run, outcome, std::chrono::steady_clock::now());
      auto pause = next_pause(request, run, outcome, client, cancelled, timed_out);
      if (!pause) co_return outcome;
      if (outcome) outcome->unread_body.reset();  // an opened attempt thrown away: its connection goes now
      auto slept = co_await client.pause(*pause);
      if (!slept) {
        outcome = fail(std::move(slept.error()));  // cancelled
        close(request, run, outcome);
        co_return outcome;
      }
      ++run.n;
    }
  }

 private:
  // One attempt and, when it is slow, a hedge beside it; each leaves its record in `attempts`.
  struct Race {
    explicit Race(asio::any_io_executor executor) : wake(std::move(executor)) {}
    asio::steady_timer wake;  // cancelled whenever an attempt ends
    std::array<std::optional<Result<http::Response>>, 2> outcome;
    std::array<std::chrono::steady_clock::time_point, 2> started{};
    std::array<Duration, 2> took{};
    std::array<asio::cancellation_signal, 2> stop;
  };

  static void launch(const std::shared_ptr<Race>& race, int i, const http::Next& next, http::Request request) {
    race->started[i] = std::chrono::steady_clock::now();
    auto run = [race, i, next, request = std::move(request)]() mutable -> asio::awaitable<void> {
      auto outcome = co_await next(request);
      race->took[i] = std::chrono::steady_clock::now() - race->started[i];
      race->outcome[i] = std::move(outcome);
      race->wake.cancel();
    };
    asio::co_spawn(race->wake.get_executor(), std::move(run),
                   asio::bind_cancellation_slot(race->stop[i].slot(), asio::detached));
  }

  // Each racer sends its own copy of the request: both run at once.
  asio::awaitable<Result<http::Response>> hedged(const http::Next& next, const http::Request& attempt, Duration hedge_after,
                                                 Duration delay, std::vector<Attempt>& attempts) {
    auto race = std::make_shared<Race>(co_await asio::this_coro::executor);
    launch(race, 0, next, attempt);
    race->wake.expires_after(hedge_after);
    co_await race->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    auto cancelled = [&]() -> asio::awaitable<bool> {
      co_return (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none;
    };
    bool sent_hedge = false;
    bool stopped = co_await cancelled();
    if (!race->outcome[0] && !stopped) {
      if (budget_.try_retry()) {
        sent_hedge = true;
        if (counters_) counters_->hedges.fetch_add(1, std::memory_order_relaxed);
        http::report_event(attempt, "hedge", {{"hedge.after_ms", std::chrono::duration<double, std::milli>(hedge_after).count()}});
        launch(race, 1, next, attempt);
      } else if (counters_) {
        counters_->budget_exhausted.fetch_add(1, std::memory_order_relaxed);
      }
    }
    int winner = -1;
    for (;;) {
      auto& first = race->outcome[0];
      auto& second = race->outcome[1];
      if (first && *first) winner = 0;
      else if (second && *second) winner = 1;
      else if (first && (!sent_hedge || second)) winner = sent_hedge ? 1 : 0;  // all failed: the last word
      if (winner >= 0) break;
      stopped = co_await cancelled();
      if (stopped) break;
      race->wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await race->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    int sent = sent_hedge ? 2 : 1;
    for (int i = 0; i < sent; ++i) {
      if (!race->outcome[i]) race->stop[i].emit(asio::cancellation_type::terminal);
      Attempt record;
      if (race->outcome[i]) {
        record = attempt_of(*race->outcome[i], i == 0 ? delay : hedge_after, race->took[i]);
      } else {
        record.kind = ErrorKind::cancelled;
        record.message = winner < 0 ? "cancelled" : "cancelled: the other attempt answered first";
        record.delay = i == 0 ? delay : hedge_after;
        record.duration = std::chrono::steady_clock::now() - race->started[i];
      }
      record.hedge = i == 1;
      attempts.push_back(std::move(record));
    }
    if (winner < 0) co_return fail(ErrorKind::cancelled, "the request was cancelled");
    if (winner == 1 && counters_) counters_->hedges_won.fetch_add(1, std::memory_order_relaxed);
    co_return std::move(*race->outcome[winner]);
  }

  // `now`: a reading of the steady clock.
  void open(http::Request& request, RetryRun& run, std::chrono::steady_clock::time_point now) {
    budget_.on_request(time_on(clock_, now));
    run.caller_total = request.timeouts.total;
    if (request.timeouts.total) run.deadline = now + *request.timeouts.total;
  }

  // Each attempt gets what is left of the deadline; the caller's timeout is put back by close().
  static void begin_attempt(http::Request& request, RetryRun& run, std::chrono::steady_clock::time_point now) {
    run.started = now;
    std::optional<http::Duration> limit;
    // A deadline already passed is a limit of 1 ns: 0 would mean none to the transport.
    if (run.deadline) limit = std::max<http::Duration>(http::Duration(1), *run.deadline - now);
    const auto& own = run.policy->attempt_timeout;
    run.attempt_limited = own && (!limit || *own < *limit);
    if (run.attempt_limited) limit = std::chrono::duration_cast<http::Duration>(*own);
    if (limit) request.timeouts.total = limit;
  }

  // `outcome` stands: it carries the attempts.
  static void close(http::Request& request, RetryRun& run, Result<http::Response>& outcome) {
    request.timeouts.total = run.caller_total;
    if (outcome) outcome->attempts = std::move(run.attempts);
    else outcome.error().with_attempts(std::move(run.attempts));
  }

  // After an attempt (recorded in run.attempts): the pause before the next, or nullopt when
  // `outcome` stands (closed).
  // `attempt_timed_out`: the attempt was cut off by the policy's attempt_timeout.
  std::optional<Duration> next_pause(http::Request& request, RetryRun& run, Result<http::Response>& outcome,
                                     http::Client& client, bool cancelled, bool attempt_timed_out) {
    using Clock = std::chrono::steady_clock;
    const int n = run.n;
    if (!attempt_timed_out && !tier_for(*run.policy, outcome)) {  // the usual end: no clock, no dice
      close(request, run, outcome);
      return std::nullopt;
    }
    Decision d = decide(*run.policy, request, outcome, n, random_unit(), std::chrono::system_clock::now(),
                        attempt_timed_out);
    if (d.retry && run.deadline && Clock::now() + d.delay >= *run.deadline) d.retry = false;  // it would not finish in time
    if (d.retry && !cancelled && !budget_.try_retry()) {
      d.retry = false;
      if (counters_) counters_->budget_exhausted.fetch_add(1, std::memory_order_relaxed);
      http::report_event(request, "retry.budget_exhausted", {{"retry.attempt", std::int64_t{n}}});
    }
    if (!d.retry || cancelled) {
      close(request, run, outcome);
      return std::nullopt;
    }
    http::report_event(request, "retry",
                       {{"retry.attempt", std::int64_t{n + 1}},
                        {"retry.delay_ms", std::chrono::duration<double, std::milli>(d.delay).count()},
                        {"retry.after", outcome ? std::to_string(outcome->status)
                                                : std::string(to_string(outcome.error().kind()))}});
    if (!outcome && outcome.error().kind() == ErrorKind::tls) client.forget_tls_session(request.url);
    if (counters_) counters_->retries.fetch_add(1, std::memory_order_relaxed);
    run.delay = d.delay;
    return d.delay;
  }

  RetryPolicy policy_;
  const Clock& clock_;  // the budget's
  RetryBudget budget_;
  std::shared_ptr<RetryCounters> counters_;
};

}  // namespace

std::shared_ptr<http::Middleware> retry(RetryPolicy policy, BudgetOptions budget, const Clock& clock,
                                        std::shared_ptr<RetryCounters> counters) {
  return std::make_shared<RetryLayer>(std::move(policy), budget, clock, std::move(counters));
}

}  // namespace errand::resilience
