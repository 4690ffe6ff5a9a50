/*
 * overhead.c - what one task costs, against raw libevent in the same run
 * (issue 6).
 *
 * Every figure is the median of --reps repetitions (default 5) inside one
 * run; each figure's base (and executor) is built once, warmed with one
 * unmeasured repetition, then reused by the measured ones. Times are
 * CLOCK_MONOTONIC. The shapes, cw against its raw-libevent baseline:
 *
 * spawn (N = 1K, 10K, 100K; JSON spawn_ns = the 10K row, per size in
 *   spawn_ns_by_size):
 *   cw       spawn N detached tasks from main (cw_spawn, 8-byte state, no
 *            join), then event_base_dispatch() until it returns (every
 *            task has ended); each task returns CW_READY at its first poll
 *            (it increments a counter). Time from before the first spawn
 *            to the return of dispatch, / N.
 *   once     N event_base_once(base, -1, EV_TIMEOUT, cb, arg, NULL) from
 *            main (a NULL timeout activates at once: libevent allocates an
 *            event_once, runs it, frees it), then dispatch; same clock.
 *   active   one event, activated once from main, whose callback
 *            re-activates it (event_active) until it has run N times: the
 *            floor, no allocation.
 * spawn chain (N = the 10K size; JSON spawn_chain_ns): one at a time.
 *   cw       a task spawns the next one (cw_spawn onto its own queue) from
 *            its poll and returns CW_READY; N tasks in all.
 *   once     a callback calls event_base_once() for the next one.
 * yield (1000 tasks x K = 10, 100, 1000; JSON yield_ns = K 100, per K in
 *   yield_ns_by_k): ns per poll.
 *   cw       spawn the tasks (not timed), then time dispatch: each poll
 *            wakes its own task (cw_waker_wake_by_ref(cw_cx_waker(cx)))
 *            and returns CW_PENDING, K times, then CW_READY. / tasks*(K+1)
 *            polls.
 *   libevent one event per task, activated (not timed); its callback
 *            re-activates it K times (event_active). / tasks*(K+1)
 *            callbacks.
 *   on/off   (K 100, same run) histograms on against off; the stall
 *            detector (10 ms threshold, never reached), the detector
 *            with its watchdog thread, and task accounting, each on
 *            against off (JSON yield_ns_histograms, yield_ns_stall,
 *            yield_ns_stall_watchdog, yield_ns_accounting: {on, off}).
 *            Off is the lean poll loop; wall time on a shared machine
 *            hides a few ns, so each side has its own run function
 *            (cwb_yield_run_*) for callgrind to count instructions.
 * ping-pong (1M hops): ns per hop.
 *   cw       two tasks; each puts a clone of its waker in a shared pair and
 *            wakes the other's (cw_waker_wake_by_ref) then returns PENDING,
 *            until the hop count is reached. / hops.
 *   libevent two events whose callbacks event_active() each other.
 *   cw_chan  (same run, JSON chan_hop_ns) two tasks pass a counter through
 *            two cw_chan of capacity 1 (clockworker/sync.h): send, then
 *            await the answer. / values received.
 * timers (100 tasks x 10 sleeps of 500 us, all concurrent): overshoot =
 *   fire time - deadline, p50 over every sleep of a repetition (mean
 *   printed too); JSON timer_overshoot_us on a default base,
 *   timer_overshoot_us_precise on a base with EVENT_BASE_FLAG_PRECISE_TIMER.
 *   cw       deadline = cw_executor_now() + 500 us, cw_sleep_init_until();
 *            fire = cw_executor_now() at the poll that sees it READY.
 *   libevent deadline = clock_gettime() + 500 us then evtimer_add(500 us)
 *            (one evtimer per task, re-added per sleep); fire =
 *            clock_gettime() on entering the callback. libevent counts
 *            from its cached loop time, so an overshoot may be negative.
 * pick (N = 1, 2, 8, 64, 256, 1024 runnable queues):
 *   pure     (JSON pick_ns) lib/core/eevdf.c linked in: N queues of weights
 *            1..8 all runnable; time cw__eevdf_pick() + cw__eevdf_charge()
 *            (a pseudo-random 500-1500 ns, still runnable) in a loop; ns
 *            per pick+charge. N = 1 is the one-queue fast path.
 *   exec     (JSON pick_exec_ns, pick_poll_ns) an executor with N queues,
 *            slice 1 ns each (cw_config_set_queue_slice), one always-
 *            runnable yielding task per queue, so that every poll ends a
 *            slice and forces a charge + pick: ns per poll at N minus ns
 *            per poll at N = 1 (no picks: one runnable queue); noisy, may
 *            be <= 0 for small N.
 * memory (1M tasks, 32-byte state, spawned and never run; JSON
 *   task_overhead_bytes): in a forked child per repetition (a fresh heap
 *   every time; memory is measured before any other figure): RSS growth
 *   (/proc/self/statm) / N - 32. Also the bytes the library asked its
 *   allocator for (cw_set_allocator with a counting wrapper) / N - 32,
 *   and, as the libevent figure, the RSS growth per pending
 *   event_base_once() callback (whose state would live elsewhere).
 *   Both cw figures again with task accounting on (JSON
 *   task_overhead_bytes_accounting, task_overhead_requested_bytes_
 *   accounting).
 *   The executor and the base are freed after.
 * remote (1, 2, 3 threads, 200 ms): 64 tasks per thread that return
 *   PENDING at every poll (after the first, which hands a waker clone to
 *   main); each thread calls cw_waker_wake_by_ref() on its own 64 wakers
 *   round-robin until stopped. wakes/s = the executor's stats.wakes_remote
 *   gained while the loop ran (repeated wakes of a task still in the inbox
 *   count once) / the time it ran; the threads' calls/s are printed too.
 *
 * --quick: the same shapes with fewer tasks (yield 100 tasks, 100K hops,
 * 100K-task memory, 50 ms remote, shorter pick loops). --smoke: a few
 * hundred tasks per figure (the memory figure keeps 20000 tasks so that
 * RSS growth is measurable), for make check and valgrind.
 * --only NAME,...: spawn yield pingpong timer pick memory remote.
 * --json FILE: the figures that ran (all the required keys when all ran).
 * --loop libuv|embed|uring: spawn, yield and ping-pong (and the cw_chan
 *   hop) on that loop's executor, each against the loop's cheapest
 *   self-re-arming callback (bench/loops.c, bench_raw_*: libuv a uv_idle_t
 *   left active, embed the ppoll() host loop's deferred list, uring a NOP
 *   request per callback on a plain io_uring loop) on a second loop of the
 *   same kind: spawn N and the chain against one callback re-arming
 *   itself N times, yield against tasks callbacks re-arming K times,
 *   ping-pong against two callbacks arming each other. JSON: the same
 *   keys, the loop's name for "libevent" (spawn: NAME_rearm). A loop this
 *   build lacks (or a ring the kernel refuses), or another figure: exit 2.
 * Exit status: 0 (targets missed or not), 1 on a failure, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clockworker.h"
#include "clockworker/sync.h"
#include "eevdf.h"

#include "common.h"
#include "loops.h"

#define NOINLINE __attribute__((noinline))
#define MAX_REPS 101

/* ---- small helpers ------------------------------------------------------- */

static CW_PRINTF(1, 2) _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "overhead: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void check(int err, const char *what)
{
    if (err < 0)
        die("%s: %s", what, cw_strerror(err));
}

static struct event_base *base_new(bool precise)
{
    struct event_base *b = bench_base_new(precise);
    if (!b)
        die("event_base_new failed");
    return b;
}

static void dispatch(struct event_base *b)
{
    if (event_base_dispatch(b) < 0)
        die("event_base_dispatch failed");
}

static int g_loop = BENCH_LIBEVENT; /* --loop */

/* A loop and an executor of nq queues (ids 0..nq-1, weight 1; slice_ns 0:
 * derived), on --loop's loop; base is the loop's event_base on libevent. */
struct env {
    struct bench_loop *loop;
    struct event_base *base;
    cw_executor *ex;
};

/* Runs the executor's loop until every task has ended. */
static void env_run(struct env *e)
{
    if (bench_loop_run(e->loop) < 0)
        die("%s: running the loop failed", bench_loop_name(g_loop));
}

/* A clock that costs nothing: each read advances it by 1 ns. Rounds then
 * end by max_polls_per_yield only (driver_yield is never reached). */
static uint64_t counter_clock(void *arg)
{
    return ++*(uint64_t *)arg;
}

static bool g_hist; /* executors built now keep histograms */
static uint64_t g_stall_ns; /* ... detect stalls past this (0: off) */
static bool g_watchdog;     /* ... with the stall watchdog */
static bool g_acct;         /* ... keep task accounting */

static void env_init_clock(struct env *e, uint32_t nq, uint64_t slice_ns, bool precise,
                           uint64_t *counter)
{
    cw_config *cfg = cw_config_new();
    if (!cfg)
        die("cw_config_new: out of memory");
    cw_config_set_histograms(cfg, g_hist);
    cw_config_set_task_accounting(cfg, g_acct);
    check(cw_config_set_stall_threshold(cfg, g_stall_ns), "cw_config_set_stall_threshold");
    check(cw_config_set_stall_watchdog(cfg, g_watchdog), "cw_config_set_stall_watchdog");
    if (counter)
        cw_config_set_clock(cfg, counter_clock, counter);
    for (uint32_t i = 0; i < nq; i++) {
        check(cw_config_add_queue(cfg, i, 1), "cw_config_add_queue");
        if (slice_ns)
            check(cw_config_set_queue_slice(cfg, i, slice_ns), "cw_config_set_queue_slice");
    }
    if (!(e->loop = bench_loop_new(g_loop, precise)))
        die("%s: making the loop failed", bench_loop_name(g_loop));
    e->base = bench_loop_base(e->loop);
    check(bench_loop_executor(e->loop, cfg, &e->ex), "cw_executor_new");
    cw_config_free(cfg);
}

