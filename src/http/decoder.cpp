#include "http/decoder.hpp"

#include <algorithm>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <errand/http/headers.hpp>

namespace errand::http {

namespace {

constexpr std::size_t output_step = 64 * 1024;

Error corrupt(std::string_view what, std::string_view detail = {}) {
  std::string message = "corrupt " + std::string(what) + " data in the response body";
  if (!detail.empty()) message += ": " + std::string(detail);
  return Error(ErrorKind::protocol, std::move(message), std::make_error_code(std::errc::illegal_byte_sequence),
               Phase::read);
}

Error truncated(std::string_view what) {
  return Error(ErrorKind::protocol, "truncated " + std::string(what) + " stream in the response body",
               std::make_error_code(std::errc::illegal_byte_sequence), Phase::read);
}

// gzip and zlib (auto-detected) and, for servers that send "deflate" without the zlib
// wrapper despite RFC 9110, raw deflate.
class ZlibDecoder final : public Decoder {
 public:
  explicit ZlibDecoder(bool gzip) : name_(gzip ? "gzip" : "deflate"), is_gzip_(gzip), sniffing_(!gzip) {
    init(15 + 32);
  }
  ~ZlibDecoder() override { inflateEnd(&stream_); }

  Result<void> decode(std::string_view in, std::string& out) override {
    if (sniffing_) {
      // Whether "deflate" is zlib-wrapped shows in its first two bytes, which may arrive in
      // separate pieces: collect them before inflating anything.
      std::size_t take = std::min(in.size(), 2 - head_.size());
      head_.append(in.data(), take);
      in.remove_prefix(take);
      if (head_.size() < 2) return {};
      sniffing_ = false;
      auto b0 = static_cast<unsigned char>(head_[0]), b1 = static_cast<unsigned char>(head_[1]);
      bool gzip = b0 == 0x1f && b1 == 0x8b;
      bool zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((b0 << 8) | b1) % 31 == 0;
      if (!gzip && !zlib) {
        inflateEnd(&stream_);
        init(-15);
      }
      if (auto r = inflate_some(head_, out); !r) return r;
    }
    return inflate_some(in, out);
  }

  Result<void> finish() override {
    if (!ended_) return fail(truncated(name_));
    return {};
  }

 private:
  Result<void> inflate_some(std::string_view in, std::string& out) {
    if (ended_ && !in.empty()) {
      // gzip allows several members back to back (RFC 1952 §2.2); anything else is garbage.
      if (!is_gzip_) return fail(corrupt(name_, "data after the end of the stream"));
      inflateReset(&stream_);
      ended_ = false;
    }
    if (ended_ || in.empty()) return {};
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uInt>(in.size());
    // Loop until zlib leaves room in the output: then all input is consumed and nothing
    // decoded is pending inside it.
    for (;;) {
      std::size_t old = out.size();
      out.resize(old + output_step);
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      stream_.avail_out = static_cast<uInt>(output_step);
      int rc = inflate(&stream_, Z_NO_FLUSH);
      out.resize(old + output_step - stream_.avail_out);
      if (rc == Z_STREAM_END) {
        ended_ = true;
        if (stream_.avail_in == 0) break;
        if (!is_gzip_) return fail(corrupt(name_, "data after the end of the stream"));
        inflateReset(&stream_);  // the next gzip member
        ended_ = false;
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(corrupt(name_, stream_.msg ? stream_.msg : ""));
      if (stream_.avail_out != 0) break;
    }
    return {};
  }

  void init(int window_bits) {
    stream_ = z_stream{};
    inflateInit2(&stream_, window_bits);
  }
  const char* name_;
  z_stream stream_{};
  bool ended_ = false;
  bool is_gzip_;
  bool sniffing_;     // "deflate" before its first two bytes arrived
  std::string head_;  // those bytes
};

class BrotliDecoder final : public Decoder {
 public:
  BrotliDecoder() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override { BrotliDecoderDestroyInstance(state_); }

  Result<void> decode(std::string_view in, std::string& out) override {
    if (!state_) return fail(corrupt("br", "out of memory"));
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    std::size_t avail_in = in.size();
    for (;;) {
      std::size_t old = out.size();
      out.resize(old + output_step);
      auto* next_out = reinterpret_cast<uint8_t*>(out.data() + old);
      std::size_t avail_out = output_step;
      auto rc = BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      out.resize(old + output_step - avail_out);
      if (rc == BROTLI_DECODER_RESULT_ERROR)
        return fail(corrupt("br", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state_))));
      if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
        if (avail_in > 0) return fail(corrupt("br", "data after the end of the stream"));
        return {};
      }
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return {};
      // NEEDS_MORE_OUTPUT: loop with more room.
    }
  }

  Result<void> finish() override {
    if (!BrotliDecoderIsFinished(state_)) return fail(truncated("br"));
    return {};
  }

 private:
  BrotliDecoderState* state_;
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : stream_(ZSTD_createDStream()) {
    // Bound the window like RFC 8878 §3.1.1.1.2 recommends for HTTP (8 MiB).
    ZSTD_DCtx_setParameter(stream_, ZSTD_d_windowLogMax, 23);
  }
  ~ZstdDecoder() override { ZSTD_freeDStream(stream_); }

  Result<void> decode(std::string_view in, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    while (input.pos < input.size || needs_flush_) {
      std::size_t old = out.size();
      out.resize(old + output_step);
      ZSTD_outBuffer output{out.data() + old, output_step, 0};
      std::size_t rc = ZSTD_decompressStream(stream_, &output, &input);
      out.resize(old + output.pos);
      if (ZSTD_isError(rc)) return fail(corrupt("zstd", ZSTD_getErrorName(rc)));
      frame_complete_ = (rc == 0);
      // More output may be pending when the output filled up before the frame ended (not
      // after it ended: another call would start the next frame and clear frame_complete_).
      needs_flush_ = rc != 0 && output.pos == output_step;
      if (input.pos == input.size && !needs_flush_) break;
    }
    return {};
  }

  Result<void> finish() override {
    if (!frame_complete_) return fail(truncated("zstd"));
    return {};
  }

 private:
  ZSTD_DStream* stream_;
  bool frame_complete_ = false;
  bool needs_flush_ = false;
};

}  // namespace

Result<std::unique_ptr<Decoder>> Decoder::create(std::string_view encoding) {
  while (!encoding.empty() && (encoding.front() == ' ' || encoding.front() == '\t')) encoding.remove_prefix(1);
  while (!encoding.empty() && (encoding.back() == ' ' || encoding.back() == '\t')) encoding.remove_suffix(1);
  if (encoding.empty() || iequals(encoding, "identity")) return std::unique_ptr<Decoder>();
  if (iequals(encoding, "gzip") || iequals(encoding, "x-gzip")) return std::unique_ptr<Decoder>(new ZlibDecoder(true));
  if (iequals(encoding, "deflate")) return std::unique_ptr<Decoder>(new ZlibDecoder(false));
  if (iequals(encoding, "br")) return std::unique_ptr<Decoder>(new BrotliDecoder());
  if (iequals(encoding, "zstd")) return std::unique_ptr<Decoder>(new ZstdDecoder());
  return fail(Error(ErrorKind::protocol, "unsupported Content-Encoding \"" + std::string(encoding.substr(0, 64)) + "\"",
                    {}, Phase::read));
}

}  // namespace errand::http
