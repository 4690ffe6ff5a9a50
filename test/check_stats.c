/* check_stats.c - the counters, histograms, hooks and report of
 * clockworker/stats.h.
 *
 * Every scripted test runs on the fake clock: a task's poll advances
 * env->clk.now by the poll's invented cost, and the test advances it by
 * hand between turns of the loop (time spent in libevent or idle). So every
 * counter, every histogram bucket and every hook argument is exact, and
 * each expected value below is worked out from the script in the comment
 * above it (a timeline in microseconds from the first round's start), not
 * copied from a run.
 *
 * SELF-WAKE STAMP: stats.h says a task that wakes itself during its poll
 * (CW_YIELD, wake_by_ref on its own waker) becomes runnable at the end of
 * that poll, when it is queued again; so its next poll's queue delay is
 * the time it waited in the queue, not counting its own poll. These checks
 * come last in each test.
 *
 * Hook events are recorded as text lines ("poll_end q1 T1 10000 pending")
 * and compared with the expected sequence, so a failure shows both.
 * A task is named by the string its state starts with.
 *
 * The last tests run examples/stats and examples/trace (fork + exec from
 * $top_builddir/examples) and check the structure of what they print.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define US 1000ull
#define MS 1000000ull
#define SCALE ((uint64_t)1 << 20) /* virtual time: ns x 2^20 / weight */

/* ---- histograms as the header defines them ------------------------------ */

/* Bucket 0 counts zeros; bucket b >= 1 counts [2^(b-1), 2^b). */
static unsigned bucket_of(uint64_t v)
{
    unsigned b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

static void hist_add(cw_hist *h, uint64_t v)
{
    h->buckets[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static cw_hist hist_of(const uint64_t *v, size_t n)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    for (size_t i = 0; i < n; i++)
        hist_add(&h, v[i]);
    return h;
}

/* h holds exactly the values v[0..n) (in any order). */
#define assert_hist(h, ...)                                                            \
    do {                                                                               \
        const uint64_t v_[] = {__VA_ARGS__};                                           \
        assert_hist_is(#h, (h), v_, sizeof v_ / sizeof v_[0]);                          \
    } while (0)
#define assert_hist_empty(h) assert_hist_is(#h, (h), NULL, 0)

static void assert_hist_is(const char *name, const cw_hist *h, const uint64_t *v, size_t n)
{
    cw_hist want = hist_of(v, n);
    ck_assert_msg(h->count == want.count, "%s: count %" PRIu64 ", want %" PRIu64, name,
                  h->count, want.count);
    ck_assert_msg(h->sum == want.sum, "%s: sum %" PRIu64 ", want %" PRIu64, name, h->sum,
                  want.sum);
    ck_assert_msg(h->max == want.max, "%s: max %" PRIu64 ", want %" PRIu64, name, h->max,
                  want.max);
    for (unsigned b = 0; b < CW_HIST_BUCKETS; b++)
        ck_assert_msg(h->buckets[b] == want.buckets[b],
                      "%s: bucket %u holds %" PRIu64 ", want %" PRIu64, name, b, h->buckets[b],
                      want.buckets[b]);
}

static struct cw_queue_stats qstats(tenv *env, uint32_t id)
{
    struct cw_queue_stats s;
    cw_queue *q = cw_executor_queue(env->ex, id);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(cw_queue_stats(q, &s), 0);
    return s;
}

/* ---- the hook recorder ------------------------------------------------------ */

#define MAXEV 256
static char g_ev[MAXEV][96];
static int g_nev;
static int g_rec;               /* record events */
static fake_clock *g_clk;
static uint64_t g_wake_advance; /* the wake hook advances the clock by this */
static void *g_hook_arg_seen;   /* the arg the hooks got (last) */

/* A task's name: every task state of this file starts with it. */
static const char *name_of(void *state)
{
    return *(const char *const *)state;
}

CW_PRINTF(1, 2)
static void rec(const char *fmt, ...)
{
    if (!g_rec)
        return;
    ck_assert_int_lt(g_nev, MAXEV);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_ev[g_nev++], sizeof g_ev[0], fmt, ap);
    va_end(ap);
}

static const char *result_name(int r)
{
    return r == CW_PENDING ? "pending" : r == CW_READY ? "ready" : r == CW_EPANIC ? "panic" : "?";
}

static const char *status_name(int s)
{
    return s == 0 ? "ok" : s == -ECANCELED ? "cancelled" : s == CW_EPANIC ? "panicked" : "?";
}

static const char *reason_name(cw_slice_end r)
{
    switch (r) {
    case CW_SLICE_EMPTY: return "empty";
    case CW_SLICE_SPENT: return "spent";
    case CW_SLICE_PREEMPTED: return "preempted";
    case CW_SLICE_DRIVER_YIELD: return "driver_yield";
    case CW_SLICE_MAX_POLLS: return "max_polls";
    }
    return "?";
}

static void h_spawn(void *arg, cw_queue *q, void *state)
{
    g_hook_arg_seen = arg;
    rec("spawn q%u %s", cw_queue_id(q), name_of(state));
}

static void h_poll_start(void *arg, cw_queue *q, void *state)
{
    g_hook_arg_seen = arg;
    rec("poll_start q%u %s", cw_queue_id(q), name_of(state));
}

static void h_poll_end(void *arg, cw_queue *q, void *state, uint64_t ns, int result)
{
    g_hook_arg_seen = arg;
    rec("poll_end q%u %s %" PRIu64 " %s", cw_queue_id(q), name_of(state), ns,
        result_name(result));
}

static void h_wake(void *arg, cw_queue *q, void *state, bool remote)
{
    g_hook_arg_seen = arg;
    rec("wake q%u %s %s", cw_queue_id(q), name_of(state), remote ? "remote" : "local");
    if (g_clk)
        g_clk->now += g_wake_advance;
}

static void h_complete(void *arg, cw_queue *q, void *state, int status)
{
    g_hook_arg_seen = arg;
    rec("complete q%u %s %s", cw_queue_id(q), name_of(state), status_name(status));
}

static void h_slice_start(void *arg, cw_queue *q)
{
    g_hook_arg_seen = arg;
    rec("slice_start q%u", cw_queue_id(q));
}

static void h_slice_end(void *arg, cw_queue *q, uint64_t ns, cw_slice_end reason)
{
    g_hook_arg_seen = arg;
    rec("slice_end q%u %" PRIu64 " %s", cw_queue_id(q), ns, reason_name(reason));
}

static const cw_hooks all_hooks = {
    .spawn = h_spawn,
    .poll_start = h_poll_start,
    .poll_end = h_poll_end,
    .wake = h_wake,
    .complete = h_complete,
    .slice_start = h_slice_start,
    .slice_end = h_slice_end,
};

static int g_marker; /* the hooks' arg */

/* Compare the recorded events with want (NULL-terminated), then forget
 * them. */
static void expect_events(const char *const *want)
{
    int n = 0;
    for (; want[n]; n++) {
        ck_assert_msg(n < g_nev, "event %d: missing, want \"%s\"", n, want[n]);
        ck_assert_msg(strcmp(g_ev[n], want[n]) == 0, "event %d: \"%s\", want \"%s\"", n,
                      g_ev[n], want[n]);
    }
    ck_assert_msg(g_nev == n, "%d events, want %d; event %d is \"%s\"", g_nev, n, n,
                  g_nev > n ? g_ev[n] : "");
    g_nev = 0;
}
#define EXPECT_EVENTS(...) expect_events((const char *const[]){__VA_ARGS__, NULL})

/* ---- scripted tasks ----------------------------------------------------------- */

enum { SELF_WAKE, PARK, NO_WAKE };

#define NSLOTS 4
static cw_waker *g_park[NSLOTS]; /* parked wakers, for someone else to wake */

typedef struct tk {
    const char *name;  /* first: the hooks name the task by it */
    uint64_t cost;     /* ns each poll advances the clock by */
    uint32_t polls;    /* returns READY at this poll (0: never) */
    int mode;          /* when PENDING: SELF_WAKE, PARK in slot, NO_WAKE */
    int slot;          /* PARK: its slot */
    uint32_t wake_at;  /* at this poll, wake the waker parked in wake_slot */
    int wake_slot;
    uint32_t panic_at; /* cw_panic at this poll */
    uint32_t abort_at; /* cw_join_abort(*self) at this poll */
    cw_join **self;
    uint32_t n;        /* polls so far */
} tk;

static void unpark(int slot)
{
    cw_waker *w = g_park[slot];
    ck_assert_ptr_nonnull(w);
    g_park[slot] = NULL;
    cw_waker_wake(w);
}

static cw_poll tk_poll(void *state, cw_cx *cx)
{
    tk *t = state;
    t->n++;
    g_clk->now += t->cost;
    if (t->wake_at && t->n == t->wake_at)
        unpark(t->wake_slot);
    if (t->panic_at && t->n == t->panic_at)
        cw_panic(cx, "boom %u", t->n);
    if (t->abort_at && t->n == t->abort_at)
        cw_join_abort(*t->self);
    if (t->polls && t->n >= t->polls)
        return CW_READY;
    if (t->mode == SELF_WAKE) {
        cw_waker_wake_by_ref(cw_cx_waker(cx));
    } else if (t->mode == PARK) {
        cw_waker_free(g_park[t->slot]);
        g_park[t->slot] = cw_waker_clone(cw_cx_waker(cx));
    }
    return CW_PENDING;
}

static void spawn_tk(tenv *env, uint32_t qid, tk t, cw_join **join)
{
    int err = cw_spawn(cw_executor_queue(env->ex, qid), tk_poll, &t, sizeof t, NULL, join);
    ck_assert_msg(err == 0, "cw_spawn: %s", cw_strerror(err));
}

/* Start a test: globals cleared; an executor on the fake clock from cfg
 * (which is freed), with every hook (arg &g_marker) unless no_hooks. */
static void setup(tenv *env, cw_config *cfg, bool hooks)
{
    g_nev = 0;
    g_rec = 1;
    g_wake_advance = 0;
    g_hook_arg_seen = NULL;
    memset(g_park, 0, sizeof g_park);
    if (hooks)
        ck_assert_int_eq(cw_config_set_hooks(cfg, &all_hooks, &g_marker), 0);
    tenv_init(env, cfg, 1);
    g_clk = &env->clk;
}

static void teardown(tenv *env)
{
    g_rec = 0;
    for (int i = 0; i < NSLOTS; i++) {
        cw_waker_free(g_park[i]);
        g_park[i] = NULL;
    }
    tenv_free(env);
    g_clk = NULL;
}

static cw_config *config_one_queue(uint32_t id)
{
    cw_config *cfg = cw_config_new();
    cw_config_set_histograms(cfg, true); /* off by default */
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, id, 1), 0);
    return cfg;
}

