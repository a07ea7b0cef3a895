#include "load/histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace errand::load {
namespace {

TEST(LoadHistogram, EveryValueIsReportedWithinOnePercentFromOneMicrosecondToOneHundredSeconds) {
  for (std::uint64_t v = 1000; v <= Histogram::max_value_ns; v = v * 1013 / 1000 + 1) {
    std::uint64_t edge = Histogram::bucket_upper_edge(Histogram::bucket_index(v));
    ASSERT_GE(edge, v);
    ASSERT_LE(static_cast<double>(edge - v) / static_cast<double>(v), 0.01) << v;
  }
}

TEST(LoadHistogram, BucketsAreContiguousAndOrdered) {
  std::uint64_t previous_edge = 0;
  for (std::size_t i = 1; i < Histogram::bucket_index(Histogram::max_value_ns); ++i) {
    std::uint64_t edge = Histogram::bucket_upper_edge(i);
    ASSERT_GT(edge, previous_edge) << i;
    ASSERT_EQ(Histogram::bucket_index(edge), i);
    ASSERT_EQ(Histogram::bucket_index(edge + 1), i + 1);
    previous_edge = edge;
  }
}

TEST(LoadHistogram, PercentilesOfAUniformSample) {
  Histogram h;
  for (std::uint64_t us = 1; us <= 10000; ++us) h.record(us * 1000);  // 1 µs .. 10 ms
  EXPECT_EQ(h.count(), 10000u);
  auto near = [](std::uint64_t got, double want) { return std::fabs(static_cast<double>(got) - want) / want <= 0.01; };
  EXPECT_TRUE(near(h.percentile(50), 5'000'000)) << h.percentile(50);
  EXPECT_TRUE(near(h.percentile(99), 9'900'000)) << h.percentile(99);
  EXPECT_TRUE(near(h.percentile(99.99), 9'999'000)) << h.percentile(99.99);
  EXPECT_EQ(h.percentile(100), 10'000'000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 10'000'000u);
  EXPECT_NEAR(h.mean(), 5'000'500, 1);
  EXPECT_NEAR(h.stdev(), 2'886'751, 2);  // (n^2 - 1) / 12, in µs, scaled
}

TEST(LoadHistogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(12.0, 1.5);
  Histogram a, b, all;
  for (int i = 0; i < 20000; ++i) {
    auto v = static_cast<std::uint64_t>(latency(random));
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) EXPECT_EQ(a.percentile(p), all.percentile(p)) << p;
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
}

TEST(LoadHistogram, EmptyAndClampedValues) {
  Histogram h;
  EXPECT_EQ(h.percentile(99), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.stdev(), 0.0);
  EXPECT_TRUE(h.cumulative_points().empty());
  h.record(Histogram::max_value_ns * 5);
  EXPECT_EQ(h.clamped(), 1u);
  EXPECT_EQ(h.max(), Histogram::max_value_ns);
  auto points = h.cumulative_points();
  ASSERT_EQ(points.size(), 1u);
  EXPECT_DOUBLE_EQ(points[0].cumulative, 1.0);
}

}  // namespace
}  // namespace errand::load
