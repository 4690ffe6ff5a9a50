#!/usr/bin/env bash
# bench/kvd.sh - examples/kvd under wrk in its three modes, side by side
# from one run (`make bench-kvd`, or bash bench/kvd.sh [options] from the
# build directory): clockworker (requests as tasks), callbacks (--plain's
# callbacks run on the queues: --callbacks) and plain libevent (--plain).
#
# The modes run the same daemon with the same background work on
# (--bg-tasks workers doing CPU chunks that alone saturate a core) and
# the same request work; the only difference is the mode option.
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
#
# Saturation (`make bench-kvd-saturate`, or bash bench/kvd.sh --saturate
# [options]): no pacing, wrk -t2 -c<conns> (32 unless --conns) for
# --duration s per run, --repeat rounds (2) of one run per mode, in
# ABC CBA order (clockworker, callbacks, plain, then plain, callbacks,
# clockworker, ...) so that drift on a shared machine falls on the modes
# alike. Prints each run's req/s and
# background iterations/s, the daemon's CPU use over the run (under wrk
# it may not get a whole CPU) and its CPU per request with the background
# taken out (us/req: the daemon's CPU, less bg iterations x the CPU one
# took in 1 s of background alone measured just before, over requests),
# then each mode's means and the ratios clockworker/plain and
# callbacks/plain (req/s, bg iter/s, us/req), over all runs and per
# round. wrk runs on the same CPUs as the daemon: on a 2-CPU machine its
# 2 threads compete with the daemon's one, and the modes share the
# daemon's CPU differently (plain runs each background worker's chunk
# once per loop pass; clockworker by the queues' weights; callbacks by
# the weights too, but each worker's chunk at most once per loop pass):
# compare req/s where bg iter/s are alike, else us/req. --rate is
# ignored there.
# Needs wrk and curl (Debian packages); exits 1 saying so if one is missing.
set -euo pipefail

duration=10 conns= rate=2000 bg=2 work=2000 chunk=20000 weights=100:1
kvd=examples/kvd saturate=0 repeat=2
while [ $# -gt 0 ]; do
    case "$1" in
    --saturate) saturate=1; shift ;;
    --repeat) repeat=$2; shift 2 ;;
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
if [ -z "$conns" ]; then
    if [ "$saturate" -eq 1 ]; then conns=32; else conns=16; fi
fi
case "$repeat" in
''|*[!0-9]*|0) echo "bench/kvd.sh: --repeat wants a positive integer" >&2; exit 2 ;;
esac

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
# --saturate: the requests back to back; paced: the same with a delay.
cat >"$tmp/flood.lua" <<EOF
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/kv/key-" .. (n % 100))
end
EOF
{ cat "$tmp/flood.lua"; printf 'function delay()\n    return %s\nend\n' "$delay_ms"; } >"$tmp/pace.lua"
script=$tmp/pace.lua
[ "$saturate" -eq 0 ] || script=$tmp/flood.lua

# wrk prints 123.45us, 1.23ms or 1.02s: in ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

# CPU time of process $1 so far, in clock ticks (user + system).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
bg_iters() { curl -s -S --max-time 10 "http://127.0.0.1:$1/stats" | sed -n 's/.*bg_iterations=\([0-9]*\).*/\1/p'; }
# "requests bg_iterations" of the daemon on port $1
req_bg() { curl -s -S --max-time 10 "http://127.0.0.1:$1/stats" | sed -n 's/^requests=\([0-9]*\) bg_iterations=\([0-9]*\).*/\1 \2/p'; }

# kvd's option for a mode (none for clockworker, the default)
mode_opt() {
    case "$1" in
    callbacks) echo --callbacks ;;
    plain) echo --plain ;;
    esac
}

