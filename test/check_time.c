/* check_time.c - cw_sleep: sleepers wake in deadline order (FIFO on equal
 * deadlines), only once their deadline has passed on the executor's clock,
 * at a round start or when the executor's one libevent timer fires; a
 * dropped or aborted sleeper leaves the heap at once and never fires;
 * freeing the executor releases every sleeper; the heap keeps its
 * invariant under random inserts and removals; event_base_dispatch()
 * returns once the sleepers are done; NULL arguments never hang.
 *
 * Time is the injected clock except in the two tests that run the real
 * loop to completion, which assert order and completion, never durations.
 * The real libevent timer is armed (deadline - now) real ns ahead, so the
 * fake-clock tests keep their sleeps in microseconds and let it fire with
 * a blocking EVLOOP_ONCE; what they assert is only which sleepers woke at
 * which fake time, and in which order.
 *
 * White-box (internal.h): the heap's size and arming, round_pending (to
 * know that a wake came from the timer and not from a round), and
 * cw__timers_check(), the heap's invariant check. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h"

#define US 1000ull
#define MS 1000000ull
#define MAXS 1100

enum { Q = 1 };

/* ---- a sleeping task and what it records ------------------------------- */

typedef struct sleeper {
    cw_sleep sleep;
    int id;
    int yields;     /* polls that yield before the sleep is first polled */
    int polls;
    bool registered;
} sleeper;

static fake_clock *g_clk;
static tenv *g_env;
static int g_wake_log[MAXS], g_nwake;   /* ids, in the order they woke */
static int g_reg_log[MAXS], g_nreg;     /* ids, in the order they registered */
static uint64_t g_woke_at[MAXS];        /* executor clock when READY */
static uint64_t g_deadline[MAXS];       /* the deadline each one was given */
static cw_sleep *g_sleep_of[MAXS];      /* where each one's sleep lives */
static int g_polls_of[MAXS];
static int g_drops;

static void reset(tenv *env)
{
    g_env = env;
    g_clk = &env->clk;
    g_nwake = g_nreg = 0;
    g_drops = 0;
    memset(g_woke_at, 0, sizeof g_woke_at);
    memset(g_deadline, 0, sizeof g_deadline);
    memset(g_sleep_of, 0, sizeof g_sleep_of);
    memset(g_polls_of, 0, sizeof g_polls_of);
}

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    sleeper *s = state;
    s->polls++;
    g_polls_of[s->id] = s->polls;
    g_sleep_of[s->id] = &s->sleep;
    if (s->yields > 0) {
        s->yields--;
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    if (cw_sleep_poll(&s->sleep, cx) == CW_PENDING) {
        if (!s->registered) {
            s->registered = true;
            g_reg_log[g_nreg++] = s->id;
        }
        return CW_PENDING;
    }
    g_woke_at[s->id] = cw_executor_now(cw_cx_executor(cx));
    g_wake_log[g_nwake++] = s->id;
    return CW_READY;
}

static void sleeper_drop(void *state)
{
    sleeper *s = state;
    g_drops++;
    cw_sleep_drop(&s->sleep);
}

/* A sleeper until the absolute deadline `until` (executor clock). */
static void spawn_until(tenv *env, int id, uint64_t until, int yields, cw_join **join)
{
    sleeper s = {.id = id, .yields = yields};
    cw_sleep_init_until(&s.sleep, until);
    g_deadline[id] = until;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, Q), sleeper_poll, &s, sizeof s,
                              sleeper_drop, join),
                     0);
}

/* A sleeper of ns from its first poll. */
static void spawn_for(tenv *env, int id, uint64_t ns, cw_join **join)
{
    sleeper s = {.id = id};
    cw_sleep_init(&s.sleep, ns);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, Q), sleeper_poll, &s, sizeof s,
                              sleeper_drop, join),
                     0);
}

static cw_config *one_queue_cfg(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    return cfg;
}

static uint64_t live_tasks(tenv *env)
{
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(env->ex, &st), 0);
    return st.tasks_live;
}

/* Run rounds until none is pending (the tasks here never spin). */
static void settle(tenv *env)
{
    for (int guard = 0; env->ex->round_pending; guard++) {
        ck_assert_int_lt(guard, 100000);
        tenv_turn(env);
    }
}

/* Let the executor's libevent timer fire once, with no round pending (so
 * whatever wakes, the timer woke), then run the rounds it scheduled. The
 * timer is armed (deadline - fake now at arming) real ns ahead: a few
 * microseconds to a millisecond in these tests. */
