#include "load/engine.hpp"

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <queue>

#include "load/framer.hpp"
#include "load/tls_session.hpp"

namespace errand::load {

std::string_view to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::automatic: return "auto";
    case Backend::io_uring: return "io_uring";
    case Backend::epoll: return "epoll";
  }
  return "?";
}

namespace {

void add_series(std::vector<std::uint64_t>& into, const std::vector<std::uint64_t>& from) {
  if (into.size() < from.size()) into.resize(from.size());
  for (std::size_t i = 0; i < from.size(); ++i) into[i] += from[i];
}

std::uint64_t& slot_for(std::vector<std::uint64_t>& series, std::chrono::nanoseconds since) {
  auto second = static_cast<std::size_t>(since.count() / 1'000'000'000);
  if (second >= series.size()) series.resize(second + 1);
  return series[second];
}

}  // namespace

void Tally::count_response_at(std::chrono::nanoseconds since) {
  ++slot_for(per_second, since);
  measured = std::max(measured, since);
}

void Tally::count_bytes_at(std::chrono::nanoseconds since, std::uint64_t n) { slot_for(per_second_bytes, since) += n; }

void Tally::merge(const Tally& o) {
  latency.merge(o.latency);
  corrected_latency.merge(o.corrected_latency);
  connect_time.merge(o.connect_time);
  first_byte.merge(o.first_byte);
  first_event.merge(o.first_event);
  event_gap.merge(o.event_gap);
  events += o.events;
  streams_cut += o.streams_cut;
  requests += o.requests;
  warmup_requests += o.warmup_requests;
  bytes += o.bytes;
  for (std::size_t i = 0; i < status.size(); ++i) status[i] += o.status[i];
  for (std::size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  for (std::size_t i = 0; i < timeouts_by_phase.size(); ++i) timeouts_by_phase[i] += o.timeouts_by_phase[i];
  if (first_error.empty()) first_error = o.first_error;
  connections_opened += o.connections_opened;
  tls_full += o.tls_full;
  tls_resumed += o.tls_resumed;
  tls_full_time.merge(o.tls_full_time);
  tls_resumed_time.merge(o.tls_resumed_time);
  reused_requests += o.reused_requests;
  add_series(per_second, o.per_second);
  add_series(per_second_bytes, o.per_second_bytes);
  measured = std::max(measured, o.measured);
  if (backend == Backend::automatic) backend = o.backend;
  gather_responses = std::max(gather_responses, o.gather_responses);
  gather_waits += o.gather_waits;
  gather_empty_waits += o.gather_empty_waits;
}

std::uint64_t Tally::error_total() const noexcept {
  std::uint64_t n = 0;
  for (auto e : errors) n += e;
  return n;
}

namespace {

std::uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

constexpr std::size_t receive_buffer_size = 8192;
constexpr std::size_t plain_size = 16384;  // one TLS record
constexpr std::uint64_t never = ~0ull;

// --stream: finds the events of one response as the framer hands out its body.
class StreamWatch final : public BodyObserver {
 public:
  void attach(Tally* tally, const std::uint64_t* now, const ResponseFramer* framer) {
    tally_ = tally;
    now_ = now;
    framer_ = framer;
  }
  void begin(std::uint64_t sent_at, bool measured) {
    sent_at_ = sent_at;
    measured_ = measured;
    last_event_ = 0;
    decided_ = false;
    newlines_ = 0;
    pending_ = false;
  }
  void on_body(const char* data, std::size_t length) override {
    if (!decide() || !sse_) return;
    // An event ends with an empty line: two line ends in a row ("\n\n" or "\r\n\r\n").
    for (std::size_t i = 0; i < length; ++i) {
      char c = data[i];
      if (c == '\r') continue;
      if (c != '\n') {
        newlines_ = 0;
        pending_ = true;
        continue;
      }
      if (++newlines_ >= 2 && pending_) {
        event();
        pending_ = false;
      }
    }
  }
  void on_chunk() override {
    if (decide() && !sse_) event();
  }

 private:
  bool decide() {
    if (!decided_) {
      sse_ = framer_->event_stream();
      decided_ = true;
    }
    return measured_;
  }
  void event() {
    std::uint64_t now = *now_;
    ++tally_->events;
    if (last_event_ == 0) tally_->first_event.record(now - sent_at_);
    else tally_->event_gap.record(now - last_event_);
    last_event_ = now;
  }

  Tally* tally_ = nullptr;
  const std::uint64_t* now_ = nullptr;
  const ResponseFramer* framer_ = nullptr;
  std::uint64_t sent_at_ = 0, last_event_ = 0;
  bool measured_ = false, decided_ = false, sse_ = false, pending_ = false;
  int newlines_ = 0;
};

struct Conn {
  enum class State : std::uint8_t { closed, connecting, open, waiting, finished };
  int fd = -1;
  std::uint32_t generation = 0;  // changes with every socket: late completions are recognised
  State state = State::closed;
  bool receiving = false;  // a receive is posted (io_uring) / wanted (epoll)
  bool failed = false;     // counted as failed; the socket is being torn down
  bool closing = false;    // shut down; the posted receive's last completion closes it
  unsigned batch = 0;      // requests of the current batch still unanswered
  unsigned served = 0;     // responses on this socket
  bool measured = false;   // the current batch belongs to the measurement
  std::uint64_t connect_started = 0;
  std::uint64_t sent_at = 0;
  std::uint64_t active_at = 0;  // the last bytes received (--stream: timeouts count silence)
  std::uint64_t due_at = 0;
  const char* unsent_at = nullptr;  // epoll: the bytes of the batch not yet written
  std::size_t unsent = 0;
  bool want_write = false; // epoll: EPOLLOUT is registered
  ResponseFramer framer;
  std::unique_ptr<char[]> buffer;
  std::unique_ptr<StreamWatch> watch;  // --stream only
  std::unique_ptr<TlsSession> tls;     // https only
  bool handshaking = false;
  bool opening = false;  // connecting or in the TLS handshake (Engine::opening_)
  std::uint64_t handshake_started = 0;
  std::unique_ptr<char[]> plain;       // https: decrypted bytes
};

enum Op : std::uint64_t { op_connect = 1, op_send = 2, op_recv = 3 };

std::uint64_t pack(std::uint32_t index, std::uint32_t generation, Op op) noexcept {
  return (static_cast<std::uint64_t>(index) << 32) | (static_cast<std::uint64_t>(generation & 0xffffff) << 8) | op;
}
struct Unpacked {
  std::uint32_t index;
  std::uint32_t generation;
  Op op;
};
Unpacked unpack(std::uint64_t v) noexcept {
  return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>((v >> 8) & 0xffffff), static_cast<Op>(v & 0xff)};
}

// ---------------------------------------------------------------------------------------------
// The connection logic, shared by both back ends. `Io` posts operations and reports their
// completions back through on_connected / on_received / on_send_failed.
template <class Io>
class Engine {
 public:
  Engine(const Plan& plan, std::uint64_t start) : plan_(plan), conns_(plan.connections) {
    start_ = start;
    measure_start_ = start + static_cast<std::uint64_t>(plan.warmup.count());
    measure_end_ = plan.duration.count() > 0 ? measure_start_ + static_cast<std::uint64_t>(plan.duration.count()) : never;
    if (plan.rate > 0) interval_ns_ = static_cast<double>(plan.connections) / plan.rate * 1e9;
    for (auto& c : conns_) {
      c.buffer = std::make_unique<char[]>(receive_buffer_size);
      c.framer = ResponseFramer(plan.header_limit);
      if (plan.stream) {
        c.watch = std::make_unique<StreamWatch>();
        c.watch->attach(&tally_, &now_, &c.framer);
        c.framer.observe(c.watch.get());
      }
    }
    batch_bytes_ = plan.request;
    for (unsigned i = 1; i < plan.pipeline; ++i) batch_bytes_ += plan.request;
  }

  Tally& tally() { return tally_; }
  Io& io() { return io_; }
  std::vector<Conn>& conns() { return conns_; }

  void begin() {
    plan_gathering();
    std::uint64_t now = now_ns();
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
      if (plan_.rate > 0) {
        // Spread the first requests evenly over one interval: no thundering start.
        conns_[i].due_at = start_ + static_cast<std::uint64_t>(interval_ns_ * i / static_cast<double>(conns_.size()));
      }
      next_request(i, now);
    }
  }

  // The event loop: post, wait, dispatch, until nothing is left to do.
  void loop() {
    std::uint64_t next_sweep = now_ns() + sweep_period();
    while (true) {
      std::uint64_t now = now_ns();
      if (!stopping_ && now >= measure_end_) {
        stopping_ = true;
        if (plan_.stream) cut_streams();
      }
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + sweep_period();
      }
      release_due(now);
      if (stopping_ && busy() == 0) break;
      std::uint64_t wake = next_sweep;
      if (!stopping_) wake = std::min(wake, measure_end_);
      if (!due_.empty()) wake = std::min(wake, due_.top().first);
      unsigned gather = stopping_ || opening_ > 0 ? 1 : gather_count_;
      io_.wait(wake > now ? wake - now : 0, gather, gather_ns_, *this);
    }
    for (std::uint32_t i = 0; i < conns_.size(); ++i)
      if (conns_[i].fd >= 0) close_socket(i);
  }

