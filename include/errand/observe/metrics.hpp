// errand/observe/metrics.hpp — a metrics registry (counters, gauges, histograms with fixed
// buckets, each a family keyed by label values) and its Prometheus text exposition (format
// 0.0.4, what /metrics serves and `promtool check metrics` accepts).
//
//   auto registry = std::make_shared<errand::observe::Registry>();
//   auto& requests = registry->counter("jobs_runs_total", "Job runs by outcome.", {"job", "outcome"});
//   auto& latency = registry->histogram("jobs_run_duration_seconds", "Job run time.", {"job"},
//                                       {0.01, 0.1, 1, 10});
//   requests.with({"backup", "ok"}).inc();
//   latency.with({"backup"}).observe(0.42);
//   std::string body = registry->prometheus_text();   // "# HELP jobs_runs_total Job runs ..."
//
// A family's children live as long as the Registry, and with() returns a stable reference to
// one: a hot path may look a child up once and keep it. with() takes the family's mutex for
// one map lookup (no allocation once the child exists); inc/set/add/observe are atomics.
// A family without labels has its single child from the start (it is exposed as 0).
//
// Programming errors throw std::invalid_argument: a metric or label name outside Prometheus'
// grammar, a counter named without the `_total` suffix or a gauge or histogram with it (as
// promtool's lint wants), a histogram label named `le`, buckets not strictly increasing,
// with() given the wrong number of values, a counter decreased, or a name registered again
// with another type, other labels or other buckets (registering it again with the same ones
// returns the same family; the first help stays).
//
// Collectors (add_collector) run at the start of each exposition, to copy external state
// (a Client's pool figures, ...) into gauges and counters.
// Thread-safety: everything is thread-safe; collectors may run concurrently with each other
// when expositions do, so each must be thread-safe itself.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace errand::observe {

// Goes up only: requests served, bytes sent.
class Counter {
 public:
  void inc(double amount = 1);  // amount < 0 or NaN: std::invalid_argument
  double value() const noexcept {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) + fraction_.load(std::memory_order_relaxed);
  }

 private:
  // Whole amounts (nearly every increment) add to an integer: one atomic add, where a double
  // takes a compare-and-swap loop. Counters are bumped several times per request.
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<double> fraction_{0};
};

// Goes up and down: connections open, a state as a number.
class Gauge {
 public:
  void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) noexcept { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into fixed buckets (a value falls in the first bucket whose upper bound
// is >= it; above all bounds, or NaN, in +Inf) and sums them.
class Histogram {
 public:
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void observe(double value) noexcept;

  const std::vector<double>& bounds() const noexcept { return *bounds_; }
  // Observations at or below each bound, then the +Inf bucket (= count): bounds().size() + 1.
  std::vector<std::uint64_t> cumulative_counts() const;
  std::uint64_t count() const noexcept;
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<double> sum_{0};
};

enum class MetricType { counter, gauge, histogram };

namespace detail {

// Orders label value lists, and finds a list of string_views among stored strings without
// building a key.
struct LabelsLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
      return std::string_view(x) < std::string_view(y);
    });
  }
};

class FamilyBase {
 public:
  FamilyBase(MetricType type, std::string name, std::string help, std::vector<std::string> labels)
      : type_(type), name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {}
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  MetricType type() const noexcept { return type_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  const std::vector<std::string>& label_names() const noexcept { return labels_; }

  // Appends the samples (no HELP/TYPE lines), children in label-value order.
  virtual void write_samples(std::string& out) const = 0;

 protected:
  [[noreturn]] void throw_label_count(std::size_t given) const;

 private:
  MetricType type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
};

}  // namespace detail

// The metrics of one name, one per combination of label values.
template <class Metric>
class Family final : public detail::FamilyBase {
 public:
  // The child for these label values (in the order of label_names()), created at first use.
  Metric& with(std::initializer_list<std::string_view> values) { return child(values); }
  Metric& with(const std::vector<std::string>& values) { return child(values); }

  void write_samples(std::string& out) const override;

  // Only the Registry makes families; public for std::make_unique.
  Family(MetricType type, std::string name, std::string help, std::vector<std::string> labels,
         std::shared_ptr<const std::vector<double>> bounds);
  const std::shared_ptr<const std::vector<double>>& bounds() const noexcept { return bounds_; }

 private:
  template <class Values>
  Metric& child(const Values& values) {
    if (values.size() != label_names().size()) throw_label_count(values.size());
    std::lock_guard lock(mutex_);
    auto it = children_.find(values);
    if (it == children_.end())
      it = children_.emplace(std::vector<std::string>(values.begin(), values.end()), make()).first;
    return *it->second;
  }
  std::unique_ptr<Metric> make() const;

  std::shared_ptr<const std::vector<double>> bounds_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>, detail::LabelsLess> children_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// The HTTP Content-Type of prometheus_text().
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter(std::string_view name, std::string_view help, std::vector<std::string> labels = {});
  Family<Gauge>& gauge(std::string_view name, std::string_view help, std::vector<std::string> labels = {});
  // `buckets`: upper bounds, strictly increasing; the +Inf bucket is implicit (a trailing
  // +Inf given here is dropped).
  Family<Histogram>& histogram(std::string_view name, std::string_view help, std::vector<std::string> labels,
                               std::vector<double> buckets);

  // Runs `collect` at the start of every exposition, for as long as the Registry lives.
  void add_collector(std::function<void()> collect);

  // Runs the collectors, then writes every family that has a child, sorted by name:
  // # HELP, # TYPE, then the samples (histograms: cumulative _bucket{le=...} up to +Inf,
  // _sum, _count).
  std::string prometheus_text();

 private:
  template <class Metric>
  Family<Metric>& family(MetricType type, std::string_view name, std::string_view help,
                         std::vector<std::string> labels, std::shared_ptr<const std::vector<double>> bounds);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<detail::FamilyBase>, std::less<>> families_;
  std::mutex collectors_mutex_;
  std::vector<std::shared_ptr<const std::function<void()>>> collectors_;
};

}  // namespace errand::observe
