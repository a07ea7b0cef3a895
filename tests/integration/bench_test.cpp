// errand bench's lean engine against real servers: nginx (its access log is the referee for
// counts) and the target server (latency and injected failures). Every test runs on both I/O
// back ends. Runs are short and bounded by -n or -d.
#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <sstream>

#include "load/bench.hpp"
#include "load/report.hpp"
#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::load {
namespace {

using namespace std::chrono_literals;

class BenchTest : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    nginx_ = new testing::Nginx();
    target_ = new server::TargetServer(server::TargetOptions{});
    auto started = target_->start();
    ASSERT_TRUE(started) << started.error().describe();
  }
  static void TearDownTestSuite() {
    delete nginx_;
    delete target_;
  }

  BenchOptions options(const std::string& url) const {
    BenchOptions o;
    o.url = url;
    o.connections = 4;
    o.threads = 2;
    o.duration = 500ms;
    o.timeout = 5s;
    o.backend = GetParam();
    return o;
  }

  static BenchResult run(const BenchOptions& o) {
    auto r = run_bench(o);
    EXPECT_TRUE(r) << r.error().describe();
    if (!r) {  // one empty point, so that the callers' expectations fail rather than crash
      BenchResult empty;
      empty.points.emplace_back();
      return empty;
    }
    EXPECT_EQ(r->points.size(), 1u);
    EXPECT_EQ(r->points.back().tally.backend, o.backend);
    return *r;
  }

  // Lines nginx logged (one per response it sent) for `uri`, and on how many connections.
  static std::pair<std::size_t, std::size_t> nginx_logged(const std::string& uri) {
    std::size_t lines = 0;
    std::set<std::string> connections;
    for (const auto& line : nginx_->access_log()) {
      std::istringstream in(line);
      std::string connection, requests, status, path;
      in >> connection >> requests >> status >> path;
      if (path != uri) continue;
      ++lines;
      connections.insert(connection);
    }
    return {lines, connections.size()};
  }

  static testing::Nginx* nginx_;
  static server::TargetServer* target_;
};

testing::Nginx* BenchTest::nginx_ = nullptr;
server::TargetServer* BenchTest::target_ = nullptr;

TEST_P(BenchTest, CountsExactlyTheResponsesNginxLoggedWarmupSeparately) {
  // A path of its own, so the log lines of other tests don't mix in.
  std::string uri = std::string("/count-") + std::string(to_string(GetParam()));
  auto o = options(nginx_->url(uri));
  o.warmup = 300ms;
  o.duration = 700ms;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_GT(t.requests, 100u);
  EXPECT_GT(t.warmup_requests, 10u);
  EXPECT_EQ(t.status[404], t.requests);
  EXPECT_EQ(t.error_total(), 0u) << t.first_error;
  // nginx writes its log line after sending the response; the engine waited for every response.
  std::this_thread::sleep_for(100ms);
  auto [lines, connections] = nginx_logged(uri);
  EXPECT_EQ(lines, t.requests + t.warmup_requests);
  EXPECT_EQ(connections, 4u);
  EXPECT_EQ(t.connections_opened, 4u);
}

TEST_P(BenchTest, FixedRequestCountIsExactAcrossThreads) {
  std::string uri = std::string("/n-") + std::string(to_string(GetParam()));
  auto o = options(nginx_->url(uri));
  o.requests = 1001;
  o.connections = 7;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 1001u);
  // Without warm-up, the per-second series add up to the totals.
  EXPECT_EQ(std::accumulate(t.per_second.begin(), t.per_second.end(), std::uint64_t{0}), 1001u);
  EXPECT_EQ(std::accumulate(t.per_second_bytes.begin(), t.per_second_bytes.end(), std::uint64_t{0}), t.bytes);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(nginx_logged(uri).first, 1001u);
}

