#include <errand/http/url.hpp>

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace errand::http {
namespace {

// Passes when `result` is a config error whose message contains every one of `fragments`.
template <typename T>
::testing::AssertionResult IsConfigError(const Result<T>& result, std::vector<std::string> fragments) {
  if (result) return ::testing::AssertionFailure() << "succeeded, expected a config error";
  if (result.error().kind() != ErrorKind::config) {
    return ::testing::AssertionFailure() << "kind is " << to_string(result.error().kind()) << ", expected config";
  }
  for (const auto& fragment : fragments) {
    if (result.error().message().find(fragment) == std::string::npos) {
      return ::testing::AssertionFailure() << "message \"" << result.error().message() << "\" lacks \"" << fragment
                                           << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

Url parsed(std::string_view text) {
  auto url = Url::parse(text);
  EXPECT_TRUE(url) << text << ": " << url.error().message();
  return url ? *url : Url{};
}

Url resolved_url(std::string_view base, std::string_view reference) {
  auto url = parsed(base).resolve(reference);
  EXPECT_TRUE(url) << reference << ": " << url.error().message();
  return url ? *url : Url{};
}

std::string resolved(std::string_view base, std::string_view reference) {
  auto url = parsed(base).resolve(reference);
  if (!url) return "error: " + url.error().message();
  return url->to_string();
}

TEST(UrlTest, ParsesEveryComponent) {
  Url url = parsed("https://user:pw@Example.COM:8443/a/b?x=1&y=2#frag");
  EXPECT_EQ(url.scheme(), "https");
  EXPECT_EQ(url.userinfo(), "user:pw");
  EXPECT_EQ(url.host(), "example.com");
  EXPECT_EQ(url.port(), 8443);
  EXPECT_TRUE(url.has_explicit_port());
  EXPECT_EQ(url.path(), "/a/b");
  EXPECT_TRUE(url.has_query());
  EXPECT_EQ(url.query(), "x=1&y=2");
  EXPECT_EQ(url.fragment(), "frag");
  EXPECT_TRUE(url.is_https());
}

TEST(UrlTest, ParsesTheHeaderExample) {
  Url url = parsed("https://user@[::1]:8443/a%20b?q=1#frag");
  EXPECT_EQ(url.host(), "::1");
  EXPECT_EQ(url.port(), 8443);
  EXPECT_EQ(url.target(), "/a%20b?q=1");
}

TEST(UrlTest, LowercasesSchemeAndHostButNotPath) {
  Url url = parsed("HTTP://WWW.Example.COM/Path?Q=A#F");
  EXPECT_EQ(url.scheme(), "http");
  EXPECT_EQ(url.host(), "www.example.com");
  EXPECT_EQ(url.path(), "/Path");
  EXPECT_EQ(url.query(), "Q=A");
  EXPECT_EQ(url.fragment(), "F");
  EXPECT_EQ(parsed("HtTpS://h/").scheme(), "https");
}

TEST(UrlTest, UsesTheSchemesDefaultPortWhenNoneIsGiven) {
  EXPECT_EQ(parsed("http://h/").port(), 80);
  EXPECT_EQ(parsed("https://h/").port(), 443);
  EXPECT_FALSE(parsed("https://h/").has_explicit_port());
  EXPECT_EQ(Url::default_port("http"), 80);
  EXPECT_EQ(Url::default_port("HTTPS"), 443);
  EXPECT_EQ(Url::default_port("ftp"), 0);
}

TEST(UrlTest, RefusesUnsupportedSchemes) {
  EXPECT_TRUE(IsConfigError(Url::parse("ftp://h/"), {"unsupported scheme \"ftp\"", "only http and https"}));
  EXPECT_TRUE(IsConfigError(Url::parse("ws://h/"), {"unsupported scheme \"ws\""}));
  EXPECT_TRUE(IsConfigError(Url::parse("localhost:8080"), {"unsupported scheme \"localhost\""}));
}

TEST(UrlTest, RefusesInputWithoutScheme) {
  for (std::string_view text : {"example.com/path", "//example.com/", "/path", "1http://h/"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"missing scheme"})) << text;
  }
}

TEST(UrlTest, RefusesSchemeWithoutAuthority) {
  EXPECT_TRUE(IsConfigError(Url::parse("http:example.com"), {"expected \"//\" after \"http:\"", "column 6"}));
  EXPECT_TRUE(IsConfigError(Url::parse("https:/example.com"), {"expected \"//\""}));
  EXPECT_TRUE(IsConfigError(Url::parse("http:\\\\example.com"), {"expected \"//\""}));
}

TEST(UrlTest, RefusesEmptyInput) {
  EXPECT_TRUE(IsConfigError(Url::parse(""), {"empty URL"}));
  EXPECT_TRUE(IsConfigError(Url::parse(" \t\r\n"), {"empty URL"}));
}

TEST(UrlTest, RefusesMissingHost) {
  for (std::string_view text : {"http://", "http:///path", "http://user@/", "http://:80/", "http://?q", "http://#f"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"missing host", "column"})) << text;
  }
}

TEST(UrlTest, KeepsUserinfoRaw) {
  Url url = parsed("http://us%20er:p%40ss;x=!@h/");
  EXPECT_EQ(url.userinfo(), "us%20er:p%40ss;x=!");
  EXPECT_EQ(url.host(), "h");
  EXPECT_EQ(url.to_string(), "http://us%20er:p%40ss;x=!@h/");
}

TEST(UrlTest, RefusesInvalidCharactersInUserinfo) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://a b@h/"), {"invalid character ' ' in userinfo at column 9"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://a@b@h/"), {"'@' in userinfo at column 9"}));
  // Browsers read '\' as '/', so this would reach good.com there and evil.com here: refuse.
  EXPECT_TRUE(IsConfigError(Url::parse("http://good.com\\@evil.com/"), {"'\\\\' in userinfo at column 16"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://us\xc3\xa9r@h/"), {"'\\xC3' in userinfo"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://a%zz@h/"), {"malformed percent-escape \"%zz\" at column 9"}));
}

TEST(UrlTest, ParsesIpv4Hosts) {
  Url url = parsed("http://192.168.0.1:8080/");
  EXPECT_EQ(url.host(), "192.168.0.1");
  EXPECT_TRUE(url.is_ip_literal());
  EXPECT_FALSE(url.is_ipv6_literal());
  EXPECT_EQ(url.host_header(), "192.168.0.1:8080");
  EXPECT_TRUE(parsed("http://0.0.0.0/").is_ip_literal());
  EXPECT_TRUE(parsed("http://255.255.255.255/").is_ip_literal());
}

TEST(UrlTest, RefusesHostsThatResolversWouldReadAsOddIpv4) {
  for (std::string_view text : {"http://127.1/", "http://0x7f.0.0.1/", "http://2130706433/", "http://256.1.1.1/",
                                "http://01.2.3.4/", "http://1.2.3.4.5/", "http://1.2.3.4./", "http://example.123/",
                                "http://a.0X1F/", "http://0x/"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"invalid IPv4 address", "column 8"})) << text;
  }
}

TEST(UrlTest, AcceptsNamesThatOnlyLookNumeric) {
  for (std::string_view text : {"http://123abc.example/", "http://1.2.3.4.example/", "http://a.0xg/"}) {
    EXPECT_FALSE(parsed(text).is_ip_literal()) << text;
  }
}

TEST(UrlTest, ParsesIpv6Literals) {
  struct Case {
    std::string_view text;
    std::string_view host;
  };
  for (auto [text, host] : std::vector<Case>{
           {"http://[::]/", "::"},
           {"http://[::1]/", "::1"},
           {"http://[1:2:3:4:5:6:7:8]/", "1:2:3:4:5:6:7:8"},
           {"http://[1::]/", "1::"},
           {"http://[1::8]/", "1::8"},
           {"http://[1:2:3:4:5:6:7::]/", "1:2:3:4:5:6:7::"},
           {"http://[FE80::ABCD:1]/", "fe80::abcd:1"},
           {"http://[::ffff:192.0.2.1]/", "::ffff:192.0.2.1"},
           {"http://[1:2:3:4:5:6:1.2.3.4]/", "1:2:3:4:5:6:1.2.3.4"},
       }) {
    Url url = parsed(text);
    EXPECT_EQ(url.host(), host);
    EXPECT_TRUE(url.is_ipv6_literal()) << text;
    EXPECT_TRUE(url.is_ip_literal()) << text;
  }
}

TEST(UrlTest, RefusesInvalidIpv6Literals) {
  for (std::string_view text :
       {"http://[]/", "http://[1:2:3:4:5:6:7:8:9]/", "http://[1:2:3:4:5:6:7]/", "http://[1::2::3]/", "http://[:1]/",
        "http://[1:]/", "http://[1:::2]/", "http://[12345::]/", "http://[::g]/", "http://[1:2:3:4:5:6:7:1.2.3.4]/",
        "http://[::1.2.3]/", "http://[::256.1.1.1]/", "http://[::01.2.3.4]/", "http://[1.2.3.4]/",
        "http://[example.com]/", "http://[::1 ]/"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"invalid IPv6 literal", "(column 8)"})) << text;
  }
  EXPECT_TRUE(IsConfigError(Url::parse("http://[::1/"), {"invalid IPv6 literal \"[::1\"", "missing ']'"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://[::1]x/"), {"invalid character 'x' after IPv6 literal at column 13"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://[::1]]/"), {"']' after IPv6 literal"}));
}

TEST(UrlTest, RefusesIpv6ZoneIdentifiersAndIpvFuture) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://[fe80::1%25eth0]/"), {"zone identifiers are not supported"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://[v1.fe]/"), {"IPvFuture"}));
}

TEST(UrlTest, RefusesNonAsciiHostsBecauseIdnaIsNotSupported) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://b\xc3\xbc" "cher.example/"), {"non-ASCII host", "IDNA", "column 8"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://b%C3%BCcher.example/"), {"non-ASCII host", "IDNA"}));
}

