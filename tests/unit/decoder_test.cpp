#include "http/decoder.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <string>
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace errand::http {
namespace {

using ::testing::HasSubstr;

// ---- Encoders (test-side, straight from the libraries) ------------------------------------

enum class Codec { gzip, zlib_deflate, raw_deflate, br, zstd };

std::string codec_name(Codec c) {
  switch (c) {
    case Codec::gzip: return "gzip";
    case Codec::zlib_deflate: return "zlib_deflate";
    case Codec::raw_deflate: return "raw_deflate";
    case Codec::br: return "br";
    case Codec::zstd: return "zstd";
  }
  return "?";
}

// The Content-Encoding value a server sends for this codec.
std::string_view content_encoding(Codec c) {
  switch (c) {
    case Codec::gzip: return "gzip";
    case Codec::zlib_deflate:
    case Codec::raw_deflate: return "deflate";
    case Codec::br: return "br";
    case Codec::zstd: return "zstd";
  }
  return "";
}

std::string zlib_compress(std::string_view in, int window_bits) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&s, static_cast<uLong>(in.size())) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

std::string brotli_compress(std::string_view in) {
  std::size_t size = BrotliEncoderMaxCompressedSize(in.size());
  if (size == 0) size = in.size() + 1024;
  std::string out(size, '\0');
  EXPECT_EQ(BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                                  reinterpret_cast<const uint8_t*>(in.data()), &size,
                                  reinterpret_cast<uint8_t*>(out.data())),
            BROTLI_TRUE);
  out.resize(size);
  return out;
}

std::string zstd_compress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

std::string compress(Codec c, std::string_view in) {
  switch (c) {
    case Codec::gzip: return zlib_compress(in, 15 + 16);
    case Codec::zlib_deflate: return zlib_compress(in, 15);
    case Codec::raw_deflate: return zlib_compress(in, -15);
    case Codec::br: return brotli_compress(in);
    case Codec::zstd: return zstd_compress(in);
  }
  return {};
}

// ---- Test data and driver -------------------------------------------------------------------

// Text that compresses moderately: words from a small vocabulary in pseudo-random order.
std::string sample_text(std::size_t size) {
  static constexpr const char* words[] = {"errand ", "probe ", "fleet ", "retry ", "{\"id\": ", "42, ",
                                          "timeout\n", "circuit ", "breaker ", "\t", "\xc3\xa9t\xc3\xa9 "};
  std::string out;
  std::uint32_t x = 7;
  while (out.size() < size) {
    x = x * 1664525u + 1013904223u;
    out += words[(x >> 16) % std::size(words)];
  }
  out.resize(size);
  return out;
}

// Highly compressible: the decoded output of one small input piece is many output steps.
std::string repetitive_text(std::size_t size) {
  std::string out;
  out.reserve(size);
  for (int i = 0; out.size() < size; ++i) out += "line " + std::to_string(i % 10) + " of a very dull log file\n";
  out.resize(size);
  return out;
}

std::unique_ptr<Decoder> make_decoder(std::string_view encoding) {
  auto d = Decoder::create(encoding);
  EXPECT_TRUE(d.has_value()) << encoding << ": " << (d ? "" : d.error().describe());
  if (!d) return nullptr;
  EXPECT_NE(*d, nullptr) << encoding;
  return std::move(*d);
}

// Decodes `data` fed in pieces of `piece` bytes; returns the output or the first error
// (from decode or finish).
Result<std::string> decode_all(std::string_view encoding, std::string_view data, std::size_t piece) {
  auto decoder = make_decoder(encoding);
  if (!decoder) return fail(ErrorKind::config, "no decoder");
  std::string out;
  for (std::size_t i = 0; i < data.size(); i += piece) {
    auto r = decoder->decode(data.substr(i, piece), out);
    if (!r) return fail(r.error());
  }
  auto r = decoder->finish();
  if (!r) return fail(r.error());
  return out;
}