/* ---- cw_hist_quantile and cw_hist_merge --------------------------------- */

START_TEST(quantile_of_null_or_empty_histogram_is_zero)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    ck_assert_uint_eq(cw_hist_quantile(NULL, 0.5), 0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 0.0), 0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 0.5), 0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.0), 0);
}
END_TEST

START_TEST(quantile_of_a_constant_lies_in_its_bucket_and_never_above_max)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 100; i++)
        hist_add(&h, 1000);
    const double qs[] = {0.0, 0.01, 0.5, 0.9, 0.99, 1.0};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t v = cw_hist_quantile(&h, qs[i]);
        ck_assert_msg(bucket_of(v) == bucket_of(1000) || v == 1000,
                      "q=%.2f: %" PRIu64 " is not in [512, 1024)", qs[i], v);
        ck_assert_uint_le(v, 1000);
    }
    /* interpolation reaches the bucket's top at q = 1: clamped to max */
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.0), 1000);

    /* zeros: bucket 0 holds only 0 */
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 10; i++)
        hist_add(&h, 0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 0.5), 0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.0), 0);
}
END_TEST

/* Values 1..10000, once each: the true q-quantile is about q * 10000. */
START_TEST(quantile_of_uniform_values_within_one_bucket_and_interpolated)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    for (uint64_t v = 1; v <= 10000; v++)
        hist_add(&h, v);
    const double qs[] = {0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t truth = (uint64_t)(qs[i] * 10000);
        uint64_t v = cw_hist_quantile(&h, qs[i]);
        int db = (int)bucket_of(v) - (int)bucket_of(truth);
        ck_assert_msg(db >= -1 && db <= 1, "q=%.3f: %" PRIu64 " not within one bucket of %" PRIu64,
                      qs[i], v, truth);
        /* below 8192 each bucket holds one of each of its values, so
         * linear interpolation inside it lands on the value itself (+- rank
         * rounding); the top bucket [8192, 16384) is filled only to 10000 */
        if (bucket_of(truth) < bucket_of(10000))
            ck_assert_msg(v + 2 >= truth && v <= truth + 2,
                          "q=%.3f: %" PRIu64 ", want ~%" PRIu64, qs[i], v, truth);
    }
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.0), 10000);
    ck_assert_uint_le(cw_hist_quantile(&h, 0.0), 1);
}
END_TEST

/* 90 requests of 100 ns, 10 of 1 ms: p50 is in 100's bucket, p99 in 1 ms's. */
START_TEST(quantile_of_bimodal_values_within_one_bucket)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 90; i++)
        hist_add(&h, 100);
    for (int i = 0; i < 10; i++)
        hist_add(&h, 1000000);
    uint64_t p50 = cw_hist_quantile(&h, 0.5), p90 = cw_hist_quantile(&h, 0.9);
    uint64_t p95 = cw_hist_quantile(&h, 0.95), p99 = cw_hist_quantile(&h, 0.99);
    ck_assert_msg(bucket_of(p50) == bucket_of(100), "p50 %" PRIu64, p50);
    /* the 90th value is 100; the 91st is 1 ms */
    ck_assert_msg(bucket_of(p90) >= bucket_of(100) && bucket_of(p90) <= bucket_of(100) + 1,
                  "p90 %" PRIu64, p90);
    ck_assert_msg(bucket_of(p95) == bucket_of(1000000), "p95 %" PRIu64, p95);
    ck_assert_msg(bucket_of(p99) == bucket_of(1000000), "p99 %" PRIu64, p99);
    ck_assert_uint_le(p99, 1000000);
    ck_assert_uint_le(p50, p90);
    ck_assert_uint_le(p90, p95);
    ck_assert_uint_le(p95, p99);
}
END_TEST

START_TEST(quantile_clamps_q_below_0_nan_and_above_1)
{
    cw_hist h;
    memset(&h, 0, sizeof h);
    for (uint64_t v = 1; v <= 1000; v++)
        hist_add(&h, v * 37);
    uint64_t q0 = cw_hist_quantile(&h, 0.0), q1 = cw_hist_quantile(&h, 1.0);
    ck_assert_uint_eq(cw_hist_quantile(&h, -0.5), q0);
    ck_assert_uint_eq(cw_hist_quantile(&h, -INFINITY), q0);
    ck_assert_uint_eq(cw_hist_quantile(&h, NAN), q0);
    ck_assert_uint_eq(cw_hist_quantile(&h, 1.5), q1);
    ck_assert_uint_eq(cw_hist_quantile(&h, INFINITY), q1);
    ck_assert_uint_eq(q1, 37000);
    ck_assert_uint_le(q0, 37);
}
END_TEST

START_TEST(merge_gives_the_histogram_of_all_values)
{
    uint64_t a[50], b[70], all[120];
    size_t n = 0;
    for (size_t i = 0; i < 50; i++)
        all[n++] = a[i] = i * i; /* 0 .. 2401 */
    for (size_t i = 0; i < 70; i++)
        all[n++] = b[i] = 1000 + i * 12345;
    cw_hist ha = hist_of(a, 50), hb = hist_of(b, 70);
    cw_hist dst = ha;
    ck_assert_int_eq(cw_hist_merge(&dst, &hb), 0);
    assert_hist_is("a+b", &dst, all, n);
    /* the other way round: max is the larger either way */
    dst = hb;
    ck_assert_int_eq(cw_hist_merge(&dst, &ha), 0);
    assert_hist_is("b+a", &dst, all, n);
    /* src is not changed; merging an empty one changes nothing */
    assert_hist_is("b", &hb, b, 70);
    cw_hist empty;
    memset(&empty, 0, sizeof empty);
    dst = ha;
    ck_assert_int_eq(cw_hist_merge(&dst, &empty), 0);
    assert_hist_is("a+0", &dst, a, 50);
    /* the sum wraps */
    cw_hist big;
    memset(&big, 0, sizeof big);
    big.sum = UINT64_MAX;
    big.count = 1;
    big.buckets[64 - 1] = 1;
    big.max = UINT64_MAX;
    dst = ha;
    ck_assert_int_eq(cw_hist_merge(&dst, &big), 0);
    ck_assert_uint_eq(dst.sum, ha.sum - 1);
    ck_assert_uint_eq(dst.max, UINT64_MAX);
    ck_assert_uint_eq(dst.count, 51);
    /* NULL */
    ck_assert_int_eq(cw_hist_merge(NULL, &ha), -EINVAL);
    ck_assert_int_eq(cw_hist_merge(&dst, NULL), -EINVAL);
}
END_TEST

