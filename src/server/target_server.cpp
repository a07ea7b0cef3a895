// The target server: one acceptor, N worker threads each running its own io_context, and one
// coroutine per connection. Accepted sockets are handed round-robin to the workers; from then
// on a connection, its timer and its registry entry belong to that worker's thread alone.
//
// stop() posts to every worker a job that closes its connections and cancels their timers,
// so each coroutine sees an error at its current co_await and returns; then the threads run
// out of work and are joined. Should anything still hang after a grace period, the
// io_contexts are stopped and destroyed, which destroys whatever coroutine frames remain.
#include "server/target_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <brotli/encode.h>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <zlib.h>
#include <zstd.h>

#include "server/self_signed.hpp"

namespace errand::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Every co_await reports failure as a value: the network failing is normal here.
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view server_header = "errand-target";
constexpr std::uint64_t request_body_limit = 1 << 20;
constexpr std::uint64_t max_wait_ms = 60'000;  // /delay, intervals, /drip durations
constexpr std::uint64_t max_bytes = std::uint64_t{1} << 30;
constexpr std::uint64_t max_header_kib = 16384;
constexpr std::uint64_t max_events = 100'000;
constexpr std::uint64_t max_redirects = 1'000'000;
constexpr std::uint64_t default_chunk_size = 16 * 1024;
constexpr std::uint64_t max_chunk_size = 1 << 20;
constexpr std::uint64_t reset_promised_bytes = 1 << 20;
constexpr std::uint64_t reset_sent_bytes = 1024;
constexpr std::size_t max_flaky_keys = 10'000;
constexpr std::size_t max_flaky_key_length = 256;
constexpr std::size_t max_trace_exports = 1000;  // /v1/traces keeps the newest ones
// How long a closing connection waits for the client to read our last response and hang up;
// closing earlier with unread request bytes would send an RST that can destroy that response.
constexpr std::chrono::milliseconds linger_timeout{1000};
constexpr std::uint64_t linger_max_bytes = 1 << 20;
constexpr std::chrono::milliseconds stop_grace{500};

// ---------------------------------------------------------------------------------------------
// Endpoints and request targets

enum class Endpoint {
  ok, status, delay, bytes, stream, sse, drip, reset, close, headers, redirect, redirect_to,
  gzip, deflate, brotli, zstd, flaky, echo, metrics, idempotent, traces, other,
};
constexpr std::size_t endpoint_count = static_cast<std::size_t>(Endpoint::other) + 1;
// Indexed by Endpoint; also the first path segment and the `endpoint` label in /metrics.
constexpr std::array<std::string_view, endpoint_count> endpoint_names = {
    "ok", "status", "delay", "bytes", "stream", "sse", "drip", "reset", "close", "headers",
    "redirect", "redirect-to", "gzip", "deflate", "brotli", "zstd", "flaky", "echo", "metrics",
    "idempotent", "traces", "other",
};

bool takes_path_argument(Endpoint e) {
  switch (e) {
    case Endpoint::status: case Endpoint::delay: case Endpoint::bytes: case Endpoint::stream:
    case Endpoint::sse: case Endpoint::headers: case Endpoint::redirect:
      return true;
    default:
      return false;
  }
}

struct Target {
  Endpoint endpoint = Endpoint::other;  // by first path segment, for metrics
  bool routed = false;                  // the path has the endpoint's shape; otherwise 404
  std::string_view path;
  std::string_view query;     // raw, without '?'
  std::string_view argument;  // "503" in /status/503
};

Target parse_target(std::string_view target) {
  Target t;
  std::size_t question = target.find('?');
  t.path = target.substr(0, question);
  if (question != std::string_view::npos) t.query = target.substr(question + 1);
  if (t.path.empty() || t.path.front() != '/') return t;

  // The OTLP collector's path, not a first segment like the others.
  if (t.path == "/v1/traces") {
    t.endpoint = Endpoint::traces;
    t.routed = true;
    return t;
  }
  std::string_view rest = t.path.substr(1);
  std::size_t slash = rest.find('/');
  std::string_view first = rest.substr(0, slash);
  for (std::size_t i = 0; i + 1 < endpoint_count; ++i)
    if (endpoint_names[i] == first && static_cast<Endpoint>(i) != Endpoint::traces)
      t.endpoint = static_cast<Endpoint>(i);
  if (t.endpoint == Endpoint::other) return t;

  if (!takes_path_argument(t.endpoint)) {
    t.routed = slash == std::string_view::npos;
  } else if (slash != std::string_view::npos) {
    t.argument = rest.substr(slash + 1);
    t.routed = !t.argument.empty() && t.argument.find('/') == std::string_view::npos;
  }
  return t;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Form decoding: '+' is a space, %XX a byte; a malformed escape is kept as written.
std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
               hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t max) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > max)
    return std::nullopt;
  return value;
}

// The query parameter as a number in [min, max], or `fallback` when absent. nullopt when it is
// present but not such a number, which the endpoint answers with 400.
std::optional<std::uint64_t> query_uint(std::string_view query, std::string_view name,
                                        std::uint64_t fallback, std::uint64_t min,
                                        std::uint64_t max) {
  std::optional<std::string> text = query_param(query, name);
  if (!text) return fallback;
  std::optional<std::uint64_t> value = parse_uint(*text, max);
  if (value && *value < min) return std::nullopt;
  return value;
}

// `?chunked`, `?chunked=1`, `?chunked=true` are on; absent or anything else is off.
bool query_flag(std::string_view query, std::string_view name) {
  std::optional<std::string> value = query_param(query, name);
  return value && (value->empty() || *value == "1" || *value == "true" || *value == "yes");
}

// A value we copy from the request into a response header must not be able to end the header
// early (CR, LF) or carry other control characters.
bool header_safe(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// ---------------------------------------------------------------------------------------------
// Payloads

// Byte i of every generated body is 'a' + i % 26. Bodies are written as windows into this one
// block (period 26, so any offset maps into its first 26 bytes), never allocated per request.
constexpr std::size_t pattern_block_size = 1 << 20;

asio::const_buffer pattern(std::uint64_t offset, std::size_t length) {
  static const std::string block = [] {
    std::string s(pattern_block_size + 26, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
  }();
  return asio::buffer(block.data() + offset % 26, std::min(length, pattern_block_size));
}

std::optional<std::string> zlib_compress(std::string_view in, int window_bits) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return std::nullopt;
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

std::optional<std::string> brotli_compress(std::string_view in) {
  std::size_t size = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(size, '\0');
  if (!BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT,
                             in.size(), reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                             reinterpret_cast<std::uint8_t*>(out.data())))
    return std::nullopt;
  out.resize(size);
  return out;
}

std::optional<std::string> zstd_compress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  std::size_t size = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  if (ZSTD_isError(size)) return std::nullopt;
  out.resize(size);
  return out;
}

