#include "net/connect.hpp"

#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace errand::net {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string key_of(const std::string& host, std::uint16_t port) { return host + '|' + std::to_string(port); }

asio::awaitable<bool> was_cancelled() {
  auto state = co_await asio::this_coro::cancellation_state;
  co_return state.cancelled() != asio::cancellation_type::none;
}

std::string describe_connect_error(const boost::system::error_code& ec, const tcp::endpoint& ep) {
  std::string what;
  if (ec == asio::error::connection_refused) what = "connection refused";
  else if (ec == asio::error::network_unreachable) what = "network unreachable";
  else if (ec == asio::error::host_unreachable) what = "host unreachable";
  else what = ec.message();
  return what + " (" + to_string(ep) + ")";
}

}  // namespace

std::string to_string(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  return address.to_string() + ":" + std::to_string(endpoint.port());
}

const std::vector<tcp::endpoint>* DnsCache::lookup(const std::string& host, std::uint16_t port, TimePoint now) {
  auto it = entries_.find(key_of(host, port));
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second.endpoints;
}

void DnsCache::store(const std::string& host, std::uint16_t port, std::vector<tcp::endpoint> endpoints, TimePoint now) {
  if (ttl_ <= Duration::zero()) return;
  if (entries_.size() > 4096) entries_.clear();  // bound memory against unbounded host sets
  entries_[key_of(host, port)] = Entry{std::move(endpoints), now + ttl_};
}

std::vector<tcp::endpoint> interleave_families(const std::vector<tcp::endpoint>& endpoints) {
  if (endpoints.empty()) return {};
  bool first_v6 = endpoints.front().address().is_v6();
  std::vector<tcp::endpoint> primary, secondary, out;
  for (const auto& ep : endpoints) (ep.address().is_v6() == first_v6 ? primary : secondary).push_back(ep);
  for (std::size_t i = 0; i < std::max(primary.size(), secondary.size()); ++i) {
    if (i < primary.size()) out.push_back(primary[i]);
    if (i < secondary.size()) out.push_back(secondary[i]);
  }
  return out;
}

asio::awaitable<Result<std::vector<tcp::endpoint>>> resolve(std::string host, std::uint16_t port,
                                                           TimePoint deadline, DnsCache* cache) {
  boost::system::error_code parse_ec;
  auto literal = asio::ip::make_address(host, parse_ec);
  if (!parse_ec) co_return std::vector<tcp::endpoint>{tcp::endpoint(literal, port)};

  auto now = std::chrono::steady_clock::now();
  if (cache) {
    if (auto* hit = cache->lookup(host, port, now)) co_return *hit;
  }

  auto executor = co_await asio::this_coro::executor;
  // Shared with the resolver's completion handler, which may run after we have given up.
  struct State {
    explicit State(asio::any_io_executor ex) : resolver(ex), wake(ex) {}
    tcp::resolver resolver;
    asio::steady_timer wake;
    bool done = false;
    boost::system::error_code ec;
    std::vector<tcp::endpoint> endpoints;
  };
  auto state = std::make_shared<State>(executor);
  state->resolver.async_resolve(host, std::to_string(port),
                                [state](const boost::system::error_code& ec, tcp::resolver::results_type results) {
                                  state->done = true;
                                  state->ec = ec;
                                  for (const auto& entry : results) state->endpoints.push_back(entry.endpoint());
                                  state->wake.cancel();
                                });
  state->wake.expires_at(deadline);
  co_await state->wake.async_wait(use_tuple);
  if (!state->done) {
    state->resolver.cancel();
    if (co_await was_cancelled()) co_return fail(ErrorKind::cancelled, "cancelled while resolving " + host);
    co_return fail(Error::timeout(Phase::dns, "could not resolve '" + host + "' before the deadline"));
  }
  if (state->ec) {
    co_return fail(ErrorKind::dns, "could not resolve host '" + host + "': " + state->ec.message(),
                   std::error_code(state->ec.value(), std::system_category()), Phase::dns);
  }
  if (state->endpoints.empty())
    co_return fail(ErrorKind::dns, "no addresses for host '" + host + "'", {}, Phase::dns);
  auto ordered = interleave_families(state->endpoints);
  if (cache) cache->store(host, port, ordered, std::chrono::steady_clock::now());
  co_return std::move(ordered);
}

