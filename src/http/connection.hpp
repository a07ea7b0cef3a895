// One HTTP/1.1 connection: establishing it (DNS, TCP with Happy Eyeballs, TLS), writing a
// request, reading the response head and then its body piece by piece.
//
// Deadlines: one watchdog timer per connection. Each phase sets the deadline it must meet
// (arm); moving a deadline later costs nothing (the timer re-checks when it fires), and only
// an earlier one re-arms the timer, so a keep-alive request normally schedules no timer at
// all. When the deadline passes, the watchdog cancels the socket's operations and the failed
// operation is reported as a timeout in the phase that was armed.
//
// A Connection belongs to one worker (its executor) and is not synchronised. It is shared
// (shared_ptr) between the pool, the request using it and its own watchdog handler.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

#include "http/h1/response_parser.hpp"
#include "net/connect.hpp"
#include "tls/tls.hpp"

namespace errand::http {

using TimePoint = std::chrono::steady_clock::time_point;

struct EstablishParams {
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;
  tls::ClientContext* tls_context = nullptr;
  net::DnsCache* dns_cache = nullptr;
  Duration happy_eyeballs_delay = std::chrono::milliseconds(250);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor executor, std::string origin);
  ~Connection();

  // DNS + TCP + TLS before `deadline`; fills timings.dns/connect/tls.
  boost::asio::awaitable<Result<void>> establish(const EstablishParams& params, TimePoint deadline, Timings& timings);

  // Writes the request head and body. `stall` bounds each write's progress.
  boost::asio::awaitable<Result<void>> write_request(std::string_view head, const RequestBody& body,
                                                     Duration stall, TimePoint total_deadline);

  // Reads the response head (skipping 1xx interim responses). The first byte must arrive
  // before `first_byte_deadline`; after that, silence longer than `idle` is a timeout.
  boost::asio::awaitable<Result<h1::ResponseHead>> read_head(bool head_request, std::size_t header_limit,
                                                              TimePoint first_byte_deadline, Duration idle,
                                                              TimePoint total_deadline);

  // The next piece of the body (a view into the read buffer, valid until the next call),
  // or an empty view at the end of the body.
  boost::asio::awaitable<Result<std::string_view>> read_body(Duration idle, TimePoint total_deadline);

  // Reads the rest of the body, appending it to `out` (at most `limit` bytes in all, else a
  // protocol error). A body of known length is read from the socket straight into `out`, with
  // no copy through the connection's buffer.
  boost::asio::awaitable<Result<void>> read_body_into(std::string& out, std::size_t limit, Duration idle,
                                                      TimePoint total_deadline);

  // Appends the body bytes already buffered to `out`, without reading from the socket: true
  // when that completed the body, false when more must be read (read_body_into). Past `limit`
  // bytes in `out`, or on a framing error, fails and closes the connection.
  Result<bool> take_buffered_body(std::string& out, std::size_t limit);

  bool body_done() const noexcept { return body_done_; }
  // Bytes of the current request handed to the socket (0: the peer cannot have seen it).
  std::uint64_t request_bytes_written() const noexcept { return written_; }
  // Whether the connection can carry another request (after a complete body).
  bool reusable() const noexcept;
  bool is_open() const noexcept { return open_; }
  // Non-blocking check that an idle connection has not been closed by the peer.
  bool still_alive();
  void close();
  // Closes the connection under whatever operation runs on it; that operation, and any later
  // one, fails with kind cancelled ("the client shut down ..."). Client::shutdown's cut-off.
  void cut_off();
  // What a cut-off request fails with.
  static Error cut_off_error(std::error_code code = {}, Phase phase = Phase::none);
  // Closes the connection and says why: a cancellation that came between two of its steps
  // (when no operation was waiting to be cancelled), found before the next one starts. Not a
  // coroutine, so that the frames of the reads that check it stay small.
  Error cancelled_between_steps(Phase phase);

  const std::string& origin() const noexcept { return origin_; }
  TimePoint created_at() const noexcept { return created_; }
  TimePoint last_used() const noexcept { return last_used_; }
  void touch(TimePoint now) noexcept { last_used_ = now; }
  TimePoint first_byte_at() const noexcept { return first_byte_at_; }
  bool tls_resumed() const noexcept { return tls_resumed_; }
  bool is_tls() const noexcept { return tls_ != nullptr; }
  const std::string& remote_address() const noexcept { return remote_; }

 private:
  void arm(TimePoint deadline, Phase phase);
  void disarm() noexcept { deadline_ = TimePoint::max(); }
  void on_watchdog();
  boost::asio::ip::tcp::socket& socket() noexcept;
  // The request with no body or a string body, and with a file body.
  boost::asio::awaitable<Result<void>> write_text_request(std::string_view head, std::string_view body, Duration stall,
                                                          TimePoint total_deadline);
  boost::asio::awaitable<Result<void>> write_file_request(std::string_view head, const FileBody& file, Duration stall,
                                                          TimePoint total_deadline);
  // async_write of `buffers` to the socket or the TLS stream, as an awaitable (error, bytes).
  template <typename Buffers>
  auto write_all(const Buffers& buffers);
  // The error for a failed socket operation: timeout if the watchdog fired, cancelled if the
  // awaiting coroutine was cancelled, else the I/O error itself (kind io, or as given).
  boost::asio::awaitable<Error> classify(const boost::system::error_code& ec, Phase phase, ErrorKind kind,
                                         std::string what);
  // Compacts the buffer and reads once into its free space.
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some();
  // Feeds the unparsed bytes of the buffer to the parser and drops what it consumed; a parse
  // error closes the connection.
  Result<h1::ResponseParser::Step> feed_buffered();
  void end_body() noexcept;

  std::string origin_;
  boost::asio::ip::tcp::socket plain_;
  std::unique_ptr<tls::Stream> tls_;
  boost::asio::steady_timer timer_;
  TimePoint deadline_ = TimePoint::max();
  Phase phase_ = Phase::none;
  bool watching_ = false;
  bool timed_out_ = false;
  Phase timed_out_phase_ = Phase::none;
  bool open_ = false;
  bool cut_off_ = false;

  std::vector<char> buffer_;
  std::size_t begin_ = 0;  // unparsed data is buffer_[begin_, end_)
  std::size_t end_ = 0;
  std::optional<h1::ResponseParser> parser_;
  bool body_done_ = false;
  bool keep_alive_ = false;
  std::uint64_t written_ = 0;

  TimePoint created_;
  TimePoint last_used_;
  TimePoint first_byte_at_{};
  bool tls_resumed_ = false;
  std::string remote_;
};

}  // namespace errand::http