  // ---- completions ----
  void on_connected(std::uint32_t i, int error) {
    Conn& c = conns_[i];
    std::uint64_t now = now_ns();
    if (c.failed || error != 0) {
      if (!c.failed) count_failure(c, ErrorKind::connect, Phase::connect, std::strerror(error));
      restart(i, now);
      return;
    }
    c.state = Conn::State::open;
    if (!plan_.tls) set_opening(c, false);
    ++tally_.connections_opened;
    if (c.measured) tally_.connect_time.record(now - c.connect_started);
    if (plan_.tls) {
      start_tls(i, now);
      return;
    }
    send_batch(i, now);
  }

  // n > 0: bytes at `data`; 0: the peer closed; < 0: -errno. `armed`: the receive stays posted
  // (io_uring multishot) and will complete again.
  void on_received(std::uint32_t i, const char* data, long n, bool armed) {
    Conn& c = conns_[i];
    c.receiving = armed;
    std::uint64_t now = now_ns();
    if (c.failed || c.closing) {  // being torn down: only the last completion matters
      if (!armed) restart(i, now);
      return;
    }
    if (n < 0) {
      count_failure(c, ErrorKind::io, c.handshaking ? Phase::tls : Phase::read, std::strerror(static_cast<int>(-n)));
      restart(i, now);
      return;
    }
    if (n == 0) {
      end_of_connection(i, now);
      return;
    }
    tally_.bytes += static_cast<std::uint64_t>(n);
    if (now >= measure_start_) tally_.count_bytes_at(std::chrono::nanoseconds(now - measure_start_), static_cast<std::uint64_t>(n));
    c.active_at = now;
    if (!c.tls) {
      if (frame(i, data, static_cast<std::size_t>(n), now)) after_data(i, now);
      return;
    }
    c.tls->feed(data, static_cast<std::size_t>(n));
    if (c.handshaking) {
      advance_handshake(i, now);
      return;
    }
    while (true) {
      long got = c.tls->read(c.plain.get(), plain_size);
      if (got == 0) break;
      if (got == -1) {
        count_failure(c, ErrorKind::tls, Phase::read, c.tls->failure().c_str());
        restart(i, now);
        return;
      }
      if (got == -2) {  // close_notify: the end of the connection
        end_of_connection(i, now);
        return;
      }
      if (!frame(i, c.plain.get(), static_cast<std::size_t>(got), now)) return;
    }
    after_data(i, now);
  }

