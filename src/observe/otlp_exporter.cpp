// The OTLP/HTTP exporter (JSON or protobuf). export_span() encodes the span on the Client's
// worker that ended it, into the batch being filled (a span is encoded where it was made, so
// its memory is freed by the thread that allocated it, and nothing but bytes cross threads);
// full batches wait in a bounded queue, and the exporter's own Runtime worker POSTs them one
// after another through a Client of its own. That worker does everything the exporter does
// in time: the POSTs, the timer that sends a partial batch, the cancellation at shutdown. A
// POST wakes one thread, once; a sender thread between the request's and the worker cost
// two more hand-offs per POST (about 13 µs of CPU per POST on the benchmark's VM). The POSTs
// are started and cancelled on that worker only, so a cancellation signal is never touched
// from two threads.
#include <errand/observe/tracing.hpp>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <errand/http/client.hpp>
#include <errand/net/runtime.hpp>

#include "observe/otlp_encoding.hpp"

namespace errand::observe {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::optional<OtlpEncoding> parse_otlp_encoding(std::string_view name) {
  if (name == "json" || name == "http/json") return OtlpEncoding::json;
  if (name == "protobuf" || name == "http/protobuf") return OtlpEncoding::protobuf;
  return std::nullopt;
}

std::string_view to_string(OtlpEncoding encoding) { return encoding == OtlpEncoding::json ? "json" : "protobuf"; }

std::string otlp_traces_url(std::string_view endpoint) {
  std::string url(endpoint);
  // A base URL (no path, no query) gets the traces path; anything else is used as it is, and
  // a malformed one is left for the caller's Url::parse to refuse.
  if (auto parsed = http::Url::parse(endpoint); parsed && parsed->path() == "/" && !parsed->has_query() && parsed->fragment().empty()) {
    if (url.ends_with('/')) url.pop_back();
    url += "/v1/traces";
  }
  return url;
}

struct OtlpHttpExporter::Impl {
  explicit Impl(OtlpOptions o)
      : options(std::move(o)),
        url(otlp_traces_url(options.endpoint)),
        json(options.encoding == OtlpEncoding::json),
        // Protobuf: room for the head of a batch of 16 KiB to 2 MiB of spans (its lengths
        // three bytes each), written when the batch is sent.
        head(json ? otlp_json_head(options.service_name) : std::string(otlp_proto_head(options.service_name, 1 << 14).size(), '\0')),
        post(http::Request::make("POST", url)) {
    options.max_batch = std::max<std::size_t>(1, options.max_batch);
    if (post) {
      post->headers.set("Content-Type", json ? "application/json" : "application/x-protobuf");
      post->timeouts.total = options.timeout;
    }
    http::ClientOptions client_options;
    client_options.runtime = &runtime;
    client_options.max_redirects = 0;
    client = std::make_unique<http::Client>(client_options);  // no middleware: never traced
    asio::post(worker(), [this] { arm_timer(); });
  }

  asio::io_context& worker() { return runtime.context(0); }

  // An OTLP request body being filled. JSON: the head, the spans' texts joined by ','.
  // Protobuf: room for the head, whose lengths count the spans, then the spans' fields one
  // after another.
  struct Batch {
    std::string text;
    std::size_t spans = 0;
  };

  // What a batch's body adds to its text when sent, at most: JSON's ',' before a span and its
  // tail; protobuf's head, when its lengths take more than the three bytes it has room for.
  std::size_t closing() const { return json ? 1 + otlp_json_tail().size() : 8; }

  // Under mutex.
  void add(std::string_view span_text) {
    if (filling.spans > 0 && filling.text.size() + span_text.size() + closing() > options.max_batch_bytes)
      close_batch();  // the span starts the next one
    if (filling.spans == 0) {
      filling.text.assign(head);
      // Room for a batch of spans like this one, but no more than 1 MiB ahead.
      std::size_t per_span = span_text.size() + 64;
      std::size_t spans = std::min({options.max_batch, options.max_queue, (std::size_t{1} << 20) / per_span});
      filling.text.reserve(std::min(head.size() + spans * per_span, options.max_batch_bytes));
    } else if (json) {
      filling.text += ',';
    }
    filling.text.append(span_text);
    ++filling.spans;
    ++queued;
    ++added;
    if (filling.spans >= options.max_batch) close_batch();
  }

  // Under mutex.
  void close_batch() {
    full.push_back(std::move(filling));
    filling = Batch{};
  }

