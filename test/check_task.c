/* check_task.c - spawning tasks: the state is copied, queues are FIFO,
 * spawning from a task defers the child, bad arguments change nothing,
 * drop functions run exactly once at the documented moment, task memory
 * is reused and counted, and freeing the executor cancels everything. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { Q1 = 1, Q2 = 2 };

/* A config with one queue (Q1). */
static cw_config *cfg_one(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q1, 1), 0);
    return cfg;
}

/* A config with two queues of equal weight (Q1, Q2). */
static cw_config *cfg_two(void)
{
    cw_config *cfg = cfg_one();
    ck_assert_int_eq(cw_config_add_queue(cfg, Q2, 1), 0);
    return cfg;
}

/* ---- a generic counting task ------------------------------------------- */

/* Polls and drops are counted per task id in these arrays; the poll order
 * goes to g_log. */
#define MAXT 64
static int g_polls[MAXT];
static int g_drops[MAXT];
static int g_log[256];
static int g_nlog;
static int g_polled_after_drop;

struct ctask {
    int id;
    int yields;   /* times to wake itself and return PENDING first */
    int in, out;  /* out = in * 2 when done */
};

static void ctask_drop(void *p)
{
    struct ctask *s = p;
    g_drops[s->id]++;
}

static cw_poll ctask_poll(void *p, cw_cx *cx)
{
    struct ctask *s = p;
    if (g_drops[s->id])
        g_polled_after_drop++;
    g_polls[s->id]++;
    g_log[g_nlog++] = s->id;
    if (s->yields > 0) {
        s->yields--;
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    s->out = s->in * 2;
    return CW_READY;
}

static void spawn_ctask(cw_queue *q, int id, int yields, cw_join **join)
{
    struct ctask s = {.id = id, .yields = yields, .in = id, .out = 0};
    ck_assert_int_eq(cw_spawn(q, ctask_poll, &s, sizeof s, ctask_drop, join), 0);
}

/* A task that returns PENDING without arranging any wake. */
static cw_poll stuck_poll(void *p, cw_cx *cx)
{
    struct ctask *s = p;
    (void)cx;
    g_polls[s->id]++;
    return CW_PENDING;
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(spawned_task_completes_and_join_state_holds_its_output)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct ctask orig = {.id = 1, .yields = 0, .in = 21, .out = 0};
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(q, ctask_poll, &orig, sizeof orig, ctask_drop, &j), 0);
    ck_assert_ptr_nonnull(j);
    /* the task owns a copy: changing the original now must not matter */
    orig.in = 999;
    orig.id = 2;

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(cw_join_status(j), 0);
    struct ctask *st = cw_join_state(j);
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_ne(st, &orig);
    ck_assert_int_eq(st->id, 1);
    ck_assert_int_eq(st->in, 21);
    ck_assert_int_eq(st->out, 42);
    ck_assert_int_eq(orig.out, 0); /* the original was not written either */
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_polls[2], 0);
    cw_join_free(j);
    ck_assert_int_eq(g_drops[1], 1);
    tenv_free(&env);
}
END_TEST

START_TEST(tasks_on_one_queue_are_first_polled_in_spawn_order)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    const int n = 20;
    for (int i = 0; i < n; i++)
        spawn_ctask(q, i, 0, NULL);
    tenv_turn(&env);
    ck_assert_int_eq(g_nlog, n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(g_log[i], i);
    tenv_free(&env);
}
END_TEST

START_TEST(yielding_task_goes_to_tail_behind_the_others)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j0;
    spawn_ctask(q, 0, 1, &j0); /* yields once */
    spawn_ctask(q, 1, 0, NULL);
    spawn_ctask(q, 2, 0, NULL);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j0), 0);
    ck_assert_int_eq(g_nlog, 4);
    ck_assert_int_eq(g_log[0], 0);
    ck_assert_int_eq(g_log[1], 1);
    ck_assert_int_eq(g_log[2], 2);
    ck_assert_int_eq(g_log[3], 0);
    ck_assert_int_eq(g_polls[0], 2);
    cw_join_free(j0);
    tenv_free(&env);
}
END_TEST

/* A parent that spawns one child on a chosen queue (its own when NULL). */
static bool g_in_spawn;
static int g_child_ran_in_spawn;
static int g_spawn_err = 12345;

struct parent {
    int id;
    cw_queue *target; /* NULL: cw_cx_queue(cx) */
};

static cw_poll child_poll(void *p, cw_cx *cx)
{
    struct ctask *s = p;
    (void)cx;
    if (g_in_spawn)
        g_child_ran_in_spawn++;
    g_polls[s->id]++;
    g_log[g_nlog++] = s->id;
    return CW_READY;
}

