#include "http/connection.hpp"

#include "http/stream_source.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace errand::http {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t initial_buffer = 64 * 1024;
constexpr std::size_t file_chunk = 64 * 1024;

TimePoint now() { return std::chrono::steady_clock::now(); }

TimePoint later(TimePoint a, Duration d, TimePoint cap) {
  if (d <= Duration::zero() || a > TimePoint::max() - d) return cap;
  return std::min(a + d, cap);
}

std::string timeout_message(Phase phase) {
  switch (phase) {
    case Phase::tls: return "the TLS handshake did not finish before the deadline";
    case Phase::write: return "the request could not be written before the deadline";
    case Phase::first_byte: return "no response before the deadline";
    case Phase::read: return "the response stalled past the deadline";
    default: return "deadline exceeded";
  }
}

std::error_code to_std(const error_code& ec) { return std::error_code(ec.value(), std::system_category()); }

}  // namespace

Connection::Connection(asio::any_io_executor executor, std::string origin)
    : origin_(std::move(origin)), plain_(executor), timer_(executor), created_(now()), last_used_(created_) {}

Connection::~Connection() {
  error_code ignored;
  socket().close(ignored);
}

asio::ip::tcp::socket& Connection::socket() noexcept { return tls_ ? tls_->next_layer() : plain_; }

void Connection::arm(TimePoint deadline, Phase phase) {
  deadline_ = deadline;
  phase_ = phase;
  timed_out_ = false;
  if (deadline == TimePoint::max()) return;
  if (watching_) {
    // A later deadline needs nothing: the pending wait re-checks when it fires.
    if (deadline < timer_.expiry()) timer_.expires_at(deadline);  // the aborted wait re-arms
    return;
  }
  watching_ = true;
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this()](const error_code&) { self->on_watchdog(); });
}

void Connection::on_watchdog() {
  if (!open_ || deadline_ == TimePoint::max()) {
    watching_ = false;
    return;
  }
  if (now() >= deadline_) {
    watching_ = false;
    timed_out_ = true;
    timed_out_phase_ = phase_;
    error_code ignored;
    socket().cancel(ignored);
    return;
  }
  timer_.expires_at(deadline_);
  timer_.async_wait([self = shared_from_this()](const error_code&) { self->on_watchdog(); });
}

asio::awaitable<Error> Connection::classify(const error_code& ec, Phase phase, ErrorKind kind, std::string what) {
  close();
  if (cut_off_) co_return cut_off_error(to_std(ec), phase);
  if (timed_out_) co_return Error::timeout(timed_out_phase_, timeout_message(timed_out_phase_));
  auto state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none || ec == asio::error::operation_aborted)
    co_return Error(ErrorKind::cancelled, "request cancelled", to_std(ec), phase);
  if (kind == ErrorKind::io) {
    if (ec == asio::error::connection_reset) what += ": connection reset by peer";
    else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) what += ": connection closed by peer";
    else if (ec == asio::error::broken_pipe) what += ": connection closed by peer (broken pipe)";
    else what += ": " + ec.message();
  }
  co_return Error(kind, std::move(what), to_std(ec), phase);
}