  // Under mutex: whether the caller is to start the worker sending (post send_next), which
  // it then is, until it finds nothing more to send.
  bool start_sending() {
    if (sending || stopped) return false;
    sending = true;
    return true;
  }

  // On the worker, every flush_interval: a partial batch has waited long enough.
  void arm_timer() {
    timer.expires_after(options.flush_interval);
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // cancelled: shutting down
      bool start = false;
      {
        std::lock_guard lock(mutex);
        if (stopped) return;
        if (filling.spans > 0 || !full.empty()) {
          partial_due = true;
          start = start_sending();
        }
      }
      if (start) send_next();
      arm_timer();
    });
  }

  // On the worker, while `sending`: POSTs the next batch (a full one; else the partial one when
  // its time is up or a flush wants it), and again when that POST ends; stops sending when
  // nothing is left, which a flush waits for. A batch that fails before it is sent (an
  // endpoint that is no URL, a shutdown) is counted here and the loop goes on: no recursion per batch.
  void send_next() {
    for (;;) {
      Batch batch;
      {
        std::lock_guard lock(mutex);
        if (!full.empty()) {
          batch = std::move(full.front());
          full.pop_front();
        } else if (filling.spans > 0 && (partial_due || flush_upto > added - filling.spans) && !stopped) {
          batch = std::move(filling);
          filling = Batch{};
          // The timer's due batch is this one: what comes after it waits for a full batch or
          // the next tick, as POSTs would otherwise shrink to what arrives during one.
          partial_due = false;
        } else {
          sending = false;
          partial_due = false;
          idle.notify_all();
          return;
        }
        queued -= batch.spans;
      }
      if (!post) {
        count_post(batch.spans, fail(post.error()));
        continue;
      }
      if (aborted.load()) {
        count_post(batch.spans, fail(ErrorKind::cancelled, "the exporter was shut down"));
        continue;
      }
      if (json) batch.text.append(otlp_json_tail());  // only a batch that is sent is finished
      else finish_protobuf(batch.text);
      http::Request request = *post;
      request.body = std::move(batch.text);
      asio::co_spawn(worker(), client->send(std::move(request)),
                     asio::bind_cancellation_slot(cancel.slot(), [this, spans = batch.spans](std::exception_ptr e,
                                                                                          Result<http::Response> r) {
                       if (e) count_post(spans, fail(ErrorKind::io, "the OTLP POST failed unexpectedly"));
                       else count_post(spans, r);
                       send_next();
                     }));
      return;
    }
  }

  void count_post(std::size_t spans, const Result<http::Response>& outcome) {
    std::lock_guard lock(mutex);
    settled += spans;
    idle.notify_all();  // a flush may be waiting for these
    if (outcome && outcome->status / 100 == 2) {
      exported += spans;
    } else {
      dropped += spans;
      ++failed_posts;
      last_error = outcome ? "HTTP " + std::to_string(outcome->status) : outcome.error().describe();
    }
  }

  // Writes the head into its room; a batch whose lengths do not take three bytes each (a small
  // one) gets a head of its own size, and is copied behind it.
  void finish_protobuf(std::string& text) const {
    std::string real = otlp_proto_head(options.service_name, text.size() - head.size());
    if (real.size() == head.size()) std::memcpy(text.data(), real.data(), real.size());
    else text.replace(0, head.size(), real);
  }

  // Waits for the spans queued before the call, not for an empty queue: under steady
  // traffic the queue is never empty, and a flush would wait out its deadline.
  bool flush(std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex);
    const std::uint64_t target = added;
    if (settled >= target) return true;
    if (stopped) return false;
    flush_upto = std::max(flush_upto, target);
    if (start_sending()) asio::post(worker(), [this] { send_next(); });
    return idle.wait_until(lock, Clock::now() + deadline, [&] { return settled >= target; });
  }

  void shutdown(std::chrono::milliseconds deadline) {
    // One at a time: a second caller waits for the first to finish, then finds it stopped
    // (two at once both shut the Client down and reset it).
    std::lock_guard one_at_a_time(shutting_down);
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
    }
    flush(deadline);
    {
      std::lock_guard lock(mutex);
      stopped = true;
      dropped += queued;
      settled += queued;
      queued = 0;
      full.clear();
      filling = Batch{};
    }
    aborted = true;  // before the cancellation is posted: a POST not yet started sees it
    asio::post(worker(), [this] {
      cancel.emit(asio::cancellation_type::terminal);
      timer.cancel();
    });
    // And the Client's own shutdown, which closes its connections: a POST that the signal
    // reached between two of its steps ends at the next one.
    client->shutdown(std::chrono::milliseconds(0));
    {
      // The POST under way ends at once, cancelled (its spans are counted as dropped): then
      // nothing on the worker uses the Client.
      std::unique_lock lock(mutex);
      idle.wait(lock, [&] { return !sending; });
    }
    client.reset();
    runtime.stop();
  }

  OtlpOptions options;
  std::string url;
  bool json;  // else protobuf
  std::string head;  // of every OTLP/JSON request body; protobuf: room for it
  // Every POST but its body, made once; an endpoint that is no URL fails every batch with it.
  Result<http::Request> post;

  std::mutex shutting_down;
  std::mutex mutex;
  std::condition_variable idle;  // flush(): spans were settled; shutdown(): nothing is being sent
  Batch filling;                 // everything from here on is guarded by mutex
  std::deque<Batch> full;        // max_batch spans each, waiting for the worker
  std::size_t queued = 0;        // spans in `filling` and `full`: at most max_queue
  // Spans ever queued, and how many of them were sent or dropped since (a POST's spans when
  // it ends): the first `settled` of the `added`, as batches go in order. A flush waits for
  // the count queued when it was called, and the partial batch goes when it holds any of those.
  std::uint64_t added = 0;
  std::uint64_t settled = 0;
  std::uint64_t flush_upto = 0;
  bool partial_due = false;  // the timer: the partial batch goes too
  bool sending = false;      // the worker is sending (send_next runs, or a POST is under way)
  bool stopped = false;
  std::uint64_t exported = 0;
  std::uint64_t dropped = 0;
  std::uint64_t failed_posts = 0;
  std::string last_error;

  std::atomic<bool> aborted{false};
  asio::cancellation_signal cancel;  // used on the runtime's worker only
  net::Runtime runtime{{.threads = 1}};
  std::unique_ptr<http::Client> client;
  asio::steady_timer timer{runtime.context(0)};  // used on the worker only
};