static cw_poll parent_poll(void *p, cw_cx *cx)
{
    struct parent *s = p;
    g_polls[s->id]++;
    g_log[g_nlog++] = s->id;
    cw_queue *q = s->target ? s->target : cw_cx_queue(cx);
    struct ctask c = {.id = s->id + 10};
    g_in_spawn = true;
    g_spawn_err = cw_spawn(q, child_poll, &c, sizeof c, ctask_drop, NULL);
    g_in_spawn = false;
    /* not run inside the call */
    if (g_polls[c.id] != 0)
        g_child_ran_in_spawn++;
    return CW_READY;
}

START_TEST(spawn_from_task_on_own_queue_runs_child_later_behind_siblings)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct parent p = {.id = 1, .target = NULL};
    ck_assert_int_eq(cw_spawn(q, parent_poll, &p, sizeof p, NULL, NULL), 0);
    spawn_ctask(q, 2, 0, NULL); /* a sibling queued behind the parent */
    for (int i = 0; i < 4; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_spawn_err, 0);
    ck_assert_int_eq(g_child_ran_in_spawn, 0);
    ck_assert_int_eq(g_polls[11], 1);
    ck_assert_int_eq(g_drops[11], 1);
    /* parent, then the sibling already queued, then the child */
    ck_assert_int_eq(g_nlog, 3);
    ck_assert_int_eq(g_log[0], 1);
    ck_assert_int_eq(g_log[1], 2);
    ck_assert_int_eq(g_log[2], 11);
    tenv_free(&env);
}
END_TEST

START_TEST(spawn_from_task_on_other_queue_runs_child_later)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_queue *q1 = cw_executor_queue(env.ex, Q1);
    cw_queue *q2 = cw_executor_queue(env.ex, Q2);
    struct parent p = {.id = 1, .target = q2};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q1, parent_poll, &p, sizeof p, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(g_spawn_err, 0);
    for (int i = 0; i < 4 && g_polls[11] == 0; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_child_ran_in_spawn, 0);
    ck_assert_int_eq(g_polls[11], 1);
    ck_assert_int_eq(g_drops[11], 1);
    ck_assert_int_eq(g_nlog, 2);
    ck_assert_int_eq(g_log[0], 1);
    ck_assert_int_eq(g_log[1], 11);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q2, &qs), 0);
    ck_assert_uint_eq(qs.tasks_spawned, 1);
    ck_assert_uint_eq(qs.tasks_completed, 1);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* Was issue 17: the NULL cw_executor_queue() gives for an unknown id
 * made cw_spawn() answer -EINVAL, not the "no such queue" code. */
START_TEST(spawn_on_an_unknown_queue_id_is_enoent_and_spawns_nothing)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct ctask s = {.id = 1};
    int sentinel;
    cw_join *const mark = (cw_join *)&sentinel;
    cw_join *j = mark;
    uint64_t before = stats_of(env.ex).tasks_spawned;

    cw_queue *q = cw_executor_queue(env.ex, Q1 + 1000);
    ck_assert_ptr_null(q);
    ck_assert_int_eq(cw_spawn(q, ctask_poll, &s, sizeof s, ctask_drop, &j), -ENOENT);
    ck_assert_ptr_eq(j, mark);
    ck_assert_int_eq(cw_spawn(q, ctask_poll, &s, sizeof s, NULL, NULL), -ENOENT);
    ck_assert_str_eq(cw_strerror(-ENOENT), "no such queue");
    ck_assert_uint_eq(stats_of(env.ex).tasks_spawned, before);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(spawn_bad_arguments_is_einval_and_join_untouched)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct ctask s = {.id = 1};
    int sentinel;
    cw_join *const mark = (cw_join *)&sentinel;
    cw_join *j = mark;

    ck_assert_int_eq(cw_spawn(q, NULL, &s, sizeof s, ctask_drop, &j), -EINVAL);
    ck_assert_ptr_eq(j, mark);
    ck_assert_int_eq(cw_spawn(q, ctask_poll, NULL, sizeof s, ctask_drop, &j), -EINVAL);
    ck_assert_ptr_eq(j, mark);
    ck_assert_int_eq(cw_spawn(q, ctask_poll, &s, SIZE_MAX, ctask_drop, &j), -EINVAL);
    ck_assert_ptr_eq(j, mark);
    /* detached variants fail the same way */
    ck_assert_int_eq(cw_spawn(q, NULL, &s, sizeof s, ctask_drop, NULL), -EINVAL);

    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 0);
    ck_assert_int_eq(g_drops[1], 0);
    st = stats_of(env.ex);
    ck_assert_uint_eq(st.polls, 0);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 0);
}
END_TEST

static void *g_zero_state = &g_zero_state; /* overwritten by the poll */
static int g_zero_polls;

static cw_poll zero_poll(void *p, cw_cx *cx)
{
    (void)cx;
    g_zero_state = p;
    g_zero_polls++;
    return CW_READY;
}

