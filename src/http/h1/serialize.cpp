#include "http/h1/serialize.hpp"

#include "http/token.hpp"

#include <array>
#include <cstring>

namespace errand::http::h1 {

namespace {

bool transport_owned(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "host");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

Result<void> validate_request(const Request& request) {
  if (!is_token(request.method))
    return fail(Error::config("invalid HTTP method \"" + request.method.substr(0, 32) + "\""));
  for (const auto& field : request.headers) {
    if (auto ok = validate_field(field.name, field.value); !ok) return ok;
  }
  return {};
}

std::string serialize_head(const Request& request, std::optional<std::uint64_t> body_length,
                           const HeadDefaults& defaults) {
  std::string out;
  std::string target = request.url.target();
  // Room for the usual head in one allocation: the request line, Host, the defaults (some
  // 100 bytes), the caller's fields and the traceparent line.
  out.reserve(128 + target.size() + request.headers.size() * 48 + (request.traceparent ? 72 : 0));
  out.append(request.method);
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");
  if (auto host = request.headers.get("host")) append_field(out, "Host", *host);
  else append_field(out, "Host", request.url.host_header());
  bool has_ua = false, has_accept = false, has_ae = false;
  for (const auto& field : request.headers) {
    if (transport_owned(field.name)) continue;
    if (request.traceparent && iequals(field.name, "traceparent")) continue;  // replaced below
    has_ua |= iequals(field.name, "user-agent");
    has_accept |= iequals(field.name, "accept");
    has_ae |= iequals(field.name, "accept-encoding");
    append_field(out, field.name, field.value);
  }
  if (request.traceparent) {  // one piece: the tracing layers send it on every request
    constexpr std::string_view name = "traceparent: ";
    std::array<char, name.size() + Request::traceparent_size + 2> line;
    std::memcpy(line.data(), name.data(), name.size());
    std::memcpy(line.data() + name.size(), request.traceparent->data(), request.traceparent->size());
    std::memcpy(line.data() + line.size() - 2, "\r\n", 2);
    out.append(line.data(), line.size());
  }
  if (!has_ua && !defaults.user_agent.empty()) append_field(out, "User-Agent", defaults.user_agent);
  if (!has_accept) append_field(out, "Accept", "*/*");
  if (!has_ae && !defaults.accept_encoding.empty()) append_field(out, "Accept-Encoding", defaults.accept_encoding);
  if (body_length) {
    append_field(out, "Content-Length", std::to_string(*body_length));
  } else if (request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    append_field(out, "Content-Length", "0");  // some servers answer 411 without it
  }
  out.append("\r\n");
  return out;
}

bool is_idempotent(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

}  // namespace errand::http::h1