# run_mode NAME [MODE-OPTION]: writes "p50 p99 req_per_s bg_per_s cpu_pct
# us_per_req" to $tmp/NAME.res (cpu_pct: the daemon's CPU time over the
# wrk run's, in %; us_per_req, --saturate only: see below)
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
    local b0 b1 t0 t1 c0 c1 cal0 cal1 k0 k1 r0 r1 usreq=-
    if [ "$saturate" -eq 1 ]; then
        # The background alone for 1 s: its CPU per iteration, to take
        # out of the daemon's CPU under load (CPU per request below).
        cal0=$(req_bg "$port"); k0=$(cpu_ticks "$pid")
        sleep 1
        cal1=$(req_bg "$port"); k1=$(cpu_ticks "$pid")
        r0=$(req_bg "$port")
    fi
    b0=$(bg_iters "$port"); t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$script" "http://127.0.0.1:$port/" >"$tmp/$name.wrk"
    b1=$(bg_iters "$port"); t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
    if [ "$saturate" -eq 1 ]; then
        r1=$(req_bg "$port")
        # CPU per request, background excluded: (daemon CPU - bg iterations
        # x bg CPU per iteration when alone) / requests, in us.
        usreq=$(awk -v cal0="$cal0" -v cal1="$cal1" -v k0="$k0" -v k1="$k1" -v r0="$r0" -v r1="$r1" \
            -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN {
                split(cal0, a, " "); split(cal1, b, " "); split(r0, x, " "); split(r1, y, " ")
                per = (b[2] - a[2] > 0) ? (k1 - k0) / (b[2] - a[2]) : 0
                req = y[1] - x[1]
                us = (req > 0) ? ((c1 - c0) - per * (y[2] - x[2])) / hz * 1e6 / req : 0
                printf "%.1f", us }')
    fi
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
    local bgps cpu
    bgps=$(awk -v a="$b0" -v b="$b1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }')
    echo "$(to_ms "$p50") $(to_ms "$p99") $rps $bgps $cpu $usreq" >"$tmp/$name.res"
}

if [ "$saturate" -eq 1 ]; then
    echo "kvd under wrk, saturated: wrk -t2 -c$conns, no pacing, ${duration} s per run, $repeat x 3 runs (ABC CBA)"
    echo "background: $bg workers, chunk $chunk; request work $work; weights $weights (clockworker, callbacks)"
    printf '%-5s %-12s %10s %14s %10s %10s %8s %10s\n' round mode "req/s" "bg iter/s" "p50 (ms)" "p99 (ms)" "kvd cpu" "us/req"
    : >"$tmp/runs"
    for r in $(seq 1 "$repeat"); do
        if [ $((r % 2)) -eq 1 ]; then order="clockworker callbacks plain"; else order="plain callbacks clockworker"; fi
        for m in $order; do
            run_mode "$m" $(mode_opt "$m")
            read -r p50 p99 rps bgps cpu usreq <"$tmp/$m.res"
            printf '%-5s %-12s %10s %14s %10s %10s %7s%% %10s\n' "$r" "$m" "$rps" "$bgps" "$p50" "$p99" "$cpu" "$usreq"
            echo "$r $m $rps $bgps $usreq" >>"$tmp/runs"
        done
    done
    awk '
        function ratio(a, b) { return b ? a / b : 0 }
        { rps[$2] += $3; bg[$2] += $4; us[$2] += $5; n[$2]++; prps[$1, $2] = $3; pbg[$1, $2] = $4
          pus[$1, $2] = $5
          if ($1 > last) last = $1 }
        END {
            split("clockworker callbacks plain", modes, " ")
            for (i = 1; i <= 3; i++) {
                m = modes[i]
                printf "%-5s %-12s %10.0f %14.0f %21s %19.1f   (%d runs)\n", "mean", m,
                    rps[m] / n[m], bg[m] / n[m], "", us[m] / n[m], n[m]
            }
            for (i = 1; i <= 2; i++) {
                m = modes[i]
                printf "ratio %s/plain: req/s %.3f, bg iter/s %.3f, us/req %.3f\n", m,
                    ratio(rps[m], rps["plain"]), ratio(bg[m], bg["plain"]), ratio(us[m], us["plain"])
                printf "  per round (req/s, bg iter/s, us/req):"
                for (r = 1; r <= last; r++)
                    printf " %.3f/%.3f/%.3f", ratio(prps[r, m], prps[r, "plain"]),
                        ratio(pbg[r, m], pbg[r, "plain"]), ratio(pus[r, m], pus[r, "plain"])
                printf "\n"
            }
        }' "$tmp/runs"
    exit 0
fi

echo "kvd under wrk: $conns connections, ~$rate req/s offered (delay ${delay_ms} ms per connection), ${duration} s per mode"
echo "background: $bg workers, chunk $chunk; request work $work; weights $weights (clockworker, callbacks)"
for m in clockworker callbacks plain; do
    run_mode "$m" $(mode_opt "$m")
done
printf '%-12s %10s %10s %10s %14s\n' mode "p50 (ms)" "p99 (ms)" "req/s" "bg iter/s"
for m in clockworker callbacks plain; do
    read -r p50 p99 rps bgps _ <"$tmp/$m.res"
    printf '%-12s %10s %10s %10s %14s\n' "$m" "$p50" "$p99" "$rps" "$bgps"
done
