// TLS for the lean load engine: one connection's TLS over OpenSSL memory BIOs, so the engine
// keeps doing its own I/O (io_uring or epoll) and only moves bytes in and out. Certificates,
// SNI, name checks, ALPN and the per-origin session cache come from tls::ClientContext,
// like the client's; this file is the only place in load/ that sees Asio or OpenSSL headers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <errand/core/error.hpp>

namespace errand::load {

// Shared by a run's threads (the session cache is synchronised).
class TlsClient {
 public:
  // resume: offer the last session of the origin on each new connection (else full handshakes).
  static Result<std::shared_ptr<TlsClient>> create(bool insecure, const std::string& ca_file, bool resume);
  ~TlsClient();
  struct Impl;
  std::unique_ptr<Impl> impl;
};

class TlsSession {
 public:
  static Result<std::unique_ptr<TlsSession>> start(TlsClient& client, const std::string& host, const std::string& origin);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Handshake { in_progress, done, failed };
  Handshake handshake();                  // call after start() and after each feed() until done
  void feed(const char* data, std::size_t length);  // ciphertext from the socket
  // Decrypted bytes into `out`: > 0 bytes, 0 nothing more for now, -1 failed, -2 the peer
  // closed the TLS session (close_notify).
  long read(char* out, std::size_t capacity);
  void write(std::string_view plaintext);
  // Ciphertext waiting to be sent (empty when none). The view stays valid until the call after
  // next: output alternates between two buffers, so a send still in flight is never touched.
  std::string_view take_output();
  bool resumed() const;
  std::string failure() const;  // why handshake() or read() failed

 private:
  TlsSession() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::load