TEST(UrlTest, QuotesInputInMessagesAsPrintableAscii) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://b\xc3\xbc" "cher.example/"), {"\"b\\xC3\\xBCcher.example\""}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h:" + std::string(100, '9')), {"\"" + std::string(64, '9') + "...\""}));
  EXPECT_TRUE(IsConfigError(percent_decode("a%\n1"), {"\"%\\x0A1\""}));
}

TEST(UrlTest, RefusesInvalidCharactersInHost) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://exa mple.com/"), {"invalid character ' ' in host at column 11"}));
  for (std::string_view text : {"http://a<b/", "http://a\\b/", "http://a\"b/", "http://a{b/", "http://a^b/"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"in host at column 9"})) << text;
  }
  EXPECT_TRUE(IsConfigError(Url::parse("http://a%zzb/"), {"malformed percent-escape \"%zz\" at column 9"}));
}

TEST(UrlTest, DecodesPercentEscapesInHost) {
  EXPECT_EQ(parsed("http://%45xample.com/").host(), "example.com");
  EXPECT_TRUE(parsed("http://%31%32%37.0.0.1/").is_ip_literal());
  EXPECT_TRUE(IsConfigError(Url::parse("http://a%2Fb/"), {"\"%2F\" in host decodes to '/'", "column 9"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://a%00b/"), {"\"%00\" in host decodes to '\\0'"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://127.0.0.%30%31/"), {"invalid IPv4 address"}));
}

TEST(UrlTest, AcceptsSubDelimsInRegisteredNames) {
  EXPECT_EQ(parsed("http://a-b_c~d!$&'()*+,;=/").host(), "a-b_c~d!$&'()*+,;=");
}

TEST(UrlTest, ParsesExplicitPorts) {
  Url zero = parsed("http://h:0/");
  EXPECT_EQ(zero.port(), 0);
  EXPECT_TRUE(zero.has_explicit_port());
  EXPECT_EQ(parsed("http://h:65535/").port(), 65535);
  Url padded = parsed("http://h:0080/");
  EXPECT_EQ(padded.port(), 80);
  EXPECT_TRUE(padded.has_explicit_port());
  EXPECT_EQ(padded.to_string(), "http://h:80/");
}

TEST(UrlTest, TreatsAnEmptyPortAsTheDefault) {
  Url url = parsed("https://h:/p");
  EXPECT_EQ(url.port(), 443);
  EXPECT_FALSE(url.has_explicit_port());
  EXPECT_EQ(url.to_string(), "https://h/p");
  EXPECT_EQ(parsed("http://[::1]:").port(), 80);
}

TEST(UrlTest, RefusesInvalidPorts) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://host:99999/"), {"invalid port \"99999\" (column 13)"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://host:65536/"), {"invalid port \"65536\""}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://[::1]:8x/"), {"invalid port \"8x\" (column 14)"}));
  for (std::string_view text : {"http://h:-1/", "http://h:+80/", "http://h:8 0/", "http://h:1:2/", "http://h:0x50/",
                                "http://h:99999999999999999999999999/", "http://h::/"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"invalid port", "column 10"})) << text;
  }
}

