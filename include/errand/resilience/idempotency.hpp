// errand/resilience/idempotency.hpp — Idempotency-Key headers for non-idempotent requests.
//
// The layer gives a request whose method is not idempotent (POST, PATCH, ...) and that has no
// Idempotency-Key an `Idempotency-Key: <UUIDv7>`, once per logical request, which the retry
// layer then keeps across its attempts and which makes the request retryable. A key the user
// set always wins. Off unless added: a server that ignores the header would apply a retried
// POST twice. Place it before (outside) the retry layer — the key must be made once per
// logical request, not once per attempt:
//
//   options.middleware.push_back(errand::resilience::idempotency_keys());
//   options.middleware.push_back(errand::resilience::retry({}));
#pragma once

#include <memory>

#include <errand/http/middleware.hpp>

namespace errand::resilience {

std::shared_ptr<http::Middleware> idempotency_keys();

}  // namespace errand::resilience
