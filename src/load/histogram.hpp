// A high-dynamic-range latency histogram, written here (HdrHistogram's layout, not its code):
// values in nanoseconds from 0 to 100 s in log-linear buckets — 2^k ranges each split into 128
// equal sub-buckets — so any recorded value is reported within 1/128 (< 0.8%) of itself.
// Recording is an index computation and an increment (no allocation after construction);
// histograms of different threads merge by adding counts. Exact min, max, mean and standard
// deviation are kept beside the buckets. Values above the range are clamped to 100 s and
// counted in clamped().
#pragma once

#include <cstdint>
#include <vector>

namespace errand::load {

class Histogram {
 public:
  static constexpr std::uint64_t max_value_ns = 100'000'000'000ull;  // 100 s

  Histogram();

  void record(std::uint64_t value_ns) noexcept;
  void merge(const Histogram& other);

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t clamped() const noexcept { return clamped_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;
  double stdev() const noexcept;
  // The smallest recorded value v such that at least `percentile`% of values are <= v, reported
  // as the upper edge of its bucket (never above max()). 0 when empty.
  std::uint64_t percentile(double percentile) const noexcept;

  // For reports: every non-empty bucket as (upper edge, cumulative fraction).
  struct Point {
    std::uint64_t value_ns;
    double cumulative;
  };
  std::vector<Point> cumulative_points() const;

  static std::size_t bucket_index(std::uint64_t value_ns) noexcept;
  static std::uint64_t bucket_upper_edge(std::size_t index) noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t clamped_ = 0;
  std::uint64_t min_ = ~0ull;
  std::uint64_t max_ = 0;
  double sum_ = 0;
  double sum_squares_ = 0;
};

}  // namespace errand::load
