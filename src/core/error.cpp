#include <errand/core/error.hpp>

namespace errand {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::dns: return "dns";
    case ErrorKind::connect: return "connect";
    case ErrorKind::tls: return "tls";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::protocol: return "protocol";
    case ErrorKind::http_status: return "http_status";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::io: return "io";
    case ErrorKind::config: return "config";
    case ErrorKind::circuit_open: return "circuit_open";
    case ErrorKind::overloaded: return "overloaded";
  }
  return "unknown";
}

std::optional<ErrorKind> error_kind_from_string(std::string_view name) noexcept {
  for (ErrorKind kind : {ErrorKind::dns, ErrorKind::connect, ErrorKind::tls, ErrorKind::timeout, ErrorKind::protocol,
                         ErrorKind::http_status, ErrorKind::cancelled, ErrorKind::io, ErrorKind::config,
                         ErrorKind::circuit_open, ErrorKind::overloaded}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view to_string(Phase phase) noexcept {
  switch (phase) {
    case Phase::none: return "none";
    case Phase::dns: return "dns";
    case Phase::connect: return "connect";
    case Phase::tls: return "tls";
    case Phase::write: return "write";
    case Phase::first_byte: return "first_byte";
    case Phase::read: return "read";
  }
  return "unknown";
}

std::string Error::describe() const {
  std::string out;
  if (!where_.file.empty()) {
    out += where_.file;
    if (where_.line > 0) out += ':' + std::to_string(where_.line);
    if (where_.column > 0) out += ':' + std::to_string(where_.column);
    out += ": ";
  }
  out += to_string(kind_);
  if (phase_ != Phase::none) {
    out += " (";
    out += to_string(phase_);
    out += ')';
  }
  out += ": ";
  out += message_;
  return out;
}

const std::vector<Attempt>& Error::attempts() const noexcept {
  static const std::vector<Attempt> none;
  return attempts_ ? *attempts_ : none;
}

Error& Error::with_attempts(std::vector<Attempt> attempts) & {
  attempts_ = std::make_shared<const std::vector<Attempt>>(std::move(attempts));
  return *this;
}

Error&& Error::with_attempts(std::vector<Attempt> attempts) && {
  attempts_ = std::make_shared<const std::vector<Attempt>>(std::move(attempts));
  return std::move(*this);
}

}  // namespace errand
