/* check_executor.c - the executor in its event_base: libevent polls I/O
 * between rounds, run_until and event_base_dispatch drive tasks, counters
 * are exact. Time is the injected clock; no assertion on real time. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "internal.h"

#define US 1000ull
#define MS 1000000ull

static fake_clock *g_clk;
static int g_stop;
static uint64_t g_polls;

/* CPU-bound: each poll costs 10 us of (fake) time. */
static cw_poll busy_poll(void *state, cw_cx *cx)
{
    (void)state;
    if (g_stop)
        return CW_READY;
    g_clk->now += 10 * US;
    g_polls++;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* ---- I/O between rounds --------------------------------------------------- */

static int g_sv[2];
static uint64_t g_written_at, g_read_at, g_polls_at_read;

typedef struct writer {
    uint64_t after; /* polls before writing */
    uint64_t n;
} writer;

static cw_poll writer_poll(void *state, cw_cx *cx)
{
    writer *w = state;
    if (g_stop)
        return CW_READY;
    g_clk->now += 10 * US;
    g_polls++;
    if (++w->n == w->after) {
        ck_assert_int_eq(write(g_sv[1], "x", 1), 1);
        g_written_at = g_clk->now;
    }
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    char c;
    (void)what;
    (void)arg;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    g_read_at = g_clk->now;
    g_polls_at_read = g_polls;
}

START_TEST(fd_readiness_runs_between_rounds_while_cpu_tasks_run)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 3);
    cw_config_add_queue(cfg, 1, 1);
    cw_config_set_max_polls_per_yield(cfg, 100000); /* only time ends a round */
    tenv_init(&env, cfg, 1);
    g_clk = &env.clk;
    g_stop = 0;
    g_polls = 0;
    g_written_at = g_read_at = 0;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    struct event *ev = event_new(env.base, g_sv[0], EV_READ | EV_PERSIST, on_readable, NULL);
    event_add(ev, NULL);
    /* every queue busy; one task writes to the socket at its 123rd poll */
    for (int i = 0; i < 3; i++)
        cw_spawn(cw_executor_queue(env.ex, 0), busy_poll, NULL, 0, NULL, NULL);
    cw_spawn(cw_executor_queue(env.ex, 1), busy_poll, NULL, 0, NULL, NULL);
    writer w = {123, 0};
    cw_spawn(cw_executor_queue(env.ex, 1), writer_poll, &w, sizeof w, NULL, NULL);
    /* drive the loop as a daemon would, blocking: tasks never end by
     * themselves, so this returns only through the break below */
    for (int turns = 0; !g_read_at; turns++) {
        ck_assert_int_lt(turns, 100000);
        ck_assert_int_ge(event_base_loop(env.base, EVLOOP_ONCE), 0);
    }
    ck_assert_uint_gt(g_written_at, 0);
    /* the callback ran within one driver_yield (500 us) of the write, while
     * the tasks were still running (they never stop on their own) */
    ck_assert_msg(g_read_at - g_written_at <= CW_DEFAULT_DRIVER_YIELD_NS,
                  "fd callback %llu ns after the write",
                  (unsigned long long)(g_read_at - g_written_at));
    struct cw_executor_stats st;
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_eq(st.tasks_live, 5);
    g_stop = 1;
    for (int i = 0; i < 10; i++)
        tenv_turn(&env);
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_eq(st.tasks_live, 0);
    event_free(ev);
    close(g_sv[0]);
    close(g_sv[1]);
    tenv_free(&env);
}
END_TEST

/* ---- run_until and dispatch ---------------------------------------------- */

typedef struct counter {
    int n, target;
    int result;
} counter;

static cw_poll count_poll(void *state, cw_cx *cx)
{
    counter *c = state;
    if (++c->n < c->target) {
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    c->result = 42;
    return CW_READY;
}

START_TEST(run_until_returns_status_and_leaves_result_in_state)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    tenv_init(&env, cfg, 0); /* the real clock */
    counter c = {0, 1000, 0};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), count_poll, &c, sizeof c, NULL, &j), 0);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    counter *out = cw_join_state(j);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->result, 42);
    ck_assert_int_eq(out->n, 1000);
    /* again on an ended task: returns at once */
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

