#include "http/h1/serialize.hpp"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace errand::http::h1 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr HeadDefaults kDefaults{"errand/test", "gzip, br"};

Request make(std::string_view method, std::string_view url) {
  auto r = Request::make(method, url);
  EXPECT_TRUE(r.has_value()) << method << ' ' << url << ": " << (r ? "" : r.error().describe());
  return r ? std::move(*r) : Request{};
}

// The head split into lines (without CRLF); fails the test unless it ends in an empty line
// and holds no bare CR or LF.
std::vector<std::string> lines(const std::string& head) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    auto eol = head.find("\r\n", pos);
    if (eol == std::string::npos) {
      EXPECT_EQ(pos, head.size()) << "trailing bytes after the last CRLF: " << head.substr(pos);
      break;
    }
    out.push_back(head.substr(pos, eol - pos));
    EXPECT_EQ(out.back().find_first_of("\r\n"), std::string::npos) << "bare CR or LF in: " << out.back();
    pos = eol + 2;
  }
  EXPECT_FALSE(out.empty());
  if (!out.empty()) {
    EXPECT_EQ(out.back(), "") << "the head must end with an empty line";
    out.pop_back();
  }
  return out;
}

std::size_t count_lines_starting(const std::vector<std::string>& ls, std::string_view prefix) {
  std::size_t n = 0;
  for (const auto& l : ls)
    if (l.size() >= prefix.size() && iequals(std::string_view(l).substr(0, prefix.size()), prefix)) ++n;
  return n;
}

TEST(SerializeHeadTest, WritesTheExactHeadOfASimpleGet) {
  auto req = make("GET", "http://example.com/");
  EXPECT_EQ(serialize_head(req, std::nullopt, kDefaults),
            "GET / HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "User-Agent: errand/test\r\n"
            "Accept: */*\r\n"
            "Accept-Encoding: gzip, br\r\n"
            "\r\n");
}

TEST(SerializeHeadTest, RequestLineCarriesPathAndQueryButNotTheFragment) {
  auto req = make("DELETE", "http://example.com/a/b%20c?x=1&y=two#section");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  ASSERT_FALSE(ls.empty());
  EXPECT_EQ(ls[0], "DELETE /a/b%20c?x=1&y=two HTTP/1.1");
}

TEST(SerializeHeadTest, HostOmitsTheSchemesDefaultPort) {
  EXPECT_THAT(lines(serialize_head(make("GET", "http://example.com:80/"), std::nullopt, kDefaults)),
              ::testing::Contains("Host: example.com"));
  EXPECT_THAT(lines(serialize_head(make("GET", "https://example.com:443/"), std::nullopt, kDefaults)),
              ::testing::Contains("Host: example.com"));
}

TEST(SerializeHeadTest, HostIncludesANonDefaultPort) {
  auto ls = lines(serialize_head(make("GET", "http://example.com:8080/x"), std::nullopt, kDefaults));
  ASSERT_GE(ls.size(), 2u);
  EXPECT_EQ(ls[1], "Host: example.com:8080");
  auto tls = lines(serialize_head(make("GET", "https://example.com:80/x"), std::nullopt, kDefaults));
  ASSERT_GE(tls.size(), 2u);
  EXPECT_EQ(tls[1], "Host: example.com:80");
}

TEST(SerializeHeadTest, HostBracketsIpv6Literals) {
  auto ls = lines(serialize_head(make("GET", "http://[::1]:8443/"), std::nullopt, kDefaults));
  ASSERT_GE(ls.size(), 2u);
  EXPECT_EQ(ls[1], "Host: [::1]:8443");
  auto default_port = lines(serialize_head(make("GET", "http://[2001:db8::1]/"), std::nullopt, kDefaults));
  ASSERT_GE(default_port.size(), 2u);
  EXPECT_EQ(default_port[1], "Host: [2001:db8::1]");
}

TEST(SerializeHeadTest, UserHostHeaderReplacesTheUrlsAndComesFirst) {
  auto req = make("GET", "http://10.0.0.1:8080/");
  req.headers.add("X-First", "1");
  req.headers.add("host", "api.internal");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  ASSERT_GE(ls.size(), 3u);
  EXPECT_EQ(ls[1], "Host: api.internal");
  EXPECT_EQ(ls[2], "X-First: 1");
  EXPECT_EQ(count_lines_starting(ls, "host:"), 1u);
}