OtlpHttpExporter::OtlpHttpExporter(OtlpOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

OtlpHttpExporter::~OtlpHttpExporter() { impl_->shutdown(std::chrono::milliseconds(0)); }

void OtlpHttpExporter::export_span(const Span& span) {
  // Encoded before the lock, into the thread's own buffer: the lock is held for a copy only.
  // Its size is its room, made once per thread (growing a string zeroes what it adds); an
  // outsized span gets room of its own, so that a thread does not keep it.
  constexpr std::size_t kept_room = 64 * 1024;
  thread_local std::string room(kept_room, '\0');
  std::string outsized;
  char* at = room.data();
  bool json = impl_->json;
  std::size_t bound = json ? otlp_span_bound(span) : otlp_proto_span_bound(span);
  if (bound > kept_room) {
    outsized.resize(bound);
    at = outsized.data();
  }
  char* end = json ? put_otlp_span(at, span) : put_otlp_proto_span(at, span, bound);
  std::string_view text(at, static_cast<std::size_t>(end - at));
  bool start = false;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped || impl_->queued >= impl_->options.max_queue) {
      ++impl_->dropped;
      return;
    }
    impl_->add(text);
    start = !impl_->full.empty() && impl_->start_sending();
  }
  if (start) asio::post(impl_->worker(), [impl = impl_.get()] { impl->send_next(); });
}

void OtlpHttpExporter::flush() { impl_->flush(std::chrono::seconds(5)); }
bool OtlpHttpExporter::flush(std::chrono::milliseconds deadline) { return impl_->flush(deadline); }
void OtlpHttpExporter::shutdown() { impl_->shutdown(std::chrono::seconds(5)); }
void OtlpHttpExporter::shutdown(std::chrono::milliseconds deadline) { impl_->shutdown(deadline); }

std::uint64_t OtlpHttpExporter::dropped() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->dropped;
}

OtlpStats OtlpHttpExporter::stats() const {
  std::lock_guard lock(impl_->mutex);
  return OtlpStats{impl_->exported, impl_->dropped, impl_->failed_posts, impl_->last_error};
}

const std::string& OtlpHttpExporter::url() const noexcept { return impl_->url; }

}  // namespace errand::observe
