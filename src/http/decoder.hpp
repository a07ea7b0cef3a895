// Content-Encoding decoders (gzip, deflate, br, zstd) that work piece by piece, so that a
// compressed stream is decoded as it arrives and memory stays bounded by the output buffer.
//
//   auto decoder = Decoder::create("gzip");   // nullptr for identity
//   std::string out;
//   decoder->decode_some(piece, out, 1 << 20); // appends at most ~1 MiB, returns bytes consumed
//   decoder->finish();                        // protocol error if the stream was truncated
//
// Errors are of kind protocol ("corrupt gzip data", "truncated br stream"). Not synchronised.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <errand/core/error.hpp>

namespace errand::http {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decodes from `in`, appending to `out`, until `in` is used up or at least `max_out` bytes
  // came out (one step of up to 64 KiB past it). Returns the input bytes consumed: pass the
  // rest next time. Called with the rest empty, it flushes output still pending inside; a
  // call that consumes nothing and appends nothing means it needs more input. Bounding the
  // output per call is what keeps a small "compression bomb" from exhausting memory.
  virtual Result<std::size_t> decode_some(std::string_view in, std::string& out, std::size_t max_out) = 0;
  // Decodes all of `in` (no bound on the output).
  Result<void> decode(std::string_view in, std::string& out);
  // Called at the end of the body: fails if the compressed stream did not end properly.
  virtual Result<void> finish() = 0;

  // The decoder for a Content-Encoding value: null for identity or an empty value;
  // protocol error for an encoding we cannot decode (several stacked encodings included).
  static Result<std::unique_ptr<Decoder>> create(std::string_view content_encoding);
};

// "gzip, deflate, br, zstd": what the client offers in Accept-Encoding.
inline constexpr std::string_view supported_encodings = "gzip, deflate, br, zstd";

}  // namespace errand::http
