// errand/http/client.hpp — the asynchronous HTTP client.
//
// One Client holds pooled keep-alive connections per origin (sharded per Runtime worker),
// TLS contexts with a per-origin session cache, a DNS cache, and default deadlines. It is
// meant to be long-lived and shared.
//
//   errand::net::Runtime runtime;
//   errand::http::Client client({.runtime = &runtime});
//   asio::co_spawn(runtime.context(0), [&]() -> asio::awaitable<void> {
//     auto req = errand::http::Request::make("GET", "https://example.test/health");
//     auto res = co_await client.send(std::move(*req));
//     if (!res) log(res.error().describe());              // dns, connect, tls, timeout, ...
//     else      log(res->status, res->timings.total);
//   }, asio::detached);
//
// Streaming: open() returns once the response headers are in; the body is then read piece by
// piece as it arrives, so long chunked or SSE responses are never buffered whole.
//
// Errors (Error::kind): config (bad request: unsupported scheme, header injection, unreadable
// body file, redirect refused), dns, connect, tls, timeout (with the phase), protocol (bad
// framing, header or body over its limit, too many redirects), io (reset, closed), cancelled.
// Cancellation: a terminal cancellation of the awaiting coroutine aborts the request at once
// with kind cancelled; the connection it used is closed, never reused.
// Thread-safety: a Client is thread-safe; send() and open() may run on any worker of its
// Runtime concurrently (coroutines on foreign executors hop to a worker and back).
// The Client must outlive its requests and be destroyed before its Runtime.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>
#include <errand/http/middleware.hpp>
#include <errand/net/runtime.hpp>

namespace errand::http {

struct PoolOptions {
  std::size_t max_per_origin = 100;      // open connections per origin (idle + busy)
  std::size_t max_total = 0;             // open connections in all; 0 = no limit
  Duration idle_timeout = std::chrono::seconds(90);
  Duration max_lifetime{};               // 0 = unlimited
  Duration wait_timeout = std::chrono::seconds(30);  // waiting for a free slot at the limit
};

struct TlsOptions {
  bool insecure = false;      // skip certificate and hostname verification (explicit opt-in)
  std::string ca_file;        // extra trusted CAs (PEM), besides the system store
  std::string cert_file;      // client certificate (PEM) for mutual TLS
  std::string key_file;
  bool session_cache = true;  // resume sessions per origin
};

struct ClientOptions {
  net::Runtime* runtime = nullptr;  // null: the default runtime
  PoolOptions pool;
  TlsOptions tls;
  Timeouts timeouts{.total = std::nullopt,
                    .connect = std::chrono::seconds(10),
                    .first_byte = std::chrono::seconds(60),
                    .idle_read = std::chrono::seconds(60)};
  std::size_t max_header_bytes = 1 << 20;     // response header block
  std::size_t max_body_bytes = 256u << 20;    // buffered body in send(); open() has no limit
  int max_redirects = 10;
  bool decompress = true;                     // send Accept-Encoding and decode the body
  std::string user_agent = "errand/0.1";
  Duration dns_cache_ttl = std::chrono::seconds(30);
  Duration happy_eyeballs_delay = std::chrono::milliseconds(250);
  // Layers around send() and open(), outermost first (errand/http/middleware.hpp).
  std::vector<std::shared_ptr<Middleware>> middleware;
  // Made with the Client and destroyed first when it goes (before its connections close):
  // what must watch a Client for exactly its lifetime, such as a metrics collector.
  std::vector<std::function<std::shared_ptr<void>(Client&)>> companions;
};

struct PoolStats {
  std::uint64_t opened = 0;           // connections established
  std::uint64_t reused = 0;           // requests served on an already used connection
  std::uint64_t requests = 0;         // requests that got a connection
  std::uint64_t closed = 0;
  std::uint64_t tls_full_handshakes = 0;
  std::uint64_t tls_resumed_handshakes = 0;
  std::uint64_t transparent_retries = 0;  // requests replayed after a stale keep-alive connection
  std::uint64_t open_now = 0;
  std::uint64_t idle_now = 0;
  double reuse_rate() const { return requests ? static_cast<double>(reused) / requests : 0.0; }
};

// What Client::shutdown found and did.
struct ShutdownReport {
  std::size_t in_flight = 0;      // logical requests running when it was called
  std::size_t finished = 0;       // of those, ended within the grace period
  std::size_t cancelled = 0;      // cut off when the grace period was over
  std::size_t still_running = 0;  // in DNS or TCP connect 5 s after the cut-off (see shutdown)
};

class ResponseStream;

class Client {
 public:
  // Assembles the policies into a chain in the right order: errand/http/client_builder.hpp.
  class Builder;

  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and reads the whole (decoded) body into Response::body, following
  // redirects. A body over max_body_bytes fails with kind protocol.
  boost::asio::awaitable<Result<Response>> send(Request request);

