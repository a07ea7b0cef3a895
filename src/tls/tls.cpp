#include "tls/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

namespace errand::tls {

namespace ssl = boost::asio::ssl;

namespace {

// Links an SSL object to the cache slot its sessions belong in, for the new-session callback.
struct SessionTarget {
  SessionCache* cache;
  std::string origin;
};

int session_target_index() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<SessionTarget*>(ptr); });
  return index;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* target = static_cast<SessionTarget*>(SSL_get_ex_data(ssl, session_target_index()));
  if (!target || !SSL_SESSION_is_resumable(session)) return 0;
  // A copy: OpenSSL marks the connection's own session not resumable when the connection is
  // freed without a TLS shutdown, which is how pooled connections end.
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) target->cache->store(target->origin, copy);
  return 0;  // OpenSSL keeps (and frees) its reference
}

std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  if (code == 0) return {};
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace

SessionCache::~SessionCache() {
  for (auto& [origin, session] : sessions_) SSL_SESSION_free(static_cast<SSL_SESSION*>(session));
}

bool SessionCache::apply(void* ssl, const std::string& origin) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(origin);
  if (it == sessions_.end()) return false;
  return SSL_set_session(static_cast<SSL*>(ssl), static_cast<SSL_SESSION*>(it->second)) == 1;
}

void SessionCache::store(const std::string& origin, void* session) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = sessions_.try_emplace(origin, session);
  if (!inserted) {
    SSL_SESSION_free(static_cast<SSL_SESSION*>(it->second));
    it->second = session;
  }
}

void SessionCache::forget(const std::string& origin) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(origin);
  if (it == sessions_.end()) return;
  SSL_SESSION_free(static_cast<SSL_SESSION*>(it->second));
  sessions_.erase(it);
}

ClientContext::ClientContext(const ClientConfig& config) : config_(config), context_(ssl::context::tls_client) {}

Result<std::shared_ptr<ClientContext>> ClientContext::create(const ClientConfig& config) {
  auto ctx = std::make_shared<ClientContext>(config);
  SSL_CTX* native = ctx->context_.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ec;
  if (config.insecure) {
    ctx->context_.set_verify_mode(ssl::verify_none);
  } else {
    ctx->context_.set_verify_mode(ssl::verify_peer);
    ctx->context_.set_default_verify_paths(ec);
    if (ec) return fail(ErrorKind::tls, "cannot load the system CA store: " + ec.message());
    if (!config.ca_file.empty()) {
      ctx->context_.load_verify_file(config.ca_file, ec);
      if (ec) return fail(Error::config("cannot load CA file '" + config.ca_file + "': " + ec.message()));
    }
  }
  if (!config.cert_file.empty()) {
    ctx->context_.use_certificate_chain_file(config.cert_file, ec);
    if (ec) return fail(Error::config("cannot load client certificate '" + config.cert_file + "': " + ec.message()));
    const std::string& key = config.key_file.empty() ? config.cert_file : config.key_file;
    ctx->context_.use_private_key_file(key, ssl::context::pem, ec);
    if (ec) return fail(Error::config("cannot load client key '" + key + "': " + ec.message()));
  }
  if (config.session_cache) {
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(native, on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  }
  return ctx;
}

Result<bool> ClientContext::prepare(Stream& stream, const std::string& host, const std::string& origin) {
  return prepare(static_cast<void*>(stream.native_handle()), host, origin);
}

Result<bool> ClientContext::prepare(void* handle, const std::string& host, const std::string& origin) {
  SSL* ssl = static_cast<SSL*>(handle);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  bool is_ip = !ec;
  if (!is_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
    return fail(ErrorKind::tls, "cannot set SNI name '" + host + "': " + openssl_reason(), {}, Phase::tls);
  if (!config_.insecure) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, address.to_string().c_str())
                   : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) return fail(ErrorKind::tls, "cannot set the expected peer name '" + host + "'", {}, Phase::tls);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (!config_.alpn.empty()) {
    std::string wire;
    std::size_t start = 0;
    while (start <= config_.alpn.size()) {
      auto comma = config_.alpn.find(',', start);
      auto proto = config_.alpn.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!proto.empty() && proto.size() < 256) {
        wire += static_cast<char>(proto.size());
        wire += proto;
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  if (!config_.session_cache) return false;
  SSL_set_ex_data(ssl, session_target_index(), new SessionTarget{&sessions_, origin});
  return sessions_.apply(ssl, origin);
}

std::string ClientContext::describe_failure(Stream& stream, const boost::system::error_code& ec) const {
  SSL* ssl = stream.native_handle();
  if (SSL_get_verify_result(ssl) != X509_V_OK && !config_.insecure) return describe_failure(static_cast<void*>(ssl));
  std::string reason = openssl_reason();
  if (ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated)
    return "the server closed the connection during the TLS handshake";
  if (!reason.empty()) return reason;
  return ec.message();
}

std::string ClientContext::describe_failure(void* handle) const {
  SSL* ssl = static_cast<SSL*>(handle);
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK && !config_.insecure) {
    ERR_clear_error();
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  std::string reason = openssl_reason();
  return reason.empty() ? "TLS handshake failed" : reason;
}

bool ClientContext::session_reused(Stream& stream) { return session_reused(static_cast<void*>(stream.native_handle())); }
bool ClientContext::session_reused(void* ssl) { return SSL_session_reused(static_cast<SSL*>(ssl)) == 1; }
void* ClientContext::native_context() noexcept { return context_.native_handle(); }

}  // namespace errand::tls