/* ---- argument checks ------------------------------------------------------------ */

START_TEST(stats_functions_reject_null_arguments)
{
    tenv env;
    struct cw_executor_stats es;
    struct cw_queue_stats qs;
    setup(&env, config_one_queue(1), false);
    ck_assert_int_eq(cw_executor_stats(NULL, &es), -EINVAL);
    ck_assert_int_eq(cw_executor_stats(env.ex, NULL), -EINVAL);
    ck_assert_int_eq(cw_queue_stats(NULL, &qs), -ENOENT);
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 1), NULL), -EINVAL);
    ck_assert_int_eq(cw_executor_dump_stats(NULL, stderr), -EINVAL);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, NULL), -EINVAL);
    ck_assert_int_eq(cw_config_set_hooks(NULL, &all_hooks, NULL), -EINVAL);
    cw_config_set_histograms(NULL, false); /* no-op */
    teardown(&env);
}
END_TEST

START_TEST(fresh_executor_counts_nothing)
{
    tenv env;
    cw_config *cfg = config_one_queue(3);
    ck_assert_int_eq(cw_config_add_queue(cfg, 9, 5), 0);
    setup(&env, cfg, true);
    struct cw_executor_stats es = stats_of(env.ex), zero;
    memset(&zero, 0, sizeof zero);
    ck_assert(memcmp(&es, &zero, sizeof es) == 0);
    struct cw_queue_stats qs = qstats(&env, 9);
    ck_assert_uint_eq(qs.id, 9);
    ck_assert_uint_eq(qs.weight, 5);
    ck_assert_uint_eq(qs.runnable + qs.tasks_spawned + qs.polls + qs.slices, 0);
    ck_assert_uint_eq(qs.queue_delay_ns.count + qs.service_delay_ns.count, 0);
    ck_assert_int_eq(g_nev, 0);
    teardown(&env);
}
END_TEST

/* ---- one queue: every field ------------------------------------------------------ */

/*
 * Queue 1, weight 1, defaults (slice 2 ms, driver_yield 500 us, 61 polls).
 * T1: 3 polls of 10 us, T2: 2 polls of 5 us; each wakes itself while
 * PENDING. One round, one slice (times in us from the round's start):
 *   T1 [0,10]  T2 [10,15]  T1 [15,25]  T2 [25,30] ready  T1 [30,40] ready
 * Queue delay of each poll (wake time = start of the poll that woke it,
 * spawn time = the round's start, the clock did not move):
 *   T1: 0, 15-0, 30-15     T2: 10-0, 25-10
 * Then 1 ms idle, T3 (one poll of 5 us) is spawned, 2 us later round 2:
 * T3 was stamped by a fresh reading at its spawn, so it waited 2 us.
 */
START_TEST(one_queue_script_sets_every_field_exactly)
{
    tenv env;
    setup(&env, config_one_queue(1), true);
    uint64_t t0 = env.clk.now;
    spawn_tk(&env, 1, (tk){.name = "T1", .cost = 10 * US, .polls = 3}, NULL);
    spawn_tk(&env, 1, (tk){.name = "T2", .cost = 5 * US, .polls = 2}, NULL);
    struct cw_queue_stats qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.runnable, 2);
    ck_assert_uint_eq(qs.tasks_spawned, 2);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 2);
    tenv_turn(&env);
    ck_assert_uint_eq(env.clk.now, t0 + 40 * US);

    EXPECT_EVENTS("spawn q1 T1", "spawn q1 T2", "slice_start q1",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T2", "wake q1 T2 local", "poll_end q1 T2 5000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T2", "poll_end q1 T2 5000 ready", "complete q1 T2 ok",
                  "poll_start q1 T1", "poll_end q1 T1 10000 ready", "complete q1 T1 ok",
                  "slice_end q1 40000 empty");
    ck_assert_ptr_eq(g_hook_arg_seen, &g_marker);

    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.polls, 5);
    ck_assert_uint_eq(s.tasks_spawned, 2);
    ck_assert_uint_eq(s.tasks_completed, 2);
    ck_assert_uint_eq(s.tasks_cancelled, 0);
    ck_assert_uint_eq(s.tasks_panicked, 0);
    ck_assert_uint_eq(s.tasks_live, 0);
    ck_assert_uint_eq(s.cpu_ns, 40 * US);
    ck_assert_uint_eq(s.slices, 1);
    ck_assert_uint_eq(s.preemptions, 0);
    ck_assert_uint_eq(s.rounds, 1);
    ck_assert_uint_eq(s.wakes_local, 3);
    ck_assert_uint_eq(s.wakes_remote, 0);
    assert_hist(&s.poll_ns, 10 * US, 5 * US, 10 * US, 5 * US, 10 * US);
    ck_assert_uint_eq(s.polls_overrun, 0);
    ck_assert_uint_eq(s.decisions, 2); /* q1, then nothing */
    assert_hist(&s.decision_ns, 0);    /* one per slice; the clock did not move */
    ck_assert_uint_eq(s.preempt_requests, 0);
    ck_assert_uint_eq(s.driver_yields, 0);
    assert_hist(&s.round_ns, 40 * US);
    assert_hist_empty(&s.return_interval_ns); /* the first return is not counted */
    ck_assert_uint_eq(s.busy_ns, 40 * US);
    ck_assert_uint_eq(s.libevent_ns, 0);
    ck_assert_uint_eq(s.idle_ns, 0);

    qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.id, 1);
    ck_assert_uint_eq(qs.weight, 1);
    ck_assert_uint_eq(qs.runnable, 0);
    ck_assert_uint_eq(qs.tasks_spawned, 2);
    ck_assert_uint_eq(qs.tasks_completed, 2);
    ck_assert_uint_eq(qs.tasks_cancelled, 0);
    ck_assert_uint_eq(qs.tasks_panicked, 0);
    ck_assert_uint_eq(qs.polls, 5);
    ck_assert_uint_eq(qs.cpu_ns, 40 * US);
    ck_assert_uint_eq(qs.slices, 1);
    ck_assert_uint_eq(qs.preemptions, 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_EMPTY], 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_SPENT] + qs.slices_ended[CW_SLICE_PREEMPTED]
                          + qs.slices_ended[CW_SLICE_DRIVER_YIELD]
                          + qs.slices_ended[CW_SLICE_MAX_POLLS],
                      0);
    /* alone from v = 0: v = 40 us x 2^20 / 1; alone, V = v: lag 0 */
    ck_assert_uint_eq(qs.vruntime, 40 * US * SCALE);
    ck_assert_int_eq(qs.lag, 0);
    assert_hist(&qs.service_delay_ns, 0);
    struct cw_queue_stats qs1 = qs; /* its queue delays are checked last */

    /* 1 ms idle; spawn; 2 us; round 2 */
    env.clk.now += 1 * MS;
    spawn_tk(&env, 1, (tk){.name = "T3", .cost = 5 * US, .polls = 1}, NULL);
    env.clk.now += 2 * US;
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q1 T3", "slice_start q1", "poll_start q1 T3",
                  "poll_end q1 T3 5000 ready", "complete q1 T3 ok", "slice_end q1 5000 empty");
    s = stats_of(env.ex);
    ck_assert_uint_eq(s.rounds, 2);
    ck_assert_uint_eq(s.polls, 6);
    ck_assert_uint_eq(s.slices, 2);
    ck_assert_uint_eq(s.decisions, 4);
    ck_assert_uint_eq(s.tasks_spawned, 3);
    ck_assert_uint_eq(s.tasks_completed, 3);
    ck_assert_uint_eq(s.cpu_ns, 45 * US);
    assert_hist(&s.round_ns, 40 * US, 5 * US);
    /* returns at 40 and 40 + 1000 + 2 + 5 */
    assert_hist(&s.return_interval_ns, 1 * MS + 7 * US);
    ck_assert_uint_eq(s.busy_ns, 45 * US);
    ck_assert_uint_eq(s.idle_ns, 1 * MS + 2 * US);
    ck_assert_uint_eq(s.libevent_ns, 0);
    assert_hist(&s.decision_ns, 0, 0);
    qs = qstats(&env, 1);
    assert_hist(&qs.service_delay_ns, 0, 2 * US);
    ck_assert_uint_eq(qs.vruntime, 45 * US * SCALE);
    ck_assert_int_eq(qs.lag, 0);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_EMPTY], 2);
    /* queue delays last (see SELF-WAKE STAMP at the top of the file) */
    assert_hist(&qs1.queue_delay_ns, 0, 10 * US, 5 * US, 10 * US, 5 * US);
    assert_hist(&qs.queue_delay_ns, 0, 10 * US, 5 * US, 10 * US, 5 * US, 2 * US);
    teardown(&env);
}
END_TEST

