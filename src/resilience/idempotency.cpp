#include <errand/resilience/idempotency.hpp>

#include <errand/core/ids.hpp>
#include <errand/resilience/retry.hpp>

namespace errand::resilience {
namespace {

class IdempotencyKeys final : public http::Middleware {
 public:
  boost::asio::awaitable<Result<http::Response>> send(http::Request& request, http::Next next, http::Client&) override {
    if (!is_idempotent(request)) request.headers.add("Idempotency-Key", uuid_v7());
    co_return co_await next(request);
  }
};

}  // namespace

std::shared_ptr<http::Middleware> idempotency_keys() { return std::make_shared<IdempotencyKeys>(); }

}  // namespace errand::resilience
