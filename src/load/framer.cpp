#include "load/framer.hpp"

#include <errand/http/headers.hpp>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace errand::load {
namespace {

// Byte classes, looked up once per byte of a head.
struct ByteClasses {
  bool token[256] = {};       // RFC 9110 tchar
  bool value_ok[256] = {};    // allowed in a field value or reason phrase (no CTL but HTAB; CR checked apart)
  constexpr ByteClasses() {
    for (int c = '0'; c <= '9'; ++c) token[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) token[c] = token[c - 32] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) token[static_cast<unsigned char>(c)] = true;
    for (int c = 0; c < 256; ++c) value_ok[c] = (c >= 0x20 && c != 0x7f) || c == '\t' || c == '\r';
  }
};
constexpr ByteClasses classes;

bool is_token_char(unsigned char c) noexcept { return classes.token[c]; }

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  char l = lower(c);
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

// Calls `token(begin, length)` for each element of a comma-separated list, trimmed of OWS.
template <class F>
void for_each_list_element(const char* v, std::size_t n, F&& token) {
  std::size_t i = 0;
  while (i <= n) {
    std::size_t start = i;
    while (i < n && v[i] != ',') ++i;
    std::size_t b = start, e = i;
    while (b < e && (v[b] == ' ' || v[b] == '\t')) ++b;
    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) --e;
    if (e > b) token(v + b, e - b);
    ++i;
  }
}

}  // namespace

void ResponseFramer::reset(bool head_request) noexcept {
  std::size_t limit = header_limit_;
  BodyObserver* observer = observer_;
  *this = ResponseFramer(limit);
  head_request_ = head_request;
  observer_ = observer;
}

ResponseFramer::Status ResponseFramer::fail(const char* why) noexcept {
  error_ = why;
  state_ = State::failed;
  return Status::error;
}

bool ResponseFramer::end_of_field() noexcept {
  // Trailing OWS is not part of the value.
  while (value_len_ > 0 && (value_[value_len_ - 1] == ' ' || value_[value_len_ - 1] == '\t')) --value_len_;
  switch (field_) {
    case Field::other:
      return true;
    case Field::content_length: {
      if (value_len_ == 0 || value_len_ > 19) {
        fail("invalid Content-Length");
        return false;
      }
      std::uint64_t n = 0;
      for (std::uint16_t i = 0; i < value_len_; ++i) {
        if (value_[i] < '0' || value_[i] > '9') {
          fail("invalid Content-Length");
          return false;
        }
        n = n * 10 + static_cast<std::uint64_t>(value_[i] - '0');
      }
      if (has_length_ && n != content_length_) {
        fail("conflicting Content-Length headers");
        return false;
      }
      has_length_ = true;
      content_length_ = n;
      return true;
    }
    case Field::transfer_encoding: {
      saw_transfer_encoding_ = true;
      bool last_is_chunked = false;
      bool any = false;
      bool valid = true;
      bool twice = false;
      for_each_list_element(value_, value_len_, [&](const char* t, std::size_t n) {
        any = true;
        // A coding is a token. RFC 9112 §7 lets "; name=value" parameters follow it, but Beast
        // (the client's parser) stops reading the list at the first one, so that
        // "gzip;x=1, chunked" is chunked here and not there: such a field is refused, as the
        // client refuses it, so that no two readers frame the body differently. No registered
        // transfer coding takes parameters.
        std::size_t name = 0;
        while (name < n && is_token_char(static_cast<unsigned char>(t[name]))) ++name;
        if (name == 0 || name != n) valid = false;
        last_is_chunked = http::iequals(std::string_view(t, name), "chunked");
        twice = twice || (last_is_chunked && chunked_seen_);
        chunked_seen_ = chunked_seen_ || last_is_chunked;
      });
      if (!valid) {
        fail("invalid Transfer-Encoding");
        return false;
      }
      // RFC 9112 §6.1: chunked is applied once at most. Twice, the framing is ambiguous (Beast,
      // for one, reads such a body otherwise), so the response is refused.
      if (twice) {
        fail("Transfer-Encoding applies chunked more than once");
        return false;
      }
      // A later Transfer-Encoding field continues the list (RFC 9110 §5.3).
      if (any) chunked_ = last_is_chunked;
      return true;
    }
    case Field::content_type: {
      std::size_t n = 0;
      while (n < value_len_ && value_[n] != ';' && value_[n] != ' ' && value_[n] != '\t') ++n;
      event_stream_ = http::iequals(std::string_view(value_, n), "text/event-stream");
      return true;
    }
    case Field::connection:
      for_each_list_element(value_, value_len_, [&](const char* t, std::size_t n) {
        if (http::iequals(std::string_view(t, n), "close")) connection_close_ = true;
        if (http::iequals(std::string_view(t, n), "keep-alive")) connection_keep_alive_ = true;
      });
      return true;
  }
  return true;
}

