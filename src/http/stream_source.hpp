// What a ResponseStream reads from: the connection itself, or a decoder in front of it.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <errand/http/client.hpp>

namespace errand::http {

class ResponseStream::Source {
 public:
  virtual ~Source() = default;
  // Next piece of the body or an empty view at its end; updates the timings in `head` when
  // the body ends.
  virtual boost::asio::awaitable<Result<std::string_view>> read(Response& head) = 0;
  virtual bool finished() const noexcept = 0;
  // Reads the rest of the body into head.body; more than `limit` bytes in all is a protocol
  // error. The default reads piece by piece; a source may do it with less overhead.
  virtual boost::asio::awaitable<Result<void>> read_all(Response& head, std::size_t limit);
  // read_all without suspending, when the source can (the rest of the body is buffered
  // already): its result, or nullopt, and then read_all does the rest. The default: nullopt.
  virtual std::optional<Result<void>> read_all_now(Response& head, std::size_t limit);
  // Moves the deadline for the rest of the body (open() through the layers: an attempt's own
  // limit ends with its head; the body has the request's deadline). The default: none to move.
  virtual void set_total_deadline(std::chrono::steady_clock::time_point) {}
};

Error body_limit_error(std::size_t limit);

// Reads the rest of the body from `source` into head.body, reserving a declared length first.
boost::asio::awaitable<Result<void>> read_all_into(ResponseStream::Source& source, Response& head, std::size_t limit);
// The first step of read_all_into: reserves head.body for a declared Content-Length.
void reserve_declared_body(const ResponseStream::Source& source, Response& head, std::size_t limit);

}  // namespace errand::http