TEST_P(BenchTest, CloseOpensAConnectionPerRequest) {
  std::string uri = std::string("/close-") + std::string(to_string(GetParam()));
  auto o = options(nginx_->url(uri));
  o.requests = 200;
  o.close_each = true;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 200u);
  EXPECT_EQ(t.connections_opened, 200u);
  EXPECT_EQ(t.reused_requests, 0u);
  EXPECT_EQ(t.connect_time.count(), 200u);
  std::this_thread::sleep_for(100ms);
  auto [lines, connections] = nginx_logged(uri);
  EXPECT_EQ(lines, 200u);
  EXPECT_EQ(connections, 200u);
}

TEST_P(BenchTest, PipelinedResponsesAreEachCounted) {
  std::string uri = std::string("/pipeline-") + std::string(to_string(GetParam()));
  auto o = options(nginx_->url(uri));
  o.requests = 403;  // not a multiple of the depth: the last batch is shorter
  o.pipeline = 8;
  auto r = run(o);
  EXPECT_EQ(r.points.back().tally.requests, 403u);
  EXPECT_EQ(r.points.back().tally.error_total(), 0u) << r.points.back().tally.first_error;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(nginx_logged(uri).first, 403u);
}

TEST_P(BenchTest, ServerClosingAfterEachResponseIsNotAnError) {
  auto o = options(nginx_->url("/close"));  // keepalive_timeout 0: Connection: close
  o.requests = 50;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 50u);
  EXPECT_EQ(t.error_total(), 0u) << t.first_error;
  EXPECT_EQ(t.connections_opened, 50u);
}

TEST_P(BenchTest, LatencyOfA20msEndpointIsMeasuredAs20To25ms) {
  auto o = options(target_->base_url() + "/delay/20");
  o.duration = 600ms;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_GT(t.requests, 40u);
  double p50_ms = static_cast<double>(t.latency.percentile(50)) / 1e6;
  EXPECT_GE(p50_ms, 20.0);
  EXPECT_LE(p50_ms, 25.0);
  EXPECT_GE(static_cast<double>(t.latency.min()) / 1e6, 20.0);
}

// With enough connections an io_uring wake-up waits (up to --gather) for the receives of half
// of them, never leaving fewer than 16 requests with the server: counts stay exact, a slow
// server's latency is not stretched, and a slow server does not cost a wake-up per --gather.
TEST_P(BenchTest, GatheringWakeUpsKeepCountsExact) {
  std::string uri = std::string("/gather-") + std::string(to_string(GetParam()));
  auto o = options(nginx_->url(uri));
  o.requests = 3001;
  o.connections = 40;
  o.threads = 1;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  bool uring = GetParam() == Backend::io_uring;
  EXPECT_EQ(t.gather_responses, uring ? 20u : 1u);
  if (uring) {
    EXPECT_GT(t.gather_waits, 0u);
  } else {
    EXPECT_EQ(t.gather_waits, 0u);
  }
  EXPECT_EQ(t.requests, 3001u);
  EXPECT_EQ(t.error_total(), 0u) << t.first_error;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(nginx_logged(uri).first, 3001u);
  auto j = to_json(r);
  EXPECT_EQ(j["gather"]["responses"], t.gather_responses);
  EXPECT_EQ(j["gather"]["max_wait_us"], uring ? 50.0 : 0.0);
  EXPECT_EQ(j["gather"]["waits"], t.gather_waits);
}

TEST_P(BenchTest, GatheringDoesNotStretchTheLatencyOfASlowServer) {
  auto o = options(target_->base_url() + "/delay/20");
  o.connections = 40;
  o.threads = 1;
  o.duration = 600ms;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.gather_responses, GetParam() == Backend::io_uring ? 20u : 1u);
  EXPECT_GT(t.requests, 400u);
  EXPECT_EQ(t.error_total(), 0u) << t.first_error;
  double p50_ms = static_cast<double>(t.latency.percentile(50)) / 1e6;
  EXPECT_GE(p50_ms, 20.0);
  EXPECT_LE(p50_ms, 25.0);
  // A gathering wait that ends empty is followed by an ordinary one: one per burst of
  // responses at most, not one per 50 us of the 20 ms each request waits (about 12,000).
  EXPECT_LT(t.gather_empty_waits, t.requests);
}

