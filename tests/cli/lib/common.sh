# Shared by the command-line test scripts (sourced, not a test itself): check() counts
# passes and failures, jget() reads a JSON field, start_target() runs `errand target` on a
# free loopback port and sets T to its base URL (stopped on exit).
passed=0; failed=0
check() {  # description, command (evaluated)...
  local what=$1; shift
  if eval "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "FAIL: $what"; fi
}
jget() { python3 -c 'import json,sys
d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d.get(k) if isinstance(d, dict) else None
print("" if d is None else d)' "$1"; }

start_target() {  # binary → T
  target_log=$(mktemp)
  "$1" target --listen 127.0.0.1:0 >"$target_log" 2>&1 &
  target_pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$target_log" && break; sleep 0.05; done
  T=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$target_log" | head -1)
  [ -n "$T" ] || { echo "FAIL: target did not start: $(cat "$target_log")"; exit 1; }
}
stop_target() { kill "$target_pid" 2>/dev/null; wait "$target_pid" 2>/dev/null; rm -f "$target_log"; }
