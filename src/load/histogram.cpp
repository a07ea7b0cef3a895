#include "load/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace errand::load {
namespace {

constexpr unsigned sub_bucket_bits = 7;                       // 128 sub-buckets per power of two
constexpr std::uint64_t linear_limit = 2ull << sub_bucket_bits;  // below 256 ns: one bucket per ns
constexpr unsigned half = 1u << sub_bucket_bits;

unsigned log2_floor(std::uint64_t v) noexcept { return 63u - static_cast<unsigned>(__builtin_clzll(v)); }

}  // namespace

std::size_t Histogram::bucket_index(std::uint64_t v) noexcept {
  if (v < linear_limit) return static_cast<std::size_t>(v);
  // v in [2^(k), 2^(k+1)) with k >= 8: shift so the top 8 bits remain (128..255).
  unsigned shift = log2_floor(v) - sub_bucket_bits;
  std::uint64_t sub = v >> shift;  // 128..255
  return static_cast<std::size_t>(linear_limit + (shift - 1) * half + (sub - half));
}

std::uint64_t Histogram::bucket_upper_edge(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  std::size_t rest = index - linear_limit;
  unsigned shift = static_cast<unsigned>(rest / half) + 1;
  std::uint64_t sub = rest % half + half;
  return ((sub + 1) << shift) - 1;
}

Histogram::Histogram() : counts_(bucket_index(max_value_ns) + 1, 0) {}

void Histogram::record(std::uint64_t v) noexcept {
  if (v > max_value_ns) {
    v = max_value_ns;
    ++clamped_;
  }
  ++counts_[bucket_index(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  double d = static_cast<double>(v);
  sum_ += d;
  sum_squares_ += d * d;
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  clamped_ += other.clamped_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  sum_squares_ += other.sum_squares_;
}

double Histogram::mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }

double Histogram::stdev() const noexcept {
  if (count_ < 2) return 0.0;
  double n = static_cast<double>(count_);
  double m = sum_ / n;
  double variance = std::max(0.0, sum_squares_ / n - m * m);
  return std::sqrt(variance);
}

std::uint64_t Histogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  auto wanted = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  wanted = std::max<std::uint64_t>(wanted, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= wanted) return std::clamp(bucket_upper_edge(i), min(), max_);
  }
  return max_;
}

std::vector<Histogram::Point> Histogram::cumulative_points() const {
  std::vector<Point> points;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size() && count_; ++i) {
    if (!counts_[i]) continue;
    seen += counts_[i];
    points.push_back({std::clamp(bucket_upper_edge(i), min(), max_),
                      static_cast<double>(seen) / static_cast<double>(count_)});
  }
  return points;
}

}  // namespace errand::load
