// Eight bytes at a time: tests on a 64-bit word of text (the SWAR tricks of "Bit Twiddling
// Hacks"), for the scans every request makes over header values and span strings. Each test
// is exact about whether some byte of the word matches (not which one).
#pragma once

#include <cstdint>
#include <cstring>

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

}  // namespace errand::word_scan
