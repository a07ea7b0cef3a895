// libFuzzer target for errand::http::Url: parse and resolve must never crash, and every URL
// they accept must be safe to put on a request line and must survive a round trip.
#include <errand/http/url.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using errand::http::Url;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

bool has_control(std::string_view text) {
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Messages quote parts of the input, escaped: they must stay printable ASCII.
void check(const errand::Error& error) {
  require(error.kind() == errand::ErrorKind::config);
  require(!error.message().empty());
  for (char ch : error.message()) {
    auto c = static_cast<unsigned char>(ch);
    require(c >= 0x20 && c < 0x7f);
  }
}

// What every accepted URL must satisfy.
void check(const Url& url) {
  const std::string target = url.target();
  require(!target.empty() && target[0] == '/');
  require(!has_control(target));
  require(!has_control(url.host_header()));
  require(!has_control(url.origin()));
  require(!url.host().empty());
  require(url.scheme() == "http" || url.scheme() == "https");
  require(!url.is_ipv6_literal() || url.is_ip_literal());

  const std::string text = url.to_string();
  auto again = Url::parse(text);
  require(again.has_value());
  require(*again == url);
  require(again->to_string() == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The base URL and a reference to resolve against it: split at the first NUL, or halfway.
  std::size_t split = input.find('\0');
  std::string_view base_text = split == std::string_view::npos ? input.substr(0, size / 2) : input.substr(0, split);
  std::string_view reference =
      split == std::string_view::npos ? input.substr(size / 2) : input.substr(split + 1);

  if (auto whole = Url::parse(input)) {
    check(*whole);
  } else {
    check(whole.error());
  }

  if (auto base = Url::parse(base_text)) {
    check(*base);
    if (auto resolved = base->resolve(reference)) {
      check(*resolved);
    } else {
      check(resolved.error());
    }
  }

  auto decoded = errand::http::percent_decode(errand::http::percent_encode(input));
  require(decoded.has_value() && *decoded == input);
  if (auto raw = errand::http::percent_decode(input); !raw) check(raw.error());
  return 0;
}
