#include <errand/observe/metrics.hpp>

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace errand::observe {
namespace {

bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool is_name_char(char c, bool colon) { return is_name_start(c, colon) || (c >= '0' && c <= '9'); }

// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, the same without ':' for label names.
bool valid_name(std::string_view name, bool colon) {
  if (name.empty() || !is_name_start(name[0], colon)) return false;
  return std::all_of(name.begin() + 1, name.end(), [colon](char c) { return is_name_char(c, colon); });
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

void check_names(MetricType type, std::string_view name, const std::vector<std::string>& labels) {
  if (!valid_name(name, true)) throw std::invalid_argument("metric name \"" + std::string(name) + "\" is not valid");
  // promtool's lint insists on the suffix for counters, and only for them: readers of text
  // format 0.0.4 see a counter by its name.
  if (type == MetricType::counter && (name.size() <= 6 || !name.ends_with("_total")))
    throw std::invalid_argument("counter \"" + std::string(name) + "\" must be named *_total");
  if (type != MetricType::counter && name.ends_with("_total"))
    throw std::invalid_argument(std::string(type_name(type)) + " \"" + std::string(name) + "\" may not be named *_total");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& label = labels[i];
    if (!valid_name(label, false) || label.starts_with("__"))
      throw std::invalid_argument("label name \"" + label + "\" of " + std::string(name) + " is not valid");
    if (type == MetricType::histogram && label == "le")
      throw std::invalid_argument("histogram " + std::string(name) + " may not have a label named le");
    if (std::find(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(i), label) !=
        labels.begin() + static_cast<std::ptrdiff_t>(i))
      throw std::invalid_argument("label name \"" + label + "\" repeated in " + std::string(name));
  }
}

// Like Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' own clients use, but
// integers in full (1000000, not 1e+06): counters read better, and both parse the same.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  // Shortest text that reads back the same; fixed notation from 1e-4 up, like Go's 'g',
  // so that a bucket bound reads le="0.0005", not le="5e-04" (le is matched as a string).
  char buf[400];
  std::to_chars_result r;
  double magnitude = std::fabs(v);
  if (v == std::trunc(v) && magnitude < 1e15)
    r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
  else if (magnitude >= 1e-4 && magnitude < 1e21)
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  else
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  out.append(buf, r.ptr);
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// HELP text escapes backslash and newline; a label value (`quoted`) also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quoted) {
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quoted) out += "\\\"";
    else out += c;
  }
}

// `{a="x",b="y"` without the closing brace, so a histogram can add le; nothing when there are
// no labels (the caller then opens its own brace if it needs one).
void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += i == 0 ? '{' : ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
}

template <class Value>  // double, or an exact count
void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values, Value v) {
  out += name;
  out += suffix;
  append_labels(out, names, values);
  if (!names.empty()) out += '}';
  out += ' ';
  append_number(out, v);
  out += '\n';
}

}  // namespace

