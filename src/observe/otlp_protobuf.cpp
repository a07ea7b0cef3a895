// The OTLP/HTTP protobuf encoding of spans (opentelemetry-proto, collector/trace/v1): the wire
// format written by hand, as the JSON one is, for the few messages a span needs. Every length
// prefix is exact: a message is written after room for its bound's length and moved back when
// its own length is shorter (put_message); strings that are not UTF-8 get U+FFFD for each bad
// byte, as in the JSON text (protobuf strings must be UTF-8).
#include <bit>
#include <cstring>

#include "observe/json_writer.hpp"
#include "observe/otlp_encoding.hpp"

namespace errand::observe {

namespace {

// Field keys: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
constexpr unsigned char varint_field(unsigned field) { return static_cast<unsigned char>(field << 3 | 0); }
constexpr unsigned char fixed64_field(unsigned field) { return static_cast<unsigned char>(field << 3 | 1); }
constexpr unsigned char length_field(unsigned field) { return static_cast<unsigned char>(field << 3 | 2); }

constexpr std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Most lengths are under 128: one byte, with no loop.
inline char* put_varint(char* at, std::uint64_t v) {
  if (v < 0x80) {
    *at = static_cast<char>(v);
    return at + 1;
  }
  while (v >= 0x80) {
    *at++ = static_cast<char>(static_cast<unsigned char>(v) | 0x80);
    v >>= 7;
  }
  *at++ = static_cast<char>(v);
  return at;
}

inline char* put_fixed64(char* at, std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(at, &v, 8);  // little-endian on the wire
  return at + 8;
}

// U+FFFD, what a byte that starts no valid UTF-8 sequence becomes.
constexpr char replacement[] = "\xEF\xBF\xBD";

// Whether `s` is all ASCII, checked a word at a time.
inline bool ascii(std::string_view s) {
  return word_scan::all_words(
      s, [](std::uint64_t w) { return word_scan::bytes_high(w) == 0; }, [](unsigned char c) { return c < 0x80; });
}

// Walks `s` as UTF-8: `valid(at, length)` for each valid sequence, `bad()` for each byte that
// starts none (it becomes U+FFFD).
template <class Valid, class Bad>
void walk_utf8(std::string_view s, Valid valid, Bad bad) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : json_text::utf8_length(s.substr(i));
    if (len == 0) {
      bad();
      ++i;
    } else {
      valid(s.data() + i, len);
      i += len;
    }
  }
}

// The size of `s` once bytes that are not UTF-8 are replaced.
[[gnu::noinline]] std::size_t text_size_slow(std::string_view s) {
  std::size_t n = 0;
  walk_utf8(s, [&n](const char*, std::size_t len) { n += len; }, [&n] { n += sizeof replacement - 1; });
  return n;
}

inline std::size_t text_size(std::string_view s) { return ascii(s) ? s.size() : text_size_slow(s); }

[[gnu::noinline]] char* put_text_slow(char* at, std::string_view s) {
  walk_utf8(
      s,
      [&at](const char* from, std::size_t len) {
        std::memcpy(at, from, len);
        at += len;
      },
      [&at] { at = json_text::put_literal(at, replacement); });
  return at;
}

// `size` is text_size(s): the same as s.size() when nothing is replaced (the text is valid
// UTF-8 then, so it is copied as it is).
inline char* put_text(char* at, std::string_view s, std::size_t size) {
  return size == s.size() ? json_text::put_bytes(at, s.data(), s.size()) : put_text_slow(at, s);
}

// A string field: key, length, text.
inline std::size_t string_field_size(std::size_t text) { return 1 + varint_size(text) + text; }
inline char* put_string_field(char* at, unsigned char key, std::string_view s, std::size_t size) {
  *at++ = static_cast<char>(key);
  at = put_varint(at, size);
  return put_text(at, s, size);
}

// A message written in one pass: its content goes after room for the longest length its
// bound allows, and is moved back over what the actual length leaves unused (only a message
// whose bound and size fall on different sides of a power of 128).
template <class Content>
char* put_message(char* at, unsigned char key, std::size_t bound, Content&& content) {
  *at++ = static_cast<char>(key);
  const std::size_t room = varint_size(bound);
  char* begin = at + room;
  char* end = content(begin);
  const auto size = static_cast<std::size_t>(end - begin);
  if (const std::size_t used = varint_size(size); used < room) {
    std::memmove(at + used, begin, size);
    end -= room - used;
  }
  put_varint(at, size);
  return end;
}

