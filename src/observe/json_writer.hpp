// A JSON text written straight into a string: for the encodings on the hot path (a span per
// request), where building a document tree first (nlohmann::json) costs a hundred times the
// bytes it writes. Strings are escaped per RFC 8259; bytes that are not UTF-8 become U+FFFD,
// as nlohmann's error_handler_t::replace does, so any span text yields valid JSON.
//
// A span's OTLP text is some hundred pieces, and std::string's append checks and bookkeeping
// per piece cost more than the bytes. The put_* functions write a piece through a raw pointer
// into room the caller made for a bound of the whole text; Writer makes room piece by piece,
// for texts with no bound known ahead. The free functions at the end are Writer's, one piece
// at a time.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/word_scan.hpp"

namespace errand::observe::json_text {

inline constexpr char hex_digits[] = "0123456789abcdef";

// Writes the eight bytes at `b` as sixteen hex digits at `at`: with SSE2 (every x86-64) the
// nibbles are split, interleaved and turned to digits sixteen at a time.
inline void put_hex8(char* at, const std::uint8_t* b) {
#if defined(__SSE2__)
  const __m128i low_nibble = _mm_set1_epi8(0x0F);
  __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b));
  __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
  __m128i low = _mm_and_si128(bytes, low_nibble);
  __m128i nibbles = _mm_unpacklo_epi8(high, low);  // each byte's high nibble first
  __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
  __m128i digits = _mm_add_epi8(nibbles, _mm_add_epi8(_mm_set1_epi8('0'), letters));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(at), digits);
#else
  for (int i = 0; i < 8; ++i) {
    at[2 * i] = hex_digits[b[i] >> 4];
    at[2 * i + 1] = hex_digits[b[i] & 0xF];
  }
#endif
}

