// URL parsing and RFC 3986 reference resolution.
//
// The parser is strict wherever leniency would let one URL mean different things to
// different programs — control characters (request-line and header injection), numeric hosts
// that resolvers read as IPv4 in odd notations ("127.1", "0x7f.0.0.1"), backslashes in the
// authority (browsers read them as '/') — and lenient where browsers and curl are: whitespace
// around the URL, spaces and non-ASCII bytes in path, query and fragment.
#include <errand/http/url.hpp>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace errand::http {
namespace {

// Longer inputs are refused: no legitimate URL comes close, and it bounds the work done on
// untrusted Location headers.
constexpr std::size_t max_url_length = std::size_t{64} * 1024;

// Longest excerpt of the input that an error message quotes.
constexpr std::size_t max_quoted = 64;

constexpr char hex_digits[] = "0123456789ABCDEF";

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }
bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int hex_value(unsigned char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = to_lower(c);
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

bool is_unreserved(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

bool is_sub_delim(unsigned char c) {
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

bool is_scheme_char(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.'; }
bool is_userinfo_char(unsigned char c) { return is_unreserved(c) || is_sub_delim(c) || c == ':'; }
bool is_reg_name_char(unsigned char c) { return is_unreserved(c) || is_sub_delim(c); }
bool is_pchar(unsigned char c) { return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@'; }
bool is_path_char(unsigned char c) { return is_pchar(c) || c == '/'; }
bool is_query_char(unsigned char c) { return is_pchar(c) || c == '/' || c == '?'; }

void append_escaped(std::string& out, unsigned char c) {
  out += '%';
  out += hex_digits[c >> 4];
  out += hex_digits[c & 0x0f];
}

// A byte as a message shows it: 'a', '\n', '\x7F'.
std::string quote_char(unsigned char c) {
  std::string out = "'";
  switch (c) {
    case '\0': out += "\\0"; break;
    case '\t': out += "\\t"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\\': out += "\\\\"; break;
    case '\'': out += "\\'"; break;
    default:
      if (is_control(c) || c >= 0x80) {
        out += "\\x";
        out += hex_digits[c >> 4];
        out += hex_digits[c & 0x0f];
      } else {
        out += static_cast<char>(c);
      }
  }
  out += '\'';
  return out;
}

// An excerpt of the input as a message shows it: double-quoted, cut when long, with control
// and non-ASCII bytes escaped so that messages are printable ASCII whatever the input was (they
// end up in terminals, logs and JSON, where raw control bytes or invalid UTF-8 do harm).
std::string quote(std::string_view text) {
  const bool cut = text.size() > max_quoted;
  if (cut) text = text.substr(0, max_quoted);
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (is_control(c) || c >= 0x80) {
      out += "\\x";
      out += hex_digits[c >> 4];
      out += hex_digits[c & 0x0f];
    } else {
      out += ch;
    }
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

tl::unexpected<Error> config_error(std::string message) { return fail(Error::config(std::move(message))); }

std::string at_column(std::size_t column) { return " at column " + std::to_string(column); }
std::string in_column(std::size_t column) { return " (column " + std::to_string(column) + ")"; }

tl::unexpected<Error> malformed_escape(std::string_view text, std::size_t i, std::size_t column) {
  return config_error("malformed percent-escape " + quote(text.substr(i, 3)) + at_column(column));
}

// True when text[i] starts a well-formed "%XX".
bool is_escape_at(std::string_view text, std::size_t i) {
  return text.size() - i >= 3 && is_hex(static_cast<unsigned char>(text[i + 1])) &&
         is_hex(static_cast<unsigned char>(text[i + 2]));
}

// One component of a split reference; column is the 1-based column of its first byte.
struct Part {
  std::string_view text;
  std::size_t column = 0;
  bool present = false;
};

// RFC 3986 appendix B, except that a prefix that is not a valid scheme is read as part of a
// relative path, as browsers do.
struct Reference {
  Part scheme;
  Part authority;
  Part path;
  Part query;
  Part fragment;
};

Reference split_reference(std::string_view text, std::size_t offset) {
  Reference ref;
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (n > 0 && is_alpha(static_cast<unsigned char>(text[0]))) {
    std::size_t j = 1;
    while (j < n && is_scheme_char(static_cast<unsigned char>(text[j]))) ++j;
    if (j < n && text[j] == ':') {
      ref.scheme = {text.substr(0, j), offset + 1, true};
      i = j + 1;
    }
  }
  if (text.substr(i, 2) == "//") {
    i += 2;
    std::size_t end = text.find_first_of("/?#", i);
    if (end == std::string_view::npos) end = n;
    ref.authority = {text.substr(i, end - i), offset + i + 1, true};
    i = end;
  }
  std::size_t end = text.find_first_of("?#", i);
  if (end == std::string_view::npos) end = n;
  ref.path = {text.substr(i, end - i), offset + i + 1, true};
  i = end;
  if (i < n && text[i] == '?') {
    ++i;
    end = text.find('#', i);
    if (end == std::string_view::npos) end = n;
    ref.query = {text.substr(i, end - i), offset + i + 1, true};
    i = end;
  }
  if (i < n && text[i] == '#') {
    ++i;
    ref.fragment = {text.substr(i), offset + i + 1, true};
  }
  return ref;
}

// The input with surrounding whitespace removed; offset is how many bytes were removed in front.
struct Trimmed {
  std::string_view text;
  std::size_t offset = 0;
};

Result<Trimmed> prepare(std::string_view raw) {
  if (raw.size() > max_url_length) {
    return config_error("URL too long: " + std::to_string(raw.size()) + " bytes (the limit is " +
                        std::to_string(max_url_length) + ")");
  }
  std::size_t begin = 0;
  std::size_t end = raw.size();
  while (begin < end && is_space(static_cast<unsigned char>(raw[begin]))) ++begin;
  while (end > begin && is_space(static_cast<unsigned char>(raw[end - 1]))) --end;
  for (std::size_t i = begin; i < end; ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (is_control(c)) return config_error("invalid character " + quote_char(c) + at_column(i + 1));
  }
  return Trimmed{raw.substr(begin, end - begin), begin};
}

// Keeps well-formed escapes as they are, percent-encodes bytes that `allowed` rejects (spaces,
// '<', '"', non-ASCII, ...), refuses control bytes and malformed escapes.
Result<std::string> encode_part(const Part& part, bool (*allowed)(unsigned char)) {
  std::string out;
  out.reserve(part.text.size());
  const std::string_view text = part.text;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      if (!is_escape_at(text, i)) return malformed_escape(text, i, part.column + i);
      out.append(text.substr(i, 3));
      i += 2;
    } else if (is_control(c)) {
      return config_error("invalid character " + quote_char(c) + at_column(part.column + i));
    } else if (allowed(c)) {
      out += static_cast<char>(c);
    } else {
      append_escaped(out, c);
    }
  }
  return out;
}

// RFC 3986 §5.2.4, in one pass over the input.
std::string remove_dot_segments(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  const std::size_t n = in.size();
  auto rest = [&] { return in.substr(i); };
  auto drop_last_segment = [&] {
    std::size_t slash = out.rfind('/');
    out.erase(slash == std::string::npos ? 0 : slash);
  };
  while (i < n) {
    if (rest().starts_with("../")) {
      i += 3;
    } else if (rest().starts_with("./") || rest().starts_with("/./")) {
      i += 2;
    } else if (rest() == "/.") {
      out += '/';
      break;
    } else if (rest().starts_with("/../")) {
      i += 3;
      drop_last_segment();
    } else if (rest() == "/..") {
      drop_last_segment();
      out += '/';
      break;
    } else if (rest() == "." || rest() == "..") {
      break;
    } else {
      std::size_t end = in.find('/', i + 1);
      if (end == std::string_view::npos) end = n;
      out.append(in.substr(i, end - i));
      i = end;
    }
  }
  // An http path is never empty and always absolute, whatever the input was.
  if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
  return out;
}

// A dotted quad of decimal octets. Leading zeros are refused: some resolvers read them as octal.
bool is_ipv4(std::string_view text) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    unsigned value = 0;
    while (i < text.size() && is_digit(static_cast<unsigned char>(text[i])) && i - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    std::size_t len = i - start;
    if (len == 0 || value > 255 || (len > 1 && text[start] == '0')) return false;
    ++parts;
    if (i == text.size()) return parts == 4;
    if (text[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// RFC 3986 IPv6address: eight 16-bit hex groups, at most one "::" standing for one or more
// zero groups, and optionally a dotted-quad IPv4 address as the last 32 bits.
bool is_ipv6(std::string_view text) {
  const std::size_t n = text.size();
  int groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (n == 0) return false;
  if (text.starts_with("::")) {
    compressed = true;
    i = 2;
    if (i == n) return true;
  } else if (text[0] == ':') {
    return false;
  }
  while (i < n) {
    std::size_t start = i;
    while (i < n && is_hex(static_cast<unsigned char>(text[i])) && i - start < 5) ++i;
    if (i < n && text[i] == '.') {
      if (!is_ipv4(text.substr(start))) return false;
      groups += 2;
      break;
    }
    std::size_t len = i - start;
    if (len == 0 || len > 4) return false;
    ++groups;
    if (i == n) break;
    if (text[i] != ':') return false;
    ++i;
    if (i == n) return false;
    if (text[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

// Whether the last label (ignoring one trailing dot) is a number, decimal or 0x-hex: resolvers
// then read the whole name as an IPv4 address, in whatever notation inet_aton accepts.
bool ends_in_number(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  std::size_t dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (last.starts_with("0x")) {
    for (char c : last.substr(2)) {
      if (!is_hex(static_cast<unsigned char>(c))) return false;
    }
    return true;
  }
  for (char c : last) {
    if (!is_digit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Result<std::string> parse_userinfo(std::string_view text, std::size_t column) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      if (!is_escape_at(text, i)) return malformed_escape(text, i, column + i);
      i += 2;
    } else if (!is_userinfo_char(c)) {
      return config_error("invalid character " + quote_char(c) + " in userinfo" + at_column(column + i) +
                          " (percent-encode it)");
    }
  }
  return std::string(text);
}

// A registered name or IPv4 address, lower-cased. Escapes are decoded (a host goes to DNS and
// into the Host header as plain text), and must decode to characters a host may contain.
Result<std::string> parse_reg_name(std::string_view text, std::size_t column) {
  std::string host;
  host.reserve(text.size());
  auto non_ascii = [&] {
    return config_error("non-ASCII host names are not supported (no IDNA): " + quote(text) + in_column(column));
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      if (!is_escape_at(text, i)) return malformed_escape(text, i, column + i);
      auto decoded = static_cast<unsigned char>(hex_value(static_cast<unsigned char>(text[i + 1])) * 16 +
                                                hex_value(static_cast<unsigned char>(text[i + 2])));
      if (decoded >= 0x80) return non_ascii();
      if (!is_reg_name_char(decoded)) {
        return config_error("percent-escape " + quote(text.substr(i, 3)) + " in host decodes to " +
                            quote_char(decoded) + ", which a host name cannot contain" + in_column(column + i));
      }
      host += to_lower(static_cast<char>(decoded));
      i += 2;
    } else if (c >= 0x80) {
      return non_ascii();
    } else if (is_reg_name_char(c)) {
      host += to_lower(static_cast<char>(c));
    } else {
      return config_error("invalid character " + quote_char(c) + " in host" + at_column(column + i));
    }
  }
  if (ends_in_number(host) && !is_ipv4(host)) {
    return config_error("invalid IPv4 address " + quote(text) + in_column(column) +
                        ": expected four decimal numbers 0-255 without leading zeros");
  }
  return host;
}

Result<std::string> parse_ip_literal(std::string_view literal, std::size_t column) {
  std::string_view inside = literal.substr(1, literal.size() - 2);
  if (inside.find('%') != std::string_view::npos) {
    return config_error("IPv6 zone identifiers are not supported: " + quote(literal) + in_column(column));
  }
  if (!inside.empty() && (inside[0] == 'v' || inside[0] == 'V')) {
    return config_error("IPvFuture addresses are not supported: " + quote(literal) + in_column(column));
  }
  if (!is_ipv6(inside)) return config_error("invalid IPv6 literal " + quote(literal) + in_column(column));
  return lowercase(inside);
}

struct Authority {
  std::string userinfo;
  std::string host;
  std::uint16_t port = 0;
  bool explicit_port = false;
};

Result<Authority> parse_authority(const Part& part, std::string_view scheme) {
  Authority out;
  std::string_view text = part.text;
  std::size_t column = part.column;
  // The last '@' splits, as browsers do; an '@' before it is then refused inside the userinfo.
  std::size_t at = text.rfind('@');
  if (at != std::string_view::npos) {
    auto userinfo = parse_userinfo(text.substr(0, at), column);
    if (!userinfo) return fail(std::move(userinfo.error()));
    out.userinfo = std::move(*userinfo);
    text.remove_prefix(at + 1);
    column += at + 1;
  }

  std::size_t port_colon = std::string_view::npos;
  if (text.starts_with('[')) {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return config_error("invalid IPv6 literal " + quote(text) + in_column(column) + ": missing ']'");
    }
    auto host = parse_ip_literal(text.substr(0, close + 1), column);
    if (!host) return fail(std::move(host.error()));
    out.host = std::move(*host);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return config_error("invalid character " + quote_char(static_cast<unsigned char>(text[close + 1])) +
                            " after IPv6 literal" + at_column(column + close + 1));
      }
      port_colon = close + 1;
    }
  } else {
    port_colon = text.find(':');
    std::string_view name = text.substr(0, port_colon);
    if (name.empty()) return config_error("missing host" + in_column(column));
    auto host = parse_reg_name(name, column);
    if (!host) return fail(std::move(host.error()));
    out.host = std::move(*host);
  }

  out.port = Url::default_port(scheme);
  if (port_colon != std::string_view::npos) {
    std::string_view digits = text.substr(port_colon + 1);
    // An empty port is allowed by RFC 3986 and means the default.
    if (!digits.empty()) {
      auto invalid = [&] {
        return config_error("invalid port " + quote(digits) + in_column(column + port_colon + 1) +
                            ": expected a number from 0 to 65535");
      };
      for (char c : digits) {
        if (!is_digit(static_cast<unsigned char>(c))) return invalid();
      }
      unsigned long value = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (ec != std::errc{} || end != digits.data() + digits.size() || value > 65535) return invalid();
      out.port = static_cast<std::uint16_t>(value);
      out.explicit_port = true;
    }
  }
  return out;
}

// The pieces the URL's text forms share, appended.
void append_host(std::string& out, const Url& url) {  // an IPv6 literal in brackets
  bool v6 = url.is_ipv6_literal();
  if (v6) out += '[';
  out += url.host();
  if (v6) out += ']';
}

void append_port(std::string& out, std::uint16_t port) {  // ":port"
  char digits[8];
  out += ':';
  out.append(digits, std::to_chars(digits, digits + sizeof digits, port).ptr);
}

// Whether host_header() and without_credentials() show the port: only when not the default.
bool shows_port(const Url& url) {
  return url.has_explicit_port() && url.port() != Url::default_port(url.scheme());
}

void append_host_header(std::string& out, const Url& url) {
  append_host(out, url);
  if (shows_port(url)) append_port(out, url.port());
}

void append_target(std::string& out, const Url& url) {
  out += url.path();
  if (url.has_query()) {
    out += '?';
    out += url.query();
  }
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
  auto input = prepare(text);
  if (!input) return fail(std::move(input.error()));
  if (input->text.empty()) return config_error("empty URL");
  Reference ref = split_reference(input->text, input->offset);
  if (!ref.scheme.present) {
    return config_error("missing scheme: expected an absolute URL starting with http:// or https://");
  }
  std::string scheme = lowercase(ref.scheme.text);
  if (scheme != "http" && scheme != "https") {
    return config_error("unsupported scheme " + quote(ref.scheme.text) + ": only http and https");
  }
  if (!ref.authority.present) {
    return config_error("expected \"//\" after \"" + scheme + ":\"" + at_column(ref.path.column));
  }
  auto authority = parse_authority(ref.authority, scheme);
  if (!authority) return fail(std::move(authority.error()));
  auto path = encode_part(ref.path, is_path_char);
  if (!path) return fail(std::move(path.error()));

  Url url;
  url.scheme_ = std::move(scheme);
  url.userinfo_ = std::move(authority->userinfo);
  url.host_ = std::move(authority->host);
  url.port_ = authority->port;
  url.explicit_port_ = authority->explicit_port;
  url.path_ = remove_dot_segments(*path);
  if (ref.query.present) {
    auto query = encode_part(ref.query, is_query_char);
    if (!query) return fail(std::move(query.error()));
    url.query_ = std::move(*query);
    url.has_query_ = true;
  }
  if (ref.fragment.present) {
    auto fragment = encode_part(ref.fragment, is_query_char);
    if (!fragment) return fail(std::move(fragment.error()));
    url.fragment_ = std::move(*fragment);
  }
  return url;
}

Result<Url> Url::resolve(std::string_view reference) const {
  auto input = prepare(reference);
  if (!input) return fail(std::move(input.error()));
  Reference ref = split_reference(input->text, input->offset);
  if (ref.scheme.present) {
    // "http:g" with the base's own scheme is read as the relative "g" (RFC 3986 §5.2.2's
    // backward-compatible mode, which browsers use too).
    if (!equals_ignoring_case(ref.scheme.text, scheme_) || ref.authority.present) return parse(reference);
  }

  Url out = *this;
  out.fragment_.clear();
  if (ref.authority.present) {
    auto authority = parse_authority(ref.authority, scheme_);
    if (!authority) return fail(std::move(authority.error()));
    out.userinfo_ = std::move(authority->userinfo);
    out.host_ = std::move(authority->host);
    out.port_ = authority->port;
    out.explicit_port_ = authority->explicit_port;
  }
  if (ref.authority.present || !ref.path.text.empty()) {
    auto path = encode_part(ref.path, is_path_char);
    if (!path) return fail(std::move(path.error()));
    if (ref.authority.present || path->starts_with('/')) {
      out.path_ = remove_dot_segments(*path);
    } else {
      // Merge (§5.2.3): the base path always starts with '/', so this keeps its directory.
      out.path_ = remove_dot_segments(path_.substr(0, path_.rfind('/') + 1) + *path);
    }
    out.query_.clear();
    out.has_query_ = false;
  }
  if (ref.query.present) {
    auto query = encode_part(ref.query, is_query_char);
    if (!query) return fail(std::move(query.error()));
    out.query_ = std::move(*query);
    out.has_query_ = true;
  }
  if (ref.fragment.present) {
    auto fragment = encode_part(ref.fragment, is_query_char);
    if (!fragment) return fail(std::move(fragment.error()));
    out.fragment_ = std::move(*fragment);
  }
  return out;
}

bool Url::is_ip_literal() const noexcept { return is_ipv6_literal() || is_ipv4(host_); }

std::string Url::target() const {
  std::string out;
  append_target(out, *this);
  return out;
}

std::string Url::host_header() const {
  std::string out;
  append_host_header(out, *this);
  return out;
}

std::string Url::without_credentials() const {
  // Sized exactly and written in place: the tracing layers call this on every recorded
  // request, where appending piece by piece cost twice as much.
  char port_text[8];  // ":65535"
  std::size_t port_size = 0;
  if (shows_port(*this)) {
    port_text[0] = ':';
    port_size = static_cast<std::size_t>(std::to_chars(port_text + 1, port_text + sizeof port_text, port_).ptr - port_text);
  }
  bool v6 = is_ipv6_literal();
  std::string out(scheme_.size() + 3 + host_.size() + (v6 ? 2 : 0) + port_size + path_.size() +
                      (has_query_ ? 1 + query_.size() : 0),
                  '\0');
  char* at = out.data();
  auto put = [&at](std::string_view piece) {
    std::memcpy(at, piece.data(), piece.size());
    at += piece.size();
  };
  put(scheme_);
  put("://");
  if (v6) put("[");
  put(host_);
  if (v6) put("]");
  put(std::string_view(port_text, port_size));
  put(path_);
  if (has_query_) {
    put("?");
    put(query_);
  }
  return out;
}

std::string Url::origin() const {
  std::string out;
  origin_into(out);
  return out;
}

void Url::origin_into(std::string& out) const {
  // Built once per request as the pool key: one allocation at most, no temporaries.
  out.clear();
  out.reserve(scheme_.size() + 3 + host_.size() + 2 + 6);
  out.append(scheme_).append("://");
  append_host(out, *this);
  append_port(out, port_);
}

std::string Url::to_string() const {
  std::string out = scheme_ + "://";
  if (!userinfo_.empty()) {
    out += userinfo_;
    out += '@';
  }
  append_host(out, *this);
  if (explicit_port_) append_port(out, port_);
  append_target(out, *this);
  if (!fragment_.empty()) {
    out += '#';
    out += fragment_;
  }
  return out;
}

std::uint16_t Url::default_port(std::string_view scheme) noexcept {
  if (equals_ignoring_case(scheme, "http")) return 80;
  if (equals_ignoring_case(scheme, "https")) return 443;
  return 0;
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (!is_escape_at(text, i)) return malformed_escape(text, i, i + 1);
    out += static_cast<char>(hex_value(static_cast<unsigned char>(text[i + 1])) * 16 +
                             hex_value(static_cast<unsigned char>(text[i + 2])));
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text, std::string_view keep) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || keep.find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      append_escaped(out, c);
    }
  }
  return out;
}

}  // namespace errand::http
