// HTTP/1.1 request heads, written by hand into one buffer: the request line, Host, the
// user's fields in their order, then the defaults the user did not set (User-Agent, Accept,
// Accept-Encoding, Content-Length). Framing fields the transport owns (Content-Length,
// Transfer-Encoding, Host, Connection: close decisions) are not the user's to break: a user's
// Content-Length or Transfer-Encoding is replaced. Validation happens before (validate_request).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <errand/core/error.hpp>
#include <errand/http/message.hpp>

namespace errand::http::h1 {

struct HeadDefaults {
  std::string_view user_agent;
  std::string_view accept_encoding;  // empty: don't ask for compression
};

// Checks method (RFC 9110 token) and every header field. Errors: config.
Result<void> validate_request(const Request& request);

// `body_length`: the exact body size, or nullopt for no body.
std::string serialize_head(const Request& request, std::optional<std::uint64_t> body_length,
                           const HeadDefaults& defaults);

// Whether the method is idempotent per RFC 9110 §9.2.2 (safe to replay).
bool is_idempotent(std::string_view method) noexcept;

}  // namespace errand::http::h1