// KeyValue { key 1, value 2: AnyValue { string_value 1, bool_value 2, int_value 3,
// double_value 4 } }, as field `field`. Its lengths need its texts' sizes only, so it is
// sized and written in one go. A oneof member is written even when it holds its type's
// default, so that the receiver knows which one is set.
[[gnu::always_inline]] inline char* put_attribute(char* at, unsigned field, const AttributeName& key,
                                                 const AttributeValue& value) {
  const std::string_view name = key.view();
  const std::size_t key_size = key.plain() ? name.size() : text_size(name);
  std::size_t text = 0;  // the string value's, once its bad bytes are replaced
  std::size_t any;
  switch (value.index()) {
    case 0:
      text = text_size(*std::get_if<0>(&value));
      any = string_field_size(text);
      break;
    case 1: any = 1 + varint_size(static_cast<std::uint64_t>(*std::get_if<1>(&value))); break;
    case 2: any = 1 + 8; break;
    default: any = 1 + 1; break;
  }
  *at++ = static_cast<char>(length_field(field));
  at = put_varint(at, string_field_size(key_size) + 1 + varint_size(any) + any);
  at = put_string_field(at, length_field(1), name, key_size);
  *at++ = static_cast<char>(length_field(2));
  at = put_varint(at, any);
  switch (value.index()) {
    case 0: return put_string_field(at, length_field(1), *std::get_if<0>(&value), text);
    case 1:
      *at++ = static_cast<char>(varint_field(3));
      return put_varint(at, static_cast<std::uint64_t>(*std::get_if<1>(&value)));  // two's complement
    case 2: {
      *at++ = static_cast<char>(fixed64_field(4));
      std::uint64_t bits;
      double d = *std::get_if<2>(&value);
      std::memcpy(&bits, &d, 8);
      return put_fixed64(at, bits);
    }
    default:
      *at++ = static_cast<char>(varint_field(2));
      *at++ = *std::get_if<3>(&value) ? 1 : 0;
      return at;
  }
}

char* put_attributes(char* at, unsigned field, const Attributes& attributes) {
  for (const auto& [key, value] : attributes) at = put_attribute(at, field, key, value);
  return at;
}

char* put_bytes_field(char* at, unsigned char key, const unsigned char* bytes, std::size_t n) {
  *at++ = static_cast<char>(key);
  *at++ = static_cast<char>(n);  // ids: 8 or 16 bytes
  std::memcpy(at, bytes, n);
  return at + n;
}

// Bounds, found without reading a string: a text field (key, longest length, each byte
// replaced by three); an attribute (three keys and lengths, its key, its value).
constexpr std::size_t text_bound(std::size_t size) { return 1 + 10 + size * 3; }

std::size_t attributes_bound(const Attributes& attributes) {
  std::size_t n = 0;
  for (const auto& [key, value] : attributes) {
    n += 3 * 11 + text_bound(key.view().size());
    const auto* text = std::get_if<std::string>(&value);
    n += text ? text_bound(text->size()) : 11;
  }
  return n;
}

// What follows the key of a span or event field: all but the key and the length.
std::size_t event_bound(const SpanEvent& e) { return 9 + text_bound(e.name.size()) + attributes_bound(e.attributes); }

std::size_t span_content_bound(const Span& s) {
  // Ids, parent, kind, times, dropped events and status code: under 100 bytes.
  std::size_t n = 128 + text_bound(s.context.tracestate.size()) + text_bound(s.name.size()) +
                  text_bound(s.status_message.size()) + attributes_bound(s.attributes);
  for (const auto& e : s.events) n += 11 + event_bound(e);
  return n;
}

