/* check_sched.c - the scheduler seen through the executor, under the
 * injectable clock: every poll advances the fake clock by its invented
 * cost, so shares, slices and preemptions are exact and repeatable. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#define US 1000ull
#define MS 1000000ull
#define MAXLOG 200000

static fake_clock *g_clk;
static uint64_t g_polls[8];      /* polls per queue id */
static uint64_t g_total;         /* all polls */
static int g_stop;               /* CPU tasks return READY when set */
static uint32_t g_log[MAXLOG];   /* queue id of each poll, in order */
static uint64_t g_logn;

typedef struct spin {
    uint32_t qid;
    uint64_t cost; /* ns per poll */
} spin;

static void record(uint32_t qid, uint64_t cost)
{
    g_clk->now += cost;
    g_polls[qid]++;
    if (g_logn < MAXLOG)
        g_log[g_logn++] = qid;
    g_total++;
}

/* CPU-bound: burn `cost`, yield, forever (until g_stop). */
static cw_poll spin_poll(void *state, cw_cx *cx)
{
    spin *s = state;
    if (g_stop)
        return CW_READY;
    record(s->qid, s->cost);
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static void reset(tenv *env)
{
    g_clk = &env->clk;
    memset(g_polls, 0, sizeof g_polls);
    memset(g_log, 0xff, sizeof g_log); /* no queue id: an unwritten entry fails */
    g_total = 0;
    g_stop = 0;
    g_logn = 0;
}

static void run_polls(tenv *env, uint64_t n)
{
    uint64_t until = g_total + n;
    for (int guard = 0; g_total < until; guard++) {
        ck_assert_int_lt(guard, 10000000);
        tenv_turn(env);
    }
}

static void unpark(void);

static void stop_all(tenv *env)
{
    g_stop = 1;
    unpark();
    for (int i = 0; i < 100; i++)
        tenv_turn(env);
    struct cw_executor_stats st;
    cw_executor_stats(env->ex, &st);
    ck_assert_uint_eq(st.tasks_live, 0);
}

static void spawn_spin(tenv *env, uint32_t qid, uint64_t cost)
{
    spin s = {qid, cost};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, qid), spin_poll, &s, sizeof s, NULL, NULL), 0);
}

static void assert_shares(const uint32_t *w, uint32_t n)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    uint64_t wsum = 0;
    for (uint32_t i = 0; i < n; i++) {
        cw_config_add_queue(cfg, i, w[i]);
        wsum += w[i];
    }
    tenv_init(&env, cfg, 1);
    reset(&env);
    for (uint32_t i = 0; i < n; i++) {
        spawn_spin(&env, i, 10 * US);
        spawn_spin(&env, i, 10 * US); /* two tasks per queue: FIFO inside */
    }
    run_polls(&env, 10000);
    for (uint32_t i = 0; i < n; i++) {
        double share = (double)g_polls[i] / (double)g_total;
        double want = (double)w[i] / (double)wsum;
        ck_assert_msg(share > want - 0.01 && share < want + 0.01,
                      "queue %u weight %u: share %.4f want %.4f over %llu polls", i, w[i],
                      share, want, (unsigned long long)g_total);
    }
    /* CPU charged per queue matches the polls (exact, fake clock) */
    for (uint32_t i = 0; i < n; i++) {
        struct cw_queue_stats qs;
        cw_queue_stats(cw_executor_queue(env.ex, i), &qs);
        ck_assert_uint_eq(qs.cpu_ns, g_polls[i] * 10 * US);
        ck_assert_uint_eq(qs.polls, g_polls[i]);
    }
    stop_all(&env);
    tenv_free(&env);
}

START_TEST(cpu_shares_follow_weights_8_1)
{
    assert_shares((uint32_t[]){8, 1}, 2);
}
END_TEST

START_TEST(cpu_shares_follow_weights_99_1)
{
    assert_shares((uint32_t[]){99, 1}, 2);
}
END_TEST

START_TEST(cpu_shares_follow_weights_1_2_3)
{
    assert_shares((uint32_t[]){1, 2, 3}, 3);
}
END_TEST

/* ---- shares at every accepted weight ----------------------------------------- */

/* A CPU task whose polls cost lo..hi ns (pseudo-random, uniform). */
typedef struct jitter {
    uint32_t qid;
    uint64_t lo, hi;
} jitter;

static uint64_t g_rng;

