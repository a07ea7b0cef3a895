// The OTLP/HTTP (JSON) exporter: a bounded queue filled by export_span() on the Client's
// workers, and a sender thread that POSTs batches through a Client of its own. The POSTs are
// started and cancelled on that Client's single worker only, so a cancellation signal is never
// touched from two threads.
#include <errand/observe/tracing.hpp>

#include <atomic>
#include <condition_variable>
#include <iterator>
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

namespace errand::observe {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

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
  explicit Impl(OtlpOptions o) : options(std::move(o)), url(otlp_traces_url(options.endpoint)) {
    options.max_batch = std::max<std::size_t>(1, options.max_batch);
    http::ClientOptions client_options;
    client_options.runtime = &runtime;
    client_options.max_redirects = 0;
    client = std::make_unique<http::Client>(client_options);  // no middleware: never traced
    sender = std::thread([this] { run(); });
  }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, options.flush_interval,
                    [&] { return stopping || flush_wanted || queue.size() >= options.max_batch; });
      if (queue.empty()) {
        flush_wanted = false;
        idle.notify_all();
        if (stopping) return;
        continue;
      }
      // The whole queue changes hands (a batch is at most max_batch, and the queue holds at
      // most max_queue): the workers push into reserved room and allocate nothing per span.
      std::vector<Span> batch;
      if (queue.size() <= options.max_batch) {
        batch.swap(queue);
        queue.swap(spare);
        queue.reserve(std::min(options.max_queue, options.max_batch));
      } else {
        batch.reserve(options.max_batch);
        std::move(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(options.max_batch), std::back_inserter(batch));
        queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(options.max_batch));
      }
      std::size_t n = batch.size();
      sending = true;
      lock.unlock();
      auto outcome = post(encode_otlp_json(batch, options.service_name));
      batch.clear();
      lock.lock();
      if (spare.capacity() < batch.capacity()) spare.swap(batch);  // its room is reused
      sending = false;
      if (outcome && outcome->status / 100 == 2) {
        exported += n;
      } else {
        dropped += n;
        ++failed_posts;
        last_error = outcome ? "HTTP " + std::to_string(outcome->status) : outcome.error().describe();
      }
      if (queue.empty()) flush_wanted = false;
      idle.notify_all();
    }
  }

  Result<http::Response> post(std::string body) {
    auto request = http::Request::make("POST", url);
    if (!request) return fail(request.error());
    request->headers.set("Content-Type", "application/json");
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
    if (stopped) return queue.empty();
    flush_wanted = true;
    wake.notify_all();
    return idle.wait_until(lock, Clock::now() + deadline, [&] { return queue.empty() && !sending; });
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
      dropped += queue.size();
      queue.clear();
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

  std::mutex mutex;
  std::condition_variable wake;  // the sender: spans, a flush or shutdown
  std::condition_variable idle;  // flush(): the queue is empty and nothing is being sent
  std::vector<Span> queue;       // everything from here on is guarded by mutex
  std::vector<Span> spare;       // the last batch's room, for the next swap
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

void OtlpHttpExporter::export_span(const Span& span) { export_span(Span(span)); }

void OtlpHttpExporter::export_span(Span&& span) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped || impl_->queue.size() >= impl_->options.max_queue) {
    ++impl_->dropped;
    return;
  }
  impl_->queue.push_back(std::move(span));
  if (impl_->queue.size() >= impl_->options.max_batch) impl_->wake.notify_one();
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
