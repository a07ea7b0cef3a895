# errand — the commands people and CI use. Each target installs what it needs first.
# Build trees: build/<preset> (see CMakePresets.json).

SHELL := /bin/bash
# ccache hits across clones (CI builds a fresh clone of the same sources).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
CTEST_ARGS ?=

.PHONY: all deps build test demo asan asan-test fuzz bench clean

all: build

deps:
	@scripts/install-deps

# The release binary: build/release/errand (static but for glibc, stripped).
build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

test: build
	@ctest --preset release $(CTEST_ARGS)

demo: build
	@scripts/demo

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan --target errand_unit_tests errand_integration_tests

asan-test: asan
	@ctest --preset asan $(CTEST_ARGS)

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz
	@ctest --test-dir build/fuzz -L fuzz --output-on-failure

bench: build
	@bench/client_loop

clean:
	rm -rf build
