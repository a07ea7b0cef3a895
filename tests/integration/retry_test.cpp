// The retry layer on a real Client against the target server: attempts, their delays, the
// tiers, idempotency, deadlines, the budget, cancellation during a backoff.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <random>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <errand/http/client.hpp>
#include <errand/resilience/idempotency.hpp>
#include <errand/resilience/retry.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::duration<double, std::milli>;

class RetryTest : public testing::TargetSuite {
 protected:
  http::Client client(RetryPolicy policy, BudgetOptions budget = {}) {
    http::ClientOptions o;
    o.runtime = &runtime_;
    o.middleware.push_back(retry(std::move(policy), budget));
    return http::Client(o);
  }
  Result<http::Response> send(http::Client& c, const std::string& method, const std::string& u,
                              std::optional<std::string> idempotency_key = std::nullopt) {
    auto r = http::Request::make(method, u);
    EXPECT_TRUE(r);
    if (idempotency_key) r->headers.add("Idempotency-Key", *idempotency_key);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }

  // GET `u`, cancelled `wait` after it was sent: the outcome, and how long it took to come
  // after the cancellation was emitted (on the request's own thread).
  std::pair<Result<http::Response>, Clock::duration> cancelled_after(http::Client& c, const std::string& u,
                                                                     Clock::duration wait) {
    auto r = http::Request::make("GET", u);
    EXPECT_TRUE(r);
    asio::cancellation_signal signal;
    auto future = asio::co_spawn(runtime_.context(0), c.send(std::move(*r)),
                                 asio::bind_cancellation_slot(signal.slot(), asio::use_future));
    std::this_thread::sleep_for(wait);
    std::promise<Clock::time_point> emitted;
    asio::post(runtime_.context(0), [&] {
      emitted.set_value(Clock::now());
      signal.emit(asio::cancellation_type::terminal);
    });
    auto result = future.get();
    auto done = Clock::now();
    return {std::move(result), done - emitted.get_future().get()};
  }

  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(RetryTest, AFlakyEndpointSucceedsOnTheThirdAttemptAfterTheConfiguredDelays) {
  auto c = client(RetryPolicy{});
  auto started = Clock::now();
  auto r = send(c, "GET", url("/flaky?fail=2&key=" + testing::unique_key()));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->attempts.size(), 3u);
  // The delays were slept, not only planned.
  EXPECT_GE(took, r->attempts[1].delay + r->attempts[2].delay);
  EXPECT_EQ(r->attempts[0].status, 503);
  EXPECT_EQ(r->attempts[0].delay, 0ns);
  EXPECT_EQ(r->attempts[1].status, 503);
  EXPECT_EQ(r->attempts[2].status, 200);
  // 200 ms then 400 ms, each within ±15%.
  EXPECT_GE(Ms(r->attempts[1].delay).count(), 170.0);
  EXPECT_LE(Ms(r->attempts[1].delay).count(), 230.0);
  EXPECT_GE(Ms(r->attempts[2].delay).count(), 340.0);
  EXPECT_LE(Ms(r->attempts[2].delay).count(), 460.0);
}


// A hung first attempt (3 s before it answers) is cut off by its own timeout and retried; the
// second call answers at once.
TEST_F(RetryTest, AHungAttemptIsCutOffByItsOwnTimeoutAndRetried) {
  RetryPolicy p;
  p.attempt_timeout = 300ms;
  p.timeout.backoff.base = 1ms;
  auto c = client(p);
  auto started = Clock::now();
  auto r = send(c, "GET", url("/flaky?fail=1&delay=3000&key=" + testing::unique_key()));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, 1500ms);
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].kind, ErrorKind::timeout);
  EXPECT_NE(r->attempts[0].message.find("the attempt's own timeout of 300 ms"), std::string::npos)
      << r->attempts[0].message;
  EXPECT_GE(r->attempts[0].duration, 300ms);
  EXPECT_TRUE(r->attempts[1].ok);
}

