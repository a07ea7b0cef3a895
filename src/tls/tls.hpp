// TLS for client connections: an OpenSSL context built from the user's options (verification
// on by default against the system store, optional extra CA file and client certificate,
// TLS 1.2 and 1.3), per-connection set-up (SNI, hostname or IP check, ALPN) and a per-origin
// session cache so that a new connection resumes the previous session.
//
// The cache is filled from OpenSSL's new-session callback, which for TLS 1.3 runs when the
// server's NewSessionTicket arrives after the handshake, so sessions are stored whenever they
// come. ClientContext and its SessionCache are thread-safe (connections on every worker share
// them); a Stream belongs to one connection.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <errand/core/error.hpp>

namespace errand::tls {

struct ClientConfig {
  bool insecure = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool session_cache = true;
  std::string alpn = "http/1.1";  // comma-separated protocol list, in preference order
};

using Stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

class SessionCache {
 public:
  SessionCache() = default;
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  // Puts the cached session for `origin` (if any) on the SSL object; true when one was set.
  bool apply(void* ssl, const std::string& origin);
  // Takes ownership of `session` (an SSL_SESSION*), replacing the previous one.
  void store(const std::string& origin, void* session);
  void forget(const std::string& origin);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, void*> sessions_;  // SSL_SESSION*, owned
};

class ClientContext {
 public:
  // Errors: config (unreadable CA file, certificate or key), tls (OpenSSL set-up failure).
  static Result<std::shared_ptr<ClientContext>> create(const ClientConfig& config);

  boost::asio::ssl::context& native() noexcept { return context_; }
  SessionCache& sessions() noexcept { return sessions_; }
  const ClientConfig& config() const noexcept { return config_; }

  // Prepares a new stream for `host` (SNI unless an IP literal, certificate name or IP check,
  // ALPN, cached session for `origin`). Returns whether a cached session was offered.
  Result<bool> prepare(Stream& stream, const std::string& host, const std::string& origin);
  // The same for a bare SSL object (an `SSL*`, e.g. over memory BIOs in the load generator).
  Result<bool> prepare(void* ssl, const std::string& host, const std::string& origin);

  // Describes a failed handshake: the verification failure when there is one
  // ("certificate verify failed: self-signed certificate"), else OpenSSL's reason.
  std::string describe_failure(Stream& stream, const boost::system::error_code& ec) const;
  std::string describe_failure(void* ssl) const;  // an `SSL*`

  static bool session_reused(Stream& stream);
  static bool session_reused(void* ssl);  // an `SSL*`
  void* native_context() noexcept;       // the `SSL_CTX*`

  explicit ClientContext(const ClientConfig& config);

 private:
  ClientConfig config_;
  boost::asio::ssl::context context_;
  SessionCache sessions_;
};

}  // namespace errand::tls