static void fire_timer(tenv *env)
{
    settle(env);
    ck_assert(!env->ex->round_pending);
    ck_assert(env->ex->timers.armed);
    ck_assert_int_eq(tenv_run_once(env), 0);
    settle(env);
}

/* Start a round without the timer: a task that ends at its first poll. */
static cw_poll noop_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_READY;
}

static void run_round(tenv *env)
{
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, Q), noop_poll, NULL, 0, NULL, NULL), 0);
    settle(env);
}

static uint32_t g_rng;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

/* ---- order -------------------------------------------------------------- */

START_TEST(sleepers_wake_in_deadline_order)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    /* spawned (and registered) in an order unrelated to the deadlines */
    const uint64_t d[5] = {50 * US, 10 * US, 40 * US, 20 * US, 30 * US};
    for (int i = 0; i < 5; i++)
        spawn_until(&env, i, t0 + d[i], 0, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, 5);
    ck_assert_uint_eq(env.ex->timers.n, 5);
    ck_assert_int_eq(g_nwake, 0);
    env.clk.now = t0 + 60 * US; /* all due at once: one firing, in order */
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 5);
    const int want[5] = {1, 3, 4, 2, 0};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(g_wake_log[i], want[i]);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    ck_assert(!env.ex->timers.armed);
    ck_assert_uint_eq(live_tasks(&env), 0);
    tenv_free(&env);
}
END_TEST

START_TEST(equal_deadlines_wake_fifo_in_registration_order)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    /* 40 sleepers on one deadline, registering in an order that differs
     * from the spawn order (each yields a few times first), mixed with
     * sleepers on other deadlines so that the heap is reshuffled */
    for (int i = 0; i < 40; i++)
        spawn_until(&env, i, t0 + 20 * US, (i * 7) % 5, NULL);
    for (int i = 40; i < 60; i++)
        spawn_until(&env, i, t0 + (i % 2 ? 10 : 30) * US, (i * 3) % 4, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, 60);
    /* registration order really differs from spawn order */
    int out_of_spawn_order = 0;
    for (int i = 1; i < g_nreg; i++)
        out_of_spawn_order += g_reg_log[i] < g_reg_log[i - 1];
    ck_assert_int_gt(out_of_spawn_order, 0);

    env.clk.now = t0 + 30 * US;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 60);
    /* first the 10 us ones, then the 20 us ones in registration order,
     * then the 30 us ones; within each deadline, registration order */
    int w = 0;
    const uint64_t dls[3] = {10 * US, 20 * US, 30 * US};
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < g_nreg; r++) {
            int id = g_reg_log[r];
            if (g_deadline[id] != t0 + dls[k])
                continue;
            ck_assert_msg(g_wake_log[w] == id, "wake %d: got id %d, want id %d", w,
                          g_wake_log[w], id);
            w++;
        }
    ck_assert_int_eq(w, 60);
    tenv_free(&env);
}
END_TEST

START_TEST(thousand_sleepers_with_random_deadlines_wake_in_sorted_order)
{
    enum { N = 1000 };
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    g_rng = 0x9e3779b9u;
    uint64_t t0 = env.clk.now;
    for (int i = 0; i < N; i++) /* 1..300 us: many ties */
        spawn_until(&env, i, t0 + (1 + rnd() % 300) * US, 0, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, N);
    ck_assert_uint_eq(env.ex->timers.n, N);
    ck_assert_uint_ge(env.ex->timers.cap, N);
    cw__timers_check(env.ex);

    /* advance in random steps; after each, exactly the sleepers whose
     * deadline has passed have woken */
    while (g_nwake < N) {
        env.clk.now += rnd() % (40 * US);
        fire_timer(&env);
        for (int i = 0; i < N; i++) {
            bool due = g_deadline[i] <= env.clk.now;
            bool woke = g_woke_at[i] != 0;
            ck_assert_msg(due == woke, "sleeper %d: deadline +%llu ns, clock +%llu ns, woke %d",
                          i, (unsigned long long)(g_deadline[i] - t0),
                          (unsigned long long)(env.clk.now - t0), woke);
        }
        ck_assert_uint_eq(env.ex->timers.n, (uint64_t)(N - g_nwake));
    }
    /* sorted by deadline; ties in registration (here: spawn) order */
    for (int k = 1; k < N; k++) {
        int a = g_wake_log[k - 1], b = g_wake_log[k];
        ck_assert(g_deadline[a] < g_deadline[b] || (g_deadline[a] == g_deadline[b] && a < b));
    }
    ck_assert(!env.ex->timers.armed);
    tenv_free(&env);
}
END_TEST