static uint64_t rng_next(void)
{
    /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static cw_poll jitter_poll(void *state, cw_cx *cx)
{
    jitter *j = state;
    if (g_stop)
        return CW_READY;
    record(j->qid, j->lo + rng_next() % (j->hi - j->lo + 1));
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* Two queues of weights w0 and w1, both with slice `slice`, one CPU task
 * each whose polls cost lo..hi ns; after `polls` polls, queue 0's share
 * of the CPU time charged to both must be w0 / (w0 + w1) within 0.01. */
static void assert_pair_share(uint32_t w0, uint32_t w1, uint64_t slice, uint64_t lo,
                              uint64_t hi, uint64_t polls)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, w0), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, w1), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 0, slice), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 1, slice), 0);
    tenv_init(&env, cfg, 1);
    reset(&env);
    for (uint32_t i = 0; i < 2; i++) {
        jitter j = {i, lo, hi};
        ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, i), jitter_poll, &j, sizeof j, NULL,
                                  NULL),
                         0);
    }
    run_polls(&env, polls);
    struct cw_queue_stats a, b;
    cw_queue_stats(cw_executor_queue(env.ex, 0), &a);
    cw_queue_stats(cw_executor_queue(env.ex, 1), &b);
    double share = (double)a.cpu_ns / (double)(a.cpu_ns + b.cpu_ns);
    double want = (double)w0 / ((double)w0 + (double)w1);
    ck_assert_msg(share > want - 0.01 && share < want + 0.01,
                  "weights %u:%u, slice %llu ns, polls %llu..%llu ns: share %.4f, want %.4f "
                  "(%llu polls)",
                  w0, w1, (unsigned long long)slice, (unsigned long long)lo,
                  (unsigned long long)hi, share, want, (unsigned long long)g_total);
    stop_all(&env);
    tenv_free(&env);
}

START_TEST(shares_are_exact_at_large_weights_and_short_slices)
{
    /* the charge of a short slice at a large weight is under one unit of
     * virtual time: truncated, the heavy queue's v stood still and the
     * other never ran again */
    g_rng = 0x9e3779b97f4a7c15ull;
    assert_pair_share(3, 1, 1 * MS, 500, 1000, 250000);
    assert_pair_share(1u << 30, 3u << 28, 1 * US, 500, 1000, 250000);
    assert_pair_share(4000000000u, 1000000000u, 3 * US, 500, 1000, 250000);
    assert_pair_share(1000000, 3000000, 2 * US, 500, 1000, 250000);
    assert_pair_share(UINT32_MAX, UINT32_MAX - 1, 1 * US, 500, 1000, 250000);
}
END_TEST

START_TEST(shares_are_exact_for_random_weights_and_slices)
{
    /* weights over the whole accepted range 1..2^32-1, uniform in the
     * even runs (most of them large) and log-uniform in the odd ones
     * (every order of magnitude alike); slices log-uniform over
     * 1 us..10 ms; polls of 500-1000 ns, or 1/40 to 1/20 of a longer
     * slice so that every run spans some 2000 slices */
    g_rng = 0x2545f4914f6cdd1dull;
    for (int k = 0; k < 32; k++) {
        uint32_t w[2];
        for (int i = 0; i < 2; i++) {
            double x = (double)(rng_next() >> 11) / 9007199254740992.0; /* [0, 1) */
            double v = k % 2 ? exp(x * log(4294967295.0)) : 1 + x * 4294967294.0;
            w[i] = v < 1 ? 1 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
        }
        double x = (double)(rng_next() >> 11) / 9007199254740992.0;
        uint64_t slice = (uint64_t)(1000.0 * exp(x * log(10000.0)));
        uint64_t lo = slice / 40 > 500 ? slice / 40 : 500;
        assert_pair_share(w[0], w[1], slice, lo, 2 * lo, 60000);
    }
}
END_TEST

/* A task that parks its waker (for someone else to wake) on every poll. */
static cw_waker *g_parked;
static uint64_t g_woken_at, g_max_delay;

typedef struct parker {
    uint32_t qid;
    uint64_t cost;
} parker;

static cw_poll park_poll(void *state, cw_cx *cx)
{
    parker *p = state;
    if (g_stop)
        return CW_READY;
    if (g_woken_at) {
        uint64_t d = g_clk->now - g_woken_at;
        if (d > g_max_delay)
            g_max_delay = d;
        g_woken_at = 0;
    }
    record(p->qid, p->cost);
    cw_waker_free(g_parked);
    g_parked = cw_waker_clone(cw_cx_waker(cx));
    return CW_PENDING;
}

static void unpark(void)
{
    if (g_parked) {
        g_woken_at = g_clk->now;
        cw_waker *w = g_parked;
        g_parked = NULL;
        cw_waker_wake(w);
    }
}

