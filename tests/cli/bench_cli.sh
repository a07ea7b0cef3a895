#!/usr/bin/env bash
# `errand bench` from the outside: JSON, the text summary, --fail-if verdicts and their exit
# code, refusal of bad input, and the file-descriptor limit, against `errand target`.
set -u
bin=$1
. "$(dirname "$0")/lib/common.sh"
err=$(mktemp)
start_target "$bin"
trap 'stop_target; rm -f "$err"' EXIT

out=$("$bin" bench "$T/ok" -c 4 -t 1 -n 500 --json -q); rc=$?
check "json: exit 0" '[ $rc -eq 0 ]'
check "json: exactly -n requests" '[ "$(echo "$out" | jget requests)" = 500 ]'
check "json: status 200 counted" '[ "$(echo "$out" | jget status.200)" = 500 ]'
check "json: 4 connections opened" '[ "$(echo "$out" | jget connections.opened)" = 4 ]'
check "json: p99 present" '[ -n "$(echo "$out" | jget latency_us.p99)" ]'
check "json: cpu and rss" '[ -n "$(echo "$out" | jget cpu_s)" ] && [ "$(echo "$out" | jget max_rss_kib)" -gt 0 ]'

out=$("$bin" bench "$T/ok" -c 2 -d 300ms); rc=$?
check "text: exit 0" '[ $rc -eq 0 ]'
check "text: wrk-like lines" 'echo "$out" | grep -q "Requests/sec:" && echo "$out" | grep -q "Latency distribution"'

"$bin" bench "$T/delay/30" -c 2 -n 10 -q --fail-if 'p50>10ms' --fail-if 'rps<1' >/dev/null 2>"$err"; rc=$?
check "fail-if: a holding condition exits 1" '[ $rc -eq 1 ]'
check "fail-if: names the condition and the value" 'grep -q "p50>10ms: p50 is 3[0-9]" "$err"'
check "fail-if: a condition that does not hold is not listed" '! grep -q "rps<1" "$err"'
"$bin" bench "$T/ok" -c 2 -n 10 -q --fail-if 'p99>10s' >/dev/null 2>&1; rc=$?
check "fail-if: passing conditions exit 0" '[ $rc -eq 0 ]'
"$bin" bench "$T/status/503" -c 2 -n 20 -q --json --fail-if 'errors>0.1%' >/dev/null 2>"$err"; rc=$?
check "fail-if: 503s count as errors" '[ $rc -eq 1 ] && grep -q "errors is 100.000%" "$err"'

"$bin" bench "$T/ok" -n 5 --fail-if 'p99~3' >/dev/null 2>"$err"; rc=$?
check "bad --fail-if: exit 2 with the reason" '[ $rc -eq 2 ] && grep -q "fail-if" "$err"'
timeout 20 "$bin" bench "$T/ok" -n 5 --sweep c=1,0.5 >/dev/null 2>"$err"; rc=$?
check "--sweep c= with a fraction: exit 2, not a run that never ends" '[ $rc -eq 2 ] && grep -q "whole number" "$err"'
"$bin" bench "http://[::1/" -n 5 >/dev/null 2>"$err"; rc=$?
check "bad URL: exit 2" '[ $rc -eq 2 ]'
"$bin" bench "$T/ok" -n 5 -H 'no colon' >/dev/null 2>"$err"; rc=$?
check "bad header: exit 2" '[ $rc -eq 2 ] && grep -q "Name: value" "$err"'
"$bin" bench "http://no-such-host.invalid/" -n 5 >/dev/null 2>"$err"; rc=$?
check "unresolvable host: exit 6" '[ $rc -eq 6 ]'
# A repeatable option takes one value a time: the URL after it and options after the URL are
# what they are, in any order.
out=$("$bin" bench -H 'X-A: 1' -H 'X-B: 2' "$T/ok" -n 10 -q --fail-if 'p99>10s' --fail-if 'errors>50%' --json); rc=$?
check "-H and --fail-if before and after the URL: exit 0, every request made" '[ $rc -eq 0 ] && [ "$(echo "$out" | jget requests)" = 10 ]'