struct Encoded {
  std::string_view content_encoding;
  std::size_t plain_size = 0;
  std::optional<std::string> body;  // nullopt if the compressor failed
};

// The bodies of /gzip, /deflate, /brotli and /zstd: computed once, they never change.
const Encoded& encoded_sample(Endpoint e) {
  static const std::array<Encoded, 4> samples = [] {
    auto plain = [](std::string_view encoding) {
      std::string data;
      for (int i = 0; i < 100; ++i) data += "The quick brown fox jumps over the lazy dog. ";
      return nlohmann::ordered_json{{"encoding", encoding}, {"data", data}}.dump();
    };
    std::string gzip = plain("gzip"), deflate = plain("deflate"), br = plain("br"),
                zstd = plain("zstd");
    return std::array<Encoded, 4>{
        Encoded{"gzip", gzip.size(), zlib_compress(gzip, 15 + 16)},  // +16: gzip wrapper
        Encoded{"deflate", deflate.size(), zlib_compress(deflate, 15)},  // zlib wrapper, RFC 9110
        Encoded{"br", br.size(), brotli_compress(br)},
        Encoded{"zstd", zstd.size(), zstd_compress(zstd)},
    };
  }();
  return samples[static_cast<std::size_t>(e) - static_cast<std::size_t>(Endpoint::gzip)];
}

// ---------------------------------------------------------------------------------------------
// State shared by all workers

