// errand/net/runtime.hpp — the threads that do errand's I/O.
//
// A Runtime owns N workers; each is one thread running its own single-threaded io_context
// (concurrency hint 1), so a connection, a pool shard or a histogram that belongs to a worker
// is touched by that thread only and needs no lock. Work for another worker is posted to it.
//
//   errand::net::Runtime runtime({.threads = 2});
//   boost::asio::co_spawn(runtime.context(0), my_coroutine(), boost::asio::detached);
//
// The blocking facade (errand/http/blocking.hpp) uses Runtime::default_runtime(), started
// lazily on first use with one worker; it is never destroyed (its threads end with the process).
// A Runtime must not be destroyed from one of its own workers.
// Thread-safety: all member functions are thread-safe. The destructor stops and joins.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace errand::net {

struct RuntimeOptions {
  std::size_t threads = 1;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::size_t size() const noexcept;
  boost::asio::io_context& context(std::size_t worker) noexcept;
  // Round-robin choice of a worker for new work.
  std::size_t next_worker() noexcept;
  // The index of the worker running on the calling thread, if it is one of ours.
  std::optional<std::size_t> current_worker() const noexcept;

  // Stops the workers at once (pending handlers are dropped) and joins them. Idempotent.
  // Drain clients and servers first (their own shutdown) for a graceful stop.
  void stop();

  static Runtime& default_runtime();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::net
