// A JSON text written straight into a string: for the encodings on the hot path (a span per
// request), where building a document tree first (nlohmann::json) costs a hundred times the
// bytes it writes. Strings are escaped per RFC 8259; bytes that are not UTF-8 become U+FFFD,
// as nlohmann's error_handler_t::replace does, so any span text yields valid JSON.
//
// Writer appends through a raw pointer into room it reserves ahead: a span's OTLP text is some
// hundred pieces, and std::string's append checks and bookkeeping per piece cost more than the
// bytes. The free functions below are the same, one piece at a time.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/word_scan.hpp"

namespace errand::observe::json_text {

inline constexpr char hex_digits[] = "0123456789abcdef";

// Each byte's two lower-case hex digits: an id is written a byte per copy.
inline constexpr std::array<std::array<char, 2>, 256> hex_pairs = [] {
  std::array<std::array<char, 2>, 256> t{};
  for (int b = 0; b < 256; ++b) t[b] = {hex_digits[b >> 4], hex_digits[b & 0xF]};
  return t;
}();

// Writes `bytes` as 2 × N hex digits at `at`; returns the end.
template <std::size_t N>
char* put_hex(char* at, const std::array<std::uint8_t, N>& bytes) {
  for (std::uint8_t b : bytes) {
    std::memcpy(at, hex_pairs[b].data(), 2);
    at += 2;
  }
  return at;
}

// Bytes a JSON string can carry as they are: printable ASCII other than '"' and '\'.
inline constexpr std::array<bool, 256> plain_byte = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// Whether all eight bytes of `w` go into a JSON string as they are: none below 0x20, at or
// above 0x80, '"' or '\\'.
inline bool plain_word(std::uint64_t w) {
  using namespace word_scan;
  return (bytes_below(w, 0x20) | bytes_high(w) | bytes_equal(w, '"') | bytes_equal(w, '\\')) == 0;
}

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

class Writer {
 public:
  // Appends to `out`; the text is complete when the Writer is destroyed.
  explicit Writer(std::string& out) : out_(out) {
    begin_ = out_.data();
    at_ = begin_ + out_.size();
    end_ = at_;
  }
  ~Writer() { out_.resize(static_cast<std::size_t>(at_ - begin_)); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Room for `n` more bytes: every writer below asks before it writes.
  void reserve(std::size_t n) {
    if (static_cast<std::size_t>(end_ - at_) < n) grow(n);
  }

  // A literal: its length is known when compiled, so the copy is a few moves.
  template <std::size_t N>
  void literal(const char (&text)[N]) {
    reserve(N - 1);
    std::memcpy(at_, text, N - 1);
    at_ += N - 1;
  }
  void character(char c) {
    reserve(1);
    *at_++ = c;
  }

  // Plain text is copied a word at a time as it is checked, so that a short string costs no
  // call to memcpy; the room reserved lets a word be stored whole.
  void string(std::string_view s) {
    reserve(s.size() * 6 + 2);  // the longest escape of one byte is \u00XX
    *at_++ = '"';
    const char* p = s.data();
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
      const std::size_t run_start = i;
      std::uint64_t w;
      for (; i + 8 <= n; i += 8) {
        w = word_scan::load(p + i);
        if (!plain_word(w)) break;
        std::memcpy(at_, &w, 8);
        at_ += 8;
      }
      if (i < n && i + 8 > n && n >= 8 && run_start + 8 <= n) {
        // The tail as the last eight bytes, all in this plain run: the bytes before i are
        // stored again, the same.
        w = word_scan::load(p + n - 8);
        if (plain_word(w)) {
          std::memcpy(at_ - (i - (n - 8)), &w, 8);
          at_ += n - i;
          break;
        }
      }
      while (i < n && plain_byte[static_cast<unsigned char>(p[i])]) *at_++ = p[i++];
      if (i < n) i += escape(std::string_view(p + i, n - i));
    }
    *at_++ = '"';
  }

  // A string known to need no escaping (an attribute name checked when it was made).
  void plain_string(std::string_view s) {
    reserve(s.size() + 2);
    *at_++ = '"';
    std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
    *at_++ = '"';
  }

  void integer(std::int64_t v) {
    reserve(24);
    at_ = std::to_chars(at_, at_ + 24, v).ptr;
  }
  // A quoted decimal: how the protobuf JSON mapping writes 64-bit integers.
  void quoted_integer(std::int64_t v) {
    reserve(26);
    *at_++ = '"';
    at_ = std::to_chars(at_, at_ + 24, v).ptr;
    *at_++ = '"';
  }
  // The shortest text that reads back as `v`; non-finite values as the protobuf JSON mapping's
  // strings ("NaN", "Infinity", "-Infinity"), since JSON has no such numbers.
  void number(double v) {
    if (std::isnan(v)) {
      literal("\"NaN\"");
    } else if (std::isinf(v)) {
      if (v > 0) literal("\"Infinity\"");
      else literal("\"-Infinity\"");
    } else {
      reserve(32);
      at_ = std::to_chars(at_, at_ + 32, v).ptr;
    }
  }
  void boolean(bool v) {
    if (v) literal("true");
    else literal("false");
  }
  // Bytes as lower-case hex (trace and span ids).
  template <std::size_t N>
  void hex(const std::array<std::uint8_t, N>& bytes) {
    reserve(2 * N);
    at_ = put_hex(at_, bytes);
  }

 private:
  // Writes the escape of the byte or UTF-8 sequence at the start of `s` (room is reserved);
  // returns how many bytes of `s` it stood for.
  std::size_t escape(std::string_view s) {
    auto c = static_cast<unsigned char>(s[0]);
    const char* short_form = nullptr;
    switch (c) {
      case '"': short_form = "\\\""; break;
      case '\\': short_form = "\\\\"; break;
      case '\n': short_form = "\\n"; break;
      case '\r': short_form = "\\r"; break;
      case '\t': short_form = "\\t"; break;
      case '\b': short_form = "\\b"; break;
      case '\f': short_form = "\\f"; break;
      default: break;
    }
    if (short_form) {
      std::memcpy(at_, short_form, 2);
      at_ += 2;
      return 1;
    }
    if (c < 0x20) {
      std::memcpy(at_, "\\u00", 4);
      at_[4] = hex_digits[c >> 4];
      at_[5] = hex_digits[c & 0xF];
      at_ += 6;
      return 1;
    }
    std::size_t n = utf8_length(s);
    if (n == 0) {
      std::memcpy(at_, "\\ufffd", 6);
      at_ += 6;
      return 1;
    }
    std::memcpy(at_, s.data(), n);  // n ≤ 4 ≤ the 6 × n reserved
    at_ += n;
    return n;
  }

  void grow(std::size_t n) {
    std::size_t used = static_cast<std::size_t>(at_ - begin_);
    // The room the string has (reserved by the caller, or kept from earlier use) is taken at
    // once, before any reallocation and copy of the text.
    std::size_t need = used + n;
    out_.resize(need <= out_.capacity() ? out_.capacity() : std::max(out_.size() * 2, need + 64));
    begin_ = out_.data();
    at_ = begin_ + used;
    end_ = begin_ + out_.size();
  }

  std::string& out_;
  char* begin_;
  char* at_;
  char* end_;
};

inline void string(std::string& out, std::string_view s) { Writer(out).string(s); }
inline void quoted_integer(std::string& out, std::int64_t v) { Writer(out).quoted_integer(v); }
inline void number(std::string& out, double v) { Writer(out).number(v); }
template <std::size_t N>
void hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  Writer(out).hex(bytes);
}

}  // namespace errand::observe::json_text
