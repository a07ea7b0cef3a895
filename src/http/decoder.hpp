// Content-Encoding decoders (gzip, deflate, br, zstd) that work piece by piece, so that a
// compressed stream is decoded as it arrives and memory stays bounded by the output buffer.
//
//   auto decoder = Decoder::create("gzip");   // nullptr for identity
//   std::string out;
//   decoder->decode(piece, out);              // appends decoded bytes
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
  // Decodes `in`, appending the output to `out`.
  virtual Result<void> decode(std::string_view in, std::string& out) = 0;
  // Called at the end of the body: fails if the compressed stream did not end properly.
  virtual Result<void> finish() = 0;

  // The decoder for a Content-Encoding value: null for identity or an empty value;
  // protocol error for an encoding we cannot decode (several stacked encodings included).
  static Result<std::unique_ptr<Decoder>> create(std::string_view content_encoding);
};

// "gzip, deflate, br, zstd": what the client offers in Accept-Encoding.
inline constexpr std::string_view supported_encodings = "gzip, deflate, br, zstd";

}  // namespace errand::http
