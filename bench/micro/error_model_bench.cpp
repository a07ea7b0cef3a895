// Why errand's failures are values (DESIGN.md, "Errors"): the cost of carrying one failure
// up ten stack frames, three ways, each with its success path beside it.
//
//   Exception*      the leaf throws std::runtime_error; the top catches it
//   Result*         errand::Result<int> (tl::expected<int, errand::Error>) returned up each
//                   frame; the leaf builds an Error(io, message, error_code, phase) as the
//                   transport does, every frame checks and forwards it
//   ErrorCode*      a std::error_code out-parameter; the leaf sees a cancellation flag set
//                   and reports operation_canceled, every frame checks `ec` and returns
//
// Frames are ten distinct noinline functions (a template per depth, so there is no recursion
// for the compiler to turn into a loop), and each one passes its value through
// DoNotOptimize so that it cannot be folded into its caller. Whether the leaf fails is read
// from a variable the compiler must assume changes.
#include <atomic>
#include <stdexcept>
#include <system_error>

#include <benchmark/benchmark.h>

#include <errand/core/error.hpp>

namespace {

constexpr int kDepth = 10;

// --- (a) exceptions ------------------------------------------------------------------------

template <int N>
[[gnu::noinline]] int throwing_frame(const bool& fail) {
  if constexpr (N == 1) {
    if (fail) throw std::runtime_error("reading the response failed: connection reset by peer");
    int value = 1;
    benchmark::DoNotOptimize(value);
    return value;
  } else {
    int value = throwing_frame<N - 1>(fail);
    benchmark::DoNotOptimize(value);
    return value + 1;
  }
}

void run_exception(benchmark::State& state, bool fail) {
  int failures = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fail);
    try {
      int value = throwing_frame<kDepth>(fail);
      benchmark::DoNotOptimize(value);
    } catch (const std::exception& e) {
      benchmark::DoNotOptimize(e.what());
      ++failures;
    }
  }
  if ((failures != 0) != fail) state.SkipWithError("the failure did not arrive at the top");
}

void ExceptionFailure(benchmark::State& state) { run_exception(state, true); }
void ExceptionSuccess(benchmark::State& state) { run_exception(state, false); }
BENCHMARK(ExceptionFailure);
BENCHMARK(ExceptionSuccess);

// --- (b) errand::Result<int> ---------------------------------------------------------------

template <int N>
[[gnu::noinline]] errand::Result<int> result_frame(const bool& fail) {
  if constexpr (N == 1) {
    if (fail)
      return errand::fail(errand::ErrorKind::io, "reading the response failed: connection reset by peer",
                          std::make_error_code(std::errc::connection_reset), errand::Phase::read);
    int value = 1;
    benchmark::DoNotOptimize(value);
    return value;
  } else {
    auto value = result_frame<N - 1>(fail);
    if (!value) return errand::fail(std::move(value.error()));  // as src/ forwards errors
    benchmark::DoNotOptimize(*value);
    return *value + 1;
  }
}

void run_result(benchmark::State& state, bool fail) {
  int failures = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fail);
    auto value = result_frame<kDepth>(fail);
    if (value) {
      benchmark::DoNotOptimize(*value);
    } else {
      auto kind = value.error().kind();
      benchmark::DoNotOptimize(kind);
      ++failures;
    }
  }
  if ((failures != 0) != fail) state.SkipWithError("the failure did not arrive at the top");
}

void ResultFailure(benchmark::State& state) { run_result(state, true); }
void ResultSuccess(benchmark::State& state) { run_result(state, false); }
BENCHMARK(ResultFailure);
BENCHMARK(ResultSuccess);

// --- (c) error_code out-parameter + cancellation flag ----------------------------------------

template <int N>
[[gnu::noinline]] int error_code_frame(const std::atomic<bool>& cancelled, std::error_code& ec) {
  if constexpr (N == 1) {
    if (cancelled.load(std::memory_order_relaxed)) {
      ec = std::make_error_code(std::errc::operation_canceled);
      return 0;
    }
    int value = 1;
    benchmark::DoNotOptimize(value);
    return value;
  } else {
    int value = error_code_frame<N - 1>(cancelled, ec);
    if (ec) return 0;
    benchmark::DoNotOptimize(value);
    return value + 1;
  }
}

void run_error_code(benchmark::State& state, bool fail) {
  std::atomic<bool> cancelled{fail};
  int failures = 0;
  for (auto _ : state) {
    std::error_code ec;
    int value = error_code_frame<kDepth>(cancelled, ec);
    benchmark::DoNotOptimize(value);
    if (ec) ++failures;
  }
  if ((failures != 0) != fail) state.SkipWithError("the failure did not arrive at the top");
}

void ErrorCodeCancelled(benchmark::State& state) { run_error_code(state, true); }
void ErrorCodeSuccess(benchmark::State& state) { run_error_code(state, false); }
BENCHMARK(ErrorCodeCancelled);
BENCHMARK(ErrorCodeSuccess);

}  // namespace