# Live progress: on a terminal (script(1) gives it one), not with -q, never on a pipe.
if command -v script >/dev/null; then
  live=$(script -qc "\"$bin\" bench \"$T/ok\" -c 2 -t 1 -d 2.3s" /dev/null | tr '\r' '\n')
  check "progress: a line per second on a terminal" '[ "$(echo "$live" | grep -cE "[0-9]+ responses +[0-9]+ req/s +[0-9]+ errors")" -ge 2 ]'
  quiet=$(script -qc "\"$bin\" bench \"$T/ok\" -c 2 -t 1 -d 1.3s -q" /dev/null)
  check "progress: -q silences it" '! echo "$quiet" | grep -q "responses"'
fi
piped=$("$bin" bench "$T/ok" -c 2 -t 1 -d 1.3s 2>&1 | cat)
check "progress: nothing when not a terminal" '! echo "$piped" | grep -q " responses "'

# --html: a self-contained page whose charts a real browser draws with data.
html=$(mktemp --suffix=.html); sweep_html=$(mktemp --suffix=.html)
"$bin" bench "$T/ok" -c 4 -t 1 -d 2.6s -q --html "$html" >/dev/null; rc=$?
check "html: exit 0 and a file" '[ $rc -eq 0 ] && [ -s "$html" ]'
"$bin" bench "$T/ok" -c 4 -t 1 -d 300ms -q --sweep c=1,2,4 --html "$sweep_html" >/dev/null; rc=$?
check "html (sweep): exit 0 and a file" '[ $rc -eq 0 ] && [ -s "$sweep_html" ]'
check "html: nothing fetched from elsewhere" '! grep -qiE "<(script|link|img)[^>]+(src|href)=" "$html" "$sweep_html"'
drawn() {  # file → the charts as the browser laid them out: chart:series:points:WxH;...
  timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$1" 2>/dev/null | grep -o 'data-rendered="[^"]*"'
}
if command -v chromium >/dev/null; then
  rendered=$(drawn "$html")
  check "html: latency curve drawn, rising" 'echo "$rendered" | grep -qE "[\";]latency:latency:([2-9]|[1-9][0-9]+):[1-9][0-9]*x[1-9][0-9]*"'
  check "html: requests/s over time, a point per second" 'echo "$rendered" | grep -qE "[\";]rps:requests/s:[23]:[1-9][0-9]*x[0-9]+"'
  rendered=$(drawn "$sweep_html")
  check "html: sweep throughput, a point per concurrency" 'echo "$rendered" | grep -qE "[\";]sweep-rps:requests/s:3:[1-9][0-9]*x[0-9]+"'
  check "html: sweep p99, a point per concurrency" 'echo "$rendered" | grep -qE "[\";]sweep-p99:p99 \\(ms\\):3:[1-9][0-9]*x[0-9]+"'
else
  check "html: chromium is installed (scripts/install-deps)" false
fi
rm -f "$sweep_html"
rm -f "$html"
"$bin" bench "$T/ok" -n 5 -q --html /nonexistent/dir/r.html >/dev/null 2>"$err"; rc=$?
check "html: an unwritable path is reported (exit 23)" '[ $rc -eq 23 ] && grep -q "cannot write" "$err"'

# The soft descriptor limit is raised to fit -c; the hard one cannot be, and the error says so.
out=$(bash -c "ulimit -Sn 64; \"$bin\" bench \"$T/ok\" -c 200 -t 1 -n 400 --json -q"); rc=$?
check "-c above the soft limit: raised, run completes" '[ $rc -eq 0 ] && [ "$(echo "$out" | jget requests)" = 400 ]'
bash -c "ulimit -n 64; \"$bin\" bench \"$T/ok\" -c 200 -n 10 -q" >/dev/null 2>"$err"; rc=$?
check "-c above the hard limit: exit 2, explained" '[ $rc -eq 2 ] && grep -q "hard limit" "$err"'

echo "bench_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
