#include <errand/observe/client_metrics.hpp>

#include <array>
#include <atomic>
#include <initializer_list>
#include <chrono>
#include <mutex>
#include <string_view>
#include <utility>

#include <errand/http/client.hpp>

#include "observe/attempts.hpp"

namespace errand::observe {
namespace {

using Seconds = std::chrono::duration<double>;

constexpr std::array<std::string_view, 10> method_labels{"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                         "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"};
constexpr std::array<std::string_view, 6> status_labels{"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
constexpr std::size_t max_error_kinds = 16;  // ErrorKind's values, with room to grow

std::size_t method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < method_labels.size(); ++i)
    if (method_labels[i] == method) return i;
  return method_labels.size() - 1;
}

std::size_t status_index(int status) {
  if (status < 100 || status > 599) return status_labels.size() - 1;
  return static_cast<std::size_t>(status / 100 - 1);
}

// A series looked up in its family once, then kept: the labels of a request are small
// numbers (method, status class, error kind), so the layer takes no lock per request.
Counter& cached(std::atomic<Counter*>& slot, Family<Counter>& family, std::initializer_list<std::string_view> labels) {
  Counter* counter = slot.load(std::memory_order_acquire);
  if (!counter) {
    counter = &family.with(labels);
    slot.store(counter, std::memory_order_release);
  }
  return *counter;
}

// The phases of Timings the histograms show, by label.
constexpr std::array<std::pair<std::string_view, http::Duration http::Timings::*>, 6> phase_fields{{
    {"dns", &http::Timings::dns},
    {"connect", &http::Timings::connect},
    {"tls", &http::Timings::tls},
    {"send", &http::Timings::send},
    {"wait", &http::Timings::wait},
    {"receive", &http::Timings::receive},
}};

struct MetricsState {
  std::size_t method = 0;
  std::chrono::steady_clock::time_point started;
};

class MetricsLayer final : public http::StageWith<MetricsState> {
 public:
  explicit MetricsLayer(std::shared_ptr<Registry> registry)
      : registry_(std::move(registry)),
        requests_(registry_->counter("errand_http_client_requests_total",
                                     "Logical HTTP requests by method, status class (responses) and error kind (failures).",
                                     {"method", "status_class", "error_kind"})),
        attempts_(registry_->counter("errand_http_client_attempts_total",
                                     "Tries of HTTP requests, retries included.", {"method"})),
        retries_(registry_->counter("errand_http_client_retries_total",
                                    "Tries of HTTP requests after the first.", {"method"})),
        fallbacks_(registry_->counter("errand_http_client_fallbacks_total",
                                      "Responses produced by a fallback layer instead of the origin.", {"source"})),
        duration_(registry_
                      ->histogram("errand_http_client_request_duration_seconds",
                                  "Time of logical HTTP requests, retries and backoff included.", {}, latency_buckets())
                      .with({})) {
    auto& phases = registry_->histogram("errand_http_client_phase_duration_seconds",
                                        "Time of each phase of the last try of HTTP requests that got a response.",
                                        {"phase"}, latency_buckets());
    // Fixed label values: looked up once here, not per request.
    for (std::size_t i = 0; i < phase_fields.size(); ++i) phases_[i] = &phases.with({phase_fields[i].first});
  }

  Begin before(http::Request& request, MetricsState& state, Result<http::Response>&, http::Client&,
               BeginContext context) override {
    state.method = method_index(request.method);
    state.started = context.now;
    return Begin::proceed;
  }

  // A cancellation is counted as an outcome like any other.
  std::optional<http::Duration> after(http::Request&, MetricsState& state, Result<http::Response>& outcome,
                                      http::Client&, EndContext context) override {
    record(state.method, outcome, Seconds(context.now - state.started).count());
    return std::nullopt;
  }

 private:
  void record(std::size_t method, const Result<http::Response>& outcome, double seconds) {
    auto tries = static_cast<double>(attempts_sent(outcome));
    std::string_view method_label = method_labels[method];
    if (outcome) {
      std::size_t status = status_index(outcome->status);
      cached(by_status_[method * status_labels.size() + status], requests_, {method_label, status_labels[status], ""}).inc();
      if (outcome->fallback) fallbacks_.with({outcome->fallback->source}).inc();
      for (std::size_t i = 0; i < phase_fields.size(); ++i) {
        http::Duration took = outcome->timings.*phase_fields[i].second;
        if (took > http::Duration::zero()) phases_[i]->observe(Seconds(took).count());  // only phases that happened
      }
    } else {
      auto kind = static_cast<std::size_t>(outcome.error().kind());
      std::string_view kind_label = to_string(outcome.error().kind());
      if (kind < max_error_kinds) cached(by_error_[method * max_error_kinds + kind], requests_, {method_label, "", kind_label}).inc();
      else requests_.with({method_label, "", kind_label}).inc();
    }
    cached(attempts_by_method_[method], attempts_, {method_label}).inc(tries);
    // The child exists from the first request on (exposed as 0); only retries move it.
    Counter& retries = cached(retries_by_method_[method], retries_, {method_label});
    if (tries > 1) retries.inc(tries - 1);
    duration_.observe(seconds);
  }