START_TEST(dispatch_runs_tasks_and_returns_when_all_ended)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 2);
    cw_config_add_queue(cfg, 1, 1);
    tenv_init(&env, cfg, 0);
    counter a = {0, 500, 0}, b = {0, 300, 0};
    cw_join *ja, *jb;
    cw_spawn(cw_executor_queue(env.ex, 0), count_poll, &a, sizeof a, NULL, &ja);
    cw_spawn(cw_executor_queue(env.ex, 1), count_poll, &b, sizeof b, NULL, &jb);
    /* returns 1 (no events left) once both tasks ended */
    ck_assert_int_eq(tenv_dispatch(&env), 1);
    ck_assert_int_eq(cw_join_status(ja), 0);
    ck_assert_int_eq(cw_join_status(jb), 0);
    ck_assert_int_eq(((counter *)cw_join_state(ja))->n, 500);
    ck_assert_int_eq(((counter *)cw_join_state(jb))->n, 300);
    cw_join_free(ja);
    cw_join_free(jb);
    /* and the executor is reusable afterwards */
    counter c = {0, 3, 0};
    cw_join *jc;
    cw_spawn(cw_executor_queue(env.ex, 1), count_poll, &c, sizeof c, NULL, &jc);
    ck_assert_int_eq(tenv_dispatch(&env), 1);
    ck_assert_int_eq(cw_join_status(jc), 0);
    cw_join_free(jc);
    tenv_free(&env);
}
END_TEST

START_TEST(idle_executor_leaves_the_base_empty)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    tenv_init(&env, cfg, 1);
    /* no task: the executor adds nothing the loop would wait for */
    ck_assert_int_eq(tenv_run_once(&env), 1);
    tenv_free(&env);
}
END_TEST

/* ---- libevent's cached time after a round ---------------------------------- */

/* libevent measures its next wait for I/O from the time it cached when the
 * pass began. A round of long polls that leaves the executor idle must
 * refresh it, or every timer of the base (the executor's one included)
 * fires late by the length of the round. */
static struct event *g_probe;
static struct timeval g_poll_end, g_cached_after;

static cw_poll long_poll(void *state, cw_cx *cx)
{
    struct timespec t0, t;
    (void)state;
    (void)cx;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do /* 3 ms of CPU, real time */
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 3000000L);
    gettimeofday(&g_poll_end, NULL);
    /* runs after the round, in the same pass of the loop */
    event_active(g_probe, EV_TIMEOUT, 1);
    return CW_READY;
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_gettimeofday_cached(arg, &g_cached_after);
}

START_TEST(an_idle_executor_leaves_libevents_cached_time_current)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    /* a base that keeps time with CLOCK_MONOTONIC, not its coarse variant
     * (one tick, up to 4 ms, behind): as a program that wants timers of
     * less than a millisecond creates it */
    struct event_config *ecfg = event_config_new();
    ck_assert_ptr_nonnull(ecfg);
    ck_assert_int_eq(event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER), 0);
    env = (tenv){.drv = &tdrv_libevent};
    env.base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    ck_assert_ptr_nonnull(env.base);
    ck_assert_int_eq(cw_executor_new(env.base, cfg, &env.ex), 0); /* the real clock */
    cw_config_free(cfg);
    g_probe = evtimer_new(env.base, probe_cb, env.base);
    ck_assert_ptr_nonnull(g_probe);
    timerclear(&g_cached_after);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), long_poll, NULL, 0, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert(timerisset(&g_cached_after));
    /* stale, the cache would read before the 3 ms poll began; refreshed,
     * at or after its end (1 ms of slack for libevent's conversion from
     * its monotonic clock to the time of day) */
    long long lag_us = (long long)(g_poll_end.tv_sec - g_cached_after.tv_sec) * 1000000
                       + (g_poll_end.tv_usec - g_cached_after.tv_usec);
    ck_assert_msg(lag_us < 1000, "libevent's cached time is %lld us behind the poll's end", lag_us);
    cw_join_free(j);
    event_free(g_probe);
    tenv_free(&env);
}
END_TEST

/* ---- counters -------------------------------------------------------------- */