/* CPU-bound, and wakes the parked task every `every` polls. */
typedef struct waking_spin {
    uint32_t qid;
    uint64_t cost;
    uint64_t every, n;
} waking_spin;

static cw_poll waking_spin_poll(void *state, cw_cx *cx)
{
    waking_spin *s = state;
    if (g_stop)
        return CW_READY;
    record(s->qid, s->cost);
    if (++s->n % s->every == 0)
        unpark();
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static void free_parked(void)
{
    cw_waker_free(g_parked);
    g_parked = NULL;
}

START_TEST(high_queue_waking_mid_slice_preempts_at_next_poll)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);   /* low */
    cw_config_add_queue(cfg, 1, 100); /* high */
    cw_config_set_driver_yield(cfg, 50 * MS);
    cw_config_set_queue_latency(cfg, 1, CW_LATENCY_NONE); /* rounds end by time only far off */
    cw_config_set_max_polls_per_yield(cfg, 100000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_woken_at = g_max_delay = 0;
    parker p = {1, 0};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), park_poll, &p, sizeof p, NULL, NULL), 0);
    tenv_turn(&env); /* the high task parks */
    ck_assert_uint_eq(g_polls[1], 1);
    waking_spin s = {0, 10 * US, 20, 0};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), waking_spin_poll, &s, sizeof s, NULL, NULL), 0);
    tenv_turn(&env);
    /* the low slice is 2 ms (200 polls) long, but the 20th low poll woke
     * the high queue: the very next poll is the high task's */
    ck_assert_uint_ge(g_logn, 22);
    for (int i = 1; i <= 20; i++)
        ck_assert_uint_eq(g_log[i], 0);
    ck_assert_uint_eq(g_log[21], 1);
    struct cw_executor_stats st;
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_ge(st.preemptions, 1);
    struct cw_queue_stats qs;
    cw_queue_stats(cw_executor_queue(env.ex, 0), &qs);
    ck_assert_uint_ge(qs.preemptions, 1);
    stop_all(&env);
    free_parked();
    tenv_free(&env);
}
END_TEST

START_TEST(low_queue_waking_does_not_preempt)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 100); /* running */
    cw_config_add_queue(cfg, 1, 1);   /* woken */
    cw_config_set_queue_latency(cfg, 1, CW_LATENCY_NONE); /* one long round */
    cw_config_set_driver_yield(cfg, 50 * MS);
    cw_config_set_max_polls_per_yield(cfg, 100000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    parker p = {1, 0};
    cw_spawn(cw_executor_queue(env.ex, 1), park_poll, &p, sizeof p, NULL, NULL);
    tenv_turn(&env);
    waking_spin s = {0, 10 * US, 20, 0};
    cw_spawn(cw_executor_queue(env.ex, 0), waking_spin_poll, &s, sizeof s, NULL, NULL);
    tenv_turn(&env);
    ck_assert_uint_eq(g_log[21], 0); /* the heavy queue keeps its slice */
    struct cw_executor_stats st;
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_eq(st.preemptions, 0);
    stop_all(&env);
    free_parked();
    tenv_free(&env);
}
END_TEST

START_TEST(short_slice_queue_is_served_within_its_slice)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 1);
    cw_config_set_queue_slice(cfg, 1, 100 * US);
    cw_config_set_sched_latency(cfg, 20 * MS);
    cw_config_set_driver_yield(cfg, 50 * MS);
    cw_config_set_max_polls_per_yield(cfg, 100000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_woken_at = g_max_delay = 0;
    parker p = {1, 10 * US};
    cw_spawn(cw_executor_queue(env.ex, 1), park_poll, &p, sizeof p, NULL, NULL);
    tenv_turn(&env);
    /* the long-slice queue runs flat out and wakes the short one every
     * 3 ms; each time, the short queue must run within 100 us */
    waking_spin s = {0, 10 * US, 300, 0};
    cw_spawn(cw_executor_queue(env.ex, 0), waking_spin_poll, &s, sizeof s, NULL, NULL);
    run_polls(&env, 20000);
    ck_assert_uint_ge(g_polls[1], 50);
    ck_assert_msg(g_max_delay <= 100 * US, "short-slice queue waited %llu ns",
                  (unsigned long long)g_max_delay);
    stop_all(&env);
    free_parked();
    tenv_free(&env);
}
END_TEST