START_TEST(spawn_size_zero_null_state_polls_with_non_null_pointer)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(q, zero_poll, NULL, 0, NULL, &j), 0);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(g_zero_polls, 1);
    ck_assert_ptr_ne(g_zero_state, &g_zero_state);
    ck_assert_ptr_nonnull(g_zero_state);
    ck_assert_uint_eq((uintptr_t)g_zero_state % alignof(max_align_t), 0);
    ck_assert_ptr_nonnull(cw_join_state(j));
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* ---- spawning while the executor is freed ------------------------------- */

struct spawner_on_drop {
    int id;
    cw_queue *q;
};

static int g_shutdown_err = 12345;
static cw_join *g_shutdown_join;

static void spawner_drop(void *p)
{
    struct spawner_on_drop *s = p;
    struct ctask c = {.id = 30};
    g_drops[s->id]++;
    g_shutdown_err = cw_spawn(s->q, ctask_poll, &c, sizeof c, ctask_drop, &g_shutdown_join);
}

START_TEST(spawn_from_drop_during_executor_free_is_eshutdown)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    int sentinel;
    cw_join *const mark = (cw_join *)&sentinel;
    g_shutdown_join = mark;
    struct spawner_on_drop s = {.id = 1, .q = q};
    /* never polled: it is still queued when the executor is freed */
    ck_assert_int_eq(cw_spawn(q, stuck_poll, &s, sizeof s, spawner_drop, NULL), 0);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_shutdown_err, -ESHUTDOWN);
    ck_assert_ptr_eq(g_shutdown_join, mark);
    /* the refused task never existed: never polled, never dropped */
    ck_assert_int_eq(g_polls[30], 0);
    ck_assert_int_eq(g_drops[30], 0);
}
END_TEST

/* ---- spawning from another thread ---------------------------------------- */

struct thread_arg {
    cw_queue *q;
    cw_join *j;
    int err;
};

static void *spawn_thread(void *p)
{
    struct thread_arg *a = p;
    struct ctask c = {.id = 5};
    a->err = cw_spawn(a->q, ctask_poll, &c, sizeof c, ctask_drop, &a->j);
    return NULL;
}

START_TEST(spawn_from_other_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    int sentinel;
    cw_join *const mark = (cw_join *)&sentinel;
    struct thread_arg a = {.q = cw_executor_queue(env.ex, Q1), .j = mark, .err = 12345};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, spawn_thread, &a), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(a.err, -EPERM);
    ck_assert_ptr_eq(a.j, mark);
    ck_assert_uint_eq(stats_of(env.ex).tasks_spawned, 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[5], 0);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[5], 0);
}
END_TEST

/* ---- cw_queue_run() -------------------------------------------------------- */

static void run_fn(void *arg)
{
    int id = *(int *)arg;
    g_polls[id]++;
    g_log[g_nlog++] = id;
}

static int g_run_ids[4] = {10, 11, 12, 13};

START_TEST(queue_run_calls_the_function_once_later_in_fifo_order_with_tasks)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_queue *q1 = cw_executor_queue(env.ex, Q1), *q2 = cw_executor_queue(env.ex, Q2);
    ck_assert_int_eq(cw_queue_run(q1, run_fn, &g_run_ids[0]), 0);
    spawn_ctask(q1, 1, 0, NULL);
    ck_assert_int_eq(cw_queue_run(q1, run_fn, &g_run_ids[1]), 0);
    ck_assert_int_eq(cw_queue_run(q2, run_fn, &g_run_ids[2]), 0);
    ck_assert_int_eq(g_nlog, 0); /* not inside the call */
    for (int i = 0; i < 5; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[10], 1);
    ck_assert_int_eq(g_polls[11], 1);
    ck_assert_int_eq(g_polls[12], 1);
    /* q1's order is its FIFO: run, task, run */
    int at[3] = {-1, -1, -1};
    for (int i = 0; i < g_nlog; i++)
        for (int k = 0; k < 3; k++)
            if (g_log[i] == (int[]){10, 1, 11}[k])
                at[k] = i;
    ck_assert(at[0] >= 0 && at[0] < at[1] && at[1] < at[2]);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q2, &qs), 0);
    ck_assert_uint_eq(qs.tasks_completed, 1); /* ran as a task of q2 */
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(queue_run_errors_are_spawns_and_the_function_never_runs)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    ck_assert_int_eq(cw_queue_run(NULL, run_fn, &g_run_ids[0]), -ENOENT);
    ck_assert_int_eq(cw_queue_run(cw_executor_queue(env.ex, 99), run_fn, NULL), -ENOENT);
    ck_assert_int_eq(cw_queue_run(q, NULL, NULL), -EINVAL);
    /* queued, then the executor goes: never runs */
    ck_assert_int_eq(cw_queue_run(q, run_fn, &g_run_ids[3]), 0);
    ck_assert_uint_eq(stats_of(env.ex).tasks_spawned, 1);
    tenv_free(&env);
    ck_assert_int_eq(g_polls[13], 0);
    ck_assert_int_eq(g_nlog, 0);
}
END_TEST