START_TEST(counters_are_exact_after_a_scripted_run)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 1);
    cw_config_set_catch_panics(cfg, true);
    cw_config_set_histograms(cfg, true);
    tenv_init(&env, cfg, 1);
    g_clk = &env.clk;
    counter a = {0, 4, 0}, b = {0, 2, 0};
    cw_join *ja, *jb, *jc;
    cw_spawn(cw_executor_queue(env.ex, 0), count_poll, &a, sizeof a, NULL, &ja);
    cw_spawn(cw_executor_queue(env.ex, 1), count_poll, &b, sizeof b, NULL, &jb);
    cw_spawn(cw_executor_queue(env.ex, 1), count_poll, &b, sizeof b, NULL, &jc);
    cw_join_abort(jc); /* never polled */
    ck_assert_int_eq(cw_executor_run_until(env.ex, ja), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jb), 0);
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(env.ex, &st), 0);
    ck_assert_uint_eq(st.polls, 6);
    ck_assert_uint_eq(st.tasks_spawned, 3);
    ck_assert_uint_eq(st.tasks_completed, 2);
    ck_assert_uint_eq(st.tasks_cancelled, 1);
    ck_assert_uint_eq(st.tasks_panicked, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(st.wakes_local, 4); /* 3 + 1 self-wakes */
    ck_assert_uint_eq(st.cpu_ns, 0);      /* the fake clock never moved */
    ck_assert_uint_eq(st.poll_ns.count, 6);
    struct cw_queue_stats q0, q1;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 0), &q0), 0);
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 1), &q1), 0);
    ck_assert_uint_eq(q0.id, 0);
    ck_assert_uint_eq(q0.polls, 4);
    ck_assert_uint_eq(q1.polls, 2);
    ck_assert_uint_eq(q0.tasks_spawned, 1);
    ck_assert_uint_eq(q1.tasks_spawned, 2);
    ck_assert_uint_eq(q1.tasks_cancelled, 1);
    ck_assert_uint_eq(q1.tasks_completed, 1);
    ck_assert_uint_eq(q0.runnable, 0);
    ck_assert_uint_eq(st.slices, q0.slices + q1.slices);
    ck_assert_int_eq(cw_executor_stats(NULL, &st), -EINVAL);
    ck_assert_int_eq(cw_executor_stats(env.ex, NULL), -EINVAL);
    ck_assert_int_eq(cw_queue_stats(NULL, &q0), -ENOENT);
    cw_join_free(ja);
    cw_join_free(jb);
    cw_join_free(jc);
    tenv_free(&env);
}
END_TEST

START_TEST(hist_quantile_interpolates_within_a_bucket)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    ck_assert_uint_eq(cw_hist_quantile(&h, 0.5), 0);
    ck_assert_uint_eq(cw_hist_quantile(NULL, 0.5), 0);
    /* 100 values in [1024, 2048): bucket 11 */
    h.buckets[11] = 100;
    h.count = 100;
    h.max = 2000;
    uint64_t p50 = cw_hist_quantile(&h, 0.5);
    ck_assert_uint_ge(p50, 1500);
    ck_assert_uint_le(p50, 1560);
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.0), 2000); /* capped at max */
    ck_assert_uint_eq(cw_hist_quantile(&h, 0.0), 1024);
}
END_TEST

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The default clock is CLOCK_MONOTONIC (read through the TSC between
 * anchors where the TSC is invariant, lib/core/clock.c): every reading lies
 * between two clock_gettime() calls around it, within the extrapolation
 * error (ppm of a millisecond: allowed 2 us), and never goes back. 30 ms
 * of readings cover the uncalibrated start, the calibration and a few
 * dozen re-anchorings. No duration is asserted. */
static void check_tracks_clock_monotonic(cw_executor *ex)
{
    uint64_t start = mono_ns(), prev = 0, n = 0;
    for (;;) {
        uint64_t before = mono_ns();
        uint64_t c = cw_executor_now(ex);
        uint64_t after = mono_ns();
        ck_assert_msg(c + 2000 >= before && c <= after + 2000,
                      "reading %llu outside [%llu, %llu]", (unsigned long long)c,
                      (unsigned long long)before, (unsigned long long)after);
        ck_assert_uint_ge(c, prev);
        prev = c;
        n++;
        if (after - start > 30000000u && n > 1000)
            break;
    }
}

/* The default clock as this machine's CPU and kernel decide it. */
START_TEST(default_clock_is_monotonic_and_tracks_clock_monotonic)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 1), 0);
    tenv_init(&env, cfg, 0);
    ck_assert(env.ex->now_ns == (cw__tsc_usable() ? cw__clock_now : cw__monotonic_ns));
    check_tracks_clock_monotonic(env.ex);
    tenv_free(&env);
}
END_TEST