struct Shared {
  TargetOptions options;
  std::unique_ptr<asio::ssl::context> tls;  // null without tls
  std::string scheme = "http";
  std::string authority;  // host:port as bound; absolute URLs use it when a request has no Host

  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_active{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> tls_handshakes{0};  // completed, full and resumed
  std::atomic<std::uint64_t> tls_resumed{0};
  std::array<std::atomic<std::uint64_t>, endpoint_count> requests_by_endpoint{};

  std::mutex flaky_mutex;
  std::unordered_map<std::string, std::uint64_t> flaky_calls;  // guarded by flaky_mutex

  // /idempotent, guarded by idempotent_mutex: applications per counter; per key, the first
  // response (replayed until it expires) and how many calls carried the key.
  struct IdempotencyRecord {
    std::string body;
    std::chrono::steady_clock::time_point expires;
    std::uint64_t calls = 0;
  };
  std::mutex idempotent_mutex;
  std::unordered_map<std::string, std::uint64_t> applications;
  std::unordered_map<std::string, IdempotencyRecord> idempotency_records;
  std::unordered_map<std::string, std::uint64_t> keyless_calls;  // per counter

  std::mutex traces_mutex;
  std::deque<std::string> trace_exports;           // /v1/traces POST bodies (JSON), guarded by traces_mutex
  std::deque<std::string> trace_exports_protobuf;  // and those in protobuf
};

class Connection;

struct Worker {
  // Touched only on this worker's thread.
  std::unordered_set<Connection*> connections;
  bool stopping = false;
  // Declared after the registry: destroying the io_context destroys leftover coroutine frames,
  // whose Connections unregister themselves.
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
};

// What stop() needs to interrupt one connection wherever its coroutine is suspended: the
// socket (for reads and writes) and the timer (for /delay, /stream, /drip pauses).
class Connection {
 public:
  Connection(Worker& worker, beast::tcp_stream& tcp)
      : worker_(worker), tcp_(tcp), timer_(tcp.get_executor()) {
    worker_.connections.insert(this);
  }
  ~Connection() { worker_.connections.erase(this); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  beast::tcp_stream& tcp() { return tcp_; }
  bool closing() const { return closing_; }

  void close() noexcept {
    closing_ = true;
    timer_.cancel();
    tcp_.close();
  }

  // False when the connection is being closed: the caller stops and returns.
  asio::awaitable<bool> sleep_until(Clock::time_point when) {
    if (closing_) co_return false;
    timer_.expires_at(when);
    auto [ec] = co_await timer_.async_wait(nothrow);
    co_return !ec && !closing_;
  }

 private:
  Worker& worker_;
  beast::tcp_stream& tcp_;
  asio::steady_timer timer_;
  bool closing_ = false;
};

// ---------------------------------------------------------------------------------------------
// Responses with a complete body

Response make_response(const Request& req, unsigned status, std::string body,
                       std::string_view content_type = "text/plain") {
  Response res;
  res.version(req.version());
  res.result(status);
  if (http::obsolete_reason(res.result()) == "<unknown-status>") res.reason("Unknown");
  res.set(http::field::server, server_header);
  res.keep_alive(req.keep_alive());
  // 204 and 304 carry neither a body nor a Content-Length.
  if (status != 204 && status != 304) {
    res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    res.prepare_payload();
  }
  return res;
}

std::string reason_phrase(unsigned status) {
  return std::string(http::obsolete_reason(http::int_to_status(status)));
}

Response bad_request(const Request& req, std::string_view why) {
  return make_response(req, 400, "bad request: " + std::string(why) + "\n");
}

std::string must_be(std::string_view what, std::uint64_t min, std::uint64_t max,
                    std::string_view unit = {}) {
  std::string text = std::string(what) + " must be an integer from " + std::to_string(min) +
                     " to " + std::to_string(max);
  if (!unit.empty()) text.append(" (").append(unit).append(")");
  return text;
}

Response status_endpoint(const Request& req, const Target& t) {
  std::optional<std::uint64_t> code = parse_uint(t.argument, 599);
  if (!code || *code < 200) return bad_request(req, must_be("status", 200, 599));
  auto status = static_cast<unsigned>(*code);
  std::string body = std::to_string(status) + " " + reason_phrase(status) + "\n";
  Response res = make_response(req, status, std::move(body));
  if (std::optional<std::string> retry_after = query_param(t.query, "retry_after")) {
    if (retry_after->empty() || !header_safe(*retry_after))
      return bad_request(req, "retry_after must be a number of seconds or an HTTP date");
    res.set(http::field::retry_after, *retry_after);
  }
  return res;
}

// The whole response of /headers/{kib}, formatted here rather than by Beast's serializer,
// which walks its list of fields once per write: quadratic for the thousands of fields sent.
std::string filler_response(const Request& req, std::uint64_t kib, bool head) {
  std::string out = req.version() == 10 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n";
  out.reserve(kib * 1024 + 256);
  out.append("Server: ").append(server_header).append("\r\n");
  out += "Content-Type: text/plain\r\nContent-Length: 3\r\n";
  if (req.version() == 10 && req.keep_alive()) out += "Connection: keep-alive\r\n";
  if (req.version() != 10 && !req.keep_alive()) out += "Connection: close\r\n";
  for (std::uint64_t i = 0; i < kib; ++i) {
    std::string name = "X-Filler-" + std::to_string(i);
    // name + ": " + value + "\r\n" makes one KiB on the wire.
    std::size_t value_size = 1024 - name.size() - 4;
    asio::const_buffer value = pattern(i, value_size);
    out.append(name).append(": ");
    out.append(static_cast<const char*>(value.data()), value_size).append("\r\n");
  }
  out += "\r\n";
  if (!head) out += "ok\n";
  return out;
}

std::string origin_of(const Shared& shared, const Request& req) {
  std::string_view host = req[http::field::host];
  if (host.empty() || !header_safe(host) || host.find_first_of(" /?#@") != std::string_view::npos)
    host = shared.authority;
  return shared.scheme + "://" + std::string(host);
}

Response redirect_endpoint(const Shared& shared, const Request& req, const Target& t) {
  std::optional<std::uint64_t> n = parse_uint(t.argument, max_redirects);
  if (!n) return bad_request(req, must_be("redirect count", 0, max_redirects));
  bool absolute = query_flag(t.query, "absolute");
  std::string location =
      *n > 1 ? "/redirect/" + std::to_string(*n - 1) + (absolute ? "?absolute=1" : "") : "/ok";
  if (absolute) location = origin_of(shared, req) + location;
  Response res = make_response(req, 302, "redirecting to " + location + "\n");
  res.set(http::field::location, location);
  return res;
}

Response redirect_to_endpoint(const Request& req, const Target& t) {
  std::optional<std::string> url = query_param(t.query, "url");
  if (!url || url->empty() || !header_safe(*url))
    return bad_request(req, "url is required (percent-encoded, without control characters)");
  std::optional<std::uint64_t> status = query_uint(t.query, "status", 302, 300, 399);
  if (!status) return bad_request(req, must_be("status", 300, 399));
  Response res =
      make_response(req, static_cast<unsigned>(*status), "redirecting to " + *url + "\n");
  res.set(http::field::location, *url);
  return res;
}

Response encoded_endpoint(const Request& req, const Target& t) {
  const Encoded& sample = encoded_sample(t.endpoint);
  if (!sample.body) return make_response(req, 500, "compression failed\n");
  Response res = make_response(req, 200, *sample.body, "application/json");
  res.set(http::field::content_encoding, sample.content_encoding);
  res.set(http::field::vary, "Accept-Encoding");
  res.set("X-Uncompressed-Length", std::to_string(sample.plain_size));
  return res;
}

Response flaky_endpoint(Shared& shared, const Request& req, const Target& t) {
  std::optional<std::uint64_t> fail_count = query_uint(t.query, "fail", 1, 0, 1'000'000'000);
  if (!fail_count) return bad_request(req, must_be("fail", 0, 1'000'000'000));
  std::string key = query_param(t.query, "key").value_or("default");
  if (key.size() > max_flaky_key_length)
    return bad_request(req, "key must be at most 256 bytes");
  std::optional<std::string> retry_after = query_param(t.query, "retry_after");
  if (retry_after && (retry_after->empty() || !header_safe(*retry_after)))
    return bad_request(req, "retry_after must be a number of seconds or an HTTP date");

  std::uint64_t call = 0;
  {
    std::lock_guard lock(shared.flaky_mutex);
    auto it = shared.flaky_calls.find(key);
    if (it == shared.flaky_calls.end()) {
      // Bounded so a client inventing keys cannot grow the server without limit.
      if (shared.flaky_calls.size() >= max_flaky_keys)
        return bad_request(req, "too many flaky keys");
      it = shared.flaky_calls.emplace(key, 0).first;
    }
    call = ++it->second;
  }
  Response res = call <= *fail_count
                     ? make_response(req, 503, "flaky: failing " + std::to_string(call) + "/" +
                                                   std::to_string(*fail_count) + "\n")
                     : make_response(req, 200, "ok\n");
  res.set("X-Flaky-Call", std::to_string(call));
  if (retry_after && call <= *fail_count) res.set(http::field::retry_after, *retry_after);
  return res;
}

Response echo_endpoint(const Request& req, const Target& t) {
  nlohmann::ordered_json headers = nlohmann::ordered_json::array();
  for (const auto& field : req)
    headers.push_back({std::string(field.name_string()), std::string(field.value())});
  nlohmann::ordered_json body = {
      {"method", std::string(req.method_string())},
      {"target", std::string(req.target())},
      {"path", std::string(t.path)},
      {"query", std::string(t.query)},
      {"version", req.version() == 10 ? "1.0" : "1.1"},
      {"headers", std::move(headers)},
      {"body", req.body()},
      {"body_bytes", req.body().size()},
  };
  // Bodies need not be UTF-8; replace what is not instead of failing (body_bytes stays exact).
  std::string text = body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return make_response(req, 200, text + "\n", "application/json");
}

// A collector for OTLP/HTTP exports, so that tests and demos need no OpenTelemetry Collector:
// POST keeps the body (the newest max_trace_exports of each encoding), GET lists the JSON ones,
// GET ?protobuf=N answers the Nth kept protobuf body as it came, DELETE forgets them all. A
// protobuf body is kept unread: tests decode it with Google's protobuf library.
Response traces_endpoint(Shared& shared, const Request& req, const Target& t) {
  auto keep = [&shared](std::deque<std::string>& kept, std::string body) {
    std::lock_guard lock(shared.traces_mutex);
    if (kept.size() >= max_trace_exports) kept.pop_front();
    kept.push_back(std::move(body));
  };
  if (req.method() == http::verb::post) {
    std::string_view type = req[http::field::content_type];
    if (type.find("application/x-protobuf") != std::string_view::npos) {
      keep(shared.trace_exports_protobuf, req.body());
      return make_response(req, 200, "", "application/x-protobuf");
    }
    if (type.find("application/json") == std::string_view::npos)
      return make_response(req, 415, "OTLP/HTTP here is application/json or application/x-protobuf\n");
    auto body = nlohmann::ordered_json::parse(req.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) return bad_request(req, "the body is not a JSON object");
    keep(shared.trace_exports, req.body());  // checked above: kept as it came
    return make_response(req, 200, "{}", "application/json");
  }
  if (req.method() == http::verb::delete_) {
    std::lock_guard lock(shared.traces_mutex);
    shared.trace_exports.clear();
    shared.trace_exports_protobuf.clear();
    return make_response(req, 200, "{}", "application/json");
  }
  if (query_param(t.query, "protobuf")) {
    std::optional<std::uint64_t> index = query_uint(t.query, "protobuf", 0, 0, max_trace_exports);
    if (!index) return bad_request(req, "protobuf= takes the index of a kept protobuf export");
    std::lock_guard lock(shared.traces_mutex);
    if (*index >= shared.trace_exports_protobuf.size())
      return make_response(req, 404, "no protobuf export " + std::to_string(*index) + "\n");
    return make_response(req, 200, shared.trace_exports_protobuf[*index], "application/x-protobuf");
  }
  std::lock_guard lock(shared.traces_mutex);
  std::string out = "[";
  for (const auto& body : shared.trace_exports) {
    if (out.size() > 1) out += ',';
    out += body;
  }
  out += "]\n";
  return make_response(req, 200, std::move(out), "application/json");
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

Response metrics_endpoint(const Shared& shared, const Request& req) {
  std::string out;
  metric(out, "errand_target_connections_accepted_total", "counter", "Connections accepted.");
  out += "errand_target_connections_accepted_total " +
         std::to_string(shared.connections_accepted.load()) + "\n";
  metric(out, "errand_target_connections_active", "gauge", "Connections currently open.");
  out += "errand_target_connections_active " + std::to_string(shared.connections_active.load()) +
         "\n";
  metric(out, "errand_target_requests_total", "counter",
         "Requests read, by endpoint (first path segment).");
  for (std::size_t i = 0; i < endpoint_count; ++i) {
    out.append("errand_target_requests_total{endpoint=\"").append(endpoint_names[i]).append("\"} ");
    out += std::to_string(shared.requests_by_endpoint[i].load()) + "\n";
  }
  metric(out, "errand_target_tls_handshakes_total", "counter",
         "Completed TLS handshakes, by whether the session was resumed.");
  std::uint64_t all = shared.tls_handshakes.load();
  std::uint64_t resumed = std::min(shared.tls_resumed.load(), all);  // two loads, not a snapshot
  std::uint64_t full = all - resumed;
  out += "errand_target_tls_handshakes_total{resumed=\"false\"} " + std::to_string(full) + "\n";
  out += "errand_target_tls_handshakes_total{resumed=\"true\"} " + std::to_string(resumed) + "\n";
  return make_response(req, 200, std::move(out), "text/plain; version=0.0.4; charset=utf-8");
}

// The endpoints whose whole response is known before the first byte is written.
Response complete_response(Shared& shared, const Request& req, const Target& t) {
  if (t.routed) {
    switch (t.endpoint) {
      case Endpoint::ok: return make_response(req, 200, "ok\n");
      case Endpoint::status: return status_endpoint(req, t);
      case Endpoint::redirect: return redirect_endpoint(shared, req, t);
      case Endpoint::redirect_to: return redirect_to_endpoint(req, t);
      case Endpoint::gzip: case Endpoint::deflate: case Endpoint::brotli: case Endpoint::zstd:
        return encoded_endpoint(req, t);
      case Endpoint::flaky: return flaky_endpoint(shared, req, t);
      case Endpoint::echo: return echo_endpoint(req, t);
      case Endpoint::metrics: return metrics_endpoint(shared, req);
      case Endpoint::traces: return traces_endpoint(shared, req, t);
      default: break;
    }
  }
  return make_response(req, 404, "not found: " + std::string(t.path) + "\n");
}

// ---------------------------------------------------------------------------------------------
// One connection

enum class After { keep_alive, close, reset };

template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, TlsStream>;

template <class Stream>
class Session {
 public:
  Session(Shared& shared, Connection& conn, Stream& stream)
      : shared_(shared), conn_(conn), stream_(stream) {}

  asio::awaitable<void> run() {
    After after = After::keep_alive;
    while (after == After::keep_alive && !conn_.closing()) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(
          std::min<std::size_t>(shared_.options.max_header_bytes, UINT32_MAX)));
      parser.body_limit(request_body_limit);
      beast::error_code ec;
      std::size_t n = 0;
      // One deadline for idling and for the whole request: a slowloris client that trickles
      // its headers is closed like an idle one.
      conn_.tcp().expires_after(shared_.options.read_timeout);
      std::tie(ec, n) = co_await http::async_read_header(stream_, buffer_, parser, nothrow);
      if (!ec && !parser.is_done() && parser.get().version() >= 11 &&
          beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        std::tie(ec, n) = co_await http::async_write(stream_, go_on, nothrow);
      }
      if (!ec) std::tie(ec, n) = co_await http::async_read(stream_, buffer_, parser, nothrow);
      conn_.tcp().expires_never();
      if (ec) {
        after = co_await reject(ec);
        break;
      }
      Request req = parser.release();
      Target target = parse_target(req.target());
      shared_.requests++;
      shared_.requests_by_endpoint[static_cast<std::size_t>(target.endpoint)]++;
      after = co_await respond(req, target);
    }
    if (after == After::reset)
      reset();
    else
      co_await close_gracefully();
  }

 private:
  asio::awaitable<After> respond(const Request& req, const Target& t) {
    bool head = req.method() == http::verb::head;
    if (t.routed) {
      switch (t.endpoint) {
        case Endpoint::delay: co_return co_await delay(req, t, head);
        case Endpoint::bytes: co_return co_await bytes(req, t, head);
        case Endpoint::stream: co_return co_await events(req, t, head, false);
        case Endpoint::sse: co_return co_await events(req, t, head, true);
        case Endpoint::drip: co_return co_await drip(req, t, head);
        case Endpoint::reset: co_return co_await reset_midway(req, head);
        case Endpoint::close: co_return After::close;
        case Endpoint::headers: co_return co_await big_headers(req, t, head);
        case Endpoint::idempotent: co_return co_await idempotent(req, t, head);
        case Endpoint::flaky:
          if (query_param(t.query, "delay")) co_return co_await slow_flaky(req, t, head);
          break;
        default: break;
      }
    }
    Response res = complete_response(shared_, req, t);
    co_return co_await send(res, head);
  }

  // The request could not be read. Malformed or oversized requests get a status and the
  // connection is closed; a peer that went away or timed out is just closed.
  asio::awaitable<After> reject(beast::error_code ec) {
    if (ec.category() != http::make_error_code(http::error::end_of_stream).category() ||
        ec == http::error::end_of_stream || ec == http::error::partial_message)
      co_return After::close;
    unsigned status = ec == http::error::header_limit ? 431
                      : ec == http::error::body_limit ? 413
                                                      : 400;
    Request dummy;
    dummy.version(11);
    dummy.keep_alive(false);
    Response res = make_response(dummy, status, reason_phrase(status) + ": " + ec.message() + "\n");
    co_await send(res, false);
    co_return After::close;
  }

  asio::awaitable<After> send(Response& res, bool head) {
    beast::error_code ec;
    std::size_t n = 0;
    conn_.tcp().expires_after(shared_.options.read_timeout);
    if (head) {
      http::response_serializer<http::string_body> serializer{res};
      std::tie(ec, n) = co_await http::async_write_header(stream_, serializer, nothrow);
    } else {
      std::tie(ec, n) = co_await http::async_write(stream_, res, nothrow);
    }
    conn_.tcp().expires_never();
    co_return !ec && res.keep_alive() ? After::keep_alive : After::close;
  }

  // `why` by value: a coroutine must not keep a view of its caller's temporaries.
  asio::awaitable<After> send_bad_request(const Request& req, std::string why, bool head) {
    Response res = bad_request(req, why);
    co_return co_await send(res, head);
  }

  // Every write of a streamed body gets its own deadline: a client that stops reading for
  // read_timeout is dropped, however long the whole response takes.
  template <class Buffers>
  asio::awaitable<bool> write(Buffers buffers) {
    conn_.tcp().expires_after(shared_.options.read_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, buffers, nothrow);
    conn_.tcp().expires_never();
    co_return !ec && !conn_.closing();
  }

  asio::awaitable<bool> write_header(http::response<http::empty_body>& res) {
    http::response_serializer<http::empty_body> serializer{res};
    conn_.tcp().expires_after(shared_.options.read_timeout);
    auto [ec, n] = co_await http::async_write_header(stream_, serializer, nothrow);
    conn_.tcp().expires_never();
    co_return !ec && !conn_.closing();
  }

  asio::awaitable<bool> write_pattern(std::uint64_t offset, std::uint64_t length) {
    while (length > 0) {
      auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(length, pattern_block_size));
      if (!co_await write(pattern(offset, piece))) co_return false;
      offset += piece;
      length -= piece;
    }
    co_return true;
  }

  // HTTP/1.0 has no chunked encoding: there the body is delimited by closing the connection.
  asio::awaitable<bool> write_piece(asio::const_buffer data, bool chunked) {
    if (chunked) co_return co_await write(http::make_chunk(data));
    co_return co_await write(data);
  }

  asio::awaitable<bool> write_last_chunk(bool chunked) {
    if (!chunked) co_return true;
    co_return co_await write(http::make_chunk_last());
  }

  // The header of a streamed response: chunked for HTTP/1.1 (or `content_length` when given),
  // close-delimited for HTTP/1.0.
  static http::response<http::empty_body> stream_header(
      const Request& req, std::string_view content_type,
      std::optional<std::uint64_t> content_length) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, server_header);
    res.set(http::field::content_type, content_type);
    if (content_length) {
      res.content_length(*content_length);
      res.keep_alive(req.keep_alive());
    } else if (req.version() >= 11) {
      res.chunked(true);
      res.keep_alive(req.keep_alive());
    } else {
      res.keep_alive(false);
    }
    return res;
  }

