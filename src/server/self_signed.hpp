// A throwaway certificate for `errand target --tls` when the user brings none: an EC P-256
// key and a self-signed certificate for CN=localhost with subjectAltName DNS:localhost,
// IP:127.0.0.1 and IP:::1, valid for one year from now. Clients trust it with -k, or by
// loading TargetServer::certificate_pem() as their only trust anchor.
//
//   Result<SelfSigned> generated = make_self_signed_certificate();
//   if (generated) ctx.use_certificate_chain(generated->certificate_pem), ...
//
// Thread-safe (each call generates a fresh key).
#pragma once

#include <string>

#include <errand/core/error.hpp>

namespace errand::server {

struct SelfSigned {
  std::string certificate_pem;
  std::string private_key_pem;  // PKCS#8, unencrypted
};

// Errors: tls, with OpenSSL's reason, if key generation or signing fails (which happens only
// when the OpenSSL installation is broken, e.g. no default provider).
Result<SelfSigned> make_self_signed_certificate();

}  // namespace errand::server