START_TEST(queue_idle_for_long_gets_no_burst)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 1);
    tenv_init(&env, cfg, 1);
    reset(&env);
    parker p = {1, 10 * US};
    cw_spawn(cw_executor_queue(env.ex, 1), park_poll, &p, sizeof p, NULL, NULL);
    tenv_turn(&env); /* queue 1 parks */
    spawn_spin(&env, 0, 10 * US);
    run_polls(&env, 10000); /* queue 0 alone for 100 ms */
    ck_assert_uint_eq(g_polls[1], 1);
    /* queue 1 comes back as a CPU-bound queue */
    spawn_spin(&env, 1, 10 * US);
    uint64_t before0 = g_polls[0], before1 = g_polls[1];
    run_polls(&env, 2000); /* the next 20 ms */
    double share = (double)(g_polls[1] - before1)
                   / (double)((g_polls[0] - before0) + (g_polls[1] - before1));
    ck_assert_msg(share > 0.45 && share < 0.55, "returning queue got %.3f", share);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

START_TEST(weight_change_at_run_time_changes_shares)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 1);
    tenv_init(&env, cfg, 1);
    reset(&env);
    spawn_spin(&env, 0, 10 * US);
    spawn_spin(&env, 1, 10 * US);
    run_polls(&env, 10000);
    double share = (double)g_polls[1] / (double)g_total;
    ck_assert(share > 0.49 && share < 0.51);
    ck_assert_int_eq(cw_queue_set_weight(cw_executor_queue(env.ex, 1), 3), 0);
    ck_assert_uint_eq(cw_queue_weight(cw_executor_queue(env.ex, 1)), 3);
    ck_assert_int_eq(cw_queue_set_weight(cw_executor_queue(env.ex, 1), 0), -EINVAL);
    ck_assert_int_eq(cw_queue_set_weight(NULL, 3), -ENOENT);
    uint64_t b0 = g_polls[0], b1 = g_polls[1];
    run_polls(&env, 10000);
    share = (double)(g_polls[1] - b1) / (double)((g_polls[0] - b0) + (g_polls[1] - b1));
    ck_assert_msg(share > 0.74 && share < 0.76, "share after reweight %.4f", share);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* Polls 4 times (10 us each), asking for the loop on its second poll. */
typedef struct looper {
    int polls;
    bool yield_after; /* cw_should_yield() right after the request */
} looper;

static cw_poll looper_poll(void *state, cw_cx *cx)
{
    looper *l = state;
    g_clk->now += 10 * US;
    if (++l->polls == 2) {
        ck_assert(!cw_should_yield(cx)); /* 20 us of a 50 ms round */
        cw_cx_yield_to_loop(cx);
        l->yield_after = cw_should_yield(cx);
    }
    if (l->polls == 4)
        return CW_READY;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(yield_to_loop_ends_the_round_after_the_poll)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_set_driver_yield(cfg, 50 * MS);
    tenv_init(&env, cfg, 1);
    reset(&env);
    cw_cx_yield_to_loop(NULL); /* no-op */
    looper init = {0, false};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), looper_poll, &init, sizeof init, NULL, &j), 0);
    tenv_turn(&env);
    looper *l = cw_join_state(j); /* NULL until done: read through stats */
    ck_assert_ptr_null(l);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.polls, 2); /* the round ended after the asking poll */
    ck_assert_uint_eq(st.rounds, 1);
    ck_assert_uint_eq(st.driver_yields, 1);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 0), &qs), 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_DRIVER_YIELD], 1);
    tenv_turn(&env); /* the next round runs the rest, with a full budget */
    st = stats_of(env.ex);
    ck_assert_uint_eq(st.polls, 4);
    ck_assert_uint_eq(st.rounds, 2);
    ck_assert_uint_eq(st.driver_yields, 1);
    ck_assert_int_eq(cw_join_status(j), 0);
    l = cw_join_state(j);
    ck_assert(l->yield_after);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

