// errand/http/message.hpp — Request, Response and their parts.
//
//   auto req = Request::make("POST", "https://api.example/v1/items");   // Result<Request>
//   req->headers.add("Content-Type", "application/json");
//   req->body = std::string(R"({"name":"x"})");
//   req->timeouts.total = std::chrono::seconds(5);
//
// A Response always carries its status: a 404 or a 503 is a Response, not an Error (a policy
// or the caller decides what counts as failure). It also carries how long each phase took,
// whether the connection was reused and whether TLS was resumed.
// Both are plain value types: copyable, not synchronised.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <errand/core/error.hpp>
#include <errand/http/headers.hpp>
#include <errand/http/url.hpp>

namespace errand::http {

using Duration = std::chrono::steady_clock::duration;

// Deadlines for one request. Unset fields fall back to the client's defaults
// (ClientOptions::timeouts). Each phase timeout ends the request with an Error of kind
// timeout naming the phase; `total` bounds everything, redirects included.
struct Timeouts {
  std::optional<Duration> total;       // whole request, from send() to the last body byte
  std::optional<Duration> connect;     // DNS + TCP connect + TLS handshake of a new connection
  std::optional<Duration> first_byte;  // from request written to the first response byte
  std::optional<Duration> idle_read;   // longest silence while reading headers or body
};

// A request body read from a file as it is sent (never loaded whole).
struct FileBody {
  std::string path;
};

using RequestBody = std::variant<std::monostate, std::string, FileBody>;

// State that layers attach to a logical request and share across its attempts (a copy of the
// Request shares it), keyed by type, like Go's request context or Rust http's Extensions:
//   request.extensions.insert(std::make_shared<MySpan>(...));
//   if (auto* span = request.extensions.get<MySpan>()) ...
// Never sent on the wire. Not synchronised: one request runs on one worker at a time.
class Extensions {
 public:
  template <class T>
  void insert(std::shared_ptr<T> value) {
    if (Entry* entry = find(tag<T>())) {
      entry->second = std::move(value);
      return;
    }
    // The first few live inline: a request's usual extensions cost no allocation.
    if (inline_used_ < inline_.size()) inline_[inline_used_++] = Entry(tag<T>(), std::move(value));
    else more_.emplace_back(tag<T>(), std::move(value));
  }
  template <class T>
  void erase() noexcept {
    Entry* entry = find(tag<T>());
    if (!entry) return;
    if (entry >= inline_.data() && entry < inline_.data() + inline_used_) {
      // The last inline entry fills the hole, and the first overflow one the last inline place.
      *entry = std::move(inline_[--inline_used_]);
      inline_[inline_used_] = Entry();
      if (!more_.empty()) {
        inline_[inline_used_++] = std::move(more_.front());
        more_.erase(more_.begin());
      }
      return;
    }
    more_.erase(more_.begin() + (entry - more_.data()));
  }
  template <class T>
  T* get() const noexcept {
    const Entry* entry = const_cast<Extensions*>(this)->find(tag<T>());
    return entry ? static_cast<T*>(entry->second.get()) : nullptr;
  }

 private:
  using Entry = std::pair<const void*, std::shared_ptr<void>>;
  template <class T>
  static const void* tag() noexcept {
    static const char unique = 0;
    return &unique;
  }
  Entry* find(const void* key) noexcept {
    for (std::size_t i = 0; i < inline_used_; ++i)
      if (inline_[i].first == key) return &inline_[i];
    for (auto& entry : more_)
      if (entry.first == key) return &entry;
    return nullptr;
  }
  std::array<Entry, 2> inline_{};  // a traced request uses two; each costs every Request a little
  std::size_t inline_used_ = 0;
  std::vector<Entry> more_;
};

struct Request {
  std::string method = "GET";
  Url url;
  Headers headers;
  RequestBody body;
  Timeouts timeouts;                 // per-request overrides
  std::optional<int> max_redirects;  // overrides ClientOptions::max_redirects; 0 = don't follow
  bool allow_https_to_http = false;  // follow redirects that downgrade to plain http
  std::optional<bool> decompress;    // overrides ClientOptions::decompress
  Extensions extensions;             // layers' per-request state (tracing, ...)
  // The W3C trace context of this attempt ("00-<trace id>-<span id>-<flags>"), set by the
  // tracing layers (errand/observe/tracing.hpp). The transport sends it as the `traceparent`
  // header in place of any in `headers`, which keep what the caller gave. Not a field of
  // `headers`: it changes on every attempt of every traced request, and a field would cost
  // two allocations and a validation each time.
  static constexpr std::size_t traceparent_size = 55;  // "00-" trace id "-" span id "-" flags
  std::optional<std::array<char, traceparent_size>> traceparent;

  // Parses the URL and checks the method; errors are of kind config.
  static Result<Request> make(std::string_view method, std::string_view url);
};

// Per-phase durations (zero when the phase did not happen, e.g. dns and connect on a reused
// connection). send = writing the request; wait = written to first response byte;
// receive = first byte to last body byte; total includes redirects.
struct Timings {
  Duration dns{};
  Duration connect{};
  Duration tls{};
  Duration send{};
  Duration wait{};
  Duration receive{};
  Duration total{};
};

// Why a Response did not come from the origin: a fallback layer answered instead
// (errand/resilience/fallback.hpp).
struct FallbackInfo {
  std::string source;  // "last_good" (cached earlier response), "static", "function"
  std::string reason;  // the error that triggered it: "circuit_open: ...", "timeout: ..."
};

// The body of a response that Client::open() returns, not read yet (see Response::unread_body).
struct UnreadBody;

struct Response {
  int status = 0;
  std::string reason;
  int version = 11;  // 10 or 11
  Headers headers;
  std::string body;  // decoded (see Content-Encoding); empty for streamed responses
  // The final URL, after redirects. A Stage (middleware.hpp) sees it empty on the way out
  // unless a redirect was followed: the Client sets it as the response leaves the Stages.
  Url url;
  int redirects = 0;
  Timings timings;
  bool reused = false;       // the connection had served a request before
  bool tls_resumed = false;  // the TLS handshake resumed a cached session
  std::string remote_address;  // "127.0.0.1:8080" / "[::1]:443"
  std::vector<Attempt> attempts;  // with a retry policy: every try, this response's last
  std::optional<FallbackInfo> fallback;  // set when a fallback layer produced this response
  // With Client::open() through layers: the body still on the connection. The transport puts
  // it here so that it passes out through the layers with its head, and open() makes the
  // ResponseStream of it. Opaque: a layer passes it on or drops it (dropping the last copy
  // closes the connection, as a retry does with an attempt it throws away). Null for send()
  // and for a response a layer made (a fallback), whose body is in `body`.
  std::shared_ptr<UnreadBody> unread_body;
};

}  // namespace errand::http
