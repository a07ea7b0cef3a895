// Test support for integration tests: real peers on loopback.
//   Nginx      — an nginx started on free ports (plain and TLS 1.3 with session tickets),
//                with an access log that records the connection serial of each request.
//   run_sync   — runs a coroutine on a Runtime worker and waits for its result.
//   open_and_read — Client::open() and the body read to its end, piece by piece.
//   TargetSuite — a test fixture with one plain-HTTP target server for the whole suite.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>

#include <errand/http/client.hpp>
#include <errand/net/runtime.hpp>

#include "server/target_server.hpp"

namespace errand::testing {

// The value of the sample `series` (name and labels exactly as written) in a Prometheus text
// exposition, NaN when absent.
inline double metric_sample(const std::string& text, const std::string& series) {
  std::string needle = "\n" + series + " ";
  auto at = text.find(needle);
  if (at == std::string::npos) return std::numeric_limits<double>::quiet_NaN();
  return std::stod(text.substr(at + needle.size()));
}

inline std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

template <typename T>
T run_sync(net::Runtime& runtime, boost::asio::awaitable<T> task) {
  return boost::asio::co_spawn(runtime.context(0), std::move(task), boost::asio::use_future).get();
}

// What Client::open() gave, read to the end: the head (its timings final) and the body as the
// pieces read() handed out.
struct Opened {
  http::Response head;
  std::vector<std::string> pieces;
  std::string body() const {
    std::string all;
    for (const auto& p : pieces) all += p;
    return all;
  }
};

inline boost::asio::awaitable<Result<Opened>> open_and_read(http::Client& client, http::Request request) {
  auto stream = co_await client.open(std::move(request));
  if (!stream) co_return fail(std::move(stream.error()));
  Opened opened;
  for (;;) {
    auto piece = co_await stream->read();
    if (!piece) co_return fail(std::move(piece.error()));
    if (piece->empty()) break;
    opened.pieces.emplace_back(*piece);
  }
  EXPECT_TRUE(stream->finished());
  opened.head = std::move(stream->response());
  co_return opened;
}

// A fresh name for a test's own counter, key or host (the target's /flaky and /idempotent
// count per key, for the life of the server).
inline std::string unique_key() {
  static std::mt19937_64 random{std::random_device{}()};
  return std::to_string(random());
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool port_open(std::uint16_t port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

// nginx with one worker on two free loopback ports. Locations:
//   /            200 "hello world\n"
//   /close       200 with Connection: close (keepalive_timeout 0)
//   /big         a 1 MiB file
// The access log line is "<connection serial> <connection requests> <status> <uri>".
class Nginx {
 public:
  Nginx() {
    dir_ = std::filesystem::temp_directory_path() / ("errand-nginx-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter()++));
    std::filesystem::create_directories(dir_ / "logs");
    std::filesystem::create_directories(dir_ / "www");
    port_ = free_port();
    tls_port_ = free_port();
    {
      std::ofstream big(dir_ / "www" / "big", std::ios::binary);
      std::string block(1024, 'x');
      for (int i = 0; i < 1024; ++i) big << block;
    }
    std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
    std::string gen = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + key +
                      " -out " + cert + " -days 2 -subj /CN=localhost -addext "
                      "'subjectAltName=DNS:localhost,IP:127.0.0.1' >/dev/null 2>&1";
    if (std::system(gen.c_str()) != 0) throw std::runtime_error("openssl could not make a certificate");
    // A client certificate for the mutual-TLS server, trusted by nginx as its own CA.
    std::string client_cert = (dir_ / "client.pem").string(), client_key = (dir_ / "client-key.pem").string();
    std::string gen_client = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                             client_key + " -out " + client_cert + " -days 2 -subj /CN=errand-test-client >/dev/null 2>&1";
    if (std::system(gen_client.c_str()) != 0) throw std::runtime_error("openssl could not make a client certificate");
    mtls_port_ = free_port();
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "worker_processes 1;\n"
         << "pid " << (dir_ / "nginx.pid").string() << ";\n"
         << "error_log " << (dir_ / "logs" / "error.log").string() << ";\n"
         << "events { worker_connections 2048; }\n"
         << "http {\n"
         << "  log_format conn '$connection $connection_requests $status $uri';\n"
         << "  access_log " << (dir_ / "logs" / "access.log").string() << " conn;\n"
         << "  keepalive_requests 100000; keepalive_timeout 60s;\n"
         << "  client_body_temp_path " << (dir_ / "tmp").string() << ";\n"
         << "  proxy_temp_path " << (dir_ / "tmp").string() << ";\n"
         << "  fastcgi_temp_path " << (dir_ / "tmp").string() << ";\n"
         << "  uwsgi_temp_path " << (dir_ / "tmp").string() << ";\n"
         << "  scgi_temp_path " << (dir_ / "tmp").string() << ";\n"
         << "  root " << (dir_ / "www").string() << ";\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << ";\n"
         << "    listen 127.0.0.1:" << tls_port_ << " ssl;\n"
         << "    listen [::1]:" << tls_port_ << " ssl;\n"
         << "    ssl_certificate " << cert << "; ssl_certificate_key " << key << ";\n"
         << "    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;\n"
         << "    location = / { return 200 \"hello world\\n\"; }\n"
         << "    location = /close { keepalive_timeout 0; return 200 \"bye\\n\"; }\n"
         << "    location = /short-keepalive { keepalive_timeout 1s; return 200 \"ok\\n\"; }\n"
         << "    location = /big { }\n"
         << "  }\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << mtls_port_ << " ssl;\n"
         << "    ssl_certificate " << cert << "; ssl_certificate_key " << key << ";\n"
         << "    ssl_client_certificate " << client_cert << "; ssl_verify_client on;\n"
         << "    location = / { return 200 \"client $ssl_client_s_dn\\n\"; }\n"
         << "  }\n"
         << "}\n";
    conf.close();
    std::filesystem::create_directories(dir_ / "tmp");
    std::string start = "nginx -c " + (dir_ / "nginx.conf").string() + " -p " + dir_.string() +
                        " -g 'daemon on;' 2>" + (dir_ / "start.err").string();
    if (std::system(start.c_str()) != 0)
      throw std::runtime_error("nginx did not start: " + read_file(dir_ / "start.err"));
    for (int i = 0; i < 100 && !(port_open(port_) && port_open(tls_port_) && port_open(mtls_port_)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  ~Nginx() {
    std::string pid = read_file(dir_ / "nginx.pid");
    if (!pid.empty()) {
      ::kill(std::stoi(pid), SIGTERM);
      for (int i = 0; i < 100 && std::filesystem::exists(dir_ / "nginx.pid"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string tls_url(const std::string& path = "/") const {
    return "https://127.0.0.1:" + std::to_string(tls_port_) + path;
  }
  // The same TLS server over IPv6: the certificate does not name ::1.
  std::string tls_url_v6(const std::string& path = "/") const {
    return "https://[::1]:" + std::to_string(tls_port_) + path;
  }
  std::string cert_file() const { return (dir_ / "cert.pem").string(); }
  // A server that requires a client certificate (client_cert_file / client_key_file).
  std::string mtls_url(const std::string& path = "/") const {
    return "https://127.0.0.1:" + std::to_string(mtls_port_) + path;
  }
  std::string client_cert_file() const { return (dir_ / "client.pem").string(); }
  std::string client_key_file() const { return (dir_ / "client-key.pem").string(); }

  // Access log lines so far (nginx buffers nothing with this configuration).
  std::vector<std::string> access_log() const {
    std::vector<std::string> lines;
    std::istringstream in(read_file(dir_ / "logs" / "access.log"));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // nginx writes a request's line after it has sent the response, so a client that has the
  // response may look before the line is there: waits (bounded) for at least `n` lines.
  std::vector<std::string> access_log_with(std::size_t n) const {
    auto lines = access_log();
    for (int i = 0; i < 200 && lines.size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lines = access_log();
    }
    return lines;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::uint16_t mtls_port_ = 0;
};

class TargetSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server::TargetOptions options;  // plain HTTP on a free loopback port
    target_ = new server::TargetServer(options);
    auto started = target_->start();
    ASSERT_TRUE(started) << started.error().describe();
  }
  static void TearDownTestSuite() {
    delete target_;
    target_ = nullptr;
  }
  static std::string url(const std::string& path) { return target_->base_url() + path; }

  inline static server::TargetServer* target_ = nullptr;
};

}  // namespace errand::testing
