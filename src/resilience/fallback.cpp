#include <errand/resilience/fallback.hpp>

#include <algorithm>

namespace errand::resilience {

namespace {

std::string cache_key(const http::Request& request) { return request.method + ' ' + request.url.to_string(); }

bool cacheable(const http::Request& request) { return request.method == "GET" || request.method == "HEAD"; }

std::size_t weight(const http::Response& response) {
  std::size_t bytes = response.body.size() + response.reason.size();
  for (const auto& field : response.headers) bytes += field.name.size() + field.value.size();
  return bytes;
}

}  // namespace

LastGoodCache::LastGoodCache(std::size_t max_entries, std::size_t max_body_bytes, std::size_t max_total_bytes)
    : max_entries_(max_entries), max_body_bytes_(max_body_bytes), max_total_bytes_(max_total_bytes) {}

void LastGoodCache::store(const http::Request& request, const http::Response& response, Clock::time_point now) {
  if (!cacheable(request) || response.status < 200 || response.status > 299) return;
  if (response.unread_body) return;  // opened as a stream: the body is not known here
  if (response.fallback || response.body.size() > max_body_bytes_ || max_entries_ == 0) return;
  std::size_t size = weight(response);
  if (size > max_total_bytes_) return;
  std::string key = cache_key(request);
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= weight(it->second->response);
    entries_.erase(it->second);
    index_.erase(it);
  }
  while (!entries_.empty() && (entries_.size() >= max_entries_ || bytes_ + size > max_total_bytes_)) evict_oldest();
  http::Response kept = response;
  kept.attempts.clear();
  entries_.push_back(Entry{key, std::move(kept), now});
  index_.emplace(std::move(key), std::prev(entries_.end()));
  bytes_ += size;
}

void LastGoodCache::evict_oldest() {
  bytes_ -= weight(entries_.front().response);
  index_.erase(entries_.front().key);
  entries_.pop_front();
}

std::optional<http::Response> LastGoodCache::find(const http::Request& request, Clock::time_point now,
                                                  std::optional<std::chrono::nanoseconds> max_age) const {
  if (!cacheable(request)) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = index_.find(cache_key(request));
  if (it == index_.end()) return std::nullopt;
  if (max_age && now - it->second->stored_at > *max_age) return std::nullopt;
  return it->second->response;
}

std::size_t LastGoodCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t LastGoodCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

namespace {

struct FallbackCall {
  const FallbackPolicy* policy = nullptr;
};

class FallbackLayer final : public http::StageWith<FallbackCall> {
 public:
  FallbackLayer(FallbackPolicy policy, const Clock& clock, std::shared_ptr<FallbackCounters> counters)
      : policy_(std::move(policy)),
        clock_(clock),
        counters_(std::move(counters)),
        cache_(policy_.max_entries, policy_.max_body_bytes, policy_.max_total_bytes) {}

  Begin before(http::Request& request, FallbackCall& call, Result<http::Response>&, http::Client&,
               BeginContext) override {
    // A policy of the request's own (Request::extensions) wins over the layer's; the
    // last-good cache is the layer's either way.
    const FallbackPolicy* own = request.extensions.get<FallbackPolicy>();
    call.policy = own ? own : &policy_;
    return Begin::proceed;
  }

  std::optional<http::Duration> after(http::Request& request, FallbackCall& call, Result<http::Response>& outcome,
                                      http::Client&, EndContext context) override {
    const FallbackPolicy& policy = *call.policy;
    auto why = trigger(policy, outcome);
    if (!why) {
      if (outcome && policy.last_good) cache_.store(request, *outcome, time_on(clock_, context.now));
      return std::nullopt;
    }
    if (auto answer = answer_for(policy, request, *why)) {
      answer->attempts = outcome ? std::move(outcome->attempts) : outcome.error().attempts();
      http::report_event(request, "fallback", {{"fallback.source", answer->fallback->source},
                                               {"fallback.reason", answer->fallback->reason}});
      if (counters_) counters_->served.fetch_add(1, std::memory_order_relaxed);
      outcome = std::move(*answer);
      return std::nullopt;
    }
    if (counters_) counters_->unanswered.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

 private:
  // The failure that calls for a fallback, or nullopt when the outcome stands.
  static std::optional<Error> trigger(const FallbackPolicy& policy, const Result<http::Response>& outcome) {
    if (!outcome) {
      const auto& kinds = policy.on_kinds;
      if (std::find(kinds.begin(), kinds.end(), outcome.error().kind()) == kinds.end()) return std::nullopt;
      return outcome.error();
    }
    const auto& statuses = policy.on_statuses;
    if (std::find(statuses.begin(), statuses.end(), outcome->status) == statuses.end()) return std::nullopt;
    return Error(ErrorKind::http_status, "status " + std::to_string(outcome->status));
  }

  std::optional<http::Response> answer_for(const FallbackPolicy& policy, const http::Request& request,
                                           const Error& why) const {
    std::string reason = std::string(to_string(why.kind())) + ": " + why.message().substr(0, 200);
    auto mark = [&](http::Response response, const char* source) {
      response.fallback = http::FallbackInfo{source, reason};
      if (response.url.host().empty()) response.url = request.url;
      return response;
    };
    if (policy.function) {
      auto answer = policy.function(request, why);
      if (answer) return mark(std::move(*answer), "function");
    }
    if (policy.last_good) {
      if (auto answer = cache_.find(request, clock_.now(), policy.max_age)) return mark(std::move(*answer), "last_good");
    }
    if (policy.static_response) return mark(*policy.static_response, "static");
    return std::nullopt;
  }

  FallbackPolicy policy_;
  const Clock& clock_;
  std::shared_ptr<FallbackCounters> counters_;
  LastGoodCache cache_;
};

}  // namespace

std::shared_ptr<http::Middleware> fallback(FallbackPolicy policy, const Clock& clock,
                                           std::shared_ptr<FallbackCounters> counters) {
  return std::make_shared<FallbackLayer>(std::move(policy), clock, std::move(counters));
}

}  // namespace errand::resilience