TEST_P(BenchTest, GatheringStartsOnlyOnceTlsHandshakesAreDone) {
  auto o = options(nginx_->tls_url("/"));
  o.ca_file = nginx_->cert_file();
  o.requests = 2000;
  o.connections = 40;
  o.threads = 1;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 2000u) << t.first_error;
  EXPECT_EQ(t.tls_full, 40u);
  // Gathering pauses while any connection is opening; it resumes once all 40 are open.
  if (GetParam() == Backend::io_uring) {
    EXPECT_GT(t.gather_waits, 0u);
  }
}

TEST_P(BenchTest, GatheringIsOffWhereItWouldSkewTheMeasurement) {
  auto base = options(nginx_->url("/"));
  base.requests = 60;
  base.connections = 40;
  base.threads = 1;
  bool uring = GetParam() == Backend::io_uring;
  auto gathered = [&](BenchOptions o) { return run(o).points.back().tally.gather_responses; };
  EXPECT_EQ(gathered(base), uring ? 20u : 1u);
  auto o = base;
  o.connections = 17;  // every response leaves fewer than 16 in flight
  EXPECT_EQ(gathered(o), 1u);
  o = base;
  o.connections = 18;
  EXPECT_EQ(gathered(o), uring ? 2u : 1u);
  o = base;
  o.connections = 5;
  o.pipeline = 8;  // counted in connections (one receive completion per batch); 2 keep 16 requests
  EXPECT_EQ(gathered(o), uring ? 2u : 1u);
  o.connections = 3;
  EXPECT_EQ(gathered(o), 1u);
  o = base;
  o.gather = 0ns;
  EXPECT_EQ(gathered(o), 1u);
  o = base;
  o.close_each = true;
  EXPECT_EQ(gathered(o), 1u);
  o = base;
  o.requests = 0;
  o.duration = 200ms;
  o.rate = 400;
  EXPECT_EQ(gathered(o), 1u);
}

TEST_P(BenchTest, InjectedFailuresAreCountedUnderTheirKind) {
  struct Case {
    std::string path;
    ErrorKind kind;
  };
  for (const Case& c : {Case{"/reset", ErrorKind::io}, Case{"/close", ErrorKind::io}}) {
    auto o = options(target_->base_url() + c.path);
    o.requests = 20;
    auto r = run(o);
    const Tally& t = r.points.back().tally;
    EXPECT_EQ(t.requests, 0u) << c.path;
    EXPECT_EQ(t.errors[static_cast<std::size_t>(c.kind)], 20u) << c.path << ": " << t.first_error;
    EXPECT_EQ(t.error_total(), 20u) << c.path;
    EXPECT_NE(text_summary(r).find("No response was received"), std::string::npos);
  }
  auto o = options(target_->base_url() + "/status/503");
  o.requests = 30;
  auto r = run(o);
  auto j = to_json(r);
  EXPECT_EQ(j["requests"], 30);
  EXPECT_EQ(j["status"]["503"], 30);
  EXPECT_EQ(j["errors"]["http_status"], 30);
  EXPECT_EQ(j["errors_total"], 30);
}