void Counter::inc(double amount) {
  if (!(amount >= 0)) throw std::invalid_argument("a counter cannot be decreased");
  // Exact in a double up to 2^53, so the sum of the two parts stays exact as long as a
  // double-only counter would.
  if (amount <= 9007199254740992.0 && amount == static_cast<double>(static_cast<std::uint64_t>(amount))) {
    whole_.fetch_add(static_cast<std::uint64_t>(amount), std::memory_order_relaxed);
    return;
  }
  fraction_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_->size() + 1]) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) noexcept {
  // From the lowest bound up: latencies land in the first buckets, found in one or two
  // predictable comparisons where a binary search takes four that mispredict. NaN compares
  // false with every bound and lands in +Inf, as in the Go client.
  const std::vector<double>& bounds = *bounds_;
  std::size_t at = 0;
  while (at < bounds.size() && !(value <= bounds[at])) ++at;
  counts_[at].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_->size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = total += counts_[i].load(std::memory_order_relaxed);
  return out;
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

void detail::FamilyBase::throw_label_count(std::size_t given) const {
  throw std::invalid_argument(name_ + " has " + std::to_string(labels_.size()) + " labels, given " +
                              std::to_string(given) + " values");
}

template <class Metric>
Family<Metric>::Family(MetricType type, std::string name, std::string help, std::vector<std::string> labels,
                       std::shared_ptr<const std::vector<double>> bounds)
    : FamilyBase(type, std::move(name), std::move(help), std::move(labels)), bounds_(std::move(bounds)) {
  // Like the Go client: a family without labels is exposed (as 0) before its first use.
  if (label_names().empty()) with(std::initializer_list<std::string_view>{});
}

template <class Metric>
std::unique_ptr<Metric> Family<Metric>::make() const {
  if constexpr (std::is_same_v<Metric, Histogram>)
    return std::make_unique<Histogram>(bounds_);
  else
    return std::make_unique<Metric>();
}

template <class Metric>
void Family<Metric>::write_samples(std::string& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [values, metric] : children_) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      // One snapshot of the buckets for the +Inf bucket and _count, so that they agree even
      // while observations come in (the sum may then be a little ahead or behind).
      auto counts = metric->cumulative_counts();
      const auto& bounds = metric->bounds();
      for (std::size_t i = 0; i < counts.size(); ++i) {
        out += name();
        out += "_bucket";
        append_labels(out, label_names(), values);
        out += label_names().empty() ? "{le=\"" : ",le=\"";
        if (i < bounds.size())
          append_number(out, bounds[i]);
        else
          out += "+Inf";
        out += "\"} ";
        append_number(out, counts[i]);
        out += '\n';
      }
      append_sample(out, name(), "_sum", label_names(), values, metric->sum());
      append_sample(out, name(), "_count", label_names(), values, counts.back());
    } else {
      append_sample(out, name(), "", label_names(), values, metric->value());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry() = default;
Registry::~Registry() = default;

template <class Metric>
Family<Metric>& Registry::family(MetricType type, std::string_view name, std::string_view help,
                                 std::vector<std::string> labels, std::shared_ptr<const std::vector<double>> bounds) {
  check_names(type, name, labels);
  std::lock_guard lock(mutex_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto& existing = *it->second;
    bool same = existing.type() == type && existing.label_names() == labels;
    if (same && bounds) same = *static_cast<Family<Metric>&>(existing).bounds() == *bounds;
    if (!same)
      throw std::invalid_argument(std::string(name) + " is already registered as a " +
                                  std::string(type_name(existing.type())) + " with other labels or buckets");
    return static_cast<Family<Metric>&>(existing);
  }
  auto made = std::make_unique<Family<Metric>>(type, std::string(name), std::string(help), std::move(labels),
                                               std::move(bounds));
  auto& ref = *made;
  families_.emplace(std::string(name), std::move(made));
  return ref;
}

Family<Counter>& Registry::counter(std::string_view name, std::string_view help, std::vector<std::string> labels) {
  return family<Counter>(MetricType::counter, name, help, std::move(labels), nullptr);
}

Family<Gauge>& Registry::gauge(std::string_view name, std::string_view help, std::vector<std::string> labels) {
  return family<Gauge>(MetricType::gauge, name, help, std::move(labels), nullptr);
}

Family<Histogram>& Registry::histogram(std::string_view name, std::string_view help, std::vector<std::string> labels,
                                       std::vector<double> buckets) {
  if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) buckets.pop_back();
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (std::isnan(buckets[i]) || std::isinf(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
      throw std::invalid_argument("buckets of " + std::string(name) + " must be finite and strictly increasing");
  }
  return family<Histogram>(MetricType::histogram, name, help, std::move(labels),
                           std::make_shared<const std::vector<double>>(std::move(buckets)));
}

void Registry::add_collector(std::function<void()> collect) {
  std::lock_guard lock(collectors_mutex_);
  collectors_.push_back(std::make_shared<const std::function<void()>>(std::move(collect)));
}

std::string Registry::prometheus_text() {
  // Collectors update families (taking mutex_), so they run before it is taken, on a copy of
  // the list: one may register another collector.
  std::vector<std::shared_ptr<const std::function<void()>>> collectors;
  {
    std::lock_guard lock(collectors_mutex_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) (*collect)();

  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, family] : families_) {
    std::string samples;
    family->write_samples(samples);
    if (samples.empty()) continue;
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, family->help(), false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(family->type());
    out += '\n';
    out += samples;
  }
  return out;
}

}  // namespace errand::observe
