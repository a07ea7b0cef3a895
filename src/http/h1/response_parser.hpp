// HTTP/1.1 response framing on Beast's basic_parser: status line, header fields, and a body
// delimited by Content-Length, chunked transfer coding or the end of the connection; no body
// after HEAD, 1xx, 204 and 304. Body bytes are handed out as views into the caller's buffer
// (chunks are decoded in place, nothing is copied), one piece per feed() call, so a caller can
// stream a body of any size through a fixed buffer.
//
//   ResponseParser parser(1 << 20, /*head_request=*/false);
//   auto step = parser.feed(bytes);   // consumed bytes + need_more | header | piece | done
//
// header_limit bounds the header block and also each chunk header and the trailer section,
// which would otherwise grow a caller's buffer without bound.
// Errors are of kind protocol (malformed, header over the limit) or io (the connection ended
// before the response did). Not synchronised; one parser per response.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <errand/core/error.hpp>
#include <errand/http/headers.hpp>

namespace errand::http::h1 {

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version = 11;
  Headers headers;
};

class ResponseParser {
 public:
  enum class Event { need_more, header, piece, done };
  struct Step {
    Event event = Event::need_more;
    std::size_t consumed = 0;
    std::string_view piece;  // with Event::piece: body bytes, a view into the fed data
  };

  ResponseParser(std::size_t header_limit, bool head_request);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Parses from `data`. Stops after the header is complete, after one body piece, or when the
  // message is done; bytes not consumed must be fed again (with more appended) next time.
  Result<Step> feed(std::string_view data);
  // The connection ended: completes a body delimited by the end of the connection, else fails.
  Result<void> feed_eof();

  bool header_done() const noexcept;
  bool done() const noexcept;
  bool got_some() const noexcept;
  bool keep_alive() const noexcept;     // valid after the header
  bool chunked() const noexcept;
  bool close_delimited() const noexcept;  // body ends when the connection does
  std::optional<std::uint64_t> content_length() const noexcept;
  // Body bytes still to come when the body is delimited by Content-Length (else nullopt).
  std::optional<std::uint64_t> length_body_remaining() const noexcept;
  ResponseHead& head() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::http::h1
