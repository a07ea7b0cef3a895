#include "load/framer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace errand::load {
namespace {

struct Framed {
  ResponseFramer::Status status;
  std::size_t consumed;  // bytes of the input that belonged to the response
  int code;
  bool keep_alive;
  std::uint64_t body;
  std::string error;
};

// Feeds `wire` in pieces of `step` bytes (0: all at once), then EOF when asked.
Framed frame(const std::string& wire, std::size_t step = 0, bool head = false, bool eof = false,
             std::size_t header_limit = 1 << 20) {
  ResponseFramer f(header_limit);
  f.reset(head);
  std::size_t at = 0;
  auto status = ResponseFramer::Status::need_more;
  while (at < wire.size()) {
    std::size_t n = step ? std::min(step, wire.size() - at) : wire.size() - at;
    std::size_t used = 0;
    status = f.feed(wire.data() + at, n, used);
    at += used;
    if (status != ResponseFramer::Status::need_more) break;
    EXPECT_EQ(used, n) << "need_more must consume everything";
  }
  if (eof && status == ResponseFramer::Status::need_more) status = f.feed_eof();
  return {status, at, f.status(), f.keep_alive(), f.body_bytes(), f.error() ? f.error() : ""};
}

using S = ResponseFramer::Status;

TEST(LoadFramer, ContentLengthResponseAtEverySplit) {
  std::string wire = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n";
  for (std::size_t step = 0; step <= wire.size(); ++step) {
    auto r = frame(wire + "HTTP/1.1 200", step);
    EXPECT_EQ(r.status, S::done) << step;
    EXPECT_EQ(r.consumed, wire.size()) << step;
    EXPECT_EQ(r.code, 200);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.body, 12u);
  }
}

TEST(LoadFramer, ChunkedBodyWithExtensionsAndTrailersAtEverySplit) {
  std::string wire =
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip ,, chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "10\r\n0123456789abcdef\r\n"
      "0\r\nTrailer: x\r\n\r\n";
  for (std::size_t step = 0; step <= wire.size(); ++step) {
    auto r = frame(wire + "NEXT", step);
    EXPECT_EQ(r.status, S::done) << step;
    EXPECT_EQ(r.consumed, wire.size()) << step;
    EXPECT_EQ(r.code, 201);
    EXPECT_EQ(r.body, 21u);
  }
}

TEST(LoadFramer, BodyDelimitedByCloseEndsAtEof) {
  auto r = frame("HTTP/1.1 200 OK\r\n\r\nsome bytes", 3, false, true);
  EXPECT_EQ(r.status, S::done);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.body, 10u);
}

TEST(LoadFramer, NoBodyForHeadAnd204And304) {
  EXPECT_EQ(frame("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 0, true).status, S::done);
  EXPECT_EQ(frame("HTTP/1.1 204 No Content\r\n\r\n").status, S::done);
  auto r = frame("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(r.status, S::done);
  EXPECT_EQ(r.body, 0u);
}

TEST(LoadFramer, InterimResponsesAreSkipped) {
  auto r = frame("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1);
  EXPECT_EQ(r.status, S::done);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, 2u);
}

TEST(LoadFramer, ConnectionSemantics) {
  EXPECT_FALSE(frame("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_FALSE(frame("HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_FALSE(frame("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_TRUE(frame("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
  // Transfer-Encoding and Content-Length together: the body is chunked, the connection not reused.
  auto r = frame("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, S::done);
  EXPECT_EQ(r.body, 1u);
  EXPECT_FALSE(r.keep_alive);
}

TEST(LoadFramer, MalformedInputIsAnErrorWithAReason) {
  for (const char* wire : {
           "HTTP/2.0 200 OK\r\n\r\n",
           "ICY 200 OK\r\n\r\n",
           "HTTP/1.1 20 OK\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
           "HTTP/1.1 101 Switching Protocols\r\n\r\n",
           "HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\xb7\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chun ked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;level, chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;q=\"x, chunked\r\n\r\n0\r\n\r\n",
           // Parameters, valid per RFC 9112 but not read by Beast (the client refuses them too).
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip ; level=9 ;q=\"a\\\"b\", chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chun;e=d ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       }) {
    auto r = frame(wire);
    EXPECT_EQ(r.status, S::error) << wire;
    EXPECT_FALSE(r.error.empty()) << wire;
  }
}

TEST(LoadFramer, HeaderLimitBoundsTheHeadAndChunkExtensions) {
  std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(5000, 'a') + "\r\nContent-Length: 0\r\n\r\n";
  auto r = frame(big, 100, false, false, 1024);
  EXPECT_EQ(r.status, S::error);
  EXPECT_NE(r.error.find("limit"), std::string::npos);
  EXPECT_EQ(frame(big, 100, false, false, 8192).status, S::done);
  std::string ext = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(5000, 'e') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(frame(ext, 7, false, false, 1024).status, S::error);
}

TEST(LoadFramer, TruncatedResponsesFailAtEof) {
  auto none = frame("", 0, false, true);
  EXPECT_EQ(none.status, S::error);
  EXPECT_NE(none.error.find("before the response"), std::string::npos);
  auto partial = frame("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, true);
  EXPECT_EQ(partial.status, S::error);
  EXPECT_NE(partial.error.find("complete"), std::string::npos);
}

TEST(LoadFramer, ResetStartsAFreshResponse) {
  ResponseFramer f;
  std::string a = "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
  std::size_t used = 0;
  ASSERT_EQ(f.feed(a.data(), a.size(), used), S::done);
  EXPECT_FALSE(f.keep_alive());
  f.reset(false);
  EXPECT_FALSE(f.started());
  std::string b = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(f.feed(b.data(), b.size(), used), S::done);
  EXPECT_EQ(f.status(), 200);
  EXPECT_TRUE(f.keep_alive());
  EXPECT_EQ(f.body_bytes(), 0u);
}

struct Recorder final : BodyObserver {
  std::string body;
  int chunks = 0;
  void on_body(const char* data, std::size_t length) override { body.append(data, length); }
  void on_chunk() override { ++chunks; }
};

TEST(LoadFramer, AnObserverSeesTheBodyAndEachChunkAtEverySplit) {
  std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\ndata: \r\n3\r\nx\n\n\r\n0\r\n\r\n";
  for (std::size_t step = 1; step <= wire.size(); ++step) {
    Recorder seen;
    ResponseFramer f;
    f.observe(&seen);
    f.reset(false);
    std::size_t at = 0, used = 0;
    auto status = ResponseFramer::Status::need_more;
    while (at < wire.size() && status == ResponseFramer::Status::need_more) {
      status = f.feed(wire.data() + at, std::min(step, wire.size() - at), used);
      at += used;
    }
    ASSERT_EQ(status, ResponseFramer::Status::done) << step;
    EXPECT_EQ(seen.body, "data: x\n\n") << step;
    EXPECT_EQ(seen.chunks, 2) << step;
    EXPECT_TRUE(f.event_stream());
  }
  ResponseFramer plain;
  plain.reset(false);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-streamer\r\nContent-Length: 0\r\n\r\n";
  std::size_t used = 0;
  ASSERT_EQ(plain.feed(head.data(), head.size(), used), S::done);
  EXPECT_FALSE(plain.event_stream());
}

}  // namespace
}  // namespace errand::load
