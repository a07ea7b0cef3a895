// Eight bytes at a time: tests on a 64-bit word of text (the SWAR tricks of "Bit Twiddling
// Hacks"), for the scans every request makes over header values and span strings. Each test
// is exact about whether some byte of the word matches (not which one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace errand::word_scan {

inline constexpr std::uint64_t ones = 0x0101010101010101ull;
inline constexpr std::uint64_t highs = 0x8080808080808080ull;

inline std::uint64_t load(const char* at) noexcept {
  std::uint64_t w;
  std::memcpy(&w, at, 8);
  return w;
}

// Non-zero when a byte of `w` is below `n` (n ≤ 128).
inline std::uint64_t bytes_below(std::uint64_t w, unsigned char n) noexcept { return (w - ones * n) & ~w & highs; }
// Non-zero when a byte of `w` is `c`.
inline std::uint64_t bytes_equal(std::uint64_t w, unsigned char c) noexcept { return bytes_below(w ^ (ones * c), 1); }
// Non-zero when a byte of `w` is 0x80 or above.
inline std::uint64_t bytes_high(std::uint64_t w) noexcept { return w & highs; }

// Whether `word_ok` holds for every 8-byte word of `s`, the last one overlapping the one
// before; a string of 4 to 7 bytes is tested as one word of its first and last four bytes,
// and a shorter one byte by byte with `byte_ok`.
template <class WordOk, class ByteOk>
inline bool all_words(std::string_view s, WordOk word_ok, ByteOk byte_ok) {
  const char* p = s.data();
  const std::size_t n = s.size();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8)
      if (!word_ok(load(p + i))) return false;
    return word_ok(load(p + n - 8));
  }
  if (n >= 4) {
    std::uint32_t first, last;
    std::memcpy(&first, p, 4);
    std::memcpy(&last, p + n - 4, 4);
    return word_ok(first | std::uint64_t{last} << 32);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!byte_ok(static_cast<unsigned char>(p[i]))) return false;
  return true;
}

}  // namespace errand::word_scan
