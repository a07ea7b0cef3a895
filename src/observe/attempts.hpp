// How many tries a logical request sent, as the metrics and tracing layers both report it.
#pragma once

#include <cstddef>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

namespace errand::observe {

// The attempts a retry layer listed; without one, a single try — or none, when a breaker or
// bulkhead failed the request fast and nothing was sent.
inline std::size_t attempts_sent(const Result<http::Response>& outcome) {
  std::size_t listed = outcome ? outcome->attempts.size() : outcome.error().attempts().size();
  if (listed) return listed;
  bool failed_fast = !outcome && (outcome.error().kind() == ErrorKind::circuit_open ||
                                  outcome.error().kind() == ErrorKind::overloaded);
  return failed_fast ? 0 : 1;
}

}  // namespace errand::observe
