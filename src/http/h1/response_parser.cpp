#include "http/h1/response_parser.hpp"

#include <string_view>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include "http/token.hpp"

namespace errand::http::h1 {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

// A comma-separated list whose elements, trimmed of spaces and tabs, are empty or tokens.
bool plain_token_list(std::string_view list) {
  for (;;) {
    std::size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !is_token(element)) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

struct ResponseParser::Impl final : bhttp::basic_parser<false> {
  ResponseHead head;
  std::string_view piece;
  bool has_piece = false;
  std::uint64_t length_body_received = 0;  // of a Content-Length body
  bool close_delimited = false;
  std::size_t limit = 0;
  std::size_t header_consumed = 0;  // header bytes consumed so far
  std::uint64_t chunk_left = 0;     // bytes of the current chunk still to come; 0 between chunks
  // Taken when the header is done: Beast also reads a Connection field of the trailer section
  // into its keep_alive(), which only the header may decide (RFC 9110 §6.5.1).
  bool header_keep_alive = false;

  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int, beast::error_code&) override {}

  void on_response_impl(int code, beast::string_view reason, int version, beast::error_code& ec) override {
    // Beast takes any three digits. Below 100 there is no status class (RFC 9110 §15), and 0
    // is what a Response holds when it has no status: refuse the response rather than let a
    // "000" pass for one.
    if (code < 100) {
      ec = bhttp::error::bad_status;
      return;
    }
    head.status = code;
    head.headers.reserve(12);  // typical responses fit without regrowing
    head.reason.assign(reason.data(), reason.size());
    head.version = version;
  }

  void on_field_impl(bhttp::field field, beast::string_view name, beast::string_view value,
                     beast::error_code& ec) override {
    // Beast reports chunked trailer fields here too; they must not pose as header fields
    // (RFC 9110 §6.5.1), and nothing uses them yet: drop them.
    if (is_header_done()) return;
    // Beast reads a Transfer-Encoding list only up to a coding with parameters or anything else
    // that is not a token: "gzip;x=1, chunked" is not chunked to it, though RFC 9112 says it is.
    // Such a field is refused (as the load generator's framer refuses it), so that no two
    // readers frame the body differently.
    if (field == bhttp::field::transfer_encoding && !plain_token_list(std::string_view(value.data(), value.size()))) {
      ec = bhttp::error::bad_transfer_encoding;
      return;
    }
    head.headers.add(std::string_view(name.data(), name.size()), std::string_view(value.data(), value.size()));
  }

  void on_header_impl(beast::error_code&) override { header_keep_alive = keep_alive(); }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}

  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    piece = std::string_view(body.data(), body.size());
    has_piece = true;
    length_body_received += body.size();
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t size, beast::string_view, beast::error_code&) override {
    chunk_left = size;
  }

  std::size_t on_chunk_body_impl(std::uint64_t remain, beast::string_view body, beast::error_code&) override {
    chunk_left = remain - body.size();
    piece = std::string_view(body.data(), body.size());
    has_piece = true;
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {}
};

namespace {

Error header_too_large(std::size_t header_limit) {
  return Error(ErrorKind::protocol, "response header exceeds the limit of " + std::to_string(header_limit) + " bytes",
               std::make_error_code(std::errc::message_size), Phase::read);
}

Error framing_too_large(std::size_t header_limit) {
  return Error(ErrorKind::protocol,
               "a chunk header or the trailer section of the response exceeds the limit of " +
                   std::to_string(header_limit) + " bytes",
               std::make_error_code(std::errc::message_size), Phase::read);
}

Error to_error(const beast::error_code& ec, std::size_t header_limit) {
  if (ec == bhttp::error::header_limit) return header_too_large(header_limit);
  if (ec == bhttp::error::partial_message)
    return Error(ErrorKind::io, "the connection closed before the response was complete",
                 std::make_error_code(std::errc::connection_aborted), Phase::read);
  return Error(ErrorKind::protocol, "malformed response: " + ec.message(),
               std::make_error_code(std::errc::protocol_error), Phase::read);
}

}  // namespace

