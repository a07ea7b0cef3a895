// The metrics registry and its Prometheus text: exact expositions, name checks, and exact
// totals under concurrent updates.
#include <errand/observe/metrics.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

namespace errand::observe {
namespace {

TEST(Metrics, CountersAreExposedWithHelpTypeAndChildrenInLabelOrder) {
  Registry r;
  auto& runs = r.counter("jobs_runs_total", "Job runs by outcome.", {"job", "outcome"});
  runs.with({"backup", "ok"}).inc();
  runs.with({"backup", "ok"}).inc(2);
  runs.with({"alpha", "failed"}).inc(0.5);
  EXPECT_EQ(r.prometheus_text(),
            "# HELP jobs_runs_total Job runs by outcome.\n"
            "# TYPE jobs_runs_total counter\n"
            "jobs_runs_total{job=\"alpha\",outcome=\"failed\"} 0.5\n"
            "jobs_runs_total{job=\"backup\",outcome=\"ok\"} 3\n");
}

TEST(Metrics, FamiliesAreSortedByNameAndUnlabelledOnesShowZeroBeforeUse) {
  Registry r;
  r.gauge("zeta", "Last.");
  r.counter("alpha_total", "First.");
  r.counter("middle_total", "Never used, has labels.", {"x"});  // no child: not written
  EXPECT_EQ(r.prometheus_text(),
            "# HELP alpha_total First.\n"
            "# TYPE alpha_total counter\n"
            "alpha_total 0\n"
            "# HELP zeta Last.\n"
            "# TYPE zeta gauge\n"
            "zeta 0\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry r;
  auto& g = r.gauge("paths", "A \\ backslash\nand a \"quote\".", {"path"});
  g.with({"C:\\dir \"x\"\nnext"}).set(-2.5);
  EXPECT_EQ(r.prometheus_text(),
            "# HELP paths A \\\\ backslash\\nand a \"quote\".\n"
            "# TYPE paths gauge\n"
            "paths{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} -2.5\n");
}

TEST(Metrics, GaugesSetAndAdd) {
  Registry r;
  auto& g = r.gauge("connections", "Open.").with({});
  g.set(5);
  g.add(-2);
  g.add(0.25);
  EXPECT_EQ(g.value(), 3.25);
}

TEST(Metrics, HistogramBucketsAreCumulativeUpToInfWithSumAndCount) {
  Registry r;
  auto& h = r.histogram("job_duration_seconds", "Job time.", {"job"}, {0.25, 0.5, 1});
  auto& backup = h.with({"backup"});
  backup.observe(0.125);
  backup.observe(0.25);  // on a bound: counted in that bucket (le = less or equal)
  backup.observe(0.375);
  backup.observe(2);
  h.with({"alpha"});  // a child with no observations is written with zeros
  EXPECT_EQ(r.prometheus_text(),
            "# HELP job_duration_seconds Job time.\n"
            "# TYPE job_duration_seconds histogram\n"
            "job_duration_seconds_bucket{job=\"alpha\",le=\"0.25\"} 0\n"
            "job_duration_seconds_bucket{job=\"alpha\",le=\"0.5\"} 0\n"
            "job_duration_seconds_bucket{job=\"alpha\",le=\"1\"} 0\n"
            "job_duration_seconds_bucket{job=\"alpha\",le=\"+Inf\"} 0\n"
            "job_duration_seconds_sum{job=\"alpha\"} 0\n"
            "job_duration_seconds_count{job=\"alpha\"} 0\n"
            "job_duration_seconds_bucket{job=\"backup\",le=\"0.25\"} 2\n"
            "job_duration_seconds_bucket{job=\"backup\",le=\"0.5\"} 3\n"
            "job_duration_seconds_bucket{job=\"backup\",le=\"1\"} 3\n"
            "job_duration_seconds_bucket{job=\"backup\",le=\"+Inf\"} 4\n"
            "job_duration_seconds_sum{job=\"backup\"} 2.75\n"
            "job_duration_seconds_count{job=\"backup\"} 4\n");
  EXPECT_EQ(backup.count(), 4u);
  EXPECT_EQ(backup.sum(), 2.75);
  EXPECT_EQ(backup.cumulative_counts(), (std::vector<std::uint64_t>{2, 3, 3, 4}));
}

TEST(Metrics, AnUnlabelledHistogramHasOnlyLeInItsBuckets) {
  Registry r;
  auto& h = r.histogram("wait_seconds", "Wait.", {}, {1e-5, 0.0005, 30}).with({});
  h.observe(std::numeric_limits<double>::quiet_NaN());  // NaN lands in +Inf and poisons the sum
  EXPECT_EQ(r.prometheus_text(),
            "# HELP wait_seconds Wait.\n"
            "# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"1e-05\"} 0\n"
            "wait_seconds_bucket{le=\"0.0005\"} 0\n"
            "wait_seconds_bucket{le=\"30\"} 0\n"
            "wait_seconds_bucket{le=\"+Inf\"} 1\n"
            "wait_seconds_sum NaN\n"
            "wait_seconds_count 1\n");
}

TEST(Metrics, NumbersAreWrittenAsPrometheusReadsThem) {
  Registry r;
  auto& g = r.gauge("value", "Values.", {"case"});
  g.with({"a_million"}).set(1e6);
  g.with({"big"}).set(1e22);
  g.with({"fraction"}).set(0.1);
  g.with({"inf"}).set(std::numeric_limits<double>::infinity());
  g.with({"minus_inf"}).set(-std::numeric_limits<double>::infinity());
  g.with({"nan"}).set(std::numeric_limits<double>::quiet_NaN());
  g.with({"tiny"}).set(2.5e-7);
  EXPECT_EQ(r.prometheus_text(),
            "# HELP value Values.\n"
            "# TYPE value gauge\n"
            "value{case=\"a_million\"} 1000000\n"
            "value{case=\"big\"} 1e+22\n"
            "value{case=\"fraction\"} 0.1\n"
            "value{case=\"inf\"} +Inf\n"
            "value{case=\"minus_inf\"} -Inf\n"
            "value{case=\"nan\"} NaN\n"
            "value{case=\"tiny\"} 2.5e-07\n");
}

TEST(Metrics, HistogramBoundsMustIncreaseAndATrailingInfIsImplicit) {
  Registry r;
  EXPECT_THROW(r.histogram("a_seconds", "h", {}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("b_seconds", "h", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("c_seconds", "h", {}, {std::nan("")}), std::invalid_argument);
  auto& h = r.histogram("d_seconds", "h", {}, {1, std::numeric_limits<double>::infinity()}).with({});
  EXPECT_EQ(h.bounds(), std::vector<double>{1});
}

TEST(Metrics, InvalidNamesAreProgrammingErrors) {
  Registry r;
  for (const char* bad : {"", "1st_total", "has-dash_total", "has space_total", "ünicode_total"})
    EXPECT_THROW(r.counter(bad, "h"), std::invalid_argument) << bad;
  EXPECT_NO_THROW(r.gauge("ns:sub_name_2", "colons are allowed in metric names"));
  EXPECT_THROW(r.counter("requests", "a counter must end in _total"), std::invalid_argument);
  EXPECT_THROW(r.counter("_total", "nothing before the suffix"), std::invalid_argument);
  EXPECT_THROW(r.gauge("open_total", "only counters end in _total"), std::invalid_argument);
  EXPECT_THROW(r.histogram("took_total", "only counters end in _total", {}, {1}), std::invalid_argument);
  for (const char* bad : {"", "9lives", "a:b", "a-b", "__reserved"})
    EXPECT_THROW(r.gauge("g", "h", {bad}), std::invalid_argument) << bad;
  EXPECT_THROW(r.gauge("g", "h", {"x", "x"}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h_seconds", "h", {"le"}, {1}), std::invalid_argument);
  EXPECT_NO_THROW(r.gauge("g_le", "le is only reserved in histograms", {"le"}));
}

TEST(Metrics, TheWrongNumberOfLabelValuesIsAProgrammingError) {
  Registry r;
  auto& f = r.counter("x_total", "h", {"a", "b"});
  EXPECT_THROW(f.with({"only one"}), std::invalid_argument);
  EXPECT_THROW(f.with({"a", "b", "c"}), std::invalid_argument);
  EXPECT_THROW(f.with(std::vector<std::string>{}), std::invalid_argument);
  EXPECT_NO_THROW(f.with(std::vector<std::string>{"1", "2"}).inc());
  EXPECT_EQ(f.with({"1", "2"}).value(), 1);
}

TEST(Metrics, ACounterCannotGoDown) {
  Registry r;
  auto& c = r.counter("x_total", "h").with({});
  EXPECT_THROW(c.inc(-1), std::invalid_argument);
  EXPECT_THROW(c.inc(std::nan("")), std::invalid_argument);
  EXPECT_EQ(c.value(), 0);
}

TEST(Metrics, RegisteringANameAgainReturnsTheSameFamilyOrThrowsOnAConflict) {
  Registry r;
  auto& first = r.counter("x_total", "first help", {"a"});
  EXPECT_EQ(&r.counter("x_total", "other help", {"a"}), &first);
  EXPECT_EQ(first.help(), "first help");
  EXPECT_THROW(r.counter("x_total", "h", {"b"}), std::invalid_argument);
  EXPECT_THROW(r.counter("x_total", "h"), std::invalid_argument);
  EXPECT_THROW(r.gauge("x_total", "h", {"a"}), std::invalid_argument);

  auto& h = r.histogram("y_seconds", "h", {}, {1, 2});
  EXPECT_EQ(&r.histogram("y_seconds", "h", {}, {1, 2}), &h);
  EXPECT_THROW(r.histogram("y_seconds", "h", {}, {1, 3}), std::invalid_argument);
}

TEST(Metrics, ChildrenStayAtTheirAddressAsOthersAreAdded) {
  Registry r;
  auto& f = r.counter("x_total", "h", {"n"});
  auto* first = &f.with({"0"});
  for (int i = 1; i < 1000; ++i) f.with({std::to_string(i)}).inc();
  EXPECT_EQ(&f.with({"0"}), first);
  EXPECT_EQ(&f.with(std::vector<std::string>{"0"}), first);
}

TEST(Metrics, CollectorsRunBeforeEachExposition) {
  Registry r;
  auto& g = r.gauge("external", "Copied in by a collector.").with({});
  double source = 1;
  int runs = 0;
  r.add_collector([&] {
    g.set(source);
    ++runs;
  });
  EXPECT_NE(r.prometheus_text().find("\nexternal 1\n"), std::string::npos);
  source = 7;
  EXPECT_NE(r.prometheus_text().find("\nexternal 7\n"), std::string::npos);
  EXPECT_EQ(runs, 2);
}

TEST(Metrics, ConcurrentUpdatesAddUpExactly) {
  Registry r;
  auto& counters = r.counter("ops_total", "h", {"thread_group"});
  auto& histograms = r.histogram("op_seconds", "h", {"thread_group"}, {0.5, 1.5});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    // Expositions while the writers run: they must neither crash nor block them for good.
    while (!done.load()) (void)r.prometheus_text();
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      std::string group = t % 2 == 0 ? "even" : "odd";
      for (int i = 0; i < kPerThread; ++i) {
        counters.with({group}).inc();
        histograms.with({group}).observe(i % 2 == 0 ? 1.0 : 2.0);
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  for (const char* group : {"even", "odd"}) {
    EXPECT_EQ(counters.with({group}).value(), 2.0 * kPerThread) << group;
    auto& h = histograms.with({group});
    EXPECT_EQ(h.count(), 2u * kPerThread) << group;
    EXPECT_EQ(h.sum(), 2.0 * (kPerThread / 2 * 1.0 + kPerThread / 2 * 2.0)) << group;
    EXPECT_EQ(h.cumulative_counts(), (std::vector<std::uint64_t>{0, kPerThread, 2 * kPerThread})) << group;
  }
  EXPECT_NE(r.prometheus_text().find("ops_total{thread_group=\"odd\"} 100000\n"), std::string::npos);
}

}  // namespace
}  // namespace errand::observe
