// errand — one binary for unattended HTTP work. This file only dispatches to subcommands.
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"errand: an automation engine with an HTTP client built for unattended work"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "errand 0.1.0");
  int exit_code = 0;
  errand::cli::add_get_commands(app, exit_code);
  errand::cli::add_bench_command(app, exit_code);
  errand::cli::add_target_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2, like most Unix tools (docs/cli.md).
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
