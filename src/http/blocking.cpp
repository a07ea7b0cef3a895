#include <errand/http/blocking.hpp>

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace errand::http {

namespace asio = boost::asio;

Client& default_client() {
  // Leaked like the default runtime it runs on, so it is usable until the process exits.
  static Client* client = new Client(ClientOptions{});
  return *client;
}

Result<Response> send(Client& client, Request request) {
  auto& runtime = client.runtime();
  if (runtime.current_worker())
    return fail(Error::config("blocking HTTP call made from a worker of its own runtime: it would deadlock; "
                              "co_await Client::send instead"));
  if (runtime.context(0).stopped())
    return fail(ErrorKind::cancelled, "the client's runtime has been stopped");
  auto future = asio::co_spawn(runtime.context(runtime.next_worker()), client.send(std::move(request)), asio::use_future);
  return future.get();
}

Result<Response> send(Request request) { return send(default_client(), std::move(request)); }

Result<Response> get(std::string_view url) {
  auto request = Request::make("GET", url);
  if (!request) return fail(request.error());
  return send(std::move(*request));
}

Result<Response> post(std::string_view url, std::string body, std::string_view content_type) {
  auto request = Request::make("POST", url);
  if (!request) return fail(request.error());
  request->headers.add("Content-Type", std::string(content_type));
  request->body = std::move(body);
  return send(std::move(*request));
}

}  // namespace errand::http
