/* check_join.c - join handles: abort at every stage of a task's life,
 * awaiting a task from another task, detaching, status/state/panic
 * accessors, NULL handling and cw_executor_run_until()'s refusals. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { Q1 = 1, Q2 = 2 };

static cw_config *cfg_one(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q1, 1), 0);
    return cfg;
}

static cw_config *cfg_two(void)
{
    cw_config *cfg = cfg_one();
    ck_assert_int_eq(cw_config_add_queue(cfg, Q2, 1), 0);
    return cfg;
}

/* Counters per task id. */
#define MAXT 32
static int g_polls[MAXT];
static int g_drops[MAXT];
/* Wakers that tasks cloned and wait on, one per task id. */
static cw_waker *g_waker[MAXT];

/* ---- tasks ---------------------------------------------------------------- */

/* Completes at once with out = 2 * in. */
struct simple {
    int id;
    int in, out;
};

static cw_poll simple_poll(void *p, cw_cx *cx)
{
    struct simple *s = p;
    (void)cx;
    g_polls[s->id]++;
    s->out = 2 * s->in;
    return CW_READY;
}

static void simple_drop(void *p)
{
    struct simple *s = p;
    g_drops[s->id]++;
}

/* Clones its waker into g_waker[id] on the first poll and returns PENDING;
 * completes (out = 77) on any later poll. */
struct gate {
    int id;
    int out;
};

static cw_poll gate_poll(void *p, cw_cx *cx)
{
    struct gate *s = p;
    if (++g_polls[s->id] == 1) {
        g_waker[s->id] = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    }
    s->out = 77;
    return CW_READY;
}

static void gate_drop(void *p)
{
    struct gate *s = p;
    g_drops[s->id]++;
}

static void spawn_gate(cw_queue *q, int id, cw_join **j)
{
    struct gate g = {.id = id};
    ck_assert_int_eq(cw_spawn(q, gate_poll, &g, sizeof g, gate_drop, j), 0);
}

static void spawn_simple(cw_queue *q, int id, cw_join **j)
{
    struct simple s = {.id = id, .in = id};
    ck_assert_int_eq(cw_spawn(q, simple_poll, &s, sizeof s, simple_drop, j), 0);
}

/* ---- abort ------------------------------------------------------------------ */

START_TEST(abort_before_first_poll_never_polls_and_drops_once)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_simple(q, 1, &j);
    cw_join_abort(j);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), -ECANCELED);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 0);
    ck_assert_ptr_null(cw_join_state(j));
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_cancelled, 1);
    ck_assert_uint_eq(st.tasks_completed, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(st.polls, 0);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

START_TEST(abort_while_pending_drops_inside_abort_and_stale_waker_is_noop)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_gate(q, 1, &j);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_ptr_nonnull(g_waker[1]);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);

    cw_join_abort(j);
    /* released here, not at some later wake or loop turn */
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_ptr_null(cw_join_state(j));
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    ck_assert_uint_eq(stats_of(env.ex).tasks_cancelled, 1);

    /* the stale waker does nothing */
    cw_waker_wake_by_ref(g_waker[1]);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_waker_free(g_waker[1]);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

/* Keeps its own waker in its state; the drop releases it. */
struct selfheld {
    int id;
    cw_waker *w;
};

static cw_poll selfheld_poll(void *p, cw_cx *cx)
{
    struct selfheld *s = p;
    g_polls[s->id]++;
    if (!s->w)
        s->w = cw_waker_clone(cw_cx_waker(cx));
    return CW_PENDING;
}

static void selfheld_drop(void *p)
{
    struct selfheld *s = p;
    g_drops[s->id]++;
    cw_waker_free(s->w);
    s->w = NULL;
}

START_TEST(abort_while_pending_with_waker_in_own_state_releases_it)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct selfheld s = {.id = 1, .w = NULL};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q, selfheld_poll, &s, sizeof s, selfheld_drop, &j), 0);
    /* the same, detached, to be released by the executor's free */
    struct selfheld s2 = {.id = 2, .w = NULL};
    ck_assert_int_eq(cw_spawn(q, selfheld_poll, &s2, sizeof s2, selfheld_drop, NULL), 0);
    tenv_turn(&env);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_polls[2], 1);
    cw_join_abort(j);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
}
END_TEST

START_TEST(abort_after_completion_keeps_status_and_state)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_simple(q, 3, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    cw_join_abort(j);
    ck_assert_int_eq(cw_join_status(j), 0);
    struct simple *st = cw_join_state(j);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->out, 6);
    ck_assert_int_eq(g_drops[3], 0);
    struct cw_executor_stats es = stats_of(env.ex);
    ck_assert_uint_eq(es.tasks_completed, 1);
    ck_assert_uint_eq(es.tasks_cancelled, 0);
    cw_join_free(j);
    ck_assert_int_eq(g_drops[3], 1);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[3], 1);
}
END_TEST