TEST(UrlTest, MakesAnEmptyPathSlash) {
  EXPECT_EQ(parsed("http://h").path(), "/");
  EXPECT_EQ(parsed("http://h").target(), "/");
  Url url = parsed("http://h?x#y");
  EXPECT_EQ(url.path(), "/");
  EXPECT_EQ(url.target(), "/?x");
}

TEST(UrlTest, KeepsValidEscapesInPathAsTheyAre) {
  EXPECT_EQ(parsed("http://h/a%2fb%20c%C3%A9").path(), "/a%2fb%20c%C3%A9");
}

TEST(UrlTest, PercentEncodesSpacesAndNonAsciiInPath) {
  EXPECT_EQ(parsed("http://h/a b/\xc3\xa9").path(), "/a%20b/%C3%A9");
}

TEST(UrlTest, PercentEncodesCharactersNotAllowedInPath) {
  EXPECT_EQ(parsed("http://h/\"<>\\^`{|}[]").path(), "/%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D");
}

TEST(UrlTest, KeepsPathCharactersThatNeedNoEscape) {
  EXPECT_EQ(parsed("http://h/a:b@c!$&'()*+,;=-._~/").path(), "/a:b@c!$&'()*+,;=-._~/");
}

TEST(UrlTest, RefusesControlCharactersInPath) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a\nb"), {"invalid character '\\n' at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a\r\nHost: evil"), {"'\\r' at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse(std::string_view("http://h/a\0b", 12)), {"'\\0' at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a\tb"), {"'\\t' at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a\x7f"), {"'\\x7F' at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a\x1b"), {"'\\x1B' at column 11"}));
}