asio::awaitable<Result<void>> Connection::establish(const EstablishParams& params, TimePoint deadline,
                                                    Timings& timings) {
  auto t0 = now();
  auto endpoints = co_await net::resolve(params.host, params.port, deadline, params.dns_cache);
  auto t1 = now();
  timings.dns = t1 - t0;
  if (!endpoints) co_return fail(std::move(endpoints.error()));

  if (cut_off_) co_return fail(cut_off_error());
  auto socket = co_await net::connect_any(std::move(*endpoints), deadline, params.happy_eyeballs_delay);
  if (cut_off_) co_return fail(cut_off_error());
  auto t2 = now();
  timings.connect = t2 - t1;
  if (!socket) co_return fail(std::move(socket.error()));
  plain_ = std::move(*socket);
  open_ = true;
  error_code ec;
  auto remote = plain_.remote_endpoint(ec);
  if (!ec) remote_ = net::to_string(remote);

  if (params.tls) {
    tls_ = std::make_unique<tls::Stream>(std::move(plain_), params.tls_context->native());
    auto prepared = params.tls_context->prepare(*tls_, params.host, origin_);
    if (!prepared) {
      close();
      co_return fail(std::move(prepared.error()));
    }
    arm(deadline, Phase::tls);
    auto [hs_ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    disarm();
    if (hs_ec) {
      std::string what = "TLS handshake with " + params.host + " failed: " + params.tls_context->describe_failure(*tls_, hs_ec);
      co_return fail(co_await classify(hs_ec, Phase::tls, ErrorKind::tls, std::move(what)));
    }
    tls_resumed_ = tls::ClientContext::session_reused(*tls_);
    timings.tls = now() - t2;
  }
  created_ = last_used_ = now();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Connection::write_request(std::string_view head, const RequestBody& body, Duration stall,
                                                        TimePoint total_deadline) {
  body_done_ = false;
  written_ = 0;
  // Not a coroutine itself: each kind of body has its own, and the common one (no body or a
  // string) keeps a small frame.
  if (const auto* file = std::get_if<FileBody>(&body)) return write_file_request(head, *file, stall, total_deadline);
  const std::string* text = std::get_if<std::string>(&body);
  return write_text_request(head, text ? std::string_view(*text) : std::string_view(), stall, total_deadline);
}

template <typename Buffers>
auto Connection::write_all(const Buffers& buffers) {
  if (tls_) return asio::async_write(*tls_, buffers, use_tuple);
  return asio::async_write(plain_, buffers, use_tuple);
}

asio::awaitable<Result<void>> Connection::write_text_request(std::string_view head, std::string_view rest,
                                                             Duration stall, TimePoint total_deadline) {
  // `stall` bounds each write, re-armed as the request makes progress: a large body to a slow
  // but steady server is not a timeout. (One failure path and few temporaries: this frame is
  // allocated for every request, and GCC gives each temporary its own slot in it.)
  arm(later(now(), stall, total_deadline), Phase::write);
  std::tuple<error_code, std::size_t> result;
  if (rest.empty()) {
    result = co_await write_all(asio::buffer(head));  // one buffer: send(), no iovec to gather
  } else {
    // Head and the first piece of the body in one gather write (one syscall for most requests).
    std::string_view first = rest.substr(0, file_chunk);
    rest.remove_prefix(first.size());
    result = co_await write_all(std::array<asio::const_buffer, 2>{asio::buffer(head), asio::buffer(first)});
  }
  const char* what = "writing the request failed";
  for (;;) {
    written_ += std::get<1>(result);
    if (std::get<0>(result)) break;
    if (rest.empty()) co_return Result<void>{};
    auto piece = rest.substr(0, file_chunk);
    rest.remove_prefix(piece.size());
    what = "writing the request body failed";
    arm(later(now(), stall, total_deadline), Phase::write);
    result = co_await write_all(asio::buffer(piece));
  }
  co_return fail(co_await classify(std::get<0>(result), Phase::write, ErrorKind::io, what));
}

asio::awaitable<Result<void>> Connection::write_file_request(std::string_view head, const FileBody& file,
                                                             Duration stall, TimePoint total_deadline) {
  int fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    close();
    co_return fail(Error::config("cannot open body file '" + file.path + "': " + std::strerror(errno)));
  }
  struct FdGuard {
    int fd;
    ~FdGuard() { ::close(fd); }
  } guard{fd};
  arm(later(now(), stall, total_deadline), Phase::write);
  auto [ec, n] = co_await write_all(asio::buffer(head));
  written_ += n;
  if (ec) co_return fail(co_await classify(ec, Phase::write, ErrorKind::io, "writing the request failed"));
  std::vector<char> chunk(file_chunk);
  for (;;) {
    ssize_t got = ::read(fd, chunk.data(), chunk.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      close();
      co_return fail(Error(ErrorKind::io, "reading body file '" + file.path + "' failed: " + std::strerror(errno)));
    }
    if (got == 0) break;
    arm(later(now(), stall, total_deadline), Phase::write);
    auto [wec, wn] = co_await write_all(asio::buffer(chunk.data(), static_cast<std::size_t>(got)));
    written_ += wn;
    if (wec) co_return fail(co_await classify(wec, Phase::write, ErrorKind::io, "writing the request body failed"));
  }
  co_return Result<void>{};
}

asio::awaitable<std::tuple<error_code, std::size_t>> Connection::read_some() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.empty()) buffer_.resize(initial_buffer);
  // Only framing grows it (a header, a chunk header, trailers), each bounded by the header
  // limit in the parser; body bytes are consumed as they come.
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  auto room = asio::buffer(buffer_.data() + end_, buffer_.size() - end_);
  // Returns the socket operation itself: no coroutine frame of its own on the hot path.
  if (tls_) return tls_->async_read_some(room, use_tuple);
  return plain_.async_read_some(room, use_tuple);
}