START_TEST(abort_twice_second_is_noop_and_drop_ran_once)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jq, *jp;
    spawn_gate(q, 1, &jp);
    tenv_turn(&env); /* jp is pending */
    spawn_gate(q, 2, &jq); /* jq is queued */
    cw_join_abort(jp);
    cw_join_abort(jq);
    cw_join_abort(jp);
    cw_join_abort(jq);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
    ck_assert_int_eq(cw_join_status(jp), -ECANCELED);
    ck_assert_int_eq(cw_join_status(jq), -ECANCELED);
    ck_assert_uint_eq(stats_of(env.ex).tasks_cancelled, 2);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 0);
    cw_waker_free(g_waker[1]);
    cw_join_free(jp);
    cw_join_free(jq);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
}
END_TEST

START_TEST(abort_after_executor_free_is_noop)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_gate(q, 1, &j);
    tenv_turn(&env);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_join_abort(j);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_waker_wake(g_waker[1]);
    cw_join_free(j);
}
END_TEST

/* ---- a task aborting itself ------------------------------------------------- */

static cw_join *g_self_join;
static int g_drops_seen_in_poll = -1;

struct selfabort {
    int id;
    int ret_ready;
};

static cw_poll selfabort_poll(void *p, cw_cx *cx)
{
    struct selfabort *s = p;
    g_polls[s->id]++;
    cw_join_abort(g_self_join);
    g_drops_seen_in_poll = g_drops[s->id];
    /* even a wake must not bring it back */
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return s->ret_ready ? CW_READY : CW_PENDING;
}

static void selfabort_drop(void *p)
{
    struct selfabort *s = p;
    g_drops[s->id]++;
}

static void run_self_abort(int ret_ready)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct selfabort s = {.id = 1, .ret_ready = ret_ready};
    ck_assert_int_eq(cw_spawn(q, selfabort_poll, &s, sizeof s, selfabort_drop, &g_self_join), 0);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    /* the drop waits for the poll to return; the state was still live */
    ck_assert_int_eq(g_drops_seen_in_poll, 0);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(g_self_join), -ECANCELED);
    ck_assert_ptr_null(cw_join_state(g_self_join));
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_cancelled, 1);
    ck_assert_uint_eq(st.tasks_completed, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    cw_join_free(g_self_join);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}

START_TEST(task_aborting_itself_then_pending_ends_cancelled_after_poll)
{
    run_self_abort(0);
}
END_TEST

START_TEST(task_aborting_itself_then_ready_ends_cancelled_after_poll)
{
    run_self_abort(1);
}
END_TEST

/* ---- awaiting a join from a task ---------------------------------------------- */

struct waiter {
    int id;
    cw_join *target;
    int seen_status;
    int seen_out;
};

static cw_poll waiter_poll(void *p, cw_cx *cx)
{
    struct waiter *s = p;
    g_polls[s->id]++;
    if (cw_join_poll(s->target, cx) == CW_PENDING)
        return CW_PENDING;
    s->seen_status = cw_join_status(s->target);
    struct gate *g = cw_join_state(s->target);
    s->seen_out = g ? g->out : -1;
    return CW_READY;
}

static void waiter_drop(void *p)
{
    struct waiter *s = p;
    g_drops[s->id]++;
}

static void spawn_waiter(cw_queue *q, int id, cw_join *target, cw_join **j)
{
    struct waiter w = {.id = id, .target = target, .seen_status = 12345, .seen_out = 12345};
    ck_assert_int_eq(cw_spawn(q, waiter_poll, &w, sizeof w, waiter_drop, j), 0);
}

START_TEST(join_poll_wakes_waiter_when_awaited_task_completes)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_join *jt, *jw;
    spawn_gate(cw_executor_queue(env.ex, Q1), 1, &jt);
    spawn_waiter(cw_executor_queue(env.ex, Q2), 2, jt, &jw);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_polls[2], 1); /* waiting, not spinning */
    ck_assert_int_eq(cw_join_status(jw), -EAGAIN);

    cw_waker_wake(g_waker[1]);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(cw_join_status(jt), 0);
    ck_assert_int_eq(g_polls[1], 2);
    ck_assert_int_eq(g_polls[2], 2);
    struct waiter *w = cw_join_state(jw);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->seen_status, 0);
    ck_assert_int_eq(w->seen_out, 77);
    cw_join_free(jw);
    cw_join_free(jt);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
    tenv_free(&env);
}
END_TEST