  void on_send_failed(std::uint32_t i, int error) {
    Conn& c = conns_[i];
    if (c.failed) return;
    count_failure(c, ErrorKind::io, Phase::write, std::strerror(error));
    tear_down(i);
  }

  // The peer closed (FIN, or a TLS close_notify).
  void end_of_connection(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    if (c.handshaking) {
      count_failure(c, ErrorKind::tls, Phase::tls, "the server closed the connection during the TLS handshake");
    } else if (c.batch > 0) {
      if (c.framer.feed_eof() == ResponseFramer::Status::done) {
        complete(c, now);
      } else {
        count_failure(c, ErrorKind::io, c.framer.started() ? Phase::read : Phase::first_byte, c.framer.error());
      }
    }  // else: the server closed an idle connection
    restart(i, now);
  }

  // Frames response bytes; false when the connection was given up (failed or closed).
  bool frame(std::uint32_t i, const char* p, std::size_t left, std::uint64_t now) {
    Conn& c = conns_[i];
    if (plan_.stream) {
      now_ = now;
      if (!c.framer.started() && c.measured && c.batch > 0) tally_.first_byte.record(now - c.sent_at);
    }
    while (left > 0) {
      if (c.batch == 0) {
        count_failure(c, ErrorKind::protocol, Phase::read, "bytes after the response");
        restart(i, now);
        return false;
      }
      std::size_t used = 0;
      auto status = c.framer.feed(p, left, used);
      p += used;
      left -= used;
      if (status == ResponseFramer::Status::error) {
        count_failure(c, ErrorKind::protocol, Phase::read, c.framer.error());
        restart(i, now);
        return false;
      }
      if (status == ResponseFramer::Status::need_more) break;
      bool keep_alive = c.framer.keep_alive();
      complete(c, now);
      if (!keep_alive) {
        if (c.batch > 0) count_failure(c, ErrorKind::io, Phase::first_byte, "the server closed a pipelined connection");
        restart(i, now);
        return false;
      }
    }
    return true;
  }

  // All received bytes are framed: wait for more, or go on with the next request.
  void after_data(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    if (c.batch > 0) {
      receive(i);
      return;
    }
    if (plan_.close_each) {
      restart(i, now);
      return;
    }
    next_request(i, now);
  }

  // epoll: the socket became readable while no response was expected (the server closed an
  // idle connection, or sent something unasked): the socket is dropped; the next request
  // opens a new one.
  void on_idle_readable(std::uint32_t i) { close_socket(i); }

  std::uint32_t generation(std::uint32_t i) const { return conns_[i].generation; }

 private:
  std::uint64_t sweep_period() const {
    auto t = static_cast<std::uint64_t>(plan_.timeout.count()) / 10;
    return std::clamp<std::uint64_t>(t, 1'000'000, 100'000'000);
  }