void ResponseFramer::after_chunk_size() noexcept {
  if (remaining_ == 0) {
    state_ = State::trailer_start;
    return;
  }
  state_ = State::chunk_data;
  if (observer_) observer_->on_chunk();
}

ResponseFramer::Status ResponseFramer::end_of_headers() noexcept {
  if (status_ >= 100 && status_ < 200) {
    if (status_ == 101) return fail("101 Switching Protocols is not supported");
    // An interim response: the final one follows on the same connection.
    std::uint64_t seen = header_bytes_;
    reset(head_request_);
    header_bytes_ = seen;
    return Status::need_more;
  }
  keep_alive_ = http10_ ? (connection_keep_alive_ && !connection_close_) : !connection_close_;
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = State::done;
    return Status::done;
  }
  if (saw_transfer_encoding_) {
    // Transfer-Encoding overrides Content-Length; a peer sending both is not trusted with the
    // connection afterwards (RFC 9112 §6.3).
    if (has_length_) keep_alive_ = false;
    if (chunked_) {
      state_ = State::chunk_size;
      digits_ = 0;
      remaining_ = 0;
    } else {
      state_ = State::body_until_close;
      keep_alive_ = false;
    }
    return Status::need_more;
  }
  if (has_length_) {
    if (content_length_ == 0) {
      state_ = State::done;
      return Status::done;
    }
    remaining_ = content_length_;
    state_ = State::body_length;
    return Status::need_more;
  }
  state_ = State::body_until_close;
  keep_alive_ = false;
  return Status::need_more;
}

