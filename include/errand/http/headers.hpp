// errand/http/headers.hpp — an ordered, case-insensitive header multimap.
//
//   Headers h;
//   h.add("Accept", "application/json");
//   h.set("user-agent", "errand");          // replaces every "User-Agent"
//   if (auto v = h.get("USER-AGENT")) ...   // first value, case-insensitive name match
//
// Fields keep the order and spelling they were added with, as they go on the wire.
// Validation is separate (validate_field) so that parsing a response never fails on a
// header the peer sent, while requests built by users are checked before they are sent.
// Not synchronised.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <errand/core/error.hpp>

namespace errand::http {

bool iequals(std::string_view a, std::string_view b) noexcept;

struct HeaderField {
  HeaderField() = default;
  HeaderField(std::string n, std::string v) : name(std::move(n)), value(std::move(v)) {}
  std::string name;
  std::string value;
};

class Headers {
 public:
  using const_iterator = std::vector<HeaderField>::const_iterator;

  void add(std::string name, std::string value);
  void add(std::string_view name, std::string_view value) {
    auto& field = fields_.emplace_back();  // built in place: no temporaries to move
    field.name.assign(name);
    field.value.assign(value);
  }
  void add(const char* name, const char* value) { add(std::string_view(name), std::string_view(value)); }
  void set(std::string_view name, std::string value);  // remove all, then add
  // The first field of that name gets the value (keeping its place and spelling), the others
  // go; added when absent. For a layer that sets a field on every attempt (traceparent).
  void set_in_place(std::string_view name, std::string value);
  std::size_t remove(std::string_view name);            // returns how many were removed
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  // Whether a comma-separated header (Connection, Transfer-Encoding) lists `token`.
  bool has_token(std::string_view name, std::string_view token) const;

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  void clear() noexcept { fields_.clear(); }
  void reserve(std::size_t n) { fields_.reserve(n); }
  const_iterator begin() const noexcept { return fields_.begin(); }
  const_iterator end() const noexcept { return fields_.end(); }

 private:
  std::vector<HeaderField> fields_;
};

// Checks a header a user wants to send: the name must be an RFC 9110 token and neither name
// nor value may hold CR, LF or NUL (header injection). Error kind: config.
Result<void> validate_field(std::string_view name, std::string_view value);

// Parses "Name: value" as given on a command line (-H). Error kind: config.
Result<HeaderField> parse_header_line(std::string_view line);

}  // namespace errand::http
