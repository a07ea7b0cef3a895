#include <errand/http/client.hpp>

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/connection.hpp"
#include "http/decoder.hpp"
#include "http/h1/serialize.hpp"
#include "http/pool.hpp"
#include "http/stream_source.hpp"

namespace errand::http {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr Duration liveness_check_after = std::chrono::seconds(1);
constexpr std::size_t redirect_drain_limit = 64 * 1024;

TimePoint now() { return std::chrono::steady_clock::now(); }

TimePoint deadline_after(TimePoint from, std::optional<Duration> d) {
  if (!d || *d <= Duration::zero()) return TimePoint::max();
  return from + *d;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// The Content-Length a request body gets (nullopt: none); a file body must be a readable
// regular file. Not in round_trip's coroutine frame: struct stat alone is 144 bytes.
Result<std::optional<std::uint64_t>> declared_body_length(const RequestBody& body) {
  if (const auto* text = std::get_if<std::string>(&body)) return std::optional<std::uint64_t>(text->size());
  if (const auto* file = std::get_if<FileBody>(&body)) {
    struct stat st {};
    if (::stat(file->path.c_str(), &st) != 0)
      return fail(Error::config("cannot read body file '" + file->path + "': " + std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) return fail(Error::config("body file '" + file->path + "' is not a regular file"));
    return std::optional<std::uint64_t>(static_cast<std::uint64_t>(st.st_size));
  }
  return std::optional<std::uint64_t>();
}

// Asio throws operation_aborted from a cancelled coroutine's next co_await by default; the
// client reports cancellation as an Error value instead, then restores the caller's setting.
template <typename T>
asio::awaitable<T> cancellation_as_value(asio::awaitable<T> task) {
  bool previous = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  T result = co_await std::move(task);
  co_await asio::this_coro::throw_if_cancelled(previous);
  co_return std::move(result);  // explicit: GCC 12 copies a named local in co_return
}

struct Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  bool woken = false;
};

// Marks a request that open() sends through the layers: the transport at the end of the chain
// then leaves the body on the connection (Response::unread_body) instead of reading it.
// Static, like every marker: no allocation.
struct OpenedAsStream {};
std::shared_ptr<OpenedAsStream> opened_as_stream() {
  static OpenedAsStream marker;
  return std::shared_ptr<OpenedAsStream>(std::shared_ptr<OpenedAsStream>(), &marker);
}

}  // namespace

struct UnreadBody {
  std::unique_ptr<ResponseStream::Source> source;
};

// Per-worker state: touched only by that worker's thread.
struct Shard {
  Shard(asio::io_context& ctx, const ClientOptions& options)
      : context(ctx),
        pool(PoolLimits{options.pool.idle_timeout, options.pool.max_lifetime}),
        dns(options.dns_cache_ttl),
        sweeper(ctx) {}
  asio::io_context& context;
  PoolCore<Connection> pool;
  net::DnsCache dns;
  std::unordered_map<std::string, std::deque<std::shared_ptr<Waiter>>> waiters;
  asio::steady_timer sweeper;
  bool sweeping = false;
  std::atomic<std::size_t> waiting{0};  // read by other workers: whether a freed slot should wake us
  std::atomic<std::size_t> open_now{0};
  std::atomic<std::size_t> idle_now{0};
  // What Client::shutdown cuts off on this worker: the connections it made (expired entries
  // are pruned as new ones come) and the pauses of layers (retry backoff) now sleeping.
  std::vector<std::weak_ptr<Connection>> connections;
  std::vector<asio::steady_timer*> pauses;

  bool on_own_thread() const { return context.get_executor().running_in_this_thread(); }
};

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  explicit Impl(ClientOptions opts)
      : options(std::move(opts)), slots(std::max<std::size_t>(1, options.pool.max_per_origin), options.pool.max_total) {
    runtime = options.runtime ? options.runtime : &net::Runtime::default_runtime();
    for (std::size_t i = 0; i < runtime->size(); ++i) {
      shards.push_back(std::make_unique<Shard>(runtime->context(i), options));
      shards.back()->pool.on_drop([this](const std::string& origin) { free_slot(origin); });
    }
    find_stage_rows();
  }

  ClientOptions options;
  // Per layer of options.middleware: the Stage it is (null for a coroutine layer) and, for a
  // Stage, the end of the row of Stages from it that one coroutine runs. state_before[i]: the
  // Stages' state bytes before layer i, so that a Stage's state lies in its row's frame at
  // state_before[i] - state_before[row's first]. A row's states fit row_state_bytes.
  static constexpr std::size_t row_state_bytes = Stage::max_state;
  std::vector<Stage*> stages;
  std::vector<std::size_t> row_end;
  std::vector<std::size_t> state_before;