// open(): the attempt's own limit ends with its head; the body has the request's deadline (none
// here), so a stream longer than the limit is read to its end.
TEST_F(RetryTest, AnOpenedStreamOutlivesTheAttemptTimeout) {
  RetryPolicy p;
  p.attempt_timeout = 300ms;
  auto c = client(p);
  auto r = http::Request::make("GET", url("/stream/5?interval_ms=150"));  // about 750 ms of body
  ASSERT_TRUE(r);
  auto got = testing::run_sync(runtime_, testing::open_and_read(c, std::move(*r)));
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_GE(got->pieces.size(), 5u);
}

// A layer that sends a copy of an opened request through the client gets that copy's body read:
// the copy does not inherit open()'s "leave the body unread".
class CopySender final : public http::Middleware {
 public:
  asio::awaitable<Result<http::Response>> send(http::Request& request, http::Next next, http::Client& client) override {
    if (!sent_) {
      sent_ = true;
      auto copy = co_await client.send(request);
      copy_body = copy ? copy->body : "failed: " + copy.error().describe();
    }
    co_return co_await next(request);
  }
  std::string copy_body;

 private:
  bool sent_ = false;
};

TEST_F(RetryTest, ALayersOwnSendOfAnOpenedRequestReadsItsBody) {
  auto sender = std::make_shared<CopySender>();
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(sender);
  o.middleware.push_back(retry(RetryPolicy{}));
  http::Client c(o);
  auto r = http::Request::make("GET", url("/stream/3?interval_ms=10"));
  ASSERT_TRUE(r);
  auto streamed = testing::run_sync(runtime_, testing::open_and_read(c, std::move(*r)));
  ASSERT_TRUE(streamed) << streamed.error().describe();
  EXPECT_FALSE(streamed->body().empty());
  EXPECT_EQ(sender->copy_body, streamed->body());
}

// The request's deadline still bounds everything: an attempt timeout longer than what is left
// of it does not apply, and the deadline's timeout is not retried.
TEST_F(RetryTest, TheRequestDeadlineBoundsTheAttemptTimeout) {
  RetryPolicy p;
  p.attempt_timeout = 5s;
  auto c = client(p);
  auto r = http::Request::make("GET", url("/delay/3000"));
  ASSERT_TRUE(r);
  r->timeouts.total = 300ms;
  auto started = Clock::now();
  auto got = testing::run_sync(runtime_, c.send(std::move(*r)));
  EXPECT_LT(Clock::now() - started, 1500ms);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind(), ErrorKind::timeout);
  EXPECT_EQ(got.error().message().find("attempt's own"), std::string::npos) << got.error().message();
  EXPECT_EQ(got.error().attempts().size(), 1u);
}

TEST_F(RetryTest, AnUnresolvableNameIsTriedExactlyTwiceASecondApart) {
  auto c = client(RetryPolicy{});
  auto started = Clock::now();
  auto r = send(c, "GET", "http://errand-" + testing::unique_key() + ".invalid/");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::dns);
  ASSERT_EQ(r.error().attempts().size(), 2u);
  EXPECT_EQ(r.error().attempts()[1].kind, ErrorKind::dns);
  EXPECT_GE(Ms(r.error().attempts()[1].delay).count(), 850.0);
  EXPECT_LE(Ms(r.error().attempts()[1].delay).count(), 1150.0);
  EXPECT_GE(Clock::now() - started, 850ms);
}

TEST_F(RetryTest, RetryAfterIsHonoured) {
  auto c = client(RetryPolicy{});
  auto started = Clock::now();
  auto r = send(c, "GET", url("/flaky?fail=1&retry_after=1&key=" + testing::unique_key()));
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[1].delay, 1s);  // the server's word, not the 200 ms backoff
  EXPECT_GE(Clock::now() - started, 1s);
}

// A 503 that stays a 503: every retry waits what Retry-After says (capped by the policy), and the
// last answer is the caller's.
TEST_F(RetryTest, AStatus503WithRetryAfterIsRetriedAfterTheServersDelayUpToTheCap) {
  RetryPolicy p;
  p.max_retry_after = 300ms;
  auto c = client(p);
  auto started = Clock::now();
  auto r = send(c, "GET", url("/status/503?retry_after=120"));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 503);
  ASSERT_EQ(r->attempts.size(), 3u);
  EXPECT_EQ(r->attempts[1].delay, 300ms);  // 120 s asked, capped; not the 200 ms backoff
  EXPECT_EQ(r->attempts[2].delay, 300ms);  // not the backoff's growth either
  EXPECT_GE(took, 600ms);
}

