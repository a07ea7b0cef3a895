// libFuzzer target for errand::http::h1::ResponseParser, driven the way Connection drives it
// (src/http/connection.cpp, read_head and read_body): the server's bytes arrive in reads into a
// buffer that is compacted and grown like the connection's, unconsumed bytes are fed again with
// more appended, interim 1xx responses are skipped, and the end of the input is the server
// closing the connection. Parsing must never crash and must keep the invariants in check_*().
//
// Input layout: byte 0 holds flags (bit 0: the request was HEAD; bits 1-3: the initial buffer
// size, 64 << n bytes, so from far below the header limit to twice it, as a user may set a
// limit below the connection's 64 KiB buffer); bytes 1-3 are the read sizes, used in turn
// (0: as much as fits); the rest is what the server sends.
#include "http/h1/response_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define ERRAND_FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ERRAND_FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef ERRAND_FUZZ_POISON
#define ERRAND_FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define ERRAND_FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace {

using errand::http::h1::ResponseParser;
using Event = ResponseParser::Event;

// Small, so that the limit is reached often; the client's default is far larger.
constexpr std::size_t header_limit = 4096;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_error(const errand::Error& error) {
  require(error.kind() == errand::ErrorKind::protocol || error.kind() == errand::ErrorKind::io);
  require(!error.message().empty());
}

// The server: hands out the input in reads of the sizes the input chose.
class Wire {
 public:
  Wire(std::string_view bytes, const std::uint8_t* sizes, std::size_t count)
      : rest_(bytes), sizes_(sizes), count_(count) {}

  std::size_t read(char* into, std::size_t room) {
    std::size_t want = sizes_[next_++ % count_];
    if (want == 0) want = std::numeric_limits<std::size_t>::max();
    std::size_t n = std::min({want, room, rest_.size()});
    std::memcpy(into, rest_.data(), n);
    rest_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view rest_;
  const std::uint8_t* sizes_;
  std::size_t count_;
  std::size_t next_ = 0;
};

// The connection's read buffer: [begin_, end_) is received and not yet consumed. The bytes
// past end_ are poisoned, so a parser reading beyond the data it was given is caught at once.
class Buffer {
 public:
  explicit Buffer(std::size_t initial) : initial_(initial) {}
  ~Buffer() { ERRAND_FUZZ_UNPOISON(bytes_.data(), bytes_.size()); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  bool empty() const { return begin_ == end_; }
  std::string_view data() const { return std::string_view(bytes_.data() + begin_, end_ - begin_); }
  void consume(std::size_t n) { begin_ += n; }

  // Like Connection::read_more: compact, grow only when full, read into the room left.
  std::size_t read_more(Wire& wire) {
    ERRAND_FUZZ_UNPOISON(bytes_.data(), bytes_.size());
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (bytes_.empty()) bytes_.resize(initial_);
    if (end_ == bytes_.size()) bytes_.resize(bytes_.size() * 2);
    std::size_t n = wire.read(bytes_.data() + end_, bytes_.size() - end_);
    end_ += n;
    ERRAND_FUZZ_POISON(bytes_.data() + end_, bytes_.size() - end_);
    return n;
  }

 private:
  std::size_t initial_;
  std::vector<char> bytes_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

void check_step(std::string_view fed, const ResponseParser::Step& step) {
  require(step.consumed <= fed.size());
  if (step.event == Event::piece) {
    // A piece is body bytes from the part of the buffer this call consumed: the caller
    // discards consumed bytes before the next read.
    require(!step.piece.empty());
    require(step.piece.data() >= fed.data());
    require(step.piece.data() + step.piece.size() <= fed.data() + step.consumed);
  } else {
    require(step.piece.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const bool head_request = data[0] & 1;
  Buffer buffer(std::size_t{64} << ((data[0] >> 1) & 7));
  Wire wire(std::string_view(reinterpret_cast<const char*>(data) + 4, size - 4), data + 1, 3);

  // read_head: until a final response's header is complete.
  auto parser = std::make_unique<ResponseParser>(header_limit, head_request);
  std::size_t header_bytes = 0;  // of the current response, consumed so far
  for (;;) {
    if (!buffer.empty()) {
      std::string_view fed = buffer.data();
      auto step = parser->feed(fed);
      if (!step) {
        check_error(step.error());
        return 0;
      }
      check_step(fed, *step);
      require(step->event != Event::piece);  // no body before the header
      buffer.consume(step->consumed);
      header_bytes += step->consumed;
      // The header limit holds for the whole header, however it was split into reads.
      require(header_bytes + (fed.size() - step->consumed) <= header_limit ||
              step->event != Event::need_more);
      if (step->event == Event::header || step->event == Event::done) {
        require(parser->header_done());
        require(header_bytes <= header_limit);
        int status = parser->head().status;
        require(status >= 100 && status <= 999);
        if (status >= 100 && status < 200 && status != 101) {
          require(parser->done());  // an interim response has no body
          parser = std::make_unique<ResponseParser>(header_limit, head_request);
          header_bytes = 0;
          continue;
        }
        break;
      }
      require(!parser->header_done());
    }
    if (buffer.read_more(wire) == 0) {
      // The connection ended before the header did: that is always an error.
      auto eof = parser->feed_eof();
      require(!eof);
      check_error(eof.error());
      return 0;
    }
  }

  // read_body: pieces until the message is done or the connection ends.
  const int status = parser->head().status;
  const bool no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
  std::uint64_t body_bytes = 0;
  while (!parser->done()) {
    if (!buffer.empty()) {
      std::string_view fed = buffer.data();
      auto step = parser->feed(fed);
      if (!step) {
        check_error(step.error());
        return 0;
      }
      check_step(fed, *step);
      require(step->event != Event::header);  // the header was reported once
      require(step->event != Event::done || parser->done());
      buffer.consume(step->consumed);
      if (step->event == Event::piece) {
        require(!no_body);
        body_bytes += step->piece.size();
        continue;
      }
      if (step->event == Event::need_more) {
        // The unconsumed bytes (a chunk header, the trailer section) are all the parser makes
        // the buffer hold on to: they must stay within the header limit too, or a server could
        // grow the client's buffer without bound.
        require(fed.size() - step->consumed <= header_limit);
        require(!parser->done());
      }
    }
    if (parser->done()) break;
    if (buffer.read_more(wire) == 0) {
      auto eof = parser->feed_eof();
      if (!eof) {
        check_error(eof.error());
        return 0;
      }
      // Only a body without Content-Length or chunked coding may end with the connection.
      require(parser->close_delimited());
      require(!parser->chunked() && !parser->content_length());
      require(parser->done());
      break;
    }
  }

  require(parser->done());
  if (no_body) require(body_bytes == 0);
  if (!parser->chunked() && !no_body) {
    if (auto length = parser->content_length()) require(body_bytes == *length);
  }
  (void)parser->keep_alive();
  return 0;
}
