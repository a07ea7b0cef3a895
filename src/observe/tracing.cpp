// Spans, the Tracer, the encodings (OTLP/JSON, JSON lines, the text tree) and the two simple
// exporters. The Client layers are in tracing_layers.cpp, the OTLP/HTTP exporter in
// otlp_exporter.cpp.
#include <errand/observe/tracing.hpp>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <type_traits>


#include "observe/json_writer.hpp"
#include "observe/otlp_encoding.hpp"

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

void Span::set(AttributeName key, AttributeValue value) {
  for (auto& [k, v] : attributes) {
    if (k == key.view()) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(std::move(key), std::move(value));
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

SpanContext Tracer::new_context(const SpanContext* parent) const {
  if (parent && parent->valid()) return SpanContext::child_of(*parent);
  SpanContext context = SpanContext::new_root();
  if (sample_ratio_ < 1.0) {
    // The trace id's last 8 bytes as a number against ratio × 2^64 (W3C Trace Context level
    // 2 makes them random), so that every process samples the same traces.
    std::uint64_t low = 0;
    for (std::size_t i = 8; i < 16; ++i) low = low << 8 | context.trace_id[i];
    context.sampled = static_cast<double>(low) < sample_ratio_ * 18446744073709551616.0;
  }
  return context;
}

Span Tracer::start_span(std::string name, SpanKind kind, const SpanContext* parent) const {
  bool child = parent && parent->valid();
  return start_span_in(new_context(parent), std::move(name), kind, child ? std::optional(parent->span_id) : std::nullopt,
                       std::chrono::system_clock::now());
}

namespace {

// The attribute lists of exported spans, emptied and kept for this thread's next spans: a
// sampled request would otherwise allocate two lists and free them after the export. A list
// that an exporter took (moved out) has no room and is not kept; nor is one grown large.
// A span may be started or ended while the thread's objects are destroyed (from another
// thread_local's or a static's destructor): once the pool is gone it hands out new lists and
// keeps none. The flag has no destructor, so it can be read then.
thread_local bool attribute_lists_gone = false;

class AttributeListPool {
 public:
  static constexpr std::size_t room = 10;  // what the tracing layers set on a span
  static constexpr std::size_t kept = 8;

  ~AttributeListPool() { attribute_lists_gone = true; }

  static Attributes fresh() {
    Attributes list;
    list.reserve(room);
    return list;
  }

  Attributes take() {
    if (lists_.empty()) return fresh();
    Attributes list = std::move(lists_.back());
    lists_.pop_back();
    return list;
  }

  void give(Attributes&& list) {
    if (list.capacity() < room || list.capacity() > 8 * room || lists_.size() >= kept) return;
    list.clear();
    if (lists_.capacity() == 0) lists_.reserve(kept);
    lists_.push_back(std::move(list));
  }

 private:
  std::vector<Attributes> lists_;
};

thread_local AttributeListPool attribute_lists;

Attributes take_attribute_list() {
  return attribute_lists_gone ? AttributeListPool::fresh() : attribute_lists.take();
}

void give_attribute_list(Attributes&& list) {
  if (!attribute_lists_gone) attribute_lists.give(std::move(list));
}

}  // namespace

Span Tracer::start_span_in(SpanContext context, std::string name, SpanKind kind, std::optional<SpanId> parent_span_id,
                           SystemTime start) const {
  Span span;
  span.name = std::move(name);
  span.kind = kind;
  span.context = std::move(context);
  span.parent_span_id = parent_span_id;
  if (span.context.sampled) span.attributes = take_attribute_list();  // room for the layers' attributes
  span.start = start;
  return span;
}

void Tracer::end_span(Span& span) const {
  if (span.end == SystemTime{}) span.end = std::chrono::system_clock::now();
  if (!span.context.sampled) return;
  for (std::size_t i = 0; i + 1 < exporters_.size(); ++i) exporters_[i]->export_span(static_cast<const Span&>(span));
  if (exporters_.empty()) return;
  exporters_.back()->export_span(std::move(span));  // the span is done with
  give_attribute_list(std::move(span.attributes));  // unless the exporter took them
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

using json_text::Writer;

// The OTLP text of a span is bounded first and then written with no checks (json_writer.hpp).
// Each bound counts its piece's literals generously: a piece is some tens of bytes.
std::size_t otlp_value_bound(const AttributeValue& value) {
  constexpr std::size_t wrapper = 24;  // ,"value":{"doubleValue":
  if (const auto* text = std::get_if<std::string>(&value)) return wrapper + json_text::string_bound(text->size());
  return wrapper + json_text::number_bound;
}

std::size_t otlp_attributes_bound(const Attributes& attributes) {
  std::size_t n = 2;
  for (const auto& [key, value] : attributes)
    n += 24 + json_text::string_bound(key.view().size()) + otlp_value_bound(value);  // {"key": and }},
  return n;
}

// {"key":"name","value":{"stringValue":"..."}}: the literal between the name and the value
// is one piece.
char* put_otlp_attribute(char* at, const AttributeName& key, const AttributeValue& value) {
  using namespace json_text;
  at = put_literal(at, "{\"key\":");
  at = key.plain() ? put_plain_string(at, key.view()) : put_string(at, key.view());
  switch (value.index()) {
    case 0:
      at = put_literal(at, ",\"value\":{\"stringValue\":");
      at = put_string(at, *std::get_if<0>(&value));
      break;
    case 1:
      at = put_literal(at, ",\"value\":{\"intValue\":");
      at = put_quoted_integer(at, *std::get_if<1>(&value));
      break;
    case 2:
      at = put_literal(at, ",\"value\":{\"doubleValue\":");
      at = put_number(at, *std::get_if<2>(&value));
      break;
    default:
      at = put_literal(at, ",\"value\":{\"boolValue\":");
      at = put_boolean(at, *std::get_if<3>(&value));
      break;
  }
  return put_literal(at, "}},");
}

char* put_otlp_attributes(char* at, const Attributes& attributes) {
  *at++ = '[';
  for (const auto& [key, value] : attributes) at = put_otlp_attribute(at, key, value);
  if (!attributes.empty()) --at;  // the last ','
  *at++ = ']';
  return at;
}

std::int64_t nanos_since_epoch(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::size_t otlp_span_bound(const Span& s) {
  using json_text::string_bound;
  // The fixed text (some 250 bytes with the ids and times) and the three ids, generously.
  std::size_t n = 512 + string_bound(s.context.tracestate.size()) + string_bound(s.name.size()) +
                  string_bound(s.status_message.size()) + otlp_attributes_bound(s.attributes);
  for (const auto& e : s.events) n += 80 + string_bound(e.name.size()) + otlp_attributes_bound(e.attributes);
  return n;
}

char* put_otlp_span(char* at, const Span& s) {
  using namespace json_text;
  at = put_literal(at, "{\"traceId\":\"");
  at = put_hex(at, s.context.trace_id);
  at = put_literal(at, "\",\"spanId\":\"");
  at = put_hex(at, s.context.span_id);
  *at++ = '"';
  if (!s.context.tracestate.empty()) {
    at = put_literal(at, ",\"traceState\":");
    at = put_string(at, s.context.tracestate);
  }
  if (s.parent_span_id) {
    at = put_literal(at, ",\"parentSpanId\":\"");
    at = put_hex(at, *s.parent_span_id);
    *at++ = '"';
  }
  at = put_literal(at, ",\"name\":");
  at = put_string(at, s.name);
  if (s.kind == SpanKind::client) at = put_literal(at, ",\"kind\":3");  // SPAN_KIND_CLIENT
  else at = put_literal(at, ",\"kind\":1");                             // SPAN_KIND_INTERNAL
  at = put_literal(at, ",\"startTimeUnixNano\":");
  at = put_quoted_integer(at, static_cast<std::int64_t>(otlp_unix_nanos(s.start)));
  at = put_literal(at, ",\"endTimeUnixNano\":");
  at = put_quoted_integer(at, static_cast<std::int64_t>(otlp_unix_nanos(s.end)));
  at = put_literal(at, ",\"attributes\":");
  at = put_otlp_attributes(at, s.attributes);
  at = put_literal(at, ",\"events\":[");
  for (const auto& e : s.events) {
    at = put_literal(at, "{\"timeUnixNano\":");
    at = put_quoted_integer(at, static_cast<std::int64_t>(otlp_unix_nanos(e.time)));
    at = put_literal(at, ",\"name\":");
    at = put_string(at, e.name);
    at = put_literal(at, ",\"attributes\":");
    at = put_otlp_attributes(at, e.attributes);
    at = put_literal(at, "},");
  }
  if (!s.events.empty()) --at;  // the last ','
  *at++ = ']';
  if (s.dropped_events) {
    at = put_literal(at, ",\"droppedEventsCount\":");
    at = put_integer(at, s.dropped_events);
  }
  at = put_literal(at, ",\"status\":{");
  if (s.status == SpanStatus::ok) at = put_literal(at, "\"code\":1");  // STATUS_CODE_OK
  if (s.status == SpanStatus::error) {
    at = put_literal(at, "\"code\":2");  // STATUS_CODE_ERROR
    if (!s.status_message.empty()) {
      at = put_literal(at, ",\"message\":");
      at = put_string(at, s.status_message);
    }
  }
  return put_literal(at, "}}");
}

std::string otlp_json_head(std::string_view service_name) {
  std::string text;
  {
    Writer out(text);  // completes the text when it goes
    out.literal("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    out.string(service_name);
    out.literal("}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"errand\",\"version\":\"0.1\"},\"spans\":[");
  }
  return text;
}

std::string_view otlp_json_tail() { return "]}]}]}"; }

void append_otlp_span_json(std::string& out, const Span& span) {
  std::size_t used = out.size();
  std::size_t bound = otlp_span_bound(span);
  out.resize(used + bound);
  char* end = put_otlp_span(out.data() + used, span);
  assert(static_cast<std::size_t>(end - out.data()) <= used + bound);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

std::string encode_otlp_json(const std::vector<Span>& spans, std::string_view service_name) {
  std::string text = otlp_json_head(service_name);
  text.reserve(text.size() + spans.size() * 768 + 16);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) text += ',';
    append_otlp_span_json(text, spans[i]);
  }
  text += otlp_json_tail();
  return text;
}

namespace {

// Attributes as one flat JSON object, for jq.
void plain_attributes_text(Writer& out, const Attributes& attributes) {
  out.character('{');
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) out.character(',');
    first = false;
    if (key.plain()) out.plain_string(key.view());
    else out.string(key);
    out.character(':');
    std::visit(
        [&out](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) out.string(v);
          else if constexpr (std::is_same_v<T, std::int64_t>) out.integer(v);
          else if constexpr (std::is_same_v<T, double>) out.number(v);
          else out.boolean(v);
        },
        value);
  }
  out.character('}');
}

}  // namespace

std::string encode_json_line(const Span& s, std::string_view service_name) {
  std::string text;
  text.reserve(512);
  {
    Writer out(text);
    out.literal("{\"trace_id\":\"");
    out.hex(s.context.trace_id);
    out.literal("\",\"span_id\":\"");
    out.hex(s.context.span_id);
    out.literal("\",\"parent_span_id\":");
    if (s.parent_span_id) {
      out.character('"');
      out.hex(*s.parent_span_id);
      out.character('"');
    } else {
      out.literal("null");
    }
    out.literal(",\"name\":");
    out.string(s.name);
    out.literal(",\"kind\":");
    out.string(kind_name(s.kind));
    out.literal(",\"start_unix_nano\":");
    out.integer(nanos_since_epoch(s.start));
    out.literal(",\"end_unix_nano\":");
    out.integer(nanos_since_epoch(s.end));
    out.literal(",\"duration_ms\":");
    out.number(std::round(millis(s.start, s.end) * 1000) / 1000);
    out.literal(",\"attributes\":");
    plain_attributes_text(out, s.attributes);
    out.literal(",\"events\":[");
    bool first = true;
    for (const auto& e : s.events) {
      if (!first) out.character(',');
      first = false;
      out.literal("{\"name\":");
      out.string(e.name);
      out.literal(",\"time_unix_nano\":");
      out.integer(nanos_since_epoch(e.time));
      out.literal(",\"attributes\":");
      plain_attributes_text(out, e.attributes);
      out.character('}');
    }
    out.literal("],\"status\":{\"code\":");
    out.string(status_name(s.status));
    if (!s.status_message.empty()) {
      out.literal(",\"message\":");
      out.string(s.status_message);
    }
    out.literal("},\"service.name\":");
    out.string(service_name);
    out.character('}');
  }  // the Writer completes the text
  return text;
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