TEST_F(RetryTest, APostIsRetriedOnlyWithAnIdempotencyKey) {
  auto c = client(RetryPolicy{});
  auto keyless = send(c, "POST", url("/flaky?fail=1&key=" + testing::unique_key()));
  ASSERT_TRUE(keyless);
  EXPECT_EQ(keyless->status, 503);
  EXPECT_EQ(keyless->attempts.size(), 1u);
  auto keyed = send(c, "POST", url("/flaky?fail=1&key=" + testing::unique_key()), "key-" + testing::unique_key());
  ASSERT_TRUE(keyed);
  EXPECT_EQ(keyed->status, 200);
  EXPECT_EQ(keyed->attempts.size(), 2u);
}

TEST_F(RetryTest, NothingRunsPastTheRequestsDeadline) {
  RetryPolicy p;
  p.status = Tier{10, Backoff{300ms, 2.0, 0.0}};
  auto c = client(p);
  auto r = http::Request::make("GET", url("/flaky?fail=10&key=" + testing::unique_key()));
  ASSERT_TRUE(r);
  r->timeouts.total = 1s;  // 0 → 300 ms → 900 ms; the next wait (1.2 s) would end past it
  auto started = Clock::now();
  auto result = testing::run_sync(runtime_, c.send(std::move(*r)));
  auto took = Clock::now() - started;
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(result->attempts.size(), 3u);
  EXPECT_LT(took, 1s);
}

TEST_F(RetryTest, TheBudgetCapsRetriesWhenEverythingFails) {
  RetryPolicy p;
  p.status = Tier{3, Backoff{1ms, 1.0, 0.0}};
  auto c = client(p, BudgetOptions{.ratio = 0.2, .window = 10s, .min_per_second = 0.1});
  std::size_t attempts = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = send(c, "GET", url("/status/503"));
    ASSERT_TRUE(r);
    attempts += r->attempts.size();
  }
  // Without a budget: 150 attempts. With it: 50 + at most 20% of 50 (+ the floor of 1).
  EXPECT_GE(attempts, 50u + 9);
  EXPECT_LE(attempts, 50u + 11);
}

// The other half of cancellation: the attempt under way ends at once, and nothing retries it.
TEST_F(RetryTest, CancellingStopsTheAttemptInFlightAtOnceAndNothingRetriesIt) {
  auto c = client(RetryPolicy{});
  // The request is out after 200 ms; its answer is 4.8 s away.
  auto [result, took] = cancelled_after(c, url("/delay/5000"), 200ms);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::cancelled);
  EXPECT_EQ(result.error().attempts().size(), 1u);
  EXPECT_LT(took, 50ms);
}

TEST_F(RetryTest, CancellingStopsABackoffSleepAtOnce) {
  RetryPolicy p;
  p.status = Tier{3, Backoff{5s, 1.0, 0.0}};
  auto c = client(p);
  // After 300 ms the first attempt is long done: the layer sleeps 5 s.
  auto [result, took] = cancelled_after(c, url("/status/503"), 300ms);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::cancelled);
  EXPECT_EQ(result.error().attempts().size(), 1u);
  EXPECT_LT(took, 10ms);
}

