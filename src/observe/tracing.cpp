// Spans, the Tracer, the encodings (OTLP/JSON, JSON lines, the text tree) and the two simple
// exporters. The Client layers are in tracing_layers.cpp, the OTLP/HTTP exporter in
// otlp_exporter.cpp.
#include <errand/observe/tracing.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <type_traits>


#include "observe/json_writer.hpp"

#include <errand/core/duration.hpp>

namespace errand::observe {

using namespace std::string_view_literals;


namespace {

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string bounded(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut));
}

double millis(SystemTime from, SystemTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string_view kind_name(SpanKind kind) { return kind == SpanKind::client ? "client" : "internal"; }
std::string_view status_name(SpanStatus status) {
  switch (status) {
    case SpanStatus::ok: return "ok";
    case SpanStatus::error: return "error";
    default: return "unset";
  }
}

std::string value_text(const AttributeValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) return v;
        else if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, double>) {
          std::string text;
          json_text::number(text, v);
          return text;
        } else {
          return std::to_string(v);
        }
      },
      value);
}

std::string attributes_text(const Attributes& attributes) {
  std::string out;
  for (const auto& [key, value] : attributes) {
    out += ' ';
    out += key;
    out += '=';
    out += value_text(value);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Span

void Span::set(std::string_view key, AttributeValue value) {
  for (auto& [k, v] : attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(std::string(key), std::move(value));
}

const AttributeValue* Span::attribute(std::string_view key) const {
  for (const auto& [k, v] : attributes)
    if (k == key) return &v;
  return nullptr;
}

void Span::add_event(std::string_view event_name, Attributes event_attributes, SystemTime time) {
  if (events.size() >= max_events) {
    ++dropped_events;
    return;
  }
  events.push_back(SpanEvent{std::string(event_name), time, std::move(event_attributes)});
}

void Span::set_error(std::string_view message) {
  status = SpanStatus::error;
  status_message = bounded(message, max_status_message);
}

// ---------------------------------------------------------------------------------------------
// Tracer

Tracer::Tracer(std::string service_name) : service_name_(std::move(service_name)) {}

void Tracer::add_exporter(std::shared_ptr<SpanExporter> exporter) {
  if (exporter) exporters_.push_back(std::move(exporter));
}

Span Tracer::start_span(std::string name, SpanKind kind, const SpanContext* parent) const {
  Span span;
  span.name = std::move(name);
  span.kind = kind;
  if (parent && parent->valid()) {
    span.context = SpanContext::child_of(*parent);
    span.parent_span_id = parent->span_id;
  } else {
    span.context = SpanContext::new_root();
    if (sample_ratio_ < 1.0) {
      // The trace id's last 8 bytes as a number against ratio × 2^64 (W3C Trace Context level
      // 2 makes them random), so that every process samples the same traces.
      std::uint64_t low = 0;
      for (std::size_t i = 8; i < 16; ++i) low = low << 8 | span.context.trace_id[i];
      span.context.sampled = static_cast<double>(low) < sample_ratio_ * 18446744073709551616.0;
    }
  }
  span.start = std::chrono::system_clock::now();
  return span;
}

void Tracer::end_span(Span& span) const {
  if (span.end == SystemTime{}) span.end = std::chrono::system_clock::now();
  if (!span.context.sampled) return;
  for (std::size_t i = 0; i + 1 < exporters_.size(); ++i) exporters_[i]->export_span(static_cast<const Span&>(span));
  if (!exporters_.empty()) exporters_.back()->export_span(std::move(span));  // the span is done with
}

void Tracer::flush() const {
  for (const auto& exporter : exporters_) exporter->flush();
}

void Tracer::shutdown() const {
  for (const auto& exporter : exporters_) exporter->shutdown();
}

// ---------------------------------------------------------------------------------------------
// Encodings

namespace {

void otlp_value_text(std::string& out, const AttributeValue& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out += "{\"stringValue\":"sv;
          json_text::string(out, v);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out += "{\"intValue\":"sv;
          json_text::quoted_integer(out, v);
        } else if constexpr (std::is_same_v<T, double>) {
          out += "{\"doubleValue\":"sv;
          json_text::number(out, v);
        } else {
          out += "{\"boolValue\":"sv;
          json_text::boolean(out, v);
        }
        out += '}';
      },
      value);
}

void otlp_attributes_text(std::string& out, const Attributes& attributes) {
  out += '[';
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) out += ',';
    first = false;
    out += "{\"key\":"sv;
    json_text::string(out, key);
    out += ",\"value\":"sv;
    otlp_value_text(out, value);
    out += '}';
  }
  out += ']';
}

