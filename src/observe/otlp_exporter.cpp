// The OTLP/HTTP exporter (JSON or protobuf). export_span() encodes the span on the Client's
// worker that ended it, into the batch being filled (a span is encoded where it was made, so
// its memory is freed by the thread that allocated it, and nothing but bytes cross threads);
// full batches wait in a bounded queue, and a sender thread POSTs them through a Client of
// its own. The POSTs are started and cancelled on that Client's single worker only, so a
// cancellation signal is never touched from two threads.
#include <errand/observe/tracing.hpp>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <vector>
#include <future>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

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
        head(json ? otlp_json_head(options.service_name) : std::string(otlp_proto_head(options.service_name, 1 << 14).size(), '\0')) {
    options.max_batch = std::max<std::size_t>(1, options.max_batch);
    http::ClientOptions client_options;
    client_options.runtime = &runtime;
    client_options.max_redirects = 0;
    client = std::make_unique<http::Client>(client_options);  // no middleware: never traced
    sender = std::thread([this] { run(); });
  }

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
    if (filling.spans >= options.max_batch) close_batch();
  }

  // Under mutex.
  void close_batch() {
    full.push_back(std::move(filling));
    filling = Batch{};
    wake.notify_one();
  }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, options.flush_interval, [&] { return stopping || flush_wanted || !full.empty(); });
      if (full.empty() && filling.spans > 0) {  // a partial batch: its time is up, or a flush wants it
        full.push_back(std::move(filling));
        filling = Batch{};
      }
      if (full.empty()) {
        flush_wanted = false;
        idle.notify_all();
        if (stopping) return;
        continue;
      }
      Batch batch = std::move(full.front());
      full.pop_front();
      queued -= batch.spans;
      sending = true;
      lock.unlock();
      if (json) batch.text.append(otlp_json_tail());
      else finish_protobuf(batch.text);
      auto outcome = post(std::move(batch.text));
      lock.lock();
      sending = false;
      if (outcome && outcome->status / 100 == 2) {
        exported += batch.spans;
      } else {
        dropped += batch.spans;
        ++failed_posts;
        last_error = outcome ? "HTTP " + std::to_string(outcome->status) : outcome.error().describe();
      }
      if (full.empty() && filling.spans == 0) flush_wanted = false;
      idle.notify_all();
    }
  }

  // Writes the head into its room; a batch whose lengths do not take three bytes each (a small
  // one) gets a head of its own size, and is copied behind it.
  void finish_protobuf(std::string& text) const {
    std::string real = otlp_proto_head(options.service_name, text.size() - head.size());
    if (real.size() == head.size()) std::memcpy(text.data(), real.data(), real.size());
    else text.replace(0, head.size(), real);
  }

  Result<http::Response> post(std::string body) {
    auto request = http::Request::make("POST", url);
    if (!request) return fail(request.error());
    request->headers.set("Content-Type", json ? "application/json" : "application/x-protobuf");
    request->body = std::move(body);
    request->timeouts.total = options.timeout;
    std::promise<Result<http::Response>> done;
    auto result = done.get_future();
    asio::io_context& context = runtime.context(0);
    asio::post(context, [this, &context, &done, request = std::move(*request)]() mutable {
      if (aborted.load()) {
        done.set_value(fail(ErrorKind::cancelled, "the exporter was shut down"));
        return;
      }
      asio::co_spawn(context, client->send(std::move(request)),
                     asio::bind_cancellation_slot(cancel.slot(), [&done](std::exception_ptr e, Result<http::Response> r) {
                       if (e) done.set_value(fail(ErrorKind::io, "the OTLP POST failed unexpectedly"));
                       else done.set_value(std::move(r));
                     }));
    });
    return result.get();
  }

  bool flush(std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex);
    if (stopped) return queued == 0;
    flush_wanted = true;
    wake.notify_all();
    return idle.wait_until(lock, Clock::now() + deadline, [&] { return queued == 0 && !sending; });
  }

  void shutdown(std::chrono::milliseconds deadline) {
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
    }
    flush(deadline);
    {
      std::lock_guard lock(mutex);
      stopped = true;
      stopping = true;
      dropped += queued;
      queued = 0;
      full.clear();
      filling = Batch{};
      wake.notify_all();
    }
    aborted = true;  // before the cancellation is posted: a POST not yet started sees it
    asio::post(runtime.context(0), [this] { cancel.emit(asio::cancellation_type::terminal); });
    if (sender.joinable()) sender.join();
    client.reset();
    runtime.stop();
  }

  OtlpOptions options;
  std::string url;
  bool json;  // else protobuf

  std::mutex mutex;
  std::condition_variable wake;  // the sender: spans, a flush or shutdown
  std::condition_variable idle;  // flush(): the queue is empty and nothing is being sent
  std::string head;              // of every OTLP/JSON request body; protobuf: room for it
  Batch filling;                 // everything from here on is guarded by mutex
  std::deque<Batch> full;        // max_batch spans each, waiting for the sender
  std::size_t queued = 0;        // spans in `filling` and `full`: at most max_queue
  bool flush_wanted = false;
  bool sending = false;
  bool stopping = false;
  bool stopped = false;
  std::uint64_t exported = 0;
  std::uint64_t dropped = 0;
  std::uint64_t failed_posts = 0;
  std::string last_error;

  std::atomic<bool> aborted{false};
  asio::cancellation_signal cancel;  // used on the runtime's worker only
  net::Runtime runtime{{.threads = 1}};
  std::unique_ptr<http::Client> client;
  std::thread sender;
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
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped || impl_->queued >= impl_->options.max_queue) {
    ++impl_->dropped;
    return;
  }
  impl_->add(text);
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
