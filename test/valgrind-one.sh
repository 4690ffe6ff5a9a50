#!/bin/sh
# valgrind-one.sh TEST: run one Check suite under memcheck, in one process
# (CK_FORK=no), and print one block: PASS/FAIL/SKIP, the driver, Check's
# summary line, and on failure the log's tail. TEST is a suite
# (test/check_task: on libevent) or a driver run (test/check_task-libuv.drv).
# make check-valgrind runs these two at a time; VALGRIND and
# VALGRIND_FLAGS come from the environment.
t=$1
case $t in
    *.drv) b=${t%.drv}; s=${b%-*}; d=${b##*-} ;;
    *) s=$t; d=libevent ;;
esac
log=${t%.drv}.valgrind.log
CK_FORK=no CW_TEST_DRIVER=$d $VALGRIND $VALGRIND_FLAGS "./$s" >"$log" 2>&1
case $? in
    0) r=PASS ;;
    77) r=SKIP ;; # (as make check: a suite for another build, check_debug)
    *) r=FAIL ;;
esac
out=$(
    echo "$r: $s on $d (valgrind)"
    grep -h '^[0-9]*%: Checks:' "$log"
    [ $r != FAIL ] || tail -n 60 "$log"
)
echo "$out" # one write per suite: the parallel runs do not interleave
[ $r != FAIL ]