// decode_some() until it neither consumes nor produces, checking every call's output bound
// (max_out plus one step); adds the output's size to `total` and counts the calls. At most
// 100000 calls.
void drain_bounded(Decoder& decoder, std::string_view& rest, std::size_t max_out, std::size_t& total,
                   std::size_t& calls) {
  for (; calls < 100000; ++calls) {
    std::string out;
    auto consumed = decoder.decode_some(rest, out, max_out);
    ASSERT_TRUE(consumed.has_value()) << consumed.error().describe();
    ASSERT_LE(out.size(), max_out + 64 * 1024) << "call " << calls << " produced too much";
    rest.remove_prefix(*consumed);
    total += out.size();
    if (out.empty() && *consumed == 0) return;
  }
  FAIL() << "decode_some() never stopped";
}

std::string piece_name(std::size_t piece) {
  return piece == (std::size_t{1} << 30) ? "whole" : std::to_string(piece);
}

// ---- Round trips ------------------------------------------------------------------------------

class DecoderRoundTripTest : public ::testing::TestWithParam<std::tuple<Codec, std::size_t>> {};

TEST_P(DecoderRoundTripTest, DecodesWhatTheLibraryEncoded) {
  auto [codec, piece] = GetParam();
  const std::string plain = sample_text(20'000);
  const std::string packed = compress(codec, plain);
  ASSERT_FALSE(packed.empty());
  ASSERT_LT(packed.size(), plain.size());
  auto out = decode_all(content_encoding(codec), packed, piece);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(out->size(), plain.size());
  EXPECT_TRUE(*out == plain) << "decoded output differs";
}

TEST_P(DecoderRoundTripTest, EmptyBodyRoundTrips) {
  auto [codec, piece] = GetParam();
  const std::string packed = compress(codec, "");
  ASSERT_FALSE(packed.empty());
  auto out = decode_all(content_encoding(codec), packed, piece);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(*out, "");
}

INSTANTIATE_TEST_SUITE_P(
    CodecsAndPieceSizes, DecoderRoundTripTest,
    ::testing::Combine(::testing::Values(Codec::gzip, Codec::zlib_deflate, Codec::raw_deflate, Codec::br, Codec::zstd),
                       ::testing::Values(std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{1} << 30)),
    [](const auto& info) { return codec_name(std::get<0>(info.param)) + "_" + piece_name(std::get<1>(info.param)); });

class DecoderLargeBodyTest : public ::testing::TestWithParam<std::tuple<Codec, std::size_t>> {};

TEST_P(DecoderLargeBodyTest, HighlyCompressibleBodyGrowsTheOutputManyTimes) {
  auto [codec, piece] = GetParam();
  const std::string plain = repetitive_text(5 << 20);
  const std::string packed = compress(codec, plain);
  ASSERT_LT(packed.size(), plain.size() / 50) << "input not compressible enough to exercise the output loop";
  auto out = decode_all(content_encoding(codec), packed, piece);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(out->size(), plain.size());
  EXPECT_TRUE(*out == plain) << "decoded output differs";
}

TEST_P(DecoderLargeBodyTest, BodyEndingExactlyAtAnOutputStepIsComplete) {
  // The decoders grow their output 64 KiB at a time; a body that fills the last step exactly
  // must not look truncated.
  auto [codec, piece] = GetParam();
  for (std::size_t size : {std::size_t{64} << 10, std::size_t{128} << 10, std::size_t{1} << 20}) {
    const std::string plain = repetitive_text(size);
    auto out = decode_all(content_encoding(codec), compress(codec, plain), piece);
    ASSERT_TRUE(out.has_value()) << size << " bytes: " << out.error().describe();
    EXPECT_TRUE(*out == plain) << size << " bytes: decoded output differs";
  }
}

INSTANTIATE_TEST_SUITE_P(CodecsAndPieceSizes, DecoderLargeBodyTest,
                         ::testing::Combine(::testing::Values(Codec::gzip, Codec::zlib_deflate, Codec::raw_deflate, Codec::br, Codec::zstd),
                                            ::testing::Values(std::size_t{4096}, std::size_t{1} << 30)),
                         [](const auto& info) {
                           return codec_name(std::get<0>(info.param)) + "_" + piece_name(std::get<1>(info.param));
                         });

// ---- Failures ---------------------------------------------------------------------------------

class DecoderFailureTest : public ::testing::TestWithParam<Codec> {};

TEST_P(DecoderFailureTest, TruncatedStreamFailsAtFinish) {
  Codec codec = GetParam();
  const std::string packed = compress(codec, sample_text(5000));
  for (std::size_t cut : {std::size_t{1}, packed.size() / 2}) {
    auto decoder = make_decoder(content_encoding(codec));
    ASSERT_NE(decoder, nullptr);
    std::string out;
    auto r = decoder->decode(std::string_view(packed).substr(0, packed.size() - cut), out);
    ASSERT_TRUE(r.has_value()) << "cut " << cut << ": " << r.error().describe();
    auto fin = decoder->finish();
    ASSERT_FALSE(fin.has_value()) << "cut " << cut << ": truncated stream accepted";
    EXPECT_EQ(fin.error().kind(), ErrorKind::protocol);
    EXPECT_THAT(fin.error().message(), HasSubstr("truncated"));
  }
}

TEST_P(DecoderFailureTest, NoBodyAtAllFailsAtFinish) {
  auto decoder = make_decoder(content_encoding(GetParam()));
  ASSERT_NE(decoder, nullptr);
  auto fin = decoder->finish();
  ASSERT_FALSE(fin.has_value());
  EXPECT_EQ(fin.error().kind(), ErrorKind::protocol);
}

TEST_P(DecoderFailureTest, TrailingDataAfterTheEndOfTheStreamIsRefused) {
  Codec codec = GetParam();
  const std::string packed = compress(codec, sample_text(3000)) + "trailing garbage!";
  auto out = decode_all(content_encoding(codec), packed, packed.size());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().kind(), ErrorKind::protocol);
  EXPECT_THAT(out.error().message(), HasSubstr("corrupt"));
}