static void env_init(struct env *e, uint32_t nq, uint64_t slice_ns, bool precise)
{
    env_init_clock(e, nq, slice_ns, precise, NULL);
}

static void env_free(struct env *e)
{
    cw_executor_free(e->ex);
    bench_loop_free(e->loop);
}

static cw_queue *env_q(struct env *e, uint32_t id)
{
    cw_queue *q = cw_executor_queue(e->ex, id);
    if (!q)
        die("no queue %" PRIu32, id);
    return q;
}

/* ---- parameters ---------------------------------------------------------- */

static const uint32_t pick_sizes[6] = {1, 2, 8, 64, 256, 1024};

struct params {
    uint32_t spawn_n[3];
    uint32_t yield_tasks, yield_k[3];
    uint32_t pp_hops;
    uint32_t timer_tasks, timer_sleeps;
    uint64_t timer_ns;
    uint32_t pick_polls, pick_iters;
    uint32_t mem_tasks;
    uint32_t remote_ms, remote_tasks;
    int reps;
};

static struct params P = {
    .spawn_n = {1000, 10000, 100000},
    .yield_tasks = 1000,
    .yield_k = {10, 100, 1000},
    .pp_hops = 1000000,
    .timer_tasks = 100,
    .timer_sleeps = 10,
    .timer_ns = 500000,
    .pick_polls = 200000,
    .pick_iters = 1000000,
    .mem_tasks = 1000000,
    .remote_ms = 200,
    .remote_tasks = 64,
    .reps = 5,
};

static void set_quick(void)
{
    P.yield_tasks = 100;
    P.pp_hops = 100000;
    P.pick_polls = 20000;
    P.pick_iters = 100000;
    P.mem_tasks = 100000;
    P.remote_ms = 50;
}

static void set_smoke(void)
{
    P.spawn_n[0] = 100;
    P.spawn_n[1] = 200;
    P.spawn_n[2] = 300;
    P.yield_tasks = 100;
    P.yield_k[0] = 2;
    P.yield_k[1] = 5;
    P.yield_k[2] = 10;
    P.pp_hops = 300;
    P.timer_tasks = 10;
    P.timer_sleeps = 3;
    P.pick_polls = 600;
    P.pick_iters = 2000;
    P.mem_tasks = 20000;
    P.remote_ms = 20;
    P.remote_tasks = 16;
}

/* ---- results --------------------------------------------------------------- */

struct results {
    bool spawn, yield, pingpong, timer, pick, memory, remote;
    /* [size][0 cw, 1 once, 2 active] */
    double spawn_ns[3][3];
    double chain_ns[2]; /* cw, once */
    double spawn_counter_ns; /* cw, 10K batch, counter clock */
    double spawn_hist_ns[2];  /* cw, 10K batch: histograms on, off */
    double yield_hist_ns[2];  /* cw, K = yield_k[1]: histograms on, off */
    /* cw, K = yield_k[1], on and off: the stall detector, the detector
     * with its watchdog, task accounting */
    double yield_diag_ns[3][2];
    double yield_ns[3][2];
    double yield_counter_ns; /* cw, K = yield_k[1], counter clock */
    double clock_ns;         /* one clock_gettime(CLOCK_MONOTONIC) */
    double pp_ns[2];
    double chan_ns;             /* cw_chan send->recv hop, per hop */
    /* [0 default base, 1 precise][0 cw, 1 libevent]: p50 and mean, us */
    double timer_p50[2][2], timer_mean[2][2];
    double pick_pure[6], pick_poll[6], pick_exec[6];
    double mem_rss, mem_req, mem_le;
    double mem_rss_acct, mem_req_acct; /* with task accounting */
    double remote_wps[3], remote_calls[3];
};

static struct results R;

/* ---- spawn ----------------------------------------------------------------- */

struct trivial {
    uint64_t *count;
};

static cw_poll trivial_poll(void *state, cw_cx *cx)
{
    struct trivial *t = state;
    (void)cx;
    ++*t->count;
    return CW_READY;
}

static NOINLINE double cwb_spawn_batch(struct env *e, cw_queue *q, uint32_t n)
{
    uint64_t count = 0;
    struct trivial init = {&count};
    uint64_t t0 = bench_mono_ns();
    for (uint32_t i = 0; i < n; i++)
        check(cw_spawn(q, trivial_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    env_run(e);
    uint64_t t1 = bench_mono_ns();
    if (count != n)
        die("spawn: %" PRIu64 " of %" PRIu32 " tasks ran", count, n);
    return (double)(t1 - t0) / n;
}

static void once_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ++*(uint64_t *)arg;
}

static NOINLINE double le_once_batch(struct event_base *b, uint32_t n)
{
    uint64_t count = 0;
    uint64_t t0 = bench_mono_ns();
    for (uint32_t i = 0; i < n; i++)
        if (event_base_once(b, -1, EV_TIMEOUT, once_cb, &count, NULL) < 0)
            die("event_base_once failed");
    dispatch(b);
    uint64_t t1 = bench_mono_ns();
    if (count != n)
        die("once: %" PRIu64 " of %" PRIu32 " callbacks ran", count, n);
    return (double)(t1 - t0) / n;
}

struct reactivate {
    struct event *ev;
    uint64_t left, count;
};

static void reactivate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct reactivate *a = arg;
    (void)fd;
    (void)what;
    a->count++;
    if (--a->left)
        event_active(a->ev, EV_TIMEOUT, 1);
}

static NOINLINE double le_active_self(struct event_base *b, uint32_t n)
{
    struct reactivate a = {NULL, n, 0};
    a.ev = event_new(b, -1, 0, reactivate_cb, &a);
    if (!a.ev)
        die("event_new failed");
    uint64_t t0 = bench_mono_ns();
    event_active(a.ev, EV_TIMEOUT, 1);
    dispatch(b);
    uint64_t t1 = bench_mono_ns();
    event_free(a.ev);
    if (a.count != n)
        die("active: %" PRIu64 " of %" PRIu32 " callbacks ran", a.count, n);
    return (double)(t1 - t0) / n;
}

struct chain {
    uint32_t *left;
    uint64_t *count;
};

static cw_poll chain_poll(void *state, cw_cx *cx)
{
    struct chain *c = state;
    ++*c->count;
    if (*c->left) {
        --*c->left;
        check(cw_spawn(cw_cx_queue(cx), chain_poll, c, sizeof *c, NULL, NULL), "cw_spawn");
    }
    return CW_READY;
}