START_TEST(join_poll_waiter_sees_ecanceled_when_awaited_task_aborted)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jt, *jw;
    spawn_gate(q, 1, &jt);
    spawn_waiter(q, 2, jt, &jw);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 1);

    cw_join_abort(jt);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(g_polls[2], 2);
    struct waiter *w = cw_join_state(jw);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->seen_status, -ECANCELED);
    ck_assert_int_eq(w->seen_out, -1);
    ck_assert_int_eq(g_polls[1], 1);
    cw_waker_free(g_waker[1]);
    cw_join_free(jw);
    cw_join_free(jt);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
}
END_TEST

START_TEST(join_poll_on_already_ended_task_is_ready_at_once)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jt, *jw;
    spawn_gate(q, 1, &jt);
    tenv_turn(&env);
    cw_waker_wake(g_waker[1]);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jt), 0);
    spawn_waiter(q, 2, jt, &jw);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(g_polls[2], 1);
    struct waiter *w = cw_join_state(jw);
    ck_assert_int_eq(w->seen_status, 0);
    ck_assert_int_eq(w->seen_out, 77);
    cw_join_free(jw);
    cw_join_free(jt);
    tenv_free(&env);
}
END_TEST

/* A waiter woken for other reasons re-polls the join several times; it is
 * still woken when the task ends, and nothing leaks (valgrind). */
struct spurious {
    int id;
    cw_join *target;
    int seen_status;
};

static cw_poll spurious_poll(void *p, cw_cx *cx)
{
    struct spurious *s = p;
    g_polls[s->id]++;
    if (cw_join_poll(s->target, cx) == CW_READY) {
        s->seen_status = cw_join_status(s->target);
        return CW_READY;
    }
    if (g_polls[s->id] < 4)
        cw_waker_wake_by_ref(cw_cx_waker(cx)); /* a spurious wake */
    return CW_PENDING;
}

START_TEST(join_poll_repolled_waiter_is_woken_once_task_ends)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jt, *jw;
    spawn_gate(q, 1, &jt);
    struct spurious s = {.id = 2, .target = jt, .seen_status = 12345};
    ck_assert_int_eq(cw_spawn(q, spurious_poll, &s, sizeof s, NULL, &jw), 0);
    for (int i = 0; i < 6; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 4);
    cw_waker_wake(g_waker[1]);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(g_polls[2], 5);
    ck_assert_int_eq(((struct spurious *)cw_join_state(jw))->seen_status, 0);
    cw_join_free(jw);
    cw_join_free(jt);
    tenv_free(&env);
}
END_TEST

START_TEST(aborted_waiter_is_not_polled_when_awaited_task_ends)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jt, *jw;
    spawn_gate(q, 1, &jt);
    spawn_waiter(q, 2, jt, &jw);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 1);
    cw_join_abort(jw);
    ck_assert_int_eq(g_drops[2], 1);
    cw_join_free(jw);
    cw_waker_wake(g_waker[1]);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jt), 0);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 1);
    ck_assert_int_eq(g_drops[2], 1);
    cw_join_free(jt);
    tenv_free(&env);
}
END_TEST

/* A waiter that owns the join it awaits (read from a slot at poll time,
 * so it may be spawned before the task it awaits) and frees it in its
 * drop. */
static cw_join *g_slot[MAXT];

struct owaiter {
    int id;
    int slot;
};

static cw_poll owaiter_poll(void *p, cw_cx *cx)
{
    struct owaiter *s = p;
    g_polls[s->id]++;
    return cw_join_poll(g_slot[s->slot], cx);
}

static void owaiter_drop(void *p)
{
    struct owaiter *s = p;
    g_drops[s->id]++;
    cw_join_free(g_slot[s->slot]);
    g_slot[s->slot] = NULL;
}

START_TEST(join_freed_by_waiter_drop_during_executor_free_is_safe)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct owaiter w;

    /* pair A: the awaited task is older than its waiter */
    spawn_gate(q, 1, &g_slot[0]);
    w = (struct owaiter){.id = 2, .slot = 0};
    ck_assert_int_eq(cw_spawn(q, owaiter_poll, &w, sizeof w, owaiter_drop, NULL), 0);
    /* pair B: the waiter is older than the task it awaits */
    w = (struct owaiter){.id = 3, .slot = 1};
    ck_assert_int_eq(cw_spawn(q, owaiter_poll, &w, sizeof w, owaiter_drop, NULL), 0);
    spawn_gate(q, 4, &g_slot[1]);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    for (int i = 1; i <= 4; i++)
        ck_assert_int_eq(g_polls[i], 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 4);

    tenv_free(&env);
    for (int i = 1; i <= 4; i++)
        ck_assert_msg(g_drops[i] == 1, "task %d dropped %d times", i, g_drops[i]);
    ck_assert_ptr_null(g_slot[0]);
    ck_assert_ptr_null(g_slot[1]);
    cw_waker_free(g_waker[1]);
    cw_waker_free(g_waker[4]);
}
END_TEST

