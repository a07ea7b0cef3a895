// errand/core/error.hpp — failures the world causes, as values.
//
// Every fallible operation in errand returns Result<T> (an expected<T, Error>). An Error
// carries a Kind that retry policies, circuit breakers, metrics and the CLI's exit codes
// switch on; for timeouts, the Phase in which the deadline passed; a human message; the
// underlying std::error_code; and, for configuration problems, the file:line:column.
// An HTTP status is not an Error: a Response always carries its status.
//
//   Result<Url> url = Url::parse(text);
//   if (!url) std::cerr << url.error().describe() << '\n';
//
// Error is a plain value type: copyable, not synchronised.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <tl/expected.hpp>

namespace errand {

enum class ErrorKind {
  dns,          // the name could not be resolved
  connect,      // TCP connect refused, unreachable, ...
  tls,          // handshake or certificate verification failed
  timeout,      // a deadline passed; see Error::phase
  protocol,     // the peer broke HTTP (malformed, oversized, truncated framing)
  http_status,  // a policy decided the status is a failure (never produced by the transport)
  cancelled,    // the caller cancelled, or the client is shutting down
  io,           // the connection failed mid-exchange (reset, closed, ...)
  config,       // bad input from the user: URL, header, option, file
  circuit_open, // a circuit breaker is open for the origin: failed fast, nothing was sent
  overloaded,   // a concurrency limit (bulkhead) for the origin is reached: failed fast
};

// Where a request was when it failed (meaningful above all for timeouts).
enum class Phase { none, dns, connect, tls, write, first_byte, read };

std::string_view to_string(ErrorKind kind) noexcept;
std::string_view to_string(Phase phase) noexcept;
std::optional<ErrorKind> error_kind_from_string(std::string_view name) noexcept;  // "dns" → dns

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

// One try of a request that a policy may repeat (retries): what it ended with, how long the
// policy waited before it, and how long it took. Kept on the Response, or on the final Error.
struct Attempt {
  bool ok = false;        // a response came back (whatever its status)
  int status = 0;         // the response's status, when ok
  ErrorKind kind = ErrorKind::io;  // the failure, when !ok
  Phase phase = Phase::none;
  std::string message;    // the failure's message (bounded), when !ok
  std::chrono::nanoseconds delay{0};     // backoff before this attempt
  std::chrono::nanoseconds duration{0};  // from sending to the outcome
  bool hedge = false;     // sent beside a slow attempt, not after a failed one (its delay: the hedge delay)
};

class Error {
 public:
  Error() = default;
  Error(ErrorKind kind, std::string message, std::error_code code = {}, Phase phase = Phase::none)
      : kind_(kind), phase_(phase), message_(std::move(message)), code_(code) {}

  static Error timeout(Phase phase, std::string message) {
    return Error(ErrorKind::timeout, std::move(message), std::make_error_code(std::errc::timed_out), phase);
  }
  static Error config(std::string message, SourceLocation where = {}) {
    Error e(ErrorKind::config, std::move(message));
    e.where_ = std::move(where);
    return e;
  }

  ErrorKind kind() const noexcept { return kind_; }
  Phase phase() const noexcept { return phase_; }
  const std::string& message() const noexcept { return message_; }
  const std::error_code& code() const noexcept { return code_; }
  const SourceLocation& where() const noexcept { return where_; }

  Error& with_phase(Phase phase) & {
    phase_ = phase;
    return *this;
  }
  Error&& with_phase(Phase phase) && {
    phase_ = phase;
    return std::move(*this);
  }

  // "timeout (first_byte): no response within 500ms" — kind, phase when set, message,
  // and file:line:column first for configuration errors.
  std::string describe() const;

  // The attempts a retry policy made before giving up (empty when none was involved).
  const std::vector<Attempt>& attempts() const noexcept;
  Error& with_attempts(std::vector<Attempt> attempts) &;
  Error&& with_attempts(std::vector<Attempt> attempts) &&;

 private:
  ErrorKind kind_ = ErrorKind::io;
  Phase phase_ = Phase::none;
  std::string message_;
  std::error_code code_;
  SourceLocation where_;
  std::shared_ptr<const std::vector<Attempt>> attempts_;  // shared: errors are copied freely
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }
inline tl::unexpected<Error> fail(ErrorKind kind, std::string message, std::error_code code = {},
                                  Phase phase = Phase::none) {
  return tl::unexpected<Error>(Error(kind, std::move(message), code, phase));
}

}  // namespace errand