/* ---- drop timing ----------------------------------------------------------- */

START_TEST(detached_task_runs_and_is_dropped_once_at_completion)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    spawn_ctask(q, 1, 2, NULL); /* yields twice, completes on poll 3 */
    for (int i = 0; i < 5 && g_polls[1] < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 3);
    /* every poll, the last included, saw the state not yet dropped */
    ck_assert_int_eq(g_polled_after_drop, 0);
    ck_assert_int_eq(g_drops[1], 1);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_completed, 1);
    ck_assert_uint_eq(st.tasks_live, 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 3);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

START_TEST(completed_task_with_join_is_dropped_when_join_freed)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_ctask(q, 1, 0, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(g_drops[1], 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_drops[1], 0);
    struct ctask *st = cw_join_state(j);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->out, 2);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    cw_join_free(j);
    ck_assert_int_eq(g_drops[1], 1);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

START_TEST(completed_task_join_outlives_executor_and_drops_on_free)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_ctask(q, 1, 0, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    tenv_free(&env);
    /* it had completed: freeing the executor did not cancel or drop it */
    ck_assert_int_eq(g_drops[1], 0);
    ck_assert_int_eq(cw_join_status(j), 0);
    struct ctask *st = cw_join_state(j);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->out, 2);
    cw_join_free(j);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

/* ---- memory reuse and counters ------------------------------------------- */

static void *g_state_ptr[4];

struct ptask {
    int slot;
    char pad[40];
};

static cw_poll ptask_poll(void *p, cw_cx *cx)
{
    struct ptask *s = p;
    (void)cx;
    g_state_ptr[s->slot] = p;
    return CW_READY;
}