TEST_P(DecoderFailureTest, TrailingDataInALaterPieceIsRefused) {
  Codec codec = GetParam();
  const std::string packed = compress(codec, sample_text(3000));
  auto decoder = make_decoder(content_encoding(codec));
  ASSERT_NE(decoder, nullptr);
  std::string out;
  ASSERT_TRUE(decoder->decode(packed, out).has_value());
  auto r = decoder->decode("more bytes after the end", out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::protocol);
}

TEST_P(DecoderFailureTest, GarbageIsAProtocolError) {
  Codec codec = GetParam();
  // 0xff opens no valid stream of any of these formats (reserved block type for deflate,
  // wrong magic for gzip and zstd, invalid window bits for brotli).
  const std::string garbage(64, '\xff');
  auto out = decode_all(content_encoding(codec), garbage, garbage.size());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().kind(), ErrorKind::protocol);
  EXPECT_THAT(out.error().message(), HasSubstr("corrupt"));
}

INSTANTIATE_TEST_SUITE_P(Codecs, DecoderFailureTest,
                         ::testing::Values(Codec::gzip, Codec::zlib_deflate, Codec::raw_deflate, Codec::br,
                                           Codec::zstd),
                         [](const auto& info) { return codec_name(info.param); });

// ---- Choosing a decoder -------------------------------------------------------------------------

TEST(DecoderCreateTest, IdentityOrEmptyNeedsNoDecoder) {
  for (auto encoding : {"", "identity", "IDENTITY", "  identity\t", "   "}) {
    auto d = Decoder::create(encoding);
    ASSERT_TRUE(d.has_value()) << '"' << encoding << "\": " << d.error().describe();
    EXPECT_EQ(*d, nullptr) << '"' << encoding << '"';
  }
}