namespace {
bool is_eof(const error_code& ec) { return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated; }
}  // namespace

Result<h1::ResponseParser::Step> Connection::feed_buffered() {
  auto step = parser_->feed(std::string_view(buffer_.data() + begin_, end_ - begin_));
  if (!step) {
    close();
    return step;
  }
  begin_ += step->consumed;
  return step;
}

void Connection::end_body() noexcept {
  body_done_ = true;
  disarm();
}

asio::awaitable<Result<h1::ResponseHead>> Connection::read_head(bool head_request, std::size_t header_limit,
                                                                 TimePoint first_byte_deadline, Duration idle,
                                                                 TimePoint total_deadline) {
  parser_.emplace(header_limit, head_request);
  body_done_ = false;
  bool got_first = false;
  Phase phase = Phase::first_byte;
  // A cancellation that came as the request's last write completed found no operation to
  // cancel, and the wait for the answer (the longest) would not see it: it ends here.
  if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
    co_return fail(cancelled_between_steps(phase));
  arm(std::min(first_byte_deadline, total_deadline), phase);
  for (;;) {
    if (begin_ < end_) {
      auto step = feed_buffered();
      if (!step) co_return fail(std::move(step.error()));
      if (step->event == h1::ResponseParser::Event::header || step->event == h1::ResponseParser::Event::done) {
        int status = parser_->head().status;
        if (status >= 100 && status < 200 && status != 101) {  // interim response: the real one follows
          parser_.emplace(header_limit, head_request);
          continue;
        }
        keep_alive_ = parser_->keep_alive() && status != 101;  // after 101 the bytes are another protocol's
        body_done_ = parser_->done();
        if (body_done_) disarm();
        co_return std::move(parser_->head());
      }
    }
    auto [ec, n] = co_await read_some();
    if (ec && !is_eof(ec)) co_return fail(co_await classify(ec, phase, ErrorKind::io, "reading the response failed"));
    end_ += n;
    if (ec) {
      auto eof = parser_->feed_eof();
      close();
      if (!eof) co_return fail(std::move(eof.error()));
      co_return fail(Error(ErrorKind::io, "the connection closed before the response header was complete",
                           std::make_error_code(std::errc::connection_aborted), Phase::read));
    }
    if (!got_first) {
      got_first = true;
      first_byte_at_ = now();
      phase = Phase::read;
      arm(later(first_byte_at_, idle, total_deadline), phase);
    } else {
      arm(later(now(), idle, total_deadline), phase);  // idle means no progress, not a slow header
    }
  }
}

asio::awaitable<Result<std::string_view>> Connection::read_body(Duration idle, TimePoint total_deadline) {
  if (body_done_) co_return std::string_view();
  arm(later(now(), idle, total_deadline), Phase::read);
  for (;;) {
    if (parser_->done()) {
      end_body();
      co_return std::string_view();
    }
    if (begin_ < end_) {
      auto step = feed_buffered();
      if (!step) co_return fail(std::move(step.error()));
      if (step->event == h1::ResponseParser::Event::piece) co_return step->piece;
      if (step->event == h1::ResponseParser::Event::done) {
        end_body();
        co_return std::string_view();
      }
    }
    // As in read_head: a cancellation that came as the last read completed ends the wait for
    // the next piece, which on a slow stream may be long.
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      co_return fail(cancelled_between_steps(Phase::read));
    auto [ec, n] = co_await read_some();
    if (ec && !is_eof(ec)) co_return fail(co_await classify(ec, Phase::read, ErrorKind::io, "reading the response failed"));
    end_ += n;
    if (ec) {
      auto eof = parser_->feed_eof();
      keep_alive_ = false;
      close();
      if (!eof) co_return fail(std::move(eof.error()));
      body_done_ = true;  // close-delimited body complete (the connection is closed already)
      co_return std::string_view();
    }
  }
}

