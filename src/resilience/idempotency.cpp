#include <errand/resilience/idempotency.hpp>

#include <errand/core/ids.hpp>
#include <errand/resilience/retry.hpp>

namespace errand::resilience {
namespace {

struct NoState {};

// Outside retry: every attempt of a request carries the same key.
class IdempotencyKeys final : public http::StageWith<NoState> {
 public:
  Begin before(http::Request& request, NoState&, Result<http::Response>&, http::Client&, BeginContext) override {
    if (!is_idempotent(request)) request.headers.add("Idempotency-Key", uuid_v7());
    return Begin::proceed;
  }
  std::optional<http::Duration> after(http::Request&, NoState&, Result<http::Response>&, http::Client&,
                                      EndContext) override {
    return std::nullopt;
  }
};

}  // namespace

std::shared_ptr<http::Middleware> idempotency_keys() { return std::make_shared<IdempotencyKeys>(); }

}  // namespace errand::resilience