  // A wake-up waits for the receives of half of the connections, but never for so many that
  // fewer than 16 requests are left with the server: it keeps working meanwhile, so the wait
  // does not leave it idle, and a lightly loaded server (few connections) is measured one
  // response at a time. A connection completes about once per batch (its multishot receive),
  // whatever --pipeline is, so the count is of connections. The open model's sends are due at
  // set times, --stream measures the gaps between events, and --close spends its time in
  // handshakes, where waiting saves nothing: there a wake-up never waits for others. Needs the
  // I/O to be initialised (Io::can_gather).
  void plan_gathering() {
    if (!io_.can_gather() || plan_.rate > 0 || plan_.stream || plan_.close_each || plan_.gather.count() <= 0) return;
    unsigned conns = plan_.connections;
    unsigned reserve = (server_share + plan_.pipeline - 1) / plan_.pipeline;  // their requests stay with the server
    if (conns <= reserve + 1) return;
    gather_count_ = std::min({conns / 2, conns - reserve, 256u});
    gather_ns_ = static_cast<std::uint64_t>(plan_.gather.count());
    tally_.gather_responses = gather_count_;
  }

  std::size_t busy() const {
    std::size_t n = 0;
    for (auto& c : conns_)
      if (c.state == Conn::State::connecting || c.batch > 0 || c.receiving || c.failed || c.closing) ++n;
    return n;
  }

  // Decides the next batch for connection i: sends it, waits for its due time, or finishes.
  void next_request(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    if (plan_.rate > 0) {
      if (c.due_at == 0) c.due_at = now;
      if (c.due_at > now && !stopping_) {
        c.state = c.fd >= 0 ? Conn::State::open : Conn::State::closed;
        due_.push({c.due_at, i});
        return;
      }
    }
    start_batch(i, now);
  }

  void release_due(std::uint64_t now) {
    while (!due_.empty() && (due_.top().first <= now || stopping_)) {
      std::uint32_t i = due_.top().second;
      due_.pop();
      start_batch(i, now);
    }
  }

  void start_batch(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    std::uint64_t phase_time = plan_.rate > 0 ? c.due_at : now;
    if (stopping_ || phase_time >= measure_end_) {
      finish(i);
      return;
    }
    c.measured = phase_time >= measure_start_;
    unsigned n = plan_.pipeline;
    if (c.measured && plan_.max_requests > 0) {
      std::uint64_t left = plan_.max_requests - issued_;
      if (left == 0) {
        stopping_ = true;
        finish(i);
        return;
      }
      n = static_cast<unsigned>(std::min<std::uint64_t>(n, left));
      issued_ += n;
      if (issued_ == plan_.max_requests) stopping_ = true;
    }
    c.batch = n;
    if (c.fd < 0) {
      connect(i, now);
      return;
    }
    send_batch(i, now);
  }

  void finish(std::uint32_t i) {
    Conn& c = conns_[i];
    if (c.fd >= 0 && c.receiving) {
      shut(c);  // the receive's last completion comes back through restart() to here
      return;
    }
    if (c.fd >= 0) close_socket(i);
    c.state = Conn::State::finished;
  }

  void shut(Conn& c) {
    c.closing = true;
    ::shutdown(c.fd, SHUT_RDWR);
  }

