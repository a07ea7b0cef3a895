#include <errand/http/headers.hpp>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace errand::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> names(const Headers& h) {
  std::vector<std::string> out;
  for (const auto& f : h) out.push_back(f.name);
  return out;
}

TEST(IequalsTest, ComparesAsciiCaseInsensitively) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5B vs 0x7B: differ by 32 but are not letters
}

TEST(HeadersTest, GetMatchesNamesCaseInsensitivelyAndReturnsTheFirstValue) {
  Headers h;
  h.add("Accept", "application/json");
  h.add("ACCEPT", "text/plain");
  EXPECT_EQ(h.get("accept"), "application/json");
  EXPECT_EQ(h.get("AcCePt"), "application/json");
  EXPECT_TRUE(h.contains("ACCEPT"));
  EXPECT_EQ(h.get("Accept-Encoding"), std::nullopt);
  EXPECT_FALSE(h.contains("Accep"));
}

TEST(HeadersTest, GetAllReturnsEveryValueInOrder) {
  Headers h;
  h.add("Set-Cookie", "a=1");
  h.add("Other", "x");
  h.add("set-cookie", "b=2");
  EXPECT_THAT(h.get_all("SET-COOKIE"), ElementsAre("a=1", "b=2"));
  EXPECT_TRUE(h.get_all("missing").empty());
}

TEST(HeadersTest, KeepsInsertionOrderAndSpelling) {
  Headers h;
  h.add("X-B", "1");
  h.add("x-a", "2");
  h.add("X-C", "3");
  EXPECT_THAT(names(h), ElementsAre("X-B", "x-a", "X-C"));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.empty());
}

TEST(HeadersTest, SetReplacesEveryFieldOfThatNameAndAppendsOne) {
  Headers h;
  h.add("User-Agent", "a");
  h.add("Accept", "*/*");
  h.add("user-agent", "b");
  h.set("USER-AGENT", "errand");
  EXPECT_THAT(names(h), ElementsAre("Accept", "USER-AGENT"));
  EXPECT_THAT(h.get_all("user-agent"), ElementsAre("errand"));
}

TEST(HeadersTest, SetInPlaceKeepsThePlaceAndSpellingOfTheFirstField) {
  Headers h;
  h.add("traceparent", "a");
  h.add("Accept", "*/*");
  h.add("TraceParent", "b");
  h.set_in_place("TRACEPARENT", "c");
  EXPECT_THAT(names(h), ElementsAre("traceparent", "Accept"));
  EXPECT_THAT(h.get_all("traceparent"), ElementsAre("c"));
  h.set_in_place("X-New", "v");
  EXPECT_THAT(names(h), ElementsAre("traceparent", "Accept", "X-New"));
}

TEST(HeadersTest, SetOnAbsentNameAdds) {
  Headers h;
  h.set("X-New", "v");
  EXPECT_EQ(h.get("x-new"), "v");
  EXPECT_EQ(h.size(), 1u);
}

TEST(HeadersTest, RemoveDropsAllMatchesKeepsOthersInOrderAndCounts) {
  Headers h;
  h.add("A", "1");
  h.add("Cookie", "x");
  h.add("B", "2");
  h.add("COOKIE", "y");
  h.add("C", "3");
  EXPECT_EQ(h.remove("cookie"), 2u);
  EXPECT_THAT(names(h), ElementsAre("A", "B", "C"));
  EXPECT_EQ(h.remove("cookie"), 0u);
}

TEST(HeadersTest, ClearEmpties) {
  Headers h;
  h.add("A", "1");
  h.clear();
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.get("A"), std::nullopt);
}

TEST(HeadersTest, HasTokenFindsATokenInACommaSeparatedList) {
  Headers h;
  h.add("Connection", "keep-alive, Upgrade");
  EXPECT_TRUE(h.has_token("connection", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "KEEP-ALIVE"));
  EXPECT_FALSE(h.has_token("Connection", "close"));
  EXPECT_FALSE(h.has_token("Transfer-Encoding", "keep-alive"));
}

TEST(HeadersTest, HasTokenTrimsWhitespaceAndToleratesEmptyItems) {
  Headers h;
  h.add("Transfer-Encoding", " gzip ,\t, chunked\t");
  EXPECT_TRUE(h.has_token("Transfer-Encoding", "gzip"));
  EXPECT_TRUE(h.has_token("Transfer-Encoding", "chunked"));
  EXPECT_FALSE(h.has_token("Transfer-Encoding", "identity"));
}

TEST(HeadersTest, HasTokenMatchesWholeItemsOnly) {
  Headers h;
  h.add("Transfer-Encoding", "notchunked, chunked-ish");
  EXPECT_FALSE(h.has_token("Transfer-Encoding", "chunked"));
}

TEST(HeadersTest, HasTokenLooksAtEveryFieldOfThatName) {
  Headers h;
  h.add("Connection", "keep-alive");
  h.add("connection", "close");
  EXPECT_TRUE(h.has_token("Connection", "close"));
}

