// errand/http/blocking.hpp — the zero-configuration blocking facade.
//
//   auto res = errand::http::get("http://127.0.0.1:8080/health");
//   if (!res) std::cerr << res.error().describe() << '\n';
//   else      std::cout << res->status << ' ' << res->body.size() << '\n';
//
// Calls run on a lazily created default Client over Runtime::default_runtime() (one worker
// thread), so connections are pooled and TLS sessions resumed across calls. The calling thread
// blocks until the response is complete. Errors are those of Client::send; calling from a
// thread of the default runtime itself would deadlock and fails with kind config instead.
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <errand/http/client.hpp>

namespace errand::http {

Result<Response> get(std::string_view url);
Result<Response> post(std::string_view url, std::string body,
                      std::string_view content_type = "application/octet-stream");
Result<Response> send(Request request);
// Sends with `client` (which must not run on the calling thread) and waits for the response.
Result<Response> send(Client& client, Request request);

Client& default_client();

}  // namespace errand::http
