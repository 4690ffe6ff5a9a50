#!/usr/bin/env bash
# plot.sh - bench/fgbg's CSV -> a PNG with the latency CDFs per variant.
#
# Usage: bench/plot.sh FGBG_CSV OUT_PNG      (make bench-plot runs it)
#
# Two panels: the CDF of the total latency (submit -> finish) and of the
# queue delay (submit -> first run) of every foreground task, one line per
# variant (all runs of a --repeat pooled), latency on a log scale in ms.
# Needs gnuplot (Debian: apt-get install gnuplot-nox); without it the script
# says so and exits 0, so that `make bench-plot` does not fail for it.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 FGBG_CSV OUT_PNG" >&2
    exit 2
fi
csv=$1
png=$2

if ! command -v gnuplot >/dev/null 2>&1; then
    echo "plot.sh: gnuplot not found (Debian: apt-get install gnuplot-nox); no plot made"
    exit 0
fi
if [ ! -r "$csv" ]; then
    echo "plot.sh: cannot read $csv" >&2
    exit 1
fi
head -n 1 "$csv" | grep -q '^variant,run,task,submit_us,queue_delay_us,total_latency_us' || {
    echo "plot.sh: $csv is not a bench/fgbg CSV" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fgbg-plot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Variants in the order of the CSV (the program's order).
variants=$(awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$csv")
if [ -z "$variants" ]; then
    echo "plot.sh: no rows in $csv" >&2
    exit 1
fi

# One file per variant and metric: sorted latency (ms) and cumulative fraction.
for v in $variants; do
    for col in 5 6; do
        awk -F, -v v="$v" -v c="$col" 'NR > 1 && $1 == v && $c != "" { print $c / 1000 }' "$csv" \
            | sort -g \
            | awk '{ x[NR] = $1 } END { for (i = 1; i <= NR; i++) print x[i], i / NR }' \
                >"$tmp/$v.$col.dat"
    done
done

plots() { # $1: column (5 queue delay, 6 total latency)
    local sep="" v
    for v in $variants; do
        printf '%s"%s" using 1:2 with lines lw 2 title "%s"' "$sep" "$tmp/$v.$1.dat" "$v"
        sep=", "
    done
}

gnuplot <<EOF
set terminal pngcairo size 1400,600 noenhanced font ",10"
set output "$png"
set multiplot layout 1,2 title "bench/fgbg: foreground latency CDF per variant ($(basename "$csv"))"
set logscale x
set xlabel "ms (log scale)"
set ylabel "fraction of foreground tasks"
set yrange [0:1]
set grid
set key left top
set title "total latency (submit -> finish)"
plot $(plots 6)
set title "queue delay (submit -> first run)"
plot $(plots 5)
unset multiplot
EOF
echo "plot.sh: wrote $png"
