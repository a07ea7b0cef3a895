#!/usr/bin/env bash
# `errand get --trace` / `--otlp` from the outside: the span tree on stderr, the propagated
# traceparent, spans posted to the target's /v1/traces collector, and a dead collector that
# only warns.
set -u
bin=$1
. "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
start_target "$bin"
trap 'stop_target; rm -rf "$tmp"' EXIT

# --trace with retries: one logical span, three attempts, two retry events.
"$bin" get "$T/flaky?fail=2&key=cli-$$" --retry --trace >"$tmp/out" 2>"$tmp/err"; rc=$?
check "trace: exit 0" '[ $rc -eq 0 ]'
check "trace: body on stdout" '[ "$(cat "$tmp/out")" = ok ]'
check "trace: a trace line" 'grep -Eq "^trace [0-9a-f]{32}$" "$tmp/err"'
check "trace: one logical span" '[ "$(grep -c "^  GET \[internal\]" "$tmp/err")" = 1 ]'
check "trace: three attempt spans under it" '[ "$(grep -c "^    GET \[client\]" "$tmp/err")" = 3 ]'
check "trace: two failed attempts" '[ "$(grep -c "^    GET \[client\] .* error " "$tmp/err")" = 2 ]'
check "trace: two retry events" '[ "$(grep -c "@+.* retry retry.attempt=" "$tmp/err")" = 2 ]'
check "trace: attempts counted" 'grep -q "errand.attempts=3" "$tmp/err"'
check "trace: resend count" 'grep -q "http.request.resend_count=2" "$tmp/err"'

# The server sees the attempt span as the parent, in the caller's trace.
caller=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
out=$("$bin" get "$T/echo" -H "traceparent: $caller" --trace 2>"$tmp/err")
seen=$(echo "$out" | python3 -c 'import json,sys
print([v for k,v in json.load(sys.stdin)["headers"] if k.lower()=="traceparent"][0])')
check "echo: the caller's trace id" '[ "${seen:3:32}" = 4bf92f3577b34da6a3ce929d0e0e4736 ]'
check "echo: the attempt span is the parent" 'grep -q "^    GET \[client\] .*span ${seen:36:16}$" "$tmp/err"'
check "trace: the caller's span is named as parent" 'grep -q "(parent span 00f067aa0ba902b7)" "$tmp/err"'

# A failed request still prints its spans, in error with the kind.
"$bin" get "http://127.0.0.1:1/" --trace >/dev/null 2>"$tmp/err"; rc=$?
check "refused: exit 7" '[ $rc -eq 7 ]'
check "refused: error.type=connect" 'grep -q "error.type=connect" "$tmp/err"'
check "refused: spans in error" '[ "$(grep -c "\] .* error (" "$tmp/err")" = 2 ]'

# --otlp to the target's collector: one export with the logical span and its attempt.
"$bin" get "$T/ok" --otlp "$T" >/dev/null 2>"$tmp/err"; rc=$?
check "otlp: exit 0" '[ $rc -eq 0 ]'
check "otlp: no warning" '[ ! -s "$tmp/err" ]'
"$bin" get "$T/v1/traces" >"$tmp/traces"
check "otlp: the collector got the spans" 'python3 - "$tmp/traces" <<PY
import json, sys
exports = json.load(open(sys.argv[1]))
assert len(exports) == 1, exports
rs = exports[0]["resourceSpans"][0]
assert rs["resource"]["attributes"][0] == {"key": "service.name", "value": {"stringValue": "errand"}}
spans = rs["scopeSpans"][0]["spans"]
assert sorted(s["kind"] for s in spans) == [1, 3], spans
logical = [s for s in spans if s["kind"] == 1][0]
attempt = [s for s in spans if s["kind"] == 3][0]
assert attempt["parentSpanId"] == logical["spanId"] and attempt["traceId"] == logical["traceId"]
assert len(logical["traceId"]) == 32 and len(logical["spanId"]) == 16
assert int(attempt["startTimeUnixNano"]) <= int(attempt["endTimeUnixNano"])
attrs = {a["key"]: a["value"] for a in attempt["attributes"]}
assert attrs["http.response.status_code"] == {"intValue": "200"}, attrs
assert attrs["url.full"]["stringValue"].endswith("/ok")
PY'

# --otlp-protocol protobuf: the same spans in the binary encoding, which protoc decodes.
"$bin" get "$T/ok" --otlp "$T" --otlp-protocol protobuf >/dev/null 2>"$tmp/err"; rc=$?
check "otlp protobuf: exit 0" '[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]'
"$bin" get "$T/v1/traces?protobuf=0" >"$tmp/export.pb"
protoc --decode=errand.test.otlp.ExportTraceServiceRequest -I "$(dirname "$0")/../data" otlp_trace.proto \
  <"$tmp/export.pb" >"$tmp/decoded" 2>&1
check "otlp protobuf: protoc decodes two spans" '[ "$(grep -c "^    spans {" "$tmp/decoded")" = 2 ]'
check "otlp protobuf: a client span with its status code" \
  'grep -q "kind: SPAN_KIND_CLIENT" "$tmp/decoded" && grep -A3 "key: \"http.response.status_code\"" "$tmp/decoded" | grep -q "int_value: 200"'
"$bin" get "$T/ok" --otlp "$T" --otlp-protocol grpc >/dev/null 2>"$tmp/err"; rc=$?
check "otlp protocol grpc: exit 2, named" '[ $rc -eq 2 ] && grep -q "is not json or protobuf" "$tmp/err"'
# OpenTelemetry's variables choose the encoding when the flag does not; the flag wins.
"$bin" request -X DELETE "$T/v1/traces" >/dev/null
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "$bin" get "$T/ok" --otlp "$T" >/dev/null 2>"$tmp/err"; rc=$?
check "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: sent as protobuf" \
  '[ $rc -eq 0 ] && [ "$("$bin" get "$T/v1/traces")" = "[]" ] && "$bin" get "$T/v1/traces?protobuf=0" --fail -o /dev/null'
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "$bin" get "$T/ok" --otlp "$T" \
  >/dev/null 2>"$tmp/err"; rc=$?
check "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc: exit 2, the variable named" \
  '[ $rc -eq 2 ] && grep -q "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: .grpc. is not json or protobuf" "$tmp/err"'
OTEL_EXPORTER_OTLP_PROTOCOL=grpc "$bin" get "$T/ok" --otlp "$T" --otlp-protocol json >/dev/null 2>"$tmp/err"; rc=$?
check "--otlp-protocol wins over the variable" '[ $rc -eq 0 ]'

# A collector that is not there: the command succeeds and warns.
"$bin" get "$T/ok" --otlp "http://127.0.0.1:1" >/dev/null 2>"$tmp/err"; rc=$?
check "dead collector: exit 0" '[ $rc -eq 0 ]'
check "dead collector: a warning" 'grep -q "warning: 2 span(s) not exported to http://127.0.0.1:1/v1/traces" "$tmp/err"'
"$bin" get "$T/ok" --otlp "not a url" >/dev/null 2>&1; rc=$?
check "bad --otlp URL: exit 2" '[ $rc -eq 2 ]'

echo "trace_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