/* Where the decision is no (simulated: the config's test-only override),
 * the executor reads clock_gettime() itself, with no counter between. */
/* An executor on the real clock with the TSC decision forced (1 yes,
 * -1 no; the config's test-only override). */
static void tenv_init_tsc(tenv *env, signed char tsc)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 1), 0);
    cfg->default_clock_tsc = tsc;
    tenv_init(env, cfg, 0);
}

START_TEST(executor_reads_clock_gettime_where_the_tsc_is_not_usable)
{
    tenv env;
    tenv_init_tsc(&env, -1);
    ck_assert(env.ex->now_ns == cw__monotonic_ns);
    ck_assert_ptr_null(env.ex->clock_arg);
    ck_assert(env.ex->clock.counter == NULL);
    check_tracks_clock_monotonic(env.ex);
    tenv_free(&env);
}
END_TEST

/* Where the decision is yes, the executor reads the TSC-backed clock
 * (x86-64; clock_gettime() elsewhere), whatever this machine would have
 * decided. That it tracks CLOCK_MONOTONIC is checked where the machine
 * says yes too: a counter that is not invariant may err by more than the
 * 2 us allowed within a millisecond. */
START_TEST(executor_reads_the_counter_where_the_tsc_is_usable)
{
    tenv env;
    tenv_init_tsc(&env, 1);
#ifdef CW__HAVE_TSC
    ck_assert(env.ex->now_ns == cw__clock_now);
    ck_assert_ptr_eq(env.ex->clock_arg, &env.ex->clock);
    ck_assert(env.ex->clock.counter != NULL);
    if (cw__tsc_usable()) {
        check_tracks_clock_monotonic(env.ex);
        ck_assert_uint_ne(env.ex->clock.ns_per_tick_q32, 0); /* it calibrated */
    }
#else
    ck_assert(env.ex->now_ns == cw__monotonic_ns);
    check_tracks_clock_monotonic(env.ex);
#endif
    tenv_free(&env);
}
END_TEST

/* cw__tsc_decide() on simulated CPUID and clocksource readings. The
 * invariant-TSC bit is EDX bit 8 of leaf 0x80000007; the clocksource file
 * reads "kvm-clock\n" on a KVM guest, "tsc\n" where the kernel uses it. */
#define INVARIANT (1u << 8)
#define LEAF7 0x80000007u

START_TEST(tsc_is_used_where_the_cpu_reports_it_invariant)
{
    ck_assert(cw__tsc_decide(LEAF7, INVARIANT, "kvm-clock\n"));
    ck_assert(cw__tsc_decide(0x80000021u, INVARIANT, "kvm-clock\n"));
    ck_assert(cw__tsc_decide(0x80000008u, 0xffffffffu, "hpet\n"));
    ck_assert(cw__tsc_decide(0x80000008u, INVARIANT, NULL));
}
END_TEST

START_TEST(tsc_is_not_used_without_the_invariant_bit)
{
    ck_assert(!cw__tsc_decide(0x80000008u, 0, "kvm-clock\n"));
    ck_assert(!cw__tsc_decide(0x80000008u, ~INVARIANT, "kvm-clock\n"));
    ck_assert(!cw__tsc_decide(0x80000008u, INVARIANT >> 1, "hpet\n"));
    ck_assert(!cw__tsc_decide(0x80000008u, INVARIANT << 1, NULL));
}
END_TEST

/* Below leaf 0x80000007 the register holds whatever the CPU returns for
 * a leaf it lacks: a set bit 8 there means nothing. */
START_TEST(invariant_bit_is_ignored_when_the_cpu_lacks_leaf_80000007)
{
    ck_assert(!cw__tsc_decide(LEAF7 - 1, INVARIANT, "kvm-clock\n"));
    ck_assert(!cw__tsc_decide(0x80000000u, 0xffffffffu, NULL));
    ck_assert(!cw__tsc_decide(0, INVARIANT, "acpi_pm\n"));
}
END_TEST

/* The kernel keeping time with the TSC suffices on its own (it checked
 * the counter), but only the clocksource named exactly "tsc". */
