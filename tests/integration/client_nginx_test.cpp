// The client against a real nginx on loopback: pooling, TLS resumption, large bodies, load.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <errand/http/blocking.hpp>
#include <errand/http/client.hpp>

#include "support.hpp"

namespace errand::http {
namespace {

namespace asio = boost::asio;
using testing::Nginx;
using testing::run_sync;

class NginxClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { nginx_ = new Nginx(); }
  static void TearDownTestSuite() {
    delete nginx_;
    nginx_ = nullptr;
  }

  Request get(const std::string& url) {
    auto request = Request::make("GET", url);
    EXPECT_TRUE(request.has_value()) << request.error().describe();
    return *request;
  }

  Result<Response> send(Client& client, Request request) {
    return run_sync(runtime_, client.send(std::move(request)));
  }

  ClientOptions options() {
    ClientOptions o;
    o.runtime = &runtime_;
    o.tls.ca_file = nginx_->cert_file();
    return o;
  }

  static Nginx* nginx_;
  net::Runtime runtime_{{.threads = 1}};
};

Nginx* NginxClientTest::nginx_ = nullptr;

// Connection serials that served requests for `uri`, from nginx's access log.
std::map<std::string, int> requests_per_connection(const std::vector<std::string>& log, const std::string& uri) {
  std::map<std::string, int> out;
  for (const auto& line : log) {
    std::istringstream in(line);
    std::string serial, count, status, path;
    in >> serial >> count >> status >> path;
    if (path == uri) ++out[serial];
  }
  return out;
}

TEST_F(NginxClientTest, HundredSequentialGetsShareOneConnectionOnTheServerSide) {
  Client client(options());
  auto before = nginx_->access_log().size();
  for (int i = 0; i < 100; ++i) {
    auto res = send(client, get(nginx_->url("/?seq")));
    ASSERT_TRUE(res) << res.error().describe();
    ASSERT_EQ(res->status, 200);
    ASSERT_EQ(res->body, "hello world\n");
    EXPECT_EQ(res->reused, i > 0);
  }
  auto log = nginx_->access_log_with(before + 100);
  ASSERT_EQ(log.size() - before, 100u);
  auto per_connection = requests_per_connection(std::vector<std::string>(log.begin() + before, log.end()), "/");
  ASSERT_EQ(per_connection.size(), 1u) << "nginx saw more than one connection";
  EXPECT_EQ(per_connection.begin()->second, 100);
  EXPECT_EQ(client.stats().opened, 1u);
  EXPECT_EQ(client.stats().reused, 99u);
}

TEST_F(NginxClientTest, NewConnectionResumesTheTlsSession) {
  Client client(options());
  // /close makes nginx close each connection, so every request needs a new handshake.
  auto first = send(client, get(nginx_->tls_url("/close")));
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->status, 200);
  EXPECT_FALSE(first->tls_resumed);
  EXPECT_GT(first->timings.tls.count(), 0);
  for (int i = 0; i < 3; ++i) {
    auto again = send(client, get(nginx_->tls_url("/close")));
    ASSERT_TRUE(again) << again.error().describe();
    EXPECT_EQ(again->status, 200);
    EXPECT_FALSE(again->reused);
    EXPECT_TRUE(again->tls_resumed) << "handshake " << i + 2 << " was not resumed";
  }
  auto stats = client.stats();
  EXPECT_EQ(stats.tls_full_handshakes, 1u);
  EXPECT_EQ(stats.tls_resumed_handshakes, 3u);
}

TEST_F(NginxClientTest, UnknownCertificateFailsVerificationUnlessInsecure) {
  ClientOptions strict;
  strict.runtime = &runtime_;
  Client client(strict);
  auto res = send(client, get(nginx_->tls_url("/")));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().kind(), ErrorKind::tls);
  EXPECT_NE(res.error().message().find("certificate verify failed"), std::string::npos) << res.error().message();

  ClientOptions insecure = strict;
  insecure.tls.insecure = true;
  Client lenient(insecure);
  auto ok = send(lenient, get(nginx_->tls_url("/")));
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(NginxClientTest, CertificateMustNameTheHostConnectedTo) {
  // The certificate names localhost and 127.0.0.1, not ::1.
  Client client(options());
  auto by_ip = send(client, get(nginx_->tls_url("/")));
  ASSERT_TRUE(by_ip) << by_ip.error().describe();
  std::string by_name_url = nginx_->tls_url("/");
  by_name_url.replace(by_name_url.find("127.0.0.1"), 9, "localhost");
  auto by_name = send(client, get(by_name_url));
  ASSERT_TRUE(by_name) << by_name.error().describe();
  auto unnamed = send(client, get(nginx_->tls_url_v6("/")));
  ASSERT_FALSE(unnamed);
  EXPECT_EQ(unnamed.error().kind(), ErrorKind::tls);
  EXPECT_NE(unnamed.error().message().find("certificate verify failed"), std::string::npos)
      << unnamed.error().message();
}

