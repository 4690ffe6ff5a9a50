/* check_panic.c - cw_panic(): caught (catch_panics on), the task ends with
 * CW_EPANIC, its message and a single drop, and the executor goes on;
 * not caught (the default), or without a live poll, the process prints the
 * message and aborts (checked in a fork()ed child). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

enum { Q = 1, Q2 = 2 };

/* ---- helpers ------------------------------------------------------------ */

static cw_config *catching_cfg(bool catch_panics)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q2, 3), 0);
    if (catch_panics)
        cw_config_set_catch_panics(cfg, true);
    return cfg;
}

/* What the tests observe of a task, outside its state. */
typedef struct obs {
    int polls;
    int drops;
    int after_panic; /* code after cw_panic() ran (must stay 0) */
    int yields;      /* polls that yield before the one that acts */
    cw_waker *parked;
} obs;

static void obs_drop(void *state)
{
    (*(obs **)state)->drops++;
}

/* Yields o->yields times, then panics with "boom 42". */
static cw_poll boom_poll(void *state, cw_cx *cx)
{
    obs *o = *(obs **)state;
    if (++o->polls <= o->yields) {
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    cw_panic(cx, "boom %d", 42);
}

/* Yields o->yields times, then completes. */
static cw_poll plain_poll(void *state, cw_cx *cx)
{
    obs *o = *(obs **)state;
    if (++o->polls <= o->yields) {
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

static cw_join *spawn_obs(cw_queue *q, cw_poll_fn fn, obs *o)
{
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(q, fn, &o, sizeof o, obs_drop, &j), 0);
    return j;
}

/* Run fn in a fork()ed child whose stderr goes to a pipe; expect the child
 * to die of SIGABRT having written needle to stderr. */
static void expect_abort_in_child(void (*fn)(void), const char *needle)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none); /* no core file */
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(3);
        close(fds[1]);
        fn();
        _exit(2); /* fn returned: no abort */
    }
    close(fds[1]);
    char buf[8192];
    int status;
    pid_t w;
    collect_child(pid, fds[0], buf, sizeof buf, &status, &w);
    ck_assert_int_eq(w, pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child not killed by SIGABRT (status 0x%x, stderr: %s)", status, buf);
    ck_assert_msg(strstr(buf, needle) != NULL, "stderr \"%s\" lacks \"%s\"", buf, needle);
}

/* ---- caught panics ------------------------------------------------------ */

START_TEST(caught_panic_ends_task_with_epanic_message_and_one_drop)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    obs o = {.yields = 2};
    cw_join *j = spawn_obs(q, boom_poll, &o);

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), CW_EPANIC);
    ck_assert_int_eq(cw_join_status(j), CW_EPANIC);
    ck_assert_str_eq(cw_join_panic_message(j), "boom 42");
    ck_assert_ptr_null(cw_join_state(j));
    ck_assert_int_eq(o.polls, 3);
    ck_assert_int_eq(o.drops, 1);

    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_panicked, 1);
    ck_assert_uint_eq(st.tasks_completed, 0);
    ck_assert_uint_eq(st.tasks_cancelled, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(st.polls, 3);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q, &qs), 0);
    ck_assert_uint_eq(qs.tasks_panicked, 1);
    ck_assert_uint_eq(qs.runnable, 0);

    /* the message stays readable, the drop does not run again */
    tenv_turn(&env);
    ck_assert_str_eq(cw_join_panic_message(j), "boom 42");
    cw_join_abort(j); /* ended: does nothing */
    ck_assert_int_eq(cw_join_status(j), CW_EPANIC);
    cw_join_free(j);
    ck_assert_int_eq(o.drops, 1);
    tenv_free(&env);
    ck_assert_int_eq(o.drops, 1);
}
END_TEST

/* Spawns a child task on its own queue (behind itself), then panics: the
 * child runs on. */
typedef struct parent {
    obs *self;
    obs *child;
    cw_join **child_join;
} parent;

static void parent_drop(void *state)
{
    ((parent *)state)->self->drops++;
}

static cw_poll spawn_then_panic(void *state, cw_cx *cx)
{
    parent *p = state;
    p->self->polls++;
    ck_assert_int_eq(cw_spawn(cw_cx_queue(cx), plain_poll, &p->child, sizeof p->child,
                              obs_drop, p->child_join), 0);
    cw_panic(cx, "parent gave up after %s", "spawning");
}

