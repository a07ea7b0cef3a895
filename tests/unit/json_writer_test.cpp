#include "observe/json_writer.hpp"

#include <gtest/gtest.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

namespace errand::observe {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  json_text::string(out, s);
  return out;
}

TEST(JsonText, EscapesWhatJsonRequiresAndKeepsUtf8) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quoted("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(json_quoted(std::string_view("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(json_quoted("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quoted(std::string_view("\0", 1)), "\"\\u0000\"");
}

TEST(JsonText, BytesThatAreNotUtf8BecomeTheReplacementCharacter) {
  // A lone continuation byte, a truncated sequence, an overlong form, a surrogate, past U+10FFFF.
  for (std::string_view bad : {"\x80", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    std::string text = json_quoted(std::string("a") + std::string(bad) + "b");
    auto parsed = nlohmann::json::parse(text);  // throws on invalid JSON or UTF-8
    auto value = parsed.get<std::string>();
    EXPECT_EQ(value.front(), 'a');
    EXPECT_EQ(value.back(), 'b');
    EXPECT_NE(value.find("\xef\xbf\xbd"), std::string::npos) << text;
  }
}

// Plain text is copied eight bytes at a time: a byte that needs escaping must be found in every
// lane of a word and in the tail, and bytes next to the special ones must pass as they are.
TEST(JsonText, EscapesAtEveryPositionOfAWordAndTheTail) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {{"\"", "\\\""},       {"\\", "\\\\"},           {"\n", "\\n"},
                        {std::string("\0", 1), "\\u0000"}, {"\x1f", "\\u001f"}, {"\x80", "\\ufffd"},
                        {"\xc3\xa9", "\xc3\xa9"}, {"\x7f", "\x7f"},             {" ", " "},
                        {"!", "!"},               {"#", "#"},                 {"[", "["},
                        {"]", "]"}};
  for (const auto& c : cases) {
    for (std::size_t length = 0; length <= 24; ++length) {
      for (std::size_t at = 0; at <= length; ++at) {
        std::string in = std::string(at, 'a') + c.in + std::string(length - at, 'b');
        std::string expected(1, '"');  // appended piece by piece: GCC 12 warns falsely on "..." + string
        expected.append(at, 'a').append(c.out).append(length - at, 'b').push_back('"');
        EXPECT_EQ(json_quoted(in), expected) << "at " << at << " of " << length;
      }
    }
  }
}

// Ids are written eight bytes at a time (SSE2 where there is one): every byte value, in every
// lane, must come out as its two lower-case digits.
TEST(JsonText, HexWritesEveryByteInEveryLane) {
  for (int value = 0; value < 256; ++value) {
    for (std::size_t lane = 0; lane < 16; ++lane) {
      std::array<std::uint8_t, 16> id{};
      for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i * 37 + 11);
      id[lane] = static_cast<std::uint8_t>(value);
      std::string expected;
      for (std::uint8_t b : id) {
        char two[3];
        std::snprintf(two, sizeof two, "%02x", b);
        expected += two;
      }
      std::string out;
      json_text::hex(out, id);
      ASSERT_EQ(out, expected) << "byte " << value << " in lane " << lane;
    }
  }
}

// Short texts are copied in overlapping 16-, 8- and 4-byte moves: every length must come out
// whole, with nothing written past it.
TEST(JsonText, ByteCopiesOfEveryLengthAreExact) {
  std::string source;
  for (int i = 0; i < 80; ++i) source += static_cast<char>('A' + i % 26);
  for (std::size_t n = 0; n <= source.size(); ++n) {
    std::string room(source.size() + 8, '.');
    char* end = json_text::put_bytes(room.data(), source.data(), n);
    ASSERT_EQ(static_cast<std::size_t>(end - room.data()), n);
    EXPECT_EQ(room.substr(0, n), source.substr(0, n)) << n;
    EXPECT_EQ(room.substr(n), std::string(room.size() - n, '.')) << n;
  }
}

// Integers are written eight digits at a time: every length, both signs and both ends of the
// range must read as std::to_chars writes them.
TEST(JsonText, IntegersOfEveryLengthMatchToChars) {
  std::vector<std::int64_t> values = {0, std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()};
  std::int64_t power = 1;
  for (int digits = 1; digits <= 18; ++digits) {
    power *= 10;
    for (std::int64_t v : {power - 1, power, power + 1, power / 10 * 7 + 3}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 10'000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    values.push_back(static_cast<std::int64_t>(state >> (i % 64)));
  }
  for (std::int64_t v : values) {
    char expected[24];
    std::string_view want(expected, static_cast<std::size_t>(std::to_chars(expected, expected + sizeof expected, v).ptr - expected));
    char room[json_text::integer_bound + 8];
    char* end = json_text::put_integer(room, v);
    ASSERT_EQ(std::string_view(room, static_cast<std::size_t>(end - room)), want) << v;
  }
}

TEST(JsonText, NumbersReadBackExactly) {
  for (double v : {0.0, -1.5, 0.1, 1e-300, 123456789.125, 1e21}) {
    std::string out;
    json_text::number(out, v);
    EXPECT_EQ(nlohmann::json::parse(out).get<double>(), v) << out;
  }
  std::string out;
  json_text::number(out, std::nan(""));
  json_text::quoted_integer(out, -9223372036854775807LL - 1);
  EXPECT_EQ(out, "\"NaN\"\"-9223372036854775808\"");
}

}  // namespace
}  // namespace errand::observe