TEST_P(BenchTest, AClosedPortIsAConnectErrorAndTheRunEnds) {
  auto o = options("http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  o.duration = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto r = run(o);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 0u);
  EXPECT_GT(t.errors[static_cast<std::size_t>(ErrorKind::connect)], 0u);
  EXPECT_NE(t.first_error.find("refused"), std::string::npos) << t.first_error;
  auto j = to_json(r);
  EXPECT_EQ(j["rps"], 0.0);
  EXPECT_DOUBLE_EQ(j["error_rate"].get<double>(), 1.0);
  // With -n the failed attempts use up the budget: the run ends too.
  o.requests = 25;
  auto counted = run(o);
  EXPECT_EQ(counted.points.back().tally.errors[static_cast<std::size_t>(ErrorKind::connect)], 25u);
}

TEST_P(BenchTest, ASilentServerTimesOutInTheFirstBytePhase) {
  auto o = options(target_->base_url() + "/delay/3000");
  o.connections = 2;
  o.requests = 2;
  o.timeout = 200ms;
  auto started = std::chrono::steady_clock::now();
  auto r = run(o);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.errors[static_cast<std::size_t>(ErrorKind::timeout)], 2u) << t.first_error;
  EXPECT_EQ(t.timeouts_by_phase[static_cast<std::size_t>(Phase::first_byte)], 2u);
}

TEST_P(BenchTest, OpenModelKeepsTheRateAndCorrectsForCoordinatedOmission) {
  auto o = options(nginx_->url("/"));
  o.rate = 200;
  o.duration = 1s;
  auto r = run(o);
  const Tally& steady = r.points.back().tally;
  EXPECT_GE(steady.requests, 170u);
  EXPECT_LE(steady.requests, 230u);
  EXPECT_EQ(steady.corrected_latency.count(), steady.requests);

  // 2 connections to a 20 ms endpoint manage 100 requests/s: asked for 400, they fall behind,
  // and the corrected latency counts the waiting the uncorrected one hides.
  auto slow = options(target_->base_url() + "/delay/20");
  slow.connections = 2;
  slow.rate = 400;
  slow.duration = 800ms;
  auto behind = run(slow);
  const Tally& t = behind.points.back().tally;
  EXPECT_GT(t.requests, 40u);
  EXPECT_LT(t.latency.percentile(99), 30'000'000u);
  EXPECT_GT(t.corrected_latency.percentile(99), 200'000'000u);
}

TEST_P(BenchTest, SweepRunsEachConcurrency) {
  auto o = options(nginx_->url("/"));
  o.duration = 200ms;
  o.sweep = "c=1,3,6";
  auto r = run_bench(o);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->points.size(), 3u);
  EXPECT_EQ(r->points[0].tally.connections_opened, 1u);
  EXPECT_EQ(r->points[1].tally.connections_opened, 3u);
  EXPECT_EQ(r->points[2].tally.connections_opened, 6u);
  auto j = to_json(*r);
  ASSERT_EQ(j["sweep"].size(), 3u);
  EXPECT_EQ(j["sweep"][2]["connections"]["configured"], 6);
  EXPECT_GT(j["sweep"][0]["rps"].get<double>(), 0.0);
}

TEST_P(BenchTest, StreamsReportEventsAndGapsAndAreCutAtTheEnd) {
  auto o = options(target_->base_url() + "/sse/100000?interval_ms=10");
  o.stream = true;
  o.duration = 500ms;
  auto started = std::chrono::steady_clock::now();
  auto r = run(o);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);  // endless streams do not hold the run
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.streams_cut, 4u);
  EXPECT_EQ(t.requests, 0u);
  EXPECT_EQ(t.error_total(), 0u) << t.first_error;
  EXPECT_GE(t.events, 4u * 40);  // 4 streams, one event at once and then every 10 ms
  EXPECT_LE(t.events, 4u * 52);
  EXPECT_EQ(t.first_event.count(), 4u);
  EXPECT_EQ(t.first_byte.count(), 4u);
  EXPECT_LT(t.first_event.percentile(50), 10'000'000u);
  double gap_ms = static_cast<double>(t.event_gap.percentile(50)) / 1e6;
  EXPECT_GE(gap_ms, 9.0);
  EXPECT_LE(gap_ms, 12.0);
  auto j = to_json(r);
  EXPECT_EQ(j["stream"]["cut_at_end"], 4);
  EXPECT_GT(j["stream"]["events_per_s"].get<double>(), 300.0);
}

