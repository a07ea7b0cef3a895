// HTTP/1.1 response framing for the load generator: finds where each response ends and what
// the caller needs to know about it (status, keep-alive, body size), without allocating and
// without keeping the header or body. Bytes are fed as they arrive, split anywhere; one framer
// per connection is reset for each response. What it understands is what framing needs:
// the status line, Content-Length, Transfer-Encoding (chunked or not), Connection, HTTP/1.0,
// no body after HEAD/204/304, 1xx interim responses, bodies ended by the connection closing.
// Every other header is skipped (checked for shape, not kept).
//
// The client's own parser (http/h1/response_parser, on Beast) keeps headers and hands out
// body bytes; this one only counts them, which is what a load generator can afford per
// response. fuzz/load_framer_fuzz.cpp checks both agree on what they both accept.
#pragma once

#include <cstddef>
#include <cstdint>

namespace errand::load {

// For streams (errand bench --stream): sees the body as it is framed. Calls happen inside
// feed(); `data` points into the fed bytes.
class BodyObserver {
 public:
  virtual void on_body(const char* data, std::size_t length) = 0;
  virtual void on_chunk() = 0;  // a chunk of a chunked body begins
 protected:
  ~BodyObserver() = default;
};

class ResponseFramer {
 public:
  enum class Status { need_more, done, error };

  explicit ResponseFramer(std::size_t header_limit = 1 << 20) noexcept : header_limit_(header_limit) {}

  // Starts a new response. `head_request`: the response to a HEAD has no body.
  void reset(bool head_request) noexcept;
  // Body bytes and chunk starts go to `observer` (kept across reset; nullptr: none).
  void observe(BodyObserver* observer) noexcept { observer_ = observer; }

  // Consumes a prefix of [data, data+len) and stores its length in `consumed`. Returns done when
  // the response ended inside it (bytes after `consumed` belong to the next response), error on
  // malformed input (see error()), need_more when all of it was consumed.
  Status feed(const char* data, std::size_t len, std::size_t& consumed) noexcept;
  // The peer closed: ends a body delimited by the connection, otherwise error.
  Status feed_eof() noexcept;

  bool started() const noexcept { return header_bytes_ > 0 || state_ != State::status_line_start; }
  int status() const noexcept { return status_; }
  bool keep_alive() const noexcept { return keep_alive_; }
  bool event_stream() const noexcept { return event_stream_; }  // Content-Type: text/event-stream
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  const char* error() const noexcept { return error_; }  // static text, valid after error

 private:
  enum class State : std::uint8_t {
    status_line_start, status_version, status_code, status_reason, status_lf,
    field_start, field_name, field_value, field_lf, headers_lf,
    body_length, body_until_close,
    chunk_size, chunk_ext, chunk_size_lf, chunk_data, chunk_data_cr, chunk_data_lf,
    trailer_start, trailer_line, trailer_lf,
    done, failed,
  };
  enum class Field : std::uint8_t { other, content_length, transfer_encoding, connection, content_type };

  Status fail(const char* why) noexcept;
  bool end_of_field() noexcept;    // false: error set
  Status end_of_headers() noexcept;
  void after_chunk_size() noexcept;

  std::size_t header_limit_;
  BodyObserver* observer_ = nullptr;
  State state_ = State::status_line_start;
  bool head_request_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool chunked_ = false;
  bool chunked_seen_ = false;  // in any Transfer-Encoding field so far
  bool has_length_ = false;
  bool saw_transfer_encoding_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool event_stream_ = false;
  Field field_ = Field::other;
  int status_ = 0;
  int digits_ = 0;
  std::uint64_t content_length_ = 0;
  std::uint64_t remaining_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::uint64_t header_bytes_ = 0;
  const char* error_ = nullptr;
  // The name of the current header field (only the interesting ones are short) and the value
  // of an interesting field; both bounded.
  std::uint8_t name_len_ = 0;
  char name_[20];
  std::uint16_t value_len_ = 0;
  char value_[256];
  char version_[8];
  std::uint8_t version_len_ = 0;
};

}  // namespace errand::load