START_TEST(task_memory_is_reused_and_stats_count_exactly)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct ptask s = {.slot = 0};
    cw_join *j;

    ck_assert_int_eq(cw_spawn(q, ptask_poll, &s, sizeof s, NULL, &j), 0);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 1);
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_eq(st.tasks_completed, 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_completed, 1);
    ck_assert_uint_eq(st.tasks_live, 0);
    cw_join_free(j);

    /* same state size: the freed block comes back from the executor's
     * free list (task.h), not from malloc. Take every small chunk malloc
     * might have kept meanwhile, so that a block given back to malloc
     * could not come back by chance. */
    void *hog[128];
    for (size_t i = 0; i < 128; i++) {
        hog[i] = malloc(16 * (i % 64 + 1));
        ck_assert_ptr_nonnull(hog[i]);
    }
    s.slot = 1;
    ck_assert_int_eq(cw_spawn(q, ptask_poll, &s, sizeof s, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_ptr_nonnull(g_state_ptr[1]);
    ck_assert_ptr_eq(g_state_ptr[1], g_state_ptr[0]);
    cw_join_free(j);
    for (size_t i = 0; i < 128; i++)
        free(hog[i]);

    /* steady state: many spawn/complete cycles, each one exact */
    for (int i = 0; i < 500; i++) {
        s.slot = 2;
        ck_assert_int_eq(cw_spawn(q, ptask_poll, &s, sizeof s, NULL, &j), 0);
        ck_assert_uint_eq(stats_of(env.ex).tasks_live, 1);
        ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
        cw_join_free(j);
    }
    st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 502);
    ck_assert_uint_eq(st.tasks_completed, 502);
    ck_assert_uint_eq(st.tasks_cancelled, 0);
    ck_assert_uint_eq(st.tasks_panicked, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(st.polls, 502);
    tenv_free(&env);
}
END_TEST

/* ---- freeing the executor with live tasks ---------------------------------- */

static cw_waker *g_held_waker[4];

struct waiter {
    int id;
    int slot;
};

static void waiter_drop(void *p)
{
    struct waiter *s = p;
    g_drops[s->id]++;
}

/* Clones its waker into a global and waits for a wake that never comes. */
static cw_poll waiter_poll(void *p, cw_cx *cx)
{
    struct waiter *s = p;
    g_polls[s->id]++;
    if (!g_held_waker[s->slot])
        g_held_waker[s->slot] = cw_waker_clone(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(executor_free_cancels_live_tasks_and_drops_each_once)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_queue *q1 = cw_executor_queue(env.ex, Q1);
    cw_queue *q2 = cw_executor_queue(env.ex, Q2);
    cw_join *jw, *jq, *js;

    /* pending, waiting for wakes that never come (one joined, one not) */
    struct waiter w1 = {.id = 1, .slot = 0}, w2 = {.id = 2, .slot = 1};
    ck_assert_int_eq(cw_spawn(q1, waiter_poll, &w1, sizeof w1, waiter_drop, &jw), 0);
    ck_assert_int_eq(cw_spawn(q2, waiter_poll, &w2, sizeof w2, waiter_drop, NULL), 0);
    /* pending without any wake arranged */
    struct ctask s3 = {.id = 3};
    ck_assert_int_eq(cw_spawn(q1, stuck_poll, &s3, sizeof s3, ctask_drop, &js), 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_polls[2], 1);
    ck_assert_int_eq(g_polls[3], 1);
    /* queued, never polled (one joined, one not) */
    spawn_ctask(q1, 4, 0, &jq);
    spawn_ctask(q2, 5, 0, NULL);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 5);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(g_drops[i], 0);

    tenv_free(&env);

    for (int i = 1; i <= 5; i++)
        ck_assert_msg(g_drops[i] == 1, "task %d dropped %d times", i, g_drops[i]);
    ck_assert_int_eq(g_polls[4], 0);
    ck_assert_int_eq(g_polls[5], 0);
    ck_assert_int_eq(cw_join_status(jw), -ECANCELED);
    ck_assert_int_eq(cw_join_status(jq), -ECANCELED);
    ck_assert_int_eq(cw_join_status(js), -ECANCELED);
    ck_assert_ptr_null(cw_join_state(jw));
    ck_assert_ptr_null(cw_join_state(jq));
    ck_assert_ptr_null(cw_join_state(js));
    /* stale wakers are no-ops and can still be released */
    cw_waker_wake_by_ref(g_held_waker[0]);
    cw_waker_wake(g_held_waker[1]);
    cw_waker_free(g_held_waker[0]);
    cw_join_free(jw);
    cw_join_free(jq);
    cw_join_free(js);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(g_drops[i], 1);
}
END_TEST

/* ---- large state ---------------------------------------------------------- */

#define BIG 4096

struct big {
    int id;
    unsigned char bytes[BIG];
    unsigned sum;
};

static cw_poll big_poll(void *p, cw_cx *cx)
{
    struct big *s = p;
    (void)cx;
    g_polls[s->id]++;
    unsigned sum = 0;
    for (size_t i = 0; i < BIG; i++)
        sum += s->bytes[i];
    s->sum = sum;
    for (size_t i = 0; i < BIG; i++)
        s->bytes[i] = (unsigned char)(255 - s->bytes[i]);
    return CW_READY;
}

static void big_drop(void *p)
{
    struct big *s = p;
    g_drops[s->id]++;
}

START_TEST(large_state_beyond_size_classes_works)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct big *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    unsigned expect = 0;
    for (size_t i = 0; i < BIG; i++) {
        b->bytes[i] = (unsigned char)(i * 7 + 3);
        expect += b->bytes[i];
    }
    for (int round = 0; round < 3; round++) {
        cw_join *j;
        b->id = 1 + round;
        ck_assert_int_eq(cw_spawn(q, big_poll, b, sizeof *b, big_drop, &j), 0);
        ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
        struct big *out = cw_join_state(j);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq((uintptr_t)out % alignof(max_align_t), 0);
        ck_assert_uint_eq(out->sum, expect);
        for (size_t i = 0; i < BIG; i++)
            ck_assert_uint_eq(out->bytes[i], (unsigned char)(255 - b->bytes[i]));
        cw_join_free(j);
        ck_assert_int_eq(g_drops[1 + round], 1);
    }
    /* and detached, then cancelled while queued */
    b->id = 10;
    ck_assert_int_eq(cw_spawn(q, big_poll, b, sizeof *b, big_drop, NULL), 0);
    b->id = 11;
    ck_assert_int_eq(cw_spawn(q, big_poll, b, sizeof *b, big_drop, NULL), 0);
    tenv_turn(&env);
    ck_assert_int_eq(g_drops[10], 1);
    ck_assert_int_eq(g_drops[11], 1);
    b->id = 12;
    ck_assert_int_eq(cw_spawn(q, big_poll, b, sizeof *b, big_drop, NULL), 0);
    tenv_free(&env);
    ck_assert_int_eq(g_polls[12], 0);
    ck_assert_int_eq(g_drops[12], 1);
    free(b);
}
END_TEST

/* ---- task memory: slabs and slots ------------------------------------------ */

/* An allocator that knows how many bytes are out (a 16-byte header keeps
 * each block's size). */
static atomic_llong g_out;

static long long out_bytes(void)
{
    return atomic_load(&g_out);
}

static void *cnt_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    *p = n;
    atomic_fetch_add(&g_out, (long long)n);
    return (char *)p + 16;
}

static void cnt_free(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    atomic_fetch_sub(&g_out, (long long)*p);
    free(p);
}