START_TEST(round_ends_after_driver_yield)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_set_driver_yield(cfg, 300 * US);
    cw_config_set_max_polls_per_yield(cfg, 1000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    spawn_spin(&env, 0, 10 * US);
    tenv_turn(&env);
    ck_assert_uint_eq(g_total, 30); /* 30 polls of 10 us, then back to libevent */
    tenv_turn(&env);
    ck_assert_uint_eq(g_total, 60);
    struct cw_executor_stats st;
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_eq(st.rounds, 2);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

START_TEST(round_ends_after_max_polls_per_yield)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_set_max_polls_per_yield(cfg, 7);
    tenv_init(&env, cfg, 1);
    reset(&env);
    spawn_spin(&env, 0, 0); /* free polls: only the count ends the round */
    tenv_turn(&env);
    ck_assert_uint_eq(g_total, 7);
    tenv_turn(&env);
    ck_assert_uint_eq(g_total, 14);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

START_TEST(default_max_polls_per_yield_is_1024)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    tenv_init(&env, cfg, 1);
    reset(&env);
    spawn_spin(&env, 0, 0);
    tenv_turn(&env);
    ck_assert_uint_eq(g_total, 1024);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* Polls until cw_should_yield says so, counting the checks. */
static uint64_t g_checks_until_yield;

static cw_poll until_yield_poll(void *state, cw_cx *cx)
{
    (void)state;
    if (g_stop)
        return CW_READY;
    g_checks_until_yield = 0;
    while (!cw_should_yield(cx)) {
        g_clk->now += 10 * US;
        g_checks_until_yield++;
    }
    g_total++;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(should_yield_when_slice_spent_and_others_wait)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 1);
    cw_config_set_driver_yield(cfg, 50 * MS);
    tenv_init(&env, cfg, 1);
    reset(&env);
    /* alone: should_yield only at the end of driver_yield (50 ms) */
    cw_spawn(cw_executor_queue(env.ex, 0), until_yield_poll, NULL, 0, NULL, NULL);
    tenv_turn(&env);
    ck_assert_uint_eq(g_checks_until_yield, 5000);
    /* with another queue runnable: at the end of the slice (2 ms / 2) */
    spawn_spin(&env, 1, 10 * US);
    for (int i = 0; i < 4; i++)
        tenv_turn(&env);
    ck_assert_uint_eq(g_checks_until_yield, 100);
    ck_assert(!cw_should_yield(NULL));
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* A foreground task that sleeps `nap` once, then notes when it ran. */
typedef struct napper {
    cw_pt pt;
    cw_sleep nap;
    uint64_t ns;
} napper;

static uint64_t g_napper_woke; /* fake time of its second poll */

static cw_poll napper_poll(void *state, cw_cx *cx)
{
    napper *n = state;
    CW_BEGIN(&n->pt);
    cw_sleep_init(&n->nap, n->ns);
    CW_AWAIT(&n->pt, cw_sleep_poll(&n->nap, cx));
    g_napper_woke = g_clk->now;
    CW_END(&n->pt);
}

/* A chunked background loop: 10 us of work, then cw_should_yield(); notes
 * the fake time of each "yes". */
static uint64_t g_chunker_yields[4];
static unsigned g_chunker_nyields;

static cw_poll chunker_poll(void *state, cw_cx *cx)
{
    uint32_t qid = *(uint32_t *)state;
    if (g_stop)
        return CW_READY;
    for (;;) {
        record(qid, 10 * US);
        if (cw_should_yield(cx))
            break;
    }
    if (g_chunker_nyields < 4)
        g_chunker_yields[g_chunker_nyields++] = g_clk->now;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* Sleeps fire at round starts; a CPU-bound task that checks
 * cw_should_yield() between chunks must still give way, within a chunk,
 * to a heavier queue whose sleep came due during its poll. */
START_TEST(should_yield_when_a_heavier_queues_sleep_comes_due)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);  /* background */
    cw_config_add_queue(cfg, 1, 99); /* foreground */
    cw_config_set_driver_yield(cfg, 50 * MS);
    cw_config_set_queue_latency(cfg, 1, CW_LATENCY_NONE); /* the sleep, not the round, ends it */
    cw_config_set_max_polls_per_yield(cfg, 100000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_napper_woke = 0;
    g_chunker_nyields = 0;
    napper fg = {.ns = 1 * MS};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), napper_poll, &fg, sizeof fg, NULL, NULL), 0);
    tenv_turn(&env); /* it sleeps until t0 + 1 ms */
    uint64_t t0 = env.clk.now;
    uint32_t bg = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), chunker_poll, &bg, sizeof bg, NULL, NULL), 0);
    for (int i = 0; i < 10 && !g_napper_woke; i++)
        tenv_turn(&env);
    /* alone, the background loop would run to the end of the round
     * (50 ms); the foreground sleep ends its poll at the first check at
     * or after t0 + 1 ms, and the foreground task runs next */
    ck_assert_uint_ge(g_chunker_nyields, 1);
    ck_assert_uint_eq(g_chunker_yields[0], t0 + 1 * MS);
    ck_assert_uint_eq(g_napper_woke, t0 + 1 * MS);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 0), &qs), 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_PREEMPTED], 1);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* The other way round: a lighter queue's sleep coming due does not cut the
 * heavier queue's poll short; it yields at the end of its slice. */
