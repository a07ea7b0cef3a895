#include "http/decoder.hpp"

#include <algorithm>
#include <cstdint>

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

  Result<std::size_t> decode_some(std::string_view in, std::string& out, std::size_t max_out) override {
    std::size_t sniffed = 0;
    if (sniffing_) {
      // Whether "deflate" is zlib-wrapped shows in its first two bytes, which may arrive in
      // separate pieces: collect them before inflating anything.
      sniffed = std::min(in.size(), 2 - head_.size());
      head_.append(in.data(), sniffed);
      in.remove_prefix(sniffed);
      if (head_.size() < 2) return sniffed;
      sniffing_ = false;
      auto b0 = static_cast<unsigned char>(head_[0]), b1 = static_cast<unsigned char>(head_[1]);
      bool gzip = b0 == 0x1f && b1 == 0x8b;
      bool zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((b0 << 8) | b1) % 31 == 0;
      if (!gzip && !zlib) {
        inflateEnd(&stream_);
        init(-15);
      }
      auto r = inflate_some(head_, out, SIZE_MAX);  // two bytes of header: no output yet
      if (!r) return fail(std::move(r.error()));
    }
    auto r = inflate_some(in, out, max_out);
    if (!r) return r;
    return sniffed + *r;
  }

  Result<void> finish() override {
    if (!ended_) return fail(truncated(name_));
    return {};
  }

 private:
  Result<std::size_t> inflate_some(std::string_view in, std::string& out, std::size_t max_out) {
    if (ended_ && !in.empty()) {
      // gzip allows several members back to back (RFC 1952 §2.2); anything else is garbage.
      if (!is_gzip_) return fail(corrupt(name_, "data after the end of the stream"));
      inflateReset(&stream_);
      ended_ = false;
    }
    if (ended_) return std::size_t{0};
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uInt>(in.size());
    const std::size_t start = out.size();
    // Until zlib leaves room in the output (all input consumed, nothing decoded pending inside
    // it) or `max_out` bytes came out; with empty input this flushes what is pending.
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
        // Many small members could otherwise each add a step of output past the bound.
        if (out.size() - start >= max_out) break;
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(corrupt(name_, stream_.msg ? stream_.msg : ""));
      if (stream_.avail_out != 0) break;
      if (out.size() - start >= max_out) break;
    }
    return in.size() - stream_.avail_in;
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

  Result<std::size_t> decode_some(std::string_view in, std::string& out, std::size_t max_out) override {
    if (!state_) return fail(corrupt("br", "out of memory"));
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    std::size_t avail_in = in.size();
    const std::size_t start = out.size();
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
        break;
      }
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) break;
      // NEEDS_MORE_OUTPUT: go on unless enough came out for this call.
      if (out.size() - start >= max_out) break;
    }
    return in.size() - avail_in;
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

  Result<std::size_t> decode_some(std::string_view in, std::string& out, std::size_t max_out) override {
    const std::size_t size = in.size();
    const std::size_t start = out.size();
    while (!in.empty() || needs_flush_) {
      if (at_frame_start_) {
        // libzstd also decodes the legacy formats of its 0.x versions, but only when it sees
        // their whole magic number in one call: given fewer bytes it reports an unknown
        // prefix, so whether a body decoded would depend on how the network split it. RFC 8878
        // knows only zstd and skippable frames: check the magic number here once its four
        // bytes are in, then hand them on.
        std::size_t take = std::min(in.size(), 4 - magic_.size());
        magic_.append(in.data(), take);
        in.remove_prefix(take);
        if (magic_.size() < 4) break;
        std::uint32_t magic = 0;
        for (int i = 3; i >= 0; --i) magic = (magic << 8) | static_cast<unsigned char>(magic_[i]);
        if (magic != ZSTD_MAGICNUMBER && (magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START)
          return fail(corrupt("zstd", "not a zstd frame"));
        at_frame_start_ = false;
        frame_head_.clear();  // step() collects the header, the magic number first
        frame_out_ = 0;
        std::string_view head = magic_;
        if (auto r = step(head, out); !r) return fail(std::move(r.error()));  // kept inside: no output
        magic_.clear();
        continue;
      }
      if (auto r = step(in, out); !r) return fail(std::move(r.error()));
      if (in.empty() && !needs_flush_) break;
      if (out.size() - start >= max_out) break;
    }
    return size - in.size();
  }

  Result<void> finish() override {
    if (!frame_complete_ || !magic_.empty()) return fail(truncated("zstd"));
    return {};
  }

 private:
  // One ZSTD_decompressStream() call with room for output_step bytes; removes what it consumed
  // from `in`. It returns at the end of a frame, so the next one starts with a magic number.
  Result<void> step(std::string_view& in, std::string& out) {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t old = out.size();
    out.resize(old + output_step);
    ZSTD_outBuffer output{out.data() + old, output_step, 0};
    std::size_t rc = ZSTD_decompressStream(stream_, &output, &input);
    out.resize(old + output.pos);
    if (ZSTD_isError(rc)) return fail(corrupt("zstd", ZSTD_getErrorName(rc)));
    constexpr std::size_t header_max = 18;  // ZSTD_FRAMEHEADERSIZE_MAX (RFC 8878 §3.1.1)
    if (frame_head_.size() < header_max)
      frame_head_.append(in.data(), std::min(input.pos, header_max - frame_head_.size()));
    frame_out_ += output.pos;
    in.remove_prefix(input.pos);
    if (rc == 0) {
      // libzstd 1.5.4's streaming decoder can report a frame complete short of the content
      // size its header declares, when the whole frame arrives in one call (its one-shot
      // decoder and smaller pieces report corruption): check the size here, so the outcome
      // does not depend on how the body was split (found by fuzz/decoder_fuzz).
      unsigned long long declared = ZSTD_getFrameContentSize(frame_head_.data(), frame_head_.size());
      if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR && declared != frame_out_)
        return fail(corrupt("zstd", "the frame's content size does not match its data"));
    }
    frame_complete_ = (rc == 0);
    at_frame_start_ = frame_complete_;
    // More output may be pending when the output filled up before the frame ended (not
    // after it ended: another call would start the next frame and clear frame_complete_).
    needs_flush_ = rc != 0 && output.pos == output_step;
    return {};
  }

  ZSTD_DStream* stream_;
  std::string frame_head_;         // the current frame's first bytes (its header)
  unsigned long long frame_out_ = 0;  // bytes the current frame produced so far
  bool frame_complete_ = false;
  bool needs_flush_ = false;
  bool at_frame_start_ = true;
  std::string magic_;  // the first bytes of a frame, until all four are in
};

}  // namespace

Result<void> Decoder::decode(std::string_view in, std::string& out) {
  auto consumed = decode_some(in, out, SIZE_MAX);
  if (!consumed) return fail(std::move(consumed.error()));
  return {};
}

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