TEST(UrlTest, RefusesControlCharactersAnywhere) {
  for (std::string_view text : {"ht\ntp://h/", "http://u\r@h/", "http://h\n.com/", "http://h:8\n0/",
                                "http://[::1\n]/", "http://h/?a=\r\nb", "http://h/#\nx"}) {
    EXPECT_TRUE(IsConfigError(Url::parse(text), {"invalid character '\\", "column"})) << text;
  }
}

TEST(UrlTest, RefusesMalformedPercentEscapes) {
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/%4G"), {"malformed percent-escape \"%4G\" at column 10"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a%"), {"malformed percent-escape \"%\" at column 11"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a%2"), {"malformed percent-escape \"%2\""}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/?q=%zz"), {"\"%zz\" at column 13"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/#%"), {"\"%\" at column 11"}));
}

TEST(UrlTest, RemovesDotSegmentsFromPath) {
  struct Case {
    std::string_view path;
    std::string_view expected;
  };
  for (auto [path, expected] : std::vector<Case>{
           {"/a/b/../c", "/a/c"},
           {"/a/./b", "/a/b"},
           {"/../a", "/a"},
           {"/a/..", "/"},
           {"/a/.", "/a/"},
           {"/a/b/../../..", "/"},
           {"/a//b/../c", "/a//c"},
           {"/.a/..b/a.", "/.a/..b/a."},
           {"/%2e%2e/a", "/%2e%2e/a"},
           {"/.", "/"},
           {"/..", "/"},
       }) {
    EXPECT_EQ(parsed("http://h" + std::string(path)).path(), expected) << path;
  }
}

TEST(UrlTest, EncodesQueryAndFragment) {
  Url url = parsed("http://h/?a b=\xc3\xa9&c=<d>/?x#f g\"#h");
  EXPECT_EQ(url.query(), "a%20b=%C3%A9&c=%3Cd%3E/?x");
  EXPECT_EQ(url.fragment(), "f%20g%22%23h");
}