  static After after(const http::response<http::empty_body>& res) {
    return res.keep_alive() ? After::keep_alive : After::close;
  }

  asio::awaitable<After> delay(const Request& req, const Target& t, bool head) {
    std::optional<std::uint64_t> ms = parse_uint(t.argument, max_wait_ms);
    if (!ms) co_return co_await send_bad_request(req, must_be("delay", 0, max_wait_ms, "ms"), head);
    if (!co_await conn_.sleep_until(Clock::now() + std::chrono::milliseconds(*ms)))
      co_return After::close;
    Response res = make_response(req, 200, "ok\n");
    co_return co_await send(res, head);
  }

  // /flaky?delay=MS: the failing calls take MS before they answer (a slow first attempt that a
  // hedge can overtake); the later calls answer at once.
  asio::awaitable<After> slow_flaky(const Request& req, const Target& t, bool head) {
    std::optional<std::uint64_t> ms = query_uint(t.query, "delay", 0, 0, max_wait_ms);
    if (!ms) co_return co_await send_bad_request(req, must_be("delay", 0, max_wait_ms, "ms"), head);
    Response res = flaky_endpoint(shared_, req, t);
    if (res.result() == http::status::service_unavailable &&
        !co_await conn_.sleep_until(Clock::now() + std::chrono::milliseconds(*ms)))
      co_return After::close;
    co_return co_await send(res, head);
  }