/* Wakes a waker from another thread (the wake goes through the inbox). */
static void *remote_wake_thread(void *p)
{
    cw_waker_wake_by_ref(p);
    return NULL;
}

START_TEST(abort_after_remote_wake_not_yet_taken_drops_once_and_never_polls)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j;
    spawn_gate(q, 1, &j);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, remote_wake_thread, g_waker[1]), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    /* the wake waits in the inbox: the executor has not looked yet */
    cw_join_abort(j);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    cw_waker_free(g_waker[1]);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
}
END_TEST

/* ---- detaching ------------------------------------------------------------------- */

START_TEST(join_free_detaches_running_task_which_completes_and_drops_once)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jp, *jq;
    spawn_gate(q, 1, &jp);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 1);
    spawn_simple(q, 2, &jq);
    cw_join_free(jp); /* pending */
    cw_join_free(jq); /* queued, never polled */
    ck_assert_int_eq(g_drops[1], 0);
    ck_assert_int_eq(g_drops[2], 0);
    tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 1);
    ck_assert_int_eq(g_drops[2], 1);
    ck_assert_int_eq(g_drops[1], 0);
    cw_waker_wake(g_waker[1]);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 2);
    ck_assert_int_eq(g_drops[1], 1);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_completed, 2);
    ck_assert_uint_eq(st.tasks_cancelled, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    tenv_free(&env);
    ck_assert_int_eq(g_drops[1], 1);
    ck_assert_int_eq(g_drops[2], 1);
}
END_TEST

/* ---- accessors ---------------------------------------------------------------------- */

START_TEST(status_eagain_while_running_and_state_null_unless_completed)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *j, *jc;
    spawn_gate(q, 1, &j);
    spawn_gate(q, 2, &jc);
    /* queued */
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    ck_assert_ptr_null(cw_join_state(j));
    ck_assert_ptr_null(cw_join_panic_message(j));
    tenv_turn(&env);
    /* pending */
    ck_assert_int_eq(g_polls[1], 1);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    ck_assert_ptr_null(cw_join_state(j));
    ck_assert_ptr_null(cw_join_panic_message(j));
    /* cancelled */
    cw_join_abort(jc);
    ck_assert_int_eq(cw_join_status(jc), -ECANCELED);
    ck_assert_ptr_null(cw_join_state(jc));
    ck_assert_ptr_null(cw_join_panic_message(jc));
    /* completed */
    cw_waker_wake(g_waker[1]);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(cw_join_status(j), 0);
    struct gate *g = cw_join_state(j);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->out, 77);
    ck_assert_ptr_null(cw_join_panic_message(j));
    cw_waker_free(g_waker[2]);
    cw_join_free(j);
    cw_join_free(jc);
    tenv_free(&env);
}
END_TEST

struct panicker {
    int id;
};

static cw_poll panicker_poll(void *p, cw_cx *cx)
{
    struct panicker *s = p;
    g_polls[s->id]++;
    cw_panic(cx, "boom %d", s->id);
}

static void panicker_drop(void *p)
{
    struct panicker *s = p;
    g_drops[s->id]++;
}

START_TEST(panicked_task_has_message_and_no_state)
{
    cw_config *cfg = cfg_one();
    cw_config_set_catch_panics(cfg, true);
    tenv env;
    tenv_init(&env, cfg, 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct panicker s = {.id = 4};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q, panicker_poll, &s, sizeof s, panicker_drop, &j), 0);
    ck_assert_ptr_null(cw_join_panic_message(j));
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), CW_EPANIC);
    ck_assert_int_eq(cw_join_status(j), CW_EPANIC);
    ck_assert_ptr_null(cw_join_state(j));
    ck_assert_ptr_nonnull(cw_join_panic_message(j));
    ck_assert_str_eq(cw_join_panic_message(j), "boom 4");
    ck_assert_int_eq(g_drops[4], 1);
    /* abort after a panic changes nothing */
    cw_join_abort(j);
    ck_assert_int_eq(cw_join_status(j), CW_EPANIC);
    ck_assert_int_eq(g_drops[4], 1);
    tenv_free(&env);
    ck_assert_str_eq(cw_join_panic_message(j), "boom 4");
    cw_join_free(j);
    ck_assert_int_eq(g_drops[4], 1);
}
END_TEST