  void connect(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    c.fd = ::socket(plan_.endpoint.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | Io::socket_flags, 0);
    if (c.fd < 0) {
      count_failure(c, ErrorKind::connect, Phase::connect, std::strerror(errno));
      c.batch = 0;
      c.state = Conn::State::closed;
      pause_after_local_failure(i);
      return;
    }
    if (batch_bytes_.size() > 1400) {
      // One segment goes out at once anyway; a request spanning several must not wait for ACKs.
      int one = 1;
      ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ++c.generation;
    c.served = 0;
    c.failed = false;
    c.state = Conn::State::connecting;
    set_opening(c, true);
    c.connect_started = now;
    io_.connect(i, c, plan_.endpoint);
  }

  void send_batch(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    c.state = Conn::State::open;
    c.sent_at = now;
    c.active_at = now;
    if (c.served > 0) tally_.reused_requests += c.batch;
    c.framer.reset(plan_.head_request);
    if (c.watch) c.watch->begin(now, c.measured);
    std::string_view bytes(batch_bytes_.data(), plan_.request.size() * c.batch);
    if (c.tls) {
      c.tls->write(bytes);
      bytes = c.tls->take_output();
    }
    if (int error = io_.send(i, c, bytes); error != 0) {
      count_failure(c, ErrorKind::io, Phase::write, std::strerror(error));
      restart(i, now);
      return;
    }
    receive(i);
  }

  void start_tls(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    auto session = TlsSession::start(*plan_.tls, plan_.host, plan_.origin);
    if (!session) {
      count_failure(c, ErrorKind::tls, Phase::tls, session.error().message().c_str());
      restart(i, now);
      return;
    }
    c.tls = std::move(*session);
    if (!c.plain) c.plain = std::make_unique<char[]>(plain_size);
    c.handshaking = true;
    c.handshake_started = now;
    c.active_at = now;
    advance_handshake(i, now);
  }

  void advance_handshake(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    auto state = c.tls->handshake();
    if (state == TlsSession::Handshake::failed) {
      count_failure(c, ErrorKind::tls, Phase::tls, c.tls->failure().c_str());
      restart(i, now);
      return;
    }
    if (std::string_view out = c.tls->take_output(); !out.empty()) {
      if (int error = io_.send(i, c, out); error != 0) {
        count_failure(c, ErrorKind::io, Phase::tls, std::strerror(error));
        restart(i, now);
        return;
      }
    }
    if (state == TlsSession::Handshake::in_progress) {
      receive(i);
      return;
    }
    c.handshaking = false;
    set_opening(c, false);
    if (c.measured) {
      bool resumed = c.tls->resumed();
      (resumed ? tally_.tls_resumed : tally_.tls_full) += 1;
      (resumed ? tally_.tls_resumed_time : tally_.tls_full_time).record(now - c.handshake_started);
    }
    send_batch(i, now);
  }

  void receive(std::uint32_t i) {
    Conn& c = conns_[i];
    if (c.receiving) return;
    c.receiving = true;
    io_.receive(i, c, receive_buffer_size);
  }

  void complete(Conn& c, std::uint64_t now) {
    if (plan_.live_responses) plan_.live_responses->store(++responses_, std::memory_order_relaxed);
    --c.batch;
    ++c.served;
    int code = c.framer.status();
    if (c.measured) {
      ++tally_.requests;
      tally_.latency.record(now - c.sent_at);
      if (plan_.rate > 0) tally_.corrected_latency.record(now - std::min(c.due_at, c.sent_at));
      if (code >= 0 && code < static_cast<int>(tally_.status.size())) ++tally_.status[static_cast<std::size_t>(code)];
      tally_.count_response_at(std::chrono::nanoseconds(now - measure_start_));
    } else {
      ++tally_.warmup_requests;
    }
    if (plan_.rate > 0 && c.batch == 0) c.due_at += static_cast<std::uint64_t>(interval_ns_);
    c.framer.reset(plan_.head_request);
  }

  void count_failure(Conn& c, ErrorKind kind, Phase phase, const char* what) {
    c.failed = true;
    if (plan_.live_errors) plan_.live_errors->store(++failures_, std::memory_order_relaxed);
    if (!c.measured) return;
    unsigned lost = std::max(1u, c.batch);
    tally_.errors[static_cast<std::size_t>(kind)] += lost;
    if (kind == ErrorKind::timeout) tally_.timeouts_by_phase[static_cast<std::size_t>(phase)] += lost;
    if (tally_.first_error.empty()) {
      Error first(kind, what ? what : "", {}, kind == ErrorKind::timeout ? phase : Phase::none);
      tally_.first_error = first.describe() + " (" + plan_.endpoint.text + ")";
    }
    if (plan_.rate > 0) c.due_at += static_cast<std::uint64_t>(interval_ns_) * std::max(1u, c.batch);
  }

  // Stops a failed socket: when an operation is still posted, it ends with the shutdown and its
  // completion restarts the connection.
  void tear_down(std::uint32_t i) {
    Conn& c = conns_[i];
    if (c.state == Conn::State::connecting) {
      ::shutdown(c.fd, SHUT_RDWR);  // the connect completes with an error
      return;
    }
    restart(i, now_ns());
  }

  // The socket is done (response with close, failure, end of a --close request): close it and
  // carry on with a new one if there is work left.
  void restart(std::uint32_t i, std::uint64_t now) {
    Conn& c = conns_[i];
    if (c.fd >= 0 && c.receiving) {
      shut(c);  // a posted receive still holds the socket; its last completion returns here
      return;
    }
    if (c.fd >= 0) close_socket(i);
    bool refused = c.failed && c.state == Conn::State::connecting;
    c.batch = 0;
    c.failed = false;
    c.closing = false;
    c.state = Conn::State::closed;
    if (refused) {
      pause_after_local_failure(i);
      return;
    }
    next_request(i, now);
  }

  // A connect that fails at once (refused port, no descriptors) would spin; like a browser or
  // curl's retry it waits a moment before the next attempt. Not latency: nothing was sent.
  void pause_after_local_failure(std::uint32_t i) {
    Conn& c = conns_[i];
    std::uint64_t at = now_ns() + 1'000'000;  // 1 ms
    if (plan_.rate > 0) at = std::max(at, c.due_at);
    if (stopping_) {
      finish(i);
      return;
    }
    due_.push({at, i});
  }

  void set_opening(Conn& c, bool opening) {
    if (c.opening == opening) return;
    c.opening = opening;
    opening ? ++opening_ : --opening_;
  }

  void close_socket(std::uint32_t i) {
    Conn& c = conns_[i];
    c.tls.reset();
    c.handshaking = false;
    set_opening(c, false);
    io_.close(i, c);
    c.fd = -1;
    c.receiving = false;
    ++c.generation;
  }

  // --stream: the measurement is over; streams still open are closed, counted, not failed.
  void cut_streams() {
    std::uint64_t now = now_ns();
    tally_.measured = std::max(tally_.measured, std::chrono::nanoseconds(now - measure_start_));
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      if (c.state != Conn::State::open || c.batch == 0 || c.failed || c.closing) continue;
      if (c.measured) tally_.streams_cut += c.batch;
      restart(i, now);
    }
  }