/*
 * driver_yield 35 us; T1: 5 polls of 10 us, waking itself.
 *   round 1 [0,30]: T1 [0,10] [10,20] [20,30]: one more poll of 10 us
 *   would end at 40 > 35, back to libevent
 *   7 us in libevent
 *   round 2 [37,57]: T1 [37,47] [47,57] ready; queue empty
 *   1 ms idle, T2 spawned (one poll of 3 us)
 *   round 3 [1057,1060]
 * Queue delays: T1 0, 10, 10, 37-20, 10; T2 0.
 */
START_TEST(driver_yield_ends_round_and_times_libevent_and_idle)
{
    tenv env;
    cw_config *cfg = config_one_queue(1);
    cw_config_set_driver_yield(cfg, 35 * US);
    setup(&env, cfg, true);
    spawn_tk(&env, 1, (tk){.name = "T1", .cost = 10 * US, .polls = 5}, NULL);
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q1 T1", "slice_start q1",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "slice_end q1 30000 driver_yield");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.rounds, 1);
    ck_assert_uint_eq(s.driver_yields, 1);
    ck_assert_uint_eq(s.decisions, 1); /* the round ended inside the slice */
    ck_assert_uint_eq(s.tasks_live, 1);
    struct cw_queue_stats qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.runnable, 1);
    ck_assert_uint_eq(qs.slices, 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_DRIVER_YIELD], 1);

    env.clk.now += 7 * US;
    tenv_turn(&env);
    EXPECT_EVENTS("slice_start q1",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "poll_end q1 T1 10000 ready", "complete q1 T1 ok",
                  "slice_end q1 20000 empty");
    env.clk.now += 1 * MS;
    spawn_tk(&env, 1, (tk){.name = "T2", .cost = 3 * US, .polls = 1}, NULL);
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q1 T2", "slice_start q1", "poll_start q1 T2",
                  "poll_end q1 T2 3000 ready", "complete q1 T2 ok", "slice_end q1 3000 empty");
    tenv_turn(&env); /* nothing left: no round */

    s = stats_of(env.ex);
    ck_assert_uint_eq(s.rounds, 3);
    ck_assert_uint_eq(s.driver_yields, 1);
    ck_assert_uint_eq(s.polls, 6);
    ck_assert_uint_eq(s.cpu_ns, 53 * US);
    ck_assert_uint_eq(s.slices, 3);
    ck_assert_uint_eq(s.decisions, 1 + 2 + 2);
    assert_hist(&s.decision_ns, 0, 0, 0);
    assert_hist(&s.round_ns, 30 * US, 20 * US, 3 * US);
    assert_hist(&s.return_interval_ns, 27 * US, 1003 * US);
    ck_assert_uint_eq(s.busy_ns, 53 * US);
    ck_assert_uint_eq(s.libevent_ns, 7 * US);
    ck_assert_uint_eq(s.idle_ns, 1 * MS);
    ck_assert_uint_eq(s.wakes_local, 4);
    ck_assert_uint_eq(s.polls_overrun, 0);
    ck_assert_uint_eq(s.tasks_live, 0);
    assert_hist(&s.poll_ns, 10 * US, 10 * US, 10 * US, 10 * US, 10 * US, 3 * US);
    qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.slices, 3);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_DRIVER_YIELD], 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_EMPTY], 2);
    ck_assert_uint_eq(qs.cpu_ns, 53 * US);
    ck_assert_uint_eq(qs.vruntime, 53 * US * SCALE);
    /* runnable from the spawn of T1 to the end of round 2, then from T2's */
    assert_hist(&qs.service_delay_ns, 0, 0);
    assert_hist(&qs.queue_delay_ns, 0, 0, 0, 7 * US, 0, 0);
    teardown(&env);
}
END_TEST

/*
 * max_polls_per_yield 4; T1: 6 polls of 10 us, waking itself.
 *   round 1 [0,40]: four polls, the round's poll budget is spent
 *   2 us in libevent
 *   round 2 [42,62]: two polls, ready
 */
START_TEST(max_polls_ends_slice_and_round)
{
    tenv env;
    cw_config *cfg = config_one_queue(1);
    cw_config_set_max_polls_per_yield(cfg, 4);
    setup(&env, cfg, true);
    spawn_tk(&env, 1, (tk){.name = "T1", .cost = 10 * US, .polls = 6}, NULL);
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q1 T1", "slice_start q1",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "slice_end q1 40000 max_polls");
    struct cw_queue_stats qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.runnable, 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_MAX_POLLS], 1);
    env.clk.now += 2 * US;
    tenv_turn(&env);
    EXPECT_EVENTS("slice_start q1",
                  "poll_start q1 T1", "wake q1 T1 local", "poll_end q1 T1 10000 pending",
                  "poll_start q1 T1", "poll_end q1 T1 10000 ready", "complete q1 T1 ok",
                  "slice_end q1 20000 empty");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.rounds, 2);
    ck_assert_uint_eq(s.driver_yields, 1);
    ck_assert_uint_eq(s.slices, 2);
    ck_assert_uint_eq(s.decisions, 1 + 2);
    ck_assert_uint_eq(s.polls, 6);
    ck_assert_uint_eq(s.libevent_ns, 2 * US);
    ck_assert_uint_eq(s.idle_ns, 0);
    ck_assert_uint_eq(s.busy_ns, 60 * US);
    assert_hist(&s.round_ns, 40 * US, 20 * US);
    assert_hist(&s.return_interval_ns, 22 * US);
    qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.slices, 2);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_MAX_POLLS], 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_EMPTY], 1);
    ck_assert_uint_eq(qs.slices_ended[CW_SLICE_DRIVER_YIELD], 0);
    assert_hist(&qs.service_delay_ns, 0);
    assert_hist(&qs.queue_delay_ns, 0, 0, 0, 0, 2 * US, 0);
    teardown(&env);
}
END_TEST

/* ---- two queues: slices spent, overruns, vruntime and lag ---------------------- */

/*
 * Queues 1 and 2, weight 1, slice 100 us each. TA on 1 and TB on 2: 5 polls
 * of 40 us each, waking themselves. Both start at v = 0 with deadline 100;
 * ties go to queue 1 (configured first).
 *   [0,120]   q1: TA x3; the third poll [80,120] ends past the slice's end
 *             (100): an overrun; slice spent (q2 runnable)
 *   [120,240] q2: TB x3; [200,240] overruns the slice ending at 220; spent
 *   [240,320] q1 (v 120 = v of q2, tie): TA x2, ready; empty
 *   [320,400] q2 alone: TB x2, ready; empty
 * When q1 empties at 320, V = (200 + 120) / 2 = 160 us: its lag is -40 us.
 */
static void run_two_queues(tenv *env)
{
    cw_config *cfg = cw_config_new();
    cw_config_set_histograms(cfg, true); /* off by default */
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 1), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 1, 100 * US), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 2, 100 * US), 0);
    cw_config_set_driver_yield(cfg, 10 * MS);
    cw_config_set_max_polls_per_yield(cfg, 1000);
    /* one round: the queue that empties first shortens nothing */
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 1, CW_LATENCY_NONE), 0);
    ck_assert_int_eq(cw_config_set_queue_latency(cfg, 2, CW_LATENCY_NONE), 0);
    setup(env, cfg, true);
    spawn_tk(env, 1, (tk){.name = "TA", .cost = 40 * US, .polls = 5}, NULL);
    spawn_tk(env, 2, (tk){.name = "TB", .cost = 40 * US, .polls = 5}, NULL);
    tenv_turn(env);
}