ResponseFramer::Status ResponseFramer::feed(const char* data, std::size_t len, std::size_t& consumed) noexcept {
  std::size_t i = 0;
  auto finish = [&](Status s) {
    consumed = i;
    return s;
  };
  while (i < len) {
    switch (state_) {
      // ---- the head: byte by byte, bounded by header_limit_ ----
      case State::status_line_start:
      case State::status_version:
      case State::status_code:
      case State::status_reason:
      case State::status_lf:
      case State::field_start:
      case State::field_name:
      case State::field_value:
      case State::field_lf:
      case State::headers_lf: {
        if (state_ == State::status_reason || (state_ == State::field_value && field_ == Field::other)) {
          // Skip to the end of the line in one step: most of a head is values nobody reads.
          const void* nl = std::memchr(data + i, '\n', len - i);
          std::size_t skip = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - (data + i)) : len - i;
          for (std::size_t k = 0; k < skip; ++k) {
            if (!classes.value_ok[static_cast<unsigned char>(data[i + k])])
              return finish(fail("control character in the response head"));
          }
          header_bytes_ += skip;
          i += skip;
          if (header_bytes_ > header_limit_) return finish(fail("response header exceeds the limit"));
          if (!nl) return finish(Status::need_more);
        } else if (state_ == State::field_name) {
          // The rest of the name in one loop; the byte after it is handled below.
          // Locals, not members, in the loop: stores through char pointers may alias members,
          // which would make the compiler reload and store them for every byte.
          std::size_t k = i;
          std::size_t n = name_len_;
          while (k < len && classes.token[static_cast<unsigned char>(data[k])]) ++k;
          for (std::size_t from = i; from < k && n < sizeof(name_); ++from) name_[n++] = data[from];
          name_len_ = static_cast<std::uint8_t>(std::min<std::size_t>(name_len_ + (k - i), 255));
          header_bytes_ += k - i;
          i = k;
          if (header_bytes_ > header_limit_) return finish(fail("response header exceeds the limit"));
          if (i == len) return finish(Status::need_more);
        } else if (state_ == State::field_value) {
          // A value framing needs, copied up to its line end (bounded by value_).
          std::size_t k = i;
          std::size_t n = value_len_;  // a local for the same reason as above
          while (k < len && data[k] != '\n') {
            unsigned char c = static_cast<unsigned char>(data[k]);
            if (!classes.value_ok[c]) return finish(fail("control character in the response head"));
            if (n == 0 && (c == ' ' || c == '\t')) {
              ++k;  // leading OWS
              continue;
            }
            if (n == sizeof(value_)) return finish(fail("a framing header's value is too long"));
            value_[n++] = static_cast<char>(c);
            ++k;
          }
          value_len_ = static_cast<std::uint16_t>(n);
          header_bytes_ += k - i;
          i = k;
          if (header_bytes_ > header_limit_) return finish(fail("response header exceeds the limit"));
          if (i == len) return finish(Status::need_more);
        }
        if (++header_bytes_ > header_limit_) return finish(fail("response header exceeds the limit"));
        char c = data[i++];
        switch (state_) {
          case State::status_line_start:
            state_ = State::status_version;
            version_len_ = 0;
            [[fallthrough]];
          case State::status_version:
            if (c == ' ') {
              if (version_len_ == 8 && std::memcmp(version_, "HTTP/1.1", 8) == 0) {
                http10_ = false;
              } else if (version_len_ == 8 && std::memcmp(version_, "HTTP/1.0", 8) == 0) {
                http10_ = true;
              } else {
                return finish(fail("not an HTTP/1.x status line"));
              }
              state_ = State::status_code;
              digits_ = 0;
              status_ = 0;
              break;
            }
            if (version_len_ == 8) return finish(fail("not an HTTP/1.x status line"));
            version_[version_len_++] = c;
            break;
          case State::status_code:
            if (c >= '0' && c <= '9' && digits_ < 3) {
              status_ = status_ * 10 + (c - '0');
              ++digits_;
              break;
            }
            if (digits_ != 3 || status_ < 100) return finish(fail("invalid status code"));
            if (c == ' ') state_ = State::status_reason;
            else if (c == '\r') state_ = State::status_lf;
            else if (c == '\n') state_ = State::field_start;
            else return finish(fail("invalid status code"));
            break;
          case State::status_reason:  // here c is the '\n' found above
            state_ = State::field_start;
            break;
          case State::status_lf:
            if (c != '\n') return finish(fail("expected LF after the status line"));
            state_ = State::field_start;
            break;
          case State::field_start:
            if (c == '\r') {
              state_ = State::headers_lf;
              break;
            }
            if (c == '\n') {
              Status s = end_of_headers();
              if (s != Status::need_more) return finish(s);
              break;
            }
            if (c == ' ' || c == '\t') return finish(fail("obsolete line folding in the response head"));
            state_ = State::field_name;
            name_len_ = 0;
            [[fallthrough]];
          case State::field_name:
            if (c == ':') {
              if (name_len_ == 0) return finish(fail("empty header field name"));
              field_ = Field::other;
              if (name_len_ <= sizeof(name_)) {
                if (http::iequals(std::string_view(name_, name_len_), "content-length")) field_ = Field::content_length;
                else if (http::iequals(std::string_view(name_, name_len_), "transfer-encoding")) field_ = Field::transfer_encoding;
                else if (http::iequals(std::string_view(name_, name_len_), "connection")) field_ = Field::connection;
                else if (http::iequals(std::string_view(name_, name_len_), "content-type")) field_ = Field::content_type;
              }
              value_len_ = 0;
              state_ = State::field_value;
              break;
            }
            if (!is_token_char(static_cast<unsigned char>(c))) return finish(fail("invalid header field name"));
            if (name_len_ < sizeof(name_)) name_[name_len_] = c;
            if (name_len_ < 255) ++name_len_;
            break;
          case State::field_value:
            if (c == '\n') {
              if (value_len_ > 0 && value_[value_len_ - 1] == '\r') --value_len_;
              if (!end_of_field()) return finish(Status::error);
              state_ = State::field_start;
              break;
            }
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
              return finish(fail("control character in the response head"));
            if (value_len_ == 0 && (c == ' ' || c == '\t')) break;  // leading OWS
            if (value_len_ == sizeof(value_)) return finish(fail("a framing header's value is too long"));
            value_[value_len_++] = c;
            break;
          case State::headers_lf: {
            if (c != '\n') return finish(fail("expected LF after the header section"));
            Status s = end_of_headers();
            if (s != Status::need_more) return finish(s);
            break;
          }
          default:
            break;
        }
        break;
      }

      // ---- bodies: counted in bulk ----
      case State::body_length: {
        std::size_t n = len - i < remaining_ ? len - i : static_cast<std::size_t>(remaining_);
        if (observer_ && n) observer_->on_body(data + i, n);
        i += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) {
          state_ = State::done;
          return finish(Status::done);
        }
        break;
      }
      case State::body_until_close:
        if (observer_) observer_->on_body(data + i, len - i);
        body_bytes_ += len - i;
        i = len;
        break;
      case State::chunk_size: {
        char c = data[i++];
        int h = hex_value(c);
        if (h >= 0) {
          if (++digits_ > 15) return finish(fail("chunk size too large"));
          remaining_ = remaining_ * 16 + static_cast<unsigned>(h);
          break;
        }
        if (digits_ == 0) return finish(fail("invalid chunk size"));
        if (c == ';' || c == ' ' || c == '\t') state_ = State::chunk_ext;
        else if (c == '\r') state_ = State::chunk_size_lf;
        else if (c == '\n') after_chunk_size();
        else return finish(fail("invalid chunk size"));
        break;
      }
      case State::chunk_ext:
      case State::trailer_line: {
        const void* nl = std::memchr(data + i, '\n', len - i);
        std::size_t skip = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - (data + i)) + 1 : len - i;
        header_bytes_ += skip;  // chunk extensions and trailers share the head's bound
        if (header_bytes_ > header_limit_) return finish(fail("chunk extensions or trailers exceed the header limit"));
        i += skip;
        if (nl) {
          if (state_ == State::trailer_line) state_ = State::trailer_start;
          else after_chunk_size();
        }
        break;
      }
      case State::chunk_size_lf:
        if (data[i++] != '\n') return finish(fail("expected LF after the chunk size"));
        after_chunk_size();
        break;
      case State::chunk_data: {
        std::size_t n = len - i < remaining_ ? len - i : static_cast<std::size_t>(remaining_);
        if (observer_ && n) observer_->on_body(data + i, n);
        i += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = State::chunk_data_cr;
        break;
      }
      case State::chunk_data_cr: {
        char c = data[i++];
        if (c == '\r') state_ = State::chunk_data_lf;
        else if (c == '\n') {
          state_ = State::chunk_size;
          digits_ = 0;
        } else return finish(fail("expected CRLF after chunk data"));
        break;
      }
      case State::chunk_data_lf:
        if (data[i++] != '\n') return finish(fail("expected CRLF after chunk data"));
        state_ = State::chunk_size;
        digits_ = 0;
        break;
      case State::trailer_start: {
        char c = data[i++];
        if (++header_bytes_ > header_limit_) return finish(fail("chunk extensions or trailers exceed the header limit"));
        if (c == '\r') state_ = State::trailer_lf;
        else if (c == '\n') {
          state_ = State::done;
          return finish(Status::done);
        } else {
          state_ = State::trailer_line;
        }
        break;
      }
      case State::trailer_lf:
        if (data[i++] != '\n') return finish(fail("expected LF after the trailer section"));
        state_ = State::done;
        return finish(Status::done);
      case State::done:
        return finish(Status::done);
      case State::failed:
        return finish(Status::error);
    }
  }
  consumed = i;
  if (state_ == State::done) return Status::done;
  return Status::need_more;
}

ResponseFramer::Status ResponseFramer::feed_eof() noexcept {
  if (state_ == State::body_until_close) {
    state_ = State::done;
    return Status::done;
  }
  if (state_ == State::done) return Status::done;
  if (state_ == State::failed) return Status::error;
  if (!started()) return fail("connection closed before the response");
  return fail("connection closed before the response was complete");
}

}  // namespace errand::load
