// RFC 9110 tokens and optional whitespace: the character classes that header names, methods
// and list elements (Transfer-Encoding) are checked with, by headers.cpp, the request
// serializer and the response parser.
#pragma once

#include <array>
#include <string_view>

namespace errand::http {

// tchar, as a table: every request's header names go through it.
inline constexpr std::array<bool, 256> tchar_table = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 32] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

inline bool is_tchar(unsigned char c) noexcept { return tchar_table[c]; }

// A token: one tchar or more.
inline bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// Without the spaces and tabs (OWS) around it.
inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace errand::http
