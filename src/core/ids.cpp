#include <errand/core/ids.hpp>

#include <array>
#include <cstdint>
#include <random>

namespace errand {

std::string uuid_v7(std::chrono::system_clock::time_point at) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
  std::uint64_t high = (ms & 0xffff'ffff'ffffull) << 16;  // unix_ts_ms (48 bits)
  high |= 0x7000u | (random() & 0x0fffu);                 // version 7, rand_a (12 bits)
  std::uint64_t low = (random() & 0x3fff'ffff'ffff'ffffull) | 0x8000'0000'0000'0000ull;  // variant 10, rand_b
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    std::uint64_t word = i < 8 ? high : low;
    auto byte = static_cast<unsigned>((word >> (8 * (7 - i % 8))) & 0xff);
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[byte >> 4];
    out += hex[byte & 0xf];
  }
  return out;
}

std::string uuid_v7() { return uuid_v7(std::chrono::system_clock::now()); }

}  // namespace errand