/* ---- when they wake ----------------------------------------------------- */

START_TEST(sleep_of_zero_is_ready_at_first_poll)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    spawn_for(&env, 0, 0, NULL);
    spawn_until(&env, 1, env.clk.now, 0, NULL);       /* deadline == now */
    spawn_until(&env, 2, env.clk.now - 5 * US, 0, NULL); /* in the past */
    spawn_until(&env, 3, 0, 0, NULL);
    settle(&env);
    ck_assert_int_eq(g_nwake, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(g_polls_of[i], 1);
    ck_assert_int_eq(g_nreg, 0);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    ck_assert(!env.ex->timers.armed);
    tenv_free(&env);
}
END_TEST

START_TEST(only_sleepers_whose_deadline_passed_wake)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    spawn_for(&env, 0, 100 * US, NULL); /* relative: from the first poll, t0 */
    spawn_for(&env, 1, 200 * US, NULL);
    spawn_until(&env, 2, t0 + 300 * US, 0, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, 3);

    fire_timer(&env); /* the clock has not moved: nothing is due */
    ck_assert_int_eq(g_nwake, 0);
    env.clk.now = t0 + 100 * US - 1;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 0);
    env.clk.now = t0 + 150 * US;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_int_eq(g_wake_log[0], 0);
    ck_assert_uint_eq(g_woke_at[0], t0 + 150 * US);
    ck_assert_int_eq(g_polls_of[1], 1); /* the others were not even polled */
    ck_assert_int_eq(g_polls_of[2], 1);
    env.clk.now = t0 + 300 * US; /* exactly the last deadline: due */
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 3);
    ck_assert_int_eq(g_wake_log[1], 1);
    ck_assert_int_eq(g_wake_log[2], 2);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(a_round_start_wakes_due_sleepers_without_the_timer)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    /* an hour of the fake clock: the real timer (an hour ahead) never
     * fires during this test, so only round starts can wake these */
    spawn_for(&env, 0, 3600000 * MS, NULL);
    spawn_for(&env, 1, 3600000 * MS + 1, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, 2);
    env.clk.now = t0 + 3600000 * MS - 1;
    run_round(&env);
    ck_assert_int_eq(g_nwake, 0);
    env.clk.now = t0 + 3600000 * MS;
    run_round(&env);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_int_eq(g_wake_log[0], 0);
    env.clk.now += 1;
    run_round(&env);
    ck_assert_int_eq(g_nwake, 2);
    ck_assert(!env.ex->timers.armed);
    tenv_free(&env);
}
END_TEST

/* A task that logs itself in the wake log when polled. */
static cw_poll marker_poll(void *state, cw_cx *cx)
{
    (void)cx;
    g_wake_log[g_nwake++] = *(int *)state;
    return CW_READY;
}

/* Sleeps that came due before a task is spawned or woken from outside a
 * round are queued before it (as libevent runs expired timers before the
 * callbacks the same pass activates), with no round or timer in between. */
START_TEST(due_sleepers_queue_before_a_task_that_becomes_runnable_after_them)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    /* an hour: the real timer never fires during the test */
    spawn_until(&env, 0, t0 + 3600000 * MS, 0, NULL);
    spawn_until(&env, 1, t0 + 3600000 * MS + 2, 0, NULL);
    settle(&env);
    ck_assert_int_eq(g_nreg, 2);
    env.clk.now = t0 + 3600000 * MS + 1; /* 0 is due, 1 is not */
    int id = 7;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), marker_poll, &id, sizeof id, NULL, NULL),
                     0);
    settle(&env);
    ck_assert_int_eq(g_nwake, 2);
    ck_assert_int_eq(g_wake_log[0], 0);
    ck_assert_int_eq(g_wake_log[1], 7);
    ck_assert_int_eq(env.ex->timers.n, 1); /* 1 still sleeps */

    /* a due sleeper woken from outside by its own waker: queued once */
    env.clk.now = t0 + 3600000 * MS + 2;
    ck_assert_ptr_nonnull(g_sleep_of[1]);
    cw_waker *w = cw_waker_clone(g_sleep_of[1]->cw__waker);
    ck_assert_ptr_nonnull(w);
    cw_waker_wake(w);
    settle(&env);
    ck_assert_int_eq(g_nwake, 3);
    ck_assert_int_eq(g_wake_log[2], 1);
    ck_assert_int_eq(g_polls_of[1], 2);
    ck_assert_int_eq(env.ex->timers.n, 0);
    tenv_free(&env);
}
END_TEST