static void *cnt_realloc(void *q, size_t n)
{
    if (!q)
        return cnt_malloc(n);
    size_t *p = (size_t *)(void *)((char *)q - 16);
    size_t old = *p;
    size_t *r = realloc(p, n + 16);
    if (!r)
        return NULL;
    *r = n;
    atomic_fetch_add(&g_out, (long long)n - (long long)old);
    return (char *)r + 16;
}

struct s32 {
    uint64_t a[4];
};

static cw_poll ready_poll(void *p, cw_cx *cx)
{
    (void)p;
    (void)cx;
    return CW_READY;
}

/* Keeps a clone of its waker in the slot its state names, then ends. */
struct keeper {
    cw_waker **slot;
    uint64_t pad[3];
};

static cw_poll keeper_poll(void *p, cw_cx *cx)
{
    struct keeper *k = p;
    *k->slot = cw_waker_clone(cw_cx_waker(cx));
    return CW_READY;
}

static void run_all(tenv *env)
{
    while (stats_of(env->ex).tasks_live)
        tenv_turn(env);
}

START_TEST(task_blocks_cost_48_bytes_and_empty_slabs_are_given_back)
{
    ck_assert_int_eq(cw_set_allocator(cnt_malloc, cnt_realloc, cnt_free), 0);
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct s32 st = {{1, 2, 3, 4}};
    ck_assert_int_eq(cw_spawn(q, ready_poll, &st, sizeof st, NULL, NULL), 0);
    run_all(&env); /* one slab of the class now, kept while empty */
    long long base = out_bytes();

    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(cw_spawn(q, ready_poll, &st, sizeof st, NULL, NULL), 0);
    long long peak = out_bytes() - base;
    /* 48-byte header + 32-byte state, no slots, slab headers amortised */
    long long lo = N * 80LL, hi = N * 82LL;
#ifdef CW_CHECKED
    /* The checked build's header is 64 bytes (its two counters): 96-byte
     * blocks, 340 to a slab, and the slab kept from before holds the
     * first 340. */
    lo = (N - 340) * 96LL;
    hi = N * 98LL;
#endif
    ck_assert_msg(peak >= lo && peak <= hi, "%lld bytes for %d tasks", peak, N);
    run_all(&env);
    /* every slab emptied; at most one kept */
    ck_assert_int_le(out_bytes() - base, 0);
    tenv_free(&env);
    ck_assert_int_eq(out_bytes(), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0); /* nothing holds it */
}
END_TEST

enum { NKEEP = 3000 };
static cw_waker *g_keep[NKEEP];

static void *free_keeps(void *arg)
{
    int from = *(int *)arg;
    for (int i = from; i < NKEEP; i += 2)
        cw_waker_free(g_keep[i]);
    return NULL;
}

START_TEST(blocks_freed_elsewhere_go_back_to_their_slabs_and_outlive_the_executor)
{
    ck_assert_int_eq(cw_set_allocator(cnt_malloc, cnt_realloc, cnt_free), 0);
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);

    /* blocks that outlive their tasks (a waker clone each), freed on
     * another thread while the executor lives */
    for (int i = 0; i < NKEEP; i++) {
        struct keeper k = {.slot = &g_keep[i]};
        ck_assert_int_eq(cw_spawn(q, keeper_poll, &k, sizeof k, NULL, NULL), 0);
    }
    run_all(&env);
    long long full = out_bytes();
    pthread_t th[2];
    int from[2] = {0, 1};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, free_keeps, &from[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    /* the next round takes them back: the emptied slabs go (one kept) */
    struct s32 st = {{0}};
    ck_assert_int_eq(cw_spawn(q, ready_poll, &st, sizeof st, NULL, NULL), 0);
    run_all(&env);
    ck_assert_int_le(out_bytes(), full - NKEEP * 48LL + 32 * 1024);
    /* the same number again: the blocks come back, no more than before */
    for (int i = 0; i < NKEEP; i++) {
        struct keeper k = {.slot = &g_keep[i]};
        ck_assert_int_eq(cw_spawn(q, keeper_poll, &k, sizeof k, NULL, NULL), 0);
    }
    ck_assert_int_le(out_bytes(), full);
    run_all(&env);

    /* outliving the executor: half freed on another thread, half here */
    tenv_free(&env);
    ck_assert_int_gt(out_bytes(), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), -EBUSY);
    ck_assert_int_eq(pthread_create(&th[0], NULL, free_keeps, &from[0]), 0);
    ck_assert_int_eq(pthread_join(th[0], NULL), 0);
    for (int i = 1; i < NKEEP - 1; i += 2) {
        cw_waker_wake_by_ref(g_keep[i]); /* a no-op now */
        cw_waker_free(g_keep[i]);
    }
    /* one block left: its slab and the shared part, nothing else */
    ck_assert_int_le(out_bytes(), 32 * 1024 + 1024);
    cw_waker_free(g_keep[NKEEP - 1]);
    ck_assert_int_eq(out_bytes(), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
}
END_TEST