/* The probe reads the same bit the kernel reads: Linux sets the
 * nonstop_tsc flag in /proc/cpuinfo from CPUID 0x80000007 EDX bit 8 (and
 * from nothing else), so where the flag is listed the probe must say yes.
 * Where the file or the flag is missing this checks nothing. */
static bool cpuinfo_has_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    bool found = false;
    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        char *colon = strchr(line, ':');
        for (char *tok = colon ? strtok(colon + 1, " \t\n") : NULL; tok; tok = strtok(NULL, " \t\n"))
            if (strcmp(tok, flag) == 0)
                found = true;
        break; /* the first CPU's flags */
    }
    fclose(f);
    return found;
}

START_TEST(tsc_probe_agrees_with_the_kernels_nonstop_tsc_flag)
{
#ifdef CW__HAVE_TSC
    if (cpuinfo_has_flag("nonstop_tsc"))
        ck_assert(cw__tsc_usable());
#endif
}
END_TEST

START_TEST(clocksource_tsc_alone_suffices)
{
    ck_assert(cw__tsc_decide(0, 0, "tsc\n"));
    ck_assert(cw__tsc_decide(0, 0, "tsc"));
    ck_assert(cw__tsc_decide(0x80000008u, 0, "tsc\n"));
    ck_assert(!cw__tsc_decide(0, 0, "tsc-early\n"));
    ck_assert(!cw__tsc_decide(0, 0, "tsc\nx"));
    ck_assert(!cw__tsc_decide(0, 0, "ts"));
    ck_assert(!cw__tsc_decide(0, 0, "kvm-clock\n"));
    ck_assert(!cw__tsc_decide(0, 0, ""));
    ck_assert(!cw__tsc_decide(0, 0, NULL));
}
END_TEST

/* lib/core/clock.c's extrapolation, driven with a simulated counter and clock:
 * a 3 GHz counter that agrees with the clock, then a suspend (the counter
 * ran 7 hours while the clock moved 1 ms) or a counter reset to ~0. After
 * each, readings must follow the clock, not the counter. */
static uint64_t sim_ns;
static uint64_t sim_mono(void *arg)
{
    (void)arg;
    return sim_ns;
}

static void sim_run(struct cw__clock *c, uint64_t *tsc, uint64_t ns, uint64_t slack,
                    uint64_t *prev)
{
    for (uint64_t t = 0; t < ns; t += 10000) { /* 10 us steps */
        sim_ns += 10000;
        *tsc += 30000;
        uint64_t r = cw__clock_read(c, *tsc, sim_mono);
        uint64_t err = r > sim_ns ? r - sim_ns : sim_ns - r;
        ck_assert_msg(err <= slack, "reading %llu, clock %llu", (unsigned long long)r,
                      (unsigned long long)sim_ns);
        ck_assert_uint_ge(r, *prev);
        *prev = r;
    }
}

START_TEST(clock_extrapolation_follows_the_clock_across_suspend_and_counter_reset)
{
    struct cw__clock c;
    uint64_t tsc = 1000000000000ull, prev = 0;
    sim_ns = 5000000000ull;
    cw__clock_start(&c, tsc, sim_ns);
    sim_run(&c, &tsc, 5000000, 1000, &prev); /* calibrates after 1 ms */
    ck_assert(c.calibrated);

    /* suspend: the counter ran 7 h, the clock 1 ms */
    tsc += 3ull * 7 * 3600 * 1000000000ull;
    sim_ns += 1000000;
    sim_run(&c, &tsc, 5000000, 1000, &prev);
    ck_assert(c.calibrated);

    /* the counter starts again from near 0 */
    tsc = 1000;
    sim_run(&c, &tsc, 5000000, 1000, &prev);
    ck_assert(c.calibrated);
}
END_TEST

/* An interrupt between the counter read and the clock read of an anchor
 * must not skew the rate: the clock's anchors bracket the clock read with
 * two counter reads and retry. Simulated: a 3 GHz counter and a clock that
 * advance 10 ns per read, and one read of the clock that comes 5 us late
 * (the interrupt) at the anchor that calibrates. */
static uint64_t skew_t;      /* simulated ns */
static int skew_late_read;   /* which clock read comes 5 us late, 0: none */
static int skew_reads;

static int skew_back_read; /* which counter read steps back 1000 ticks, 0: none */
static int skew_counter_reads;