TEST(DecoderCreateTest, EncodingNamesAreCaseInsensitiveAndTrimmed) {
  for (auto encoding : {"GZIP", "x-gzip", " gzip ", "Deflate", "BR", "\tzstd"}) {
    auto d = Decoder::create(encoding);
    ASSERT_TRUE(d.has_value()) << encoding << ": " << d.error().describe();
    EXPECT_NE(*d, nullptr) << encoding;
  }
}

TEST(DecoderCreateTest, XGzipDecodesGzip) {
  const std::string plain = sample_text(1000);
  auto out = decode_all("x-gzip", compress(Codec::gzip, plain), 100);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(*out, plain);
}

TEST(DecoderCreateTest, UnknownOrStackedEncodingIsAProtocolError) {
  for (auto encoding : {"compress", "x-unknown", "gzip, br", "gzip,gzip", "identity, gzip"}) {
    auto d = Decoder::create(encoding);
    ASSERT_FALSE(d.has_value()) << encoding;
    EXPECT_EQ(d.error().kind(), ErrorKind::protocol) << encoding;
    EXPECT_THAT(d.error().message(), HasSubstr("unsupported Content-Encoding")) << encoding;
  }
}

TEST(DecoderCreateTest, SupportedEncodingsCanAllBeCreated) {
  std::string_view list = supported_encodings;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto name = list.substr(0, comma);
    auto d = Decoder::create(name);
    ASSERT_TRUE(d.has_value()) << name << ": " << d.error().describe();
    EXPECT_NE(*d, nullptr) << name;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// ---- Details ----------------------------------------------------------------------------------

TEST(DecoderTest, FlippedByteInTheMiddleIsDetectedByTheChecksum) {
  // gzip (CRC-32), zlib (Adler-32) and brotli (strict format) notice; raw deflate and
  // zstd without a checksum cannot always.
  for (Codec codec : {Codec::gzip, Codec::zlib_deflate, Codec::br}) {
    const std::string plain = sample_text(20'000);
    std::string packed = compress(codec, plain);
    packed[packed.size() / 2] = static_cast<char>(packed[packed.size() / 2] ^ 0x55);
    auto out = decode_all(content_encoding(codec), packed, 4096);
    ASSERT_FALSE(out.has_value()) << codec_name(codec) << ": corruption went unnoticed";
    EXPECT_EQ(out.error().kind(), ErrorKind::protocol) << codec_name(codec);
  }
}


TEST(DecoderTest, AppendsToWhatIsAlreadyInTheOutput) {
  auto decoder = make_decoder("gzip");
  ASSERT_NE(decoder, nullptr);
  std::string out = "prefix:";
  ASSERT_TRUE(decoder->decode(compress(Codec::gzip, "payload"), out).has_value());
  ASSERT_TRUE(decoder->finish().has_value());
  EXPECT_EQ(out, "prefix:payload");
}

TEST(DecoderTest, EmptyPiecesAreHarmless) {
  for (Codec codec : {Codec::gzip, Codec::raw_deflate, Codec::br, Codec::zstd}) {
    const std::string plain = sample_text(2000);
    const std::string packed = compress(codec, plain);
    auto decoder = make_decoder(content_encoding(codec));
    ASSERT_NE(decoder, nullptr);
    std::string out;
    ASSERT_TRUE(decoder->decode("", out).has_value()) << codec_name(codec);
    ASSERT_TRUE(decoder->decode(packed, out).has_value()) << codec_name(codec);
    ASSERT_TRUE(decoder->decode("", out).has_value()) << codec_name(codec);
    ASSERT_TRUE(decoder->finish().has_value()) << codec_name(codec);
    EXPECT_EQ(out, plain) << codec_name(codec);
  }
}

TEST(DecoderTest, ZstdConcatenatedFramesDecodeAsOneBody) {
  const std::string packed = zstd_compress("first half, ") + zstd_compress("second half");
  auto out = decode_all("zstd", packed, 5);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(*out, "first half, second half");
}

TEST(DecoderTest, ZstdRefusesAWindowOver8MiB) {
  // Streaming without a pledged size keeps the requested window in the frame header.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ASSERT_NE(cctx, nullptr);
  ASSERT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 25)));
  const std::string plain = sample_text(10'000);
  std::string packed(ZSTD_compressBound(plain.size()) + 1024, '\0');
  ZSTD_inBuffer in{plain.data(), plain.size(), 0};
  ZSTD_outBuffer out{packed.data(), packed.size(), 0};
  ASSERT_FALSE(ZSTD_isError(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue)));
  ZSTD_inBuffer none{nullptr, 0, 0};
  std::size_t left;
  do {
    left = ZSTD_compressStream2(cctx, &out, &none, ZSTD_e_end);
    ASSERT_FALSE(ZSTD_isError(left));
  } while (left != 0);
  packed.resize(out.pos);
  ZSTD_freeCCtx(cctx);

  auto decoded = decode_all("zstd", packed, packed.size());
  ASSERT_FALSE(decoded.has_value()) << "a 32 MiB window was accepted";
  EXPECT_EQ(decoded.error().kind(), ErrorKind::protocol);
}