/* A state of n bytes with a pattern the task checks at every poll and
 * the join checks at the end: the slots at the block's end (drop
 * function, join, runnable stamp) must not touch it. */
static int g_slot_bad;

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 13);
}

static bool intact(const unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 13))
            return false;
    return true;
}

static size_t g_slot_n;
static int g_slot_polls;

static cw_poll slot_poll(void *p, cw_cx *cx)
{
    if (!intact(p, g_slot_n, (unsigned)g_slot_n))
        g_slot_bad++;
    if (g_slot_polls++ % 2 == 0) { /* once queued again: a stamp written */
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

static int g_slot_drops;

static void slot_drop(void *p)
{
    if (!intact(p, g_slot_n, (unsigned)g_slot_n))
        g_slot_bad++;
    g_slot_drops++;
}

START_TEST(optional_slots_never_touch_the_state)
{
    for (int hist = 0; hist < 2; hist++) {
        cw_config *cfg = cfg_one();
        cw_config_set_histograms(cfg, hist);
        tenv env;
        tenv_init(&env, cfg, 1);
        cw_queue *q = cw_executor_queue(env.ex, Q1);
        static unsigned char buf[1200];
        for (size_t n = 0; n <= sizeof buf; n += 8) {
            for (int k = 0; k < 4; k++) { /* drop?, join? */
                bool drop = k & 1, join = k & 2;
                g_slot_n = n;
                g_slot_polls = 0;
                g_slot_drops = 0;
                fill(buf, n, (unsigned)n);
                cw_join *j = NULL;
                ck_assert_int_eq(cw_spawn(q, slot_poll, buf, n, drop ? slot_drop : NULL,
                                          join ? &j : NULL), 0);
                run_all(&env);
                ck_assert_int_eq(g_slot_polls, 2);
                if (join) {
                    ck_assert_int_eq(cw_join_status(j), 0);
                    ck_assert_msg(n == 0 || intact(cw_join_state(j), n, (unsigned)n),
                                  "state of %zu bytes (drop %d, hist %d) changed", n, drop, hist);
                    cw_join_free(j);
                }
                ck_assert_int_eq(g_slot_drops, drop ? 1 : 0);
                ck_assert_msg(!g_slot_bad, "state of %zu bytes (drop %d join %d hist %d) changed",
                              n, drop, join, hist);
            }
        }
        struct cw_queue_stats qs;
        ck_assert_int_eq(cw_queue_stats(q, &qs), 0);
        if (hist) /* the stamps were read: every poll's queue delay counted */
            ck_assert_uint_eq(qs.queue_delay_ns.count, qs.polls);
        tenv_free(&env);
    }
}
END_TEST

START_TEST(pending_without_wake_is_not_polled_again)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct ctask s = {.id = 1};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q, stuck_poll, &s, sizeof s, ctask_drop, &j), 0);
    for (int i = 0; i < 6; i++) {
        tenv_turn(&env);
        env.clk.now += 10000000; /* time passing must not matter either */
    }
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    ck_assert_int_eq(g_drops[1], 0);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.polls, 1);
    ck_assert_uint_eq(st.tasks_live, 1);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_join_free(j);
}
END_TEST

/* Every test starts from clean globals (also with CK_FORK=no). */
static void reset(void)
{
    memset(g_polls, 0, sizeof g_polls);
    memset(g_drops, 0, sizeof g_drops);
    memset(g_log, 0, sizeof g_log);
    g_nlog = 0;
    g_polled_after_drop = 0;
    g_in_spawn = false;
    g_child_ran_in_spawn = 0;
    g_spawn_err = 12345;
    g_zero_state = &g_zero_state;
    g_zero_polls = 0;
    g_shutdown_err = 12345;
    g_shutdown_join = NULL;
    memset(g_state_ptr, 0, sizeof g_state_ptr);
    memset(g_held_waker, 0, sizeof g_held_waker);
}

/* ---- in-place spawn (cw_spawn_with) ------------------------------------------ */

/* A consumer whose receive future writes into its own state. */
typedef struct inplace {
    cw_chan_recv rx;
    int item;
    int got;
    const int *seen_zero; /* init saw a zeroed state */
    int *drops;
} inplace;

static int g_init_saw_zero;

static int inplace_init(void *state, void *ch)
{
    inplace *c = state;
    static const inplace zero;
    g_init_saw_zero = memcmp(c, &zero, sizeof zero) == 0;
    cw_chan_recv_init(&c->rx, ch, &c->item); /* &c->item: the task's own */
    return 0;
}

static cw_poll inplace_poll(void *state, cw_cx *cx)
{
    inplace *c = state;
    if (cw_chan_recv_poll(&c->rx, cx) == CW_PENDING)
        return CW_PENDING;
    c->got = cw_chan_recv_result(&c->rx) == 0 ? c->item : -1;
    return CW_READY;
}