START_TEST(two_queues_spent_slices_overruns_vruntime_and_lag)
{
    tenv env;
    run_two_queues(&env);
#define P(q, t, r) "poll_start q" #q " " #t, "wake q" #q " " #t " local", \
                   "poll_end q" #q " " #t " 40000 " #r
    EXPECT_EVENTS("spawn q1 TA", "spawn q2 TB",
                  "slice_start q1", P(1, TA, pending), P(1, TA, pending), P(1, TA, pending),
                  "slice_end q1 120000 spent",
                  "slice_start q2", P(2, TB, pending), P(2, TB, pending), P(2, TB, pending),
                  "slice_end q2 120000 spent",
                  "slice_start q1", P(1, TA, pending), "poll_start q1 TA",
                  "poll_end q1 TA 40000 ready", "complete q1 TA ok", "slice_end q1 80000 empty",
                  "slice_start q2", P(2, TB, pending), "poll_start q2 TB",
                  "poll_end q2 TB 40000 ready", "complete q2 TB ok", "slice_end q2 80000 empty");
#undef P
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.polls, 10);
    ck_assert_uint_eq(s.cpu_ns, 400 * US);
    ck_assert_uint_eq(s.slices, 4);
    ck_assert_uint_eq(s.decisions, 5);
    ck_assert_uint_eq(s.polls_overrun, 2);
    ck_assert_uint_eq(s.rounds, 1);
    ck_assert_uint_eq(s.driver_yields, 0);
    ck_assert_uint_eq(s.preemptions, 0);
    ck_assert_uint_eq(s.preempt_requests, 0);
    ck_assert_uint_eq(s.wakes_local, 8);
    assert_hist(&s.round_ns, 400 * US);
    assert_hist(&s.decision_ns, 0, 0, 0, 0);
    ck_assert_uint_eq(s.busy_ns, 400 * US);

    struct cw_queue_stats a = qstats(&env, 1), b = qstats(&env, 2);
    ck_assert_uint_eq(a.polls, 5);
    ck_assert_uint_eq(b.polls, 5);
    ck_assert_uint_eq(a.cpu_ns, 200 * US);
    ck_assert_uint_eq(b.cpu_ns, 200 * US);
    ck_assert_uint_eq(a.slices, 2);
    ck_assert_uint_eq(b.slices, 2);
    ck_assert_uint_eq(a.slices_ended[CW_SLICE_SPENT], 1);
    ck_assert_uint_eq(a.slices_ended[CW_SLICE_EMPTY], 1);
    ck_assert_uint_eq(b.slices_ended[CW_SLICE_SPENT], 1);
    ck_assert_uint_eq(b.slices_ended[CW_SLICE_EMPTY], 1);
    ck_assert_uint_eq(a.vruntime, 200 * US * SCALE);
    ck_assert_uint_eq(b.vruntime, 200 * US * SCALE);
    ck_assert_int_eq(a.lag, -(int64_t)(40 * US * SCALE));
    ck_assert_int_eq(b.lag, 0);
    /* TA: spawned 0, polls at 0, 40, 80, 240, 280 (woken at 0, 40, 80, 240)
     * TB: polls at 120, 160, 200, 320, 360 (woken at 0, 120, 160, 200, 320) */
    assert_hist(&a.service_delay_ns, 0);
    assert_hist(&b.service_delay_ns, 120 * US);
    assert_hist(&a.queue_delay_ns, 0, 0, 0, 120 * US, 0);
    assert_hist(&b.queue_delay_ns, 120 * US, 0, 0, 80 * US, 0);
    teardown(&env);
}
END_TEST

/* ---- preemption -------------------------------------------------------------------- */

/*
 * Queue 1 weight 1, queue 2 weight 100 (default slices).
 *   round 1 [0,10]: P on q2 polls and parks its waker; q2 goes idle (lag 0)
 *   S is spawned on q1: 4 polls of 10 us, waking itself; its third poll
 *   wakes P.
 *   round 2 [10,60]: q1: S [10,20] [20,30] [30,40]: the wake at 30 places
 *   q2 at V (eligible) with deadline V + 1 ms/100, earlier than q1's
 *   (v1 + 2 ms): q1's slice ends after this poll, preempted.
 *   q2: P [40,50], parks again: empty.  q1: S [50,60] ready: empty.
 */
START_TEST(woken_queue_preempts_the_running_slice)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_set_histograms(cfg, true); /* off by default */
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 100), 0);
    /* the round as long as driver_yield although queue 2 idles (its
     * target's cut: latency_target_cuts_the_round_while_its_queue_idles) */
    cw_config_set_queue_latency(cfg, 2, CW_LATENCY_NONE);
    setup(&env, cfg, true);
    spawn_tk(&env, 2, (tk){.name = "P", .cost = 10 * US, .mode = PARK, .slot = 0}, NULL);
    tenv_turn(&env);
    spawn_tk(&env, 1, (tk){.name = "S", .cost = 10 * US, .polls = 4, .wake_at = 3, .wake_slot = 0},
             NULL);
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q2 P", "slice_start q2", "poll_start q2 P",
                  "poll_end q2 P 10000 pending", "slice_end q2 10000 empty",
                  "spawn q1 S", "slice_start q1",
                  "poll_start q1 S", "wake q1 S local", "poll_end q1 S 10000 pending",
                  "poll_start q1 S", "wake q1 S local", "poll_end q1 S 10000 pending",
                  "poll_start q1 S", "wake q2 P local", "wake q1 S local",
                  "poll_end q1 S 10000 pending", "slice_end q1 30000 preempted",
                  "slice_start q2", "poll_start q2 P", "poll_end q2 P 10000 pending",
                  "slice_end q2 10000 empty",
                  "slice_start q1", "poll_start q1 S", "poll_end q1 S 10000 ready",
                  "complete q1 S ok", "slice_end q1 10000 empty");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.preempt_requests, 1);
    ck_assert_uint_eq(s.preemptions, 1);
    ck_assert_uint_eq(s.slices, 4);
    ck_assert_uint_eq(s.decisions, 2 + 4);
    ck_assert_uint_eq(s.rounds, 2);
    ck_assert_uint_eq(s.wakes_local, 4);
    ck_assert_uint_eq(s.polls, 6);
    ck_assert_uint_eq(s.tasks_live, 1);
    assert_hist(&s.round_ns, 10 * US, 50 * US);
    assert_hist(&s.return_interval_ns, 50 * US);
    ck_assert_uint_eq(s.idle_ns, 0);
    struct cw_queue_stats a = qstats(&env, 1), b = qstats(&env, 2);
    ck_assert_uint_eq(a.preemptions, 1);
    ck_assert_uint_eq(a.slices_ended[CW_SLICE_PREEMPTED], 1);
    ck_assert_uint_eq(a.slices_ended[CW_SLICE_EMPTY], 1);
    ck_assert_uint_eq(a.slices, 2);
    ck_assert_uint_eq(b.preemptions, 0);
    ck_assert_uint_eq(b.slices, 2);
    ck_assert_uint_eq(b.slices_ended[CW_SLICE_EMPTY], 2);
    assert_hist(&a.service_delay_ns, 0); /* stayed runnable when preempted */
    assert_hist(&b.queue_delay_ns, 0, 10 * US);
    assert_hist(&b.service_delay_ns, 0, 10 * US);
    /* S woke itself in each poll: stamped at that poll's start */
    assert_hist(&a.queue_delay_ns, 0, 0, 0, 10 * US);
    teardown(&env);
}
END_TEST

/* ---- panics, cancels -------------------------------------------------------------- */

/*
 * catch_panics on. X panics in its first poll; Y parks; Z is aborted before
 * it ever runs; V aborts itself in its first poll (ends after that poll);
 * Y is aborted after the round. Polls of 10 us.
 */
static cw_join *g_jv;

