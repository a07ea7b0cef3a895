// errand_client_loop — keeps N requests in flight through one errand::http::Client for a
// fixed time and prints one JSON line with throughput and the CPU it cost:
//
//   errand_client_loop --url http://127.0.0.1:8080/small --concurrency 50 --duration 5s
//                      [--new-connection] [--expect-bytes N] [--stream]
//                      [--chain none|policies|full] [--otlp URL] [--otlp-protocol json|protobuf]
//                      [--sample RATIO] [--otlp-batch N]
//   {"tool":"errand","requests":N,"errors":E,"seconds":S,"rps":R,"cpu_us_per_req":C,
//    "max_rss_kib":M,"connections":K}
//
// One Runtime worker runs N coroutines; each loops `co_await client.send(request)` until the
// duration ends. A request counts when it got a 200 with the expected body size; anything
// else (transport error, other status, short body) counts as an error, and the first one is
// described on stderr. CPU is user+sys of the whole process (getrusage) over the loop only,
// divided by the requests counted. --new-connection sends "Connection: close", so every
// request opens a connection. --stream reads the body with open()/read() without keeping it
// (what the libcurl peer does) instead of send(), which buffers it in Response::body; the
// JSON line then says "tool":"errand-stream".
// --chain puts the client's policies in front of the transport, built by Client::Builder as
// a user would: "policies" is metrics, circuit breaker and retry (default settings);
// "full" adds tracing, every span exported as OTLP/HTTP to --otlp (a collector, or any
// endpoint that answers 2xx; JSON unless --otlp-protocol protobuf) — what the chain costs when nothing fails. The JSON line then
// says "tool":"errand-policies" / "errand-full" and, for full, how many spans were exported.
// With --stream the chain wraps open() ("errand-stream-policies", ...).
// --sample sets the tracer's sample ratio (default 1: every request traced and exported).
// --otlp none builds every span as "full" does and hands it to an exporter that throws it
// away ("spans_discarded" counts them): what tracing costs before the export. --otlp-batch
// sets OtlpOptions::max_batch (default 512 spans per POST; the queue holds four batches).
//
// bench/client_loop runs this beside bench/peers/curl_multi_loop; see bench/README.md.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <errand/http/client.hpp>
#include <errand/http/client_builder.hpp>
#include <errand/observe/tracing.hpp>
#include <errand/http/message.hpp>
#include <errand/net/runtime.hpp>

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  int concurrency = 50;
  Clock::duration duration = std::chrono::seconds(5);
  bool new_connection = false;
  bool stream = false;
  std::optional<std::size_t> expect_bytes;
  std::string chain = "none";
  std::string otlp;
  errand::observe::OtlpEncoding otlp_encoding = errand::observe::OtlpEncoding::json;
  double sample = 1.0;
  std::size_t otlp_batch = errand::observe::OtlpOptions{}.max_batch;
};

// Takes every span and keeps none: the spans are built and ended as for an exporter.
class DiscardingExporter final : public errand::observe::SpanExporter {
 public:
  void export_span(const errand::observe::Span&) override { discarded.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<std::uint64_t> discarded{0};
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "errand_client_loop: %s\n"
               "usage: errand_client_loop --url URL [--concurrency 50] [--duration 5s] [--new-connection]\n"
               "                          [--expect-bytes N] [--stream] [--chain none|policies|full] [--otlp URL|none] [--otlp-protocol json|protobuf] [--sample R] [--otlp-batch N]\n",
               why);
  std::exit(2);
}