/* A wake hook run by that catch-up (the due sleeper's wake) aborts the
 * task being queued: the enqueue must leave the ended task alone (it was
 * queued with no reference, polled after its block was freed). */
static cw_join *g_abort_me;
static cw_waker *g_t_waker;
static int g_t_polls;

static cw_poll parked_poll(void *state, cw_cx *cx)
{
    (void)state;
    g_t_polls++;
    if (!g_t_waker)
        g_t_waker = cw_waker_clone(cw_cx_waker(cx));
    return CW_PENDING;
}

static void abort_on_sleeper_wake(void *arg, cw_queue *q, void *state, bool remote)
{
    (void)arg;
    (void)q;
    (void)remote;
    if (((sleeper *)state)->id == 0 && g_abort_me) {
        cw_join *j = g_abort_me;
        g_abort_me = NULL;
        cw_join_abort(j);
    }
}

START_TEST(a_hook_that_ends_the_task_being_queued_during_the_catch_up)
{
    cw_config *cfg = one_queue_cfg();
    cw_hooks h = {.wake = abort_on_sleeper_wake};
    cw_config_set_hooks(cfg, &h, NULL);
    tenv env;
    tenv_init(&env, cfg, 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    spawn_until(&env, 0, t0 + 3600000 * MS, 0, NULL);
    sleeper other = {.id = 1}; /* (read by the hook: an id that is not 0) */
    cw_join *jt;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), parked_poll, &other, sizeof other,
                              NULL, &jt),
                     0);
    settle(&env);
    ck_assert_ptr_nonnull(g_t_waker);
    env.clk.now = t0 + 3600000 * MS;
    g_abort_me = jt;
    cw_waker_wake_by_ref(g_t_waker); /* queue it -> catch-up -> hook aborts it */
    ck_assert_int_eq(cw_join_status(jt), -ECANCELED);
    cw_waker_free(g_t_waker);
    g_t_waker = NULL;
    cw_join_free(jt);
    settle(&env);
    ck_assert_int_eq(g_t_polls, 1);
    ck_assert_int_eq(g_nwake, 1); /* the sleeper ran */
    ck_assert_int_eq(live_tasks(&env), 0);
    tenv_free(&env);
}
END_TEST

/* A task woken early (not by its sleep) polls again: still pending, one
 * heap entry, and the deadline counts from the first poll. */
static cw_waker *g_parked;

static cw_poll parked_sleeper_poll(void *state, cw_cx *cx)
{
    sleeper *s = state;
    s->polls++;
    g_polls_of[s->id] = s->polls;
    if (!g_parked)
        g_parked = cw_waker_clone(cw_cx_waker(cx));
    if (cw_sleep_poll(&s->sleep, cx) == CW_PENDING)
        return CW_PENDING;
    g_woke_at[s->id] = cw_executor_now(cw_cx_executor(cx));
    g_wake_log[g_nwake++] = s->id;
    return CW_READY;
}

START_TEST(polling_again_before_the_deadline_keeps_the_first_deadline)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    g_parked = NULL;
    uint64_t t0 = env.clk.now;
    sleeper s = {.id = 0};
    cw_sleep_init(&s.sleep, 100 * US);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), parked_sleeper_poll, &s, sizeof s,
                              sleeper_drop, NULL),
                     0);
    settle(&env);
    ck_assert_int_eq(g_polls_of[0], 1);
    env.clk.now = t0 + 60 * US;
    cw_waker_wake_by_ref(g_parked); /* a spurious wake */
    settle(&env);
    ck_assert_int_eq(g_polls_of[0], 2);
    ck_assert_int_eq(g_nwake, 0);
    ck_assert_uint_eq(env.ex->timers.n, 1);
    env.clk.now = t0 + 100 * US; /* 100 us after the FIRST poll */
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_uint_eq(g_woke_at[0], t0 + 100 * US);
    cw_waker_free(g_parked);
    g_parked = NULL;
    tenv_free(&env);
}
END_TEST

