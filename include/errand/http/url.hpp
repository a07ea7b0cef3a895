// errand/http/url.hpp — absolute http and https URLs (RFC 3986), parsed and normalised.
//
//   Result<Url> url = Url::parse("https://user@[::1]:8443/a%20b?q=1#frag");
//   url->host();     // "::1"        (lower-cased; IPv6 literals without brackets)
//   url->port();     // 8443         (the scheme's default when none is given)
//   url->target();   // "/a%20b?q=1" (what goes on the request line; never the fragment)
//
// Parsing never throws. Anything malformed — unknown scheme, empty or invalid host, bad port,
// bad percent-escape, control characters (CR, LF, NUL, ...) — comes back as an Error of kind
// config whose message says what is wrong and at which column. Spaces and bytes outside
// ASCII in path, query and fragment are percent-encoded rather than refused, as browsers and
// curl do. IDNA is not supported: non-ASCII host names are refused.
//
// Url is a value type: copyable, not synchronised.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <errand/core/error.hpp>

namespace errand::http {

class Url {
 public:
  // Parses an absolute URL; scheme must be http or https (case-insensitive).
  static Result<Url> parse(std::string_view text);

  // Resolves a reference (a Location header: absolute, scheme-relative "//h/p",
  // absolute-path "/p", or relative "p", "../p", "?q") against this URL (RFC 3986 §5.2).
  Result<Url> resolve(std::string_view reference) const;

  const std::string& scheme() const noexcept { return scheme_; }      // "http" or "https"
  const std::string& userinfo() const noexcept { return userinfo_; }  // raw, still percent-encoded
  const std::string& host() const noexcept { return host_; }          // lower-cased, no brackets
  std::uint16_t port() const noexcept { return port_; }               // effective port
  bool has_explicit_port() const noexcept { return explicit_port_; }
  const std::string& path() const noexcept { return path_; }          // percent-encoded, "/" at least
  const std::string& query() const noexcept { return query_; }        // without '?'
  bool has_query() const noexcept { return has_query_; }
  const std::string& fragment() const noexcept { return fragment_; }  // without '#'

  bool is_https() const noexcept { return scheme_ == "https"; }
  bool is_ipv6_literal() const noexcept { return host_.find(':') != std::string::npos; }
  bool is_ip_literal() const noexcept;

  std::string target() const;       // path[?query]: the request-target
  std::string host_header() const;  // host[:port] (port only when not the default), IPv6 bracketed
  std::string origin() const;       // scheme://host:port, always with the port: the pool key
  void origin_into(std::string& out) const;  // the same, into a buffer the caller reuses
  std::string to_string() const;    // the normalised URL (userinfo and fragment included)
  // scheme://host[:port]path[?query]: without userinfo (credentials) and fragment (never
  // sent), as logs and spans show it (OpenTelemetry's url.full). The port as in host_header().
  std::string without_credentials() const;

  static std::uint16_t default_port(std::string_view scheme) noexcept;  // 80, 443, or 0

  friend bool operator==(const Url&, const Url&) = default;

 private:
  std::string scheme_;
  std::string userinfo_;
  std::string host_;
  std::uint16_t port_ = 0;
  bool explicit_port_ = false;
  std::string path_ = "/";
  std::string query_;
  bool has_query_ = false;
  std::string fragment_;
};

// Percent-decoding; fails (config) on a malformed escape such as "%4" or "%zz".
Result<std::string> percent_decode(std::string_view text);

// Percent-encodes every byte except RFC 3986 unreserved characters and those in `keep`.
std::string percent_encode(std::string_view text, std::string_view keep = {});

}  // namespace errand::http