std::int64_t nanos_since_epoch(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void otlp_span_text(std::string& out, const Span& s) {
  out += "{\"traceId\":\""sv;
  json_text::hex(out, s.context.trace_id);
  out += "\",\"spanId\":\""sv;
  json_text::hex(out, s.context.span_id);
  out += '"';
  if (!s.context.tracestate.empty()) {
    out += ",\"traceState\":"sv;
    json_text::string(out, s.context.tracestate);
  }
  if (s.parent_span_id) {
    out += ",\"parentSpanId\":\""sv;
    json_text::hex(out, *s.parent_span_id);
    out += '"';
  }
  out += ",\"name\":"sv;
  json_text::string(out, s.name);
  out += s.kind == SpanKind::client ? ",\"kind\":3" : ",\"kind\":1";  // SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL
  out += ",\"startTimeUnixNano\":"sv;
  json_text::quoted_integer(out, nanos_since_epoch(s.start));
  out += ",\"endTimeUnixNano\":"sv;
  json_text::quoted_integer(out, nanos_since_epoch(s.end));
  out += ",\"attributes\":"sv;
  otlp_attributes_text(out, s.attributes);
  out += ",\"events\":["sv;
  bool first = true;
  for (const auto& e : s.events) {
    if (!first) out += ',';
    first = false;
    out += "{\"timeUnixNano\":"sv;
    json_text::quoted_integer(out, nanos_since_epoch(e.time));
    out += ",\"name\":"sv;
    json_text::string(out, e.name);
    out += ",\"attributes\":"sv;
    otlp_attributes_text(out, e.attributes);
    out += '}';
  }
  out += ']';
  if (s.dropped_events) {
    out += ",\"droppedEventsCount\":"sv;
    json_text::integer(out, s.dropped_events);
  }
  out += ",\"status\":{"sv;
  if (s.status == SpanStatus::ok) out += "\"code\":1"sv;  // STATUS_CODE_OK
  if (s.status == SpanStatus::error) {
    out += "\"code\":2"sv;  // STATUS_CODE_ERROR
    if (!s.status_message.empty()) {
      out += ",\"message\":"sv;
      json_text::string(out, s.status_message);
    }
  }
  out += "}}"sv;
}

}  // namespace

std::string encode_otlp_json(const std::vector<Span>& spans, std::string_view service_name) {
  std::string out;
  out.reserve(256 + spans.size() * 768);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"sv;
  json_text::string(out, service_name);
  out += "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"errand\",\"version\":\"0.1\"},\"spans\":["sv;
  bool first = true;
  for (const auto& s : spans) {
    if (!first) out += ',';
    first = false;
    otlp_span_text(out, s);
  }
  out += "]}]}]}"sv;
  return out;
}

namespace {

// Attributes as one flat JSON object, for jq.
void plain_attributes_text(std::string& out, const Attributes& attributes) {
  out += '{';
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) out += ',';
    first = false;
    json_text::string(out, key);
    out += ':';
    std::visit(
        [&out](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) json_text::string(out, v);
          else if constexpr (std::is_same_v<T, std::int64_t>) json_text::integer(out, v);
          else if constexpr (std::is_same_v<T, double>) json_text::number(out, v);
          else json_text::boolean(out, v);
        },
        value);
  }
  out += '}';
}

}  // namespace

std::string encode_json_line(const Span& s, std::string_view service_name) {
  std::string out;
  out.reserve(512);
  out += "{\"trace_id\":\""sv;
  json_text::hex(out, s.context.trace_id);
  out += "\",\"span_id\":\""sv;
  json_text::hex(out, s.context.span_id);
  out += "\",\"parent_span_id\":"sv;
  if (s.parent_span_id) {
    out += '"';
    json_text::hex(out, *s.parent_span_id);
    out += '"';
  } else {
    out += "null"sv;
  }
  out += ",\"name\":"sv;
  json_text::string(out, s.name);
  out += ",\"kind\":"sv;
  json_text::string(out, kind_name(s.kind));
  out += ",\"start_unix_nano\":"sv;
  json_text::integer(out, nanos_since_epoch(s.start));
  out += ",\"end_unix_nano\":"sv;
  json_text::integer(out, nanos_since_epoch(s.end));
  out += ",\"duration_ms\":"sv;
  json_text::number(out, std::round(millis(s.start, s.end) * 1000) / 1000);
  out += ",\"attributes\":"sv;
  plain_attributes_text(out, s.attributes);
  out += ",\"events\":["sv;
  bool first = true;
  for (const auto& e : s.events) {
    if (!first) out += ',';
    first = false;
    out += "{\"name\":"sv;
    json_text::string(out, e.name);
    out += ",\"time_unix_nano\":"sv;
    json_text::integer(out, nanos_since_epoch(e.time));
    out += ",\"attributes\":"sv;
    plain_attributes_text(out, e.attributes);
    out += '}';
  }
  out += "],\"status\":{\"code\":"sv;
  json_text::string(out, status_name(s.status));
  if (!s.status_message.empty()) {
    out += ",\"message\":"sv;
    json_text::string(out, s.status_message);
  }
  out += "},\"service.name\":"sv;
  json_text::string(out, service_name);
  out += '}';
  return out;
}

