// `errand get URL` and `errand request -X METHOD URL`: one HTTP request through the errand
// Client, with the body streamed to stdout (or a file) as it arrives, optional headers (-i),
// a phase-timing breakdown (-v), or one JSON object (--json). Exit codes: docs/cli.md.
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include <errand/core/duration.hpp>
#include <errand/http/client.hpp>
#include <errand/http/client_builder.hpp>
#include <errand/observe/tracing.hpp>
#include <errand/resilience/retry.hpp>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

namespace errand::cli {

namespace asio = boost::asio;
using json = nlohmann::ordered_json;
using http::Duration;

namespace {

struct GetOptions {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::optional<std::string> data;
  std::optional<std::string> data_file;
  bool include = false;
  bool verbose = false;
  bool json_output = false;
  bool fail_on_status = false;
  std::string output;
  std::string timeout;
  std::string connect_timeout;
  int max_redirects = 10;
  bool insecure = false;
  std::string cacert;
  std::string cert;
  std::string key;
  bool allow_downgrade = false;
  bool no_decompress = false;
  bool breaker = false;           // --breaker: the default circuit breaker
  std::string idempotency_key;    // --idempotency-key auto|KEY
  bool retry = false;             // --retry: the default tiers
  int retries = -1;               // --retries N: at most N retries (implies --retry)
  std::vector<std::string> retry_on;  // --retry-on KINDS
  std::string attempt_timeout;    // --attempt-timeout D: each attempt's own limit (implies --retry)
  bool trace = false;             // --trace: the span tree on stderr
  std::string otlp;               // --otlp URL: spans to an OTLP/HTTP collector
  std::string otlp_protocol;      // --otlp-protocol: json (default) or protobuf
};

// How long the command waits, at the end, for its spans to reach the collector.
constexpr std::chrono::milliseconds otlp_deadline{2000};

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double json_ms(Duration d) { return std::round(ms(d) * 1000) / 1000; }  // milliseconds, to the microsecond

json timings_json(const http::Timings& t) {
  return json{{"dns", json_ms(t.dns)},   {"connect", json_ms(t.connect)}, {"tls", json_ms(t.tls)},
              {"send", json_ms(t.send)}, {"wait", json_ms(t.wait)},       {"receive", json_ms(t.receive)},
              {"total", json_ms(t.total)}};
}

json headers_json(const http::Headers& headers) {
  json out = json::object();
  for (const auto& field : headers) {
    std::string name = field.name;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!out.contains(name)) out[name] = field.value;
    else if (out[name].is_array()) out[name].push_back(field.value);
    else out[name] = json::array({out[name], field.value});
  }
  return out;
}

json error_json(const Error& error) {
  return json{{"kind", to_string(error.kind())}, {"phase", to_string(error.phase())}, {"message", error.message()}};
}

void print_head(std::FILE* out, const http::Response& res, const char* prefix) {
  std::fprintf(out, "%sHTTP/%d.%d %d %s\r\n", prefix, res.version / 10, res.version % 10, res.status, res.reason.c_str());
  for (const auto& f : res.headers) std::fprintf(out, "%s%s: %s\r\n", prefix, f.name.c_str(), f.value.c_str());
  std::fprintf(out, "%s\r\n", prefix);
}

// httpstat-style breakdown on stderr.
void print_timings(const http::Response& res) {
  const auto& t = res.timings;
  auto cell = [](Duration d) { return format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(d)); };
  std::fprintf(stderr,
               "\n  DNS Lookup   TCP Connection   TLS Handshake   Request Sent   Server Processing   Content Transfer\n"
               "[ %10s | %14s | %13s | %12s | %17s | %16s ]\n"
               "%95s\n",
               cell(t.dns).c_str(), cell(t.connect).c_str(), cell(t.tls).c_str(), cell(t.send).c_str(),
               cell(t.wait).c_str(), cell(t.receive).c_str(), ("total: " + cell(t.total)).c_str());
  std::fprintf(stderr, "connection: %s to %s%s%s\n", res.reused ? "reused" : "new", res.remote_address.c_str(),
               res.url.is_https() ? (res.tls_resumed ? ", TLS resumed" : ", TLS full handshake") : "",
               res.redirects ? (", after " + std::to_string(res.redirects) + " redirect(s)").c_str() : "");
}

