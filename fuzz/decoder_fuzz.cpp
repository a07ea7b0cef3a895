// libFuzzer target for errand::http::Decoder (gzip, deflate, br, zstd), driven the way
// DecodingSource in src/http/client.cpp drives it: body pieces arrive one at a time, each is
// handed to decode_some() with a bound on the output, the unconsumed rest is handed again, and
// the end of the body calls finish(). Decoding must never crash, must fail only with errors of
// kind protocol, must keep decode_some()'s contract (output bounded per call, progress on every
// call with input) and must not depend on how the body was split: the input is decoded twice,
// once in small pieces with the smallest output bound and once in one piece with the client's,
// and both runs must agree on the output and on the outcome.
//
// Input layout: byte 0 selects the encoding (bits 0-1: gzip, deflate, br, zstd) and the piece
// sizes of the first run (bits 2-7: k, pieces of 1 to k+1 bytes); the rest is the body.
// Decoding stops once 64 MiB came out, which keeps memory bounded on compression bombs.
#include "http/decoder.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using errand::http::Decoder;

constexpr std::array<std::string_view, 4> encodings{"gzip", "deflate", "br", "zstd"};
constexpr std::size_t output_step = 64 * 1024;  // what decode_some() may append past max_out
constexpr std::size_t client_max_out = 256 * 1024;  // DecodingSource::max_piece
constexpr std::size_t output_bound = 64 << 20;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_error(const errand::Error& error) {
  require(error.kind() == errand::ErrorKind::protocol);
  require(!error.message().empty());
}

enum class Outcome { ok, failed, bounded };

struct Run {
  Outcome outcome = Outcome::ok;
  std::string out;  // all decoded bytes
};

// Decodes `body` arriving in pieces whose sizes next_size() picks, `max_out` at a time.
template <typename NextSize>
Run decode(std::string_view encoding, std::string_view body, std::size_t max_out, NextSize next_size) {
  Run run;
  auto decoder = Decoder::create(encoding);
  require(decoder.has_value() && *decoder != nullptr);
  std::string_view pending;  // the undecoded rest of the last piece
  std::string out;
  for (;;) {
    out.clear();
    auto consumed = (*decoder)->decode_some(pending, out, max_out);
    if (!consumed) {
      check_error(consumed.error());
      run.outcome = Outcome::failed;
      return run;
    }
    require(*consumed <= pending.size());
    require(out.size() < max_out + output_step);
    // A call given input that neither consumes nor produces anything would make the caller
    // spin: it hands the same rest again.
    require(*consumed > 0 || !out.empty() || pending.empty());
    pending.remove_prefix(*consumed);
    run.out += out;
    if (run.out.size() > output_bound) {
      run.outcome = Outcome::bounded;
      return run;
    }
    if (!out.empty() || !pending.empty()) continue;
    if (body.empty()) break;
    std::size_t n = std::min(body.size(), next_size());
    pending = body.substr(0, n);
    body.remove_prefix(n);
  }
  if (auto result = (*decoder)->finish(); !result) {
    check_error(result.error());
    run.outcome = Outcome::failed;
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view encoding = encodings[data[0] & 3];
  const std::size_t k = data[0] >> 2;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::uint32_t state = static_cast<std::uint32_t>(k) * 2654435761u + 1;
  Run small = decode(encoding, body, 1, [&] {
    state = state * 1103515245u + 12345u;
    return 1 + (state >> 16) % (k + 1);
  });
  Run whole = decode(encoding, body, client_max_out, [&] { return body.size(); });

  if (small.outcome == Outcome::bounded || whole.outcome == Outcome::bounded) return 0;
  // Where a corrupt body fails may depend on the split, so only the output up to the failure
  // must agree; when both runs succeed, the outputs must be equal.
  require(small.outcome == whole.outcome);
  if (small.outcome == Outcome::ok) {
    require(small.out == whole.out);
  } else {
    std::size_t common = std::min(small.out.size(), whole.out.size());
    require(small.out.compare(0, common, whole.out, 0, common) == 0);
  }
  return 0;
}