  void sweep(std::uint64_t now) {
    auto limit = static_cast<std::uint64_t>(plan_.timeout.count());
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      if (c.failed || c.closing) continue;
      if (c.state == Conn::State::connecting && now - c.connect_started > limit) {
        count_failure(c, ErrorKind::timeout, Phase::connect, "no connection within the timeout");
        tear_down(i);
      } else if (c.state == Conn::State::open && (c.batch > 0 || c.handshaking) && now - c.active_at > limit) {
        Phase phase = c.handshaking ? Phase::tls : c.framer.started() ? Phase::read : Phase::first_byte;
        count_failure(c, ErrorKind::timeout, phase, "no complete response within the timeout");
        tear_down(i);
      }
    }
  }

  const Plan& plan_;
  std::vector<Conn> conns_;
  std::string batch_bytes_;
  Tally tally_;
  Io io_;
  std::uint64_t start_ = 0, measure_start_ = 0, measure_end_ = never;
  double interval_ns_ = 0;
  std::uint64_t issued_ = 0;
  std::uint64_t responses_ = 0, failures_ = 0;
  std::uint64_t now_ = 0;  // --stream: the time of the bytes being framed, for StreamWatch
  static constexpr unsigned server_share = 16;  // requests a gathering wait leaves in flight
  unsigned gather_count_ = 1;    // completions a loop turn waits for (Plan::gather)
  unsigned opening_ = 0;         // connections opening: their connect and handshake times are
                                 // measured, so no turn gathers meanwhile
  std::uint64_t gather_ns_ = 0;  // but no longer than this
  bool stopping_ = false;
  using Due = std::pair<std::uint64_t, std::uint32_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
};

// ---------------------------------------------------------------------------------------------
// io_uring: every operation is an SQE; one io_uring_enter per loop turn submits them all and
// waits for completions. Successful sends and closes post no completion at all.
class UringIo {
 public:
  static constexpr int socket_flags = 0;

  UringIo() = default;
  UringIo(const UringIo&) = delete;
  UringIo& operator=(const UringIo&) = delete;
  ~UringIo() {
    if (buffer_ring_) {
      io_uring_unregister_buf_ring(&ring_, buffer_group);
      ::munmap(buffer_ring_, buffer_ring_bytes_);
    }
    if (ready_) io_uring_queue_exit(&ring_);
  }