  void find_stage_rows() {
    const auto& layers = options.middleware;
    const std::size_t n = layers.size();
    stages.assign(n, nullptr);
    row_end.assign(n, 0);
    state_before.assign(n + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      stages[i] = dynamic_cast<Stage*>(layers[i].get());
      if (stages[i] && stages[i]->state_size() > row_state_bytes)
        throw std::invalid_argument("a Stage's state must be at most Stage::max_state bytes");
      state_before[i + 1] = state_before[i] + (stages[i] ? stages[i]->state_size() : 0);
    }
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t end = i;
      while (end < n && stages[end] && state_before[end + 1] - state_before[i] <= row_state_bytes) ++end;
      row_end[i] = end;
    }
  }
  ConnectionSlots slots;
  net::Runtime* runtime = nullptr;
  std::vector<std::unique_ptr<Shard>> shards;

  // A connection is gone: its slot may let a waiter on any worker open one.
  void free_slot(const std::string& origin) {
    slots.give_back(origin);
    closed.fetch_add(1, std::memory_order_relaxed);
    for (auto& shard : shards) {
      if (shard->waiting.load(std::memory_order_relaxed) == 0) continue;
      if (shard->on_own_thread()) {
        wake(*shard, origin);
      } else if (auto self = weak_from_this().lock()) {
        asio::post(shard->context, [self, &target = *shard, origin] { self->wake(target, origin); });
      }
    }
  }

  std::once_flag tls_once;
  Result<std::shared_ptr<tls::ClientContext>> tls_context = fail(ErrorKind::tls, "TLS not initialised");

  std::atomic<std::uint64_t> opened{0}, reused{0}, requests{0}, closed{0}, tls_full{0}, tls_resumed{0},
      transparent_retries{0};

  Result<tls::ClientContext*> tls() {
    std::call_once(tls_once, [this] {
      tls::ClientConfig config;
      config.insecure = options.tls.insecure;
      config.ca_file = options.tls.ca_file;
      config.cert_file = options.tls.cert_file;
      config.key_file = options.tls.key_file;
      config.session_cache = options.tls.session_cache;
      tls_context = tls::ClientContext::create(config);
    });
    if (!tls_context) return fail(tls_context.error());
    return tls_context->get();
  }

  void publish(Shard& shard) {
    shard.open_now.store(shard.pool.open_count(), std::memory_order_relaxed);
    shard.idle_now.store(shard.pool.idle_count(), std::memory_order_relaxed);
  }

  // A slot or an idle connection became available for `origin`: let one waiter retry.
  void wake(Shard& shard, const std::string& origin) {
    auto try_wake = [](std::deque<std::shared_ptr<Waiter>>& queue) {
      while (!queue.empty()) {
        auto waiter = std::move(queue.front());
        queue.pop_front();
        if (waiter->woken) continue;
        waiter->woken = true;
        waiter->timer.cancel();
        return true;
      }
      return false;
    };
    if (auto it = shard.waiters.find(origin); it != shard.waiters.end()) {
      bool woke = try_wake(it->second);
      if (it->second.empty()) shard.waiters.erase(it);
      if (woke) return;
    }
    if (options.pool.max_total) {
      for (auto& [other, queue] : shard.waiters)
        if (try_wake(queue)) return;
    }
  }

  void release(Shard& shard, std::shared_ptr<Connection> conn) {
    std::optional<std::string> origin;
    if (!shard.waiters.empty()) origin = conn->origin();
    bool reusable = conn->reusable();
    auto t = now();
    conn->touch(t);
    shard.pool.release(std::move(conn), reusable, t);
    publish(shard);
    if (origin) wake(shard, *origin);
    if (reusable) start_sweeper(shard);
  }

  void discard(Shard& shard, const std::shared_ptr<Connection>& conn) {
    conn->close();
    shard.pool.on_closed(conn->origin());
    publish(shard);
    free_slot(conn->origin());
  }

  void start_sweeper(Shard& shard) {
    if (shard.sweeping) return;
    shard.sweeping = true;
    auto period = std::max<Duration>(options.pool.idle_timeout / 2, std::chrono::seconds(1));
    shard.sweeper.expires_after(period);
    shard.sweeper.async_wait([weak = weak_from_this(), &shard](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      shard.sweeping = false;
      shard.pool.evict_expired(now());
      self->publish(shard);
      if (shard.pool.idle_count() > 0) self->start_sweeper(shard);
    });
  }

  struct Lease {
    std::shared_ptr<Connection> conn;
    bool reused = false;
  };

  // An idle connection to `origin` that is still alive, or null.
  std::shared_ptr<Connection> take_idle(Shard& shard, const std::string& origin, TimePoint t) {
    while (auto conn = shard.pool.take_idle(origin, t)) {
      if (t - conn->last_used() >= liveness_check_after && !conn->still_alive()) {
        discard(shard, conn);
        continue;
      }
      publish(shard);
      return conn;
    }
    return nullptr;
  }

  // A new connection, or one freed while waiting at the limit.
  asio::awaitable<Result<Lease>> acquire(Shard& shard, const Url& url, const std::string& origin,
                                         TimePoint connect_deadline, TimePoint total_deadline, Timings& timings,
                                         bool fresh_only) {
    for (;;) {
      if (cut.load(std::memory_order_relaxed)) co_return fail(cut_off_error());
      auto t = now();
      if (!fresh_only) {
        if (auto conn = take_idle(shard, origin, t)) co_return Lease{std::move(conn), true};
      }
      auto refusal = slots.try_take(origin);
      // At the total limit, an idle connection to another origin gives way to this one.
      while (refusal == ConnectionSlots::Refusal::total && shard.pool.evict_lru_idle(origin)) {
        publish(shard);
        refusal = slots.try_take(origin);
      }
      if (refusal == ConnectionSlots::Refusal::none) {
        EstablishParams params{url.host(), url.port(), url.is_https(), nullptr, &shard.dns,
                               options.happy_eyeballs_delay};
        if (params.tls) {
          auto ctx = tls();
          if (!ctx) {
            slots.give_back(origin);
            co_return fail(ctx.error());
          }
          params.tls_context = *ctx;
        }
        shard.pool.on_opening(origin);
        publish(shard);
        auto conn = std::make_shared<Connection>(shard.context.get_executor(), origin);
        track(shard, conn);
        auto established = co_await conn->establish(params, std::min(connect_deadline, total_deadline), timings);
        if (!established) {
          discard(shard, conn);
          co_return fail(std::move(established.error()));
        }
        opened.fetch_add(1, std::memory_order_relaxed);
        if (conn->is_tls()) (conn->tls_resumed() ? tls_resumed : tls_full).fetch_add(1, std::memory_order_relaxed);
        co_return Lease{std::move(conn), false};
      }
      auto waiter = std::make_shared<Waiter>(shard.context.get_executor());
      auto wait_deadline = std::min(total_deadline, t + options.pool.wait_timeout);
      waiter->timer.expires_at(wait_deadline);
      shard.waiters[origin].push_back(waiter);
      shard.waiting.fetch_add(1, std::memory_order_relaxed);
      co_await waiter->timer.async_wait(use_tuple);
      shard.waiting.fetch_sub(1, std::memory_order_relaxed);
      auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none || cut.load(std::memory_order_relaxed)) {
        bool by_shutdown = cut.load(std::memory_order_relaxed) && !waiter->woken;
        waiter->woken = true;  // leaves the queue lazily
        if (by_shutdown) co_return fail(cut_off_error());
        co_return fail(ErrorKind::cancelled, "cancelled while waiting for a connection");
      }
      if (!waiter->woken) {
        waiter->woken = true;
        std::string limit = refusal == ConnectionSlots::Refusal::total
                                ? std::to_string(options.pool.max_total) + " in all"
                                : std::to_string(options.pool.max_per_origin) + " per origin";
        co_return fail(Error::timeout(Phase::connect, "no free connection to " + origin + " (limit " + limit +
                                                          ") before the deadline"));
      }
    }
  }

  struct Hop {
    std::shared_ptr<Connection> conn;
    h1::ResponseHead head;
    bool reused = false;
  };

  struct Exchange {
    TimePoint start;
    TimePoint total_deadline;
    Timeouts timeouts;
    Timings timings;
  };

  // The request's head as it goes on the wire.
  Result<std::string> request_head(const Request& request, bool offer_compression) const {
    auto body_length = declared_body_length(request.body);
    if (!body_length) return fail(std::move(body_length.error()));
    return h1::serialize_head(request, *body_length,
                              h1::HeadDefaults{options.user_agent, offer_compression ? supported_encodings : std::string_view()});
  }

  asio::awaitable<Result<Hop>> round_trip(Shard& shard, const Request& request, bool offer_compression,
                                          Exchange& ex) {
    auto head = request_head(request, offer_compression);
    if (!head) co_return fail(std::move(head.error()));
    bool head_request = request.method == "HEAD";
    Duration idle = ex.timeouts.idle_read.value_or(Duration::zero());

    const std::string origin = request.url.origin();
    for (int attempt = 0;; ++attempt) {
      ex.timings = Timings{};
      auto hop_start = now();
      Lease lease;
      if (attempt == 0) {
        lease.conn = take_idle(shard, origin, hop_start);
        lease.reused = true;
      }
      if (!lease.conn) {
        auto fresh = co_await acquire(shard, request.url, origin, deadline_after(hop_start, ex.timeouts.connect),
                                      ex.total_deadline, ex.timings, attempt > 0);
        if (!fresh) co_return fail(std::move(fresh.error()));
        lease = std::move(*fresh);
      }
      auto conn = std::move(lease.conn);
      requests.fetch_add(1, std::memory_order_relaxed);
      if (lease.reused) reused.fetch_add(1, std::memory_order_relaxed);

      auto send_start = lease.reused ? hop_start : now();
      auto written = co_await conn->write_request(*head, request.body, idle, ex.total_deadline);
      auto sent = now();
      ex.timings.send = sent - send_start;
      Result<h1::ResponseHead> response_head;  // assigned below either way (no co_await in ?: with GCC 12)
      if (written)
        response_head = co_await conn->read_head(head_request, options.max_header_bytes,
                                                 deadline_after(sent, ex.timeouts.first_byte), idle, ex.total_deadline);
      else
        response_head = fail(std::move(written.error()));
      if (response_head) {
        ex.timings.wait = conn->first_byte_at() - sent;
        co_return Hop{std::move(conn), std::move(*response_head), lease.reused};
      }
      discard(shard, conn);
      const Error& error = response_head.error();
      // A keep-alive connection the server closed while idle fails before any response byte:
      // replay the request once on a new connection when that cannot apply it twice: it is
      // idempotent, or not a byte of it reached the socket.
      bool before_response = error.phase() == Phase::write || error.phase() == Phase::first_byte;
      bool stale = lease.reused && attempt == 0 && error.kind() == ErrorKind::io && before_response &&
                   (h1::is_idempotent(request.method) || conn->request_bytes_written() == 0);
      if (!stale) co_return fail(std::move(response_head.error()));
      transparent_retries.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Shutdown. A request counts itself in, then checks `closing`; shutdown() sets `closing`
  // before it reads the count (both seq_cst), so no request slips past a finished shutdown.
  // After the grace period `cut` makes every wait of the transport end with kind cancelled.
  std::atomic<bool> closing{false};
  std::atomic<bool> cut{false};
  std::atomic<std::size_t> in_flight{0};
  std::mutex drain_mutex;
  std::condition_variable drained;

  // Counts a logical request in flight for as long as it lives (in the request's frame).
  struct InFlight {
    explicit InFlight(Impl* i) : impl(i) {
      if (impl) impl->in_flight.fetch_add(1);
    }
    ~InFlight() {
      if (impl && impl->in_flight.fetch_sub(1) == 1 && impl->closing.load()) {
        std::lock_guard lock(impl->drain_mutex);
        impl->drained.notify_all();
      }
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    Impl* impl;
  };

  static Error shut_down_error() { return Error(ErrorKind::cancelled, "the client is shut down"); }
  static Error cut_off_error() { return Connection::cut_off_error(); }

  void track(Shard& shard, const std::shared_ptr<Connection>& conn) {
    if (shard.connections.size() >= 64 && shard.connections.size() == shard.connections.capacity()) {
      std::erase_if(shard.connections, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
    }
    shard.connections.push_back(conn);
  }

  // Ends every wait of the transport on every worker, each on its own thread.
  void cut_off_all() {
    cut.store(true);
    for (auto& shard : shards) {
      asio::post(shard->context, [self = shared_from_this(), &shard = *shard] {
        for (auto& weak : shard.connections)
          if (auto conn = weak.lock()) conn->cut_off();
        shard.connections.clear();
        for (auto& [origin, queue] : shard.waiters)
          for (auto& waiter : queue) waiter->timer.cancel();
        for (auto* timer : shard.pauses) timer->cancel();
      });
    }
  }

  // Closes idle connections on their own workers and waits (bounded) for it.
  void close_idle_everywhere(const std::shared_ptr<Impl>& self) {
    std::vector<std::future<void>> closing_now;
    for (auto& shard : shards) {
      auto close_idle = [self, &shard = *shard] {
        shard.pool.close_idle();
        shard.sweeper.cancel();
        self->publish(shard);
      };
      if (shard->on_own_thread() || shard->context.stopped()) {
        close_idle();
        continue;
      }
      auto done = std::make_shared<std::promise<void>>();
      closing_now.push_back(done->get_future());
      asio::post(shard->context, [close_idle, done] {
        close_idle();
        done->set_value();
      });
    }
    for (auto& f : closing_now) f.wait_for(std::chrono::seconds(2));
  }

  // `keep_alive` holds the client's state for as long as the request runs, even if the
  // Client object is destroyed meanwhile.
  asio::awaitable<Result<ResponseStream>> open(Request request, std::shared_ptr<Impl> keep_alive);
  // The transport under the layers: the request belongs to the chain's entry.
  asio::awaitable<Result<Response>> send_ref(const Request& request, std::shared_ptr<Impl> keep_alive) {
    return send_body<const Request&>(request, std::move(keep_alive));
  }
  // Without layers (RequestHolder = Request: owns the request, counts it in flight) or under
  // them (const Request&: the chain's entry owns and counts it).
  template <class RequestHolder>
  asio::awaitable<Result<Response>> send_body(RequestHolder request, std::shared_ptr<Impl> keep_alive);
  asio::awaitable<Result<Response>> send_layered(Request request, std::shared_ptr<Impl> keep_alive, Client& client);
  // The request into the chain of layers (there is one), from any thread.
  asio::awaitable<Result<Response>> enter_chain(Request&& request, Client& client);
  // What open_ref gave, read to the end when that needs no waiting (a failure, or a body that
  // came with its head: no coroutine at all, unlike read_all_into); nullopt when the caller
  // must co_await (*source)->read_all.
  std::optional<Result<void>> body_without_waiting(Result<std::unique_ptr<ResponseStream::Source>>& source,
                                                   Response& head) {
    if (!source) return Result<void>(fail(std::move(source.error())));
    reserve_declared_body(**source, head, options.max_body_bytes);
    return (*source)->read_all_now(head, options.max_body_bytes);
  }
  // open() through the layers: the transport stops at the head and leaves the body on the
  // connection, in head.unread_body, for open() to stream. Whether it did.
  static bool leave_body_unread(const Request& request, Result<std::unique_ptr<ResponseStream::Source>>& source,
                                Response& head) {
    if (!source || !request.extensions.get<OpenedAsStream>()) return false;
    head.unread_body = std::make_shared<UnreadBody>(UnreadBody{std::move(*source)});
    return true;
  }
  // Runs the Stages row[0, count) around `inner` (the rest of the chain) in this one frame.
  // RequestHolder as for send_body: Request at the chain's entry, Request& further in.
  // `keep_alive` as for open(), at the entry.
  // `state_before` as the member of that name, from the row's first Stage.
  template <class RequestHolder>
  asio::awaitable<Result<Response>> run_row(RequestHolder request, Stage* const* row, const std::size_t* state_before,
                                            std::size_t count, Next inner, Client& client,
                                            std::shared_ptr<Impl> keep_alive = nullptr);
  // Sends `request` (owned by the caller's frame, which outlives the call), following
  // redirects, and fills `head` in place; returns where the body is to be read from.
  // `owned`: the same request when the caller gives it up (its URL becomes the final one).
  // `url_later`: without a redirect, head.url is left empty for the caller to fill in (a row
  // of Stages does when the response leaves it, saving a copy of the URL per attempt).
  asio::awaitable<Result<std::unique_ptr<ResponseStream::Source>>> open_ref(const Request& request, Response& head,
                                                                            std::shared_ptr<Impl> keep_alive,
                                                                            Request* owned = nullptr,
                                                                            bool url_later = false);

  // `head` is a redirect to `location` (a view into head.headers): drains a small body from
  // `source` so that its connection can be reused, and points `request` at the next hop.
  // Called only on redirects, so that its locals stay out of open_ref's frame.
  asio::awaitable<Result<void>> follow_redirect(Request& request, Response& head,
                                                std::unique_ptr<ResponseStream::Source> source,
                                                std::string_view location, int redirects, int max_redirects);
  // Puts a decoder in front of `source` when the response declares a Content-Encoding.
  static Result<void> decode_if_encoded(std::unique_ptr<ResponseStream::Source>& source, const Response& head);

  Shard& shard_for_current_thread() {
    auto worker = runtime->current_worker();
    return *shards[worker ? *worker : 0];
  }
};

namespace {

class ConnectionSource final : public ResponseStream::Source {
 public:
  ConnectionSource(std::shared_ptr<Client::Impl> client, Shard& shard, std::shared_ptr<Connection> conn,
                   TimePoint start, TimePoint total_deadline, Duration idle)
      : client_(std::move(client)), shard_(shard), conn_(std::move(conn)), start_(start),
        total_deadline_(total_deadline), idle_(idle) {
    if (conn_->body_done()) finish();
  }

  void set_total_deadline(TimePoint deadline) override { total_deadline_ = deadline; }

  ~ConnectionSource() override {
    if (!conn_) return;
    // Abandoned mid-body: the rest of the body is still on the wire, so the connection
    // cannot carry another request.
    auto drop = [client = client_, &shard = shard_, conn = conn_] { client->discard(shard, conn); };
    if (shard_.on_own_thread()) drop();
    else asio::post(shard_.context, drop);
  }

  asio::awaitable<Result<std::string_view>> read(Response& head) override {
    if (!shard_.on_own_thread())
      return asio::co_spawn(shard_.context, cancellation_as_value(read_here(head)), asio::use_awaitable);
    return read_here(head);
  }

  bool finished() const noexcept override { return !conn_; }

  std::optional<Result<void>> read_all_now(Response& head, std::size_t limit) override {
    if (!shard_.on_own_thread()) return std::nullopt;
    if (!conn_) return Result<void>{};
    auto complete = conn_->take_buffered_body(head.body, limit);
    if (!complete) {
      abandon();
      return fail(std::move(complete.error()));
    }
    if (!*complete) return std::nullopt;
    end_of_body(head);
    return Result<void>{};
  }

  asio::awaitable<Result<void>> read_all(Response& head, std::size_t limit) override {
    if (!shard_.on_own_thread())
      return asio::co_spawn(shard_.context, cancellation_as_value(read_all_here(head, limit)), asio::use_awaitable);
    return read_all_here(head, limit);
  }

 private:
  // The whole body straight from the connection: one coroutine for all of it.
  asio::awaitable<Result<void>> read_all_here(Response& head, std::size_t limit) {
    if (!conn_) co_return Result<void>{};
    auto all = co_await conn_->read_body_into(head.body, limit, idle_, total_deadline_);
    if (!all) {
      abandon();
      co_return fail(std::move(all.error()));
    }
    end_of_body(head);
    co_return Result<void>{};
  }

  asio::awaitable<Result<std::string_view>> read_here(Response& head) {
    if (!conn_) co_return std::string_view();
    auto piece = co_await conn_->read_body(idle_, total_deadline_);
    if (!piece) {
      abandon();
      co_return fail(std::move(piece.error()));
    }
    if (piece->empty()) end_of_body(head);
    co_return *piece;
  }

  void end_of_body(Response& head) {
    auto t = now();
    head.timings.receive = t - conn_->first_byte_at();
    head.timings.total = t - start_;
    finish();
  }

  // The connection failed or the rest of its body will not be read: it cannot be reused.
  void abandon() {
    client_->discard(shard_, conn_);
    conn_.reset();
  }

  void finish() {
    client_->release(shard_, std::move(conn_));
    conn_.reset();
  }

  std::shared_ptr<Client::Impl> client_;
  Shard& shard_;
  std::shared_ptr<Connection> conn_;
  TimePoint start_;
  TimePoint total_deadline_;
  Duration idle_;
};

class DecodingSource final : public ResponseStream::Source {
 public:
  DecodingSource(std::unique_ptr<ResponseStream::Source> inner, std::unique_ptr<Decoder> decoder)
      : inner_(std::move(inner)), decoder_(std::move(decoder)) {}

  asio::awaitable<Result<std::string_view>> read(Response& head) override {
    for (;;) {
      out_.clear();
      if (finished_) co_return std::string_view();
      // What is left of the last piece (or output pending inside the decoder) first; the
      // piece stays valid because the inner source is not read again until it is used up.
      auto consumed = decoder_->decode_some(pending_, out_, max_piece);
      if (!consumed) {
        finished_ = true;
        inner_.reset();  // closes the connection: the rest of the body is unread
        co_return fail(std::move(consumed.error()));
      }
      pending_.remove_prefix(*consumed);
      if (!out_.empty()) co_return std::string_view(out_);
      if (!pending_.empty()) continue;
      auto piece = co_await inner_->read(head);
      if (!piece) co_return fail(std::move(piece.error()));
      if (piece->empty()) {
        finished_ = true;
        if (auto ok = decoder_->finish(); !ok) co_return fail(std::move(ok.error()));
        co_return std::string_view();
      }
      pending_ = *piece;
    }
  }

  bool finished() const noexcept override { return finished_; }
  void set_total_deadline(TimePoint deadline) override { inner_->set_total_deadline(deadline); }

 private:
  std::unique_ptr<ResponseStream::Source> inner_;
  std::unique_ptr<Decoder> decoder_;
  std::string_view pending_;  // undecoded rest of the inner source's last piece
  std::string out_;
  bool finished_ = false;
  // Decoded bytes handed out per read: a small compressed body may expand enormously, and
  // must not do so in memory before a limit can be checked.
  static constexpr std::size_t max_piece = 256 * 1024;
};

}  // namespace

asio::awaitable<Result<ResponseStream>> Client::Impl::open(Request request, std::shared_ptr<Impl> keep_alive) {
  InFlight counted(this);
  if (closing.load()) co_return fail(shut_down_error());
  Response head;
  auto source = co_await open_ref(request, head, std::move(keep_alive), &request);
  if (!source) co_return fail(std::move(source.error()));
  co_return ResponseStream(std::move(head), std::move(*source));
}

asio::awaitable<Result<std::unique_ptr<ResponseStream::Source>>> Client::Impl::open_ref(
    const Request& original, Response& head, std::shared_ptr<Impl> keep_alive, Request* owned, bool url_later) {
  // Redirects change the request: the hops after the first go out from a copy, on the heap
  // so that this frame stays small enough for Asio's recycling allocator.
  const Request* hop_request = &original;
  std::unique_ptr<Request> redirected;
  Exchange ex;
  ex.start = now();
  const Timeouts& defaults = options.timeouts;
  const Timeouts& asked = original.timeouts;
  ex.timeouts.total = asked.total ? asked.total : defaults.total;
  ex.timeouts.connect = asked.connect ? asked.connect : defaults.connect;
  ex.timeouts.first_byte = asked.first_byte ? asked.first_byte : defaults.first_byte;
  ex.timeouts.idle_read = asked.idle_read ? asked.idle_read : defaults.idle_read;
  ex.total_deadline = deadline_after(ex.start, ex.timeouts.total);

  if (original.url.host().empty()) co_return fail(Error::config("the request has no URL"));
  if (auto ok = h1::validate_request(original); !ok) co_return fail(std::move(ok.error()));
  const int max_redirects = original.max_redirects.value_or(options.max_redirects);
  const bool offer_compression =
      original.decompress.value_or(options.decompress) && !original.headers.contains("accept-encoding");
  Shard& shard = shard_for_current_thread();

  for (int redirects = 0;;) {
    auto hop = co_await round_trip(shard, *hop_request, offer_compression, ex);
    if (!hop) co_return fail(std::move(hop.error()));

    if (redirects > 0) head = Response();
    head.status = hop->head.status;
    head.reason = std::move(hop->head.reason);
    head.version = hop->head.version;
    head.headers = std::move(hop->head.headers);
    head.redirects = redirects;
    head.timings = ex.timings;
    head.timings.total = now() - ex.start;
    head.reused = hop->reused;
    head.tls_resumed = hop->conn->tls_resumed();
    head.remote_address = hop->conn->remote_address();
    std::unique_ptr<ResponseStream::Source> source = std::make_unique<ConnectionSource>(
        keep_alive, shard, std::move(hop->conn), ex.start, ex.total_deadline,
        ex.timeouts.idle_read.value_or(Duration::zero()));

    std::optional<std::string_view> location;
    if (is_redirect(head.status) && max_redirects > 0) location = head.headers.get("location");
    if (location) {
      if (!redirected) {
        redirected = std::make_unique<Request>(original);
        hop_request = redirected.get();
      }
      auto followed = co_await follow_redirect(*redirected, head, std::move(source), *location, redirects, max_redirects);
      if (!followed) co_return fail(std::move(followed.error()));
      ++redirects;
      continue;
    }

    if (offer_compression) {
      if (auto decoding = decode_if_encoded(source, head); !decoding) co_return fail(std::move(decoding.error()));
    }
    if (redirected) head.url = std::move(redirected->url);  // the final URL
    else if (owned) head.url = std::move(owned->url);
    else if (!url_later) head.url = original.url;
    co_return std::move(source);
  }
}

asio::awaitable<Result<void>> Client::Impl::follow_redirect(Request& request, Response& head,
                                                            std::unique_ptr<ResponseStream::Source> source,
                                                            std::string_view location, int redirects,
                                                            int max_redirects) {
  if (redirects >= max_redirects)
    co_return fail(ErrorKind::protocol, "stopped after " + std::to_string(max_redirects) + " redirects (the " +
                                            std::to_string(redirects + 1) + "th points to " +
                                            std::string(location.substr(0, 200)) + ")");
  auto next = request.url.resolve(location);
  if (!next)
    co_return fail(ErrorKind::protocol, "invalid redirect Location \"" + std::string(location.substr(0, 200)) +
                                            "\": " + next.error().message());
  if (request.url.is_https() && !next->is_https() && !request.allow_https_to_http)
    co_return fail(Error::config("refused redirect from https to http (" + next->to_string() +
                                 "); allow it explicitly to follow"));
  // Read a small body to keep the connection; a large one is cheaper to abandon.
  std::size_t drained = 0;
  while (!source->finished() && drained <= redirect_drain_limit) {
    auto piece = co_await source->read(head);
    if (!piece || piece->empty()) break;
    drained += piece->size();
  }
  source.reset();
  bool to_get = (head.status == 303 && request.method != "HEAD") ||
                ((head.status == 301 || head.status == 302) && request.method == "POST");
  if (to_get) {
    request.method = "GET";
    request.body = std::monostate{};
    request.headers.remove("content-type");
    request.headers.remove("content-encoding");
  }
  if (next->origin() != request.url.origin()) {
    // Credentials are for the origin they were given to (curl, Go and browsers agree),
    // and a Host set by the user named the old one.
    request.headers.remove("authorization");
    request.headers.remove("proxy-authorization");
    request.headers.remove("cookie");
    request.headers.remove("host");
  }
  request.url = std::move(*next);
  co_return Result<void>{};
}

Result<void> Client::Impl::decode_if_encoded(std::unique_ptr<ResponseStream::Source>& source, const Response& head) {
  // No body (HEAD, 204, 304, Content-Length: 0): nothing to decode, whatever the headers say.
  if (source->finished()) return {};
  auto encoding = head.headers.get("content-encoding");
  if (!encoding) return {};
  auto decoder = Decoder::create(*encoding);
  if (!decoder) return fail(std::move(decoder.error()));
  if (*decoder) source = std::make_unique<DecodingSource>(std::move(source), std::move(*decoder));
  return {};
}

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  for (const auto& make : impl_->options.companions) companions_.push_back(make(*this));
}

Client::~Client() {
  while (!companions_.empty()) companions_.pop_back();  // the last made goes first
  // Idle connections are closed on their own workers, and this waits for it so that nothing
  // of the client is left queued on a runtime that may be destroyed next. Requests still
  // running hold the shared state until they finish.
  impl_->close_idle_everywhere(impl_);
}

ShutdownReport Client::shutdown(Duration grace) {
  if (impl_->runtime->current_worker())
    throw std::logic_error("Client::shutdown waits for requests; call it from outside the runtime's workers");
  ShutdownReport report;
  impl_->closing.store(true);
  report.in_flight = impl_->in_flight.load();
  auto all_done = [&] { return impl_->in_flight.load() == 0; };
  {
    std::unique_lock lock(impl_->drain_mutex);
    impl_->drained.wait_for(lock, grace, all_done);
  }
  std::size_t left = impl_->in_flight.load();
  report.finished = report.in_flight - std::min(left, report.in_flight);
  if (left > 0) {
    impl_->cut_off_all();
    // A cut-off request ends at its next step; DNS and TCP connect are not interrupted and
    // end by their own deadline, so this wait is bounded rather than trusted.
    std::unique_lock lock(impl_->drain_mutex);
    impl_->drained.wait_for(lock, std::chrono::seconds(5), all_done);
    report.still_running = impl_->in_flight.load();
    report.cancelled = left - std::min(left, report.still_running);
  }
  impl_->close_idle_everywhere(impl_);
  return report;
}

bool Client::shutting_down() const noexcept { return impl_->closing.load(std::memory_order_relaxed); }

asio::awaitable<Result<void>> Client::pause(Duration duration) {
  auto worker = impl_->runtime->current_worker();
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, duration);
  Shard* shard = worker ? impl_->shards[*worker].get() : nullptr;  // off a worker: not cut short
  if (impl_->cut.load()) co_return fail(Impl::cut_off_error());
  if (shard) shard->pauses.push_back(&timer);
  auto [ec] = co_await timer.async_wait(use_tuple);
  if (shard) std::erase(shard->pauses, &timer);
  if (impl_->cut.load()) co_return fail(Impl::cut_off_error());
  auto state = co_await asio::this_coro::cancellation_state;
  if (ec || state.cancelled() != asio::cancellation_type::none)
    co_return fail(ErrorKind::cancelled, "the request was cancelled while waiting to retry");
  co_return Result<void>{};
}

namespace {

// A body a layer made (a fallback's), handed out as one piece.
class BufferedSource final : public ResponseStream::Source {
 public:
  explicit BufferedSource(std::string body) : body_(std::move(body)) {}
  asio::awaitable<Result<std::string_view>> read(Response&) override {
    if (given_) co_return std::string_view();
    given_ = true;
    co_return std::string_view(body_);
  }
  bool finished() const noexcept override { return given_; }

 private:
  std::string body_;
  bool given_ = false;
};

// What the chain gave for an opened request, as a stream: the transport's unread body, or the
// body a layer put in the Response. `body_deadline`: the request's own deadline, which the
// body keeps whatever limit a layer set for the attempt that got the head.
asio::awaitable<Result<ResponseStream>> stream_of(asio::awaitable<Result<Response>> chain, TimePoint body_deadline) {
  auto outcome = co_await std::move(chain);
  if (!outcome) co_return fail(std::move(outcome.error()));
  Response& head = *outcome;
  std::unique_ptr<ResponseStream::Source> source;
  if (head.unread_body) {
    source = std::move(head.unread_body->source);
    head.unread_body.reset();
    if (source) source->set_total_deadline(body_deadline);
  } else if (!head.body.empty()) {
    source = std::make_unique<BufferedSource>(std::move(head.body));
    head.body.clear();
  }
  co_return ResponseStream(std::move(head), std::move(source));
}

}  // namespace

asio::awaitable<Result<ResponseStream>> Client::open(Request request) {
  if (!impl_->options.middleware.empty()) {
    // Through the layers as send() goes; the transport stops at the head.
    auto total = request.timeouts.total ? request.timeouts.total : impl_->options.timeouts.total;
    TimePoint body_deadline = deadline_after(now(), total);
    request.extensions.insert(opened_as_stream());
    return stream_of(impl_->enter_chain(std::move(request), *this), body_deadline);
  }
  if (!impl_->runtime->current_worker()) {
    auto& context = impl_->runtime->context(impl_->runtime->next_worker());
    return asio::co_spawn(context, cancellation_as_value(impl_->open(std::move(request), impl_)), asio::use_awaitable);
  }
  return cancellation_as_value(impl_->open(std::move(request), impl_));
}

template <class RequestHolder>
asio::awaitable<Result<Response>> Client::Impl::send_body(RequestHolder request, std::shared_ptr<Impl> keep_alive) {
  constexpr bool outermost = std::is_same_v<RequestHolder, Request>;
  InFlight counted(outermost ? this : nullptr);
  if (outermost && closing.load()) co_return fail(shut_down_error());
  if (cut.load(std::memory_order_relaxed)) co_return fail(cut_off_error());  // a layer trying again
  // As cancellation_as_value does, inlined here to save a coroutine frame per request.
  bool previous = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  Response head;
  Request* owned = nullptr;
  if constexpr (outermost) owned = &request;
  auto source = co_await open_ref(request, head, std::move(keep_alive), owned);
  if (!outermost && leave_body_unread(request, source, head)) {
    co_await asio::this_coro::throw_if_cancelled(previous);
    co_return std::move(head);
  }
  auto all = body_without_waiting(source, head);
  if (!all) all = co_await (*source)->read_all(head, options.max_body_bytes);
  co_await asio::this_coro::throw_if_cancelled(previous);
  if (!*all) co_return fail(std::move(all->error()));
  co_return std::move(head);
}

template <class RequestHolder>
asio::awaitable<Result<Response>> Client::Impl::run_row(RequestHolder request, Stage* const* row,
                                                        const std::size_t* state_before, std::size_t count, Next inner,
                                                        Client& client, std::shared_ptr<Impl> keep_alive) {
  constexpr bool outermost = std::is_same_v<RequestHolder, Request>;
  InFlight counted(outermost ? this : nullptr);
  if (outermost && closing.load()) co_return fail(shut_down_error());
  co_await asio::this_coro::throw_if_cancelled(false);  // a cancellation comes back as an outcome every stage sees

  // Left uninitialised: each begin() constructs its own state.
  alignas(Stage::state_alignment) std::byte states[row_state_bytes];
  auto state = [&](std::size_t i) -> void* { return states + (state_before[i] - state_before[0]); };
  // The stages whose begin() ran, innermost last: their states are destroyed in reverse, on
  // every path out of this frame.
  struct Begun {
    Stage* const* row;
    decltype(state)& state_of;
    std::size_t count = 0;
    void pop() noexcept {
      --count;
      row[count]->destroy(state_of(count));
    }
    ~Begun() {
      while (count > 0) pop();
    }
  } begun{row, state};

  Result<Response> outcome;
  std::size_t first = 0;  // the stage to begin next: 0, or the one after a stage that repeats
  // One clock reading for all the stages of a pass in, and one for the way out (again after
  // anything the way out waits for).
  Stage::BeginContext pass{std::chrono::steady_clock::now()};
  for (;;) {
    bool answered = false;
    for (std::size_t i = first; i < count; ++i) {
      Stage::Begin how = row[i]->begin(request, state(i), outcome, client, pass);
      begun.count = i + 1;
      if (how == Stage::Begin::proceed) continue;
      if (how == Stage::Begin::suspend)
        outcome = co_await row[i]->suspended(request, state(i), inner.outward(count - 1 - i), client);
      begun.pop();
      answered = true;
      break;
    }
    if (answered) {
      // the outcome is the stage's (or its coroutine's)
    } else if (inner.index_ < options.middleware.size()) {
      outcome = co_await inner(request);
    } else if (cut.load(std::memory_order_relaxed)) {  // a stage trying again after the cut-off
      outcome = fail(cut_off_error());
    } else {
      // The transport, as send_body does it, here: into the outcome, with no frame or
      // Response move of its own.
      if (!outcome) outcome.emplace();  // else a fresh Response: it is reset before a repeat
      Response& head = *outcome;
      std::shared_ptr<Impl> hold = keep_alive;  // named: no ?: in a co_await expression with GCC 12
      if (!hold) hold = shared_from_this();
      auto source = co_await open_ref(request, head, std::move(hold), nullptr, true);
      if (!leave_body_unread(request, source, head)) {
        auto all = body_without_waiting(source, head);
        if (!all) all = co_await (*source)->read_all(head, options.max_body_bytes);
        if (!*all) outcome = fail(std::move(all->error()));
      }
    }

    bool repeat = false;
    auto cancellation = co_await asio::this_coro::cancellation_state;  // not in an expression: GCC 12
    bool cancelled = cancellation.cancelled() != asio::cancellation_type::none;
    auto way_out = std::chrono::steady_clock::now();
    while (begun.count > 0 && !repeat) {
      std::size_t i = begun.count - 1;
      auto pause = row[i]->end(request, state(i), outcome, client, Stage::EndContext{cancelled, false, way_out});
      if (pause && !cancelled) {  // a stage that asks to repeat a cancelled request is not heard
        // The attempt is thrown away: an opened one gives its connection back before the pause.
        if (outcome) outcome->unread_body.reset();
        auto slept = co_await client.pause(*pause);
        way_out = std::chrono::steady_clock::now();
        if (slept) {
          outcome = Result<Response>();  // the next attempt starts from a fresh Response
          pass.now = way_out;
          row[i]->again(request, state(i), pass);
          first = i + 1;
          repeat = true;
          continue;
        }
        cancelled = true;
        outcome = fail(std::move(slept.error()));
        row[i]->end(request, state(i), outcome, client, Stage::EndContext{true, true, way_out});
      }
      begun.pop();
    }
    if (!repeat) break;
  }
  // The transport left the URL to this row (url_later); the outermost row gives the request's
  // up, as the request ends here.
  if (outcome && outcome->url.host().empty()) {
    if constexpr (outermost) outcome->url = std::move(request.url);
    else outcome->url = request.url;
  }
  co_return std::move(outcome);
}

asio::awaitable<Result<Response>> Stage::send(Request& request, Next next, Client& client) {
  Stage* self = this;  // the row of one, alive in this frame while it runs
  const std::size_t state_before[2] = {0, state_size()};
  co_return co_await static_cast<Client::Impl*>(next.impl_)->run_row<Request&>(request, &self, state_before, 1, next,
                                                                               client);
}

// The chain's entry: owns the logical request and counts it in flight.
asio::awaitable<Result<Response>> Client::Impl::send_layered(Request request, std::shared_ptr<Impl> keep_alive,
                                                             Client& client) {
  InFlight counted(this);
  if (closing.load()) co_return fail(shut_down_error());
  co_return co_await options.middleware[0]->send(request, Next(this, 1, &client), client);
}

// Not a coroutine: a layer's call goes straight to the next layer's coroutine (or the
// transport's), with no frame or Response move of its own.
asio::awaitable<Result<Response>> Next::operator()(Request& request) const {
  auto* impl = static_cast<Client::Impl*>(impl_);
  const auto& layers = impl->options.middleware;
  if (index_ < layers.size()) {
    if (Stage* const* row = &impl->stages[index_]; *row) {
      std::size_t end = impl->row_end[index_];
      return impl->run_row<Request&>(request, row, &impl->state_before[index_], end - index_, Next(impl_, end, client_),
                                     *client_);
    }
    return layers[index_]->send(request, Next(impl_, index_ + 1, client_), *client_);
  }
  return impl->send_ref(request, impl->shared_from_this());
}

asio::awaitable<Result<Response>> Client::Impl::enter_chain(Request&& request, Client& client) {
  // A chain that opens with a row of Stages has that row as its entry.
  std::size_t end = row_end[0];
  auto entry = stages[0] ? run_row<Request>(std::move(request), stages.data(), state_before.data(), end,
                                            Next(this, end, &client), client, shared_from_this())
                         : send_layered(std::move(request), shared_from_this(), client);
  if (runtime->current_worker()) return entry;
  return asio::co_spawn(runtime->context(runtime->next_worker()), std::move(entry), asio::use_awaitable);
}

asio::awaitable<Result<Response>> Client::send(Request request) {
  if (!impl_->options.middleware.empty()) {
    // A copy of an opened request (a layer sending one of its own): this one's body is read.
    request.extensions.erase<OpenedAsStream>();
    return impl_->enter_chain(std::move(request), *this);
  }
  if (!impl_->runtime->current_worker()) {
    auto& context = impl_->runtime->context(impl_->runtime->next_worker());
    return asio::co_spawn(context, impl_->send_body<Request>(std::move(request), impl_), asio::use_awaitable);
  }
  return impl_->send_body<Request>(std::move(request), impl_);
}

void Client::forget_tls_session(const Url& url) {
  if (!url.is_https()) return;
  if (auto context = impl_->tls()) (*context)->sessions().forget(url.origin());
}

PoolStats Client::stats() const {
  PoolStats s;
  s.opened = impl_->opened.load(std::memory_order_relaxed);
  s.reused = impl_->reused.load(std::memory_order_relaxed);
  s.requests = impl_->requests.load(std::memory_order_relaxed);
  s.closed = impl_->closed.load(std::memory_order_relaxed);
  s.tls_full_handshakes = impl_->tls_full.load(std::memory_order_relaxed);
  s.tls_resumed_handshakes = impl_->tls_resumed.load(std::memory_order_relaxed);
  s.transparent_retries = impl_->transparent_retries.load(std::memory_order_relaxed);
  for (auto& shard : impl_->shards) {
    s.open_now += shard->open_now.load(std::memory_order_relaxed);
    s.idle_now += shard->idle_now.load(std::memory_order_relaxed);
  }
  return s;
}

const ClientOptions& Client::options() const noexcept { return impl_->options; }
net::Runtime& Client::runtime() noexcept { return *impl_->runtime; }

ResponseStream::ResponseStream(Response&& head, std::unique_ptr<Source> source)
    : head_(std::move(head)), source_(std::move(source)) {}
ResponseStream::ResponseStream(ResponseStream&&) noexcept = default;
ResponseStream& ResponseStream::operator=(ResponseStream&&) noexcept = default;
ResponseStream::~ResponseStream() = default;

asio::awaitable<Result<std::string_view>> ResponseStream::read() {
  if (!source_) co_return std::string_view();
  co_return co_await cancellation_as_value(source_->read(head_));
}

asio::awaitable<Result<void>> ResponseStream::read_all(std::size_t limit) {
  return cancellation_as_value(read_all_here(limit));
}

Error body_limit_error(std::size_t limit) {
  return Error(ErrorKind::protocol, "response body exceeds the limit of " + std::to_string(limit) + " bytes",
               std::make_error_code(std::errc::message_size), Phase::read);
}

asio::awaitable<Result<void>> ResponseStream::Source::read_all(Response& head, std::size_t limit) {
  for (;;) {
    auto piece = co_await read(head);
    if (!piece) co_return fail(std::move(piece.error()));
    if (piece->empty()) co_return Result<void>{};
    if (head.body.size() + piece->size() > limit) co_return fail(body_limit_error(limit));
    head.body.append(*piece);
  }
}

namespace {
asio::awaitable<Result<void>> nothing_to_read() { co_return Result<void>{}; }
}  // namespace

void reserve_declared_body(const ResponseStream::Source& source, Response& head, std::size_t limit) {
  auto length = head.headers.get("content-length");
  if (length && !source.finished() && !head.headers.contains("content-encoding")) {
    std::uint64_t expected = 0;
    auto [end, ec] = std::from_chars(length->data(), length->data() + length->size(), expected);
    // Trusted only up to a few MiB: a lying header must not make us allocate its number.
    constexpr std::uint64_t reserve_cap = 8u << 20;
    if (ec == std::errc() && expected <= limit) head.body.reserve(head.body.size() + std::min(expected, reserve_cap));
  }
}

asio::awaitable<Result<void>> read_all_into(ResponseStream::Source& source, Response& head, std::size_t limit) {
  reserve_declared_body(source, head, limit);
  return source.read_all(head, limit);
}

std::optional<Result<void>> ResponseStream::Source::read_all_now(Response&, std::size_t) { return std::nullopt; }

asio::awaitable<Result<void>> ResponseStream::read_all_here(std::size_t limit) {
  if (!source_) return nothing_to_read();
  return read_all_into(*source_, head_, limit);
}

bool ResponseStream::finished() const noexcept { return !source_ || source_->finished(); }

Result<Request> Request::make(std::string_view method, std::string_view url) {
  auto parsed = Url::parse(url);
  if (!parsed) return fail(parsed.error());
  Request request;
  request.method = std::string(method);
  request.url = std::move(*parsed);
  if (auto ok = h1::validate_request(request); !ok) return fail(ok.error());
  return request;
}

}  // namespace errand::http