  asio::awaitable<After> big_headers(const Request& req, const Target& t, bool head) {
    std::optional<std::uint64_t> kib = parse_uint(t.argument, max_header_kib);
    if (!kib)
      co_return co_await send_bad_request(req, must_be("size", 0, max_header_kib, "KiB"), head);
    std::string response = filler_response(req, *kib, head);
    if (!co_await write(asio::buffer(response))) co_return After::close;
    co_return req.keep_alive() ? After::keep_alive : After::close;
  }

  asio::awaitable<After> bytes(const Request& req, const Target& t, bool head) {
    std::optional<std::uint64_t> n = parse_uint(t.argument, max_bytes);
    if (!n) co_return co_await send_bad_request(req, must_be("size", 0, max_bytes), head);
    bool chunked_requested = query_flag(t.query, "chunked");
    std::optional<std::uint64_t> chunk_size =
        query_uint(t.query, "chunk_size", default_chunk_size, 1, max_chunk_size);
    if (!chunk_size)
      co_return co_await send_bad_request(req, must_be("chunk_size", 1, max_chunk_size), head);

    auto res = stream_header(req, "application/octet-stream",
                             chunked_requested ? std::nullopt : std::optional(*n));
    if (!co_await write_header(res)) co_return After::close;
    if (head) co_return after(res);
    if (!chunked_requested) {
      if (!co_await write_pattern(0, *n)) co_return After::close;
      co_return after(res);
    }

    bool chunked = res.chunked();
    for (std::uint64_t offset = 0; offset < *n; offset += *chunk_size) {
      auto size = static_cast<std::size_t>(std::min(*chunk_size, *n - offset));
      if (!co_await write_piece(pattern(offset, size), chunked)) co_return After::close;
    }
    if (!co_await write_last_chunk(chunked)) co_return After::close;
    co_return after(res);
  }