/* ---- NULL handling ------------------------------------------------------------------- */

static cw_poll g_null_poll_res = CW_PENDING;
static cw_poll g_nullcx_poll_res = CW_PENDING;
static cw_join *g_pending_join;

static cw_poll nullpoll_poll(void *p, cw_cx *cx)
{
    (void)p;
    g_null_poll_res = cw_join_poll(NULL, cx);
    g_nullcx_poll_res = cw_join_poll(g_pending_join, NULL);
    return CW_READY;
}

START_TEST(null_join_handles_are_safe)
{
    ck_assert_int_eq(cw_join_status(NULL), -EINVAL);
    ck_assert_ptr_null(cw_join_state(NULL));
    ck_assert_ptr_null(cw_join_panic_message(NULL));
    cw_join_abort(NULL);
    cw_join_free(NULL);
    ck_assert_int_eq(cw_join_poll(NULL, NULL), CW_READY);

    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    cw_join *jg, *j;
    spawn_gate(q, 1, &jg);
    tenv_turn(&env);
    g_pending_join = jg;
    ck_assert_int_eq(cw_spawn(q, nullpoll_poll, NULL, 0, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(g_null_poll_res, CW_READY);
    ck_assert_int_eq(g_nullcx_poll_res, CW_READY);
    /* outside any poll: READY too, never registering anything */
    ck_assert_int_eq(cw_join_poll(jg, NULL), CW_READY);
    ck_assert_int_eq(cw_join_status(jg), -EAGAIN);
    cw_join_free(j);
    cw_join_free(jg);
    tenv_free(&env);
    cw_waker_free(g_waker[1]);
}
END_TEST

/* ---- cw_executor_run_until() refusals -------------------------------------------------- */

START_TEST(run_until_null_args_is_einval)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_join *j;
    spawn_simple(cw_executor_queue(env.ex, Q1), 1, &j);
    ck_assert_int_eq(cw_executor_run_until(NULL, j), -EINVAL);
    ck_assert_int_eq(cw_executor_run_until(env.ex, NULL), -EINVAL);
    ck_assert_int_eq(cw_executor_run_until(NULL, NULL), -EINVAL);
    ck_assert_int_eq(g_polls[1], 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

START_TEST(run_until_with_join_of_other_executor_is_einval)
{
    tenv a, b;
    tenv_init(&a, cfg_one(), 1);
    tenv_init(&b, cfg_one(), 1);
    cw_join *ja, *jb;
    spawn_simple(cw_executor_queue(a.ex, Q1), 1, &ja);
    spawn_simple(cw_executor_queue(b.ex, Q1), 2, &jb);
    ck_assert_int_eq(cw_executor_run_until(a.ex, jb), -EINVAL);
    ck_assert_int_eq(cw_executor_run_until(b.ex, ja), -EINVAL);
    ck_assert_int_eq(g_polls[1], 0);
    ck_assert_int_eq(g_polls[2], 0);
    ck_assert_int_eq(cw_join_status(ja), -EAGAIN);
    ck_assert_int_eq(cw_join_status(jb), -EAGAIN);
    ck_assert_int_eq(cw_executor_run_until(b.ex, jb), 0);
    ck_assert_int_eq(cw_executor_run_until(a.ex, ja), 0);
    cw_join_free(ja);
    cw_join_free(jb);
    tenv_free(&b);
    tenv_free(&a);
}
END_TEST

static cw_join *g_other_join;
static int g_nested_err = 12345;
static int g_nested_other_polls = -1;

struct nester {
    int id;
};

static cw_poll nester_poll(void *p, cw_cx *cx)
{
    struct nester *s = p;
    g_polls[s->id]++;
    g_nested_err = cw_executor_run_until(cw_cx_executor(cx), g_other_join);
    g_nested_other_polls = g_polls[2];
    return CW_READY;
}

START_TEST(run_until_from_inside_task_is_ebusy)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q1);
    struct nester n = {.id = 1};
    cw_join *jn;
    ck_assert_int_eq(cw_spawn(q, nester_poll, &n, sizeof n, NULL, &jn), 0);
    spawn_simple(q, 2, &g_other_join); /* queued behind the nester */
    ck_assert_int_eq(cw_executor_run_until(env.ex, jn), 0);
    ck_assert_int_eq(g_nested_err, -EBUSY);
    ck_assert_int_eq(g_nested_other_polls, 0); /* nothing ran re-entrantly */
    ck_assert_int_eq(cw_executor_run_until(env.ex, g_other_join), 0);
    ck_assert_int_eq(g_polls[2], 1);
    cw_join_free(jn);
    cw_join_free(g_other_join);
    tenv_free(&env);
}
END_TEST

/* ---- aborting a queued task that empties its queue ---------------------------------------- */

START_TEST(abort_queued_task_emptying_its_queue_keeps_executor_consistent)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_queue *q1 = cw_executor_queue(env.ex, Q1);
    cw_queue *q2 = cw_executor_queue(env.ex, Q2);
    cw_join *ja;
    spawn_simple(q1, 1, &ja);
    spawn_simple(q2, 2, NULL);
    cw_join_abort(ja);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q1, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    ck_assert_uint_eq(qs.tasks_cancelled, 1);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[1], 0);
    ck_assert_int_eq(g_polls[2], 1);
    /* with nothing runnable, q1 was never picked for a slice */
    ck_assert_int_eq(cw_queue_stats(q1, &qs), 0);
    ck_assert_uint_eq(qs.slices, 0);

    /* the queue that was emptied by the abort still serves new tasks */
    cw_join *j3, *j4, *j5;
    spawn_simple(q1, 3, &j3);
    spawn_simple(q1, 4, &j4);
    spawn_simple(q2, 5, &j5);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j3), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j4), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j5), 0);

    /* and again: abort the only queued task, with nothing else queued */
    cw_join *j6, *j7;
    spawn_simple(q2, 6, &j6);
    cw_join_abort(j6);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    spawn_simple(q2, 7, &j7);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j7), 0);
    ck_assert_int_eq(g_polls[6], 0);

    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 7);
    ck_assert_uint_eq(st.tasks_completed, 5);
    ck_assert_uint_eq(st.tasks_cancelled, 2);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_int_eq(cw_queue_stats(q1, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    ck_assert_int_eq(cw_queue_stats(q2, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    cw_join *all[] = {ja, j3, j4, j5, j6, j7};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cw_join_free(all[i]);
    tenv_free(&env);
    for (int i = 1; i <= 7; i++)
        ck_assert_int_eq(g_drops[i], 1);
}
END_TEST

/* A task that aborts another (queued) task, then spawns one on its own
 * queue. */
static cw_join *g_victim;

struct killer {
    int id;
};

static cw_poll killer_poll(void *p, cw_cx *cx)
{
    struct killer *s = p;
    g_polls[s->id]++;
    cw_join_abort(g_victim);
    struct simple c = {.id = 9, .in = 9};
    if (cw_spawn(cw_cx_queue(cx), simple_poll, &c, sizeof c, simple_drop, NULL) != 0)
        g_polls[9] = -100;
    return CW_READY;
}

static cw_queue *g_victim_q;
static int g_victim_err = 12345;

static cw_poll killer2_poll(void *p, cw_cx *cx)
{
    struct killer *s = p;
    (void)cx;
    g_polls[s->id]++;
    struct simple c = {.id = 3, .in = 3};
    g_victim_err = cw_spawn(g_victim_q, simple_poll, &c, sizeof c, simple_drop, &g_victim);
    cw_join_abort(g_victim);
    return CW_READY;
}

START_TEST(abort_from_task_emptying_running_queue_keeps_executor_consistent)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    cw_queue *q1 = cw_executor_queue(env.ex, Q1);
    cw_queue *q2 = cw_executor_queue(env.ex, Q2);
    struct killer k = {.id = 1};
    cw_join *jk;
    ck_assert_int_eq(cw_spawn(q1, killer_poll, &k, sizeof k, NULL, &jk), 0);
    spawn_simple(q1, 2, &g_victim); /* the only other task of q1 */
    ck_assert_int_eq(cw_executor_run_until(env.ex, jk), 0);
    ck_assert_int_eq(g_drops[2], 1);
    ck_assert_int_eq(cw_join_status(g_victim), -ECANCELED);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[2], 0);
    ck_assert_int_eq(g_polls[9], 1); /* spawned after the abort, ran */
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(q1, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    cw_join *jv1 = g_victim;
    g_victim = NULL;

    /* a task of q1 spawns a task on q2 and aborts it while it is queued
     * there (q2 is not the running queue) */
    cw_join *jk2;
    g_victim_q = q2;
    k.id = 4;
    ck_assert_int_eq(cw_spawn(q1, killer2_poll, &k, sizeof k, NULL, &jk2), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jk2), 0);
    ck_assert_int_eq(g_victim_err, 0);
    ck_assert_ptr_nonnull(g_victim);
    ck_assert_int_eq(g_drops[3], 1);
    ck_assert_int_eq(cw_join_status(g_victim), -ECANCELED);
    for (int i = 0; i < 3; i++)
        tenv_turn(&env);
    ck_assert_int_eq(g_polls[3], 0);
    ck_assert_int_eq(cw_queue_stats(q2, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    ck_assert_uint_eq(qs.tasks_cancelled, 1);

    cw_join *j5, *j6;
    spawn_simple(q1, 5, &j5);
    spawn_simple(q2, 6, &j6);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j5), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j6), 0);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    ck_assert_int_eq(cw_queue_stats(q1, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    ck_assert_int_eq(cw_queue_stats(q2, &qs), 0);
    ck_assert_uint_eq(qs.runnable, 0);
    cw_join_free(jk);
    cw_join_free(jk2);
    cw_join_free(jv1);
    cw_join_free(g_victim);
    cw_join_free(j5);
    cw_join_free(j6);
    tenv_free(&env);
    for (int i = 2; i <= 6; i++)
        ck_assert_int_eq(g_drops[i], i == 4 ? 0 : 1);
    ck_assert_int_eq(g_drops[9], 1);
}
END_TEST

/* Every test starts from clean globals (also with CK_FORK=no). */
/* Aborts the tasks in its list from its poll and records what it sees
 * there: the victims' drops and statuses, before and after a
 * cw_should_yield() (which drains the inbox inside the poll). */
struct aborter {
    int id;
    cw_join **victims;        /* the test's array (filled after spawn) */
    cw_waker *remote_wake;    /* woken from another thread first */
    int nvictims;
    bool free_handles; /* cw_join_free() each right after aborting it */
    int drops_in_poll, drops_after_yield;
    int status_in_poll[3];
};

static cw_poll aborter_poll(void *p, cw_cx *cx)
{
    struct aborter *s = p;
    g_polls[s->id]++;
    if (s->remote_wake) { /* its task waits in the inbox from here */
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, remote_wake_thread, s->remote_wake), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
    }
    for (int i = 0; i < s->nvictims; i++) {
        cw_join_abort(s->victims[i]);
        cw_join_abort(s->victims[i]); /* twice: still one drop */
        s->status_in_poll[i] = cw_join_status(s->victims[i]);
        if (s->free_handles) {
            cw_join_free(s->victims[i]);
            s->victims[i] = NULL;
        }
    }
    for (int id = 0; id < MAXT; id++)
        s->drops_in_poll += id != s->id ? g_drops[id] : 0;
    (void)cw_should_yield(cx);
    for (int id = 0; id < MAXT; id++)
        s->drops_after_yield += id != s->id ? g_drops[id] : 0;
    return CW_READY;
}

/* Was issue 17: aborting another, non-running task ran its drop function
 * synchronously, inside the aborting task's poll; only a self-abort was
 * deferred. Now both are marked and reaped once the poll returns. The
 * victims: one pending on a wake (id 2), one queued and never polled
 * (id 3, behind the aborter), and one on the other queue that another
 * thread woke during the poll (id 4: on the inbox already). Round 1
 * frees the handles right after the aborts (detached while marked). */
START_TEST(abort_of_another_task_drops_after_the_aborting_poll_not_inside)
{
    for (int round = 0; round < 2; round++) {
        memset(g_polls, 0, sizeof g_polls);
        memset(g_drops, 0, sizeof g_drops);
        tenv env;
        tenv_init(&env, cfg_two(), 1);
        cw_queue *q1 = cw_executor_queue(env.ex, Q1);
        cw_queue *q2 = cw_executor_queue(env.ex, Q2);
        cw_join *jv[3];
        spawn_gate(q1, 2, &jv[0]);
        spawn_gate(q2, 4, &jv[2]);
        for (int i = 0; i < 3; i++)
            tenv_turn(&env);
        ck_assert_int_eq(g_polls[2], 1);
        ck_assert_int_eq(g_polls[4], 1);
        struct aborter a = {.id = 1, .victims = jv, .remote_wake = g_waker[4], .nvictims = 3,
                            .free_handles = round == 1};
        cw_join *ja;
        ck_assert_int_eq(cw_spawn(q1, aborter_poll, &a, sizeof a, NULL, &ja), 0);
        spawn_gate(q1, 3, &jv[1]); /* queued behind the aborter: never polled */
        ck_assert_int_eq(cw_executor_run_until(env.ex, ja), 0);
        struct aborter *out = cw_join_state(ja);
        ck_assert_msg(out->drops_in_poll == 0, "a drop ran inside the aborting poll");
        ck_assert_msg(out->drops_after_yield == 0, "a drop ran inside cw_should_yield()");
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(out->status_in_poll[i], -EAGAIN); /* not reaped yet */
        /* reaped right after that poll: no loop turn needed */
        ck_assert_int_eq(g_drops[2], 1);
        ck_assert_int_eq(g_drops[3], 1);
        ck_assert_int_eq(g_drops[4], 1);
        if (round == 0)
            for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(cw_join_status(jv[i]), -ECANCELED);
                ck_assert_ptr_null(cw_join_state(jv[i]));
            }
        for (int i = 0; i < 3; i++)
            tenv_turn(&env);
        ck_assert_int_eq(g_polls[2], 1); /* none polled again */
        ck_assert_int_eq(g_polls[3], 0);
        ck_assert_int_eq(g_polls[4], 1);
        struct cw_executor_stats st = stats_of(env.ex);
        ck_assert_uint_eq(st.tasks_live, 0);
        ck_assert_uint_eq(st.tasks_cancelled, 3);
        ck_assert_uint_eq(st.tasks_completed, 1);
        cw_waker_free(g_waker[2]); /* stale wakers: no-ops, then freed */
        cw_waker_wake(g_waker[4]);
        g_waker[2] = g_waker[4] = NULL;
        if (round == 0)
            for (int i = 0; i < 3; i++)
                cw_join_free(jv[i]);
        cw_join_free(ja);
        tenv_free(&env);
        for (int id = 2; id <= 4; id++)
            ck_assert_int_eq(g_drops[id], 1);
    }
}
END_TEST