// "5s", "500ms", "1.5s", "2m", or a plain number of seconds.
std::optional<Clock::duration> parse_duration(std::string_view text) {
  double scale = 1.0;
  if (text.ends_with("ms")) {
    scale = 1e-3;
    text.remove_suffix(2);
  } else if (text.ends_with("s")) {
    text.remove_suffix(1);
  } else if (text.ends_with("m")) {
    scale = 60.0;
    text.remove_suffix(1);
  }
  std::string number(text);
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || !(value > 0)) return std::nullopt;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(value * scale));
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage(("missing value after " + std::string(arg)).c_str());
      return argv[++i];
    };
    if (arg == "--url") {
      o.url = value();
    } else if (arg == "--concurrency") {
      o.concurrency = std::atoi(std::string(value()).c_str());
      if (o.concurrency <= 0) usage("--concurrency must be a positive number");
    } else if (arg == "--duration") {
      auto d = parse_duration(value());
      if (!d) usage("--duration takes a time such as 5s or 500ms");
      o.duration = *d;
    } else if (arg == "--expect-bytes") {
      std::string text(value());
      char* end = nullptr;
      unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0') usage("--expect-bytes takes a number of bytes");
      o.expect_bytes = static_cast<std::size_t>(n);
    } else if (arg == "--new-connection") {
      o.new_connection = true;
    } else if (arg == "--stream") {
      o.stream = true;
    } else if (arg == "--chain") {
      o.chain = value();
      if (o.chain != "none" && o.chain != "policies" && o.chain != "full") usage("--chain is none, policies or full");
    } else if (arg == "--otlp") {
      o.otlp = value();
    } else if (arg == "--otlp-protocol") {
      auto encoding = errand::observe::parse_otlp_encoding(value());
      if (!encoding) usage("--otlp-protocol is json or protobuf");
      o.otlp_encoding = *encoding;
    } else if (arg == "--sample") {
      o.sample = std::atof(std::string(value()).c_str());
      if (!(o.sample >= 0 && o.sample <= 1)) usage("--sample takes a ratio from 0 to 1");
    } else if (arg == "--otlp-batch") {
      long n = std::atol(std::string(value()).c_str());
      if (n <= 0) usage("--otlp-batch takes a positive number of spans");
      o.otlp_batch = static_cast<std::size_t>(n);
    } else if (arg == "-h" || arg == "--help") {
      usage("keeps requests in flight through errand's client and reports their cost");
    } else {
      usage(("unknown argument " + std::string(arg)).c_str());
    }
  }
  if (o.url.empty()) usage("--url is required");
  if (o.chain == "full" && o.otlp.empty()) usage("--chain full needs --otlp URL");
  return o;
}

double seconds_of(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }
double cpu_seconds(const rusage& u) { return seconds_of(u.ru_utime) + seconds_of(u.ru_stime); }

// Touched only by the worker thread while the loop runs; read by main after it ends.
struct Shared {
  Shared(const Options& o, errand::http::Client& c, const errand::http::Request& r)
      : options(o), client(c), request(r) {}

  const Options& options;
  errand::http::Client& client;
  const errand::http::Request& request;
  Clock::time_point end;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  bool described = false;
  int running = 0;
  std::promise<void> done;
  Clock::time_point finished;

  void error(const std::string& what) {
    ++errors;
    if (described) return;
    described = true;
    std::fprintf(stderr, "errand_client_loop: first error: %s\n", what.c_str());
  }
};

// One request: counted when it is a 200 with the expected body size, else an error.
asio::awaitable<void> one_request(Shared& s) {
  std::size_t size = 0;
  int status = 0;
  if (s.options.stream) {
    auto stream = co_await s.client.open(s.request);
    if (!stream) {
      s.error(stream.error().describe());
      co_return;
    }
    status = stream->response().status;
    for (;;) {
      auto piece = co_await stream->read();
      if (!piece) {
        s.error(piece.error().describe());
        co_return;
      }
      if (piece->empty()) break;
      size += piece->size();
    }
  } else {
    auto response = co_await s.client.send(s.request);
    if (!response) {
      s.error(response.error().describe());
      co_return;
    }
    status = response->status;
    size = response->body.size();
  }
  if (status != 200) {
    s.error("status " + std::to_string(status));
  } else if (s.options.expect_bytes && size != *s.options.expect_bytes) {
    s.error("body of " + std::to_string(size) + " bytes, expected " + std::to_string(*s.options.expect_bytes));
  } else {
    ++s.requests;
  }
}