TEST(DecoderTest, DeflateWithZlibHeaderAndRawDeflateBothDecode) {
  const std::string plain = sample_text(4000);
  auto wrapped = decode_all("deflate", compress(Codec::zlib_deflate, plain), 4000);
  ASSERT_TRUE(wrapped.has_value()) << wrapped.error().describe();
  EXPECT_EQ(*wrapped, plain);
  auto raw = decode_all("deflate", compress(Codec::raw_deflate, plain), 4000);
  ASSERT_TRUE(raw.has_value()) << raw.error().describe();
  EXPECT_EQ(*raw, plain);
}

TEST(DecoderTest, DeflateAlsoAcceptsAGzipWrapper) {
  const std::string plain = sample_text(4000);
  auto out = decode_all("deflate", compress(Codec::gzip, plain), 1);
  ASSERT_TRUE(out.has_value()) << out.error().describe();
  EXPECT_EQ(*out, plain);
}

TEST(DecoderTest, DeflateCutInsideItsFirstTwoBytesIsTruncated) {
  auto decoder = make_decoder("deflate");
  ASSERT_NE(decoder, nullptr);
  std::string out;
  ASSERT_TRUE(decoder->decode(compress(Codec::zlib_deflate, "abc").substr(0, 1), out).has_value());
  auto fin = decoder->finish();
  ASSERT_FALSE(fin.has_value());
  EXPECT_EQ(fin.error().kind(), ErrorKind::protocol);
  EXPECT_THAT(fin.error().message(), HasSubstr("truncated deflate"));
}

TEST(DecoderTest, CorruptErrorsHappenWhileReading) {
  auto out = decode_all("gzip", std::string(32, '\xff'), 32);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().kind(), ErrorKind::protocol);
  EXPECT_EQ(out.error().phase(), Phase::read);
  EXPECT_THAT(out.error().message(), HasSubstr("gzip"));
}

}  // namespace
}  // namespace errand::http

namespace errand::http {
namespace {

TEST(GzipMembersTest, MembersBackToBackAreDecodedInOrder) {
  // RFC 1952 allows concatenated members; `cat a.gz b.gz` is a valid gzip stream.
  const std::string packed = compress(Codec::gzip, "first member\n") + compress(Codec::gzip, "second member\n");
  for (std::size_t piece : {std::size_t{1}, std::size_t{5}, packed.size()}) {
    auto out = decode_all("gzip", packed, piece);
    ASSERT_TRUE(out.has_value()) << "piece " << piece << ": " << out.error().describe();
    EXPECT_EQ(*out, "first member\nsecond member\n");
  }
}

}  // namespace
}  // namespace errand::http

