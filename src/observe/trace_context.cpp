#include <errand/observe/trace_context.hpp>

#include <algorithm>
#include <cstring>
#include <random>

#include "observe/json_writer.hpp"

namespace errand::observe {
namespace {

template <std::size_t N>
std::string hex_of(const std::array<std::uint8_t, N>& bytes) {
  std::string out;
  json_text::hex(out, bytes);
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <std::size_t N>
bool parse_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    int high = hex_digit(text[2 * i]);
    int low = hex_digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// xoshiro256** (Blackman and Vigna): ids must be unpredictable enough to be unique, not secret,
// and every traced request draws three words; a Mersenne Twister costs several times as much.
// Seeded per thread from the system's entropy through splitmix64.
class IdRandom {
 public:
  IdRandom() {
    std::random_device entropy;
    std::uint64_t seed = (std::uint64_t{entropy()} << 32) ^ entropy();
    for (auto& word : state_) {
      seed += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      word = z ^ (z >> 31);
    }
  }
  std::uint64_t operator()() noexcept {
    std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> state_{};
};

template <std::size_t N>
std::array<std::uint8_t, N> random_nonzero() {
  static_assert(N % 8 == 0, "ids are whole words");
  thread_local IdRandom random;
  std::array<std::uint8_t, N> out;
  for (;;) {
    std::uint64_t any = 0;
    for (std::size_t i = 0; i < N; i += 8) {
      std::uint64_t word = random();
      any |= word;
      std::memcpy(out.data() + i, &word, 8);
    }
    if (any != 0) return out;
  }
}

}  // namespace

std::string to_hex(const TraceId& id) { return hex_of(id); }
std::string to_hex(const SpanId& id) { return hex_of(id); }

TraceId random_trace_id() { return random_nonzero<16>(); }
SpanId random_span_id() { return random_nonzero<8>(); }

bool SpanContext::valid() const noexcept { return !all_zero(trace_id) && !all_zero(span_id); }

void SpanContext::write_traceparent(std::array<char, traceparent_size>& out) const {
  char* text = out.data();
  std::memcpy(text, "00-", 3);
  json_text::put_hex(text + 3, trace_id);
  text[35] = '-';
  json_text::put_hex(text + 36, span_id);
  std::memcpy(text + 52, sampled ? "-01" : "-00", 3);
}

std::string SpanContext::traceparent() const {
  std::array<char, traceparent_size> text;
  write_traceparent(text);
  return std::string(text.data(), text.size());
}

SpanContext SpanContext::new_root() {
  SpanContext c;
  c.trace_id = random_trace_id();
  c.span_id = random_span_id();
  return c;
}

SpanContext SpanContext::child_of(const SpanContext& parent) {
  SpanContext c;
  c.trace_id = parent.trace_id;
  c.span_id = random_span_id();
  c.sampled = parent.sampled;
  c.tracestate = parent.tracestate;
  return c;
}

std::optional<SpanContext> parse_traceparent(std::string_view value) {
  // Optional whitespace around the value (RFC 9110 field values).
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2 = 55 characters.
  if (value.size() < 55) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!parse_hex(value.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 && value.size() != 55) return std::nullopt;
  if (version[0] != 0 && value.size() > 55 && value[55] != '-') return std::nullopt;  // future versions extend
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  SpanContext c;
  std::array<std::uint8_t, 1> flags{};
  if (!parse_hex(value.substr(3, 32), c.trace_id) || !parse_hex(value.substr(36, 16), c.span_id) ||
      !parse_hex(value.substr(53, 2), flags))
    return std::nullopt;
  if (!c.valid()) return std::nullopt;
  c.sampled = (flags[0] & 0x01) != 0;
  return c;
}

}  // namespace errand::observe