TEST(ValidateFieldTest, AcceptsTokenNamesAndOrdinaryValues) {
  EXPECT_TRUE(validate_field("X-Request-Id", "abc 123\t;=,\"").has_value());
  EXPECT_TRUE(validate_field("!#$%&'*+-.^_`|~09azAZ", "").has_value());
  EXPECT_TRUE(validate_field("X-Utf8", "caf\xc3\xa9").has_value());
}

TEST(ValidateFieldTest, RefusesEmptyName) {
  auto r = validate_field("", "v");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::config);
  EXPECT_THAT(r.error().message(), HasSubstr("empty header name"));
}

TEST(ValidateFieldTest, RefusesNonTokenCharactersInName) {
  for (std::string name : {"Bad Name", "Bad:Name", "Bad(Name)", "Bad\"Name", "Bad/Name", "Bad@Name", "Bad\tName"}) {
    auto r = validate_field(name, "v");
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().kind(), ErrorKind::config) << name;
    EXPECT_THAT(r.error().message(), HasSubstr("in header name")) << name;
  }
}

TEST(ValidateFieldTest, RefusesCrLfAndNulInNameShowingThemEscaped) {
  auto cr = validate_field("X-A\rB", "v");
  ASSERT_FALSE(cr.has_value());
  EXPECT_EQ(cr.error().kind(), ErrorKind::config);
  EXPECT_THAT(cr.error().message(), HasSubstr("'\\r'"));

  auto lf = validate_field("X-A\nB", "v");
  ASSERT_FALSE(lf.has_value());
  EXPECT_THAT(lf.error().message(), HasSubstr("'\\n'"));

  auto nul = validate_field(std::string("X-A\0B", 5), "v");
  ASSERT_FALSE(nul.has_value());
  EXPECT_EQ(nul.error().kind(), ErrorKind::config);
  EXPECT_THAT(nul.error().message(), HasSubstr("'\\x00'"));
}

TEST(ValidateFieldTest, ShowsOtherBadBytesInHex) {
  auto del = validate_field("X\x7f", "v");
  ASSERT_FALSE(del.has_value());
  EXPECT_THAT(del.error().message(), HasSubstr("'\\x7f'"));

  auto high = validate_field("X\xc3\xa9", "v");
  ASSERT_FALSE(high.has_value());
  EXPECT_THAT(high.error().message(), HasSubstr("'\\xc3'"));
}

TEST(ValidateFieldTest, RefusesHeaderInjectionInValue) {
  for (std::string value : {std::string("a\r\nX-Injected: 1"), std::string("a\rb"), std::string("a\nb"),
                            std::string("a\0b", 3)}) {
    auto r = validate_field("X-Test", value);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::config);
    EXPECT_THAT(r.error().message(), HasSubstr("header injection refused"));
    EXPECT_THAT(r.error().message(), HasSubstr("X-Test"));
  }
}

// The value is checked eight bytes at a time: a forbidden byte must be found in every lane of
// a word and in the tail, and bytes close to it (0x0b, 0x0c, 0x0e, 0x8d) must pass.
TEST(ValidateFieldTest, FindsAForbiddenByteAtEveryPosition) {
  for (char bad : {'\r', '\n', '\0'}) {
    for (std::size_t length = 1; length <= 24; ++length) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string value(length, 'x');
        value[at] = bad;
        EXPECT_FALSE(validate_field("X-Test", value).has_value()) << int(bad) << " at " << at << " of " << length;
      }
    }
  }
  std::string near_misses = "\x0b\x0c\x0e\x8d\x8a\x80\x01\x09 ok \x7f\xff\x0b\x0c\x0e\x8d\x8a";
  EXPECT_TRUE(validate_field("X-Test", near_misses).has_value());
}

TEST(ParseHeaderLineTest, SplitsAtTheFirstColonAndTrims) {
  auto f = parse_header_line("  Authorization :  Bearer a:b:c \t");
  ASSERT_TRUE(f.has_value()) << f.error().describe();
  EXPECT_EQ(f->name, "Authorization");
  EXPECT_EQ(f->value, "Bearer a:b:c");
}

TEST(ParseHeaderLineTest, AllowsEmptyValue) {
  auto f = parse_header_line("X-Empty:");
  ASSERT_TRUE(f.has_value()) << f.error().describe();
  EXPECT_EQ(f->name, "X-Empty");
  EXPECT_EQ(f->value, "");
}

TEST(ParseHeaderLineTest, RefusesLineWithoutColon) {
  auto f = parse_header_line("X-Missing value");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().kind(), ErrorKind::config);
  EXPECT_THAT(f.error().message(), HasSubstr("has no ':'"));
}

TEST(ParseHeaderLineTest, RefusesEmptyOrInvalidName) {
  auto empty = parse_header_line(": value");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().kind(), ErrorKind::config);

  auto spaced = parse_header_line("X Bad: value");
  ASSERT_FALSE(spaced.has_value());
  EXPECT_EQ(spaced.error().kind(), ErrorKind::config);
}

TEST(ParseHeaderLineTest, RefusesInjectionInValue) {
  auto f = parse_header_line("X-A: 1\r\nX-B: 2");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().kind(), ErrorKind::config);
  EXPECT_THAT(f.error().message(), HasSubstr("header injection"));
}

}  // namespace
}  // namespace errand::http