namespace errand::http {
namespace {

class DecoderBoundTest : public ::testing::TestWithParam<Codec> {};

TEST_P(DecoderBoundTest, OutputPerCallIsBoundedSoABombCannotExhaustMemory) {
  // 32 MiB of zeros compress to a few KiB; each call may produce only about max_out.
  const std::string zeros(32u << 20, '\0');
  const std::string packed = compress(GetParam(), zeros);
  ASSERT_LT(packed.size(), zeros.size() / 100);
  auto decoder = make_decoder(content_encoding(GetParam()));
  ASSERT_NE(decoder, nullptr);
  constexpr std::size_t max_out = 256 * 1024;
  std::string_view rest = packed;
  std::size_t total = 0, calls = 0;
  ASSERT_NO_FATAL_FAILURE(drain_bounded(*decoder, rest, max_out, total, calls));
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(total, zeros.size());
  EXPECT_GT(calls, zeros.size() / (max_out + 64 * 1024));
  EXPECT_TRUE(decoder->finish().has_value());
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, DecoderBoundTest,
                         ::testing::Values(Codec::gzip, Codec::zlib_deflate, Codec::raw_deflate, Codec::br, Codec::zstd),
                         [](const auto& info) { return codec_name(info.param); });

}  // namespace
}  // namespace errand::http

namespace errand::http {
namespace {

// Regressions found by fuzz/decoder_fuzz.cpp.

TEST(DecoderFuzzRegressionTest, ZstdLegacyFrameIsRefusedHoweverTheBodyIsSplit) {
  // The magic number of zstd 0.6 and a frame after it: libzstd decoded it when the four magic
  // bytes came in one piece and refused it when they did not.
  const std::string legacy("\x26\xb5\x2f\xfd\x40\xff\xff\x00\x10", 9);
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, legacy.size()}) {
    auto out = decode_all("zstd", legacy, piece);
    ASSERT_FALSE(out.has_value()) << "piece " << piece << ": a legacy zstd frame was accepted";
    EXPECT_EQ(out.error().kind(), ErrorKind::protocol);
  }
}

TEST(DecoderFuzzRegressionTest, GzipMembersEachUnderAStepStillRespectTheOutputBound) {
  // Each member ends within one output step, and the bound was only checked between steps
  // of one member: twenty members came out of a single call.
  std::string packed;
  for (int i = 0; i < 20; ++i) packed += compress(Codec::gzip, std::string(40'000, '\0'));
  auto decoder = make_decoder("gzip");
  ASSERT_NE(decoder, nullptr);
  std::string_view rest = packed;
  std::size_t total = 0, calls = 0;
  ASSERT_NO_FATAL_FAILURE(drain_bounded(*decoder, rest, 64 * 1024, total, calls));
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(total, 20u * 40'000);
  EXPECT_TRUE(decoder->finish().has_value());
}

}  // namespace
}  // namespace errand::http

namespace errand::http {
namespace {

// A zstd frame whose header declares 6477 bytes but whose blocks end short: libzstd 1.5.4's
// streaming decoder calls it complete when it gets the frame in one piece, and corrupt when it
// gets it in smaller ones. The decoder must say "corrupt" however it is split.
TEST(ZstdDecoder, AFrameShortOfItsDeclaredSizeIsCorruptHoweverItIsSplit) {
  const unsigned char frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x50, 0x2a, 0x4d, 0x18,
                                 0x04, 0x00, 0x00, 0x00, 0x20, 0x77, 0x96, 0x11};
  std::string_view body(reinterpret_cast<const char*>(frame), sizeof frame);
  for (std::size_t piece : {std::size_t{1}, std::size_t{5}, sizeof frame}) {
    auto out = decode_all("zstd", body, piece);
    ASSERT_FALSE(out.has_value()) << "piece " << piece;
    EXPECT_EQ(out.error().kind(), ErrorKind::protocol);
  }
}

}  // namespace
}  // namespace errand::http
