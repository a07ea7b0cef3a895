#!/bin/bash
# errand bench vs wrk vs h2load (--h1) on the same nginx in one run: requests/s, CPU µs per
# request and p99 per tool, keep-alive and connection-per-request, medians of ROUNDS rounds
# (tools alternate order each round), and each tool's CPU ratio to wrk.
#
#   bench/compare.sh                       # DURATION=4s ROUNDS=3 CONNECTIONS=50
#   DURATION=2s ROUNDS=1 bench/compare.sh  # quick look
#   ERRAND_ARGS='--backend epoll' bench/compare.sh
#
# nginx: one worker pinned to the last CPU, `return 200` of a 12-byte body, no access log.
# Each tool runs alone, pinned to CPU 0, for DURATION; its CPU time (user + system, whole
# process from exec to exit) comes from wait4(), so every tool is measured the same way.
# At 50 connections nginx's one core caps requests/s: CPU per request is what compares tools.
# h2load cannot open a connection per request, so it has no --close row. The "floor" row is
# bench/peers/epoll_floor.c: one write and one read per response and nothing else, what the
# kernel's loopback TCP costs a generator on epoll on this machine (keep-alive only).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
ERRAND=${ERRAND:-build/release/errand}
ERRAND_ARGS=${ERRAND_ARGS:-}
[ -x "$ERRAND" ] || { echo "compare.sh: $ERRAND not built (make build)" >&2; exit 2; }
for tool in nginx wrk h2load taskset python3; do
  command -v $tool >/dev/null || { echo "compare.sh: $tool not found (scripts/install-deps)" >&2; exit 2; }
done
seconds=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+(?:\.\d+)?)(ms|s|m)?', '$DURATION'); v=float(m.group(1)); print(v/1000 if m.group(2)=='ms' else v*60 if m.group(2)=='m' else v)")

work=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
last_cpu=$(( $(nproc) - 1 ))
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity $(python3 -c "print(format(1<<$last_cpu,'b'))");
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000; keepalive_timeout 60s;
  server { listen 127.0.0.1:$port reuseport backlog=4096;
    location / { return 200 "hello world\n"; } }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon on;'
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
URL="http://127.0.0.1:$port/"
FLOOR=${FLOOR:-$(dirname "$ERRAND")/bench/epoll_floor}
# The exact size of nginx's answer to the floor's request (it counts bytes, it does not parse).
response_bytes=$(python3 - "$port" <<'PY'
import re, socket, sys
port = sys.argv[1]
s = socket.create_connection(("127.0.0.1", int(port)))
s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
data = b""
while b"\r\n\r\n" not in data: data += s.recv(4096)
head, _, body = data.partition(b"\r\n\r\n")
length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
while len(body) < length: body += s.recv(4096)
print(len(head) + 4 + length)
PY
)

# run TOOL MODE → "requests cpu_seconds p99_us" (p99 "-" when the tool does not report it)
run() {
  local tool=$1 mode=$2 out="$work/out"
  local cmd=()
  case $tool in
    wrk)
      cmd=(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL")
      [ "$mode" = close ] && cmd+=(-H 'Connection: close') ;;
    h2load)
      cmd=(h2load --h1 -t1 -c"$CONNECTIONS" -D "$DURATION" "$URL") ;;
    errand)
      cmd=("$ERRAND" bench "$URL" -t 1 -c "$CONNECTIONS" -d "$DURATION" --json -q $ERRAND_ARGS)
      [ "$mode" = close ] && cmd+=(--close) ;;
    floor)
      cmd=("$FLOOR" 127.0.0.1 "$port" "$CONNECTIONS" "$seconds" "$response_bytes") ;;
  esac
  local cpu
  cpu=$(python3 - "$out" taskset -c 0 "${cmd[@]}" <<'PY'
import os, sys
out = open(sys.argv[1], "w")
pid = os.fork()
if pid == 0:
    os.dup2(out.fileno(), 1); os.dup2(out.fileno(), 2)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
print(ru.ru_utime + ru.ru_stime)
sys.exit(os.waitstatus_to_exitcode(status) != 0)
PY
) || { echo "compare.sh: $tool ($mode) failed:" >&2; cat "$out" >&2; exit 1; }
  python3 - "$tool" "$out" "$cpu" <<'PY'
import json, re, sys
tool, path, cpu = sys.argv[1], sys.argv[2], float(sys.argv[3])
text = open(path).read()
def us(v, unit): return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
if tool == "errand":
    d = json.loads(text)
    req, p99 = d["requests"], d["latency_us"]["p99"]
    bad = d["errors_total"]
elif tool == "floor":
    req, p99, bad = int(re.search(r"(\d+) requests", text).group(1)), "-", 0
elif tool == "wrk":
    req = int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    p99 = us(m.group(1), m.group(2)) if m else "-"
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m: bad += sum(map(int, m.groups()))
else:
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    req, bad, p99 = int(m.group(4)), int(m.group(5)) + int(m.group(6)), "-"
print(req, cpu, p99, bad)
PY
}

declare -A results
tools_for() {
  if [ "$1" = close ]; then echo "errand wrk"; return; fi
  if [ -x "$FLOOR" ]; then echo "errand wrk h2load floor"; else echo "errand wrk h2load"; fi
}
for mode in keepalive close; do
  for round in $(seq "$ROUNDS"); do
    order=$(tools_for $mode)
    [ $((round % 2)) = 0 ] && order=$(echo $order | tr ' ' '\n' | tac | tr '\n' ' ')
    for tool in $order; do
      results[$mode.$tool.$round]=$(run $tool $mode)
      echo "  $mode round $round $tool: ${results[$mode.$tool.$round]} (requests cpu_s p99_us errors)" >&2
    done
  done
done

python3 - "$ROUNDS" "$seconds" "$CONNECTIONS" <<PY
import statistics, sys
rounds, seconds, conns = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
raw = """$(for k in "${!results[@]}"; do echo "$k ${results[$k]}"; done)"""
rows = {}
for line in raw.strip().splitlines():
    key, req, cpu, p99, bad = line.split()
    mode, tool, rnd = key.split(".")
    rows.setdefault((mode, tool), {})[int(rnd)] = (int(req), float(cpu), p99, int(bad))
print(f"nginx: 1 worker on the last CPU; tools on CPU 0; {conns} connections; {seconds:g}s x {rounds} rounds; medians")
print(f"{'mode':<10} {'tool':<8} {'req/s':>10} {'CPU us/req':>11} {'p99':>10} {'errors':>7} {'CPU vs wrk':>11}")
for mode in ("keepalive", "close"):
    for tool in ("errand", "wrk", "h2load", "floor"):
        r = rows.get((mode, tool))
        if not r: continue
        rps = statistics.median(v[0] / seconds for v in r.values())
        cpu = statistics.median(v[1] / max(1, v[0]) * 1e6 for v in r.values())
        p99s = [float(v[2]) for v in r.values() if v[2] != "-"]
        p99 = f"{statistics.median(p99s)/1000:.2f}ms" if p99s else "-"
        bad = sum(v[3] for v in r.values())
        w = rows[(mode, "wrk")]
        ratio = statistics.median((r[k][1] / max(1, r[k][0])) / (w[k][1] / max(1, w[k][0])) for k in r)
        print(f"{mode:<10} {tool:<8} {rps:>10.0f} {cpu:>11.2f} {p99:>10} {bad:>7} {ratio:>10.2f}x")
print("goals (issue 3): errand CPU/request <= 0.8x wrk keep-alive, <= 0.9x wrk close")
PY