// Unset fields and empty names, tracestate and status message are left out, as proto3
// encoders leave out defaults; a oneof member and an attribute's key are always written.
// Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
// start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, events 11 (Event:
// time_unix_nano 1, name 2, attributes 3), dropped_events_count 12, status 15 (Status:
// message 2, code 3; unset is no Status at all).
char* put_span_content(char* at, const Span& s) {
  at = put_bytes_field(at, length_field(1), s.context.trace_id.data(), s.context.trace_id.size());
  at = put_bytes_field(at, length_field(2), s.context.span_id.data(), s.context.span_id.size());
  if (!s.context.tracestate.empty())
    at = put_string_field(at, length_field(3), s.context.tracestate, text_size(s.context.tracestate));
  if (s.parent_span_id) at = put_bytes_field(at, length_field(4), s.parent_span_id->data(), s.parent_span_id->size());
  if (!s.name.empty()) at = put_string_field(at, length_field(5), s.name, text_size(s.name));
  *at++ = static_cast<char>(varint_field(6));
  *at++ = s.kind == SpanKind::client ? 3 : 1;  // SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL
  *at++ = static_cast<char>(fixed64_field(7));
  at = put_fixed64(at, otlp_unix_nanos(s.start));
  *at++ = static_cast<char>(fixed64_field(8));
  at = put_fixed64(at, otlp_unix_nanos(s.end));
  at = put_attributes(at, 9, s.attributes);
  for (const auto& e : s.events) {
    at = put_message(at, length_field(11), event_bound(e), [&e](char* p) {
      *p++ = static_cast<char>(fixed64_field(1));
      p = put_fixed64(p, otlp_unix_nanos(e.time));
      if (!e.name.empty()) p = put_string_field(p, length_field(2), e.name, text_size(e.name));
      return put_attributes(p, 3, e.attributes);
    });
  }
  if (s.dropped_events) {
    *at++ = static_cast<char>(varint_field(12));
    at = put_varint(at, s.dropped_events);
  }
  if (s.status != SpanStatus::unset) {
    std::size_t message = s.status == SpanStatus::error ? text_size(s.status_message) : 0;
    *at++ = static_cast<char>(length_field(15));
    at = put_varint(at, 2 + (message ? string_field_size(message) : 0));
    if (message) at = put_string_field(at, length_field(2), s.status_message, message);
    *at++ = static_cast<char>(varint_field(3));
    *at++ = s.status == SpanStatus::error ? 2 : 1;  // STATUS_CODE_ERROR, STATUS_CODE_OK
  }
  return at;
}

}  // namespace

std::size_t otlp_proto_span_bound(const Span& span) { return 11 + span_content_bound(span); }

char* put_otlp_proto_span(char* at, const Span& span, std::size_t bound) {
  return put_message(at, length_field(2), bound - 11, [&span](char* p) { return put_span_content(p, span); });
}

// ExportTraceServiceRequest { resource_spans 1: ResourceSpans { resource 1: Resource {
// attributes 1: service.name }, scope_spans 2: ScopeSpans { scope 1: { name 1, version 2 },
// spans 2... } } }. The two outer lengths count the spans.
std::string otlp_proto_head(std::string_view service_name, std::size_t spans_size) {
  Attributes resource{{AttributeName::literal("service.name"), std::string(service_name)}};
  std::string service(attributes_bound(resource), '\0');  // the resource's one attribute
  service.resize(static_cast<std::size_t>(put_attributes(service.data(), 1, resource) - service.data()));
  std::size_t resource_size = service.size();
  constexpr std::string_view scope_name = "errand", scope_version = "0.1";
  std::size_t scope_size = string_field_size(scope_name.size()) + string_field_size(scope_version.size());
  std::size_t scope_spans = 1 + varint_size(scope_size) + scope_size + spans_size;
  std::size_t resource_spans = 1 + varint_size(resource_size) + resource_size + 1 + varint_size(scope_spans) + scope_spans;
  std::string head(resource_size + 64, '\0');  // the service name is its only part of any size
  char* at = head.data();
  *at++ = static_cast<char>(length_field(1));
  at = put_varint(at, resource_spans);
  *at++ = static_cast<char>(length_field(1));
  at = put_varint(at, resource_size);
  std::memcpy(at, service.data(), service.size());
  at += service.size();
  *at++ = static_cast<char>(length_field(2));
  at = put_varint(at, scope_spans);
  *at++ = static_cast<char>(length_field(1));
  at = put_varint(at, scope_size);
  at = put_string_field(at, length_field(1), scope_name, scope_name.size());
  at = put_string_field(at, length_field(2), scope_version, scope_version.size());
  head.resize(static_cast<std::size_t>(at - head.data()));
  return head;
}

std::string encode_otlp_protobuf(const std::vector<Span>& spans, std::string_view service_name) {
  std::size_t bound = 0;
  for (const auto& s : spans) bound += otlp_proto_span_bound(s);
  std::string fields(bound, '\0');
  char* at = fields.data();
  for (const auto& s : spans) at = put_otlp_proto_span(at, s, otlp_proto_span_bound(s));
  fields.resize(static_cast<std::size_t>(at - fields.data()));
  return otlp_proto_head(service_name, fields.size()) + fields;
}

}  // namespace errand::observe