START_TEST(caught_panic_lets_other_tasks_on_same_queue_run)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    cw_queue *q2 = cw_executor_queue(env.ex, Q2);
    obs before = {.yields = 3}, after = {.yields = 3}, other = {.yields = 3};
    obs bad = {.yields = 1}, child = {.yields = 1}, par = {0}, late = {.yields = 2};
    cw_join *jchild = NULL, *jpar;

    cw_join *jb = spawn_obs(q, plain_poll, &before);
    cw_join *jx = spawn_obs(q, boom_poll, &bad);
    parent pst = {.self = &par, .child = &child, .child_join = &jchild};
    ck_assert_int_eq(cw_spawn(q, spawn_then_panic, &pst, sizeof pst, parent_drop, &jpar), 0);
    cw_join *ja = spawn_obs(q, plain_poll, &after);
    cw_join *jo = spawn_obs(q2, plain_poll, &other);

    ck_assert_int_eq(cw_executor_run_until(env.ex, ja), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jb), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jo), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jx), CW_EPANIC);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jpar), CW_EPANIC);
    ck_assert_str_eq(cw_join_panic_message(jpar), "parent gave up after spawning");
    ck_assert_ptr_nonnull(jchild); /* the spawn made before the panic stands */
    ck_assert_int_eq(cw_executor_run_until(env.ex, jchild), 0);

    /* a task spawned after the panics, on the same queue */
    cw_join *jl = spawn_obs(q, plain_poll, &late);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jl), 0);

    ck_assert_int_eq(before.polls, 4);
    ck_assert_int_eq(after.polls, 4);
    ck_assert_int_eq(other.polls, 4);
    ck_assert_int_eq(child.polls, 2);
    ck_assert_int_eq(late.polls, 3);
    ck_assert_int_eq(bad.polls, 2);
    ck_assert_int_eq(par.polls, 1);
    ck_assert_int_eq(bad.drops, 1);
    ck_assert_int_eq(par.drops, 1);
    ck_assert_ptr_nonnull(cw_join_state(ja));
    ck_assert_ptr_null(cw_join_panic_message(ja));

    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_panicked, 2);
    ck_assert_uint_eq(st.tasks_completed, 5);
    ck_assert_uint_eq(st.tasks_live, 0);

    cw_join *all[] = {jb, jx, jpar, ja, jo, jchild, jl};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cw_join_free(all[i]);
    obs *os[] = {&before, &after, &other, &bad, &child, &par, &late};
    for (size_t i = 0; i < sizeof os / sizeof os[0]; i++)
        ck_assert_int_eq(os[i]->drops, 1);
    tenv_free(&env);
}
END_TEST

START_TEST(caught_panic_of_detached_task_drops_once_and_counts)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    obs o = {0}, next = {0};
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), boom_poll, &(obs *){&o},
                              sizeof(obs *), obs_drop, NULL), 0);
    cw_join *j = spawn_obs(cw_executor_queue(env.ex, Q), plain_poll, &next);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(o.polls, 1);
    ck_assert_int_eq(o.drops, 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_panicked, 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(o.drops, 1);
}
END_TEST

/* Parks a clone of its waker, wakes itself, then panics. */
static cw_poll park_wake_panic(void *state, cw_cx *cx)
{
    obs *o = *(obs **)state;
    o->polls++;
    o->parked = cw_waker_clone(cw_cx_waker(cx));
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    cw_panic(cx, "after waking myself");
}

START_TEST(panicked_task_is_not_polled_again_even_if_woken)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    obs o = {0};
    cw_join *j = spawn_obs(q, park_wake_panic, &o);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), CW_EPANIC);
    ck_assert_int_eq(o.polls, 1);
    cw_waker_wake_by_ref(o.parked);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(o.polls, 1);
    ck_assert_uint_eq(stats_of(env.ex).polls, 1);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    cw_waker_wake(o.parked);
    cw_join_free(j);
    ck_assert_int_eq(o.drops, 1);
    tenv_free(&env);
}
END_TEST

/* Awaits the join handle in its state; records the status it saw. */
typedef struct waiter {
    cw_join *target;
    int polls;
    int seen_status;
    const char *seen_msg_ok;
} waiter;

static cw_poll waiter_poll(void *state, cw_cx *cx)
{
    waiter *w = *(waiter **)state;
    w->polls++;
    if (cw_join_poll(w->target, cx) == CW_PENDING)
        return CW_PENDING;
    w->seen_status = cw_join_status(w->target);
    const char *m = cw_join_panic_message(w->target);
    w->seen_msg_ok = m && strcmp(m, "boom 42") == 0 ? "yes" : "no";
    return CW_READY;
}

