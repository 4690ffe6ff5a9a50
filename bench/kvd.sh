#!/usr/bin/env bash
# bench/kvd.sh - examples/kvd under wrk: clockworker vs plain libevent, side
# by side from one run (`make bench-kvd`, or bash bench/kvd.sh [options]
# from the build directory).
#
# Both modes run the same daemon with the same background work on
# (--bg-tasks workers doing CPU chunks that alone saturate a core) and
# the same request work; the only difference is --plain.
#
# Load: wrk has no rate flag. Each of --conns connections sends GET
# /kv/key-<i> (100 keys, stored beforehand) and then waits delay() ms, set
# from --rate so that conns * 1000 / delay = rate: the offered rate is
# about --rate req/s, less when replies are slow (each connection waits
# for its reply before its delay). Latency percentiles are wrk --latency's
# (per request, delay excluded). Background iterations per second come
# from GET /stats before and after the wrk run.
#
# Options: --duration S (10) --conns N (16) --rate R (2000) --bg-tasks N (2)
#          --work N (2000) --chunk N (20000) --weights F:B (100:1)
#          --kvd PATH (examples/kvd)
# Needs wrk and curl (Debian packages); exits 1 saying so if one is missing.
set -euo pipefail

duration=10 conns=16 rate=2000 bg=2 work=2000 chunk=20000 weights=100:1
kvd=examples/kvd
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --bg-tasks) bg=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    --kvd) kvd=$2; shift 2 ;;
    *) echo "bench/kvd.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

for tool in wrk curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench/kvd.sh: $tool is not installed (apt-get install $tool)" >&2
        exit 1
    fi
done
[ -x "$kvd" ] || { echo "bench/kvd.sh: $kvd not found (run make first)" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

delay_ms=$(awk -v c="$conns" -v r="$rate" 'BEGIN { d = c * 1000 / r; if (d < 0) d = 0; print d }')
cat >"$tmp/pace.lua" <<EOF
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/kv/key-" .. (n % 100))
end
function delay()
    return $delay_ms
end
EOF

# wrk prints 123.45us, 1.23ms or 1.02s: in ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

bg_iters() { curl -s -S --max-time 10 "http://127.0.0.1:$1/stats" | sed -n 's/.*bg_iterations=\([0-9]*\).*/\1/p'; }

# run_mode NAME [--plain]: writes "p50 p99 req_per_s bg_per_s" to $tmp/NAME.res
run_mode() {
    local name=$1; shift
    "$kvd" --port 0 --bg-tasks "$bg" --work "$work" --chunk "$chunk" --weights "$weights" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    local port= i
    for i in $(seq 1 100); do
        port=$(sed -n 's/^kvd: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "bench/kvd.sh: kvd ($name) did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    # 100 keys for the GETs
    local args=()
    for i in $(seq 0 99); do
        [ "$i" -gt 0 ] && args+=(--next)
        args+=(-s -o /dev/null -X PUT --data-binary "value-$i-$(printf '%064d' "$i")" "http://127.0.0.1:$port/kv/key-$i")
    done
    curl "${args[@]}"
    local b0 b1 t0 t1
    b0=$(bg_iters "$port"); t0=$(date +%s.%N)
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$tmp/pace.lua" "http://127.0.0.1:$port/" >"$tmp/$name.wrk"
    b1=$(bg_iters "$port"); t1=$(date +%s.%N)
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=
    [ "$rc" -eq 0 ] || { echo "bench/kvd.sh: kvd ($name) exited with $rc" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    local p50 p99 rps errs
    p50=$(awk '$1 == "50%" { print $2 }' "$tmp/$name.wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$tmp/$name.wrk")
    rps=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$tmp/$name.wrk")
    errs=$(awk '/Non-2xx|Socket errors/ { print }' "$tmp/$name.wrk")
    [ -n "$p50" ] && [ -n "$p99" ] || { echo "bench/kvd.sh: cannot parse wrk output:" >&2; cat "$tmp/$name.wrk" >&2; exit 1; }
    [ -z "$errs" ] || echo "bench/kvd.sh: $name: $errs" >&2
    local bgps
    bgps=$(awk -v a="$b0" -v b="$b1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
    echo "$(to_ms "$p50") $(to_ms "$p99") $rps $bgps" >"$tmp/$name.res"
}

echo "kvd under wrk: $conns connections, ~$rate req/s offered (delay ${delay_ms} ms per connection), ${duration} s per mode"
echo "background: $bg workers, chunk $chunk; request work $work; weights $weights (clockworker)"
run_mode clockworker
run_mode plain --plain
read -r cw_p50 cw_p99 cw_rps cw_bg <"$tmp/clockworker.res"
read -r pl_p50 pl_p99 pl_rps pl_bg <"$tmp/plain.res"
printf '%-12s %10s %10s %10s %14s\n' mode "p50 (ms)" "p99 (ms)" "req/s" "bg iter/s"
printf '%-12s %10s %10s %10s %14s\n' clockworker "$cw_p50" "$cw_p99" "$cw_rps" "$cw_bg"
printf '%-12s %10s %10s %10s %14s\n' plain "$pl_p50" "$pl_p99" "$pl_rps" "$pl_bg"