asio::awaitable<void> loop(Shared& s) {
  while (Clock::now() < s.end) co_await one_request(s);
  if (--s.running == 0) {
    s.finished = Clock::now();
    s.done.set_value();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_args(argc, argv);

  auto request = errand::http::Request::make("GET", options.url);
  if (!request) {
    std::fprintf(stderr, "errand_client_loop: %s\n", request.error().describe().c_str());
    return 2;
  }
  if (options.new_connection) request->headers.add("Connection", "close");

  errand::net::Runtime runtime({.threads = 1});
  int rc = 0;
  {
    errand::http::Client::Builder builder;  // the defaults, as a user gets them
    builder.runtime(runtime);
    std::shared_ptr<errand::observe::OtlpHttpExporter> otlp;
    std::shared_ptr<DiscardingExporter> discarding;
    if (options.chain != "none") builder.metrics(std::make_shared<errand::observe::Registry>()).breaker().retry();
    if (options.chain == "full") {
      auto tracer = std::make_shared<errand::observe::Tracer>("errand_client_loop");
      if (options.otlp == "none") {
        discarding = std::make_shared<DiscardingExporter>();
        tracer->add_exporter(discarding);
      } else {
        errand::observe::OtlpOptions otlp_options;
        otlp_options.endpoint = options.otlp;
        otlp_options.encoding = options.otlp_encoding;
        otlp_options.max_batch = options.otlp_batch;
        otlp_options.max_queue = std::max(otlp_options.max_queue, 4 * options.otlp_batch);
        otlp = std::make_shared<errand::observe::OtlpHttpExporter>(otlp_options);
        tracer->add_exporter(otlp);
      }
      tracer->set_sample_ratio(options.sample);
      builder.tracing(tracer);
    }
    errand::http::Client client = builder.build();
    Shared s(options, client, *request);
    s.running = options.concurrency;
    auto done = s.done.get_future();

    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    auto start = Clock::now();
    s.end = start + options.duration;
    // Spawned from the worker itself, so that every coroutine starts on its thread.
    asio::co_spawn(
        runtime.context(0),
        [&s]() -> asio::awaitable<void> {
          auto executor = co_await asio::this_coro::executor;
          for (int i = 0; i < s.options.concurrency; ++i) asio::co_spawn(executor, loop(s), asio::detached);
        },
        asio::detached);
    done.wait();
    if (otlp) otlp->shutdown(std::chrono::seconds(10));  // its CPU is the chain's too
    getrusage(RUSAGE_SELF, &after);

    double seconds = std::chrono::duration<double>(s.finished - start).count();
    double cpu = cpu_seconds(after) - cpu_seconds(before);
    // The kernel's share apart: on loopback the client's sends also pay for waking the server.
    double sys = seconds_of(after.ru_stime) - seconds_of(before.ru_stime);
    std::uint64_t connections = client.stats().opened;
    std::uint64_t counted = s.requests;
    std::string tool = std::string(options.stream ? "errand-stream" : "errand") + (options.chain == "none" ? "" : "-" + options.chain);
    std::string spans;
    if (otlp) {
      auto st = otlp->stats();
      spans = ",\"spans_exported\":" + std::to_string(st.exported) + ",\"spans_dropped\":" + std::to_string(st.dropped);
    }
    if (discarding) spans = ",\"spans_discarded\":" + std::to_string(discarding->discarded.load());
    std::printf(
        "{\"tool\":\"%s\",\"requests\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f,"
        "\"cpu_us_per_req\":%.2f,\"sys_us_per_req\":%.2f,\"max_rss_kib\":%ld,\"connections\":%llu%s}\n",
        tool.c_str(), static_cast<unsigned long long>(counted),
        static_cast<unsigned long long>(s.errors), seconds,
        seconds > 0 ? static_cast<double>(counted) / seconds : 0.0,
        counted ? cpu * 1e6 / static_cast<double>(counted) : 0.0,
        counted ? sys * 1e6 / static_cast<double>(counted) : 0.0, after.ru_maxrss,
        static_cast<unsigned long long>(connections), spans.c_str());
    std::fflush(stdout);
    if (counted == 0) rc = 1;
  }
  return rc;
}