/* Ends at once, having advanced the fake clock by *state ns. */
static cw_poll advance_poll(void *state, cw_cx *cx)
{
    (void)cx;
    g_clk->now += *(uint64_t *)state;
    return CW_READY;
}

START_TEST(a_task_polled_after_its_deadline_is_ready_before_the_heap_sees_it)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    g_parked = NULL;
    uint64_t t0 = env.clk.now;
    sleeper s = {.id = 0};
    cw_sleep_init(&s.sleep, 100 * US);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), parked_sleeper_poll, &s, sizeof s,
                              sleeper_drop, NULL),
                     0);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 1);
    /* next round: starts at t0 (nothing due), a task moves the clock to
     * the deadline, then the sleeper (woken by someone else) is polled */
    uint64_t step = 100 * US;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), advance_poll, &step, sizeof step,
                              NULL, NULL),
                     0);
    cw_waker_wake_by_ref(g_parked);
    struct cw_executor_stats st0, st1;
    cw_executor_stats(env.ex, &st0);
    settle(&env);
    cw_executor_stats(env.ex, &st1);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_int_eq(g_polls_of[0], 2);
    ck_assert_uint_eq(g_woke_at[0], t0 + 100 * US);
    ck_assert_uint_eq(st1.wakes_local, st0.wakes_local); /* the heap woke no one */
    ck_assert_uint_eq(env.ex->timers.n, 0);              /* the poll took it out */
    ck_assert(!env.ex->timers.armed);
    cw_waker_free(g_parked);
    g_parked = NULL;
    tenv_free(&env);
}
END_TEST

/* ---- dropping --------------------------------------------------------------- */

/* A timeout: waits on a short sleep; when it fires, drops the long one. */
typedef struct race {
    cw_sleep quick, slow;
    uint64_t heap_before, heap_after;
} race;

static cw_poll race_poll(void *state, cw_cx *cx)
{
    race *r = state;
    cw_executor *ex = cw_cx_executor(cx);
    cw_poll slow = cw_sleep_poll(&r->slow, cx);
    ck_assert_int_eq(slow, CW_PENDING);
    if (cw_sleep_poll(&r->quick, cx) == CW_PENDING)
        return CW_PENDING;
    r->heap_before = ex->timers.n;
    cw_sleep_drop(&r->slow);
    r->heap_after = ex->timers.n;
    /* a dropped sleep is finished: ready, and not put back */
    ck_assert_int_eq(cw_sleep_poll(&r->slow, cx), CW_READY);
    ck_assert_uint_eq(ex->timers.n, r->heap_after);
    return CW_READY;
}

static void race_drop(void *state)
{
    race *r = state;
    g_drops++;
    cw_sleep_drop(&r->quick);
    cw_sleep_drop(&r->slow);
}

START_TEST(a_dropped_sleep_leaves_the_heap_at_once_and_never_fires)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    race r = {0};
    cw_sleep_init(&r.quick, 10 * US);
    cw_sleep_init(&r.slow, 50 * US);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), race_poll, &r, sizeof r, race_drop, &j), 0);
    /* a bystander on the same heap, due after the slow one */
    spawn_until(&env, 0, t0 + 60 * US, 0, NULL);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 3);
    env.clk.now = t0 + 20 * US;
    fire_timer(&env);
    ck_assert_int_eq(cw_join_status(j), 0);
    race *out = cw_join_state(j);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out->heap_before, 2); /* quick fired; slow + bystander */
    ck_assert_uint_eq(out->heap_after, 1);  /* slow left at once */
    ck_assert_uint_eq(env.ex->timers.n, 1);
    cw__timers_check(env.ex);
    /* the slow deadline passes: nothing fires for it; the bystander does */
    env.clk.now = t0 + 55 * US;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 0);
    env.clk.now = t0 + 60 * US;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_int_eq(g_drops, 1); /* the bystander's, at completion */
    cw_join_free(j); /* drops the finished state: drop on finished sleeps */
    ck_assert_int_eq(g_drops, 2);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(drop_is_safe_twice_on_never_polled_and_on_finished_sleeps)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    cw_sleep never;
    cw_sleep_init(&never, 5 * US);
    cw_sleep_drop(&never);
    cw_sleep_drop(&never);
    cw_join *j[3];
    for (int i = 0; i < 3; i++)
        spawn_until(&env, i, t0 + (uint64_t)(i + 1) * 10 * US, 0, &j[i]);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 3);
    /* drop the middle one twice, from outside its task */
    cw_sleep_drop(g_sleep_of[1]);
    ck_assert_uint_eq(env.ex->timers.n, 2);
    cw__timers_check(env.ex);
    cw_sleep_drop(g_sleep_of[1]);
    ck_assert_uint_eq(env.ex->timers.n, 2);
    env.clk.now = t0 + 30 * US;
    fire_timer(&env);
    ck_assert_int_eq(g_nwake, 2);
    ck_assert_int_eq(g_wake_log[0], 0);
    ck_assert_int_eq(g_wake_log[1], 2);
    /* finished sleeps (in the joined states): drop is a no-op */
    cw_sleep_drop(g_sleep_of[0]);
    cw_sleep_drop(g_sleep_of[0]);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    /* the dropped one never woke */
    ck_assert_int_eq(cw_join_status(j[1]), -EAGAIN);
    ck_assert_int_eq(g_polls_of[1], 1);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    for (int i = 0; i < 3; i++)
        cw_join_free(j[i]);
    ck_assert_int_eq(g_drops, 2); /* j[1] detached, still alive */
    tenv_free(&env);              /* cancels it: its drop runs */
    ck_assert_int_eq(g_drops, 3);
}
END_TEST