TEST_P(BenchTest, ChunksAreTheEventsOfAChunkedStream) {
  auto o = options(target_->base_url() + "/stream/5?interval_ms=20");
  o.stream = true;
  o.connections = 2;
  o.requests = 4;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 4u);
  EXPECT_EQ(t.streams_cut, 0u);
  EXPECT_EQ(t.events, 20u);
  EXPECT_EQ(t.event_gap.count(), 16u);
  double gap_ms = static_cast<double>(t.event_gap.percentile(50)) / 1e6;
  EXPECT_GE(gap_ms, 19.0);
  EXPECT_LE(gap_ms, 25.0);
  EXPECT_GE(static_cast<double>(t.latency.min()) / 1e6, 80.0);  // a stream's latency is its whole length
}

TEST_P(BenchTest, HttpsKeepsOneHandshakePerConnection) {
  auto o = options(nginx_->tls_url("/"));
  o.ca_file = nginx_->cert_file();
  o.requests = 200;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 200u) << t.first_error;
  EXPECT_EQ(t.status[200], 200u);
  EXPECT_EQ(t.tls_full, 4u);
  EXPECT_EQ(t.tls_resumed, 0u);
  EXPECT_EQ(t.tls_full_time.count(), 4u);
}

TEST_P(BenchTest, HttpsCloseHandshakesInFullUnlessResumptionIsAsked) {
  auto o = options(nginx_->tls_url("/"));
  o.ca_file = nginx_->cert_file();
  o.requests = 60;
  o.close_each = true;
  auto full = run(o);
  const Tally& f = full.points.back().tally;
  EXPECT_EQ(f.requests, 60u) << f.first_error;
  EXPECT_EQ(f.tls_full, 60u);
  EXPECT_EQ(f.tls_resumed, 0u);
  o.tls_resume = true;
  auto resumed = run(o);
  const Tally& t = resumed.points.back().tally;
  EXPECT_EQ(t.requests, 60u) << t.first_error;
  EXPECT_EQ(t.tls_full + t.tls_resumed, 60u);
  EXPECT_GE(t.tls_resumed, 30u);  // connections that start before a ticket has arrived handshake in full
  EXPECT_EQ(t.tls_resumed_time.count(), t.tls_resumed);
}

TEST_P(BenchTest, AnUntrustedCertificateIsATlsError) {
  auto o = options(nginx_->tls_url("/"));  // self-signed, and no --cacert
  o.requests = 6;
  auto r = run(o);
  const Tally& t = r.points.back().tally;
  EXPECT_EQ(t.requests, 0u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(ErrorKind::tls)], 6u);
  EXPECT_NE(t.first_error.find("certificate verify failed"), std::string::npos) << t.first_error;
  o.insecure = true;
  auto insecure = run(o);
  EXPECT_EQ(insecure.points.back().tally.requests, 6u) << insecure.points.back().tally.first_error;
}

INSTANTIATE_TEST_SUITE_P(Backends, BenchTest, ::testing::Values(Backend::io_uring, Backend::epoll),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// --engine client: the same counting through errand's http::Client.
class ClientEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { nginx_ = new testing::Nginx(); }
  static void TearDownTestSuite() { delete nginx_; }
  static BenchOptions options(const std::string& url) {
    BenchOptions o;
    o.url = url;
    o.engine = BenchOptions::Engine::client;
    o.connections = 4;
    o.threads = 2;
    o.timeout = 5s;
    o.ca_file = nginx_->cert_file();
    return o;
  }
  // With the default retries, on one connection of one thread: what the retry layer did is
  // then exact.
  static BenchOptions retrying_one_by_one(const std::string& url, std::uint64_t requests) {
    BenchOptions o = options(url);
    o.retry = true;
    o.connections = 1;
    o.threads = 1;
    o.requests = requests;
    return o;
  }
  static testing::Nginx* nginx_;
};
testing::Nginx* ClientEngineTest::nginx_ = nullptr;