START_TEST(panic_wakes_awaiting_task_which_sees_epanic)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    obs o = {.yields = 3};
    cw_join *jt = spawn_obs(cw_executor_queue(env.ex, Q), boom_poll, &o);
    waiter w = {.target = jt, .seen_status = 12345};
    waiter *wp = &w;
    cw_join *jw;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q2), waiter_poll, &wp, sizeof wp,
                              NULL, &jw), 0);

    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(w.seen_status, CW_EPANIC);
    ck_assert_str_eq(w.seen_msg_ok, "yes");
    ck_assert_int_eq(cw_join_status(jt), CW_EPANIC);
    ck_assert_int_eq(o.polls, 4);
    ck_assert_int_ge(w.polls, 2); /* it waited, and was woken */
    ck_assert_int_eq(o.drops, 1);

    cw_join_free(jw);
    cw_join_free(jt);
    tenv_free(&env);
}
END_TEST

/* cw_panic() six calls below the poll function. */
typedef struct deep {
    int reached;
    int returned; /* frames that ran past their call (must stay 0) */
    obs *o;
} deep;

/* Each level leaves a mark on the way down and one on the way back up
 * (which the unwinding must skip). */
#define LEVEL(name, next)                          \
    static void name(cw_cx *cx, deep *d)           \
    {                                              \
        volatile char frame[64];                   \
        frame[0] = 1;                              \
        d->reached++;                              \
        next;                                      \
        d->returned += frame[0];                   \
    }

LEVEL(level5, cw_panic(cx, "deep %d", d->reached))
LEVEL(level4, level5(cx, d))
LEVEL(level3, level4(cx, d))
LEVEL(level2, level3(cx, d))
LEVEL(level1, level2(cx, d))
LEVEL(level0, level1(cx, d))

static cw_poll deep_poll(void *state, cw_cx *cx)
{
    deep *d = *(deep **)state;
    d->o->polls++;
    level0(cx, d);
    d->o->after_panic++;
    return CW_READY;
}

START_TEST(panic_nested_deep_in_poll_unwinds_to_poll_boundary)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    obs o = {0}, next = {.yields = 2};
    deep d = {.o = &o};
    deep *dp = &d;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), deep_poll, &dp, sizeof dp,
                              NULL, &j), 0);
    cw_join *jn = spawn_obs(cw_executor_queue(env.ex, Q), plain_poll, &next);

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), CW_EPANIC);
    ck_assert_str_eq(cw_join_panic_message(j), "deep 6");
    ck_assert_int_eq(d.reached, 6);
    ck_assert_int_eq(d.returned, 0);
    ck_assert_int_eq(o.after_panic, 0);
    ck_assert_int_eq(o.polls, 1);
    /* the executor (and its stack) are fine afterwards */
    ck_assert_int_eq(cw_executor_run_until(env.ex, jn), 0);
    ck_assert_int_eq(next.polls, 3);

    cw_join_free(j);
    cw_join_free(jn);
    tenv_free(&env);
}
END_TEST

static cw_poll panic_with_text(void *state, cw_cx *cx)
{
    cw_panic(cx, "%s", *(const char **)state);
}

START_TEST(long_panic_message_is_kept_whole)
{
    tenv env;
    tenv_init(&env, catching_cfg(true), 1);
    char *want = malloc(10001);
    ck_assert_ptr_nonnull(want);
    for (int i = 0; i < 10000; i++)
        want[i] = (char)('a' + i % 26);
    want[10000] = '\0';
    const char *text = want;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), panic_with_text, &text,
                              sizeof text, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), CW_EPANIC);
    want[0] = 'Z'; /* the message is the executor's copy */
    const char *got = cw_join_panic_message(j);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), 10000);
    ck_assert_int_eq(got[0], 'a');
    ck_assert_int_eq(memcmp(got + 1, want + 1, 9999), 0);
    cw_join_free(j);
    free(want);
    tenv_free(&env);
}
END_TEST

/* ---- panics that abort ---------------------------------------------------- */

/* Child side: plain API calls, no Check assertions (a failure must not
 * return into the test runner); setup failures exit with status 1. */