// Writes `bytes` as 2 × N hex digits at `at`; returns the end.
template <std::size_t N>
char* put_hex(char* at, const std::array<std::uint8_t, N>& bytes) {
  static_assert(N % 8 == 0, "ids are 8 or 16 bytes");
  for (std::size_t i = 0; i < N; i += 8) put_hex8(at + 2 * i, bytes.data() + i);
  return at + 2 * N;
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

// The writers below write at `at` and return the end of what they wrote. The caller has made
// room for the piece's bound (the *_bound functions, or the size of a literal) first: a text
// whose pieces are all known, like a span's, is bounded once and then written with no checks.
inline constexpr std::size_t string_bound(std::size_t size) { return size * 6 + 2; }  // \u00XX per byte
inline constexpr std::size_t integer_bound = 20;  // "-9223372036854775808"
inline constexpr std::size_t quoted_integer_bound = integer_bound + 2;
inline constexpr std::size_t number_bound = 32;  // to_chars' shortest double, or "-Infinity"

// A literal: its length is known when compiled, so the copy is a few moves.
template <std::size_t N>
char* put_literal(char* at, const char (&text)[N]) {
  std::memcpy(at, text, N - 1);
  return at + N - 1;
}

// Copies `n` bytes in 16-, 8- or 4-byte moves, the last one overlapping the one before: the
// texts of a span (names, addresses, URLs) are short, and a call to memcpy costs more than
// the copy.
inline char* put_bytes(char* at, const char* from, std::size_t n) {
  if (n >= 16) {
    for (std::size_t i = 0; i + 16 < n; i += 16) std::memcpy(at + i, from + i, 16);
    std::memcpy(at + n - 16, from + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(at, from, 8);
    std::memcpy(at + n - 8, from + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(at, from, 4);
    std::memcpy(at + n - 4, from + n - 4, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) at[i] = from[i];
  }
  return at + n;
}

// Whether all of `s` goes into a JSON string as it is, checked a word at a time (the last
// word overlapping the one before).
inline bool plain_text(std::string_view s) {
  return word_scan::all_words(
      s, [](std::uint64_t w) { return plain_word(w); }, [](unsigned char c) { return plain_byte[c]; });
}

// Writes the escape of the byte or UTF-8 sequence at the start of `s` (non-empty); sets
// `used` to how many bytes of `s` it stood for.
inline char* put_escape(char* at, std::string_view s, std::size_t& used) {
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
  used = 1;
  if (short_form) {
    std::memcpy(at, short_form, 2);
    return at + 2;
  }
  if (c < 0x20) {
    std::memcpy(at, "\\u00", 4);
    at[4] = hex_digits[c >> 4];
    at[5] = hex_digits[c & 0xF];
    return at + 6;
  }
  std::size_t n = utf8_length(s);
  if (n == 0) {
    std::memcpy(at, "\\ufffd", 6);
    return at + 6;
  }
  std::memcpy(at, s.data(), n);  // n ≤ 4 ≤ the 6 × n of the bound
  used = n;
  return at + n;
}

// A JSON string with something to escape: plain runs are copied a word at a time as they are
// checked; the room of the bound lets a word be stored whole. Not inlined: it is the rare
// path, and put_string stays small enough to be.
[[gnu::noinline]] inline char* put_escaped_string(char* at, std::string_view s) {
  *at++ = '"';
  const char* p = s.data();
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const std::size_t run_start = i;
    std::uint64_t w;
    for (; i + 8 <= n; i += 8) {
      w = word_scan::load(p + i);
      if (!plain_word(w)) break;
      std::memcpy(at, &w, 8);
      at += 8;
    }
    if (i < n && i + 8 > n && n >= 8 && run_start + 8 <= n) {
      // The tail as the last eight bytes, all in this plain run: the bytes before i are
      // stored again, the same.
      w = word_scan::load(p + n - 8);
      if (plain_word(w)) {
        std::memcpy(at - (i - (n - 8)), &w, 8);
        at += n - i;
        break;
      }
    }
    while (i < n && plain_byte[static_cast<unsigned char>(p[i])]) *at++ = p[i++];
    if (i < n) {
      std::size_t used;
      at = put_escape(at, std::string_view(p + i, n - i), used);
      i += used;
    }
  }
  *at++ = '"';
  return at;
}

// A string known to need no escaping (an attribute name checked when it was made).
inline char* put_plain_string(char* at, std::string_view s) {
  *at++ = '"';
  at = put_bytes(at, s.data(), s.size());
  *at++ = '"';
  return at;
}

// A JSON string. Most span texts have nothing to escape: checked a word at a time, then
// copied whole.
inline char* put_string(char* at, std::string_view s) {
  return plain_text(s) ? put_plain_string(at, s) : put_escaped_string(at, s);
}

// "00" to "99": a decimal is written two digits per step.
inline constexpr std::array<std::array<char, 2>, 100> digit_pairs = [] {
  std::array<std::array<char, 2>, 100> t{};
  for (int i = 0; i < 100; ++i) t[i] = {static_cast<char>('0' + i / 10), static_cast<char>('0' + i % 10)};
  return t;
}();

// A decimal. A span's times are 19-digit nanoseconds, which std::to_chars writes with a 64-bit
// division per two digits; here eight digits at a time come off with one, and the rest is
// 32-bit arithmetic.
inline char* put_integer(char* at, std::int64_t v) {
  std::uint64_t u = static_cast<std::uint64_t>(v);
  if (v < 0) {
    *at++ = '-';
    u = 0 - u;  // INT64_MIN included
  }
  char digits[integer_bound];
  char* const end = digits + sizeof digits;
  char* p = end;
  while (u >= 100'000'000) {  // eight digits, exactly
    auto eight = static_cast<std::uint32_t>(u % 100'000'000);
    u /= 100'000'000;
    std::uint32_t high = eight / 10'000, low = eight % 10'000;
    p -= 8;
    std::memcpy(p, digit_pairs[high / 100].data(), 2);
    std::memcpy(p + 2, digit_pairs[high % 100].data(), 2);
    std::memcpy(p + 4, digit_pairs[low / 100].data(), 2);
    std::memcpy(p + 6, digit_pairs[low % 100].data(), 2);
  }
  auto rest = static_cast<std::uint32_t>(u);
  while (rest >= 100) {
    p -= 2;
    std::memcpy(p, digit_pairs[rest % 100].data(), 2);
    rest /= 100;
  }
  if (rest >= 10) {
    p -= 2;
    std::memcpy(p, digit_pairs[rest].data(), 2);
  } else {
    *--p = static_cast<char>('0' + rest);
  }
  return put_bytes(at, p, static_cast<std::size_t>(end - p));
}
// A quoted decimal: how the protobuf JSON mapping writes 64-bit integers.
inline char* put_quoted_integer(char* at, std::int64_t v) {
  *at++ = '"';
  at = put_integer(at, v);
  *at++ = '"';
  return at;
}
// The shortest text that reads back as `v`; non-finite values as the protobuf JSON mapping's
// strings ("NaN", "Infinity", "-Infinity"), since JSON has no such numbers.
inline char* put_number(char* at, double v) {
  if (std::isnan(v)) return put_literal(at, "\"NaN\"");
  if (std::isinf(v)) return v > 0 ? put_literal(at, "\"Infinity\"") : put_literal(at, "\"-Infinity\"");
  return std::to_chars(at, at + number_bound, v).ptr;
}
inline char* put_boolean(char* at, bool v) { return v ? put_literal(at, "true") : put_literal(at, "false"); }

// Writes into a string, making room for each piece as it goes: for texts with no bound known
// ahead. The text is complete when the Writer is destroyed.
class Writer {
 public:
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

  template <std::size_t N>
  void literal(const char (&text)[N]) {
    reserve(N - 1);
    at_ = put_literal(at_, text);
  }
  void character(char c) {
    reserve(1);
    *at_++ = c;
  }
  void string(std::string_view s) {
    reserve(string_bound(s.size()));
    at_ = put_string(at_, s);
  }
  void plain_string(std::string_view s) {
    reserve(s.size() + 2);
    at_ = put_plain_string(at_, s);
  }
  void integer(std::int64_t v) {
    reserve(integer_bound);
    at_ = put_integer(at_, v);
  }
  void quoted_integer(std::int64_t v) {
    reserve(quoted_integer_bound);
    at_ = put_quoted_integer(at_, v);
  }
  void number(double v) {
    reserve(number_bound);
    at_ = put_number(at_, v);
  }
  void boolean(bool v) {
    reserve(5);
    at_ = put_boolean(at_, v);
  }
  // Bytes as lower-case hex (trace and span ids).
  template <std::size_t N>
  void hex(const std::array<std::uint8_t, N>& bytes) {
    reserve(2 * N);
    at_ = put_hex(at_, bytes);
  }

 private:
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
