// The subcommands of the errand binary. Each lives in its own file and registers itself on
// the CLI11 app; main.cpp only dispatches. A command's callback stores its exit code in
// `exit_code` (see docs/cli.md for the table of codes).
#pragma once

namespace CLI {
class App;
}

namespace errand::cli {

void add_get_commands(CLI::App& app, int& exit_code);     // get.cpp: `get` and `request`
void add_target_command(CLI::App& app, int& exit_code);   // target.cpp: `target`
void add_bench_command(CLI::App& app, int& exit_code);    // bench.cpp: `bench`

}  // namespace errand::cli