START_TEST(abort_while_sleeping_removes_the_timer_and_nothing_fires_later)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    uint64_t t0 = env.clk.now;
    cw_join *j;
    spawn_until(&env, 0, t0 + 10 * US, 0, &j);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 1);
    ck_assert(env.ex->timers.armed);
    cw_join_abort(j);
    ck_assert_int_eq(g_drops, 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    ck_assert(!env.ex->timers.armed);
    cw_join_free(j); /* the task block goes now (valgrind: nothing points at it) */
    env.clk.now = t0 + 1000 * US;
    /* nothing is left in the base: the timer was deleted, so the loop has
     * no event at all and returns 1 at once instead of blocking */
    ck_assert_int_eq(tenv_run_once(&env), 1);
    ck_assert_int_eq(g_nwake, 0);
    ck_assert_int_eq(g_polls_of[0], 1);
    tenv_free(&env);
}
END_TEST

START_TEST(executor_free_with_sleeping_tasks_drops_them_all)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    cw_join *j[10];
    for (int i = 0; i < 10; i++)
        spawn_for(&env, i, (uint64_t)(i + 1) * US, i % 2 ? &j[i] : NULL);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 10);
    tenv_free(&env);
    ck_assert_int_eq(g_drops, 10);
    for (int i = 1; i < 10; i += 2) {
        ck_assert_int_eq(cw_join_status(j[i]), -ECANCELED);
        cw_join_free(j[i]);
    }
}
END_TEST

/* A task whose drop function forgets its sleep. */
static cw_poll forgetful_poll(void *state, cw_cx *cx)
{
    sleeper *s = state;
    g_sleep_of[s->id] = &s->sleep;
    return cw_sleep_poll(&s->sleep, cx);
}

START_TEST(executor_free_detaches_sleeps_a_drop_function_forgot)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    cw_join *j;
    sleeper s = {.id = 0};
    cw_sleep_init(&s.sleep, 10 * US);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), forgetful_poll, &s, sizeof s, NULL, &j), 0);
    sleeper s2 = {.id = 1}; /* detached: only the heap's waker keeps it */
    cw_sleep_init(&s2.sleep, 20 * US);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), forgetful_poll, &s2, sizeof s2, NULL, NULL), 0);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 2);
    cw_sleep *left = g_sleep_of[0]; /* in the block the join handle keeps */
    tenv_free(&env);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_ptr_null(left->cw__ex); /* detached */
    ck_assert_ptr_null(left->cw__waker);
    cw_sleep_drop(left); /* a no-op now, not a write into a freed heap */
    cw_join_free(j);
}
END_TEST

/* ---- the heap under random inserts and removals ----------------------------- */

#define POOL 257
static cw_sleep g_pool[POOL];
static bool g_pending[POOL];
static uint64_t g_pool_dl[POOL];
static int g_rounds_left;
static uint64_t g_inserted, g_removed, g_fired;

static uint64_t count_pending(void)
{
    uint64_t n = 0;
    for (int i = 0; i < POOL; i++)
        n += g_pending[i];
    return n;
}