START_TEST(should_yield_ignores_a_lighter_queues_sleep_until_the_slice_ends)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 99); /* running */
    cw_config_add_queue(cfg, 1, 1);  /* sleeping */
    cw_config_set_queue_latency(cfg, 1, CW_LATENCY_NONE); /* its slice, not the round, ends it */
    cw_config_set_driver_yield(cfg, 50 * MS);
    cw_config_set_max_polls_per_yield(cfg, 100000);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_napper_woke = 0;
    g_chunker_nyields = 0;
    napper light = {.ns = 100 * US};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), napper_poll, &light, sizeof light, NULL, NULL), 0);
    tenv_turn(&env);
    uint64_t t0 = env.clk.now;
    uint32_t q = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), chunker_poll, &q, sizeof q, NULL, NULL), 0);
    tenv_turn(&env);
    ck_assert_uint_ge(g_chunker_nyields, 1);
    /* woken at t0 + 100 us, but not before the slice's end */
    ck_assert_uint_gt(g_chunker_yields[0], t0 + 100 * US);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 0), &qs), 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_PREEMPTED], 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_SPENT], 1);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* ---- latency targets: shorter rounds while a queue with one is idle ----- */

static cw_poll done_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_READY;
}

enum { LAT_DEFAULT = 0, LAT_UNUSED = 1 };

/* A chunked task alone on queue 0 (weight w_run); queue 1 (weight w_idle)
 * idles with target `lat` (LAT_DEFAULT: not set; with `used`, it ran a
 * task first). Returns when the chunked task's first "yes" from
 * cw_should_yield() came, counted from the round's start: the round's
 * budget. */
static uint64_t first_yield_after(uint32_t w_run, uint32_t w_idle, uint64_t lat, bool used,
                                  uint64_t *cut_rounds)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, w_run);
    cw_config_add_queue(cfg, 1, w_idle);
    if (lat != LAT_DEFAULT)
        ck_assert_int_eq(cw_config_set_queue_latency(cfg, 1, lat), 0);
    tenv_init(&env, cfg, 1);
    reset(&env);
    if (used) {
        ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), done_poll, NULL, 0, NULL, NULL), 0);
        tenv_turn(&env);
    }
    struct cw_executor_stats st0, st;
    ck_assert_int_eq(cw_executor_stats(env.ex, &st0), 0);
    g_chunker_nyields = 0;
    uint64_t t0 = env.clk.now;
    uint32_t q = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), chunker_poll, &q, sizeof q, NULL, NULL), 0);
    tenv_turn(&env);
    ck_assert_uint_eq(g_chunker_nyields, 1);
    ck_assert_int_eq(cw_executor_stats(env.ex, &st), 0);
    ck_assert_uint_eq(st.rounds - st0.rounds, 1);
    *cut_rounds = st.latency_rounds - st0.latency_rounds;
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 0), &qs), 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_DRIVER_YIELD], 1);
    stop_all(&env);
    tenv_free(&env);
    return g_chunker_yields[0] - t0;
}

START_TEST(latency_target_cuts_the_round_while_its_queue_idles)
{
    uint64_t cut;
    /* the default, 50 us, once the queue has had a task; the crate's 99:1 */
    ck_assert_uint_eq(first_yield_after(1, 99, LAT_DEFAULT, true, &cut),
                      CW_DEFAULT_QUEUE_LATENCY_NS);
    ck_assert_uint_eq(cut, 1);
    /* a target set is in force from the start */
    ck_assert_uint_eq(first_yield_after(1, 99, 20 * US, false, &cut), 20 * US);
    ck_assert_uint_eq(cut, 1);
    /* weights do not matter: the idle queue may be the lighter one */
    ck_assert_uint_eq(first_yield_after(99, 1, 30 * US, false, &cut), 30 * US);
    ck_assert_uint_eq(cut, 1);
    ck_assert_uint_eq(first_yield_after(5, 5, LAT_DEFAULT, true, &cut),
                      CW_DEFAULT_QUEUE_LATENCY_NS);
}
END_TEST

/* One budget test after a poll and inside one: with 10 us chunks and a
 * 45 us budget the task is told to stop at 40 us (one more chunk would
 * pass 45), not at 50, and the round ends after that poll. */
START_TEST(should_yield_and_the_round_end_agree_on_the_budget)
{
    uint64_t cut;
    ck_assert_uint_eq(first_yield_after(1, 99, 45 * US, false, &cut), 40 * US);
    ck_assert_uint_eq(cut, 1);
    ck_assert_uint_eq(first_yield_after(1, 99, 50 * US, false, &cut), 50 * US);
}
END_TEST

