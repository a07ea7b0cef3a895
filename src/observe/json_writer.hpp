// A JSON text written straight into a string: for the encodings on the hot path (a span per
// request), where building a document tree first (nlohmann::json) costs a hundred times the
// bytes it writes. Strings are escaped per RFC 8259; bytes that are not UTF-8 become U+FFFD,
// as nlohmann's error_handler_t::replace does, so any span text yields valid JSON.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace errand::observe::json_text {

inline constexpr char hex_digits[] = "0123456789abcdef";

// The length of the valid UTF-8 sequence at the start of `s` (1..4), or 0 if it is invalid.
inline std::size_t utf8_length(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto tail = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return tail(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!tail(1) || !tail(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!tail(1) || !tail(2) || !tail(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

inline void string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      std::size_t run = i + 1;  // plain ASCII goes in runs
      while (run < s.size()) {
        auto d = static_cast<unsigned char>(s[run]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++run;
      }
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += hex_digits[c >> 4];
      out += hex_digits[c & 0xF];
      ++i;
      continue;
    }
    std::size_t n = utf8_length(s.substr(i));
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  out += '"';
}

inline void integer(std::string& out, std::int64_t v) {
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, end);
}

// A quoted decimal: how the protobuf JSON mapping writes 64-bit integers.
inline void quoted_integer(std::string& out, std::int64_t v) {
  out += '"';
  integer(out, v);
  out += '"';
}

// The shortest text that reads back as `v`; non-finite values as the protobuf JSON mapping's
// strings ("NaN", "Infinity", "-Infinity"), since JSON has no such numbers.
inline void number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
  }
}

// Bytes as lower-case hex (trace and span ids), without a temporary string.
template <std::size_t N>
void hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  std::size_t at = out.size();
  out.resize(at + 2 * N);
  for (std::size_t i = 0; i < N; ++i) {
    out[at + 2 * i] = hex_digits[bytes[i] >> 4];
    out[at + 2 * i + 1] = hex_digits[bytes[i] & 0xF];
  }
}

inline void boolean(std::string& out, bool v) { out += v ? "true" : "false"; }

}  // namespace errand::observe::json_text
