#include <errand/net/runtime.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace errand::net {

namespace {
// Which runtime and worker the current thread belongs to (null for foreign threads).
thread_local const void* tls_runtime = nullptr;
thread_local std::size_t tls_worker = 0;
}  // namespace

// An io_context whose services can be shut down before any context is destroyed: pending
// handlers may own objects (timers, sockets) of another worker's context, so every context
// must still exist while the handlers of all of them are destroyed.
class WorkerContext : public boost::asio::io_context {
 public:
  WorkerContext() : boost::asio::io_context(1) {}
  using boost::asio::io_context::shutdown;
};

struct Runtime::Impl {
  struct Worker {
    WorkerContext context;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stopped{false};
};

Runtime::Runtime(RuntimeOptions options) : impl_(std::make_unique<Impl>()) {
  std::size_t n = options.threads == 0 ? 1 : options.threads;
  for (std::size_t i = 0; i < n; ++i) {
    auto worker = std::make_unique<Impl::Worker>();
    worker->guard.emplace(worker->context.get_executor());
    impl_->workers.push_back(std::move(worker));
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto* worker = impl_->workers[i].get();
    worker->thread = std::thread([this, worker, i] {
      tls_runtime = this;
      tls_worker = i;
      worker->context.run();
    });
  }
}

Runtime::~Runtime() {
  stop();
  for (auto& w : impl_->workers) w->context.shutdown();
}

std::size_t Runtime::size() const noexcept { return impl_->workers.size(); }

boost::asio::io_context& Runtime::context(std::size_t worker) noexcept {
  return impl_->workers[worker % impl_->workers.size()]->context;
}

std::size_t Runtime::next_worker() noexcept {
  return impl_->next.fetch_add(1, std::memory_order_relaxed) % impl_->workers.size();
}

std::optional<std::size_t> Runtime::current_worker() const noexcept {
  if (tls_runtime == this) return tls_worker;
  return std::nullopt;
}

void Runtime::stop() {
  if (impl_->stopped.exchange(true)) return;
  // Pending timers and idle sockets would keep run() going for as long as their deadlines:
  // stopping is abrupt and bounded; owners (clients, servers) drain their work before this.
  for (auto& w : impl_->workers) {
    w->guard.reset();
    w->context.stop();
  }
  for (auto& w : impl_->workers) {
    if (w->thread.get_id() == std::this_thread::get_id()) {
      w->thread.detach();  // stopping from inside a worker: it cannot join itself
      continue;
    }
    if (w->thread.joinable()) w->thread.join();
  }
}

Runtime& Runtime::default_runtime() {
  // Leaked on purpose: destroying it at exit would race with static destructors of users
  // that still hold clients; the OS reclaims the threads.
  static Runtime* runtime = new Runtime(RuntimeOptions{1});
  return *runtime;
}

}  // namespace errand::net
