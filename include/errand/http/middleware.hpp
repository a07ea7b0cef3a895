// errand/http/middleware.hpp — the extension point of the Client: a chain of layers around the
// transport, each seeing a logical request and deciding how to pass it on (DESIGN.md: "a
// policy is a layer, never a flag inside the transport"), like Go's RoundTripper or tower's
// layers. The resilience policies (retries, breakers, ...) are Middleware.
//
//   ClientOptions options;
//   options.middleware.push_back(errand::resilience::retry(errand::resilience::RetryPolicy{}));
//
// Layers run outermost first, in the order of ClientOptions::middleware; the last `next` is
// the transport (pool, connection, redirects, decoding). A layer may call `next` several
// times (retries), not at all (a fallback), or change the request. It runs on the Client's
// worker; it must be thread-safe, as one layer serves every request of its Client.
// The request goes through the chain by reference: a chain of layers costs no copies or
// moves of it (each would be a dozen strings).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

namespace errand::http {

class Client;

// The rest of the chain after a layer: the next layer, or past the last one the transport.
// Cheap to copy (three values); valid while the layer's send() runs.
class Next {
 public:
  // Sends `request` on. The request must stay alive, unmoved, until the returned awaitable
  // completes; layers further in may change it (an attempt's deadline or traceparent). The
  // transport never does: redirects are followed on a copy.
  boost::asio::awaitable<Result<Response>> operator()(Request& request) const;

 private:
  friend class Client;
  friend class Stage;
  Next(void* impl, std::size_t index, Client* client) noexcept : impl_(impl), index_(index), client_(client) {}
  // The chain `n` layers further out than this one (a Stage in a row hands its own rest on).
  Next outward(std::size_t n) const noexcept { return Next(impl_, index_ - n, client_); }
  void* impl_ = nullptr;  // Client::Impl
  std::size_t index_ = 0;
  Client* client_ = nullptr;
};

// Decisions a layer takes about a request (a retry scheduled, a breaker opening, a fallback
// served) are told to the RequestEvents found in Request::extensions, when a layer further
// out (tracing) put one there: span events without the resilience layers knowing tracing.
using EventValue = std::variant<std::string, std::int64_t, double, bool>;

// An attribute's name. A name that is a literal (the OpenTelemetry conventions' names) is
// kept by reference through AttributeName::literal: a traced request sets some twenty
// attributes, and copying the names would cost more than the rest of the span. Any other name
// is copied, so a name built at run time may go out of scope. A literal copies or moves as a
// pointer and a size.
class AttributeName {
 public:
  // `name` must outlive every copy of the AttributeName: a string literal.
  static AttributeName literal(std::string_view name) noexcept {
    AttributeName n;
    n.data_ = name.data();
    n.size_ = name.size();
    n.plain_ = !name.empty();
    for (char c : name) {
      bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!letter && !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-') n.plain_ = false;
    }
    return n;
  }
  AttributeName(std::string_view name) { own(name); }
  AttributeName(const std::string& name) { own(name); }
  AttributeName(const char* name) { own(name); }
  AttributeName(const AttributeName& other) : data_(other.data_), size_(other.size_), plain_(other.plain_) {
    if (other.owned_) own(other.view());
  }
  AttributeName(AttributeName&& other) noexcept
      : data_(other.data_), size_(other.size_), owned_(other.owned_), plain_(other.plain_) {
    other.owned_ = false;
    other.plain_ = false;  // empty, as literal("") is
    other.data_ = "";
    other.size_ = 0;
  }
  AttributeName& operator=(AttributeName other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(owned_, other.owned_);
    std::swap(plain_, other.plain_);
    return *this;
  }
  ~AttributeName() {
    if (owned_) delete[] data_;
  }

  std::string_view view() const noexcept { return std::string_view(data_, size_); }
  operator std::string_view() const noexcept { return view(); }
  // A literal made only of ASCII letters, digits, '.', '_' and '-' (checked once, when made):
  // an encoder may write it as it is, with nothing to escape. Every OpenTelemetry name is.
  bool plain() const noexcept { return plain_; }
  friend bool operator==(const AttributeName& a, std::string_view b) noexcept { return a.view() == b; }

