#include "load/report.hpp"

#include <gtest/gtest.h>

namespace errand::load {
namespace {

RunPoint point_with(std::uint64_t ok, std::uint64_t status_503, std::uint64_t refused, double seconds) {
  RunPoint p;
  p.connections = 10;
  p.threads = 1;
  p.elapsed_s = seconds;
  for (std::uint64_t i = 0; i < ok; ++i) p.tally.latency.record(1'000'000 + i * 1000);  // 1 ms and up
  p.tally.requests = ok + status_503;
  p.tally.status[200] = ok;
  p.tally.status[503] = status_503;
  p.tally.errors[static_cast<std::size_t>(ErrorKind::connect)] = refused;
  return p;
}

TEST(LoadReport, ConditionsParseWithUnits) {
  auto c = parse_condition("p99>200ms");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->metric, "p99");
  EXPECT_EQ(c->op, ">");
  EXPECT_DOUBLE_EQ(c->value, 200'000);
  auto e = parse_condition("errors >= 0.1%");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->op, ">=");
  EXPECT_TRUE(e->percent);
  EXPECT_DOUBLE_EQ(e->value, 0.001);
  auto r = parse_condition("rps<5000");
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->value, 5000);
  for (const char* bad : {"p99", ">5", "p42>1ms", "p99>fast", "rps<5%", "errors>x"}) {
    auto b = parse_condition(bad);
    ASSERT_FALSE(b) << bad;
    EXPECT_EQ(b.error().kind(), ErrorKind::config);
    EXPECT_NE(b.error().message().find(bad), std::string::npos) << b.error().message();
  }
}

TEST(LoadReport, FailedConditionsNameTheMeasuredValue) {
  RunPoint p = point_with(1000, 10, 0, 2.0);  // 505 req/s, p99 ~1.99 ms, 10 errors of 1010
  std::vector<Condition> conditions;
  for (const char* text : {"p99>1ms", "p99>5ms", "errors>0.5%", "errors>2%", "rps<1000", "rps<100", "requests<1010"}) {
    auto c = parse_condition(text);
    ASSERT_TRUE(c) << text;
    conditions.push_back(*c);
  }
  auto failed = failed_conditions(conditions, p);
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_EQ(failed[0].rfind("p99>1ms: p99 is 1.9", 0), 0u) << failed[0];
  EXPECT_EQ(failed[1], "errors>0.5%: errors is 0.990%");
  EXPECT_EQ(failed[2], "rps<1000: rps is 505.0");
}

TEST(LoadReport, ARunWithoutASingleResponseStillReports) {
  BenchResult r;
  r.options.url = "http://127.0.0.1:9/";
  r.points.push_back(point_with(0, 0, 37, 0.0));
  auto j = to_json(r);
  EXPECT_EQ(j["requests"], 0);
  EXPECT_EQ(j["rps"], 0.0);
  EXPECT_EQ(j["errors"]["connect"], 37);
  EXPECT_EQ(j["errors_total"], 37);
  EXPECT_DOUBLE_EQ(j["error_rate"].get<double>(), 1.0);
  EXPECT_EQ(j["latency_us"]["p99"], 0.0);
  std::string text = text_summary(r);
  EXPECT_NE(text.find("No response was received"), std::string::npos) << text;
  EXPECT_NE(text.find("connect 37"), std::string::npos) << text;
  auto c = parse_condition("errors>0.1%");
  ASSERT_TRUE(c);
  EXPECT_EQ(failed_conditions({*c}, r.points[0]).size(), 1u);
}

TEST(LoadReport, JsonCountsStatusClassesAndHttpFailures) {
  BenchResult r;
  r.options.url = "http://127.0.0.1:9/";
  r.points.push_back(point_with(90, 10, 0, 1.0));
  auto j = to_json(r);
  EXPECT_EQ(j["status"]["200"], 90);
  EXPECT_EQ(j["status"]["503"], 10);
  EXPECT_EQ(j["errors"]["http_status"], 10);
  EXPECT_EQ(j["requests"], 100);
  EXPECT_DOUBLE_EQ(j["error_rate"].get<double>(), 0.1);
  EXPECT_FALSE(j.contains("sweep"));
}

}  // namespace
}  // namespace errand::load