START_TEST(panicked_and_cancelled_tasks_in_counters_and_hooks)
{
    tenv env;
    cw_config *cfg = config_one_queue(1);
    cw_config_set_catch_panics(cfg, true);
    setup(&env, cfg, true);
    cw_join *jx, *jy, *jz;
    spawn_tk(&env, 1, (tk){.name = "X", .cost = 10 * US, .panic_at = 1}, &jx);
    spawn_tk(&env, 1, (tk){.name = "Y", .cost = 10 * US, .mode = PARK, .slot = 0}, &jy);
    spawn_tk(&env, 1, (tk){.name = "Z", .cost = 10 * US}, &jz);
    spawn_tk(&env, 1, (tk){.name = "V", .cost = 10 * US, .mode = NO_WAKE, .abort_at = 1,
                           .self = &g_jv},
             &g_jv);
    cw_join_abort(jz);
    ck_assert_int_eq(cw_join_status(jz), -ECANCELED);
    struct cw_queue_stats qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.runnable, 3);
    ck_assert_uint_eq(qs.tasks_cancelled, 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 3);
    tenv_turn(&env);
    cw_join_abort(jy);
    EXPECT_EVENTS("spawn q1 X", "spawn q1 Y", "spawn q1 Z", "spawn q1 V",
                  "complete q1 Z cancelled", "slice_start q1",
                  "poll_start q1 X", "poll_end q1 X 10000 panic", "complete q1 X panicked",
                  "poll_start q1 Y", "poll_end q1 Y 10000 pending",
                  "poll_start q1 V", "poll_end q1 V 10000 pending", "complete q1 V cancelled",
                  "slice_end q1 30000 empty", "complete q1 Y cancelled");
    ck_assert_int_eq(cw_join_status(jx), CW_EPANIC);
    ck_assert_str_eq(cw_join_panic_message(jx), "boom 1");
    ck_assert_int_eq(cw_join_status(jy), -ECANCELED);
    ck_assert_int_eq(cw_join_status(g_jv), -ECANCELED);

    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.tasks_spawned, 4);
    ck_assert_uint_eq(s.tasks_completed, 0);
    ck_assert_uint_eq(s.tasks_cancelled, 3);
    ck_assert_uint_eq(s.tasks_panicked, 1);
    ck_assert_uint_eq(s.tasks_live, 0);
    ck_assert_uint_eq(s.polls, 3);
    ck_assert_uint_eq(s.cpu_ns, 30 * US);
    assert_hist(&s.poll_ns, 10 * US, 10 * US, 10 * US);
    qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.tasks_spawned, 4);
    ck_assert_uint_eq(qs.tasks_completed, 0);
    ck_assert_uint_eq(qs.tasks_cancelled, 3);
    ck_assert_uint_eq(qs.tasks_panicked, 1);
    ck_assert_uint_eq(qs.polls, 3);
    ck_assert_uint_eq(qs.runnable, 0);
    /* X at 0, Y at 10, V at 20: all runnable since their spawn at 0 */
    assert_hist(&qs.queue_delay_ns, 0, 10 * US, 20 * US);
    cw_join_free(jx);
    cw_join_free(jy);
    cw_join_free(jz);
    cw_join_free(g_jv);
    teardown(&env);
}
END_TEST

START_TEST(tasks_cancelled_at_executor_free_get_complete_hook)
{
    tenv env;
    setup(&env, config_one_queue(1), true);
    spawn_tk(&env, 1, (tk){.name = "W", .cost = 1 * US, .mode = PARK, .slot = 0}, NULL);
    spawn_tk(&env, 1, (tk){.name = "Q", .cost = 1 * US, .mode = NO_WAKE}, NULL);
    tenv_turn(&env);
    spawn_tk(&env, 1, (tk){.name = "R", .cost = 1 * US}, NULL); /* never polled */
    g_nev = 0;
    cw_waker_free(g_park[0]);
    g_park[0] = NULL;
    tenv_free(&env);
    /* order of the cancellations is the executor's: compare as a set */
    ck_assert_int_eq(g_nev, 3);
    const char *want[] = {"complete q1 W cancelled", "complete q1 Q cancelled",
                          "complete q1 R cancelled"};
    for (int i = 0; i < 3; i++) {
        int found = 0;
        for (int j = 0; j < g_nev; j++)
            found += strcmp(g_ev[j], want[i]) == 0;
        ck_assert_msg(found == 1, "\"%s\" seen %d times", want[i], found);
    }
    g_rec = 0;
    g_clk = NULL;
}
END_TEST

/* ---- wakes ----------------------------------------------------------------------------- */

/* P parks; main wakes it twice by reference (the second finds it queued:
 * counted, not queued again); P's second poll ends it; a wake of the
 * ended task is not counted and not reported. */
START_TEST(local_wakes_count_every_call_on_live_tasks_only)
{
    tenv env;
    setup(&env, config_one_queue(1), true);
    spawn_tk(&env, 1, (tk){.name = "P", .cost = 1 * US, .polls = 2, .mode = PARK, .slot = 0},
             NULL);
    tenv_turn(&env);
    g_nev = 0;
    cw_waker_wake_by_ref(g_park[0]);
    cw_waker_wake_by_ref(g_park[0]);
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 2);
    ck_assert_uint_eq(qstats(&env, 1).runnable, 1);
    tenv_turn(&env);
    cw_waker_wake_by_ref(g_park[0]); /* ended */
    EXPECT_EVENTS("wake q1 P local", "wake q1 P local", "slice_start q1", "poll_start q1 P",
                  "poll_end q1 P 1000 ready", "complete q1 P ok", "slice_end q1 1000 empty");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.wakes_local, 2);
    ck_assert_uint_eq(s.wakes_remote, 0);
    ck_assert_uint_eq(s.polls, 2);
    teardown(&env);
}
END_TEST

struct waker_thread {
    cw_waker *w;
};

static void *remote_waker(void *arg)
{
    struct waker_thread *wt = arg;
    cw_waker_wake_by_ref(wt->w);
    cw_waker_wake_by_ref(wt->w);
    cw_waker_wake(wt->w); /* and release */
    return NULL;
}

/*
 * P (polls of 10 us) parks in round 1 [0,10]. 100 us later another thread
 * wakes it three times before the executor looks: one inbox entry, one
 * remote wake. The wake hook takes 6 us (it advances the clock): round 2
 * starts at 110, takes the wake, picks q1 at 116: decision 6 us, P waited
 * 6 us (a remote wake's time is the round's start), q1 too.
 */
START_TEST(remote_wakes_count_once_per_inbox_entry_and_hook_says_remote)
{
    tenv env;
    setup(&env, config_one_queue(1), true);
    spawn_tk(&env, 1, (tk){.name = "P", .cost = 10 * US, .mode = PARK, .slot = 0}, NULL);
    tenv_turn(&env);
    g_nev = 0;
    env.clk.now += 100 * US;
    g_wake_advance = 6 * US;
    struct waker_thread wt = {g_park[0]};
    g_park[0] = NULL;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, remote_waker, &wt), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 100 && stats_of(env.ex).polls < 2; i++)
        tenv_turn(&env);
    g_wake_advance = 0;
    EXPECT_EVENTS("wake q1 P remote", "slice_start q1", "poll_start q1 P",
                  "poll_end q1 P 10000 pending", "slice_end q1 10000 empty");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.wakes_remote, 1);
    ck_assert_uint_eq(s.wakes_local, 0);
    ck_assert_uint_eq(s.rounds, 2);
    assert_hist(&s.decision_ns, 0, 6 * US);
    assert_hist(&s.round_ns, 10 * US, 16 * US);
    ck_assert_uint_eq(s.idle_ns, 100 * US);
    ck_assert_uint_eq(s.busy_ns, 26 * US);
    struct cw_queue_stats qs = qstats(&env, 1);
    assert_hist(&qs.queue_delay_ns, 0, 6 * US);
    assert_hist(&qs.service_delay_ns, 0, 6 * US);
    teardown(&env);
}
END_TEST

/* A libevent callback (outside any round) at 10 + 3 us wakes P, then takes
 * 4 us more; the round at 17 finds P stamped with a fresh reading (13). */
static void wake_from_callback(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    g_clk->now += 3 * US;
    unpark(0);
    g_clk->now += 4 * US;
}

START_TEST(wake_from_libevent_callback_is_stamped_with_a_fresh_reading)
{
    tenv env;
    setup(&env, config_one_queue(1), true);
    spawn_tk(&env, 1, (tk){.name = "P", .cost = 10 * US, .mode = PARK, .slot = 0}, NULL);
    tenv_turn(&env);
    g_nev = 0;
    const struct timeval zero = {0, 0};
    ck_assert_int_eq(event_base_once(env.base, -1, EV_TIMEOUT, wake_from_callback, NULL, &zero),
                     0);
    for (int i = 0; i < 100 && stats_of(env.ex).polls < 2; i++)
        tenv_turn(&env);
    EXPECT_EVENTS("wake q1 P local", "slice_start q1", "poll_start q1 P",
                  "poll_end q1 P 10000 pending", "slice_end q1 10000 empty");
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.wakes_local, 1);
    ck_assert_uint_eq(s.rounds, 2);
    ck_assert_uint_eq(s.idle_ns, 7 * US);
    struct cw_queue_stats qs = qstats(&env, 1);
    assert_hist(&qs.queue_delay_ns, 0, 4 * US);
    assert_hist(&qs.service_delay_ns, 0, 4 * US);
    teardown(&env);
}
END_TEST