TEST(SerializeHeadTest, UserHeadersFollowHostInTheirOrderAndSpelling) {
  auto req = make("GET", "http://example.com/");
  req.headers.add("x-b", "2");
  req.headers.add("X-A", "1");
  req.headers.add("X-Multi", "first");
  req.headers.add("X-Multi", "second");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  ASSERT_GE(ls.size(), 6u);
  EXPECT_EQ(ls[1], "Host: example.com");
  EXPECT_EQ(ls[2], "x-b: 2");
  EXPECT_EQ(ls[3], "X-A: 1");
  EXPECT_EQ(ls[4], "X-Multi: first");
  EXPECT_EQ(ls[5], "X-Multi: second");
}

TEST(SerializeHeadTest, RequestTraceparentReplacesEveryTraceparentHeaderOfTheCaller) {
  auto req = make("GET", "http://example.com/");
  req.headers.add("TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  req.headers.add("X-A", "1");
  req.headers.add("traceparent", "00-11111111111111111111111111111111-2222222222222222-01");
  std::string_view ours = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
  req.traceparent.emplace();
  ours.copy(req.traceparent->data(), req.traceparent->size());
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  EXPECT_EQ(count_lines_starting(ls, "traceparent:"), 1u);
  EXPECT_THAT(ls, ::testing::Contains("traceparent: " + std::string(ours)));
  EXPECT_THAT(ls, ::testing::Contains("X-A: 1"));
  // The caller's headers are left as they were: the next attempt gets a traceparent of its own.
  EXPECT_EQ(req.headers.get_all("traceparent").size(), 2u);
}

TEST(SerializeHeadTest, WithoutRequestTraceparentTheCallersHeaderGoesAsItIs) {
  auto req = make("GET", "http://example.com/");
  req.headers.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  EXPECT_THAT(ls, ::testing::Contains("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_EQ(count_lines_starting(ls, "traceparent:"), 1u);
}

TEST(SerializeHeadTest, DefaultsAreAddedOnlyWhenTheUserSetNone) {
  auto req = make("GET", "http://example.com/");
  req.headers.add("user-agent", "mine/1.0");
  req.headers.add("ACCEPT", "application/json");
  req.headers.add("Accept-Encoding", "identity");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  EXPECT_THAT(ls, ElementsAre("GET / HTTP/1.1", "Host: example.com", "user-agent: mine/1.0",
                              "ACCEPT: application/json", "Accept-Encoding: identity"));
}

TEST(SerializeHeadTest, EmptyDefaultsAddNoUserAgentOrAcceptEncoding) {
  auto ls = lines(serialize_head(make("GET", "http://example.com/"), std::nullopt, HeadDefaults{}));
  EXPECT_THAT(ls, ElementsAre("GET / HTTP/1.1", "Host: example.com", "Accept: */*"));
}

TEST(SerializeHeadTest, BodyLengthWritesContentLength) {
  auto ls = lines(serialize_head(make("POST", "http://example.com/items"), 17, kDefaults));
  EXPECT_EQ(count_lines_starting(ls, "content-length:"), 1u);
  EXPECT_THAT(ls, ::testing::Contains("Content-Length: 17"));
}

TEST(SerializeHeadTest, UserFramingHeadersAreReplacedByTheTransports) {
  auto req = make("POST", "http://example.com/items");
  req.headers.add("Content-Length", "999");
  req.headers.add("transfer-encoding", "chunked");
  req.headers.add("X-Keep", "yes");
  auto ls = lines(serialize_head(req, 5, kDefaults));
  EXPECT_EQ(count_lines_starting(ls, "content-length:"), 1u);
  EXPECT_THAT(ls, ::testing::Contains("Content-Length: 5"));
  EXPECT_EQ(count_lines_starting(ls, "transfer-encoding:"), 0u);
  EXPECT_THAT(ls, ::testing::Contains("X-Keep: yes"));
}

TEST(SerializeHeadTest, UserContentLengthIsDroppedWhenThereIsNoBody) {
  auto req = make("GET", "http://example.com/");
  req.headers.add("Content-Length", "10");
  auto ls = lines(serialize_head(req, std::nullopt, kDefaults));
  EXPECT_EQ(count_lines_starting(ls, "content-length:"), 0u);
}

TEST(SerializeHeadTest, EmptyPostPutAndPatchSendContentLengthZero) {
  for (auto method : {"POST", "PUT", "PATCH"}) {
    auto ls = lines(serialize_head(make(method, "http://example.com/"), std::nullopt, kDefaults));
    EXPECT_THAT(ls, ::testing::Contains("Content-Length: 0")) << method;
    EXPECT_EQ(count_lines_starting(ls, "content-length:"), 1u) << method;
  }
}

TEST(SerializeHeadTest, ZeroLengthBodyIsContentLengthZero) {
  auto ls = lines(serialize_head(make("POST", "http://example.com/"), 0, kDefaults));
  EXPECT_THAT(ls, ::testing::Contains("Content-Length: 0"));
  EXPECT_EQ(count_lines_starting(ls, "content-length:"), 1u);
}

TEST(SerializeHeadTest, BodylessGetHeadDeleteSendNoContentLength) {
  for (auto method : {"GET", "HEAD", "DELETE", "OPTIONS"}) {
    auto head = serialize_head(make(method, "http://example.com/"), std::nullopt, kDefaults);
    EXPECT_THAT(head, Not(HasSubstr("Content-Length"))) << method;
  }
}

TEST(SerializeHeadTest, CustomMethodGoesOnTheRequestLineVerbatim) {
  auto ls = lines(serialize_head(make("PROPFIND", "http://example.com/dav/"), std::nullopt, kDefaults));
  ASSERT_FALSE(ls.empty());
  EXPECT_EQ(ls[0], "PROPFIND /dav/ HTTP/1.1");
}

TEST(ValidateRequestTest, AcceptsTokenMethods) {
  for (auto method : {"GET", "POST", "PROPFIND", "M-SEARCH", "X_CUSTOM.1"}) {
    Request req;
    req.method = method;
    EXPECT_TRUE(validate_request(req).has_value()) << method;
  }
}

TEST(ValidateRequestTest, RefusesMethodsThatAreNotTokens) {
  for (const std::string& method : {std::string(""), std::string("GE T"), std::string("GET\r\nX-Injected: 1"),
                                    std::string("GET/"), std::string("G\xc3\x89T"), std::string("GET\t"),
                                    std::string("GET\0", 4)}) {
    Request req;
    req.method = method;
    auto r = validate_request(req);
    ASSERT_FALSE(r.has_value()) << method;
    EXPECT_EQ(r.error().kind(), ErrorKind::config);
    EXPECT_THAT(r.error().message(), HasSubstr("invalid HTTP method"));
  }
}

TEST(ValidateRequestTest, RefusesHeaderInjectionInAValue) {
  Request req;
  req.headers.add("X-Ok", "fine");
  req.headers.add("X-Evil", "a\r\nSet-Cookie: x=1");
  auto r = validate_request(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::config);
  EXPECT_THAT(r.error().message(), HasSubstr("X-Evil"));
}

TEST(ValidateRequestTest, RefusesAnInvalidHeaderName) {
  Request req;
  req.headers.add("X Bad", "v");
  auto r = validate_request(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::config);
}

TEST(ValidateRequestTest, RequestMakeRefusesABadMethod) {
  auto r = Request::make("GET /evil HTTP/1.1\r\n", "http://example.com/");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::config);
}

TEST(IsIdempotentTest, FollowsRfc9110) {
  for (auto m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) EXPECT_TRUE(is_idempotent(m)) << m;
  for (auto m : {"POST", "PATCH", "CONNECT", "PROPFIND", ""}) EXPECT_FALSE(is_idempotent(m)) << m;
}

TEST(IsIdempotentTest, MethodsAreCaseSensitive) {
  EXPECT_FALSE(is_idempotent("get"));
  EXPECT_FALSE(is_idempotent("Put"));
}

}  // namespace
}  // namespace errand::http::h1