TEST(UrlTest, KeepsDotSegmentsInQueryAndFragment) {
  Url url = parsed("http://h/p?a/../b#c/./d");
  EXPECT_EQ(url.query(), "a/../b");
  EXPECT_EQ(url.fragment(), "c/./d");
}

TEST(UrlTest, EndsTheQueryAtHash) {
  Url url = parsed("http://h/p?a=1#b?c");
  EXPECT_EQ(url.query(), "a=1");
  EXPECT_EQ(url.fragment(), "b?c");
}

TEST(UrlTest, DistinguishesAnEmptyQueryFromNone) {
  Url empty = parsed("http://h/p?");
  EXPECT_TRUE(empty.has_query());
  EXPECT_EQ(empty.target(), "/p?");
  EXPECT_EQ(empty.to_string(), "http://h/p?");
  Url none = parsed("http://h/p");
  EXPECT_FALSE(none.has_query());
  EXPECT_EQ(none.target(), "/p");
  EXPECT_NE(empty, none);
}

TEST(UrlTest, TrimsWhitespaceAroundTheInput) {
  EXPECT_EQ(parsed("  \t http://h/p \r\n").to_string(), "http://h/p");
  // Columns still count from the start of the untrimmed input.
  EXPECT_TRUE(IsConfigError(Url::parse("  http://h/%zz  "), {"column 12"}));
  EXPECT_TRUE(IsConfigError(Url::parse("http://h/a b\x01 "), {"'\\x01' at column 13"}));
}

TEST(UrlTest, RefusesInputsLongerThan64KiB) {
  const std::string prefix = "http://h/";
  std::string longest = prefix + std::string(64 * 1024 - prefix.size(), 'a');
  EXPECT_TRUE(Url::parse(longest));
  EXPECT_TRUE(IsConfigError(Url::parse(longest + "a"), {"too long", "65537 bytes", "65536"}));
  EXPECT_TRUE(IsConfigError(parsed("http://h/").resolve(longest + "a"), {"too long"}));
}

TEST(UrlTest, TargetIsPathAndQueryWithoutFragment) {
  EXPECT_EQ(parsed("http://u@h:81/a/b?c=d#e").target(), "/a/b?c=d");
}

TEST(UrlTest, HostHeaderCarriesOnlyANonDefaultExplicitPort) {
  EXPECT_EQ(parsed("http://h/").host_header(), "h");
  EXPECT_EQ(parsed("http://h:80/").host_header(), "h");
  EXPECT_EQ(parsed("https://h:443/").host_header(), "h");
  EXPECT_EQ(parsed("https://h:80/").host_header(), "h:80");
  EXPECT_EQ(parsed("http://u:p@h:8080/").host_header(), "h:8080");
  EXPECT_EQ(parsed("http://[::1]/").host_header(), "[::1]");
  EXPECT_EQ(parsed("http://[::1]:8080/").host_header(), "[::1]:8080");
}

TEST(UrlTest, WithoutCredentialsDropsUserinfoAndFragmentOnly) {
  EXPECT_EQ(parsed("http://user:secret@H:8080/a%20b?c=d&e#frag").without_credentials(), "http://h:8080/a%20b?c=d&e");
  EXPECT_EQ(parsed("https://h:443/").without_credentials(), "https://h/");
  EXPECT_EQ(parsed("http://[::1]:65535/x?").without_credentials(), "http://[::1]:65535/x?");
  EXPECT_EQ(parsed("http://h").without_credentials(), "http://h/");
}

TEST(UrlTest, OriginAlwaysCarriesThePort) {
  EXPECT_EQ(parsed("http://u@H/p?q#f").origin(), "http://h:80");
  EXPECT_EQ(parsed("https://[::1]/").origin(), "https://[::1]:443");
  EXPECT_EQ(parsed("https://h:8443/").origin(), "https://h:8443");
}