static void reset(void)
{
    memset(g_polls, 0, sizeof g_polls);
    memset(g_drops, 0, sizeof g_drops);
    memset(g_waker, 0, sizeof g_waker);
    g_self_join = NULL;
    g_drops_seen_in_poll = -1;
    g_null_poll_res = CW_PENDING;
    g_nullcx_poll_res = CW_PENDING;
    g_pending_join = NULL;
    g_other_join = NULL;
    g_nested_err = 12345;
    g_nested_other_polls = -1;
    g_victim = NULL;
    memset(g_slot, 0, sizeof g_slot);
    g_victim_q = NULL;
    g_victim_err = 12345;
}

static Suite *suite(void)
{
    Suite *s = suite_create("join");
    TCase *tc = tcase_create("join");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, abort_before_first_poll_never_polls_and_drops_once);
    tcase_add_test(tc, abort_while_pending_drops_inside_abort_and_stale_waker_is_noop);
    tcase_add_test(tc, abort_while_pending_with_waker_in_own_state_releases_it);
    tcase_add_test(tc, abort_after_completion_keeps_status_and_state);
    tcase_add_test(tc, abort_twice_second_is_noop_and_drop_ran_once);
    tcase_add_test(tc, abort_after_executor_free_is_noop);
    tcase_add_test(tc, task_aborting_itself_then_pending_ends_cancelled_after_poll);
    tcase_add_test(tc, task_aborting_itself_then_ready_ends_cancelled_after_poll);
    tcase_add_test(tc, join_poll_wakes_waiter_when_awaited_task_completes);
    tcase_add_test(tc, join_poll_waiter_sees_ecanceled_when_awaited_task_aborted);
    tcase_add_test(tc, join_poll_on_already_ended_task_is_ready_at_once);
    tcase_add_test(tc, join_poll_repolled_waiter_is_woken_once_task_ends);
    tcase_add_test(tc, aborted_waiter_is_not_polled_when_awaited_task_ends);
    tcase_add_test(tc, join_freed_by_waiter_drop_during_executor_free_is_safe);
    tcase_add_test(tc, abort_after_remote_wake_not_yet_taken_drops_once_and_never_polls);
    tcase_add_test(tc, join_free_detaches_running_task_which_completes_and_drops_once);
    tcase_add_test(tc, status_eagain_while_running_and_state_null_unless_completed);
    tcase_add_test(tc, panicked_task_has_message_and_no_state);
    tcase_add_test(tc, null_join_handles_are_safe);
    tcase_add_test(tc, run_until_null_args_is_einval);
    tcase_add_test(tc, run_until_with_join_of_other_executor_is_einval);
    tcase_add_test(tc, run_until_from_inside_task_is_ebusy);
    tcase_add_test(tc, abort_queued_task_emptying_its_queue_keeps_executor_consistent);
    tcase_add_test(tc, abort_from_task_emptying_running_queue_keeps_executor_consistent);
    tcase_add_test(tc, abort_of_another_task_drops_after_the_aborting_poll_not_inside);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
