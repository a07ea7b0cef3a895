// errand/http/middleware.hpp — the extension point of the Client: a chain of layers around the
// transport, each seeing a logical request and deciding how to pass it on (DESIGN.md: "a
// policy is a layer, never a flag inside the transport"), like Go's RoundTripper or tower's
// layers. The resilience policies (retries, breakers, ...) are Middleware.
//
//   ClientOptions options;
//   options.middleware.push_back(errand::resilience::retry(errand::resilience::RetryPolicy{}));
//
// Layers run outermost first, in the order of ClientOptions::middleware; the last `next` is
// the transport (pool, connection, redirects, decoding). A layer may call `next` several
// times (retries), not at all (a fallback), or change the request. It runs on the Client's
// worker; it must be thread-safe, as one layer serves every request of its Client.
#pragma once

#include <functional>

#include <boost/asio/awaitable.hpp>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

namespace errand::http {

class Client;

using Next = std::function<boost::asio::awaitable<Result<Response>>(Request)>;

class Middleware {
 public:
  virtual ~Middleware() = default;
  virtual boost::asio::awaitable<Result<Response>> send(Request request, Next next, Client& client) = 0;
};

}  // namespace errand::http