// A TCP relay on loopback to a TLS server that answers its connection number `fail_at` (from 0)
// with plain HTTP instead: that TLS handshake fails, the ones before and after go through. One
// connection at a time, each to its end, which is all the tests below open.
class FlakyTlsRelay {
 public:
  FlakyTlsRelay(std::uint16_t upstream_port, int fail_at) : upstream_port_(upstream_port), fail_at_(fail_at) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at = loopback(0);
    socklen_t size = sizeof at;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(listener_, 8) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &size) != 0)
      throw std::runtime_error("relay: no listening socket");
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FlakyTlsRelay() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  int connections() const { return accepted_; }

 private:
  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(port);
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return at;
  }
  // Waits for `fd` to be readable, 50 ms at a time, until the relay stops.
  bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  void serve() {
    while (readable(listener_)) {
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      int number = accepted_++;
      if (number == fail_at_) {
        static constexpr char not_tls[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        char hello[4096];
        if (readable(client)) (void)::recv(client, hello, sizeof hello, 0);  // the ClientHello
        (void)::send(client, not_tls, sizeof not_tls - 1, MSG_NOSIGNAL);
      } else {
        relay(client);
      }
      ::close(client);
    }
  }
  void relay(int client) {
    int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = loopback(upstream_port_);
    if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      if (upstream >= 0) ::close(upstream);
      return;
    }
    pollfd ends[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    char buffer[16384];
    bool open = true;
    while (open && !stop_) {
      if (::poll(ends, 2, 50) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(ends[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(ends[i].fd, buffer, sizeof buffer, 0);
        open = n > 0 && ::send(ends[1 - i].fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) == n;
      }
    }
    ::close(upstream);
  }

  std::uint16_t upstream_port_;
  int fail_at_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// The TLS tier: a failed handshake is retried once, and the retry does not offer the origin's
// cached session (a session the server may no longer accept is a common cause of the failure).
TEST(TlsRetryTest, AFailedHandshakeIsRetriedOnceWithTheOriginsSessionDropped) {
  testing::Nginx nginx;
  std::string tls = nginx.tls_url("/");
  std::uint16_t tls_port = static_cast<std::uint16_t>(std::stoi(tls.substr(tls.rfind(':') + 1)));
  FlakyTlsRelay relay(tls_port, /*fail_at=*/1);
  net::Runtime runtime{{.threads = 1}};
  RetryPolicy p;
  p.tls = Tier{2, Backoff{50ms, 1.0, 0.0}};  // the default waits 3 s (unit-tested)
  http::ClientOptions o;
  o.runtime = &runtime;
  o.tls.ca_file = nginx.cert_file();
  o.middleware.push_back(retry(p));
  http::Client c(o);
  // nginx closes each connection after /close: every request makes a new handshake.
  std::string at = "https://127.0.0.1:" + std::to_string(relay.port()) + "/close";
  auto first = testing::run_sync(runtime, c.send(*http::Request::make("GET", at)));
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_FALSE(first->tls_resumed);

  auto r = testing::run_sync(runtime, c.send(*http::Request::make("GET", at)));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].kind, ErrorKind::tls);
  EXPECT_EQ(r->attempts[1].delay, 50ms);
  EXPECT_FALSE(r->tls_resumed) << "the retry resumed the session it should have dropped";
  EXPECT_EQ(c.stats().tls_full_handshakes, 2u);
  EXPECT_EQ(relay.connections(), 3);

  // The session of the retry's full handshake is cached again: the next request resumes.
  auto after = testing::run_sync(runtime, c.send(*http::Request::make("GET", at)));
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_TRUE(after->tls_resumed);
}

}  // namespace
}  // namespace errand::resilience