  // 0 or -errno. `multishot`: one receive per connection stays posted for its whole life,
  // filling buffers the kernel takes from a shared ring (kernel 6.0+); otherwise, or when that
  // is unavailable, a receive is posted for each response into the connection's own buffer.
  int init(unsigned connections, bool multishot) {
    unsigned entries = 64;
    while (entries < connections * 3 && entries < 32768) entries *= 2;
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    int rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc == -EINVAL) {  // kernels before 6.1 lack these flags
      params = {};
      rc = io_uring_queue_init_params(entries, &ring_, &params);
    }
    if (rc < 0) return rc;
    ready_ = true;
    deferred_task_run_ = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    if (!(params.features & IORING_FEAT_EXT_ARG)) return -ENOTSUP;  // timed waits need it
    io_uring_register_ring_fd(&ring_);  // optional: saves a descriptor lookup per io_uring_enter
    if (multishot) setup_buffer_ring(connections);
    return 0;
  }

  void connect(std::uint32_t i, Conn& c, const Endpoint& e) {
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, c.fd, reinterpret_cast<const sockaddr*>(&e.address), e.length);
    io_uring_sqe_set_data64(s, pack(i, c.generation, op_connect));
  }
  int send(std::uint32_t i, Conn& c, std::string_view bytes) {
    io_uring_sqe* s = sqe();
    // MSG_WAITALL: the kernel finishes a short send itself, so success needs no completion.
    io_uring_prep_send(s, c.fd, bytes.data(), bytes.size(), MSG_WAITALL | MSG_NOSIGNAL);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, pack(i, c.generation, op_send));
    return 0;  // failures arrive as completions
  }
  void receive(std::uint32_t i, Conn& c, std::size_t size) {
    io_uring_sqe* s = sqe();
    if (buffer_ring_) {
      io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
      s->flags |= IOSQE_BUFFER_SELECT;
      s->buf_group = buffer_group;
    } else {
      io_uring_prep_recv(s, c.fd, c.buffer.get(), size, 0);
    }
    io_uring_sqe_set_data64(s, pack(i, c.generation, op_recv));
  }
  void close(std::uint32_t, Conn& c) {
    io_uring_sqe* s = sqe();
    io_uring_prep_close(s, c.fd);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, 0);
  }

  // Without DEFER_TASKRUN (kernels before 6.1) each completion's task work wakes the loop
  // anyway: a gathering wait would add its delay and save nothing.
  bool can_gather() const { return deferred_task_run_; }

  // Submits the turn's operations and sleeps until `gather` completions are there, but no longer
  // than `gather_ns`; then, or when a gathering wait came back with none (a slow server: no
  // point waking every gather_ns), until one is there or `timeout_ns` passes. With
  // DEFER_TASKRUN the kernel wakes the loop only once the count is reached.
  template <class E>
  void wait(std::uint64_t timeout_ns, unsigned gather, std::uint64_t gather_ns, E& engine) {
    bool gathering = gather > 1 && !gathered_none_ && gather_ns < timeout_ns;
    std::uint64_t limit = gathering ? gather_ns : timeout_ns;
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(limit / 1'000'000'000ull);
    ts.tv_nsec = static_cast<long long>(limit % 1'000'000'000ull);
    io_uring_cqe* cqe = nullptr;
    if (timeout_ns == 0) {
      io_uring_submit(&ring_);  // something is due now: don't sleep, reap what is there
    } else {
      io_uring_submit_and_wait_timeout(&ring_, &cqe, gathering ? gather : 1, &ts, nullptr);  // -ETIME: time is up
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == 0) continue;  // a close that failed: nothing to do
      pending_.push_back({data, cqe->res, cqe->flags});
    }
    io_uring_cq_advance(&ring_, seen);
    gathered_none_ = gathering && seen == 0;
    if (gathering) {
      ++engine.tally().gather_waits;
      engine.tally().gather_empty_waits += gathered_none_;
    }
    // Dispatch after advancing: handlers post new SQEs and may need the space.
    for (const Completion& done : pending_) {
      Unpacked u = unpack(done.data);
      bool current = (engine.generation(u.index) & 0xffffff) == u.generation;
      switch (u.op) {
        case op_connect:
          if (current) engine.on_connected(u.index, done.res < 0 ? -done.res : 0);
          break;
        case op_send:
          if (current && done.res < 0) engine.on_send_failed(u.index, -done.res);
          break;
        case op_recv: {
          bool armed = (done.flags & IORING_CQE_F_MORE) != 0;
          if (!(done.flags & IORING_CQE_F_BUFFER)) {
            if (done.res == -ENOBUFS && current) {
              // Every ring buffer was in use: not the connection's fault; post it again.
              receive(u.index, engine.conns()[u.index], 0);
              break;
            }
            if (current) engine.on_received(u.index, engine.conns()[u.index].buffer.get(), done.res, armed);
            break;
          }
          auto id = static_cast<unsigned short>(done.flags >> IORING_CQE_BUFFER_SHIFT);
          if (current) engine.on_received(u.index, buffers_.get() + std::size_t{id} * buffer_size, done.res, armed);
          recycle(id);
          break;
        }
      }
    }
    pending_.clear();
  }

 private:
  static constexpr int buffer_group = 0;
  static constexpr std::size_t buffer_size = 4096;
  struct Completion {
    std::uint64_t data;
    int res;
    unsigned flags;
  };

  void setup_buffer_ring(unsigned connections) {
    unsigned count = 64;
    while (count < connections * 2 && count < 4096) count *= 2;
    buffer_ring_bytes_ = count * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return;
    auto* ring = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring);
    reg.ring_entries = count;
    reg.bgid = buffer_group;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
      ::munmap(mem, buffer_ring_bytes_);
      return;
    }
    buffer_ring_ = ring;
    buffer_count_ = count;
    buffers_ = std::make_unique<char[]>(count * buffer_size);
    io_uring_buf_ring_init(buffer_ring_);
    for (unsigned id = 0; id < count; ++id)
      io_uring_buf_ring_add(buffer_ring_, buffers_.get() + std::size_t{id} * buffer_size, buffer_size,
                            static_cast<unsigned short>(id), io_uring_buf_ring_mask(count), static_cast<int>(id));
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(count));
  }

  void recycle(unsigned short id) {
    io_uring_buf_ring_add(buffer_ring_, buffers_.get() + std::size_t{id} * buffer_size, buffer_size, id,
                          io_uring_buf_ring_mask(buffer_count_), 0);
    io_uring_buf_ring_advance(buffer_ring_, 1);
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }

  io_uring ring_{};
  bool ready_ = false;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::size_t buffer_ring_bytes_ = 0;
  unsigned buffer_count_ = 0;
  std::unique_ptr<char[]> buffers_;
  std::vector<Completion> pending_;
  bool gathered_none_ = false;  // the last gathering wait timed out with no completion
  bool deferred_task_run_ = false;
};

// ---------------------------------------------------------------------------------------------
// epoll: non-blocking sockets, level-triggered, one read per readiness, writes attempted at once.
class EpollIo {
 public:
  static constexpr int socket_flags = SOCK_NONBLOCK;

