// Process exit codes, one per error kind, numbered like curl's where curl has one so that
// scripts that know curl read them right. Documented in docs/cli.md; keep the two in step.
#pragma once

#include <errand/core/error.hpp>

namespace errand::cli {

namespace exit_codes {
inline constexpr int ok = 0;
inline constexpr int failure = 1;       // anything not listed
inline constexpr int config = 2;        // bad command line, URL, header, file
inline constexpr int dns = 6;           // curl: couldn't resolve host
inline constexpr int connect = 7;       // curl: failed to connect
inline constexpr int protocol = 8;      // curl: weird server reply
inline constexpr int http_status = 22;  // curl --fail: status >= 400
inline constexpr int write_failed = 23; // curl: write error
inline constexpr int timeout = 28;      // curl: operation timed out
inline constexpr int tls = 35;          // curl: TLS connect error
inline constexpr int io = 56;           // curl: failure receiving network data
inline constexpr int circuit_open = 69;  // sysexits EX_UNAVAILABLE: a breaker refused at once
inline constexpr int overloaded = 75;    // sysexits EX_TEMPFAIL: a concurrency limit refused
inline constexpr int cancelled = 130;   // as if interrupted by SIGINT
}  // namespace exit_codes

inline int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::dns: return exit_codes::dns;
    case ErrorKind::connect: return exit_codes::connect;
    case ErrorKind::tls: return exit_codes::tls;
    case ErrorKind::timeout: return exit_codes::timeout;
    case ErrorKind::protocol: return exit_codes::protocol;
    case ErrorKind::http_status: return exit_codes::http_status;
    case ErrorKind::cancelled: return exit_codes::cancelled;
    case ErrorKind::io: return exit_codes::io;
    case ErrorKind::config: return exit_codes::config;
    case ErrorKind::circuit_open: return exit_codes::circuit_open;
    case ErrorKind::overloaded: return exit_codes::overloaded;
  }
  return exit_codes::failure;
}

}  // namespace errand::cli