namespace errand::resilience {
namespace {

// The target's /idempotent applies a request once per Idempotency-Key and replays the answer;
// reset_first=1 applies the first call and then resets the connection, so the client sees an
// io error for a request the server did apply.
class IdempotencyTest : public RetryTest {
 protected:
  std::uint64_t applications(const std::string& counter) {
    http::ClientOptions o;
    o.runtime = &runtime_;
    http::Client plain(o);
    auto r = send(plain, "GET", url("/idempotent?peek=1&counter=" + counter));
    EXPECT_TRUE(r);
    auto at = r->body.find("\"applications\":");
    EXPECT_NE(at, std::string::npos) << r->body;
    return std::stoull(r->body.substr(at + 15));
  }
};

TEST_F(IdempotencyTest, APostResetAfterTheServerAppliedItIsAppliedExactlyOnce) {
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(idempotency_keys());
  o.middleware.push_back(retry(RetryPolicy{}));
  http::Client c(o);
  std::string counter = "once-" + testing::unique_key();
  auto r = send(c, "POST", url("/idempotent?reset_first=1&counter=" + counter));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_FALSE(r->attempts[0].ok);
  EXPECT_EQ(r->attempts[0].kind, ErrorKind::io);
  EXPECT_EQ(r->headers.get("Idempotent-Replayed").value_or(""), "true");
  EXPECT_EQ(applications(counter), 1u);
}

TEST_F(IdempotencyTest, WithoutAKeyAForcedRetryAppliesThePostTwice) {
  // Why keys are needed: forcing retries of a keyless POST repeats the side effect.
  RetryPolicy p;
  p.retry_non_idempotent = true;
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(retry(p));
  http::Client c(o);
  std::string counter = "twice-" + testing::unique_key();
  auto r = send(c, "POST", url("/idempotent?reset_first=1&counter=" + counter));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(applications(counter), 2u);
}

// The target remembers a key for ttl_ms: within it a repeat is replayed, after it the same key
// is a new request and is applied again.
TEST_F(IdempotencyTest, TheTargetReplaysAKeyWithinItsTtlAndAppliesItAgainAfter) {
  http::ClientOptions o;
  o.runtime = &runtime_;
  http::Client c(o);
  std::string counter = "ttl-" + testing::unique_key();
  std::string key = "key-" + testing::unique_key();
  std::string at = url("/idempotent?ttl_ms=300&counter=" + counter);
  auto first = send(c, "POST", at, key);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_FALSE(first->headers.get("Idempotent-Replayed"));
  auto repeat = send(c, "POST", at, key);
  ASSERT_TRUE(repeat) << repeat.error().describe();
  EXPECT_EQ(repeat->headers.get("Idempotent-Replayed").value_or(""), "true");
  EXPECT_EQ(repeat->body, first->body);
  EXPECT_EQ(applications(counter), 1u);
  std::this_thread::sleep_for(400ms);
  auto expired = send(c, "POST", at, key);
  ASSERT_TRUE(expired) << expired.error().describe();
  EXPECT_FALSE(expired->headers.get("Idempotent-Replayed"));
  EXPECT_EQ(applications(counter), 2u);
}

TEST_F(IdempotencyTest, AKeyTheUserSetWinsAndGetsNoSecondKey) {
  http::ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(idempotency_keys());
  http::Client c(o);
  auto r = send(c, "POST", url("/echo"), "my-key-" + testing::unique_key());
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("my-key-"), std::string::npos);
  auto fresh = send(c, "POST", url("/echo"));
  ASSERT_TRUE(fresh);
  auto at = fresh->body.find("\"Idempotency-Key\",\"");
  ASSERT_NE(at, std::string::npos) << fresh->body;
  EXPECT_EQ(fresh->body.substr(at + 19 + 14, 1), "7") << fresh->body;  // xxxxxxxx-xxxx-7xxx: UUIDv7
  auto get = send(c, "GET", url("/echo"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body.find("Idempotency-Key"), std::string::npos);  // GET is idempotent already
}

}  // namespace
}  // namespace errand::resilience

namespace errand::resilience {
namespace {

class HedgeTest : public RetryTest {
 protected:
  http::Client hedging_client(std::optional<Duration> hedge_after, BudgetOptions budget = {}) {
    RetryPolicy p;
    p.hedge_after = hedge_after;
    http::ClientOptions o;
    o.runtime = &runtime_;
    o.middleware.push_back(retry(p, budget, SteadyClock::instance(), counters_));
    return http::Client(o);
  }
  std::shared_ptr<RetryCounters> counters_ = std::make_shared<RetryCounters>();
};

TEST_F(HedgeTest, ASlowAttemptGetsAHedgeAndTheFirstAnswerWins) {
  auto c = hedging_client(100ms);
  const auto& counters = counters_;
  // Both copies sleep 400 ms; the first one sent answers first.
  auto started = Clock::now();
  auto r = send(c, "GET", url("/delay/400"));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, 480ms);  // not 400 ms more for the hedge
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_TRUE(r->attempts[0].ok);
  EXPECT_FALSE(r->attempts[0].hedge);
  EXPECT_FALSE(r->attempts[1].ok);
  EXPECT_TRUE(r->attempts[1].hedge);
  EXPECT_EQ(r->attempts[1].kind, ErrorKind::cancelled);
  EXPECT_EQ(r->attempts[1].delay, 100ms);
  EXPECT_EQ(counters->hedges.load(), 1u);
  EXPECT_EQ(counters->hedges_won.load(), 0u);
  EXPECT_EQ(c.stats().opened, 2u);  // the hedge needed a connection of its own

