// Name resolution and TCP connection establishment, each with a deadline.
//
// resolve(): getaddrinfo through Asio's resolver, raced against a timer, because a stalled
// DNS server must not hold a request past its deadline (Asio cannot cancel getaddrinfo, so a
// late answer is simply dropped). IP literals never reach the resolver.
// connect_any(): Happy Eyeballs in the manner of RFC 8305: addresses alternate between
// families, the next attempt starts when the previous one failed or has stalled for
// `attempt_delay`, and the first connection to succeed wins; the others are closed.
//
// Errors: dns (not found, resolver failure), connect (refused, unreachable, ...),
// timeout with phase dns or connect, cancelled (the awaiting coroutine was cancelled).
// Everything here runs on the calling coroutine's executor; DnsCache is not synchronised
// (one per worker).
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <errand/core/error.hpp>

namespace errand::net {

using tcp = boost::asio::ip::tcp;
using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class DnsCache {
 public:
  explicit DnsCache(Duration ttl) : ttl_(ttl) {}
  const std::vector<tcp::endpoint>* lookup(const std::string& host, std::uint16_t port, TimePoint now);
  void store(const std::string& host, std::uint16_t port, std::vector<tcp::endpoint> endpoints, TimePoint now);

 private:
  struct Entry {
    std::vector<tcp::endpoint> endpoints;
    TimePoint expires;
  };
  Duration ttl_;
  std::unordered_map<std::string, Entry> entries_;
};

// Addresses for host:port, IPv4 and IPv6 interleaved (first family first).
boost::asio::awaitable<Result<std::vector<tcp::endpoint>>> resolve(
    std::string host, std::uint16_t port, TimePoint deadline, DnsCache* cache);

boost::asio::awaitable<Result<tcp::socket>> connect_any(
    std::vector<tcp::endpoint> endpoints, TimePoint deadline, Duration attempt_delay);

// Orders addresses as RFC 8305 §4 asks: alternate families, starting with the first one's.
std::vector<tcp::endpoint> interleave_families(const std::vector<tcp::endpoint>& endpoints);

std::string to_string(const tcp::endpoint& endpoint);  // "127.0.0.1:80", "[::1]:443"

}  // namespace errand::net
