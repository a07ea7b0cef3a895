// errand/observe/client_metrics.hpp — the HTTP client's metrics, fed into a Registry
// (errand/observe/metrics.hpp) by a middleware layer, collectors and a breaker hook.
//
//   auto registry = std::make_shared<errand::observe::Registry>();
//   auto retry_counters = std::make_shared<errand::resilience::RetryCounters>();
//   errand::resilience::BreakerOptions b;
//   b.on_transition = errand::observe::breaker_metrics(registry);
//   errand::http::ClientOptions options;
//   options.middleware.push_back(errand::observe::metrics(registry));   // outside the policies
//   options.middleware.push_back(errand::resilience::breaker(b));
//   options.middleware.push_back(errand::resilience::retry({}, {}, errand::SteadyClock::instance(), retry_counters));
//   errand::http::Client client(options);
//   auto watch = errand::observe::watch_client(*registry, client);      // keep it while client lives
//   errand::observe::watch_retries(*registry, retry_counters);
//   serve(registry->prometheus_text());
//
// What each part records (all names begin errand_http_client_):
//   metrics()          requests_total{method,status_class,error_kind}  one per logical request:
//                        status_class "1xx".."5xx" and error_kind "" for a response,
//                        status_class "" and error_kind (to_string(ErrorKind)) for an Error
//                      attempts_total{method}, retries_total{method}   tries the retry layer made
//                                                                       (1 and 0 without one)
//                      fallbacks_total{source}                          responses a fallback made
//                      request_duration_seconds                         the logical request, retries
//                                                                       and backoff included
//                      phase_duration_seconds{phase}                    dns, connect, tls, send, wait,
//                                                                       receive of the response's
//                                                                       last attempt, when non-zero
//   watch_client()     connections{state="open"|"idle"}, connections_opened_total,
//                      connections_reused_total, tls_handshakes_total{resumed="true"|"false"}
//   watch_retries()    retry_budget_exhausted_total                     retries the budget refused
//   breaker_metrics()  breaker_state{origin}  0 closed, 1 open, 2 half-open (an origin appears
//                                             at its first transition)
//                      breaker_transitions_total{origin,to}
// The method label is one of GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH, else
// "other", so that odd methods cannot multiply the series.
// Put the metrics layer outside the resilience layers (first in ClientOptions::middleware)
// to count logical requests: inside the retry layer it would count each attempt.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <errand/http/middleware.hpp>
#include <errand/observe/metrics.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/retry.hpp>

namespace errand::http {
class Client;
}

namespace errand::observe {

// Upper bounds of the duration histograms, in seconds: 0.5 ms to 30 s.
const std::vector<double>& latency_buckets();

// The layer. It keeps the Registry alive; thread-safe, like every layer.
std::shared_ptr<http::Middleware> metrics(std::shared_ptr<Registry> registry);

// Copies a Client's pool figures (Client::stats()) into the Registry at each exposition, as
// long as the returned watch lives. Destroy (or detach()) the watch before the Client: after
// that the collector no longer touches the Client, and the Client's open and idle connections
// are taken out of the gauges. Counters add up what each watched Client did, so several
// Clients may be watched in one Registry. Move-only; an empty watch does nothing.
class ClientWatch {
 public:
  struct State;
  ClientWatch() = default;
  explicit ClientWatch(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ClientWatch(ClientWatch&&) noexcept = default;
  ClientWatch& operator=(ClientWatch&& other) noexcept;
  ~ClientWatch();
  void detach() noexcept;

 private:
  std::shared_ptr<State> state_;
};

[[nodiscard]] ClientWatch watch_client(Registry& registry, http::Client& client);

// Copies a retry layer's budget refusals into the Registry at each exposition; the collector
// keeps `counters` alive. Several retry layers may feed one Registry: their refusals add up.
void watch_retries(Registry& registry, std::shared_ptr<resilience::RetryCounters> counters);

// A BreakerOptions::on_transition that records the breaker's state per origin. It keeps the
// Registry alive. Chain it from your own callback to do more on a transition.
std::function<void(const std::string&, resilience::BreakerState, resilience::BreakerState)> breaker_metrics(
    std::shared_ptr<Registry> registry);

}  // namespace errand::observe