static void inplace_drop(void *state)
{
    cw_chan_recv_drop(&((inplace *)state)->rx);
}

START_TEST(spawn_with_builds_a_self_referential_state_in_the_tasks_block)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &ch), 0);
    cw_join *j;
    g_init_saw_zero = 0;
    ck_assert_int_eq(cw_spawn_with(cw_executor_queue(env.ex, Q1), inplace_poll, sizeof(inplace),
                                   inplace_init, ch, inplace_drop, &j),
                     0);
    ck_assert(g_init_saw_zero);
    turns(&env, 3); /* the consumer waits */
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    int v = 42;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    /* the value landed in the task's state, where the poll reads it */
    ck_assert_int_eq(((const inplace *)cw_join_state(j))->got, 42);
    cw_join_free(j);
    cw_chan_free(ch);
    tenv_free(&env);
}
END_TEST

static int g_failing_drops;

static int failing_init(void *state, void *arg)
{
    (void)state;
    return *(int *)arg;
}

static void failing_drop(void *state)
{
    (void)state;
    g_failing_drops++;
}

START_TEST(spawn_with_a_failing_init_spawns_nothing)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j = (cw_join *)&env; /* a sentinel: must stay untouched */
    g_failing_drops = 0;
    int err = -ENOSPC;
    ck_assert_int_eq(cw_spawn_with(q, inplace_poll, 64, failing_init, &err, failing_drop, &j),
                     -ENOSPC);
    err = 7; /* not a negative errno */
    ck_assert_int_eq(cw_spawn_with(q, inplace_poll, 64, failing_init, &err, failing_drop, &j),
                     -EINVAL);
    ck_assert_ptr_eq(j, (cw_join *)&env);
    ck_assert_int_eq(g_failing_drops, 0);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    /* nothing is left for the loop to wait for */
    ck_assert_int_eq(tenv_run_once(&env), 1);
    /* bad arguments */
    ck_assert_int_eq(cw_spawn_with(NULL, inplace_poll, 8, inplace_init, NULL, NULL, NULL),
                     -ENOENT);
    ck_assert_int_eq(cw_spawn_with(q, NULL, 8, inplace_init, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(cw_spawn_with(q, inplace_poll, 8, NULL, NULL, NULL, NULL), -EINVAL);
    /* and a good one still works */
    err = 0;
    ck_assert_int_eq(cw_spawn_with(q, inplace_poll, 64, failing_init, &err, failing_drop, &j), 0);
    cw_join_abort(j);
    ck_assert_int_eq(g_failing_drops, 1);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("task");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, spawned_task_completes_and_join_state_holds_its_output);
    tcase_add_test(tc, tasks_on_one_queue_are_first_polled_in_spawn_order);
    tcase_add_test(tc, yielding_task_goes_to_tail_behind_the_others);
    tcase_add_test(tc, spawn_from_task_on_own_queue_runs_child_later_behind_siblings);
    tcase_add_test(tc, spawn_from_task_on_other_queue_runs_child_later);
    tcase_add_test(tc, spawn_on_an_unknown_queue_id_is_enoent_and_spawns_nothing);
    tcase_add_test(tc, spawn_bad_arguments_is_einval_and_join_untouched);
    tcase_add_test(tc, spawn_size_zero_null_state_polls_with_non_null_pointer);
    tcase_add_test(tc, spawn_from_drop_during_executor_free_is_eshutdown);
    tcase_add_test(tc, spawn_from_other_thread_is_eperm);
    tcase_add_test(tc, detached_task_runs_and_is_dropped_once_at_completion);
    tcase_add_test(tc, completed_task_with_join_is_dropped_when_join_freed);
    tcase_add_test(tc, completed_task_join_outlives_executor_and_drops_on_free);
    tcase_add_test(tc, task_memory_is_reused_and_stats_count_exactly);
    tcase_add_test(tc, executor_free_cancels_live_tasks_and_drops_each_once);
    tcase_add_test(tc, large_state_beyond_size_classes_works);
    tcase_add_test(tc, pending_without_wake_is_not_polled_again);
    tcase_add_test(tc, task_blocks_cost_48_bytes_and_empty_slabs_are_given_back);
    tcase_add_test(tc, blocks_freed_elsewhere_go_back_to_their_slabs_and_outlive_the_executor);
    tcase_add_test(tc, optional_slots_never_touch_the_state);
    tcase_add_test(tc, spawn_with_builds_a_self_referential_state_in_the_tasks_block);
    tcase_add_test(tc, spawn_with_a_failing_init_spawns_nothing);
    tcase_add_test(tc, queue_run_calls_the_function_once_later_in_fifo_order_with_tasks);
    tcase_add_test(tc, queue_run_errors_are_spawns_and_the_function_never_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
