// `errand target`: runs the built-in target server (src/server/target_server.hpp) in the
// foreground until SIGINT or SIGTERM. Scripts read the one line it prints to learn the URL:
//
//   listening on http://127.0.0.1:41234
#include <csignal>
#include <cmath>
#include <iostream>
#include <memory>

#include <pthread.h>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "server/target_server.hpp"

namespace errand::cli {
namespace {

struct TargetArgs {
  server::TargetOptions options;
  double read_timeout_seconds = 30;
};

int run_target(const TargetArgs& args) {
  server::TargetOptions options = args.options;
  options.read_timeout = std::chrono::milliseconds(
      std::max<long long>(1, std::llround(args.read_timeout_seconds * 1000)));
  if (!options.cert_file.empty()) options.tls = true;

  // Blocked before the server starts its threads, which inherit the mask: the signals then
  // wait for sigwait below instead of killing the process on whichever thread they land.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  server::TargetServer target(options);
  if (Result<void> started = target.start(); !started) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    std::cerr << "errand target: " << started.error().describe() << '\n';
    return started.error().kind() == ErrorKind::config ? 2 : 1;
  }
  std::cout << "listening on " << target.base_url() << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  target.stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return 0;
}

}  // namespace

void add_target_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TargetArgs>();
  server::TargetOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand(
      "target", "Run the built-in target server: endpoints that succeed, stall, stream and fail "
                "on demand (docs/target.md)");
  cmd->add_option("--listen", o.listen, "Address to listen on, host:port or [ipv6]:port; port 0 picks one")
      ->capture_default_str();
  cmd->add_flag("--tls", o.tls, "Serve HTTPS (with a generated self-signed certificate unless --cert/--key)");
  CLI::Option* cert = cmd->add_option("--cert", o.cert_file, "PEM certificate chain (implies --tls)")
                          ->check(CLI::ExistingFile);
  CLI::Option* key = cmd->add_option("--key", o.key_file, "PEM private key for --cert")
                         ->check(CLI::ExistingFile);
  cert->needs(key);
  key->needs(cert);
  cmd->add_option("--threads", o.threads, "Worker threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--max-header-bytes", o.max_header_bytes,
                  "Largest request header accepted; larger ones get 431")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--read-timeout", args->read_timeout_seconds,
                  "Seconds a connection may idle or take to send a request before it is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_target(*args); });
}

}  // namespace errand::cli
