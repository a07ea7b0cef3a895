#include <errand/http/client_builder.hpp>

#include <errand/observe/tracing.hpp>
#include <errand/resilience/idempotency.hpp>

namespace errand::http {

Client::Builder::Builder(ClientOptions base) : base_(std::move(base)) {}

Client::Builder& Client::Builder::runtime(net::Runtime& runtime) {
  base_.runtime = &runtime;
  return *this;
}

Client::Builder& Client::Builder::retry(resilience::RetryPolicy policy, resilience::BudgetOptions budget) {
  retry_.emplace(std::move(policy), budget);
  return *this;
}

Client::Builder& Client::Builder::breaker(resilience::BreakerOptions options) {
  breaker_ = std::move(options);
  return *this;
}

Client::Builder& Client::Builder::fallback(resilience::FallbackPolicy policy) {
  fallback_ = std::move(policy);
  return *this;
}

Client::Builder& Client::Builder::idempotency_keys(bool on) {
  idempotency_keys_ = on;
  return *this;
}

Client::Builder& Client::Builder::metrics(std::shared_ptr<observe::Registry> registry) {
  // The counters are the Builder's, shared by every Client it builds: one collector per
  // registry serves them.
  if (registry && registry != registry_) observe::watch_retries(*registry, retry_counters_);
  registry_ = std::move(registry);
  return *this;
}

Client::Builder& Client::Builder::tracing(std::shared_ptr<observe::Tracer> tracer) {
  tracer_ = std::move(tracer);
  return *this;
}

Client::Builder& Client::Builder::layer(std::shared_ptr<Middleware> layer) {
  layers_.push_back(std::move(layer));
  return *this;
}

ClientOptions Client::Builder::options() const {
  ClientOptions o = base_;
  o.middleware.clear();
  std::shared_ptr<Middleware> attempt_spans;
  if (tracer_) {
    auto layers = observe::tracing(tracer_);
    o.middleware.push_back(layers.outer);
    attempt_spans = layers.inner;
  }
  if (registry_) {
    o.middleware.push_back(observe::metrics(registry_));
    auto registry = registry_;
    o.companions.push_back([registry](Client& client) -> std::shared_ptr<void> {
      return std::make_shared<observe::ClientWatch>(observe::watch_client(*registry, client));
    });
  }
  if (fallback_) o.middleware.push_back(resilience::fallback(*fallback_, SteadyClock::instance(), fallback_counters_));
  if (breaker_) {
    auto options = *breaker_;
    if (registry_) {
      auto record = observe::breaker_metrics(registry_);
      auto user = options.on_transition;
      options.on_transition = [record, user](const std::string& origin, resilience::BreakerState from,
                                             resilience::BreakerState to) {
        record(origin, from, to);
        if (user) user(origin, from, to);
      };
    }
    o.middleware.push_back(resilience::breaker(std::move(options)));
  }
  if (idempotency_keys_) o.middleware.push_back(resilience::idempotency_keys());
  if (retry_) o.middleware.push_back(resilience::retry(retry_->first, retry_->second, SteadyClock::instance(), retry_counters_));
  for (const auto& layer : layers_) o.middleware.push_back(layer);
  if (attempt_spans) o.middleware.push_back(attempt_spans);
  return o;
}

}  // namespace errand::http