/* A config that says nothing about histograms keeps none (the default),
 * and still counts. */
START_TEST(histograms_are_off_by_default)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    setup(&env, cfg, false);
    spawn_tk(&env, 1, (tk){.name = "T1", .cost = 10 * US, .polls = 2}, NULL);
    tenv_turn(&env);
    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.polls, 2);
    ck_assert_uint_eq(s.cpu_ns, 20 * US);
    ck_assert_uint_eq(s.poll_ns.count + s.decision_ns.count + s.round_ns.count, 0);
    struct cw_queue_stats qs = qstats(&env, 1);
    ck_assert_uint_eq(qs.polls, 2);
    ck_assert_uint_eq(qs.queue_delay_ns.count + qs.service_delay_ns.count, 0);
    teardown(&env);
}
END_TEST

/* ---- histograms off; hooks config ------------------------------------------------------ */

static void run_one_queue_script(bool hist, struct cw_executor_stats *es, struct cw_queue_stats *qs)
{
    tenv env;
    cw_config *cfg = config_one_queue(1);
    cw_config_set_histograms(cfg, hist);
    setup(&env, cfg, false);
    spawn_tk(&env, 1, (tk){.name = "T1", .cost = 10 * US, .polls = 3}, NULL);
    spawn_tk(&env, 1, (tk){.name = "T2", .cost = 5 * US, .polls = 2}, NULL);
    tenv_turn(&env);
    env.clk.now += 1 * MS;
    spawn_tk(&env, 1, (tk){.name = "T3", .cost = 5 * US, .polls = 1}, NULL);
    env.clk.now += 2 * US;
    tenv_turn(&env);
    *es = stats_of(env.ex);
    *qs = qstats(&env, 1);
    teardown(&env);
}

START_TEST(histograms_off_keeps_every_hist_empty_and_counters_unchanged)
{
    struct cw_executor_stats on, off;
    struct cw_queue_stats qon, qoff;
    run_one_queue_script(true, &on, &qon);
    run_one_queue_script(false, &off, &qoff);
    assert_hist_empty(&off.poll_ns);
    assert_hist_empty(&off.decision_ns);
    assert_hist_empty(&off.round_ns);
    assert_hist_empty(&off.return_interval_ns);
    assert_hist_empty(&qoff.queue_delay_ns);
    assert_hist_empty(&qoff.service_delay_ns);
    ck_assert_uint_eq(on.poll_ns.count, 6); /* the "on" run did keep them */
    ck_assert_uint_eq(qon.queue_delay_ns.count, 6);
    /* everything else is the same, ns totals included */
    memset(&on.poll_ns, 0, sizeof on.poll_ns);
    memset(&on.decision_ns, 0, sizeof on.decision_ns);
    memset(&on.round_ns, 0, sizeof on.round_ns);
    memset(&on.return_interval_ns, 0, sizeof on.return_interval_ns);
    memset(&qon.queue_delay_ns, 0, sizeof qon.queue_delay_ns);
    memset(&qon.service_delay_ns, 0, sizeof qon.service_delay_ns);
    ck_assert(memcmp(&on, &off, sizeof on) == 0);
    ck_assert(memcmp(&qon, &qoff, sizeof qon) == 0);
    ck_assert_uint_eq(off.idle_ns, 1 * MS + 2 * US);
    ck_assert_uint_eq(off.busy_ns, 45 * US);
    ck_assert_uint_eq(qoff.cpu_ns, 45 * US);
}
END_TEST

static int g_other_calls;
static void h_other_spawn(void *arg, cw_queue *q, void *state)
{
    (void)arg;
    (void)q;
    (void)state;
    g_other_calls++;
}

/* The hooks struct is copied; members may be NULL; NULL removes them. */
START_TEST(hooks_are_copied_optional_and_removable)
{
    tenv env;
    g_other_calls = 0;
    /* copied: changing the caller's struct afterwards has no effect */
    cw_config *cfg = config_one_queue(1);
    cw_hooks h = {.spawn = h_spawn, .complete = h_complete}; /* the rest NULL */
    ck_assert_int_eq(cw_config_set_hooks(cfg, &h, &g_other_calls), 0);
    h.spawn = h_other_spawn;
    setup(&env, cfg, false);
    spawn_tk(&env, 1, (tk){.name = "T", .cost = 1 * US, .polls = 2}, NULL);
    tenv_turn(&env);
    EXPECT_EVENTS("spawn q1 T", "complete q1 T ok");
    ck_assert_ptr_eq(g_hook_arg_seen, &g_other_calls);
    ck_assert_int_eq(g_other_calls, 0);
    teardown(&env);

    /* removed: set, then NULL */
    cfg = config_one_queue(1);
    ck_assert_int_eq(cw_config_set_hooks(cfg, &all_hooks, NULL), 0);
    ck_assert_int_eq(cw_config_set_hooks(cfg, NULL, NULL), 0);
    setup(&env, cfg, false);
    spawn_tk(&env, 1, (tk){.name = "T", .cost = 1 * US, .polls = 2}, NULL);
    tenv_turn(&env);
    ck_assert_int_eq(g_nev, 0);
    ck_assert_uint_eq(stats_of(env.ex).polls, 2);
    teardown(&env);
}
END_TEST

/* ---- the report -------------------------------------------------------------------------- */

/* The lines of section `head` ("executor", "queue 2"): from after its
 * header line to the next line that does not start with two spaces. */
static const char *section(const char *dump, const char *head, char *buf, size_t cap)
{
    size_t n = strlen(head);
    const char *p = dump;
    while (p && *p) {
        if (strncmp(p, head, n) == 0 && p[n] == '\n')
            break;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    ck_assert_msg(p && *p, "no \"%s\" section in:\n%s", head, dump);
    p += n + 1;
    const char *end = p;
    while (strncmp(end, "  ", 2) == 0) {
        const char *nl = strchr(end, '\n');
        end = nl ? nl + 1 : end + strlen(end);
    }
    ck_assert_uint_lt((size_t)(end - p), cap);
    memcpy(buf, p, (size_t)(end - p));
    buf[end - p] = '\0';
    return buf;
}

/* The text after "  name " in a section (name padded by spaces). */
static const char *field(const char *sec, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = sec; p && *p;) {
        const char *s = p + 2;
        if (strncmp(s, name, n) == 0 && s[n] == ' ') {
            s += n;
            while (*s == ' ')
                s++;
            return s;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    ck_abort_msg("no field \"%s\" in:\n%s", name, sec);
    return NULL;
}

static uint64_t field_u64(const char *sec, const char *name)
{
    return strtoull(field(sec, name), NULL, 10);
}

/* "count p50 p90 p99 max" of a histogram row, times in us. */
static void check_hist_row(const char *sec, const char *name, const cw_hist *h)
{
    unsigned long long count;
    double p[4];
    const char *s = field(sec, name);
    ck_assert_msg(sscanf(s, "%llu %lf %lf %lf %lf", &count, &p[0], &p[1], &p[2], &p[3]) == 5,
                  "row %s: \"%s\"", name, s);
    ck_assert_uint_eq(count, h->count);
    const double q[3] = {0.5, 0.9, 0.99};
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(p[i], (double)cw_hist_quantile(h, q[i]) / 1000.0, 0.0011);
    ck_assert_double_eq_tol(p[3], (double)h->max / 1000.0, 0.0011);
}

START_TEST(dump_has_executor_counters_and_one_table_per_queue)
{
    tenv env;
    run_two_queues(&env);
    char *dump = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dump, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_gt(len, 0);

    static char sec[16384];
    struct cw_executor_stats s = stats_of(env.ex);
    section(dump, "executor", sec, sizeof sec);
    ck_assert_uint_eq(field_u64(sec, "polls"), s.polls);
    ck_assert_uint_eq(field_u64(sec, "polls_overrun"), 2);
    ck_assert_uint_eq(field_u64(sec, "slices"), 4);
    ck_assert_uint_eq(field_u64(sec, "rounds"), 1);
    ck_assert_uint_eq(field_u64(sec, "tasks_completed"), 2);
    ck_assert_msg(strncmp(field(sec, "cpu"), "400.000 us\n", 11) == 0, "cpu: %.20s",
                  field(sec, "cpu"));
    check_hist_row(sec, "poll", &s.poll_ns);
    check_hist_row(sec, "round", &s.round_ns);

    for (uint32_t id = 1; id <= 2; id++) {
        char head[32];
        snprintf(head, sizeof head, "queue %u", id);
        section(dump, head, sec, sizeof sec);
        struct cw_queue_stats qs = qstats(&env, id);
        ck_assert_uint_eq(field_u64(sec, "weight"), 1);
        ck_assert_uint_eq(field_u64(sec, "polls"), 5);
        ck_assert_uint_eq(field_u64(sec, "slices"), 2);
        ck_assert_uint_eq(field_u64(sec, "slices_spent"), 1);
        ck_assert_uint_eq(field_u64(sec, "slices_empty"), 1);
        ck_assert_uint_eq(field_u64(sec, "tasks_spawned"), 1);
        ck_assert_int_eq(strtoll(field(sec, "lag"), NULL, 10), qs.lag);
        check_hist_row(sec, "queue_delay", &qs.queue_delay_ns);
        check_hist_row(sec, "service_delay", &qs.service_delay_ns);
    }
    /* q2 waited out q1's first slice: 120 us from runnable to served */
    section(dump, "queue 2", sec, sizeof sec);
    unsigned long long count;
    double p50, p90, p99, max;
    ck_assert_int_eq(sscanf(field(sec, "service_delay"), "%llu %lf %lf %lf %lf", &count, &p50,
                            &p90, &p99, &max),
                     5);
    ck_assert_uint_eq(count, 1);
    ck_assert_double_eq(max, 120.0);
    free(dump);
    teardown(&env);
}
END_TEST

START_TEST(dump_reports_write_errors_as_eio)
{
    tenv env;
    run_two_queues(&env);
    FILE *f = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, f), -EIO);
    fclose(f);
    /* unbuffered: the first write fails */
    f = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(f);
    setvbuf(f, NULL, _IONBF, 0);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, f), -EIO);
    fclose(f);
    /* a stream with room for 64 bytes */
    char small[64];
    f = fmemopen(small, sizeof small, "w");
    ck_assert_ptr_nonnull(f);
    setvbuf(f, NULL, _IONBF, 0);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, f), -EIO);
    fclose(f);
    teardown(&env);
}
END_TEST