START_TEST(latency_target_costs_nothing_when_unused_or_none)
{
    uint64_t cut;
    /* a configured queue that never had a task */
    ck_assert_uint_eq(first_yield_after(1, 99, LAT_DEFAULT, false, &cut),
                      CW_DEFAULT_DRIVER_YIELD_NS);
    ck_assert_uint_eq(cut, 0);
    /* no target, used or not */
    ck_assert_uint_eq(first_yield_after(1, 99, CW_LATENCY_NONE, true, &cut),
                      CW_DEFAULT_DRIVER_YIELD_NS);
    ck_assert_uint_eq(cut, 0);
    /* at or above driver_yield it changes nothing */
    ck_assert_uint_eq(first_yield_after(1, 99, 2 * MS, false, &cut), CW_DEFAULT_DRIVER_YIELD_NS);
    ck_assert_uint_eq(cut, 0);
}
END_TEST

START_TEST(shortest_target_of_the_idle_queues_counts)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    for (uint32_t i = 0; i < 4; i++)
        cw_config_add_queue(cfg, i, 1 + i);
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 0, 10 * US), 0); /* runs: no effect */
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 1, 80 * US), 0);
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 2, 30 * US), 0);
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 3, 30 * US), 0); /* a shared one */
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 99, 30 * US), -ENOENT);
    ck_assert_int_eq(cw_config_set_queue_latency(NULL, 1, 30 * US), -EINVAL);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_chunker_nyields = 0;
    uint64_t t0 = env.clk.now;
    uint32_t q = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), chunker_poll, &q, sizeof q, NULL, NULL), 0);
    tenv_turn(&env);
    ck_assert_uint_eq(g_chunker_yields[0] - t0, 30 * US);
    /* queues 2 and 3 busy: 80 us is the shortest idle one left */
    uint32_t q2 = 2, q3 = 3;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 2), chunker_poll, &q2, sizeof q2, NULL, NULL), 0);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 3), chunker_poll, &q3, sizeof q3, NULL, NULL), 0);
    uint64_t t1 = env.clk.now;
    tenv_turn(&env);
    ck_assert_uint_ge(g_chunker_nyields, 2);
    ck_assert_uint_eq(g_chunker_yields[1] - t1, 80 * US);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* The budget is the running slice's: a heavy queue that wakes inside a
 * round cut short for it (its sleep ends, it preempts) runs with
 * driver_yield's budget while no other queue with a target idles. */
typedef struct sleepy {
    cw_pt pt;
    cw_sleep nap;
} sleepy;

static uint64_t g_sleepy_yes; /* fake time of its first "yes" from cw_should_yield */

static cw_poll sleepy_poll(void *state, cw_cx *cx)
{
    sleepy *s = state;
    CW_BEGIN(&s->pt);
    cw_sleep_init(&s->nap, 10 * US);
    CW_AWAIT(&s->pt, cw_sleep_poll(&s->nap, cx));
    for (;;) {
        record(1, 10 * US);
        if (cw_should_yield(cx))
            break;
    }
    g_sleepy_yes = g_clk->now;
    CW_END(&s->pt);
}

START_TEST(latency_budget_follows_the_running_slice)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);  /* background */
    cw_config_add_queue(cfg, 1, 99); /* foreground */
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_chunker_nyields = 0;
    g_sleepy_yes = 0;
    sleepy fg = {0};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), sleepy_poll, &fg, sizeof fg, NULL, NULL), 0);
    tenv_turn(&env); /* it sleeps until t0 + 10 us */
    uint64_t t0 = env.clk.now;
    uint32_t q = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), chunker_poll, &q, sizeof q, NULL, NULL), 0);
    tenv_turn(&env);
    /* the background's slice had the 50 us budget and was preempted at
     * 10 us; the foreground's slice, in the same round, had 500 us */
    ck_assert_uint_eq(g_chunker_yields[0], t0 + 10 * US);
    ck_assert_uint_eq(g_sleepy_yes, t0 + CW_DEFAULT_DRIVER_YIELD_NS);
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(env.ex, &st), 0);
    ck_assert_uint_eq(st.latency_rounds, 1);
    stop_all(&env);
    tenv_free(&env);
}
END_TEST

/* The promise behind it: a request that arrives on a socket while only
 * light, chunked work runs is served within the target (plus a chunk), not
 * at the end of driver_yield. The light task writes the request itself at
 * a known fake time; the fd's callback spawns a heavy task. */
