#include <errand/http/headers.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/word_scan.hpp"
#include "http/token.hpp"

namespace errand::http {

namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Whether `value` holds CR, LF or NUL. Eight bytes at a time: every header of every request
// passes here, and a traceparent alone is 55 bytes.
bool has_line_break_or_nul(std::string_view value) noexcept {
  using namespace word_scan;
  std::size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    std::uint64_t w = load(value.data() + i);
    if (bytes_equal(w, '\0') | bytes_equal(w, '\r') | bytes_equal(w, '\n')) return true;
  }
  for (; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

void Headers::add(std::string name, std::string value) {
  fields_.push_back(HeaderField{std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
  remove(name);
  fields_.push_back(HeaderField{std::string(name), std::move(value)});
}

void Headers::set_in_place(std::string_view name, std::string value) {
  auto first = std::find_if(fields_.begin(), fields_.end(), [&](const HeaderField& f) { return iequals(f.name, name); });
  if (first == fields_.end()) {
    fields_.push_back(HeaderField{std::string(name), std::move(value)});
    return;
  }
  first->value = std::move(value);
  fields_.erase(std::remove_if(std::next(first), fields_.end(), [&](const HeaderField& f) { return iequals(f.name, name); }),
                fields_.end());
}

std::size_t Headers::remove(std::string_view name) {
  auto before = fields_.size();
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                               [&](const HeaderField& f) { return iequals(f.name, name); }),
                fields_.end());
  return before - fields_.size();
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& f : fields_)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_)
    if (iequals(f.name, name)) out.emplace_back(f.value);
  return out;
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
  for (const auto& f : fields_) {
    if (!iequals(f.name, name)) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = trim_ows(rest.substr(0, comma));
      if (iequals(item, token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

namespace {

// The failures of validate_field, out of its way: every header of every request passes there.
[[gnu::noinline, gnu::cold]] Result<void> invalid_name(std::string_view name, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string shown = (c == '\r') ? "\\r"
                      : (c == '\n') ? "\\n"
                      : (c < 0x20 || c >= 0x7f) ? std::string{'\\', 'x', hex[c >> 4], hex[c & 0xf]}
                                                : std::string(1, static_cast<char>(c));
  return fail(Error::config("invalid character '" + shown + "' in header name \"" + std::string(name.substr(0, 64)) + "\""));
}

[[gnu::noinline, gnu::cold]] Result<void> injected_value(std::string_view name) {
  return fail(Error::config("header \"" + std::string(name) + "\" value contains CR, LF or NUL (header injection refused)"));
}

}  // namespace

Result<void> validate_field(std::string_view name, std::string_view value) {
  if (name.empty()) return fail(Error::config("empty header name"));
  for (unsigned char c : name)
    if (!is_tchar(c)) return invalid_name(name, c);
  if (has_line_break_or_nul(value)) return injected_value(name);
  return {};
}

Result<HeaderField> parse_header_line(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return fail(Error::config("header \"" + std::string(line.substr(0, 64)) + "\" has no ':' (expected \"Name: value\")"));
  HeaderField field{std::string(trim_ows(line.substr(0, colon))), std::string(trim_ows(line.substr(colon + 1)))};
  if (auto ok = validate_field(field.name, field.value); !ok) return fail(ok.error());
  return field;
}

}  // namespace errand::http