Result<bool> Connection::take_buffered_body(std::string& out, std::size_t limit) {
  // What is buffered already (often the whole body of a small response).
  while (!body_done_ && begin_ < end_ && !parser_->done()) {
    auto step = feed_buffered();
    if (!step) return fail(std::move(step.error()));
    if (step->event == h1::ResponseParser::Event::piece) {
      if (out.size() + step->piece.size() > limit) {
        close();
        return fail(body_limit_error(limit));
      }
      out.append(step->piece);
    }
    if (step->event == h1::ResponseParser::Event::need_more) break;
  }
  if (body_done_ || parser_->done()) {
    end_body();
    return true;
  }
  return false;
}

asio::awaitable<Result<void>> Connection::read_body_into(std::string& out, std::size_t limit, Duration idle,
                                                         TimePoint total_deadline) {
  auto over_limit = [&](std::size_t more) { return out.size() + more > limit; };
  auto append = [&](std::string_view piece) {  // false (and the connection closed) past the limit
    if (over_limit(piece.size())) {
      close();
      return false;
    }
    out.append(piece);
    return true;
  };
  for (;;) {
    auto complete = take_buffered_body(out, limit);  // no suspension for what is buffered
    if (!complete) co_return fail(std::move(complete.error()));
    if (*complete) co_return Result<void>{};
    if (parser_->length_body_remaining() && begin_ == end_) break;  // straight into `out` below
    // Unknown length, or framing split across reads: one more piece the ordinary way.
    auto piece = co_await read_body(idle, total_deadline);
    if (!piece) co_return fail(std::move(piece.error()));
    if (piece->empty()) co_return Result<void>{};
    if (!append(*piece)) co_return fail(body_limit_error(limit));
  }
  constexpr std::size_t step = 256 * 1024;
  while (!body_done_) {
    if (parser_->done()) {
      end_body();
      break;
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(*parser_->length_body_remaining(), step));
    if (over_limit(want)) {
      close();
      co_return fail(body_limit_error(limit));
    }
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      co_return fail(cancelled_between_steps(Phase::read));
    arm(later(now(), idle, total_deadline), Phase::read);
    std::size_t old = out.size();
    out.resize(old + want);
    auto room = asio::buffer(out.data() + old, want);
    std::tuple<error_code, std::size_t> result;
    if (tls_) result = co_await tls_->async_read_some(room, use_tuple);
    else result = co_await plain_.async_read_some(room, use_tuple);
    auto [ec, n] = result;
    out.resize(old + n);
    if (ec && !is_eof(ec)) co_return fail(co_await classify(ec, Phase::read, ErrorKind::io, "reading the response failed"));
    if (ec) {
      auto eof = parser_->feed_eof();
      close();
      if (!eof) co_return fail(std::move(eof.error()));
      co_return fail(Error(ErrorKind::io, "the connection closed before the response body was complete",
                           std::make_error_code(std::errc::connection_aborted), Phase::read));
    }
    // The parser sees the bytes where they already are: its piece is that very range.
    auto step_result = parser_->feed(std::string_view(out.data() + old, n));
    if (!step_result) {
      close();
      co_return fail(std::move(step_result.error()));
    }
    if (step_result->consumed != n || step_result->piece.data() != out.data() + old) {
      close();
      co_return fail(Error(ErrorKind::protocol, "response body framing went out of step", {}, Phase::read));
    }
  }
  co_return Result<void>{};
}

bool Connection::reusable() const noexcept {
  return open_ && body_done_ && keep_alive_ && parser_ && !parser_->close_delimited() && !timed_out_ &&
         begin_ == end_;
}

bool Connection::still_alive() {
  if (!open_ || begin_ != end_) return false;
  char probe;
  ssize_t n = ::recv(const_cast<Connection*>(this)->socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return false;  // 0: closed by the peer; >0: unsolicited bytes (a 408, a close_notify)
}

Error Connection::cut_off_error(std::error_code code, Phase phase) {
  return Error(ErrorKind::cancelled, "the client shut down before the request finished", code, phase);
}

Error Connection::cancelled_between_steps(Phase phase) {
  close();
  return Error(ErrorKind::cancelled, "request cancelled", std::make_error_code(std::errc::operation_canceled), phase);
}

void Connection::cut_off() {
  cut_off_ = true;
  close();
}

void Connection::close() {
  if (!open_ && !watching_) return;
  open_ = false;
  timer_.cancel();
  error_code ignored;
  socket().close(ignored);
}

}  // namespace errand::http