static cw_poll stress_poll(void *state, cw_cx *cx)
{
    (void)state;
    cw_executor *ex = cw_cx_executor(cx);
    uint64_t now = cw_executor_now(ex);

    /* every pending sleep: ready exactly when its deadline has passed */
    for (int i = 0; i < POOL; i++) {
        if (!g_pending[i])
            continue;
        cw_poll r = cw_sleep_poll(&g_pool[i], cx);
        ck_assert_int_eq(r == CW_READY, g_pool_dl[i] <= now);
        if (r == CW_READY) {
            g_pending[i] = false;
            g_fired++;
        }
    }
    ck_assert_uint_eq(ex->timers.n, count_pending());
    cw__timers_check(ex);

    if (g_rounds_left-- == 0) {
        for (int i = 0; i < POOL; i++)
            cw_sleep_drop(&g_pool[i]);
        return CW_READY;
    }
    for (int k = 0; k < 60; k++) {
        int i = (int)(rnd() % POOL);
        if (g_pending[i] && rnd() % 2) {
            cw_sleep_drop(&g_pool[i]);
            g_pending[i] = false;
            g_removed++;
        } else if (!g_pending[i]) {
            uint64_t d = now + rnd() % (200 * US);
            if (rnd() % 4 == 0)
                d = now + (rnd() % 4) * US; /* ties and ones due at once */
            if (rnd() % 2)
                cw_sleep_init_until(&g_pool[i], d);
            else
                cw_sleep_init(&g_pool[i], d - now);
            g_pool_dl[i] = d;
            g_pending[i] = cw_sleep_poll(&g_pool[i], cx) == CW_PENDING;
            ck_assert_int_eq(g_pending[i], d > now);
            g_inserted += g_pending[i];
        }
        ck_assert_uint_eq(ex->timers.n, count_pending());
        cw__timers_check(ex);
    }
    if (!count_pending()) /* no sleep to wake us: come back */
        cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(heap_invariant_holds_after_random_inserts_and_removes)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    g_rng = 12345;
    memset(g_pending, 0, sizeof g_pending);
    for (int i = 0; i < POOL; i++)
        cw_sleep_init(&g_pool[i], 0);
    g_rounds_left = 150;
    g_inserted = g_removed = g_fired = 0;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), stress_poll, NULL, 0, NULL, &j), 0);
    for (int guard = 0; cw_join_status(j) == -EAGAIN; guard++) {
        ck_assert_int_lt(guard, 100000);
        env.clk.now += rnd() % (60 * US);
        if (env.ex->timers.n)
            fire_timer(&env);
        else
            settle(&env);
    }
    ck_assert_int_eq(cw_join_status(j), 0);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    ck_assert(!env.ex->timers.armed);
    /* the run really exercised all three operations */
    ck_assert_uint_gt(g_inserted, 1000);
    ck_assert_uint_gt(g_removed, 300);
    ck_assert_uint_gt(g_fired, 300);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* ---- the real loop, real clock ------------------------------------------------- */

START_TEST(dispatch_returns_once_all_sleeping_tasks_finished)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 0);
    reset(&env);
    g_clk = NULL;
    uint64_t t0 = cw_executor_now(env.ex);
    const uint64_t d[6] = {3 * MS, 1 * MS, 0, 2 * MS, 1500 * US, 500 * US};
    for (int i = 0; i < 6; i++)
        spawn_until(&env, i, t0 + d[i], 0, NULL);
    spawn_for(&env, 6, 1 * MS, NULL); /* relative, on the real clock */
    ck_assert_int_eq(tenv_dispatch(&env), 1); /* 1: no events left */
    ck_assert_int_eq(g_nwake, 7);
    ck_assert_uint_eq(live_tasks(&env), 0);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    ck_assert(!env.ex->timers.armed);
    /* The absolute ones that went to the heap woke in deadline order.
     * (On a slow machine, say under valgrind, some deadlines pass before
     * the first poll: those are ready at once, in poll order. How many
     * did is timing; the order of the others is not.) */
    int last = -1;
    for (int w = 0; w < g_nwake; w++) {
        int id = g_wake_log[w];
        bool heaped = false;
        for (int r = 0; r < g_nreg; r++)
            heaped |= g_reg_log[r] == id;
        if (id == 6 || !heaped)
            continue;
        if (last >= 0)
            ck_assert_uint_lt(d[last], d[id]);
        last = id;
    }
    /* each saw its deadline pass */
    for (int i = 0; i < 6; i++)
        ck_assert_uint_ge(g_woke_at[i], t0 + d[i]);
    ck_assert_uint_ge(g_woke_at[6], t0 + 1 * MS);
    tenv_free(&env);
}
END_TEST

