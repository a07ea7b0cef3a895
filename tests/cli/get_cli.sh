#!/usr/bin/env bash
# `errand get` / `errand request` from the outside: JSON shape, exit codes, output options,
# refusal of bad input, against `errand target` on loopback.
set -u
bin=$1
. "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
start_target "$bin"
trap 'stop_target; rm -rf "$tmp"' EXIT
attempts() { echo "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("attempts", [])))'; }

out=$("$bin" get "$T/ok" --json); rc=$?
check "ok: exit 0" '[ $rc -eq 0 ]'
check "ok: status 200" '[ "$(echo "$out" | jget status)" = 200 ]'
check "ok: body" '[ "$(echo "$out" | jget body)" = ok ]'
check "ok: timings.total present" '[ -n "$(echo "$out" | jget timings.total)" ]'
check "ok: reused false" '[ "$(echo "$out" | jget reused)" = False ]'

out=$("$bin" get "$T/status/503" --json); rc=$?
check "503 is a response: exit 0" '[ $rc -eq 0 ]'
check "503 status" '[ "$(echo "$out" | jget status)" = 503 ]'
"$bin" get "$T/status/503" --fail >/dev/null 2>&1; rc=$?
check "--fail on 503 exits 22" '[ $rc -eq 22 ]'

out=$("$bin" get "http://127.0.0.1:1/" --json 2>/dev/null); rc=$?
check "refused: exit 7" '[ $rc -eq 7 ]'
check "refused: kind connect" '[ "$(echo "$out" | jget error.kind)" = connect ]'
check "refused: no status" '[ -z "$(echo "$out" | jget status)" ]'

out=$("$bin" get "$T/delay/3000" --timeout 300ms --json 2>/dev/null); rc=$?
check "timeout: exit 28" '[ $rc -eq 28 ]'
check "timeout: phase first_byte" '[ "$(echo "$out" | jget error.phase)" = first_byte ]'

"$bin" get "http://no-such-host.invalid/" >/dev/null 2>&1; rc=$?
check "dns: exit 6" '[ $rc -eq 6 ]'
"$bin" get "$T/reset" >/dev/null 2>&1; rc=$?
check "reset: exit 56" '[ $rc -eq 56 ]'
"$bin" get "$T/headers/2048" >/dev/null 2>&1; rc=$?
check "oversized headers: exit 8" '[ $rc -eq 8 ]'

err=$("$bin" get "http://exa mple.com/" 2>&1 >/dev/null); rc=$?
check "malformed URL: exit 2" '[ $rc -eq 2 ]'
check "malformed URL: says why" 'echo "$err" | grep -q "config"'
err=$("$bin" get "ftp://127.0.0.1/" 2>&1 >/dev/null); rc=$?
check "unknown scheme: exit 2" '[ $rc -eq 2 ]'
check "unknown scheme: named" 'echo "$err" | grep -q ftp'
err=$("$bin" get "$T/echo" -H $'X-A: b\r\nX-Injected: 1' 2>&1 >/dev/null); rc=$?
check "header injection refused: exit 2" '[ $rc -eq 2 ]'
"$bin" get "$T/ok" -H 'NoColon' >/dev/null 2>&1; rc=$?
check "header without colon refused: exit 2" '[ $rc -eq 2 ]'
"$bin" get "$T/ok" --timeout 5x >/dev/null 2>&1; rc=$?
check "bad duration refused: exit 2" '[ $rc -eq 2 ]'

out=$("$bin" request -X POST "$T/echo" -H 'Content-Type: text/plain' -d 'hello body' --json)
check "POST echo method" '[ "$(echo "$out" | jget body | jget method)" = POST ]'
check "POST echo body" '[ "$(echo "$out" | jget body | jget body)" = "hello body" ]'
head -c 100000 /dev/zero | tr '\0' 'z' > "$tmp/body"
out=$("$bin" request -X PUT "$T/echo" --data-file "$tmp/body" --json)
check "PUT --data-file length" '[ "$(echo "$out" | jget body | jget body_bytes)" = 100000 ]'

"$bin" get "$T/bytes/200000" -o "$tmp/out" >/dev/null; rc=$?
check "-o writes the body" '[ $rc -eq 0 ] && [ "$(stat -c %s "$tmp/out")" = 200000 ]'
out=$("$bin" get "$T/bytes/1000" -o "$tmp/out2" --json)
check "--json with -o reports body_bytes" '[ "$(echo "$out" | jget body_bytes)" = 1000 ]'
out=$("$bin" get "$T/ok" -i)
check "-i shows the status line" 'echo "$out" | head -1 | grep -q "^HTTP/1.1 200"'
err=$("$bin" get "$T/ok" -v 2>&1 >/dev/null)
check "-v shows the timing breakdown" 'echo "$err" | grep -q "Server Processing"'
out=$("$bin" get "$T/gzip" --json)
check "gzip decoded" 'echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if len(d[\"body\"]) == int(d[\"headers\"][\"x-uncompressed-length\"]) else 1)"'
out=$("$bin" get "$T/redirect/2" --json)
check "redirects counted" '[ "$(echo "$out" | jget redirects)" = 2 ]'
lines=$("$bin" get "$T/stream/3?interval_ms=10" | wc -l)
check "stream prints every chunk" '[ "$lines" -eq 3 ]'

# With policies the body still streams: the retries act on the head. A body over the 256 MiB
# that send() would buffer goes through, and a body cut off half-way is written as it came,
# then fails (like curl, a failure after output began is not retried).
out=$("$bin" get "$T/bytes/300000000" --retry -o "$tmp/big" --json); rc=$?
check "--retry streams a 300 MB body: exit 0" '[ $rc -eq 0 ]'
check "--retry streams a 300 MB body: every byte" '[ "$(stat -c %s "$tmp/big")" = 300000000 ]'
rm -f "$tmp/big"
out=$("$bin" get "$T/reset" --retry -o "$tmp/cut" --json 2>/dev/null); rc=$?
check "--retry, body reset half-way: exit 56" '[ $rc -eq 56 ]'
check "--retry, body reset half-way: the 1024 bytes that came are written" '[ "$(stat -c %s "$tmp/cut")" = 1024 ]'
check "--retry, body reset half-way: one attempt" '[ "$(attempts "$out")" = 1 ]'

# --retries N is checked: -1 was the "not given" default and passed for it, silently.
"$bin" get --retries -1 "$T/status/503" >/dev/null 2>"$tmp/err"; rc=$?
check "--retries -1: refused with a usage error" '[ $rc -ne 0 ] && grep -q "retries" "$tmp/err"'
out=$("$bin" get --retries 1 "$T/status/503" --json 2>/dev/null)
check "--retries 1: two attempts" '[ "$(attempts "$out")" = 2 ]'

# A repeatable option takes one value a time: the URL after it is the URL, with options after
# it too (as curl's -H).
out=$("$bin" get -H 'X-A: 1' -H 'X-B: 2' "$T/echo" --json); rc=$?
body=$(echo "$out" | jget body)
check "-H twice before the URL, --json after it: exit 0, both headers sent" '[ $rc -eq 0 ] && [[ $body == *X-A* && $body == *X-B* ]]'

# --retries N is N retries of any retryable failure, beyond a tier's default as curl's --retry.
out=$("$bin" get --retries 3 "$T/flaky?fail=3&key=cli-retries-$$-$RANDOM" --json 2>/dev/null)
check "--retries 3 past three failures: 200" '[ "$(echo "$out" | jget status)" = 200 ]'
check "--retries 3 past three failures: four attempts" '[ "$(attempts "$out")" = 4 ]'
out=$("$bin" get --retries 0 "$T/status/503" --json 2>/dev/null)
check "--retries 0: one attempt" '[ "$(attempts "$out")" = 1 ]'

# --retry-on: only the kinds named.
out=$("$bin" get --retry-on connect "$T/status/503?retry_after=0" --json 2>/dev/null)
check "--retry-on connect: a 503 is not retried" '[ "$(attempts "$out")" = 1 ]'
out=$("$bin" get --retry-on connect,http_status "$T/status/503?retry_after=0" --json 2>/dev/null)
check "--retry-on connect,http_status: a 503 is tried three times" '[ "$(attempts "$out")" = 3 ]'
"$bin" get --retry-on bogus "$T/ok" >/dev/null 2>"$tmp/err"; rc=$?
check "--retry-on bogus: exit 2, the kind named" '[ $rc -eq 2 ] && grep -q "bogus" "$tmp/err"'

# --idempotency-key: auto makes a POST retryable with one key for all its attempts; a given key
# is sent as it is.
counter=cli-idem-$$-$RANDOM
out=$("$bin" request -X POST "$T/idempotent?reset_first=1&counter=$counter" --idempotency-key auto --retry --json 2>/dev/null)
check "--idempotency-key auto: a POST reset after it was applied is retried: 200" '[ "$(echo "$out" | jget status)" = 200 ]'
check "--idempotency-key auto: two attempts" '[ "$(attempts "$out")" = 2 ]'
check "--idempotency-key auto: applied once" '[ "$("$bin" get "$T/idempotent?peek=1&counter=$counter" | jget applications)" = 1 ]'
out=$("$bin" request -X POST "$T/idempotent?reset_first=1&counter=$counter-none" --retry --json 2>/dev/null)
check "without a key the same POST is sent once" '[ "$(attempts "$out")" = 1 ]'
out=$("$bin" request -X POST "$T/echo" --idempotency-key "my-key-$$" --json)
check "--idempotency-key KEY: sent as given" '[[ $(echo "$out" | jget body) == *my-key-$$* ]]'

# --breaker: one request through a closed breaker is answered as without it.
out=$("$bin" get --breaker "$T/ok" --json); rc=$?
check "--breaker: a request through a closed breaker: exit 0, 200" '[ $rc -eq 0 ] && [ "$(echo "$out" | jget status)" = 200 ]'

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
