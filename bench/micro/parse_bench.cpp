// The HTTP/1.1 response parse path: h1::ResponseParser driven the way http::Connection drives
// it (feed returns after the header and after each body piece; the caller re-feeds what was
// not consumed, with more bytes appended as they "arrive" from the socket).
//
//   ParseSmallResponse        a typical nginx reply: status line, 6 headers, 12-byte body
//   ParseContentLength1MiB    1 MiB Content-Length body, arriving in 64 KiB reads
//   ParseChunked1MiB          1 MiB chunked body (16 KiB chunks), arriving in 64 KiB reads
//
// Each iteration constructs a parser (as the connection does per response) and parses one
// whole response; bytes/s counts the bytes on the wire (head + framing + body).
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "http/h1/response_parser.hpp"

namespace {

using errand::http::h1::ResponseParser;

constexpr std::size_t kMiB = 1 << 20;
constexpr std::size_t kRead = 64 * 1024;   // Connection's read buffer
constexpr std::size_t kChunk = 16 * 1024;  // chunk size of the chunked body

std::string small_response() {
  return "HTTP/1.1 200 OK\r\n"
         "Server: nginx/1.22.1\r\n"
         "Date: Mon, 06 May 2024 10:00:00 GMT\r\n"
         "Content-Type: text/plain\r\n"
         "Content-Length: 12\r\n"
         "Connection: keep-alive\r\n"
         "ETag: \"66389a80-c\"\r\n"
         "\r\n"
         "hello world\n";
}

std::string payload(std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + i % 26);
  return body;
}

std::string content_length_response(std::size_t size) {
  return "HTTP/1.1 200 OK\r\n"
         "Server: nginx/1.22.1\r\n"
         "Date: Mon, 06 May 2024 10:00:00 GMT\r\n"
         "Content-Type: application/octet-stream\r\n"
         "Content-Length: " +
         std::to_string(size) +
         "\r\n"
         "Connection: keep-alive\r\n"
         "Accept-Ranges: bytes\r\n"
         "\r\n" +
         payload(size);
}

std::string chunked_response(std::size_t size, std::size_t chunk) {
  std::string out =
      "HTTP/1.1 200 OK\r\n"
      "Server: nginx/1.22.1\r\n"
      "Date: Mon, 06 May 2024 10:00:00 GMT\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Connection: keep-alive\r\n"
      "\r\n";
  std::string body = payload(size);
  char line[32];
  for (std::size_t at = 0; at < size; at += chunk) {
    std::size_t n = std::min(chunk, size - at);
    std::snprintf(line, sizeof line, "%zx\r\n", n);
    out += line;
    out.append(body, at, n);
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

// Parses one response from `wire`, making at most `read_size` new bytes visible at a time,
// like Connection::read_head/read_body with a socket that returns `read_size` per read.
// Returns the number of body bytes, or -1 on a parse error.
long long parse_one(std::string_view wire, std::size_t read_size) {
  ResponseParser parser(1 << 20, /*head_request=*/false);
  std::size_t begin = 0;                                  // first byte not yet consumed
  std::size_t end = std::min(read_size, wire.size());     // bytes that have "arrived"
  long long body = 0;
  for (;;) {
    if (begin < end) {
      auto step = parser.feed(wire.substr(begin, end - begin));
      if (!step) return -1;
      begin += step->consumed;
      if (step->event == ResponseParser::Event::piece) {
        benchmark::DoNotOptimize(step->piece.data());
        body += static_cast<long long>(step->piece.size());
        continue;
      }
      if (step->event == ResponseParser::Event::done) return body;
      if (step->event == ResponseParser::Event::header) {
        benchmark::DoNotOptimize(parser.head().status);
        if (parser.done()) return body;
        continue;
      }
    }
    if (end == wire.size()) return parser.done() ? body : -1;
    // need_more, or everything visible was consumed: the next read arrives. Unconsumed bytes
    // stay in front, as after Connection::read_more's memmove.
    end = std::min(end + read_size, wire.size());
  }
}

void run(benchmark::State& state, const std::string& wire, std::size_t read_size, long long expect_body) {
  if (long long got = parse_one(wire, read_size); got != expect_body) {
    state.SkipWithError(("parsed body of " + std::to_string(got) + " bytes, expected " +
                         std::to_string(expect_body)).c_str());
    return;
  }
  for (auto _ : state) {
    long long body = parse_one(wire, read_size);
    benchmark::DoNotOptimize(body);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(wire.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));  // responses/s
}

void ParseSmallResponse(benchmark::State& state) {
  static const std::string wire = small_response();
  run(state, wire, kRead, 12);
}
BENCHMARK(ParseSmallResponse);

void ParseContentLength1MiB(benchmark::State& state) {
  static const std::string wire = content_length_response(kMiB);
  run(state, wire, kRead, kMiB);
}
BENCHMARK(ParseContentLength1MiB);

void ParseChunked1MiB(benchmark::State& state) {
  static const std::string wire = chunked_response(kMiB, kChunk);
  run(state, wire, kRead, kMiB);
}
BENCHMARK(ParseChunked1MiB);

}  // namespace
