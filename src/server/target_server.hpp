// The built-in target server (`errand target`): a small Beast HTTP/1.1 server with endpoints
// that succeed, stall, stream, and fail in every way a real upstream can, so that the demo,
// the tests and users can watch how their automation behaves under failure.
//
//   TargetServer server({.listen = "127.0.0.1:0"});
//   if (auto started = server.start(); !started) { ... }
//   std::string base = server.base_url();   // "http://127.0.0.1:41234"
//   ...
//   server.stop();
//
// The server runs on its own thread(s), started by start() and joined by stop() (and by the
// destructor). Public member functions are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <errand/core/error.hpp>

namespace errand::server {

struct TargetOptions {
  std::string listen = "127.0.0.1:0";  // ip:port, localhost:port or [ipv6]:port; port 0 picks one
  bool tls = false;
  std::string cert_file;  // PEM; with tls and both empty, a self-signed certificate is generated
  std::string key_file;
  std::size_t max_header_bytes = 64 * 1024;               // larger request headers get 431
  std::chrono::milliseconds read_timeout{30'000};         // idle connection / slow request limit
  int threads = 1;
};

// Totals since construction; each field is read atomically, the set is not one snapshot.
struct TargetCounters {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_active = 0;
  std::uint64_t requests = 0;        // requests read completely (malformed ones are not counted)
  std::uint64_t tls_handshakes = 0;  // completed handshakes, full and resumed
  std::uint64_t tls_resumed = 0;     // of those, the ones that resumed a session
};

class TargetServer {
 public:
  explicit TargetServer(TargetOptions options);
  ~TargetServer();
  TargetServer(const TargetServer&) = delete;
  TargetServer& operator=(const TargetServer&) = delete;

  // Binds, listens and starts serving. Errors: config (bad listen address or option, unreadable
  // certificate, already running), io (bind failed, e.g. the port is taken), tls (OpenSSL
  // could not set up a context or generate the certificate).
  Result<void> start();
  // Stops accepting, closes connections (also those mid-/delay or mid-/stream), joins the
  // threads; returns within milliseconds. Idempotent; start() may be called again after.
  void stop();

  std::uint16_t port() const;
  std::string base_url() const;          // http(s)://host:port, IPv6 bracketed
  std::string certificate_pem() const;   // the certificate served with tls (to trust it in tests)
  TargetCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::server