static int g_req[2];
static uint64_t g_req_sent, g_req_served;
static cw_queue *g_heavy;

static cw_poll served_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    g_req_served = g_clk->now;
    return CW_READY;
}

static void on_request(evutil_socket_t fd, short what, void *arg)
{
    char c;
    (void)what;
    (void)arg;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(cw_spawn(g_heavy, served_poll, NULL, 0, NULL, NULL), 0);
}

/* 10 us chunks; sends the request after its 33rd chunk (330 us). */
static cw_poll sender_poll(void *state, cw_cx *cx)
{
    uint64_t *chunks = state;
    if (g_stop)
        return CW_READY;
    for (;;) {
        record(0, 10 * US);
        if (++*chunks == 33) {
            ck_assert_int_eq(write(g_req[1], "r", 1), 1);
            g_req_sent = g_clk->now;
        }
        if (cw_should_yield(cx))
            break;
    }
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static uint64_t request_wait(uint64_t lat)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);  /* background */
    cw_config_add_queue(cfg, 1, 99); /* foreground: idle until the request */
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 1, lat), 0);
    tenv_init(&env, cfg, 1);
    reset(&env);
    g_heavy = cw_executor_queue(env.ex, 1);
    g_req_sent = g_req_served = 0;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g_req), 0);
    struct event *ev = event_new(env.base, g_req[0], EV_READ | EV_PERSIST, on_request, NULL);
    ck_assert_int_eq(event_add(ev, NULL), 0);
    uint64_t chunks = 0;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), sender_poll, &chunks, sizeof chunks,
                              NULL, NULL), 0);
    for (int i = 0; i < 1000 && !g_req_served; i++)
        tenv_turn(&env);
    ck_assert_uint_gt(g_req_sent, 0);
    ck_assert_uint_gt(g_req_served, 0);
    stop_all(&env);
    event_free(ev);
    close(g_req[0]);
    close(g_req[1]);
    tenv_free(&env);
    return g_req_served - g_req_sent;
}

START_TEST(latency_target_serves_a_request_that_arrives_during_light_work)
{
    /* sent at 330 us into the work: the rounds end every 50 us, so the
     * request is seen at 350 us and its task runs first */
    ck_assert_uint_eq(request_wait(50 * US), 20 * US);
    /* none: the round ends at driver_yield (500 us) */
    ck_assert_uint_eq(request_wait(CW_LATENCY_NONE), 170 * US);
    /* the default target starts with the queue's first task: the very
     * first request waits for driver_yield */
    ck_assert_uint_eq(request_wait(0), 170 * US);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cpu_shares_follow_weights_8_1);
    tcase_add_test(tc, cpu_shares_follow_weights_99_1);
    tcase_add_test(tc, cpu_shares_follow_weights_1_2_3);
    tcase_add_test(tc, shares_are_exact_at_large_weights_and_short_slices);
    tcase_add_test(tc, shares_are_exact_for_random_weights_and_slices);
    tcase_add_test(tc, high_queue_waking_mid_slice_preempts_at_next_poll);
    tcase_add_test(tc, low_queue_waking_does_not_preempt);
    tcase_add_test(tc, short_slice_queue_is_served_within_its_slice);
    tcase_add_test(tc, queue_idle_for_long_gets_no_burst);
    tcase_add_test(tc, weight_change_at_run_time_changes_shares);
    tcase_add_test(tc, round_ends_after_driver_yield);
    tcase_add_test(tc, yield_to_loop_ends_the_round_after_the_poll);
    tcase_add_test(tc, round_ends_after_max_polls_per_yield);
    tcase_add_test(tc, default_max_polls_per_yield_is_1024);
    tcase_add_test(tc, should_yield_when_slice_spent_and_others_wait);
    tcase_add_test(tc, should_yield_when_a_heavier_queues_sleep_comes_due);
    tcase_add_test(tc, should_yield_ignores_a_lighter_queues_sleep_until_the_slice_ends);
    tcase_add_test(tc, latency_target_cuts_the_round_while_its_queue_idles);
    tcase_add_test(tc, latency_target_costs_nothing_when_unused_or_none);
    tcase_add_test(tc, should_yield_and_the_round_end_agree_on_the_budget);
    tcase_add_test(tc, shortest_target_of_the_idle_queues_counts);
    if (tdrv_is_libevent()) /* the request arrives through a raw libevent event */
        tcase_add_test(tc, latency_target_serves_a_request_that_arrives_during_light_work);
    tcase_add_test(tc, latency_budget_follows_the_running_slice);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
