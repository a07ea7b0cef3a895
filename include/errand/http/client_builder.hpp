// errand/http/client_builder.hpp — Client::Builder: a Client with its policies, each a layer,
// put in the order in which they work together (DESIGN.md's chain), with defaults a caller
// can read in the policy structs and override field by field.
//
//   auto registry = std::make_shared<errand::observe::Registry>();
//   auto client = errand::http::Client::Builder{}
//                     .runtime(runtime)
//                     .retry()                          // RetryPolicy{}: the default tiers
//                     .breaker()                        // BreakerOptions{}
//                     .metrics(registry)
//                     .tracing(tracer)
//                     .build();
//
// The chain, outermost first (each present only when asked for):
//   tracing (logical request span) → metrics → fallback → circuit breaker → idempotency key
//   → retry (with hedging) → the caller's own layers → tracing (one span per attempt) → transport
// Why this order: tracing and metrics see one logical request with everything the policies
// did; the fallback answers for the breaker and for exhausted retries; the breaker counts a
// logical request once, not each retry (an open breaker stops retries too); the idempotency
// key is made once and kept across retries; an attempt span covers what goes on the wire.
// Departure from DESIGN.md: the idempotency layer sits outside the retry layer (DESIGN.md
// lists it inside), because a key made per attempt would defeat its purpose.
//
// Lives in the errand_observe library (it knows every layer); the Client it builds is a
// plain Client. A Builder may build several Clients; each gets its own layers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <errand/http/client.hpp>
#include <errand/observe/client_metrics.hpp>
#include <errand/observe/metrics.hpp>
#include <errand/resilience/breaker.hpp>
#include <errand/resilience/fallback.hpp>
#include <errand/resilience/retry.hpp>

namespace errand::observe {
class Tracer;
}

namespace errand::http {

class Client::Builder {
 public:
  Builder() = default;
  explicit Builder(ClientOptions base);  // pool, TLS, timeouts...: everything but the layers

  Builder& runtime(net::Runtime& runtime);

  Builder& retry(resilience::RetryPolicy policy = {}, resilience::BudgetOptions budget = {});
  Builder& breaker(resilience::BreakerOptions options = {});
  Builder& fallback(resilience::FallbackPolicy policy);
  Builder& idempotency_keys(bool on = true);
  Builder& metrics(std::shared_ptr<observe::Registry> registry);
  Builder& tracing(std::shared_ptr<observe::Tracer> tracer);
  Builder& layer(std::shared_ptr<Middleware> layer);  // the caller's own, inside retry

  // What the built layers count, for reports (errand bench --engine client) and tests.
  const std::shared_ptr<resilience::RetryCounters>& retry_counters() const noexcept { return retry_counters_; }
  const std::shared_ptr<resilience::FallbackCounters>& fallback_counters() const noexcept { return fallback_counters_; }

  // The options with the chain assembled: for a Client made elsewhere.
  ClientOptions options() const;
  Client build() const { return Client(options()); }

 private:
  ClientOptions base_;
  std::optional<std::pair<resilience::RetryPolicy, resilience::BudgetOptions>> retry_;
  std::optional<resilience::BreakerOptions> breaker_;
  std::optional<resilience::FallbackPolicy> fallback_;
  bool idempotency_keys_ = false;
  std::shared_ptr<observe::Registry> registry_;
  std::shared_ptr<observe::Tracer> tracer_;
  std::vector<std::shared_ptr<Middleware>> layers_;
  std::shared_ptr<resilience::RetryCounters> retry_counters_ = std::make_shared<resilience::RetryCounters>();
  std::shared_ptr<resilience::FallbackCounters> fallback_counters_ = std::make_shared<resilience::FallbackCounters>();
};

}  // namespace errand::http