Result<http::Request> build_request(const GetOptions& o) {
  std::string url = o.url;
  if (url.find("://") == std::string::npos) url = "http://" + url;  // like curl
  auto request = http::Request::make(o.method, url);
  if (!request) return fail(request.error());
  for (const auto& line : o.headers) {
    auto field = http::parse_header_line(line);
    if (!field) return fail(field.error());
    request->headers.add(std::move(field->name), std::move(field->value));
  }
  if (o.data && o.data_file) return fail(Error::config("use either -d/--data or --data-file, not both"));
  if (o.data) {
    request->body = *o.data;
    if (!request->headers.contains("content-type"))
      request->headers.add("Content-Type", "application/x-www-form-urlencoded");  // as curl -d does
  }
  if (o.data_file) request->body = http::FileBody{*o.data_file};
  if (!o.timeout.empty()) {
    auto d = parse_duration(o.timeout);
    if (!d) return fail(d.error());
    request->timeouts.total = *d;
  }
  if (!o.connect_timeout.empty()) {
    auto d = parse_duration(o.connect_timeout);
    if (!d) return fail(d.error());
    request->timeouts.connect = *d;
  }
  if (!o.idempotency_key.empty() && o.idempotency_key != "auto") {
    if (auto ok = http::validate_field("Idempotency-Key", o.idempotency_key); !ok) return fail(ok.error());
    request->headers.set("Idempotency-Key", o.idempotency_key);
  }
  if (o.max_redirects < 0) return fail(Error::config("--max-redirects must be 0 or more"));
  request->max_redirects = o.max_redirects;
  request->allow_https_to_http = o.allow_downgrade;
  if (o.no_decompress) request->decompress = false;
  return request;
}

json attempts_json(const std::vector<Attempt>& attempts) {
  json list = json::array();
  for (const auto& a : attempts) {
    json one{{"delay_ms", json_ms(a.delay)}, {"duration_ms", json_ms(a.duration)}};
    if (a.ok) {
      one["status"] = a.status;
    } else {
      one["error"] = json{{"kind", to_string(a.kind)}, {"phase", to_string(a.phase)}, {"message", a.message}};
    }
    list.push_back(one);
  }
  return list;
}

int report_error(const GetOptions& o, const Error& error) {
  if (o.json_output) {
    json out{{"url", o.url}, {"error", error_json(error)}};
    if (!error.attempts().empty()) out["attempts"] = attempts_json(error.attempts());
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << std::endl;
  }
  std::fprintf(stderr, "errand: %s\n", error.describe().c_str());
  return exit_code_for(error.kind());
}

asio::awaitable<int> write_out(const GetOptions& o, http::ResponseStream& stream);

// Runs on a runtime worker: the whole exchange, writing the body as it arrives. The policies
// (retries, breaker, spans) act on the response's head, before anything is written: a retry
// never repeats output. A body that fails half-way is an error, not retried (curl's --retry
// does not retry it either).
asio::awaitable<int> run(const GetOptions& o, http::Client& client, http::Request request) {
  auto stream = co_await client.open(std::move(request));
  if (!stream) co_return report_error(o, stream.error());
  co_return co_await write_out(o, *stream);
}

asio::awaitable<int> write_out(const GetOptions& o, http::ResponseStream& stream) {
  const http::Response& res = stream.response();
  std::FILE* out = stdout;
  bool to_file = !o.output.empty() && o.output != "-";
  if (to_file) {
    out = std::fopen(o.output.c_str(), "wb");
    if (!out) {
      std::fprintf(stderr, "errand: cannot write '%s': %s\n", o.output.c_str(), std::strerror(errno));
      co_return exit_codes::write_failed;
    }
  }
  struct Closer {
    std::FILE* f;
    bool own;
    ~Closer() {
      if (own) std::fclose(f);
    }
  } closer{out, to_file};

  const bool buffer_body = o.json_output && !to_file;
  if (o.include && !o.json_output) print_head(stdout, res, "");
  if (o.verbose && !o.json_output) print_head(stderr, res, "< ");

  std::uint64_t body_bytes = 0;
  std::string body;
  for (;;) {
    auto piece = co_await stream.read();
    if (!piece) {
      // The body failed after the layers were done: the head's attempts still tell the story.
      Error failure = std::move(piece.error());
      if (failure.attempts().empty() && !res.attempts.empty()) failure.with_attempts(std::vector(res.attempts));
      co_return report_error(o, failure);
    }
    if (piece->empty()) break;
    body_bytes += piece->size();
    if (buffer_body) {
      body.append(*piece);
    } else if (!o.json_output || to_file) {
      if (std::fwrite(piece->data(), 1, piece->size(), out) != piece->size()) {
        std::fprintf(stderr, "errand: writing the body failed: %s\n", std::strerror(errno));
        co_return exit_codes::write_failed;
      }
      std::fflush(out);  // streamed responses are shown as they arrive
    }
  }
  if (o.json_output) {
    json j{{"url", res.url.to_string()},
           {"status", res.status},
           {"reason", res.reason},
           {"http_version", res.version == 10 ? "1.0" : "1.1"},
           {"headers", headers_json(res.headers)}};
    if (buffer_body) j["body"] = body;
    else j["body_bytes"] = body_bytes;
    j["timings"] = timings_json(res.timings);
    j["reused"] = res.reused;
    j["tls_resumed"] = res.tls_resumed;
    j["remote_address"] = res.remote_address;
    j["redirects"] = res.redirects;
    if (!res.attempts.empty()) j["attempts"] = attempts_json(res.attempts);
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << std::endl;
  }
  if (o.verbose) print_timings(res);
  if (o.fail_on_status && res.status >= 400) {
    std::fprintf(stderr, "errand: HTTP status %d\n", res.status);
    co_return exit_codes::http_status;
  }
  co_return 0;
}