  std::shared_ptr<Registry> registry_;
  Family<Counter>& requests_;
  Family<Counter>& attempts_;
  Family<Counter>& retries_;
  Family<Counter>& fallbacks_;
  Histogram& duration_;
  std::array<Histogram*, phase_fields.size()> phases_{};
  std::array<std::atomic<Counter*>, method_labels.size() * status_labels.size()> by_status_{};
  std::array<std::atomic<Counter*>, method_labels.size() * max_error_kinds> by_error_{};
  std::array<std::atomic<Counter*>, method_labels.size()> attempts_by_method_{};
  std::array<std::atomic<Counter*>, method_labels.size()> retries_by_method_{};
};

// What a monotonic external counter grew by since it was last read.
double growth(std::uint64_t now, std::uint64_t before) { return now > before ? static_cast<double>(now - before) : 0.0; }

}  // namespace

const std::vector<double>& latency_buckets() {
  static const std::vector<double> buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,   0.5,   1,      2.5,   5,    10,    30};
  return buckets;
}

std::shared_ptr<http::Middleware> metrics(std::shared_ptr<Registry> registry) {
  return std::make_shared<MetricsLayer>(std::move(registry));
}

// Deltas rather than absolute values, so that several Clients add up in one series and a
// detached Client's connections leave the gauges.
struct ClientWatch::State {
  std::mutex mutex;
  http::Client* client = nullptr;  // null once detached
  http::PoolStats last;
  Gauge* open = nullptr;
  Gauge* idle = nullptr;
  Counter* opened = nullptr;
  Counter* reused = nullptr;
  Counter* tls_full = nullptr;
  Counter* tls_resumed = nullptr;

  // Runs only from the Registry's exposition, so the families it touches are alive; detach()
  // leaves the gauge correction to the next run for that reason.
  void collect() {
    std::lock_guard lock(mutex);
    http::PoolStats now;
    if (client) {
      now = client->stats();
      opened->inc(growth(now.opened, last.opened));
      reused->inc(growth(now.reused, last.reused));
      tls_full->inc(growth(now.tls_full_handshakes, last.tls_full_handshakes));
      tls_resumed->inc(growth(now.tls_resumed_handshakes, last.tls_resumed_handshakes));
    }
    open->add(static_cast<double>(now.open_now) - static_cast<double>(last.open_now));
    idle->add(static_cast<double>(now.idle_now) - static_cast<double>(last.idle_now));
    last = now;  // detached: all zero, so the gauges have given back what this Client added
  }
};

ClientWatch& ClientWatch::operator=(ClientWatch&& other) noexcept {
  if (this != &other) {
    detach();
    state_ = std::move(other.state_);
  }
  return *this;
}

ClientWatch::~ClientWatch() { detach(); }

void ClientWatch::detach() noexcept {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->client = nullptr;
  }
  state_.reset();
}

ClientWatch watch_client(Registry& registry, http::Client& client) {
  auto state = std::make_shared<ClientWatch::State>();
  state->client = &client;
  auto& connections = registry.gauge("errand_http_client_connections",
                                     "Pooled HTTP client connections now open (idle or busy) and idle.", {"state"});
  state->open = &connections.with({"open"});
  state->idle = &connections.with({"idle"});
  state->opened =
      &registry.counter("errand_http_client_connections_opened_total", "HTTP client connections established.")
           .with({});
  state->reused = &registry
                       .counter("errand_http_client_connections_reused_total",
                                "HTTP client requests served on an already used connection.")
                       .with({});
  auto& handshakes = registry.counter("errand_http_client_tls_handshakes_total",
                                      "TLS handshakes of HTTP client connections, by whether a session was resumed.",
                                      {"resumed"});
  state->tls_full = &handshakes.with({"false"});
  state->tls_resumed = &handshakes.with({"true"});
  registry.add_collector([state] { state->collect(); });
  return ClientWatch(std::move(state));
}

void watch_retries(Registry& registry, std::shared_ptr<resilience::RetryCounters> counters) {
  struct State {
    std::mutex mutex;
    std::shared_ptr<resilience::RetryCounters> counters;
    std::uint64_t last = 0;
    Counter* exhausted = nullptr;
  };
  auto state = std::make_shared<State>();
  state->counters = std::move(counters);
  state->exhausted = &registry
                          .counter("errand_http_client_retry_budget_exhausted_total",
                                   "Retries of HTTP requests refused by the retry budget.")
                          .with({});
  registry.add_collector([state] {
    std::lock_guard lock(state->mutex);
    auto now = state->counters->budget_exhausted.load(std::memory_order_relaxed);
    state->exhausted->inc(growth(now, state->last));
    state->last = now;
  });
}

std::function<void(const std::string&, resilience::BreakerState, resilience::BreakerState)> breaker_metrics(
    std::shared_ptr<Registry> registry) {
  auto* state = &registry->gauge("errand_http_client_breaker_state",
                                 "Circuit breaker state per origin: 0 closed, 1 open, 2 half-open.", {"origin"});
  auto* transitions = &registry->counter("errand_http_client_breaker_transitions_total",
                                         "Circuit breaker state changes per origin, by the state entered.",
                                         {"origin", "to"});
  return [registry = std::move(registry), state, transitions](const std::string& origin, resilience::BreakerState,
                                                              resilience::BreakerState to) {
    double value = to == resilience::BreakerState::closed ? 0.0 : to == resilience::BreakerState::open ? 1.0 : 2.0;
    state->with({origin}).set(value);
    transitions->with({origin, resilience::to_string(to)}).inc();
  };
}

}  // namespace errand::observe
