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
// The request goes through the chain by reference: a chain of layers costs no copies or
// moves of it (each would be a dozen strings).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

namespace errand::http {

class Client;

// The rest of the chain after a layer: the next layer, or past the last one the transport.
// Cheap to copy (three values); valid while the layer's send() runs.
class Next {
 public:
  // Sends `request` on. The request must stay alive, unmoved, until the returned awaitable
  // completes; layers further in may change it (an attempt's deadline or traceparent). The
  // transport never does: redirects are followed on a copy.
  boost::asio::awaitable<Result<Response>> operator()(Request& request) const;

 private:
  friend class Client;
  Next(void* impl, std::size_t index, Client* client) noexcept : impl_(impl), index_(index), client_(client) {}
  void* impl_ = nullptr;  // Client::Impl
  std::size_t index_ = 0;
  Client* client_ = nullptr;
};

// Decisions a layer takes about a request (a retry scheduled, a breaker opening, a fallback
// served) are told to the RequestEvents found in Request::extensions, when a layer further
// out (tracing) put one there: span events without the resilience layers knowing tracing.
using EventValue = std::variant<std::string, std::int64_t, double, bool>;
using EventAttributes = std::vector<std::pair<std::string, EventValue>>;

class RequestEvents {
 public:
  virtual ~RequestEvents() = default;
  virtual void event(std::string_view name, EventAttributes attributes) = 0;
};

// Tells the request's RequestEvents, if any, of an event.
inline void report_event(const Extensions& extensions, std::string_view name, EventAttributes attributes = {}) {
  if (auto* events = extensions.get<RequestEvents>()) events->event(name, std::move(attributes));
}
inline void report_event(const Request& request, std::string_view name, EventAttributes attributes = {}) {
  report_event(request.extensions, name, std::move(attributes));
}

class Middleware {
 public:
  virtual ~Middleware() = default;
  // `request` is the logical request, owned by the Client's outermost frame until send()
  // returns; a layer may change it for the layers further in, or send copies (hedging).
  virtual boost::asio::awaitable<Result<Response>> send(Request& request, Next next, Client& client) = 0;
};

}  // namespace errand::http