  // /stream/{n} (JSON lines) and /sse/{n} (server-sent events).
  asio::awaitable<After> events(const Request& req, const Target& t, bool head, bool sse) {
    std::optional<std::uint64_t> n = parse_uint(t.argument, max_events);
    if (!n) co_return co_await send_bad_request(req, must_be("count", 0, max_events), head);
    std::optional<std::uint64_t> interval =
        query_uint(t.query, "interval_ms", 100, 0, max_wait_ms);
    if (!interval)
      co_return co_await send_bad_request(req, must_be("interval_ms", 0, max_wait_ms), head);

    std::string_view type = sse ? "text/event-stream" : "application/x-ndjson";
    auto res = stream_header(req, type, std::nullopt);
    res.set(http::field::cache_control, "no-cache");
    if (!co_await write_header(res)) co_return After::close;
    if (head) co_return after(res);

    bool chunked = res.chunked();
    Clock::time_point start = Clock::now();
    std::string event;
    for (std::uint64_t i = 0; i < *n; ++i) {
      // Scheduled from the start, so that slow writes do not stretch the whole stream; event 0
      // goes out at once, which lets a client prove it reads before the end.
      if (i > 0) {
        if (!co_await conn_.sleep_until(start + std::chrono::milliseconds(i * *interval)))
          co_return After::close;
      }
      std::string id = std::to_string(i);
      event = sse ? "id: " + id + "\ndata: {\"id\":" + id + "}\n\n" : "{\"id\":" + id + "}\n";
      if (!co_await write_piece(asio::buffer(event), chunked)) co_return After::close;
    }
    if (!co_await write_last_chunk(chunked)) co_return After::close;
    co_return after(res);
  }

  asio::awaitable<After> drip(const Request& req, const Target& t, bool head) {
    std::optional<std::uint64_t> total = query_uint(t.query, "bytes", 10, 0, max_bytes);
    if (!total) co_return co_await send_bad_request(req, must_be("bytes", 0, max_bytes), head);
    std::optional<std::uint64_t> duration =
        query_uint(t.query, "duration_ms", 1000, 0, max_wait_ms);
    if (!duration)
      co_return co_await send_bad_request(req, must_be("duration_ms", 0, max_wait_ms), head);

    auto res = stream_header(req, "application/octet-stream", *total);
    if (!co_await write_header(res)) co_return After::close;
    if (head || *total == 0) co_return after(res);

    // One write per byte, but no more often than every 10 ms; piece k ends at duration*k/steps.
    std::uint64_t steps = std::max<std::uint64_t>(1, std::min(*total, *duration / 10));
    Clock::time_point start = Clock::now();
    std::uint64_t sent = 0;
    for (std::uint64_t k = 1; k <= steps; ++k) {
      if (!co_await conn_.sleep_until(start + std::chrono::milliseconds(*duration * k / steps)))
        co_return After::close;
      std::uint64_t until = *total * k / steps;
      if (!co_await write_pattern(sent, until - sent)) co_return After::close;
      sent = until;
    }
    co_return after(res);
  }

  // Promises more body than it sends, then resets the connection.
  asio::awaitable<After> reset_midway(const Request& req, bool head) {
    auto res = stream_header(req, "text/plain", reset_promised_bytes);
    bool header_sent = co_await write_header(res);
    if (header_sent && !head) co_await write_pattern(0, reset_sent_bytes);
    co_return After::reset;
  }