static uint64_t skew_counter(void)
{
    skew_t += 10;
    if (++skew_counter_reads == skew_back_read)
        return skew_t * 3 - 1000;
    return skew_t * 3;
}

static uint64_t skew_mono(void *arg)
{
    (void)arg;
    if (++skew_reads == skew_late_read)
        skew_t += 5000;
    skew_t += 10;
    return skew_t;
}

/* A clock started on the simulated counter, re-read at its anchors. */
static void skew_start(struct cw__clock *c)
{
    skew_t = 5000000000ull;
    skew_reads = skew_counter_reads = 0;
    skew_late_read = skew_back_read = 0;
    cw__clock_start(c, skew_counter(), skew_mono(NULL));
    c->counter = skew_counter;
}

START_TEST(clock_anchor_is_not_skewed_by_an_interrupt)
{
    struct cw__clock c;
    skew_start(&c);
    /* 1 ms later the anchor calibrates; its first clock read is late */
    skew_t += 1000000;
    skew_late_read = skew_reads + 1;
    uint64_t r = cw__clock_read(&c, skew_counter(), skew_mono);
    ck_assert(c.calibrated);
    ck_assert_uint_le(r, skew_t);
    /* extrapolate across most of the next window: within 100 ns */
    uint64_t worst = 0;
    for (int i = 0; i < 90; i++) {
        skew_t += 10000;
        uint64_t tsc = skew_t * 3; /* read without advancing the clock */
        r = cw__clock_read(&c, tsc, skew_mono);
        uint64_t err = r > skew_t ? r - skew_t : skew_t - r;
        if (err > worst)
            worst = err;
    }
    ck_assert_msg(worst <= 100, "extrapolation off by %llu ns", (unsigned long long)worst);
}
END_TEST

/* A counter read that steps back (another CPU's counter) right after the
 * clock read must not wrap the bracket into a garbage anchor. */
START_TEST(clock_anchor_survives_a_counter_that_steps_back)
{
    struct cw__clock c;
    skew_start(&c);
    /* in the first millisecond (each reading an anchor, no retries), then
     * at the anchor that calibrates (with retries) */
    for (int k = 0; k < 2; k++) {
        skew_t += k ? 1000000 : 100000;
        uint64_t tsc = skew_counter();
        skew_back_read = skew_counter_reads + 1; /* the re-read after the clock */
        uint64_t r = cw__clock_read(&c, tsc, skew_mono);
        ck_assert(c.calibrated == (k == 1));
        uint64_t now_ticks = skew_t * 3;
        uint64_t off = c.anchor_tsc > now_ticks ? c.anchor_tsc - now_ticks : now_ticks - c.anchor_tsc;
        ck_assert_msg(off < 300, "anchor %llu ticks off", (unsigned long long)off);
        ck_assert_uint_le(r, skew_t);
    }
    skew_back_read = 0;
}
END_TEST

START_TEST(accessors_handle_null)
{
    ck_assert_ptr_null(cw_executor_queue(NULL, 1));
    ck_assert_ptr_null(cw_executor_base(NULL));
    ck_assert_uint_eq(cw_executor_now(NULL), 0);
    ck_assert_uint_eq(cw_queue_id(NULL), 0);
    ck_assert_uint_eq(cw_queue_weight(NULL), 0);
    ck_assert_ptr_null(cw_queue_executor(NULL));
    ck_assert_ptr_null(cw_cx_executor(NULL));
    ck_assert_ptr_null(cw_cx_queue(NULL));
    cw_executor_free(NULL);
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 3, 1);
    tenv_init(&env, cfg, 1);
    ck_assert_ptr_eq(cw_executor_base(env.ex), env.base);
    ck_assert_uint_eq(cw_executor_now(env.ex), env.clk.now);
    tenv_free(&env);
}
END_TEST

/* ---- replies written soon: cw__executor_flush_soon() (http.c's reply) --- */

static int g_flush_order[16], g_flush_n;

typedef struct flusher {
    int id;
    uint64_t cost;
    bool flush;
} flusher;

static cw_poll flusher_poll(void *state, cw_cx *cx)
{
    flusher *f = state;
    g_clk->now += f->cost;
    if (g_flush_n < 16)
        g_flush_order[g_flush_n++] = f->id;
    if (f->flush)
        cw__executor_flush_soon(cw_cx_executor(cx));
    return CW_READY;
}