std::string format_span_tree(const std::vector<Span>& spans) {
  // Children by parent span id; a span whose parent is not among `spans` is a root.
  std::map<SpanId, std::vector<const Span*>> children;
  std::vector<const Span*> roots;
  auto known = [&](const SpanId& id) {
    return std::any_of(spans.begin(), spans.end(), [&](const Span& s) { return s.context.span_id == id; });
  };
  for (const auto& s : spans) {
    if (s.parent_span_id && known(*s.parent_span_id)) children[*s.parent_span_id].push_back(&s);
    else roots.push_back(&s);
  }
  auto by_start = [](const Span* a, const Span* b) { return a->start < b->start; };
  std::sort(roots.begin(), roots.end(), by_start);
  for (auto& [id, list] : children) std::sort(list.begin(), list.end(), by_start);

  std::string out;
  auto print = [&](auto& self, const Span& s, const std::string& indent) -> void {
    out += indent;
    out += s.name;
    out += " [";
    out += kind_name(s.kind);
    out += "] ";
    out += format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(s.end - s.start));
    if (s.status != SpanStatus::unset) {
      out += ' ';
      out += status_name(s.status);
      if (!s.status_message.empty()) {
        out += " (";
        out += s.status_message;
        out += ')';
      }
    }
    out += "  span ";
    out += to_hex(s.context.span_id);
    out += '\n';
    if (!s.attributes.empty()) {
      out += indent;
      out += "   ";
      out += attributes_text(s.attributes);
      out += '\n';
    }
    for (const auto& e : s.events) {
      out += indent;
      out += "    @+";
      out += format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(e.time - s.start));
      out += ' ';
      out += e.name;
      out += attributes_text(e.attributes);
      out += '\n';
    }
    if (auto it = children.find(s.context.span_id); it != children.end())
      for (const Span* child : it->second) self(self, *child, indent + "  ");
  };
  for (const Span* root : roots) {
    out += "trace ";
    out += to_hex(root->context.trace_id);
    if (root->parent_span_id) {
      out += " (parent span ";
      out += to_hex(*root->parent_span_id);
      out += ')';
    }
    out += '\n';
    print(print, *root, "  ");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CollectingExporter, JsonLinesExporter

void CollectingExporter::export_span(const Span& span) {
  std::lock_guard lock(mutex_);
  if (spans_.size() >= max_spans_) {
    ++dropped_;
    return;
  }
  spans_.push_back(span);
}

std::vector<Span> CollectingExporter::spans() const {
  std::lock_guard lock(mutex_);
  return spans_;
}

std::uint64_t CollectingExporter::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void CollectingExporter::clear() {
  std::lock_guard lock(mutex_);
  spans_.clear();
  dropped_ = 0;
}

Result<std::shared_ptr<JsonLinesExporter>> JsonLinesExporter::open(const std::string& path, std::string service_name) {
  if (path == "-") return std::make_shared<JsonLinesExporter>(stderr, false, std::move(service_name));
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f)
    return fail(ErrorKind::io, "cannot open '" + path + "' for spans: " + std::strerror(errno),
                std::error_code(errno, std::generic_category()));
  return std::make_shared<JsonLinesExporter>(f, true, std::move(service_name));
}

JsonLinesExporter::JsonLinesExporter(std::FILE* out, bool owned, std::string service_name)
    : out_(out), owned_(owned), service_name_(std::move(service_name)) {}

JsonLinesExporter::~JsonLinesExporter() {
  if (owned_) std::fclose(out_);
}

void JsonLinesExporter::export_span(const Span& span) {
  std::string line = encode_json_line(span, service_name_);
  line += '\n';
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), out_);  // stdio buffers: a write, not a wait on a peer
}

void JsonLinesExporter::flush() {
  std::lock_guard lock(mutex_);
  std::fflush(out_);
}

}  // namespace errand::observe