TEST_F(ClientEngineTest, CountsExactlyWhatNginxLoggedAndCountsAllocations) {
  auto o = options(nginx_->url("/client-engine"));
  o.requests = 600;
  auto r = run_bench(o);
  ASSERT_TRUE(r) << r.error().describe();
  const RunPoint& p = r->points.back();
  EXPECT_EQ(p.tally.requests, 600u);
  EXPECT_EQ(p.tally.status[404], 600u);
  EXPECT_EQ(p.tally.connections_opened, 4u);
  EXPECT_GT(p.allocations_per_request, 1.0);  // a Request copy, a Response, its headers...
  EXPECT_LT(p.allocations_per_request, 100.0);
  std::this_thread::sleep_for(100ms);
  std::size_t logged = 0;
  for (const auto& line : nginx_->access_log()) logged += line.find(" /client-engine") != std::string::npos;
  EXPECT_EQ(logged, 600u);
  auto j = to_json(*r);
  EXPECT_EQ(j["engine"], "client");
  EXPECT_TRUE(j.contains("allocations_per_request"));
}

TEST_F(ClientEngineTest, HttpsCountsFullAndResumedHandshakes) {
  auto o = options(nginx_->tls_url("/"));
  o.requests = 40;
  o.close_each = true;
  auto full = run_bench(o);
  ASSERT_TRUE(full) << full.error().describe();
  EXPECT_EQ(full->points.back().tally.requests, 40u) << full->points.back().tally.first_error;
  EXPECT_EQ(full->points.back().tally.tls_full, 40u);
  EXPECT_EQ(full->points.back().tally.tls_resumed, 0u);
  o.tls_resume = true;
  auto resumed = run_bench(o);
  ASSERT_TRUE(resumed) << resumed.error().describe();
  const Tally& t = resumed->points.back().tally;
  EXPECT_EQ(t.requests, 40u) << t.first_error;
  EXPECT_EQ(t.tls_full + t.tls_resumed, 40u);
  EXPECT_GE(t.tls_resumed, 30u);  // the first connection of each pool slot may handshake in full
  auto j = to_json(*resumed);
  EXPECT_EQ(j["tls"]["resumed"], t.tls_resumed);
}

TEST_F(ClientEngineTest, ErrorsKeepTheirKind) {
  auto o = options("http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  o.requests = 10;
  auto r = run_bench(o);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->points.back().tally.errors[static_cast<std::size_t>(ErrorKind::connect)], 10u);
  o = options(nginx_->tls_url("/"));
  o.ca_file.clear();  // nginx's certificate is self-signed: verification fails
  o.requests = 4;
  r = run_bench(o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->points.back().tally.errors[static_cast<std::size_t>(ErrorKind::tls)], 4u) << r->points.back().tally.first_error;
}

TEST_F(ClientEngineTest, ReportsWhatTheRetryAndBreakerPoliciesDid) {
  auto o = options("http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  o.retry = true;
  o.connections = 1;
  o.requests = 2;  // each: 3 attempts (network tier), 200 + 400 ms apart
  auto r = run_bench(o);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->points.back().tally.retries, 4u);
  EXPECT_EQ(r->points.back().tally.errors[static_cast<std::size_t>(ErrorKind::connect)], 2u);

  o.retry = false;
  o.breaker = true;  // default: opens once 10 calls are in and half of them failed
  o.requests = 30;
  r = run_bench(o);
  ASSERT_TRUE(r) << r.error().describe();
  const Tally& t = r->points.back().tally;
  EXPECT_EQ(t.breaker_openings, 1u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(ErrorKind::connect)], 10u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(ErrorKind::circuit_open)], 20u);
  auto j = to_json(*r);
  EXPECT_EQ(j["policies"]["breaker_openings"], 1);
  EXPECT_EQ(j["errors"]["circuit_open"], 20);
}