START_TEST(run_until_returns_when_the_sleep_ends)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 0);
    reset(&env);
    cw_join *j;
    uint64_t t0 = cw_executor_now(env.ex);
    spawn_for(&env, 0, 1 * MS, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(g_nwake, 1);
    ck_assert_uint_ge(g_woke_at[0], t0 + 1 * MS);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* ---- odd arguments -------------------------------------------------------------- */

static int g_null_checks;

static cw_poll null_poll(void *state, cw_cx *cx)
{
    cw_sleep *s = state;
    ck_assert_int_eq(cw_sleep_poll(NULL, cx), CW_READY);
    ck_assert_int_eq(cw_sleep_poll(s, NULL), CW_READY);
    cw_sleep zero;
    memset(&zero, 0, sizeof zero); /* zeroed, never initialised: ready */
    ck_assert_int_eq(cw_sleep_poll(&zero, cx), CW_READY);
    ck_assert_uint_eq(cw_cx_executor(cx)->timers.n, 0);
    g_null_checks++;
    return CW_READY;
}

START_TEST(null_arguments_are_no_ops_and_polls_never_hang)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    cw_sleep_init(NULL, 5);
    cw_sleep_init_until(NULL, 5);
    cw_sleep_drop(NULL);
    g_null_checks = 0;
    cw_sleep s;
    cw_sleep_init(&s, 10 * US);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), null_poll, &s, sizeof s, NULL, NULL), 0);
    settle(&env);
    ck_assert_int_eq(g_null_checks, 1);
    /* a cx outside any poll */
    cw_cx outside = {env.ex, NULL};
    ck_assert_int_eq(cw_sleep_poll(&s, &outside), CW_READY);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(a_sleep_of_uint64_max_saturates_and_never_fires)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    reset(&env);
    cw_join *j;
    spawn_for(&env, 0, UINT64_MAX, &j);
    settle(&env);
    ck_assert_uint_eq(env.ex->timers.n, 1);
    ck_assert_uint_eq(env.ex->timers.heap[0]->cw__when, UINT64_MAX);
    env.clk.now = UINT64_MAX - 1; /* (the real timer is armed a day ahead) */
    run_round(&env);
    ck_assert_int_eq(g_nwake, 0);
    cw_join_abort(j);
    ck_assert_uint_eq(env.ex->timers.n, 0);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("time");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sleepers_wake_in_deadline_order);
    tcase_add_test(tc, equal_deadlines_wake_fifo_in_registration_order);
    tcase_add_test(tc, thousand_sleepers_with_random_deadlines_wake_in_sorted_order);
    tcase_add_test(tc, sleep_of_zero_is_ready_at_first_poll);
    tcase_add_test(tc, only_sleepers_whose_deadline_passed_wake);
    tcase_add_test(tc, a_round_start_wakes_due_sleepers_without_the_timer);
    tcase_add_test(tc, due_sleepers_queue_before_a_task_that_becomes_runnable_after_them);
    tcase_add_test(tc, a_hook_that_ends_the_task_being_queued_during_the_catch_up);
    tcase_add_test(tc, polling_again_before_the_deadline_keeps_the_first_deadline);
    tcase_add_test(tc, a_task_polled_after_its_deadline_is_ready_before_the_heap_sees_it);
    tcase_add_test(tc, a_dropped_sleep_leaves_the_heap_at_once_and_never_fires);
    tcase_add_test(tc, drop_is_safe_twice_on_never_polled_and_on_finished_sleeps);
    tcase_add_test(tc, abort_while_sleeping_removes_the_timer_and_nothing_fires_later);
    tcase_add_test(tc, executor_free_with_sleeping_tasks_drops_them_all);
    tcase_add_test(tc, executor_free_detaches_sleeps_a_drop_function_forgot);
    tcase_add_test(tc, heap_invariant_holds_after_random_inserts_and_removes);
    tcase_add_test(tc, dispatch_returns_once_all_sleeping_tasks_finished);
    tcase_add_test(tc, run_until_returns_when_the_sleep_ends);
    tcase_add_test(tc, null_arguments_are_no_ops_and_polls_never_hang);
    tcase_add_test(tc, a_sleep_of_uint64_max_saturates_and_never_fires);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