int execute(const GetOptions& o) {
  auto request = build_request(o);
  if (!request) return report_error(o, request.error());
  net::Runtime runtime({.threads = 1});
  http::ClientOptions options;
  options.runtime = &runtime;
  options.tls.insecure = o.insecure;
  options.tls.ca_file = o.cacert;
  options.tls.cert_file = o.cert;
  options.tls.key_file = o.key;
  http::Client::Builder builder(options);
  std::shared_ptr<observe::CollectingExporter> collected;
  std::shared_ptr<observe::OtlpHttpExporter> otlp;
  if (o.trace || !o.otlp.empty()) {
    auto tracer = std::make_shared<observe::Tracer>();
    if (o.trace) {
      collected = std::make_shared<observe::CollectingExporter>();
      tracer->add_exporter(collected);
    }
    if (!o.otlp.empty()) {
      std::string url = observe::otlp_traces_url(o.otlp);
      if (auto parsed = http::Url::parse(url); !parsed)
        return report_error(o, Error::config("--otlp: " + parsed.error().message()));
      // As OpenTelemetry SDKs do: the flag, else the traces variable, else the general one.
      std::string source = "--otlp-protocol", protocol = o.otlp_protocol;
      if (protocol.empty()) {
        for (const char* variable : {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"}) {
          if (const char* value = std::getenv(variable); value && *value) {
            source = variable;
            protocol = value;
            break;
          }
        }
      }
      if (protocol.empty()) protocol = "json";
      auto encoding = observe::parse_otlp_encoding(protocol);
      if (!encoding)
        return report_error(o, Error::config(source + ": '" + protocol + "' is not json or protobuf (grpc is not supported)"));
      observe::OtlpOptions otlp_options;
      otlp_options.endpoint = url;
      otlp_options.encoding = *encoding;
      otlp_options.timeout = otlp_deadline;
      otlp = std::make_shared<observe::OtlpHttpExporter>(otlp_options);
      tracer->add_exporter(otlp);
    }
    builder.tracing(tracer);
  }
  if (o.breaker) builder.breaker();
  if (o.idempotency_key == "auto") builder.idempotency_keys();
  if (o.retry || o.retries >= 0 || !o.retry_on.empty() || !o.attempt_timeout.empty()) {
    resilience::RetryPolicy policy;
    // As curl's --retry N: N retries of any retryable failure, more or fewer than a tier's own
    // default; each tier keeps its backoff.
    if (o.retries >= 0) {
      for (resilience::Tier* tier : {&policy.network, &policy.dns, &policy.tls, &policy.timeout, &policy.status})
        tier->max_attempts = o.retries + 1;
    }
    if (!o.attempt_timeout.empty()) {
      auto d = parse_duration(o.attempt_timeout);
      if (!d) return report_error(o, Error::config("--attempt-timeout: " + d.error().message()));
      if (*d <= Duration::zero()) return report_error(o, Error::config("--attempt-timeout must be above 0"));
      policy.attempt_timeout = *d;
    }
    for (const auto& name : o.retry_on) {
      auto kind = error_kind_from_string(name);
      if (!kind) return report_error(o, Error::config("--retry-on: unknown kind \"" + name +
                                                      "\" (dns connect tls timeout io http_status)"));
      policy.only_kinds.push_back(*kind);
    }
    builder.retry(policy);
  }
  int rc;
  {
    http::Client client = builder.build();
    rc = asio::co_spawn(runtime.context(0), run(o, client, std::move(*request)), asio::use_future).get();
  }
  runtime.stop();
  if (collected) std::fprintf(stderr, "%s", observe::format_span_tree(collected->spans()).c_str());
  if (otlp) {
    // Not reaching the collector is worth a warning, never a failed command.
    otlp->shutdown(otlp_deadline);
    auto stats = otlp->stats();
    if (stats.dropped > 0)
      std::fprintf(stderr, "errand: warning: %llu span(s) not exported to %s%s%s\n",
                   static_cast<unsigned long long>(stats.dropped), otlp->url().c_str(),
                   stats.last_error.empty() ? "" : ": ", stats.last_error.c_str());
  }
  return rc;
}

void add_common(CLI::App* cmd, GetOptions& o) {
  cmd->add_option("url", o.url, "URL (http:// is assumed when no scheme is given)")->required();
  cmd->add_option("-H,--header", o.headers, "extra request header 'Name: value' (repeatable)")
      ->allow_extra_args(false);  // one value per -H, so that the URL after it stays the URL
  cmd->add_flag("-i,--include", o.include, "print the response status line and headers before the body");
  cmd->add_flag("-v,--verbose", o.verbose, "print response headers and a phase-timing breakdown to stderr");
  cmd->add_option("-o,--output", o.output, "write the body to FILE instead of stdout");
  cmd->add_flag("--json", o.json_output, "print one JSON object: status, headers, body, timings, errors");
  cmd->add_flag("-f,--fail", o.fail_on_status, "exit with 22 when the status is 400 or above");
  cmd->add_option("--timeout", o.timeout, "deadline for the whole request, e.g. 2.5, 500ms, 2s");
  cmd->add_option("--connect-timeout", o.connect_timeout, "deadline for DNS + TCP + TLS of a new connection");
  cmd->add_option("--max-redirects", o.max_redirects, "redirects to follow (0: none)")->capture_default_str();
  cmd->add_flag("--allow-https-to-http", o.allow_downgrade, "follow redirects from https to plain http");
  cmd->add_flag("-k,--insecure", o.insecure, "do not verify the server's certificate (dangerous)");
  cmd->add_option("--cacert", o.cacert, "extra CA certificates (PEM) to trust");
  cmd->add_option("--cert", o.cert, "client certificate (PEM) for mutual TLS");
  cmd->add_option("--key", o.key, "client private key (PEM)");
  cmd->add_flag("--no-decompress", o.no_decompress, "do not ask for or decode compressed bodies");
  cmd->add_option("-d,--data", o.data, "request body");
  cmd->add_option("--data-file", o.data_file, "request body read from FILE");
  cmd->add_flag("--retry", o.retry, "retry failures by kind with backoff (docs/cli.md: retries)");
  cmd->add_flag("--breaker", o.breaker, "send through a circuit breaker (default settings)");
  cmd->add_option("--idempotency-key", o.idempotency_key,
                  "'auto': an Idempotency-Key (UUIDv7) for a POST/PATCH, kept across retries; or the key itself");
  // -1 is the "not given" default: a negative N must be refused, not read as that.
  cmd->add_option("--retries", o.retries, "retry any retryable failure up to N times, 0 to 1000 (implies --retry)")->check(CLI::Range(0, 1000));
  cmd->add_option("--attempt-timeout", o.attempt_timeout,
                  "each attempt's own deadline, e.g. 500ms; a cut-off attempt is retried (implies --retry)");
  cmd->add_option("--retry-on", o.retry_on, "retry only these kinds: dns,connect,tls,timeout,io,http_status (implies --retry)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_flag("--trace", o.trace, "print the span tree (logical request, attempts, retries) to stderr");
  cmd->add_option("--otlp", o.otlp,
                  "export spans as OTLP/HTTP to URL (a base URL gets /v1/traces), e.g. http://127.0.0.1:4318");
  cmd->add_option("--otlp-protocol", o.otlp_protocol,
                  "the OTLP encoding: json (default) or protobuf (also http/json, http/protobuf); "
                  "else OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL");
}

}  // namespace

void add_get_commands(CLI::App& app, int& exit_code) {
  auto get_options = std::make_shared<GetOptions>();
  auto* get = app.add_subcommand("get", "GET a URL: body to stdout, --json for a machine-readable result");
  add_common(get, *get_options);
  get->callback([get_options, &exit_code] { exit_code = execute(*get_options); });

  auto request_options = std::make_shared<GetOptions>();
  auto* request = app.add_subcommand("request", "send any HTTP request (-X METHOD, -H, -d, --data-file)");
  add_common(request, *request_options);
  request->add_option("-X,--request", request_options->method, "HTTP method")->capture_default_str();
  request->callback([request_options, &exit_code] { exit_code = execute(*request_options); });
}

}  // namespace errand::cli