static struct cw_executor_stats flush_round(tenv *env, const flusher *a, int na, const flusher *b,
                                            int nb)
{
    g_flush_n = 0;
    for (int i = 0; i < na; i++)
        ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, 0), flusher_poll, &a[i], sizeof a[i],
                                  NULL, NULL),
                         0);
    for (int i = 0; i < nb; i++)
        ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, 1), flusher_poll, &b[i], sizeof b[i],
                                  NULL, NULL),
                         0);
    struct cw_executor_stats st0 = stats_of(env->ex);
    tenv_turn(env); /* one round */
    struct cw_executor_stats st = stats_of(env->ex);
    st.rounds -= st0.rounds;
    return st;
}

START_TEST(a_reply_ends_the_round_once_its_queue_is_empty)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 99); /* the replying queue */
    cw_config_add_queue(cfg, 1, 1);
    tenv_init(&env, cfg, 1);
    g_clk = &env.clk;
    /* three requests read in one pass are answered in one round; the
     * other queue waits for the next round (libevent writes first) */
    flusher a[3] = {{1, 5000, true}, {2, 5000, true}, {3, 5000, true}};
    flusher b[1] = {{9, 5000, false}};
    struct cw_executor_stats st = flush_round(&env, a, 3, b, 1);
    ck_assert_uint_eq(st.rounds, 1);
    ck_assert_int_eq(g_flush_n, 3);
    ck_assert_int_eq(g_flush_order[2], 3);
    g_flush_n = 0;
    tenv_turn(&env);
    ck_assert_int_eq(g_flush_n, 1);
    ck_assert_int_eq(g_flush_order[0], 9);
    /* but not for longer than 50 us after the first reply's poll began:
     * 20 us polls, the round ends after the one that would pass 50 us */
    flusher c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (flusher){10 + i, 20000, true};
    st = flush_round(&env, c, 6, NULL, 0);
    ck_assert_uint_eq(st.rounds, 1);
    ck_assert_int_eq(g_flush_n, 2); /* 0-20, 20-40; a third would end at 60 */
    for (int i = 0; i < 10; i++)
        tenv_turn(&env);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    tenv_free(&env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("executor");
    TCase *tc = tcase_create("executor");
    tcase_set_timeout(tc, 60);
    if (tdrv_is_libevent()) { /* libevent's own events and cached time */
        tcase_add_test(tc, fd_readiness_runs_between_rounds_while_cpu_tasks_run);
        tcase_add_test(tc, an_idle_executor_leaves_libevents_cached_time_current);
    }
    tcase_add_test(tc, run_until_returns_status_and_leaves_result_in_state);
    tcase_add_test(tc, dispatch_runs_tasks_and_returns_when_all_ended);
    tcase_add_test(tc, idle_executor_leaves_the_base_empty);
    tcase_add_test(tc, counters_are_exact_after_a_scripted_run);
    tcase_add_test(tc, hist_quantile_interpolates_within_a_bucket);
    tcase_add_test(tc, accessors_handle_null);
    if (tdrv_is_libevent()) { /* the clock is the core's, not the loop's */
        tcase_add_test(tc, default_clock_is_monotonic_and_tracks_clock_monotonic);
        tcase_add_test(tc, executor_reads_clock_gettime_where_the_tsc_is_not_usable);
        tcase_add_test(tc, executor_reads_the_counter_where_the_tsc_is_usable);
        tcase_add_test(tc, tsc_is_used_where_the_cpu_reports_it_invariant);
        tcase_add_test(tc, tsc_is_not_used_without_the_invariant_bit);
        tcase_add_test(tc, invariant_bit_is_ignored_when_the_cpu_lacks_leaf_80000007);
        tcase_add_test(tc, clocksource_tsc_alone_suffices);
        tcase_add_test(tc, tsc_probe_agrees_with_the_kernels_nonstop_tsc_flag);
        tcase_add_test(tc, clock_extrapolation_follows_the_clock_across_suspend_and_counter_reset);
        tcase_add_test(tc, clock_anchor_is_not_skewed_by_an_interrupt);
        tcase_add_test(tc, clock_anchor_survives_a_counter_that_steps_back);
    }
    tcase_add_test(tc, a_reply_ends_the_round_once_its_queue_is_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