  // /idempotent: applies a request once per Idempotency-Key and replays the first answer for
  // the key's later calls (docs/target.md). With reset_first=N the first N calls of a key are
  // applied and then answered with a connection reset: the client cannot know it worked.
  asio::awaitable<After> idempotent(const Request& req, const Target& t, bool head) {
    std::string counter = query_param(t.query, "counter").value_or("default");
    std::optional<std::uint64_t> reset_first = query_uint(t.query, "reset_first", 0, 0, 1000);
    std::optional<std::uint64_t> ttl_ms = query_uint(t.query, "ttl_ms", 60'000, 1, 86'400'000);
    std::string key(req["Idempotency-Key"]);
    if (!reset_first || !ttl_ms || counter.size() > max_flaky_key_length || key.size() > max_flaky_key_length) {
      Response bad = bad_request(req, "counter and Idempotency-Key: at most 256 bytes; reset_first 0-1000; ttl_ms 1-86400000");
      co_return co_await send(bad, head);
    }
    bool peek = query_param(t.query, "peek").has_value();
    std::string body;
    bool replayed = false;
    bool reset_now = false;
    {
      std::lock_guard lock(shared_.idempotent_mutex);
      auto now = std::chrono::steady_clock::now();
      if (peek) {
        auto it = shared_.applications.find(counter);
        body = nlohmann::ordered_json{{"counter", counter}, {"applications", it == shared_.applications.end() ? 0 : it->second}}.dump() + "\n";
      } else {
        if (shared_.applications.size() >= max_flaky_keys || shared_.idempotency_records.size() >= max_flaky_keys) {
          // Bounded: expired records go first; beyond that the server refuses new names.
          std::erase_if(shared_.idempotency_records, [&](const auto& r) { return r.second.expires <= now; });
          if (shared_.applications.size() >= max_flaky_keys || shared_.idempotency_records.size() >= max_flaky_keys) {
            Response full = bad_request(req, "too many idempotency keys or counters");
            co_return co_await send(full, head);
          }
        }
        std::uint64_t call = 0;
        auto record = key.empty() ? shared_.idempotency_records.end() : shared_.idempotency_records.find(key);
        if (record != shared_.idempotency_records.end() && record->second.expires > now) {
          body = record->second.body;
          call = ++record->second.calls;
          replayed = true;
        } else {
          std::uint64_t applied = ++shared_.applications[counter];
          body = nlohmann::ordered_json{{"counter", counter}, {"applications", applied}, {"key", key}}.dump() + "\n";
          if (!key.empty()) {
            auto& r = shared_.idempotency_records[key];
            r = {body, now + std::chrono::milliseconds(*ttl_ms), 1};
            call = 1;
          } else {
            call = ++shared_.keyless_calls[counter];
          }
        }
        reset_now = call <= *reset_first;
      }
    }
    if (reset_now) co_return After::reset;
    Response res = make_response(req, 200, std::move(body), "application/json");
    if (replayed) res.set("Idempotent-Replayed", "true");
    co_return co_await send(res, head);
  }

  // SO_LINGER with a zero timeout turns close() into an RST.
  void reset() {
    beast::error_code ec;
    conn_.tcp().socket().set_option(asio::socket_base::linger(true, 0), ec);
    conn_.tcp().close();
  }

  // Sends TLS close_notify, half-closes TCP and discards whatever the client still sends until
  // it hangs up (bounded by linger_timeout), so that it can read our last response.
  asio::awaitable<void> close_gracefully() {
    beast::tcp_stream& tcp = conn_.tcp();
    if (!conn_.closing() && tcp.socket().is_open()) {
      tcp.expires_after(linger_timeout);
      if constexpr (is_tls<Stream>) co_await stream_.async_shutdown(nothrow);
      beast::error_code ec;
      tcp.socket().shutdown(tcp::socket::shutdown_send, ec);
      std::array<char, 4096> sink;
      std::uint64_t drained = 0;
      while (!ec && drained < linger_max_bytes) {
        std::size_t n = 0;
        std::tie(ec, n) = co_await tcp.async_read_some(asio::buffer(sink), nothrow);
        drained += n;
      }
    }
    tcp.close();
  }

  Shared& shared_;
  Connection& conn_;
  Stream& stream_;
  beast::flat_buffer buffer_;  // kept across requests: it may hold the next pipelined one
};

asio::awaitable<bool> tls_handshake(Shared& shared, Connection& conn, TlsStream& stream) {
  conn.tcp().expires_after(shared.options.read_timeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, nothrow);
  conn.tcp().expires_never();
  if (ec || conn.closing()) co_return false;
  shared.tls_handshakes++;
  if (SSL_session_reused(stream.native_handle())) shared.tls_resumed++;
  co_return true;
}

// Counts an open connection for as long as its coroutine frame lives, also when stop() has to
// destroy the frame without resuming it.
class ActiveConnection {
 public:
  explicit ActiveConnection(std::atomic<std::uint64_t>& gauge) : gauge_(gauge) { ++gauge_; }
  ~ActiveConnection() { --gauge_; }
  ActiveConnection(const ActiveConnection&) = delete;
  ActiveConnection& operator=(const ActiveConnection&) = delete;

 private:
  std::atomic<std::uint64_t>& gauge_;
};

asio::awaitable<void> serve_connection(Shared& shared, Worker& worker, tcp::socket socket) {
  if (worker.stopping) co_return;
  ActiveConnection active(shared.connections_active);
  try {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);  // streamed pieces must leave at once
    beast::tcp_stream tcp(std::move(socket));
    if (shared.tls) {
      TlsStream stream(std::move(tcp), *shared.tls);
      Connection conn(worker, beast::get_lowest_layer(stream));
      if (co_await tls_handshake(shared, conn, stream)) {
        Session session(shared, conn, stream);
        co_await session.run();
      }
    } else {
      Connection conn(worker, tcp);
      Session session(shared, conn, tcp);
      co_await session.run();
    }
  } catch (const std::exception&) {
    // A bug in an endpoint costs this connection, not the process.
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration

Result<tcp::endpoint> parse_listen(const std::string& listen) {
  std::string_view text = listen;
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return fail(Error::config("listen address '" + listen + "': expected [ipv6]:port"));
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail(Error::config("listen address '" + listen + "': expected host:port"));
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return fail(Error::config("listen address '" + listen + "': write IPv6 as [addr]:port"));
  }
  std::optional<std::uint64_t> port = parse_uint(port_text, 65535);
  if (!port) return fail(Error::config("listen address '" + listen + "': bad port"));
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(std::string(host), ec);
  if (ec)
    return fail(Error::config("listen address '" + listen + "': '" + std::string(host) +
                              "' is not an IP address (or localhost)"));
  return tcp::endpoint(address, static_cast<std::uint16_t>(*port));
}

Result<std::string> read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  if (in) contents << in.rdbuf();
  if (!in || contents.str().empty())
    return fail(Error::config("cannot read " + std::string(what) + " file '" + path + "'"));
  return contents.str();
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned offered_length, void*) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, ours, sizeof ours - 1, offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // e.g. an h2-only client: go on without ALPN
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Loads or generates the certificate; `certificate_pem` receives what clients should trust.
Result<std::unique_ptr<asio::ssl::context>> make_tls_context(const TargetOptions& options,
                                                             std::string& certificate_pem) {
  std::string key_pem;
  if (options.cert_file.empty() && options.key_file.empty()) {
    Result<SelfSigned> generated = make_self_signed_certificate();
    if (!generated) return fail(generated.error());
    certificate_pem = std::move(generated->certificate_pem);
    key_pem = std::move(generated->private_key_pem);
  } else if (options.cert_file.empty() || options.key_file.empty()) {
    return fail(Error::config("tls needs both a certificate and a key file (or neither)"));
  } else {
    Result<std::string> cert = read_file(options.cert_file, "certificate");
    if (!cert) return fail(cert.error());
    Result<std::string> key = read_file(options.key_file, "key");
    if (!key) return fail(key.error());
    certificate_pem = std::move(*cert);
    key_pem = std::move(*key);
  }

  std::unique_ptr<asio::ssl::context> ctx;
  try {
    ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  } catch (const boost::system::system_error& e) {
    return fail(ErrorKind::tls, std::string("cannot create TLS context: ") + e.what());
  }
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION);
  // Resumption: tickets (TLS 1.2 and 1.3) are on by default; a session id context also lets
  // TLS 1.2 clients resume by session id from the server-side cache.
  static const unsigned char session_context[] = "errand-target";
  SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);

  boost::system::error_code ec;
  ctx->use_certificate_chain(asio::buffer(certificate_pem), ec);
  if (ec)
    return fail(Error::config("'" + options.cert_file + "' holds no usable PEM certificate (" +
                              ec.message() + ")"));
  ctx->use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  if (ec)
    return fail(Error::config("'" + options.key_file + "' holds no usable PEM private key (" +
                              ec.message() + ")"));
  if (SSL_CTX_check_private_key(native) != 1)
    return fail(Error::config("the private key does not match the certificate"));
  return ctx;
}