/* ---- the examples --------------------------------------------------------------------------- */

static char g_out[256 * 1024];

/* Run examples/<name> with args; collect the fd `which` (1: stdout, 2:
 * stderr). Returns the exit code (a signal fails the test). */
static int run_example(const char *name, const char *const *args, int which)
{
    char rel[256];
    ck_assert_int_lt(snprintf(rel, sizeof rel, "examples/%s", name), (int)sizeof rel);
    return run_built(rel, args, which, g_out, sizeof g_out, NULL);
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(example_stats_prints_a_dump_with_both_queue_tables)
{
    const char *args[] = {"--duration-ms", "100", NULL};
    int code = run_example("stats", args, 1);
    ck_assert_msg(code == 0, "stats exited %d:\n%s", code, g_out);
    static char sec[16384];
    section(g_out, "executor", sec, sizeof sec);
    uint64_t spawned = field_u64(sec, "tasks_spawned");
    ck_assert_uint_gt(spawned, 0);
    ck_assert_uint_eq(field_u64(sec, "tasks_live"), 0);
    ck_assert_uint_eq(field_u64(sec, "tasks_completed") + field_u64(sec, "tasks_cancelled"),
                      spawned);
    ck_assert_uint_gt(field_u64(sec, "rounds"), 0);
    uint64_t polls = field_u64(sec, "polls");
    uint64_t qpolls = 0;
    const char *heads[] = {"queue 1", "queue 2"};
    const uint64_t weights[] = {8, 1};
    for (int i = 0; i < 2; i++) {
        section(g_out, heads[i], sec, sizeof sec);
        ck_assert_uint_eq(field_u64(sec, "weight"), weights[i]);
        ck_assert_uint_gt(field_u64(sec, "polls"), 0);
        ck_assert_uint_gt(field_u64(sec, "slices"), 0);
        qpolls += field_u64(sec, "polls");
        field(sec, "queue_delay");
        field(sec, "service_delay");
    }
    ck_assert_uint_eq(qpolls, polls); /* every poll is some queue's */
}
END_TEST

START_TEST(example_trace_prints_each_event_kind_one_per_line)
{
    int code = run_example("trace", NULL, 2);
    ck_assert_msg(code == 0, "trace exited %d:\n%s", code, g_out);
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^t=[0-9]+ ev=(spawn|poll_start|poll_end|wake|complete|slice_start"
                             "|slice_end) q=[0-9]+( [a-z_]+=[^ ]+)*$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    static char copy[sizeof g_out];
    size_t lines = 0;
    for (char *line = strtok(strcpy(copy, g_out), "\n"); line;
         line = strtok(NULL, "\n")) {
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "line %zu: \"%s\"", lines, line);
        lines++;
    }
    regfree(&re);
    ck_assert_uint_gt(lines, 0);
    const char *kinds[] = {"ev=spawn ", "ev=poll_start ", "ev=poll_end ", "ev=wake ",
                           "ev=complete ", "ev=slice_start ", "ev=slice_end "};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        ck_assert_msg(count_of(g_out, kinds[i]) > 0, "no %s line", kinds[i]);
    ck_assert_uint_eq(count_of(g_out, "ev=spawn "), count_of(g_out, "ev=complete "));
    ck_assert_uint_eq(count_of(g_out, "ev=poll_start "), count_of(g_out, "ev=poll_end "));
    ck_assert_uint_eq(count_of(g_out, "ev=slice_start "), count_of(g_out, "ev=slice_end "));
    ck_assert_uint_gt(count_of(g_out, " status=cancelled"), 0);
    ck_assert_uint_gt(count_of(g_out, " status=ok"), 0);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *h = tcase_create("hist");
    tcase_add_test(h, quantile_of_null_or_empty_histogram_is_zero);
    tcase_add_test(h, quantile_of_a_constant_lies_in_its_bucket_and_never_above_max);
    tcase_add_test(h, quantile_of_uniform_values_within_one_bucket_and_interpolated);
    tcase_add_test(h, quantile_of_bimodal_values_within_one_bucket);
    tcase_add_test(h, quantile_clamps_q_below_0_nan_and_above_1);
    tcase_add_test(h, merge_gives_the_histogram_of_all_values);
    suite_add_tcase(s, h);

    TCase *c = tcase_create("counters");
    tcase_add_test(c, stats_functions_reject_null_arguments);
    tcase_add_test(c, fresh_executor_counts_nothing);
    tcase_add_test(c, one_queue_script_sets_every_field_exactly);
    tcase_add_test(c, driver_yield_ends_round_and_times_libevent_and_idle);
    tcase_add_test(c, max_polls_ends_slice_and_round);
    tcase_add_test(c, two_queues_spent_slices_overruns_vruntime_and_lag);
    tcase_add_test(c, woken_queue_preempts_the_running_slice);
    tcase_add_test(c, panicked_and_cancelled_tasks_in_counters_and_hooks);
    tcase_add_test(c, tasks_cancelled_at_executor_free_get_complete_hook);
    tcase_add_test(c, local_wakes_count_every_call_on_live_tasks_only);
    tcase_add_test(c, remote_wakes_count_once_per_inbox_entry_and_hook_says_remote);
    if (tdrv_is_libevent()) /* a raw libevent callback wakes the task */
        tcase_add_test(c, wake_from_libevent_callback_is_stamped_with_a_fresh_reading);
    tcase_add_test(c, histograms_off_keeps_every_hist_empty_and_counters_unchanged);
    tcase_add_test(c, histograms_are_off_by_default);
    tcase_add_test(c, hooks_are_copied_optional_and_removable);
    suite_add_tcase(s, c);

    TCase *d = tcase_create("dump");
    tcase_add_test(d, dump_has_executor_counters_and_one_table_per_queue);
    tcase_add_test(d, dump_reports_write_errors_as_eio);
    suite_add_tcase(s, d);

    TCase *e = tcase_create("examples");
    tcase_set_timeout(e, 30);
    tcase_add_test(e, example_stats_prints_a_dump_with_both_queue_tables);
    tcase_add_test(e, example_trace_prints_each_event_kind_one_per_line);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    return run_suite(stats_suite());
}