 private:
  AttributeName() = default;
  void own(std::string_view name) {
    char* copy = new char[name.size()];
    if (!name.empty()) std::memcpy(copy, name.data(), name.size());  // an empty view's data may be null
    data_ = copy;
    size_ = name.size();
    owned_ = true;
    plain_ = false;
  }
  const char* data_ = "";
  std::size_t size_ = 0;
  bool owned_ = false;
  bool plain_ = false;
};

using EventAttributes = std::vector<std::pair<AttributeName, EventValue>>;

class RequestEvents {
 public:
  virtual ~RequestEvents() = default;
  virtual void event(std::string_view name, EventAttributes attributes) = 0;
};

// Tells the request's RequestEvents, if any, of an event.
inline void report_event(const Extensions& extensions, std::string_view name, EventAttributes attributes = {}) {
  if (auto* events = extensions.get<RequestEvents>()) events->event(name, std::move(attributes));
}
inline void report_event(const Request& request, std::string_view name, EventAttributes attributes = {}) {
  report_event(request.extensions, name, std::move(attributes));
}

class Middleware {
 public:
  virtual ~Middleware() = default;
  // `request` is the logical request, owned by the Client's outermost frame until send()
  // returns; a layer may change it for the layers further in, or send copies (hedging).
  virtual boost::asio::awaitable<Result<Response>> send(Request& request, Next next, Client& client) = 0;
};

// A layer that does not wait: it acts on the request before it goes on and on the outcome
// after it comes back, in place. The Client runs each row of consecutive Stages in a single
// coroutine, so a Stage costs a few virtual calls per request where a coroutine layer costs
// a coroutine frame and moves of the Response (the reason Envoy's filters are callbacks).
// A Stage may still ask for the inner layers to run again after a pause (a retry), answer
// the request itself (an open breaker), or take one request down a coroutine of its own
// (a hedge racing an attempt). Implement it through StageWith<State> below.
class Stage : public Middleware {
 public:
  // Per-request state lives in the row's frame: state_size() bytes (a multiple of
  // state_alignment, at most max_state) at `state`, aligned to state_alignment.
  static constexpr std::size_t state_alignment = alignof(std::max_align_t);
  static constexpr std::size_t max_state = 512;
  virtual std::size_t state_size() const noexcept = 0;

  enum class Begin {
    proceed,   // on to the layers further in
    answered,  // `outcome` holds this stage's answer; nothing further in runs, nor this stage's end()
    suspend,   // this request needs suspended(): the stage's coroutine takes it from here
  };
  // `now` is when the row's pass began (on the way in) or its way out began: the Client reads
  // the clock once for all the stages of a row, and a stage that times the request takes
  // `now` instead of reading the clock itself (a reading costs as much as a stage).
  struct BeginContext {
    std::chrono::steady_clock::time_point now;
  };
  struct EndContext {
    bool cancelled = false;    // the request was cancelled: ask for no repeat
    bool interrupted = false;  // the pause this stage asked for was cut short: `outcome` says why
    std::chrono::steady_clock::time_point now{};
  };

  // The raw interface the Client drives; StageWith implements it. begin() constructs the
  // stage's state at `state`; the Client calls destroy() exactly once after each begin() that
  // returned (one that throws leaves nothing behind).
  virtual Begin begin(Request& request, void* state, Result<Response>& outcome, Client& client,
                      BeginContext context) = 0;
  // Returns a pause after which the layers further in run again (then again() is called),
  // or nullopt when this stage is done with the request. `outcome->url` is still empty here
  // unless a redirect was followed (Response::url): the request's URL is the response's.
  virtual std::optional<Duration> end(Request& request, void* state, Result<Response>& outcome, Client& client,
                                      EndContext context) = 0;
  virtual void again(Request& request, void* state, BeginContext context) = 0;
  virtual boost::asio::awaitable<Result<Response>> suspended(Request& request, void* state, Next next,
                                                             Client& client) = 0;
  virtual void destroy(void* state) noexcept = 0;

  // Alone (outside a Client's chain, as in a test): a row of one.
  boost::asio::awaitable<Result<Response>> send(Request& request, Next next, Client& client) final;
};

// A Stage whose per-request state is a `State` (default-constructed by each request's begin).
template <class State>
class StageWith : public Stage {
  static constexpr std::size_t rounded_size = (sizeof(State) + state_alignment - 1) / state_alignment * state_alignment;
  static_assert(rounded_size <= max_state, "a Stage's state must fit Stage::max_state (hold a pointer to more)");
  static_assert(alignof(State) <= state_alignment, "a Stage's state must not be over-aligned");

 protected:
  virtual Begin before(Request& request, State& state, Result<Response>& outcome, Client& client,
                       BeginContext context) = 0;
  virtual std::optional<Duration> after(Request& request, State& state, Result<Response>& outcome, Client& client,
                                        EndContext context) = 0;
  // Before the layers further in run again, after the pause after() asked for.
  virtual void before_again(Request&, State&, BeginContext) {}
  // For the requests before() answered with Begin::suspend.
  virtual boost::asio::awaitable<Result<Response>> run_suspended(Request&, State&, Next, Client&) {
    co_return fail(ErrorKind::config, "this stage cannot suspend");
  }

 private:
  static State& of(void* state) noexcept { return *std::launder(static_cast<State*>(state)); }
  std::size_t state_size() const noexcept final { return rounded_size; }
  Begin begin(Request& request, void* state, Result<Response>& outcome, Client& client,
              BeginContext context) final {
    State* made = ::new (state) State{};
    try {
      return before(request, *made, outcome, client, context);
    } catch (...) {
      made->~State();
      throw;
    }
  }
  std::optional<Duration> end(Request& request, void* state, Result<Response>& outcome, Client& client,
                              EndContext context) final {
    return after(request, of(state), outcome, client, context);
  }
  void again(Request& request, void* state, BeginContext context) final {
    before_again(request, of(state), context);
  }
  boost::asio::awaitable<Result<Response>> suspended(Request& request, void* state, Next next,
                                                     Client& client) final {
    return run_suspended(request, of(state), next, client);
  }
  void destroy(void* state) noexcept final { of(state).~State(); }
};

}  // namespace errand::http