static void child_run_boom(bool catch_panics, bool nested)
{
    cw_config *cfg = cw_config_new();
    struct event_base *base = event_base_new();
    cw_executor *ex;
    if (!cfg || !base || cw_config_add_queue(cfg, Q, 1) < 0)
        _exit(1);
    cw_config_set_catch_panics(cfg, catch_panics);
    if (cw_executor_new(base, cfg, &ex) < 0)
        _exit(1);
    cw_config_free(cfg);
    obs o = {.yields = 1}, *op = &o;
    deep d = {.o = &o}, *dp = &d;
    cw_join *j;
    int err = nested ? cw_spawn(cw_executor_queue(ex, Q), deep_poll, &dp, sizeof dp, NULL, &j)
                     : cw_spawn(cw_executor_queue(ex, Q), boom_poll, &op, sizeof op, NULL, &j);
    if (err < 0)
        _exit(1);
    cw_executor_run_until(ex, j);
    _exit(2); /* not reached when the panic aborts */
}

static void child_uncaught_boom(void)
{
    child_run_boom(false, false);
}

static void child_uncaught_deep(void)
{
    child_run_boom(false, true);
}

static void child_null_cx(void)
{
    cw_panic(NULL, "no cx %s", "here");
}

/* Keeps its cx past the poll. */
static cw_poll keep_cx(void *state, cw_cx *cx)
{
    *(cw_cx **)state = cx;
    return CW_READY;
}

static void child_stale_cx(void)
{
    cw_config *cfg = cw_config_new();
    struct event_base *base = event_base_new();
    cw_executor *ex;
    if (!cfg || !base || cw_config_add_queue(cfg, Q, 1) < 0)
        _exit(1);
    cw_config_set_catch_panics(cfg, true); /* even so: no poll to unwind to */
    if (cw_executor_new(base, cfg, &ex) < 0)
        _exit(1);
    cw_config_free(cfg);
    cw_cx *none = NULL;
    cw_join *j;
    if (cw_spawn(cw_executor_queue(ex, Q), keep_cx, &none, sizeof none, NULL, &j) < 0
        || cw_executor_run_until(ex, j) != 0)
        _exit(1);
    cw_cx *stale = *(cw_cx **)cw_join_state(j);
    if (!stale)
        _exit(1);
    cw_panic(stale, "stale cx %d", 7);
}

START_TEST(uncaught_panic_prints_message_and_aborts)
{
    expect_abort_in_child(child_uncaught_boom, "boom 42");
}
END_TEST

START_TEST(uncaught_panic_deep_in_poll_prints_message_and_aborts)
{
    expect_abort_in_child(child_uncaught_deep, "deep 6");
}
END_TEST

START_TEST(panic_with_null_cx_prints_message_and_aborts)
{
    expect_abort_in_child(child_null_cx, "no cx here");
}
END_TEST

START_TEST(panic_with_cx_of_returned_poll_aborts_even_when_catching)
{
    expect_abort_in_child(child_stale_cx, "stale cx 7");
}
END_TEST

/* ---- error text ------------------------------------------------------------ */

START_TEST(strerror_of_epanic_is_meaningful)
{
    const char *s = cw_strerror(CW_EPANIC);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt(strlen(s), 0);
    ck_assert_str_ne(s, "unknown error");
    ck_assert_str_ne(s, cw_strerror(-ECANCELED));
    ck_assert_str_eq(cw_err_name(CW_EPANIC), "EPANIC");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("panic");
    TCase *tc = tcase_create("panic");
    tcase_add_test(tc, caught_panic_ends_task_with_epanic_message_and_one_drop);
    tcase_add_test(tc, caught_panic_lets_other_tasks_on_same_queue_run);
    tcase_add_test(tc, caught_panic_of_detached_task_drops_once_and_counts);
    tcase_add_test(tc, panicked_task_is_not_polled_again_even_if_woken);
    tcase_add_test(tc, panic_wakes_awaiting_task_which_sees_epanic);
    tcase_add_test(tc, panic_nested_deep_in_poll_unwinds_to_poll_boundary);
    tcase_add_test(tc, long_panic_message_is_kept_whole);
    tcase_add_test(tc, uncaught_panic_prints_message_and_aborts);
    tcase_add_test(tc, uncaught_panic_deep_in_poll_prints_message_and_aborts);
    tcase_add_test(tc, panic_with_null_cx_prints_message_and_aborts);
    tcase_add_test(tc, panic_with_cx_of_returned_poll_aborts_even_when_catching);
    tcase_add_test(tc, strerror_of_epanic_is_meaningful);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