  // Sends the request and returns once the response headers are in (after redirects).
  // Through the layers like send(): they see the response when its head is in, with the body
  // still unread (Response::unread_body), so a retry retries until a head is accepted, and a
  // metric or span measures the time to the head. Reading the body is the caller's, after the
  // layers: a body that fails half-way is not retried. A response a layer made (a fallback)
  // is streamed from its `body`.
  boost::asio::awaitable<Result<ResponseStream>> open(Request request);

  // Stops the client: new send() and open() fail at once with kind cancelled; requests in
  // flight (with their retries) may finish within `grace`; then the rest are cut off — their
  // connections closed, their waits for a connection and their pauses (retry backoff) ended —
  // and fail with kind cancelled ("the client shut down ..."); idle connections are closed.
  // DNS resolution and TCP connect are not interrupted: they end by their own deadlines, and
  // a request still in them 5 s after the cut-off is reported in still_running.
  // Blocks, so it must not run on a worker of the client's Runtime (std::logic_error).
  ShutdownReport shutdown(Duration grace);
  bool shutting_down() const noexcept;

  // Sleeps for `duration` on behalf of a layer (a retry's backoff): ends early with kind
  // cancelled when the caller cancels ("... while waiting to retry") or shutdown cuts the
  // client's requests off.
  boost::asio::awaitable<Result<void>> pause(Duration duration);

  PoolStats stats() const;
  // Drops the cached TLS session of the URL's origin: the next connection handshakes in full
  // (a retry after a TLS failure should not offer the session that may have caused it).
  void forget_tls_session(const Url& url);
  const ClientOptions& options() const noexcept;
  net::Runtime& runtime() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::vector<std::shared_ptr<void>> companions_;
};

// A response whose body is read as it arrives. Move-only. Destroying it before the end of the
// body closes the connection; reading to the end returns it to the pool.
class ResponseStream {
 public:
  class Source;  // implementation detail
  ResponseStream() = default;  // an empty, finished stream
  ResponseStream(Response&& head, std::unique_ptr<Source> source);
  ResponseStream(ResponseStream&&) noexcept;
  ResponseStream& operator=(ResponseStream&&) noexcept;
  ~ResponseStream();

  // Status, headers, timings so far (receive and total are final once the body has ended).
  const Response& response() const noexcept { return head_; }
  Response& response() noexcept { return head_; }

  // The next piece of the decoded body: an empty view means the body has ended. The view
  // stays valid until the next call. Errors: timeout (read), io, protocol, cancelled.
  boost::asio::awaitable<Result<std::string_view>> read();

  // Reads the rest of the body into response().body (at most `limit` bytes, else protocol).
  boost::asio::awaitable<Result<void>> read_all(std::size_t limit);

  bool finished() const noexcept;

 private:
  friend class Client;
  boost::asio::awaitable<Result<void>> read_all_here(std::size_t limit);

  Response head_;
  std::unique_ptr<Source> source_;
};

}  // namespace errand::http