static NOINLINE double cwb_spawn_chain(struct env *e, cw_queue *q, uint32_t n)
{
    uint64_t count = 0;
    uint32_t left = n - 1;
    struct chain init = {&left, &count};
    uint64_t t0 = bench_mono_ns();
    check(cw_spawn(q, chain_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    env_run(e);
    uint64_t t1 = bench_mono_ns();
    if (count != n)
        die("chain: %" PRIu64 " of %" PRIu32 " tasks ran", count, n);
    return (double)(t1 - t0) / n;
}

struct le_chain {
    struct event_base *base;
    uint32_t left;
    uint64_t count;
};

static void le_chain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct le_chain *c = arg;
    (void)fd;
    (void)what;
    c->count++;
    if (c->left) {
        c->left--;
        if (event_base_once(c->base, -1, EV_TIMEOUT, le_chain_cb, c, NULL) < 0)
            die("event_base_once failed");
    }
}

static NOINLINE double le_once_chain(struct event_base *b, uint32_t n)
{
    struct le_chain c = {b, n - 1, 0};
    uint64_t t0 = bench_mono_ns();
    if (event_base_once(b, -1, EV_TIMEOUT, le_chain_cb, &c, NULL) < 0)
        die("event_base_once failed");
    dispatch(b);
    uint64_t t1 = bench_mono_ns();
    if (c.count != n)
        die("once chain: %" PRIu64 " of %" PRIu32 " callbacks ran", c.count, n);
    return (double)(t1 - t0) / n;
}

static void run_spawn(void)
{
    double v[3][MAX_REPS];
    for (int s = 0; s < 3; s++) {
        uint32_t n = P.spawn_n[s];
        struct env e;
        env_init(&e, 1, 0, false);
        cw_queue *q = env_q(&e, 0);
        struct event_base *lb = base_new(false);
        cwb_spawn_batch(&e, q, n); /* warm-up */
        le_once_batch(lb, n);
        le_active_self(lb, n);
        for (int r = 0; r < P.reps; r++) {
            v[0][r] = cwb_spawn_batch(&e, q, n);
            v[1][r] = le_once_batch(lb, n);
            v[2][r] = le_active_self(lb, n);
        }
        for (int k = 0; k < 3; k++)
            R.spawn_ns[s][k] = bench_median(v[k], P.reps);
        if (s == 1) {
            cwb_spawn_chain(&e, q, n);
            le_once_chain(lb, n);
            for (int r = 0; r < P.reps; r++) {
                v[0][r] = cwb_spawn_chain(&e, q, n);
                v[1][r] = le_once_chain(lb, n);
            }
            R.chain_ns[0] = bench_median(v[0], P.reps);
            R.chain_ns[1] = bench_median(v[1], P.reps);
            /* the same batch on an executor whose clock costs nothing */
            uint64_t counter = 0;
            struct env ec;
            env_init_clock(&ec, 1, 0, false, &counter);
            cw_queue *qc = env_q(&ec, 0);
            cwb_spawn_batch(&ec, qc, n);
            for (int r = 0; r < P.reps; r++)
                v[0][r] = cwb_spawn_batch(&ec, qc, n);
            R.spawn_counter_ns = bench_median(v[0], P.reps);
            env_free(&ec);
            /* histograms on (ec) against off (e), alternating */
            g_hist = true;
            env_init(&ec, 1, 0, false);
            g_hist = false;
            qc = env_q(&ec, 0);
            cwb_spawn_batch(&ec, qc, n);
            for (int r = 0; r < P.reps; r++) {
                v[0][r] = cwb_spawn_batch(&ec, qc, n);
                v[1][r] = cwb_spawn_batch(&e, q, n);
            }
            R.spawn_hist_ns[0] = bench_median(v[0], P.reps);
            R.spawn_hist_ns[1] = bench_median(v[1], P.reps);
            env_free(&ec);
        }
        event_base_free(lb);
        env_free(&e);
    }
    R.spawn = true;
}

/* ---- yield ------------------------------------------------------------------ */

struct yielder {
    uint32_t left;
};

static cw_poll yielder_poll(void *state, cw_cx *cx)
{
    struct yielder *y = state;
    if (!y->left)
        return CW_READY;
    y->left--;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* Times the dispatch only; the tasks are spawned before. */
static NOINLINE uint64_t cwb_yield_run(struct env *e)
{
    uint64_t t0 = bench_mono_ns();
    env_run(e);
    return bench_mono_ns() - t0;
}

/* The same, one function per side of the diagnostics' on/off rows, so
 * that callgrind counts each side's instructions apart:
 *   valgrind --tool=callgrind bench/overhead --smoke --only yield
 *   callgrind_annotate --inclusive=yes callgrind.out.* | grep cwb_yield_run_
 * Each "on" side runs (reps + 1) x yield_tasks x (yield_k[1] + 1) polls;
 * the "off" side three times as many (it is each row's baseline). */
static NOINLINE uint64_t cwb_yield_run_stall(struct env *e)
{
    return cwb_yield_run(e);
}

static NOINLINE uint64_t cwb_yield_run_watchdog(struct env *e)
{
    return cwb_yield_run(e);
}

static NOINLINE uint64_t cwb_yield_run_acct(struct env *e)
{
    return cwb_yield_run(e);
}

static NOINLINE uint64_t cwb_yield_run_off(struct env *e)
{
    return cwb_yield_run(e);
}

static uint64_t (*g_yield_run)(struct env *) = cwb_yield_run;

static double cwb_yield(struct env *e, cw_queue *q, uint32_t tasks, uint32_t k)
{
    struct yielder init = {k};
    struct cw_executor_stats s0, s1;
    check(cw_executor_stats(e->ex, &s0), "cw_executor_stats");
    for (uint32_t i = 0; i < tasks; i++)
        check(cw_spawn(q, yielder_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    uint64_t dt = g_yield_run(e);
    check(cw_executor_stats(e->ex, &s1), "cw_executor_stats");
    uint64_t polls = (uint64_t)tasks * (k + 1);
    if (s1.polls - s0.polls != polls)
        die("yield: %" PRIu64 " polls, expected %" PRIu64, s1.polls - s0.polls, polls);
    return (double)dt / (double)polls;
}

struct le_yielder {
    struct event *ev;
    uint32_t left;
};

static void le_yield_cb(evutil_socket_t fd, short what, void *arg)
{
    struct le_yielder *y = arg;
    (void)fd;
    (void)what;
    if (y->left) {
        y->left--;
        event_active(y->ev, EV_TIMEOUT, 1);
    }
}

static NOINLINE uint64_t le_yield_run(struct event_base *b)
{
    uint64_t t0 = bench_mono_ns();
    dispatch(b);
    return bench_mono_ns() - t0;
}

static double le_yield(struct event_base *b, struct le_yielder *ys, uint32_t tasks, uint32_t k)
{
    for (uint32_t i = 0; i < tasks; i++) {
        ys[i].left = k;
        event_active(ys[i].ev, EV_TIMEOUT, 1);
    }
    uint64_t dt = le_yield_run(b);
    for (uint32_t i = 0; i < tasks; i++)
        if (ys[i].left)
            die("libevent yield: an event stopped early");
    return (double)dt / ((double)tasks * (k + 1));
}

static NOINLINE double clock_cost(uint32_t n)
{
    uint64_t sink = 0;
    uint64_t t0 = bench_mono_ns();
    for (uint32_t i = 0; i < n; i++)
        sink += bench_mono_ns();
    uint64_t t1 = bench_mono_ns();
    if (sink == 42) /* keep the reads */
        fputc('\n', stderr);
    return (double)(t1 - t0) / n;
}

static void run_yield(void)
{
    double v[2][MAX_REPS];
    struct env e;
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    struct event_base *lb = base_new(false);
    struct le_yielder *ys = calloc(P.yield_tasks, sizeof *ys);
    if (!ys)
        die("out of memory");
    for (uint32_t i = 0; i < P.yield_tasks; i++)
        if (!(ys[i].ev = event_new(lb, -1, 0, le_yield_cb, &ys[i])))
            die("event_new failed");
    for (int s = 0; s < 3; s++) {
        uint32_t k = P.yield_k[s];
        cwb_yield(&e, q, P.yield_tasks, k);
        le_yield(lb, ys, P.yield_tasks, k);
        for (int r = 0; r < P.reps; r++) {
            v[0][r] = cwb_yield(&e, q, P.yield_tasks, k);
            v[1][r] = le_yield(lb, ys, P.yield_tasks, k);
        }
        R.yield_ns[s][0] = bench_median(v[0], P.reps);
        R.yield_ns[s][1] = bench_median(v[1], P.reps);
    }
    /* K = yield_k[1] on an executor whose clock costs nothing */
    uint64_t counter = 0;
    struct env ec;
    env_init_clock(&ec, 1, 0, false, &counter);
    cw_queue *qc = env_q(&ec, 0);
    cwb_yield(&ec, qc, P.yield_tasks, P.yield_k[1]);
    for (int r = 0; r < P.reps; r++)
        v[0][r] = cwb_yield(&ec, qc, P.yield_tasks, P.yield_k[1]);
    R.yield_counter_ns = bench_median(v[0], P.reps);
    env_free(&ec);
    /* histograms on (ec) against off (e), alternating */
    g_hist = true;
    env_init(&ec, 1, 0, false);
    g_hist = false;
    qc = env_q(&ec, 0);
    cwb_yield(&ec, qc, P.yield_tasks, P.yield_k[1]);
    for (int r = 0; r < P.reps; r++) {
        v[0][r] = cwb_yield(&ec, qc, P.yield_tasks, P.yield_k[1]);
        v[1][r] = cwb_yield(&e, q, P.yield_tasks, P.yield_k[1]);
    }
    R.yield_hist_ns[0] = bench_median(v[0], P.reps);
    R.yield_hist_ns[1] = bench_median(v[1], P.reps);
    env_free(&ec);
    /* the stall detector (threshold 10 ms: never reached here), the same
     * with its watchdog thread, task accounting: each on (ec) against
     * off (e, which runs the lean poll loop), alternating */
    for (int d = 0; d < 3; d++) {
        uint64_t (*on_run)(struct env *) = d == 0   ? cwb_yield_run_stall
                                           : d == 1 ? cwb_yield_run_watchdog
                                                    : cwb_yield_run_acct;
        g_stall_ns = d < 2 ? 10000000 : 0;
        g_watchdog = d == 1;
        g_acct = d == 2;
        env_init(&ec, 1, 0, false);
        g_stall_ns = 0;
        g_watchdog = g_acct = false;
        qc = env_q(&ec, 0);
        for (int r = -1; r < P.reps; r++) { /* r = -1: warm-up */
            g_yield_run = on_run;
            double on = cwb_yield(&ec, qc, P.yield_tasks, P.yield_k[1]);
            g_yield_run = cwb_yield_run_off;
            double off = cwb_yield(&e, q, P.yield_tasks, P.yield_k[1]);
            if (r >= 0) {
                v[0][r] = on;
                v[1][r] = off;
            }
        }
        g_yield_run = cwb_yield_run;
        R.yield_diag_ns[d][0] = bench_median(v[0], P.reps);
        R.yield_diag_ns[d][1] = bench_median(v[1], P.reps);
        env_free(&ec);
    }
    /* what one read of the executor's default clock costs here */
    for (int r = 0; r < P.reps; r++)
        v[0][r] = clock_cost(P.yield_tasks * 1000u);
    R.clock_ns = bench_median(v[0], P.reps);
    for (uint32_t i = 0; i < P.yield_tasks; i++)
        event_free(ys[i].ev);
    free(ys);
    event_base_free(lb);
    env_free(&e);
    R.yield = true;
}

/* ---- ping-pong --------------------------------------------------------------- */

struct pp_shared {
    cw_waker *w[2];
    uint64_t hops, limit;
};

struct pp {
    struct pp_shared *sh;
    int me;
    bool registered;
};

static cw_poll pp_poll(void *state, cw_cx *cx)
{
    struct pp *p = state;
    struct pp_shared *sh = p->sh;
    if (!p->registered) {
        p->registered = true;
        sh->w[p->me] = cw_waker_clone(cw_cx_waker(cx));
        if (p->me == 1) /* task 0 ran first and waits: serve */
            cw_waker_wake_by_ref(sh->w[0]);
        return CW_PENDING;
    }
    cw_waker_wake_by_ref(sh->w[!p->me]);
    if (sh->hops >= sh->limit)
        return CW_READY; /* the wake above lets the other end too */
    sh->hops++;
    return CW_PENDING;
}

static NOINLINE double cwb_pingpong(struct env *e, cw_queue *q, uint32_t hops)
{
    struct pp_shared sh = {{NULL, NULL}, 0, hops};
    struct pp a = {&sh, 0, false}, b = {&sh, 1, false};
    uint64_t t0 = bench_mono_ns();
    check(cw_spawn(q, pp_poll, &a, sizeof a, NULL, NULL), "cw_spawn");
    check(cw_spawn(q, pp_poll, &b, sizeof b, NULL, NULL), "cw_spawn");
    env_run(e);
    uint64_t t1 = bench_mono_ns();
    cw_waker_free(sh.w[0]);
    cw_waker_free(sh.w[1]);
    if (sh.hops != hops)
        die("ping-pong: %" PRIu64 " of %" PRIu32 " hops", sh.hops, hops);
    return (double)(t1 - t0) / hops;
}

struct le_pp {
    struct event *ev[2];
    uint64_t hops, limit;
};

static void le_pp_cb0(evutil_socket_t fd, short what, void *arg);
static void le_pp_cb1(evutil_socket_t fd, short what, void *arg);

static void le_pp_cb0(evutil_socket_t fd, short what, void *arg)
{
    struct le_pp *p = arg;
    (void)fd;
    (void)what;
    if (p->hops < p->limit) {
        p->hops++;
        event_active(p->ev[1], EV_TIMEOUT, 1);
    }
}

static void le_pp_cb1(evutil_socket_t fd, short what, void *arg)
{
    struct le_pp *p = arg;
    (void)fd;
    (void)what;
    if (p->hops < p->limit) {
        p->hops++;
        event_active(p->ev[0], EV_TIMEOUT, 1);
    }
}

static NOINLINE double le_pingpong(struct event_base *b, uint32_t hops)
{
    struct le_pp p = {{NULL, NULL}, 0, hops};
    p.ev[0] = event_new(b, -1, 0, le_pp_cb0, &p);
    p.ev[1] = event_new(b, -1, 0, le_pp_cb1, &p);
    if (!p.ev[0] || !p.ev[1])
        die("event_new failed");
    uint64_t t0 = bench_mono_ns();
    event_active(p.ev[0], EV_TIMEOUT, 1);
    dispatch(b);
    uint64_t t1 = bench_mono_ns();
    event_free(p.ev[0]);
    event_free(p.ev[1]);
    if (p.hops != hops)
        die("libevent ping-pong: %" PRIu64 " of %" PRIu32 " hops", p.hops, hops);
    return (double)(t1 - t0) / hops;
}

/* Channel hop: two tasks pass a counter back and forth through two
 * cw_chan of capacity 1 (A sends on ab and receives on ba; B the other
 * way); a hop is one value sent by one task and received by the other. */
struct ch_task {
    cw_pt pt;
    cw_chan *out, *in;
    cw_chan_send tx;
    cw_chan_recv rx;
    uint64_t v, n, limit;
    bool first; /* sends before it receives */
};

static cw_poll ch_poll(void *state, cw_cx *cx)
{
    struct ch_task *c = state;
    CW_BEGIN(&c->pt);
    for (c->n = 0; c->n < c->limit; c->n++) {
        if (c->first || c->n > 0) {
            cw_chan_send_init(&c->tx, c->out, &c->v);
            CW_AWAIT(&c->pt, cw_chan_send_poll(&c->tx, cx));
            check(cw_chan_send_result(&c->tx), "cw_chan send");
        }
        cw_chan_recv_init(&c->rx, c->in, &c->v);
        CW_AWAIT(&c->pt, cw_chan_recv_poll(&c->rx, cx));
        check(cw_chan_recv_result(&c->rx), "cw_chan recv");
        c->v++;
    }
    if (!c->first) { /* B answers the last value too */
        cw_chan_send_init(&c->tx, c->out, &c->v);
        CW_AWAIT(&c->pt, cw_chan_send_poll(&c->tx, cx));
    }
    CW_END(&c->pt);
}

static NOINLINE double cwb_chanhop(struct env *e, cw_queue *q, uint32_t hops)
{
    cw_chan *ab, *ba;
    check(cw_chan_new(1, sizeof(uint64_t), &ab), "cw_chan_new");
    check(cw_chan_new(1, sizeof(uint64_t), &ba), "cw_chan_new");
    uint64_t rounds = hops / 2;
    struct ch_task a = {.out = ab, .in = ba, .limit = rounds, .first = true};
    struct ch_task b = {.out = ba, .in = ab, .limit = rounds, .first = false};
    cw_join *ja, *jb;
    uint64_t t0 = bench_mono_ns();
    check(cw_spawn(q, ch_poll, &a, sizeof a, NULL, &ja), "cw_spawn");
    check(cw_spawn(q, ch_poll, &b, sizeof b, NULL, &jb), "cw_spawn");
    env_run(e);
    uint64_t t1 = bench_mono_ns();
    if (cw_join_status(ja) != 0 || cw_join_status(jb) != 0)
        die("chan hop: tasks did not complete");
    uint64_t got = ((struct ch_task *)cw_join_state(ja))->v;
    if (got != 2 * rounds)
        die("chan hop: final value %" PRIu64 ", want %" PRIu64, got, 2 * rounds);
    cw_join_free(ja);
    cw_join_free(jb);
    cw_chan_free(ab);
    cw_chan_free(ba);
    return (double)(t1 - t0) / (double)(2 * rounds);
}

static void run_pingpong(void)
{
    double v[2][MAX_REPS];
    struct env e;
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    struct event_base *lb = base_new(false);
    cwb_pingpong(&e, q, P.pp_hops);
    le_pingpong(lb, P.pp_hops);
    for (int r = 0; r < P.reps; r++) {
        v[0][r] = cwb_pingpong(&e, q, P.pp_hops);
        v[1][r] = le_pingpong(lb, P.pp_hops);
    }
    R.pp_ns[0] = bench_median(v[0], P.reps);
    R.pp_ns[1] = bench_median(v[1], P.reps);
    cwb_chanhop(&e, q, P.pp_hops);
    for (int r = 0; r < P.reps; r++)
        v[0][r] = cwb_chanhop(&e, q, P.pp_hops);
    R.chan_ns = bench_median(v[0], P.reps);
    event_base_free(lb);
    env_free(&e);
    R.pingpong = true;
}

/* ---- timers ------------------------------------------------------------------ */

struct overshoots {
    double *us;
    uint32_t n, cap;
};

static void record(struct overshoots *o, int64_t ns)
{
    if (o->n < o->cap)
        o->us[o->n++] = (double)ns / 1000.0;
}

/* p50 and mean of the recorded overshoots; resets the record. */
static void summarise(struct overshoots *o, double *p50, double *mean)
{
    double sum = 0;
    if (o->n != o->cap)
        die("timers: %" PRIu32 " of %" PRIu32 " sleeps fired", o->n, o->cap);
    for (uint32_t i = 0; i < o->n; i++)
        sum += o->us[i];
    *p50 = bench_median(o->us, o->n);
    *mean = sum / o->n;
    o->n = 0;
}

struct sleeper {
    cw_sleep nap;
    cw_executor *ex;
    struct overshoots *o;
    uint64_t deadline, period;
    uint32_t left;
    bool armed;
};

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    struct sleeper *s = state;
    for (;;) {
        if (!s->armed) {
            if (!s->left)
                return CW_READY;
            s->deadline = cw_executor_now(s->ex) + s->period;
            cw_sleep_init_until(&s->nap, s->deadline);
            s->armed = true;
        }
        if (cw_sleep_poll(&s->nap, cx) == CW_PENDING)
            return CW_PENDING;
        record(s->o, (int64_t)(cw_executor_now(s->ex) - s->deadline));
        s->armed = false;
        s->left--;
    }
}

static void sleeper_drop(void *state)
{
    struct sleeper *s = state;
    cw_sleep_drop(&s->nap);
}

static void cwb_timers(struct env *e, cw_queue *q, struct overshoots *o)
{
    struct sleeper init;
    memset(&init, 0, sizeof init);
    init.ex = e->ex;
    init.o = o;
    init.period = P.timer_ns;
    init.left = P.timer_sleeps;
    for (uint32_t i = 0; i < P.timer_tasks; i++)
        check(cw_spawn(q, sleeper_poll, &init, sizeof init, sleeper_drop, NULL), "cw_spawn");
    env_run(e);
}

struct le_sleeper {
    struct event *ev;
    struct overshoots *o;
    uint64_t deadline;
    uint32_t left;
};

static void le_arm(struct le_sleeper *s)
{
    struct timeval tv = {(time_t)(P.timer_ns / 1000000000u),
                         (suseconds_t)(P.timer_ns % 1000000000u / 1000)};
    s->deadline = bench_mono_ns() + P.timer_ns;
    if (evtimer_add(s->ev, &tv) < 0)
        die("evtimer_add failed");
}

static void le_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct le_sleeper *s = arg;
    (void)fd;
    (void)what;
    record(s->o, (int64_t)(bench_mono_ns() - s->deadline));
    if (--s->left)
        le_arm(s);
}

static void le_timers(struct event_base *b, struct le_sleeper *ss, struct overshoots *o)
{
    for (uint32_t i = 0; i < P.timer_tasks; i++) {
        ss[i].o = o;
        ss[i].left = P.timer_sleeps;
        le_arm(&ss[i]);
    }
    dispatch(b);
}

static void run_timer(void)
{
    double p50[2][MAX_REPS], mean[2][MAX_REPS];
    struct overshoots o;
    o.cap = P.timer_tasks * P.timer_sleeps;
    o.n = 0;
    o.us = calloc(o.cap, sizeof *o.us);
    struct le_sleeper *ss = calloc(P.timer_tasks, sizeof *ss);
    if (!o.us || !ss)
        die("out of memory");
    for (int precise = 0; precise < 2; precise++) {
        struct env e;
        env_init(&e, 1, 0, precise);
        cw_queue *q = env_q(&e, 0);
        struct event_base *lb = base_new(precise);
        for (uint32_t i = 0; i < P.timer_tasks; i++)
            if (!(ss[i].ev = evtimer_new(lb, le_timer_cb, &ss[i])))
                die("evtimer_new failed");
        for (int r = -1; r < P.reps; r++) { /* r = -1: warm-up */
            double a, m;
            cwb_timers(&e, q, &o);
            summarise(&o, &a, &m);
            if (r >= 0) {
                p50[0][r] = a;
                mean[0][r] = m;
            }
            le_timers(lb, ss, &o);
            summarise(&o, &a, &m);
            if (r >= 0) {
                p50[1][r] = a;
                mean[1][r] = m;
            }
        }
        for (int k = 0; k < 2; k++) {
            R.timer_p50[precise][k] = bench_median(p50[k], P.reps);
            R.timer_mean[precise][k] = bench_median(mean[k], P.reps);
        }
        for (uint32_t i = 0; i < P.timer_tasks; i++)
            event_free(ss[i].ev);
        event_base_free(lb);
        env_free(&e);
    }
    free(ss);
    free(o.us);
    R.timer = true;
}

/* ---- pick ------------------------------------------------------------------------ */

static NOINLINE double pure_pick(uint32_t n, uint32_t iters)
{
    cw__eevdf s;
    cw__eq *eq = calloc(n, sizeof *eq);
    cw__eevdf_slot *slots = calloc(cw__eevdf_slots(n), sizeof *slots);
    if (!eq || !slots)
        die("out of memory");
    cw__eevdf_init(&s, slots, n, CW_DEFAULT_SCHED_LATENCY_NS, CW_DEFAULT_MIN_SLICE_NS);
    for (uint32_t i = 0; i < n; i++) {
        cw__eq_init(&eq[i], i, 1 + i % 8, 0);
        cw__eevdf_add(&s, &eq[i], CW__EQ_NO_RANK, false);
        cw__eevdf_enqueue(&s, &eq[i]);
    }
    uint32_t rng = 12345;
    uint64_t sink = 0;
    uint64_t t0 = bench_mono_ns();
    for (uint32_t i = 0; i < iters; i++) {
        uint64_t slice;
        cw__eq *e = cw__eevdf_pick(&s, &slice);
        rng = rng * 1103515245u + 12345u;
        sink += e->index + slice;
        cw__eevdf_charge(&s, 500 + (rng >> 16) % 1000, true);
    }
    uint64_t t1 = bench_mono_ns();
    free(slots);
    free(eq);
    if (sink == 42) /* keep the loop's results alive */
        fputc('\n', stderr);
    return (double)(t1 - t0) / iters;
}

struct spinner {
    uint64_t *polls, limit;
};

static cw_poll spinner_poll(void *state, cw_cx *cx)
{
    struct spinner *s = state;
    if (*s->polls >= s->limit)
        return CW_READY;
    ++*s->polls;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static NOINLINE double exec_pick(struct env *e, uint32_t nq, uint32_t polls)
{
    uint64_t count = 0;
    struct spinner init = {&count, polls};
    struct cw_executor_stats s0, s1;
    for (uint32_t i = 0; i < nq; i++)
        check(cw_spawn(env_q(e, i), spinner_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    check(cw_executor_stats(e->ex, &s0), "cw_executor_stats");
    uint64_t t0 = bench_mono_ns();
    env_run(e);
    uint64_t t1 = bench_mono_ns();
    check(cw_executor_stats(e->ex, &s1), "cw_executor_stats");
    return (double)(t1 - t0) / (double)(s1.polls - s0.polls);
}

static void run_pick(void)
{
    double v[2][MAX_REPS];
    for (int s = 0; s < 6; s++) {
        uint32_t n = pick_sizes[s];
        struct env e;
        env_init(&e, n, 1, false);
        pure_pick(n, P.pick_iters / 10 + 1);
        exec_pick(&e, n, P.pick_polls);
        for (int r = 0; r < P.reps; r++) {
            v[0][r] = pure_pick(n, P.pick_iters);
            v[1][r] = exec_pick(&e, n, P.pick_polls);
        }
        R.pick_pure[s] = bench_median(v[0], P.reps);
        R.pick_poll[s] = bench_median(v[1], P.reps);
        R.pick_exec[s] = R.pick_poll[s] - R.pick_poll[0];
        env_free(&e);
    }
    R.pick = true;
}

/* ---- memory (forked child per repetition) ------------------------------------ */

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f)
        die("cannot open /proc/self/statm: %s", strerror(errno));
    if (fscanf(f, "%llu %llu", &size, &res) != 2)
        die("cannot read /proc/self/statm");
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static atomic_ullong g_requested; /* bytes asked of the counting allocator */

static void *counting_malloc(size_t n)
{
    atomic_fetch_add_explicit(&g_requested, n, memory_order_relaxed);
    return malloc(n);
}

static void *counting_realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&g_requested, n, memory_order_relaxed);
    return realloc(p, n);
}

struct state32 {
    uint64_t a[4];
};

_Static_assert(sizeof(struct state32) == 32, "a 32-byte state");

static cw_poll never_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_PENDING; /* never polled: the tasks are only spawned */
}

/* In the child: out[0] RSS growth per task - 32, out[1] bytes requested
 * per task - 32 (-1e9 if the allocator could not be set), out[2] RSS
 * growth per pending event_base_once callback. (g_acct: the executor
 * keeps task accounting.) */
static void memory_child(uint32_t n, double out[3])
{
    int err = cw_set_allocator(counting_malloc, counting_realloc, free);
    struct env e;
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    struct state32 init = {{1, 2, 3, 4}};
    /* one task first, so that one-time growth (the notify event) is not
     * counted */
    check(cw_spawn(q, never_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    uint64_t r0 = rss_bytes();
    unsigned long long q0 = atomic_load(&g_requested);
    for (uint32_t i = 0; i < n; i++)
        check(cw_spawn(q, never_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    uint64_t r1 = rss_bytes();
    unsigned long long q1 = atomic_load(&g_requested);
    out[0] = (double)(r1 - r0) / n - (double)sizeof init;
    out[1] = err < 0 ? -1e9 : (double)(q1 - q0) / n - (double)sizeof init;
    env_free(&e);

    uint64_t count = 0;
    struct event_base *b = base_new(false);
    uint64_t r2 = rss_bytes();
    for (uint32_t i = 0; i < n; i++)
        if (event_base_once(b, -1, EV_TIMEOUT, once_cb, &count, NULL) < 0)
            die("event_base_once failed");
    uint64_t r3 = rss_bytes();
    out[2] = (double)(r3 - r2) / n;
    event_base_free(b); /* frees the pending once events */
}

static void memory_rep(uint32_t n, double out[3])
{
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        memory_child(n, out);
        ssize_t w = write(fds[1], out, 3 * sizeof *out);
        _exit(w == (ssize_t)(3 * sizeof *out) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = 0;
    while (got < (ssize_t)(3 * sizeof *out)) {
        ssize_t r = read(fds[0], (char *)out + got, 3 * sizeof *out - (size_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0
        || got != (ssize_t)(3 * sizeof *out))
        die("memory: the measuring child failed");
}

static void run_memory(void)
{
    double v[5][MAX_REPS];
    for (int r = 0; r < P.reps; r++) {
        double out[3];
        memory_rep(P.mem_tasks, out);
        for (int k = 0; k < 3; k++)
            v[k][r] = out[k];
        g_acct = true; /* the same with task accounting */
        memory_rep(P.mem_tasks, out);
        g_acct = false;
        v[3][r] = out[0];
        v[4][r] = out[1];
    }
    R.mem_rss = bench_median(v[0], P.reps);
    R.mem_req = bench_median(v[1], P.reps);
    R.mem_le = bench_median(v[2], P.reps);
    R.mem_rss_acct = bench_median(v[3], P.reps);
    R.mem_req_acct = bench_median(v[4], P.reps);
    R.memory = true;
}

/* ---- remote wakes -------------------------------------------------------------- */

struct remote_task {
    cw_waker **slot;
    uint32_t *registered;
};

static cw_poll remote_poll(void *state, cw_cx *cx)
{
    struct remote_task *t = state;
    if (!*t->slot) {
        *t->slot = cw_waker_clone(cw_cx_waker(cx));
        ++*t->registered;
    }
    return CW_PENDING; /* re-armed: the threads hold the wakers */
}

struct waker_thread {
    pthread_t th;
    cw_waker **w;
    uint32_t nw;
    atomic_bool *stop;
    uint64_t calls;
};

static void *waker_main(void *arg)
{
    struct waker_thread *t = arg;
    uint64_t calls = 0;
    uint32_t i = 0;
    while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
        for (int j = 0; j < 64; j++) {
            cw_waker_wake_by_ref(t->w[i]);
            if (++i == t->nw)
                i = 0;
        }
        calls += 64;
    }
    t->calls = calls;
    return NULL;
}

static void loopbreak_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* wakes/s taken by the executor and wake calls/s made by the threads. */
static NOINLINE void remote_rep(uint32_t nthreads, double *wps, double *cps)
{
    uint32_t ntasks = nthreads * P.remote_tasks, registered = 0;
    cw_waker **w = calloc(ntasks, sizeof *w);
    struct waker_thread th[3];
    atomic_bool stop;
    struct env e;
    if (!w)
        die("out of memory");
    atomic_init(&stop, false);
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    for (uint32_t i = 0; i < ntasks; i++) {
        struct remote_task init = {&w[i], &registered};
        check(cw_spawn(q, remote_poll, &init, sizeof init, NULL, NULL), "cw_spawn");
    }
    while (registered < ntasks)
        if (event_base_loop(e.base, EVLOOP_ONCE | EVLOOP_NONBLOCK) < 0)
            die("event_base_loop failed");

    struct event *brk = evtimer_new(e.base, loopbreak_cb, e.base);
    struct timeval tv = {(time_t)(P.remote_ms / 1000), (suseconds_t)(P.remote_ms % 1000 * 1000)};
    if (!brk)
        die("evtimer_new failed");
    struct cw_executor_stats s0, s1;
    check(cw_executor_stats(e.ex, &s0), "cw_executor_stats");
    uint64_t t0 = bench_mono_ns();
    for (uint32_t k = 0; k < nthreads; k++) {
        th[k].w = w + k * P.remote_tasks;
        th[k].nw = P.remote_tasks;
        th[k].stop = &stop;
        th[k].calls = 0;
        if (pthread_create(&th[k].th, NULL, waker_main, &th[k]) != 0)
            die("pthread_create failed");
    }
    /* armed last, so that the window starts when the loop does */
    if (evtimer_add(brk, &tv) < 0)
        die("evtimer_add failed");
    dispatch(e.base);
    uint64_t t1 = bench_mono_ns();
    check(cw_executor_stats(e.ex, &s1), "cw_executor_stats");
    atomic_store(&stop, true);
    uint64_t calls = 0;
    for (uint32_t k = 0; k < nthreads; k++) {
        pthread_join(th[k].th, NULL);
        calls += th[k].calls;
    }
    uint64_t t2 = bench_mono_ns();
    event_free(brk);
    for (uint32_t i = 0; i < ntasks; i++)
        cw_waker_free(w[i]);
    free(w);
    env_free(&e); /* cancels the tasks */
    *wps = (double)(s1.wakes_remote - s0.wakes_remote) * 1e9 / (double)(t1 - t0);
    *cps = (double)calls * 1e9 / (double)(t2 - t0);
}

static void run_remote(void)
{
    double v[2][MAX_REPS];
    for (uint32_t n = 1; n <= 3; n++) {
        for (int r = 0; r < P.reps; r++)
            remote_rep(n, &v[0][r], &v[1][r]);
        R.remote_wps[n - 1] = bench_median(v[0], P.reps);
        R.remote_calls[n - 1] = bench_median(v[1], P.reps);
    }
    R.remote = true;
}

/* ---- --loop libuv, embed, uring: spawn, yield, ping-pong against the re-arm ----
 * The same cw figures as above on the executor of --loop's loop, each
 * against the loop's cheapest self-re-arming callback (bench/loops.c:
 * bench_raw_*; libuv: a uv_idle_t left active, embed: the host loop's
 * deferred list, uring: a NOP request), on a second loop of the same
 * kind. */

struct loop_results {
    bool spawn, yield, pingpong;
    double spawn_ns[3][2]; /* [size][0 cw, 1 re-arm] */
    double chain_ns[2];
    double yield_ns[3][2];
    double pp_ns[2];
    double chan_ns;
};

static struct loop_results L;

static double raw_check(double ns, const char *what)
{
    if (ns < 0)
        die("%s: the raw %s baseline failed", bench_loop_name(g_loop), what);
    return ns;
}

static void loop_spawn(void)
{
    double v[2][MAX_REPS];
    for (int s = 0; s < 3; s++) {
        uint32_t n = P.spawn_n[s];
        struct env e;
        env_init(&e, 1, 0, false);
        cw_queue *q = env_q(&e, 0);
        struct bench_loop *lb = bench_loop_new(g_loop, false);
        if (!lb)
            die("%s: making the loop failed", bench_loop_name(g_loop));
        cwb_spawn_batch(&e, q, n); /* warm-up */
        raw_check(bench_raw_rearm(lb, n), "re-arm");
        for (int r = 0; r < P.reps; r++) {
            v[0][r] = cwb_spawn_batch(&e, q, n);
            v[1][r] = raw_check(bench_raw_rearm(lb, n), "re-arm");
        }
        for (int k = 0; k < 2; k++)
            L.spawn_ns[s][k] = bench_median(v[k], P.reps);
        if (s == 1) {
            cwb_spawn_chain(&e, q, n);
            for (int r = 0; r < P.reps; r++) {
                v[0][r] = cwb_spawn_chain(&e, q, n);
                v[1][r] = raw_check(bench_raw_rearm(lb, n), "re-arm");
            }
            L.chain_ns[0] = bench_median(v[0], P.reps);
            L.chain_ns[1] = bench_median(v[1], P.reps);
        }
        bench_loop_free(lb);
        env_free(&e);
    }
    L.spawn = true;
}

static void loop_yield(void)
{
    double v[2][MAX_REPS];
    struct env e;
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    struct bench_loop *lb = bench_loop_new(g_loop, false);
    if (!lb)
        die("%s: making the loop failed", bench_loop_name(g_loop));
    for (int s = 0; s < 3; s++) {
        uint32_t k = P.yield_k[s];
        cwb_yield(&e, q, P.yield_tasks, k);
        raw_check(bench_raw_yield(lb, P.yield_tasks, k), "yield");
        for (int r = 0; r < P.reps; r++) {
            v[0][r] = cwb_yield(&e, q, P.yield_tasks, k);
            v[1][r] = raw_check(bench_raw_yield(lb, P.yield_tasks, k), "yield");
        }
        L.yield_ns[s][0] = bench_median(v[0], P.reps);
        L.yield_ns[s][1] = bench_median(v[1], P.reps);
    }
    bench_loop_free(lb);
    env_free(&e);
    L.yield = true;
}

static void loop_pingpong(void)
{
    double v[2][MAX_REPS];
    struct env e;
    env_init(&e, 1, 0, false);
    cw_queue *q = env_q(&e, 0);
    struct bench_loop *lb = bench_loop_new(g_loop, false);
    if (!lb)
        die("%s: making the loop failed", bench_loop_name(g_loop));
    cwb_pingpong(&e, q, P.pp_hops);
    raw_check(bench_raw_pingpong(lb, P.pp_hops), "ping-pong");
    for (int r = 0; r < P.reps; r++) {
        v[0][r] = cwb_pingpong(&e, q, P.pp_hops);
        v[1][r] = raw_check(bench_raw_pingpong(lb, P.pp_hops), "ping-pong");
    }
    L.pp_ns[0] = bench_median(v[0], P.reps);
    L.pp_ns[1] = bench_median(v[1], P.reps);
    cwb_chanhop(&e, q, P.pp_hops);
    for (int r = 0; r < P.reps; r++)
        v[0][r] = cwb_chanhop(&e, q, P.pp_hops);
    L.chan_ns = bench_median(v[0], P.reps);
    bench_loop_free(lb);
    env_free(&e);
    L.pingpong = true;
}

/* ---- output ---------------------------------------------------------------------- */

static const char *met(bool ok)
{
    return ok ? "yes" : "NO";
}

static void row(const char *fig, double cw, const char *bname, double base, const char *target,
                const char *ok)
{
    char cwbuf[32], bbuf[32], rbuf[16];
    snprintf(cwbuf, sizeof cwbuf, "%.1f", cw);
    if (bname) {
        snprintf(bbuf, sizeof bbuf, "%.1f", base);
        snprintf(rbuf, sizeof rbuf, "%.2f", base != 0 ? cw / base : 0.0);
    } else {
        snprintf(bbuf, sizeof bbuf, "-");
        snprintf(rbuf, sizeof rbuf, "-");
    }
    printf("%-44s %10s  %-12s %10s %7s  %-7s %s\n", fig, cwbuf, bname ? bname : "-", bbuf, rbuf,
           target ? target : "-", ok ? ok : "-");
}

static void print_table(void)
{
    char fig[64];
    printf("clockworker overhead vs raw libevent (median of %d reps; ns unless said)\n", P.reps);
    printf("%-44s %10s  %-12s %10s %7s  %-7s %s\n", "figure", "cw", "libevent", "baseline",
           "ratio", "target", "met?");
    if (R.spawn) {
        for (int s = 0; s < 3; s++) {
            snprintf(fig, sizeof fig, "spawn->complete N=%" PRIu32 "%s", P.spawn_n[s],
                     s == 1 ? " [json]" : "");
            row(fig, R.spawn_ns[s][0], "once", R.spawn_ns[s][1], "<=1.5x",
                met(R.spawn_ns[s][0] <= 1.5 * R.spawn_ns[s][1]));
            row("", R.spawn_ns[s][0], "active", R.spawn_ns[s][2], NULL, NULL);
        }
        snprintf(fig, sizeof fig, "spawn chain N=%" PRIu32, P.spawn_n[1]);
        row(fig, R.chain_ns[0], "once chain", R.chain_ns[1], "<=1.5x",
            met(R.chain_ns[0] <= 1.5 * R.chain_ns[1]));
        snprintf(fig, sizeof fig, "  spawn N=%" PRIu32 ", counter clock", P.spawn_n[1]);
        row(fig, R.spawn_counter_ns, "once", R.spawn_ns[1][1], NULL, NULL);
        snprintf(fig, sizeof fig, "  spawn N=%" PRIu32 ", histograms on", P.spawn_n[1]);
        row(fig, R.spawn_hist_ns[0], "hist off", R.spawn_hist_ns[1], NULL, NULL);
    }
    if (R.yield)
        for (int s = 0; s < 3; s++) {
            snprintf(fig, sizeof fig, "yield %" PRIu32 "x%" PRIu32 " (per poll)%s", P.yield_tasks,
                     P.yield_k[s], s == 1 ? " [json]" : "");
            row(fig, R.yield_ns[s][0], "active", R.yield_ns[s][1], "<=1.5x",
                met(R.yield_ns[s][0] <= 1.5 * R.yield_ns[s][1]));
        }
    if (R.yield) {
        snprintf(fig, sizeof fig, "  yield x%" PRIu32 ", counter clock", P.yield_k[1]);
        row(fig, R.yield_counter_ns, "active", R.yield_ns[1][1], NULL, NULL);
        snprintf(fig, sizeof fig, "  yield x%" PRIu32 ", histograms on", P.yield_k[1]);
        row(fig, R.yield_hist_ns[0], "hist off", R.yield_hist_ns[1], NULL, NULL);
        const char *diag[3] = {"stall detector on", "stall watchdog on", "task accounting on"};
        const char *base[3] = {"stall off", "stall off", "acct off"};
        for (int d = 0; d < 3; d++) {
            snprintf(fig, sizeof fig, "  yield x%" PRIu32 ", %s", P.yield_k[1], diag[d]);
            row(fig, R.yield_diag_ns[d][0], base[d], R.yield_diag_ns[d][1], NULL, NULL);
        }
        row("  one clock_gettime(CLOCK_MONOTONIC)", R.clock_ns, NULL, 0, NULL, NULL);
    }
    if (R.pingpong) {
        snprintf(fig, sizeof fig, "ping-pong %" PRIu32 " hops (per hop)", P.pp_hops);
        row(fig, R.pp_ns[0], "active", R.pp_ns[1], NULL, NULL);
        snprintf(fig, sizeof fig, "cw_chan send->recv hop (per hop)");
        row(fig, R.chan_ns, "active", R.pp_ns[1], NULL, NULL);
    }
    if (R.timer) {
        const char *names[2] = {"default base", "precise base"};
        for (int p = 0; p < 2; p++) {
            snprintf(fig, sizeof fig, "timer overshoot p50 us, %s%s", names[p],
                     p == 0 ? " [json]" : "");
            row(fig, R.timer_p50[p][0], "evtimer", R.timer_p50[p][1], NULL, NULL);
            snprintf(fig, sizeof fig, "timer overshoot mean us, %s", names[p]);
            row(fig, R.timer_mean[p][0], "evtimer", R.timer_mean[p][1], NULL, NULL);
        }
    }
    if (R.pick) {
        for (int s = 0; s < 6; s++) {
            snprintf(fig, sizeof fig, "pick pure N=%" PRIu32 " [json]", pick_sizes[s]);
            if (pick_sizes[s] == 256)
                row(fig, R.pick_pure[s], "pure N=2", R.pick_pure[1], "<=2x",
                    met(R.pick_pure[s] <= 2 * R.pick_pure[1]));
            else
                row(fig, R.pick_pure[s], NULL, 0, NULL, NULL);
        }
        for (int s = 1; s < 6; s++) {
            snprintf(fig, sizeof fig, "pick exec N=%" PRIu32 " (poll - N=1)", pick_sizes[s]);
            if (pick_sizes[s] == 256)
                row(fig, R.pick_exec[s], "exec N=2", R.pick_exec[1], "<=2x",
                    met(R.pick_exec[s] <= 2 * R.pick_exec[1]));
            else
                row(fig, R.pick_exec[s], NULL, 0, NULL, NULL);
        }
        for (int s = 0; s < 6; s++) {
            snprintf(fig, sizeof fig, "poll, slice 1 ns, N=%" PRIu32, pick_sizes[s]);
            row(fig, R.pick_poll[s], NULL, 0, NULL, NULL);
        }
    }
    if (R.memory) {
        snprintf(fig, sizeof fig, "task overhead bytes, RSS (N=%" PRIu32 ")", P.mem_tasks);
        row(fig, R.mem_rss, "once, RSS", R.mem_le, "<=64", met(R.mem_rss <= 64));
        row("task overhead bytes, requested", R.mem_req, NULL, 0, "<=64", met(R.mem_req <= 64));
        row("  with task accounting, RSS", R.mem_rss_acct, "acct off", R.mem_rss, NULL, NULL);
        row("  with task accounting, requested", R.mem_req_acct, "acct off", R.mem_req, NULL,
            NULL);
    }
    if (R.remote)
        for (int n = 0; n < 3; n++) {
            snprintf(fig, sizeof fig, "remote wakes/s, %d thread%s", n + 1, n ? "s" : "");
            row(fig, R.remote_wps[n], NULL, 0, NULL, NULL);
            snprintf(fig, sizeof fig, "  wake calls/s, %d thread%s", n + 1, n ? "s" : "");
            row(fig, R.remote_calls[n], NULL, 0, NULL, NULL);
        }
    fflush(stdout);
}

/* --loop other than libevent: the table of loop_*(). */
static void print_loop_table(void)
{
    char fig[64];
    const char *ln = bench_loop_name(g_loop), *base = bench_raw_rearm_name(g_loop);
    printf("clockworker overhead vs raw %s (median of %d reps; ns unless said)\n", ln, P.reps);
    printf("%-44s %10s  %-12s %10s %7s  %-7s %s\n", "figure", "cw", ln, "baseline", "ratio",
           "target", "met?");
    if (L.spawn) {
        for (int s = 0; s < 3; s++) {
            snprintf(fig, sizeof fig, "spawn->complete N=%" PRIu32 "%s", P.spawn_n[s],
                     s == 1 ? " [json]" : "");
            row(fig, L.spawn_ns[s][0], base, L.spawn_ns[s][1], NULL, NULL);
        }
        snprintf(fig, sizeof fig, "spawn chain N=%" PRIu32, P.spawn_n[1]);
        row(fig, L.chain_ns[0], base, L.chain_ns[1], NULL, NULL);
    }
    if (L.yield)
        for (int s = 0; s < 3; s++) {
            snprintf(fig, sizeof fig, "yield %" PRIu32 "x%" PRIu32 " (per poll)%s", P.yield_tasks,
                     P.yield_k[s], s == 1 ? " [json]" : "");
            row(fig, L.yield_ns[s][0], base, L.yield_ns[s][1], "<=1.5x",
                met(L.yield_ns[s][0] <= 1.5 * L.yield_ns[s][1]));
        }
    if (L.pingpong) {
        snprintf(fig, sizeof fig, "ping-pong %" PRIu32 " hops (per hop)", P.pp_hops);
        row(fig, L.pp_ns[0], base, L.pp_ns[1], NULL, NULL);
        row("cw_chan send->recv hop (per hop)", L.chan_ns, base, L.pp_ns[1], NULL, NULL);
    }
    printf("%s: %s\n", base,
           g_loop == BENCH_LIBUV ? "uv_idle_t callbacks left active (libuv calls each once per "
                                   "loop iteration); ping-pong: each stops itself, starts the other"
           : g_loop == BENCH_URING
               ? "callbacks run by the completion of an IORING_OP_NOP on a plain io_uring loop "
                 "(each re-queues its NOP, one io_uring_submit_and_wait() per turn); "
                 "ping-pong: each queues the other's NOP"
               : "callbacks on the ppoll() host loop's deferred list (each run "
                 "once per turn, re-queued by itself); ping-pong: each queues "
                 "the other");
    fflush(stdout);
}

/* The keys of the JSON objects that pair a cw figure with its baselines. */
static const char *const k_cw_le[] = {"cw", "libevent"};
static const char *const k_spawn[] = {"cw", "libevent_once", "libevent_active"};
static const char *const k_onoff[] = {"on", "off"};
static const char *const k_threads[] = {"1", "2", "3"};

/* {"<size 0>": {keys: row 0}, ...}: a figure at each of its 3 sizes, rows
 * holding nkeys values per size. */
static void json_by_size(FILE *f, const uint32_t *sizes, const char *const *keys,
                         const double *rows, size_t nkeys)
{
    fprintf(f, "{");
    for (int s = 0; s < 3; s++) {
        fprintf(f, "%s\"%" PRIu32 "\": ", s ? ", " : "", sizes[s]);
        bench_json_nums(f, keys, rows + (size_t)s * nkeys, nkeys, 3);
    }
    fprintf(f, "}");
}

static void write_loop_json(const char *path)
{
    FILE *f = fopen(path, "w");
    const char *sep = "";
    char k_le[32], k_rearm[32];
    if (!f)
        die("%s: %s", path, strerror(errno));
    /* "libuv" where libevent's say "libevent", "libuv_rearm" where they
     * say "libevent_active" */
    snprintf(k_le, sizeof k_le, "%s", bench_loop_name(g_loop));
    snprintf(k_rearm, sizeof k_rearm, "%s_rearm", bench_loop_name(g_loop));
    const char *const k_yield[] = {"cw", k_le}, *const k_spawn_l[] = {"cw", k_rearm};
    fprintf(f, "{\n");
#define KEY(name) (fprintf(f, "%s  \"%s\": ", sep, name), sep = ",\n")
    if (L.spawn) {
        KEY("spawn_ns");
        bench_json_nums(f, k_spawn_l, L.spawn_ns[1], 2, 3);
        KEY("spawn_ns_by_size");
        json_by_size(f, P.spawn_n, k_spawn_l, &L.spawn_ns[0][0], 2);
        KEY("spawn_chain_ns");
        bench_json_nums(f, k_spawn_l, L.chain_ns, 2, 3);
    }
    if (L.yield) {
        KEY("yield_ns");
        bench_json_nums(f, k_yield, L.yield_ns[1], 2, 3);
        KEY("yield_ns_by_k");
        json_by_size(f, P.yield_k, k_yield, &L.yield_ns[0][0], 2);
    }
    if (L.pingpong) {
        KEY("pingpong_ns");
        bench_json_nums(f, k_yield, L.pp_ns, 2, 3);
        KEY("chan_hop_ns");
        fprintf(f, "%.3f", L.chan_ns);
    }
#undef KEY
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        die("%s: write failed", path);
}

static void write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    const char *sep = "";
    if (!f)
        die("%s: %s", path, strerror(errno));
    fprintf(f, "{\n");
    /* starts the next top-level member */
#define KEY(name) (fprintf(f, "%s  \"%s\": ", sep, name), sep = ",\n")
    if (R.spawn) {
        KEY("spawn_ns");
        bench_json_nums(f, k_spawn, R.spawn_ns[1], 3, 3);
        KEY("spawn_ns_by_size");
        json_by_size(f, P.spawn_n, k_spawn, &R.spawn_ns[0][0], 3);
        KEY("spawn_chain_ns");
        bench_json_nums(f, k_spawn, R.chain_ns, 2, 3);
        KEY("spawn_ns_counter_clock");
        fprintf(f, "%.3f", R.spawn_counter_ns);
        KEY("spawn_ns_histograms");
        bench_json_nums(f, k_onoff, R.spawn_hist_ns, 2, 3);
    }
    if (R.yield) {
        KEY("yield_ns");
        bench_json_nums(f, k_cw_le, R.yield_ns[1], 2, 3);
        KEY("yield_ns_by_k");
        json_by_size(f, P.yield_k, k_cw_le, &R.yield_ns[0][0], 2);
        KEY("yield_ns_counter_clock");
        fprintf(f, "%.3f", R.yield_counter_ns);
        KEY("yield_ns_histograms");
        bench_json_nums(f, k_onoff, R.yield_hist_ns, 2, 3);
        KEY("yield_ns_stall");
        bench_json_nums(f, k_onoff, R.yield_diag_ns[0], 2, 3);
        KEY("yield_ns_stall_watchdog");
        bench_json_nums(f, k_onoff, R.yield_diag_ns[1], 2, 3);
        KEY("yield_ns_accounting");
        bench_json_nums(f, k_onoff, R.yield_diag_ns[2], 2, 3);
        KEY("clock_gettime_ns");
        fprintf(f, "%.3f", R.clock_ns);
    }
    if (R.pingpong) {
        KEY("pingpong_ns");
        bench_json_nums(f, k_cw_le, R.pp_ns, 2, 3);
        KEY("chan_hop_ns");
        fprintf(f, "%.3f", R.chan_ns);
    }
    if (R.timer) {
        KEY("timer_overshoot_us");
        bench_json_nums(f, k_cw_le, R.timer_p50[0], 2, 3);
        KEY("timer_overshoot_us_precise");
        bench_json_nums(f, k_cw_le, R.timer_p50[1], 2, 3);
    }
    if (R.pick) {
        const char *keys[3] = {"pick_ns", "pick_exec_ns", "pick_poll_ns"};
        const double *vals[3] = {R.pick_pure, R.pick_exec, R.pick_poll};
        for (int k = 0; k < 3; k++) {
            KEY(keys[k]);
            fprintf(f, "{");
            for (int s = 0; s < 6; s++)
                fprintf(f, "%s\"%" PRIu32 "\": %.3f", s ? ", " : "", pick_sizes[s], vals[k][s]);
            fprintf(f, "}");
        }
    }
    if (R.memory) {
        KEY("task_overhead_bytes");
        fprintf(f, "%.3f", R.mem_rss);
        KEY("task_overhead_requested_bytes");
        fprintf(f, "%.3f", R.mem_req);
        KEY("task_overhead_bytes_accounting");
        fprintf(f, "%.3f", R.mem_rss_acct);
        KEY("task_overhead_requested_bytes_accounting");
        fprintf(f, "%.3f", R.mem_req_acct);
        KEY("libevent_once_bytes");
        fprintf(f, "%.3f", R.mem_le);
    }
    if (R.remote) {
        KEY("remote_wakes_per_s");
        bench_json_nums(f, k_threads, R.remote_wps, 3, 0);
        KEY("remote_wake_calls_per_s");
        bench_json_nums(f, k_threads, R.remote_calls, 3, 0);
    }
#undef KEY
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        die("%s: write failed", path);
}

/* ---- main ------------------------------------------------------------------------- */

static _Noreturn void usage(void)
{
    fprintf(stderr,
            "usage: overhead [--quick | --smoke] [--reps N] [--json FILE]\n"
            "                [--only spawn,yield,pingpong,timer,pick,memory,remote]\n"
            "                [--loop libevent|libuv|embed|uring] (not libevent: spawn, yield,\n"
            "                pingpong only)\n");
    exit(2);
}

enum { F_SPAWN = 1, F_YIELD = 2, F_PP = 4, F_TIMER = 8, F_PICK = 16, F_MEM = 32, F_REMOTE = 64 };

static unsigned parse_only(const char *list)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"spawn", F_SPAWN}, {"yield", F_YIELD}, {"pingpong", F_PP},
                 {"timer", F_TIMER}, {"pick", F_PICK},   {"memory", F_MEM},
                 {"remote", F_REMOTE}};
    unsigned mask = 0;
    const char *item;
    size_t len;
    while (bench_list_next(&list, &item, &len)) {
        long i = bench_name_index(item, len, BENCH_NAMES(names, name));
        if (i < 0) { /* an empty item too: "spawn,,yield" */
            fprintf(stderr, "overhead: unknown figure \"%.*s\"\n", (int)len, item);
            usage();
        }
        mask |= names[i].bit;
    }
    if (!mask)
        usage();
    return mask;
}

int main(int argc, char **argv)
{
    const char *json = NULL;
    unsigned only = ~0u;
    bool quick = false, smoke = false;
    int reps = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--smoke"))
            smoke = true;
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = parse_only(argv[++i]);
        else if (!strcmp(argv[i], "--loop") && i + 1 < argc) {
            const char *name = argv[++i];
            int k = bench_loop_find(name);
            if (k < 0) {
                fprintf(stderr, "overhead: unknown loop \"%s\"\n", name);
                usage();
            }
            const char *why = bench_loop_unavailable(k);
            if (why) {
                fprintf(stderr, "overhead: --loop %s: %s\n", name, why);
                exit(2);
            }
            g_loop = k;
        }
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > MAX_REPS)
                usage();
            reps = (int)v;
        } else
            usage();
    }
    if (quick && smoke)
        usage();
    if (quick)
        set_quick();
    if (smoke)
        set_smoke();
    if (reps)
        P.reps = reps;

    if (g_loop != BENCH_LIBEVENT) {
        if (only == ~0u)
            only = F_SPAWN | F_YIELD | F_PP;
        if (only & ~(unsigned)(F_SPAWN | F_YIELD | F_PP)) {
            fprintf(stderr, "overhead: --loop %s measures spawn, yield and pingpong only\n",
                    bench_loop_name(g_loop));
            exit(2);
        }
        if (only & F_SPAWN)
            loop_spawn();
        if (only & F_YIELD)
            loop_yield();
        if (only & F_PP)
            loop_pingpong();
        print_loop_table();
        if (json)
            write_loop_json(json);
        libevent_global_shutdown();
        return 0;
    }

    /* memory first: it wants a heap no other figure has used */
    if (only & F_MEM)
        run_memory();
    if (only & F_SPAWN)
        run_spawn();
    if (only & F_YIELD)
        run_yield();
    if (only & F_PP)
        run_pingpong();
    if (only & F_TIMER)
        run_timer();
    if (only & F_PICK)
        run_pick();
    if (only & F_REMOTE)
        run_remote();

    print_table();
    if (json)
        write_json(json);
    libevent_global_shutdown();
    return 0;
}