asio::awaitable<Result<tcp::socket>> connect_any(std::vector<tcp::endpoint> endpoints, TimePoint deadline,
                                                 Duration attempt_delay) {
  auto executor = co_await asio::this_coro::executor;
  if (endpoints.empty()) co_return fail(ErrorKind::connect, "no address to connect to", {}, Phase::connect);

  struct Attempt {
    explicit Attempt(asio::any_io_executor ex) : socket(ex) {}
    tcp::socket socket;
    bool finished = false;
    boost::system::error_code ec;
  };
  struct State {
    explicit State(asio::any_io_executor ex) : wake(ex) {}
    asio::steady_timer wake;
    std::vector<std::unique_ptr<Attempt>> attempts;
    std::size_t pending = 0;
    std::optional<std::size_t> winner;
    bool failed_since_start = false;  // an attempt failed: start the next one without waiting
    std::string last_error;
    std::error_code last_code;
  };
  auto state = std::make_shared<State>(executor);
  std::size_t next = 0;
  TimePoint last_start{};

  auto start_next = [&] {
    auto index = state->attempts.size();
    state->attempts.push_back(std::make_unique<Attempt>(executor));
    ++state->pending;
    state->failed_since_start = false;
    last_start = std::chrono::steady_clock::now();
    auto endpoint = endpoints[next++];
    state->attempts[index]->socket.async_connect(endpoint, [state, index, endpoint](const boost::system::error_code& ec) {
      auto& attempt = *state->attempts[index];
      attempt.finished = true;
      attempt.ec = ec;
      --state->pending;
      if (!ec && !state->winner) state->winner = index;
      if (ec && ec != asio::error::operation_aborted) {
        state->failed_since_start = true;
        state->last_error = describe_connect_error(ec, endpoint);
        state->last_code = std::error_code(ec.value(), std::system_category());
      }
      state->wake.cancel();
    });
  };
  auto close_losers = [&] {
    for (std::size_t i = 0; i < state->attempts.size(); ++i) {
      if (state->winner && *state->winner == i) continue;
      boost::system::error_code ignored;
      state->attempts[i]->socket.close(ignored);
    }
  };

  start_next();
  for (;;) {
    if (state->winner) {
      close_losers();
      tcp::socket socket = std::move(state->attempts[*state->winner]->socket);
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      co_return socket;
    }
    auto now = std::chrono::steady_clock::now();
    if (state->pending == 0 && next == endpoints.size())
      co_return fail(ErrorKind::connect, state->last_error.empty() ? "connect failed" : state->last_error,
                     state->last_code, Phase::connect);
    if (next < endpoints.size() &&
        (state->pending == 0 || state->failed_since_start || now >= last_start + attempt_delay)) {
      start_next();
      continue;
    }
    auto wake_at = deadline;
    if (next < endpoints.size()) wake_at = std::min(deadline, last_start + attempt_delay);
    state->wake.expires_at(wake_at);
    co_await state->wake.async_wait(use_tuple);
    // Cancelled first: a connection that won in the same turn as the cancellation is closed
    // too, or the cancellation would be lost (nothing after this waits on its signal).
    if (co_await was_cancelled()) {
      state->winner.reset();
      close_losers();
      co_return fail(ErrorKind::cancelled, "cancelled while connecting");
    }
    if (state->winner) continue;
    if (std::chrono::steady_clock::now() >= deadline) {
      close_losers();
      co_return fail(Error::timeout(Phase::connect, "no connection to " + to_string(endpoints.front()) +
                                                        " before the deadline"));
    }
  }
}

}  // namespace errand::net