TEST(UrlTest, ToStringRoundTrips) {
  struct Case {
    std::string_view text;
    std::string_view normalised;
  };
  for (auto [text, normalised] : std::vector<Case>{
           {"HTTP://Example.COM", "http://example.com/"},
           {"https://u:p@h:8443/a/../b c?q=1 2#f", "https://u:p@h:8443/b%20c?q=1%202#f"},
           {"http://[::FFFF:1.2.3.4]:80/", "http://[::ffff:1.2.3.4]:80/"},
           {"http://h/p?", "http://h/p?"},
           {"http://h/p#", "http://h/p"},
           {"http://@h/", "http://h/"},
           {"http://h/.//a", "http://h//a"},
       }) {
    Url url = parsed(text);
    EXPECT_EQ(url.to_string(), normalised) << text;
    auto again = Url::parse(url.to_string());
    ASSERT_TRUE(again) << text;
    EXPECT_EQ(*again, url) << text;
  }
}

TEST(UrlTest, ResolvesRfc3986NormalExamples) {
  const std::string_view base = "http://a/b/c/d;p?q";
  struct Case {
    std::string_view reference;
    std::string_view expected;
  };
  for (auto [reference, expected] : std::vector<Case>{
           {"https://h/x", "https://h/x"},  // "g:h" adapted: an absolute reference
           {"g", "http://a/b/c/g"},
           {"./g", "http://a/b/c/g"},
           {"g/", "http://a/b/c/g/"},
           {"/g", "http://a/g"},
           {"//g", "http://g/"},
           {"?y", "http://a/b/c/d;p?y"},
           {"g?y", "http://a/b/c/g?y"},
           {"#s", "http://a/b/c/d;p?q#s"},
           {"g#s", "http://a/b/c/g#s"},
           {"g?y#s", "http://a/b/c/g?y#s"},
           {";x", "http://a/b/c/;x"},
           {"g;x", "http://a/b/c/g;x"},
           {"g;x?y#s", "http://a/b/c/g;x?y#s"},
           {"", "http://a/b/c/d;p?q"},
           {".", "http://a/b/c/"},
           {"./", "http://a/b/c/"},
           {"..", "http://a/b/"},
           {"../", "http://a/b/"},
           {"../g", "http://a/b/g"},
           {"../..", "http://a/"},
           {"../../", "http://a/"},
           {"../../g", "http://a/g"},
       }) {
    EXPECT_EQ(resolved(base, reference), expected) << reference;
  }
}