TEST_F(NginxClientTest, ClientCertificateIsPresentedForMutualTls) {
  Client anonymous(options());
  auto refused = send(anonymous, get(nginx_->mtls_url("/")));
  ASSERT_TRUE(refused) << refused.error().describe();
  EXPECT_EQ(refused->status, 400) << "nginx answers 400 when no client certificate is sent";

  ClientOptions o = options();
  o.tls.cert_file = nginx_->client_cert_file();
  o.tls.key_file = nginx_->client_key_file();
  Client with_cert(o);
  auto res = send(with_cert, get(nginx_->mtls_url("/")));
  ASSERT_TRUE(res) << res.error().describe();
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("errand-test-client"), std::string::npos) << res->body;
}

TEST_F(NginxClientTest, UnreadableClientCertificateIsAConfigError) {
  ClientOptions o = options();
  o.tls.cert_file = "/nonexistent/client.pem";
  Client client(o);
  auto res = send(client, get(nginx_->tls_url("/")));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().kind(), ErrorKind::config);
  EXPECT_NE(res.error().message().find("/nonexistent/client.pem"), std::string::npos);
}

TEST_F(NginxClientTest, OneMebibyteBodyArrivesWhole) {
  Client client(options());
  auto res = send(client, get(nginx_->url("/big")));
  ASSERT_TRUE(res) << res.error().describe();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body.size(), 1u << 20);
  EXPECT_EQ(res->body.find_first_not_of('x'), std::string::npos);
}

TEST_F(NginxClientTest, ServerClosedIdleConnectionIsReplacedWithoutFailingTheRequest) {
  Client client(options());
  auto first = send(client, get(nginx_->url("/short-keepalive")));
  ASSERT_TRUE(first) << first.error().describe();
  // nginx closes the idle connection after 1 s; the next request must not see that.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto second = send(client, get(nginx_->url("/short-keepalive")));
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(second->status, 200);
  EXPECT_FALSE(second->reused);
  EXPECT_EQ(client.stats().opened, 2u);
}

TEST_F(NginxClientTest, ThousandConcurrentRequestsOverAHundredConnectionsAllSucceed) {
  ClientOptions o = options();
  o.pool.max_per_origin = 100;
  Client client(o);
  constexpr int total = 1000;
  struct Tally {
    int ok = 0;
    std::vector<std::string> errors;
  };
  auto tally = run_sync(runtime_, [&]() -> asio::awaitable<Tally> {
    Tally t;
    int pending = total;
    asio::steady_timer done(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
    for (int i = 0; i < total; ++i) {
      asio::co_spawn(
          co_await asio::this_coro::executor,
          [&]() -> asio::awaitable<void> {
            auto res = co_await client.send(get(nginx_->url("/")));
            if (res && res->status == 200 && res->body == "hello world\n") ++t.ok;
            else t.errors.push_back(res ? "status " + std::to_string(res->status) : res.error().describe());
            if (--pending == 0) done.cancel();
          },
          asio::detached);
    }
    co_await done.async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled by the last request
    co_return t;
  }());
  EXPECT_EQ(tally.ok, total);
  EXPECT_TRUE(tally.errors.empty()) << tally.errors.size() << " errors, first: " << tally.errors.front();
  auto stats = client.stats();
  EXPECT_LE(stats.opened, 100u);
  EXPECT_GE(stats.opened, 2u) << "requests were not concurrent";
  EXPECT_EQ(stats.requests, static_cast<std::uint64_t>(total));
}

TEST_F(NginxClientTest, BlockingFacadeNeedsNoConfiguration) {
  auto res = errand::http::get(nginx_->url("/"));
  ASSERT_TRUE(res) << res.error().describe();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "hello world\n");
  auto again = errand::http::get(nginx_->url("/"));
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_TRUE(again->reused);
}

}  // namespace
}  // namespace errand::http