  auto fast = send(c, "GET", url("/ok"));  // answers before the hedge delay: no hedge
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->attempts.size(), 1u);
  EXPECT_EQ(counters->hedges.load(), 1u);
}

// Hedges draw on the retry budget: with none left, a slow attempt runs on alone.
TEST_F(HedgeTest, WithoutBudgetASlowAttemptGetsNoHedge) {
  auto c = hedging_client(100ms, BudgetOptions{.ratio = 0.0, .window = 10s, .min_per_second = 0.0});
  auto started = Clock::now();
  auto r = send(c, "GET", url("/delay/300"));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->attempts.size(), 1u);
  EXPECT_GE(took, 300ms);
  EXPECT_EQ(counters_->hedges.load(), 0u);
  EXPECT_EQ(counters_->budget_exhausted.load(), 1u);
  EXPECT_EQ(c.stats().opened, 1u);
}

TEST_F(HedgeTest, AHedgeOvertakesASlowFirstAttempt) {
  auto c = hedging_client(100ms);
  // The first call waits 3 s before its 503; the second (the hedge) answers 200 at once.
  auto started = Clock::now();
  auto r = send(c, "GET", url("/flaky?fail=1&delay=3000&key=" + testing::unique_key()));
  auto took = Clock::now() - started;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, 1s);
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].kind, ErrorKind::cancelled);  // the slow one, cut off
  EXPECT_FALSE(r->attempts[0].hedge);
  EXPECT_TRUE(r->attempts[1].ok);
  EXPECT_TRUE(r->attempts[1].hedge);
  EXPECT_EQ(r->attempts[1].status, 200);
  EXPECT_EQ(counters_->hedges.load(), 1u);
  EXPECT_EQ(counters_->hedges_won.load(), 1u);
}

// open() through a hedging retry: the winner's body is the one streamed; the loser is cut off
// with its connection.
TEST_F(HedgeTest, AnOpenedRequestIsHedgedAndTheWinnersBodyIsStreamed) {
  auto c = hedging_client(100ms);
  auto r = http::Request::make("GET", url("/flaky?fail=1&delay=3000&key=" + testing::unique_key()));
  ASSERT_TRUE(r);
  auto started = Clock::now();
  auto got = testing::run_sync(runtime_, testing::open_and_read(c, std::move(*r)));
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_LT(Clock::now() - started, 1s);
  const http::Response& head = got->head;
  EXPECT_EQ(head.status, 200);
  ASSERT_EQ(head.attempts.size(), 2u);
  EXPECT_EQ(head.attempts[0].kind, ErrorKind::cancelled);
  EXPECT_TRUE(head.attempts[1].hedge);
  EXPECT_FALSE(got->body().empty());
  EXPECT_EQ(counters_->hedges_won.load(), 1u);
}

TEST_F(HedgeTest, APostWithoutAKeyIsNeverHedged) {
  auto c = hedging_client(50ms);
  const auto& counters = counters_;
  auto r = send(c, "POST", url("/delay/200"));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(counters->hedges.load(), 0u);
  EXPECT_EQ(r->attempts.size(), 1u);
}

}  // namespace
}  // namespace errand::resilience

namespace errand::resilience {
namespace {

TEST_F(RetryTest, ARequestsOwnPolicyWinsOverTheLayers) {
  RetryPolicy layer;
  layer.status.backoff.base = 1ms;
  auto c = client(layer);
  auto own = std::make_shared<RetryPolicy>();
  own->status.max_attempts = 1;  // this step does not retry
  auto r = http::Request::make("GET", url("/flaky?fail=1&key=" + testing::unique_key()));
  ASSERT_TRUE(r);
  r->extensions.insert(own);
  auto once = testing::run_sync(runtime_, c.send(std::move(*r)));
  ASSERT_TRUE(once);
  EXPECT_EQ(once->status, 503);
  EXPECT_EQ(once->attempts.size(), 1u);

  auto layered = send(c, "GET", url("/flaky?fail=1&key=" + testing::unique_key()));  // the layer's policy: retried
  ASSERT_TRUE(layered);
  EXPECT_EQ(layered->status, 200);
  EXPECT_EQ(layered->attempts.size(), 2u);
}

}  // namespace
}  // namespace errand::resilience