// Every request fails (503, retry at once): the client's retry budget (20% of the requests in
// 10 s, at least 3 a second: 30 here) lets the first 15 requests have their two retries and
// refuses the first retry of each of the other 85.
TEST_F(ClientEngineTest, ReportsTheRetriesTheBudgetRefused) {
  server::TargetServer target(server::TargetOptions{});
  ASSERT_TRUE(target.start());
  auto r = run_bench(retrying_one_by_one(target.base_url() + "/status/503?retry_after=0", 100));
  ASSERT_TRUE(r) << r.error().describe();
  const Tally& t = r->points.back().tally;
  EXPECT_EQ(t.retries, 30u);
  EXPECT_EQ(t.budget_exhausted, 85u);
  auto j = to_json(*r);
  EXPECT_EQ(j["policies"]["budget_exhausted"], 85);
  EXPECT_NE(text_summary(*r).find("85 refused by the retry budget"), std::string::npos) << text_summary(*r);
}

TEST_F(ClientEngineTest, ReuseIsPerResponseAndCpuPerRequestCountsFailuresWithRetries) {
  // One request to /flaky?fail=2 with retries: three attempts on one connection, the last two
  // on a reused one, and one response. The pool counts reuse per attempt: 2 of 1 response.
  server::TargetServer target(server::TargetOptions{});
  ASSERT_TRUE(target.start());
  auto r = run_bench(retrying_one_by_one(target.base_url() + "/flaky?fail=2&key=bench-reuse", 1));
  ASSERT_TRUE(r) << r.error().describe();
  const Tally& t = r->points.back().tally;
  ASSERT_EQ(t.requests, 1u) << t.first_error;
  EXPECT_EQ(t.retries, 2u);
  EXPECT_EQ(t.reused_requests, 1u);
  auto j = to_json(*r);
  EXPECT_LE(j["reuse_rate"].get<double>(), 1.0);
  EXPECT_NE(text_summary(*r).find("100.00% of requests on a reused connection"), std::string::npos) << text_summary(*r);

  // Only failures (a refused port, then an open breaker): the CPU is per failed request, not 0.
  auto failing = options("http://127.0.0.1:" + std::to_string(testing::free_port()) + "/");
  failing.breaker = true;
  failing.requests = 30;
  r = run_bench(failing);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->points.back().tally.requests, 0u);
  ASSERT_EQ(r->points.back().tally.error_total(), 30u);
  j = to_json(*r);
  double cpu_s = r->points.back().cpu_s;
  EXPECT_GT(cpu_s, 0.0);
  EXPECT_NEAR(j["cpu_us_per_request"].get<double>(), cpu_s * 1e6 / 30, 0.001);
  EXPECT_NE(text_summary(*r).find("failed ones included"), std::string::npos);
}

TEST(BenchOptionsTest, BadInputIsAConfigErrorBeforeAnyTraffic) {
  auto check = [](BenchOptions o, const std::string& fragment) {
    auto r = run_bench(o);
    ASSERT_FALSE(r) << fragment;
    EXPECT_EQ(r.error().kind(), ErrorKind::config);
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
  };
  BenchOptions o;
  o.url = "http://127.0.0.1:9/";
  o.duration = 100ms;
  auto bad = o;
  bad.url = "http://[::1/";
  auto r = run_bench(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::config);
  bad = o;
  bad.headers = {"NoColon"};
  check(bad, "Name: value");
  bad = o;
  bad.sweep = "x=1";
  check(bad, "--sweep");
  bad = o;
  bad.sweep = "c=1,,2";
  check(bad, "positive number");
  bad = o;
  bad.engine = BenchOptions::Engine::client;
  bad.pipeline = 2;
  check(bad, "--engine client");
  bad = o;
  bad.retry = true;  // the lean engine has no policies
  check(bad, "--engine client");
  bad = o;
  bad.body_file = "/nonexistent/body";
  check(bad, "--body-file");
  bad = o;
  bad.pipeline = 4;
  bad.close_each = true;
  check(bad, "--pipeline");
  bad = o;
  bad.gather = 1ms;  // the loop's timers tick every millisecond at the finest
  check(bad, "--gather");
}

}  // namespace
}  // namespace errand::load