TEST(UrlTest, ResolvesRfc3986AbnormalExamples) {
  const std::string_view base = "http://a/b/c/d;p?q";
  struct Case {
    std::string_view reference;
    std::string_view expected;
  };
  for (auto [reference, expected] : std::vector<Case>{
           {"../../../g", "http://a/g"},
           {"../../../../g", "http://a/g"},
           {"/./g", "http://a/g"},
           {"/../g", "http://a/g"},
           {"g.", "http://a/b/c/g."},
           {".g", "http://a/b/c/.g"},
           {"g..", "http://a/b/c/g.."},
           {"..g", "http://a/b/c/..g"},
           {"./../g", "http://a/b/g"},
           {"./g/.", "http://a/b/c/g/"},
           {"g/./h", "http://a/b/c/g/h"},
           {"g/../h", "http://a/b/c/h"},
           {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
           {"g;x=1/../y", "http://a/b/c/y"},
           {"g?y/./x", "http://a/b/c/g?y/./x"},
           {"g?y/../x", "http://a/b/c/g?y/../x"},
           {"g#s/./x", "http://a/b/c/g#s/./x"},
           {"g#s/../x", "http://a/b/c/g#s/../x"},
           {"http:g", "http://a/b/c/g"},  // the backward-compatible reading, as browsers do
       }) {
    EXPECT_EQ(resolved(base, reference), expected) << reference;
  }
}

TEST(UrlTest, ResolvesSchemeRelativeReferences) {
  Url url = resolved_url("https://u@a:8443/b?q#f", "//Other.Host/p");
  EXPECT_EQ(url.to_string(), "https://other.host/p");
  EXPECT_EQ(url.port(), 443);
  EXPECT_EQ(url.userinfo(), "");
  EXPECT_EQ(resolved("http://a/b", "//[::1]:8080"), "http://[::1]:8080/");
}

TEST(UrlTest, ResolvesQueryOnlyReferencesKeepingThePath) {
  EXPECT_EQ(resolved("http://a/b/c?old#f", "?q"), "http://a/b/c?q");
  EXPECT_EQ(resolved("http://a/b/c?old", "?"), "http://a/b/c?");
}

TEST(UrlTest, ResolvesFragmentOnlyReferencesKeepingPathAndQuery) {
  EXPECT_EQ(resolved("http://u@a:81/b/c?q#old", "#f"), "http://u@a:81/b/c?q#f");
}

TEST(UrlTest, ResolvesAbsoluteReferencesToThemselves) {
  EXPECT_EQ(resolved("http://a/b/c?q", "HTTPS://Other/x/../y?z#w"), "https://other/y?z#w");
  EXPECT_EQ(resolved("http://a/b", "http://b/c"), "http://b/c");
}

TEST(UrlTest, ResolvingKeepsBaseAuthorityAndDropsBaseFragment) {
  Url url = resolved_url("https://u:p@a:8443/b/c#frag", "d");
  EXPECT_EQ(url.to_string(), "https://u:p@a:8443/b/d");
  EXPECT_TRUE(url.has_explicit_port());
}

TEST(UrlTest, ResolvingEncodesAndTrimsTheReference) {
  EXPECT_EQ(resolved("http://a/b/c", "  d e/\xc3\xa9?x y#z w\r\n"), "http://a/b/d%20e/%C3%A9?x%20y#z%20w");
  EXPECT_EQ(resolved("http://a/b/c", "/a%2Fb"), "http://a/a%2Fb");
}

TEST(UrlTest, ResolvingRefusesInvalidReferences) {
  Url base = parsed("http://a/b/c");
  EXPECT_TRUE(IsConfigError(base.resolve("ftp://h/x"), {"unsupported scheme \"ftp\""}));
  EXPECT_TRUE(IsConfigError(base.resolve("mailto:x@y"), {"unsupported scheme \"mailto\""}));
  EXPECT_TRUE(IsConfigError(base.resolve("https:x"), {"expected \"//\""}));
  EXPECT_TRUE(IsConfigError(base.resolve("/x\r\nSet-Cookie: a=b"), {"invalid character '\\r' at column 3"}));
  EXPECT_TRUE(IsConfigError(base.resolve("x%4"), {"malformed percent-escape \"%4\" at column 2"}));
  EXPECT_TRUE(IsConfigError(base.resolve("//h:99999/"), {"invalid port \"99999\" (column 5)"}));
  EXPECT_TRUE(IsConfigError(base.resolve("//"), {"missing host"}));
  EXPECT_TRUE(IsConfigError(base.resolve("?a#%"), {"malformed percent-escape"}));
}

TEST(UrlTest, PercentDecodeDecodesEscapesAndLeavesTheRest) {
  EXPECT_EQ(*percent_decode("a%20b+c%2F%2f%C3%A9"), "a b+c//\xc3\xa9");
  EXPECT_EQ(*percent_decode(""), "");
  EXPECT_EQ(*percent_decode("%00"), std::string(1, '\0'));
}

TEST(UrlTest, PercentDecodeRefusesMalformedEscapes) {
  EXPECT_TRUE(IsConfigError(percent_decode("ab%4"), {"malformed percent-escape \"%4\" at column 3"}));
  EXPECT_TRUE(IsConfigError(percent_decode("%zz"), {"\"%zz\" at column 1"}));
  EXPECT_TRUE(IsConfigError(percent_decode("%"), {"\"%\""}));
}

TEST(UrlTest, PercentEncodeKeepsOnlyUnreservedAndRequestedCharacters) {
  EXPECT_EQ(percent_encode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(percent_encode("a b/c?d%\xc3\xa9"), "a%20b%2Fc%3Fd%25%C3%A9");
  EXPECT_EQ(percent_encode("a b/c?d", "/?"), "a%20b/c?d");
  EXPECT_EQ(percent_encode(std::string_view("\0\n", 2)), "%00%0A");
  EXPECT_EQ(*percent_decode(percent_encode("any \xff bytes/%")), "any \xff bytes/%");
}

}  // namespace
}  // namespace errand::http
