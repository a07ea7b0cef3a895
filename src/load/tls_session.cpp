#include "load/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/tls.hpp"

namespace errand::load {

struct TlsClient::Impl {
  std::shared_ptr<tls::ClientContext> context;
};

TlsClient::~TlsClient() = default;

Result<std::shared_ptr<TlsClient>> TlsClient::create(bool insecure, const std::string& ca_file, bool resume) {
  tls::ClientConfig config;
  config.insecure = insecure;
  config.ca_file = ca_file;
  config.session_cache = resume;
  auto context = tls::ClientContext::create(config);
  if (!context) return fail(context.error());
  auto client = std::make_shared<TlsClient>();
  client->impl = std::make_unique<Impl>();
  client->impl->context = std::move(*context);
  return client;
}

struct TlsSession::Impl {
  tls::ClientContext* context = nullptr;
  SSL* ssl = nullptr;
  BIO* network_in = nullptr;   // owned by ssl
  BIO* network_out = nullptr;  // owned by ssl
  std::string output[2];
  int next_output = 0;
  std::string failure;
  ~Impl() {
    if (ssl) SSL_free(ssl);
  }
};

TlsSession::~TlsSession() = default;

Result<std::unique_ptr<TlsSession>> TlsSession::start(TlsClient& client, const std::string& host, const std::string& origin) {
  std::unique_ptr<TlsSession> session(new TlsSession());
  auto impl = std::make_unique<Impl>();
  impl->context = client.impl->context.get();
  impl->ssl = SSL_new(static_cast<SSL_CTX*>(impl->context->native_context()));
  if (!impl->ssl) return fail(ErrorKind::tls, "cannot create a TLS session", {}, Phase::tls);
  impl->network_in = BIO_new(BIO_s_mem());
  impl->network_out = BIO_new(BIO_s_mem());
  if (!impl->network_in || !impl->network_out) {
    BIO_free(impl->network_in);
    BIO_free(impl->network_out);
    return fail(ErrorKind::tls, "cannot create TLS buffers", {}, Phase::tls);
  }
  BIO_set_mem_eof_return(impl->network_in, -1);  // empty means "wait for more", not end of stream
  SSL_set_bio(impl->ssl, impl->network_in, impl->network_out);
  SSL_set_connect_state(impl->ssl);
  if (auto prepared = impl->context->prepare(static_cast<void*>(impl->ssl), host, origin); !prepared)
    return fail(prepared.error());
  session->impl_ = std::move(impl);
  return session;
}

TlsSession::Handshake TlsSession::handshake() {
  int rc = SSL_do_handshake(impl_->ssl);
  if (rc == 1) return Handshake::done;
  int error = SSL_get_error(impl_->ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return Handshake::in_progress;
  impl_->failure = impl_->context->describe_failure(static_cast<void*>(impl_->ssl));
  return Handshake::failed;
}

void TlsSession::feed(const char* data, std::size_t length) {
  BIO_write(impl_->network_in, data, static_cast<int>(length));
}

long TlsSession::read(char* out, std::size_t capacity) {
  int n = SSL_read(impl_->ssl, out, static_cast<int>(capacity));
  if (n > 0) return n;
  int error = SSL_get_error(impl_->ssl, n);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return 0;
  if (error == SSL_ERROR_ZERO_RETURN) return -2;
  impl_->failure = impl_->context->describe_failure(static_cast<void*>(impl_->ssl));
  return -1;
}

void TlsSession::write(std::string_view plaintext) {
  // Memory BIOs grow: SSL_write takes everything at once.
  SSL_write(impl_->ssl, plaintext.data(), static_cast<int>(plaintext.size()));
}

std::string_view TlsSession::take_output() {
  std::size_t pending = BIO_ctrl_pending(impl_->network_out);
  if (pending == 0) return {};
  std::string& out = impl_->output[impl_->next_output];
  impl_->next_output ^= 1;
  out.resize(pending);
  int n = BIO_read(impl_->network_out, out.data(), static_cast<int>(pending));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

bool TlsSession::resumed() const { return tls::ClientContext::session_reused(static_cast<void*>(impl_->ssl)); }
std::string TlsSession::failure() const { return impl_->failure; }

}  // namespace errand::load
