#!/usr/bin/env bash
# The release binary links only glibc dynamically, is stripped, and stays small.
set -u
bin=$1
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$bin" ] || fail "no binary at $bin"
others=$(ldd "$bin" 2>&1 | grep -vE 'linux-vdso|libc\.so|libm\.so|ld-linux|libpthread|libdl\.so|librt\.so|libresolv|statically linked' | sed '/^\s*$/d')
[ -z "$others" ] || fail "dynamic libraries beyond glibc: $others"
file -L "$bin" | grep -q 'not stripped' && fail "binary is not stripped"
size=$(stat -c %s "$bin")
[ "$size" -le $((12 * 1024 * 1024)) ] || fail "binary is $size bytes, over 12 MiB"
echo "ok: only glibc dynamic, stripped, $size bytes"