  EpollIo() = default;
  EpollIo(const EpollIo&) = delete;
  EpollIo& operator=(const EpollIo&) = delete;
  ~EpollIo() {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  int init(unsigned, bool) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    return epoll_fd_ < 0 ? -errno : 0;
  }

  void connect(std::uint32_t i, Conn& c, const Endpoint& e) {
    int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&e.address), e.length);
    int connect_error = (rc == 0 || errno == EINPROGRESS) ? 0 : errno;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = pack(i, c.generation, op_connect);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0 && connect_error == 0) connect_error = errno;
    if (connect_error != 0) immediate_.emplace_back(std::uint64_t{ev.data.u64}, connect_error);
  }
  int send(std::uint32_t i, Conn& c, std::string_view bytes) {
    c.unsent_at = bytes.data();
    c.unsent = bytes.size();
    return write_some(i, c);
  }
  void receive(std::uint32_t, Conn&, std::size_t) {}  // EPOLLIN stays registered
  void close(std::uint32_t, Conn& c) { ::close(c.fd); }

  bool can_gather() const { return false; }  // epoll_wait returns as soon as one socket is ready

  template <class E>
  void wait(std::uint64_t timeout_ns, unsigned /*gather*/, std::uint64_t /*gather_ns*/, E& engine) {
    // Connections whose connect failed at once: reported like any completion.
    if (!immediate_.empty()) {
      auto now = std::move(immediate_);
      immediate_.clear();
      for (auto& [data, err] : now) {
        Unpacked u = unpack(data);
        if ((engine.generation(u.index) & 0xffffff) == u.generation) engine.on_connected(u.index, err);
      }
      return;
    }
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000ull), static_cast<long>(timeout_ns % 1'000'000'000ull)};
    int n = epoll_pwait2(epoll_fd_, events_, max_events, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) n = epoll_wait(epoll_fd_, events_, max_events, static_cast<int>(timeout_ns / 1'000'000));
    for (int k = 0; k < n; ++k) {
      Unpacked u = unpack(events_[k].data.u64);
      if ((engine.generation(u.index) & 0xffffff) != u.generation) continue;
      Conn& c = engine.conns()[u.index];
      std::uint32_t flags = events_[k].events;
      if (c.state == Conn::State::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = events_[k].data.u64;
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
          c.want_write = false;
        }
        engine.on_connected(u.index, err);
        continue;
      }
      if ((flags & EPOLLOUT) && c.unsent > 0) {
        if (int error = write_some(u.index, c); error != 0) {
          engine.on_send_failed(u.index, error);
          continue;
        }
      }
      if (flags & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!c.receiving) {
          engine.on_idle_readable(u.index);
          continue;
        }
        ssize_t got = ::read(c.fd, c.buffer.get(), receive_buffer_size);
        if (got == -1 && errno == EAGAIN) continue;
        engine.on_received(u.index, c.buffer.get(), got < 0 ? -errno : got, false);
      }
    }
  }

 private:
  // 0, or the errno that ended the connection.
  int write_some(std::uint32_t i, Conn& c) {
    while (c.unsent > 0) {
      ssize_t n = ::send(c.fd, c.unsent_at, c.unsent, MSG_NOSIGNAL);
      if (n > 0) {
        c.unsent -= static_cast<std::size_t>(n);
        c.unsent_at += n;
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      return n < 0 ? errno : EPIPE;
    }
    bool want_write = c.unsent > 0;
    if (want_write != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
      ev.data.u64 = pack(i, c.generation, op_recv);
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = want_write;
    }
    return 0;
  }

  static constexpr int max_events = 256;
  int epoll_fd_ = -1;
  std::vector<std::pair<std::uint64_t, int>> immediate_;
  epoll_event events_[max_events];
};

template <class Io>
Result<Tally> run_with(const Plan& plan, std::uint64_t start, Backend backend) {
  auto engine = std::make_unique<Engine<Io>>(plan, start);
  // A multishot receive outlives a response; with a new connection per request it would only
  // have to be cancelled each time.
  if (int rc = engine->io().init(plan.connections, !plan.close_each); rc < 0)
    return fail(ErrorKind::config, std::string("cannot start ") + std::string(to_string(backend)) + ": " + std::strerror(-rc));
  engine->begin();
  engine->loop();
  Tally t = std::move(engine->tally());
  t.backend = backend;
  return t;
}

}  // namespace

Result<Tally> run_thread(const Plan& plan, std::chrono::steady_clock::time_point start) {
  std::uint64_t start_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count());
  if (plan.backend == Backend::epoll) return run_with<EpollIo>(plan, start_ns, Backend::epoll);
  auto r = run_with<UringIo>(plan, start_ns, Backend::io_uring);
  if (r || plan.backend == Backend::io_uring) return r;
  return run_with<EpollIo>(plan, start_ns, Backend::epoll);
}

}  // namespace errand::load