std::string authority_of(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TargetServer

struct TargetServer::Impl {
  Result<void> start();
  void stop();
  asio::awaitable<void> accept_loop();
  void run_worker(Worker& worker);

  Shared shared;  // first: outlives the workers and the coroutines that use it

  mutable std::mutex lifecycle_mutex;  // serialises start/stop and guards the fields below
  bool running = false;
  std::uint16_t port = 0;
  std::string base_url;
  std::string certificate_pem;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;  // after workers: destroyed before its io_context

  std::mutex exit_mutex;
  std::condition_variable exit_cv;
  std::size_t threads_running = 0;  // guarded by exit_mutex
};

Result<void> TargetServer::Impl::start() {
  if (running) return fail(Error::config("target server: already running"));
  const TargetOptions& options = shared.options;
  Result<tcp::endpoint> endpoint = parse_listen(options.listen);
  if (!endpoint) return fail(endpoint.error());
  if (options.threads < 1 || options.threads > 1024)
    return fail(Error::config("threads must be from 1 to 1024"));
  if (options.max_header_bytes == 0)
    return fail(Error::config("max header bytes must be positive"));
  if (options.read_timeout.count() <= 0)
    return fail(Error::config("read timeout must be positive"));

  certificate_pem.clear();
  shared.tls.reset();
  if (options.tls) {
    Result<std::unique_ptr<asio::ssl::context>> ctx = make_tls_context(options, certificate_pem);
    if (!ctx) return fail(ctx.error());
    shared.tls = std::move(*ctx);
  }
  shared.scheme = options.tls ? "https" : "http";

  for (int i = 0; i < options.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->work.emplace(worker->ioc.get_executor());
    workers.push_back(std::move(worker));
  }
  acceptor.emplace(workers.front()->ioc);
  auto listen_failed = [&](std::string_view step, boost::system::error_code ec) {
    acceptor.reset();
    workers.clear();
    return fail(ErrorKind::io,
                "target server: cannot " + std::string(step) + " " + options.listen + ": " +
                    ec.message(),
                ec);
  };
  boost::system::error_code ec;
  acceptor->open(endpoint->protocol(), ec);
  if (ec) return listen_failed("open a socket for", ec);
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  acceptor->bind(*endpoint, ec);
  if (ec) return listen_failed("bind", ec);
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return listen_failed("listen on", ec);
  tcp::endpoint local = acceptor->local_endpoint(ec);
  if (ec) return listen_failed("read the address of", ec);

  port = local.port();
  shared.authority = authority_of(local);
  base_url = shared.scheme + "://" + shared.authority;

  asio::co_spawn(workers.front()->ioc, accept_loop(), asio::detached);
  threads_running = workers.size();
  for (auto& worker : workers) {
    worker->thread = std::thread([this, w = worker.get()] {
      run_worker(*w);
      {
        std::lock_guard lock(exit_mutex);
        --threads_running;
      }
      exit_cv.notify_all();
    });
  }
  running = true;
  return {};
}

void TargetServer::Impl::run_worker(Worker& worker) {
  for (;;) {
    try {
      worker.ioc.run();
      return;
    } catch (const std::exception&) {
      // Handlers catch their own exceptions; should one escape, keep serving the others.
    }
  }
}

asio::awaitable<void> TargetServer::Impl::accept_loop() {
  std::size_t next = 0;
  for (;;) {
    Worker& worker = *workers[next];
    next = (next + 1) % workers.size();
    auto [ec, socket] = co_await acceptor->async_accept(
        asio::any_io_executor(worker.ioc.get_executor()), nothrow);
    if (!acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: pause instead of spinning on the error.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    shared.connections_accepted++;
    asio::co_spawn(worker.ioc, serve_connection(shared, worker, std::move(socket)), asio::detached);
  }
}

void TargetServer::Impl::stop() {
  if (!running) return;
  running = false;
  asio::post(workers.front()->ioc, [this] {
    boost::system::error_code ec;
    acceptor->close(ec);
  });
  for (auto& worker : workers) {
    asio::post(worker->ioc, [w = worker.get()] {
      w->stopping = true;
      for (Connection* conn : w->connections) conn->close();
      w->work.reset();
    });
  }
  {
    std::unique_lock lock(exit_mutex);
    if (!exit_cv.wait_for(lock, stop_grace, [this] { return threads_running == 0; })) {
      for (auto& worker : workers) worker->ioc.stop();
    }
  }
  for (auto& worker : workers) worker->thread.join();
  acceptor.reset();
  workers.clear();
}

TargetServer::TargetServer(TargetOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->shared.options = std::move(options);
}

TargetServer::~TargetServer() { stop(); }

Result<void> TargetServer::start() {
  std::lock_guard lock(impl_->lifecycle_mutex);
  return impl_->start();
}

void TargetServer::stop() {
  std::lock_guard lock(impl_->lifecycle_mutex);
  impl_->stop();
}

std::uint16_t TargetServer::port() const {
  std::lock_guard lock(impl_->lifecycle_mutex);
  return impl_->port;
}

std::string TargetServer::base_url() const {
  std::lock_guard lock(impl_->lifecycle_mutex);
  return impl_->base_url;
}

std::string TargetServer::certificate_pem() const {
  std::lock_guard lock(impl_->lifecycle_mutex);
  return impl_->certificate_pem;
}

TargetCounters TargetServer::counters() const {
  const Shared& s = impl_->shared;
  return TargetCounters{
      .connections_accepted = s.connections_accepted.load(),
      .connections_active = s.connections_active.load(),
      .requests = s.requests.load(),
      .tls_handshakes = s.tls_handshakes.load(),
      .tls_resumed = s.tls_resumed.load(),
  };
}

}  // namespace errand::server