ResponseParser::ResponseParser(std::size_t header_limit, bool head_request) : impl_(std::make_unique<Impl>()) {
  impl_->limit = header_limit;
  impl_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(header_limit, UINT32_MAX)));
  impl_->body_limit(boost::none);  // limits on bodies are the caller's (buffered vs streamed)
  impl_->eager(false);
  if (head_request) impl_->skip(true);
}

ResponseParser::~ResponseParser() = default;

Result<ResponseParser::Step> ResponseParser::feed(std::string_view data) {
  Step step;
  bool header_was_done = impl_->is_header_done();
  // The bytes not consumed are the incomplete part of the header or, in a chunked body, of a
  // chunk header or the trailer section; the caller holds on to them until more arrive, so they
  // must stay within the limit. Beast bounds neither: its header limit applies to one put() and
  // forgets the fields consumed by earlier ones, and chunk headers and trailers have no limit.
  // (Lowering Beast's limit to what is left of the budget does not help: once it is below what
  // Beast has already scanned, Beast answers need_more for ever and the header grows unbounded.)
  auto need_more = [&]() -> Result<Step> {
    std::size_t held = data.size() - step.consumed;
    if (!header_was_done && impl_->header_consumed + held > impl_->limit)
      return fail(header_too_large(impl_->limit));
    if (header_was_done && held > impl_->limit) return fail(framing_too_large(impl_->limit));
    step.event = Event::need_more;
    return step;
  };
  for (;;) {
    impl_->has_piece = false;
    if (header_was_done && impl_->chunked() && impl_->chunk_left == 0 && data.size() - step.consumed < 5) {
      // Between chunks, what is left of a valid body is at least "0\r\n\r\n". Beast (as in
      // Boost 1.81) asserts when it is given fewer bytes after a last chunk whose CRLF arrives
      // in pieces (fixed by boostorg/beast#2861); waiting for five costs nothing.
      return need_more();
    }
    beast::error_code ec;
    std::size_t n = impl_->put(boost::asio::const_buffer(data.data() + step.consumed, data.size() - step.consumed), ec);
    step.consumed += n;
    if (!header_was_done) impl_->header_consumed += n;
    if (ec == bhttp::error::need_more) return need_more();
    if (ec) return fail(to_error(ec, impl_->limit));
    if (!header_was_done && impl_->header_consumed > impl_->limit) return fail(header_too_large(impl_->limit));
    if (impl_->has_piece) {
      step.event = Event::piece;
      step.piece = impl_->piece;
      return step;
    }
    if (impl_->is_done()) {
      step.event = header_was_done ? Event::done : Event::header;
      return step;
    }
    if (!header_was_done && impl_->is_header_done()) {
      impl_->close_delimited = !impl_->chunked() && !impl_->content_length();
      step.event = Event::header;
      return step;
    }
    if (n == 0 || step.consumed == data.size()) return need_more();
  }
}

Result<void> ResponseParser::feed_eof() {
  if (impl_->is_done()) return {};
  if (!impl_->got_some())
    return fail(Error(ErrorKind::io, "the server closed the connection without sending a response",
                      std::make_error_code(std::errc::connection_aborted), Phase::first_byte));
  beast::error_code ec;
  impl_->put_eof(ec);
  if (ec) return fail(to_error(ec, 0));
  return {};
}

bool ResponseParser::header_done() const noexcept { return impl_->is_header_done(); }
bool ResponseParser::done() const noexcept { return impl_->is_done(); }
bool ResponseParser::got_some() const noexcept { return impl_->got_some(); }
bool ResponseParser::keep_alive() const noexcept { return impl_->header_keep_alive; }
bool ResponseParser::chunked() const noexcept { return impl_->chunked(); }
bool ResponseParser::close_delimited() const noexcept { return impl_->close_delimited; }
std::optional<std::uint64_t> ResponseParser::content_length() const noexcept {
  auto cl = impl_->content_length();
  if (!cl) return std::nullopt;
  return *cl;
}
std::optional<std::uint64_t> ResponseParser::length_body_remaining() const noexcept {
  if (!impl_->is_header_done() || impl_->chunked()) return std::nullopt;
  auto cl = impl_->content_length();
  if (!cl) return std::nullopt;
  return *cl - std::min<std::uint64_t>(*cl, impl_->length_body_received);
}
ResponseHead& ResponseParser::head() noexcept { return impl_->head; }

}  // namespace errand::http::h1
