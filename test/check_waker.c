/* check_waker.c - wakers: a wake enqueues a task once, a wake during the
 * task's own poll polls it again, waking an ended task does nothing, clones
 * keep the task block alive, wakes from other threads are never lost and
 * reach a sleeping or a busy executor, and a waker outlives its executor.
 *
 * Two assertions are white-box (internal.h): the reference count of a task
 * block (waker.h promises clone/free are one increment/decrement) and the
 * executor's "sleeping" flag (used only to make sure a remote wake is sent
 * while the executor is blocked in the event loop, not to time anything). */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h"

enum { Q = 1, QHI = 2, QLO = 3 };

/* ---- helpers ------------------------------------------------------------ */

static cw_config *one_queue_cfg(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    return cfg;
}

static uint64_t runnable_of(const cw_queue *q)
{
    struct cw_queue_stats st;
    ck_assert_int_eq(cw_queue_stats(q, &st), 0);
    return st.runnable;
}

static unsigned refs_of(const cw_waker *w)
{
    return CW__REF_COUNT(atomic_load(&cw__task_of_waker(w)->refs));
}

/* The order in which tasks were polled, one letter per poll. */
typedef struct tlog {
    char s[256];
    int n;
} tlog;

/* A task driven by the test through a struct the test owns. */
typedef struct probe {
    int polls;
    int ready_at;          /* the poll that returns READY (0: none) */
    int yields;            /* polls 1..yields wake the task from inside */
    int wakes_per_yield;   /* times each of those polls wakes it (0: 1) */
    int drops;
    int cx_matches;        /* later polls whose cx waker will_wake parked */
    cw_waker *parked;      /* the first poll parks a clone of its waker */
    tlog *log;
    char tag;
} probe;

static cw_poll probe_poll(void *state, cw_cx *cx)
{
    probe *p = *(probe **)state;
    cw_waker *me = cw_cx_waker(cx);

    ck_assert_ptr_nonnull(me);
    p->polls++;
    if (p->log && p->log->n < (int)sizeof p->log->s - 1)
        p->log->s[p->log->n++] = p->tag;
    if (!p->parked)
        p->parked = cw_waker_clone(me);
    else if (cw_waker_will_wake(p->parked, me))
        p->cx_matches++;
    if (p->ready_at && p->polls >= p->ready_at)
        return CW_READY;
    if (p->polls <= p->yields)
        for (int i = 0; i < (p->wakes_per_yield ? p->wakes_per_yield : 1); i++)
            cw_waker_wake_by_ref(me);
    return CW_PENDING;
}

static void probe_drop(void *state)
{
    (*(probe **)state)->drops++;
}

static cw_join *spawn_probe(cw_queue *q, probe *p)
{
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(q, probe_poll, &p, sizeof p, probe_drop, &j), 0);
    ck_assert_ptr_nonnull(j);
    return j;
}

static void spawn_probe_detached(cw_queue *q, probe *p)
{
    ck_assert_int_eq(cw_spawn(q, probe_poll, &p, sizeof p, probe_drop, NULL), 0);
}

/* Run fn(arg) on a new thread and wait for it. */
static void on_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fn, arg), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/* A list of wake operations for another thread to perform in order. */
enum wake_op { OP_WAKE_BY_REF, OP_WAKE, OP_FREE };
typedef struct remote_ops {
    int n;
    enum wake_op op[8];
    cw_waker *w[8];
} remote_ops;

static void *remote_ops_run(void *arg)
{
    remote_ops *r = arg;
    for (int i = 0; i < r->n; i++) {
        switch (r->op[i]) {
        case OP_WAKE_BY_REF:
            cw_waker_wake_by_ref(r->w[i]);
            break;
        case OP_WAKE:
            cw_waker_wake(r->w[i]);
            break;
        case OP_FREE:
            cw_waker_free(r->w[i]);
            break;
        }
    }
    return NULL;
}

static void remote_add(remote_ops *r, enum wake_op op, cw_waker *w)
{
    ck_assert_int_lt(r->n, 8);
    r->op[r->n] = op;
    r->w[r->n] = w;
    r->n++;
}

/* Open descriptors of this process, or -1 if /proc is not there. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- a wake enqueues once ------------------------------------------------ */

START_TEST(wake_by_ref_twice_before_poll_enqueues_once)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {0};
    cw_join *j = spawn_probe(q, &p);

    tenv_turn(&env);
    ck_assert_int_eq(p.polls, 1);
    ck_assert_ptr_nonnull(p.parked);
    ck_assert_uint_eq(runnable_of(q), 0);

    cw_waker_wake_by_ref(p.parked);
    cw_waker_wake_by_ref(p.parked);
    ck_assert_uint_eq(runnable_of(q), 1); /* in the FIFO once */
    turns(&env, 4);
    ck_assert_int_eq(p.polls, 2); /* polled exactly once more */
    ck_assert_uint_eq(stats_of(env.ex).polls, 2);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);

    cw_waker_free(p.parked);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(p.drops, 1);
}
END_TEST

START_TEST(clone_and_wake_twice_before_poll_enqueues_once)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {0};
    cw_join *j = spawn_probe(q, &p);

    tenv_turn(&env);
    ck_assert_int_eq(p.polls, 1);
    cw_waker *a = cw_waker_clone(p.parked);
    cw_waker *b = cw_waker_clone(p.parked);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    cw_waker_wake(a);
    cw_waker_wake(b);
    ck_assert_uint_eq(runnable_of(q), 1);
    turns(&env, 4);
    ck_assert_int_eq(p.polls, 2);
    ck_assert_uint_eq(stats_of(env.ex).polls, 2);

    cw_waker_free(p.parked);
    cw_join_free(j);
    tenv_free(&env);
    ck_assert_int_eq(p.drops, 1);
}
END_TEST

START_TEST(wake_enqueues_at_tail_in_wake_order)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    tlog log = {0};
    probe a = {.log = &log, .tag = 'A'}, b = {.log = &log, .tag = 'B'},
          c = {.log = &log, .tag = 'C'}, d = {.log = &log, .tag = 'D', .ready_at = 1};
    spawn_probe_detached(q, &a);
    spawn_probe_detached(q, &b);
    spawn_probe_detached(q, &c);
    tenv_turn(&env);
    ck_assert_str_eq(log.s, "ABC");

    spawn_probe_detached(q, &d); /* already in the FIFO: the wakes go behind it */
    cw_waker_wake_by_ref(c.parked);
    cw_waker_wake_by_ref(a.parked);
    cw_waker_wake_by_ref(b.parked);
    cw_waker_wake_by_ref(c.parked); /* already queued: stays where it is */
    turns(&env, 3);
    ck_assert_str_eq(log.s, "ABCDCAB");

    cw_waker_free(a.parked);
    cw_waker_free(b.parked);
    cw_waker_free(c.parked);
    cw_waker_free(d.parked);
    tenv_free(&env);
}
END_TEST

/* ---- a wake during the task's own poll ----------------------------------- */

START_TEST(wake_during_own_poll_polls_again_after_pending_once)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    /* polls 1 and 2 wake themselves twice each and return PENDING; poll 3
     * returns PENDING with no wake arranged (other than the parked clone) */
    probe p = {.yields = 2, .wakes_per_yield = 2, .ready_at = 4};
    cw_join *j = spawn_probe(q, &p);

    turns(&env, 4);
    ck_assert_int_eq(p.polls, 3);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    ck_assert_uint_eq(runnable_of(q), 0);

    cw_waker_wake_by_ref(p.parked);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(p.polls, 4);
    ck_assert_int_eq(p.cx_matches, 3); /* the same task's waker every poll */

    cw_waker_free(p.parked);
    cw_join_free(j);
    ck_assert_int_eq(p.drops, 1);
    tenv_free(&env);
}
END_TEST

START_TEST(yielding_task_runs_to_completion_via_self_wakes)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    probe p = {.yields = 100, .ready_at = 10};
    cw_join *j = spawn_probe(cw_executor_queue(env.ex, Q), &p);

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(p.polls, 10);

    cw_waker_free(p.parked);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

static cw_poll wake_self_then_ready(void *state, cw_cx *cx)
{
    int *polls = *(int **)state;
    (*polls)++;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_READY;
}

START_TEST(wake_during_own_poll_then_ready_is_not_polled_again)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    int polls = 0, *pp = &polls;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), wake_self_then_ready,
                              &pp, sizeof pp, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    turns(&env, 3);
    ck_assert_int_eq(polls, 1);
    ck_assert_uint_eq(stats_of(env.ex).polls, 1);
    ck_assert_uint_eq(runnable_of(cw_executor_queue(env.ex, Q)), 0);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* ---- waking an ended task ----------------------------------------------- */

START_TEST(wake_of_finished_task_is_noop_and_clone_is_freeable_after)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {.ready_at = 1}; /* parks a clone, then completes */
    cw_join *j = spawn_probe(q, &p);

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(p.polls, 1);
    ck_assert_ptr_nonnull(p.parked);
    struct cw_executor_stats s0 = stats_of(env.ex);

    cw_waker_wake_by_ref(p.parked);
    ck_assert_uint_eq(runnable_of(q), 0);
    cw_waker *c = cw_waker_clone(p.parked);
    cw_waker_wake(c); /* consumes c, wakes nothing */
    remote_ops r = {0};
    remote_add(&r, OP_WAKE_BY_REF, p.parked);
    on_thread(remote_ops_run, &r);
    turns(&env, 3);

    struct cw_executor_stats s1 = stats_of(env.ex);
    ck_assert_int_eq(p.polls, 1);
    ck_assert_uint_eq(s1.polls, s0.polls);
    ck_assert_uint_eq(s1.wakes_local, s0.wakes_local);
    ck_assert_uint_eq(s1.tasks_completed, 1);
    ck_assert_int_eq(cw_join_status(j), 0);
    ck_assert_ptr_nonnull(cw_join_state(j)); /* the result is untouched */
    ck_assert_int_eq(p.drops, 0);

    cw_join_free(j);
    ck_assert_int_eq(p.drops, 1);
    cw_waker_wake_by_ref(p.parked); /* the clone alone keeps the block */
    cw_waker_wake(p.parked);
    ck_assert_int_eq(p.drops, 1);
    ck_assert_int_eq(p.polls, 1);
    tenv_free(&env);
}
END_TEST

START_TEST(wake_of_aborted_task_is_noop)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe idle = {0}, queued = {0};
    cw_join *ji = spawn_probe(q, &idle);
    cw_join *jq = spawn_probe(q, &queued);
    tenv_turn(&env);
    ck_assert_int_eq(idle.polls, 1);
    ck_assert_int_eq(queued.polls, 1);

    /* aborted while waiting */
    cw_join_abort(ji);
    ck_assert_int_eq(cw_join_status(ji), -ECANCELED);
    ck_assert_int_eq(idle.drops, 1);
    /* aborted while in the FIFO: taken out */
    cw_waker_wake_by_ref(queued.parked);
    ck_assert_uint_eq(runnable_of(q), 1);
    cw_join_abort(jq);
    ck_assert_uint_eq(runnable_of(q), 0);
    ck_assert_int_eq(queued.drops, 1);

    cw_waker_wake_by_ref(idle.parked);
    cw_waker_wake_by_ref(queued.parked);
    ck_assert_uint_eq(runnable_of(q), 0);
    remote_ops r = {0};
    remote_add(&r, OP_WAKE_BY_REF, idle.parked);
    remote_add(&r, OP_WAKE_BY_REF, queued.parked);
    on_thread(remote_ops_run, &r);
    turns(&env, 3);
    ck_assert_int_eq(idle.polls, 1);
    ck_assert_int_eq(queued.polls, 1);
    ck_assert_int_eq(idle.drops, 1);
    ck_assert_int_eq(queued.drops, 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_cancelled, 2);

    cw_waker_wake(idle.parked);
    cw_waker_free(queued.parked);
    cw_join_free(ji);
    cw_join_free(jq);
    tenv_free(&env);
    ck_assert_int_eq(idle.drops, 1);
    ck_assert_int_eq(queued.drops, 1);
}
END_TEST

/* ---- references ---------------------------------------------------------- */

/* Order in which the three references of a finished task are released. */
enum rel { REL_JOIN, REL_PARKED, REL_CLONE };

static void release_in_order(const enum rel order[3])
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {.ready_at = 1};
    cw_join *j = spawn_probe(q, &p);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    cw_waker *clone = cw_waker_clone(p.parked);
    ck_assert(cw_waker_will_wake(clone, p.parked));

    bool join_held = true, parked_held = true, clone_held = true;
    for (int i = 0; i < 3; i++) {
        switch (order[i]) {
        case REL_JOIN:
            cw_join_free(j);
            join_held = false;
            ck_assert_int_eq(p.drops, 1);
            break;
        case REL_PARKED:
            cw_waker_free(p.parked);
            parked_held = false;
            break;
        case REL_CLONE:
            cw_waker_free(clone);
            clone_held = false;
            break;
        }
        cw_waker *held = parked_held ? p.parked : clone_held ? clone : NULL;
        if (!held)
            continue;
        /* the block is alive: the waker still works (as a no-op) and no
         * new task of the same size is given the block */
        cw_waker_wake_by_ref(held);
        if (join_held)
            ck_assert_int_eq(cw_join_status(j), 0);
        probe fresh = {.ready_at = 1};
        cw_join *jf = spawn_probe(q, &fresh);
        ck_assert_int_eq(cw_executor_run_until(env.ex, jf), 0);
        ck_assert(!cw_waker_will_wake(held, fresh.parked));
        cw_waker_free(fresh.parked);
        cw_join_free(jf);
    }
    ck_assert_int_eq(p.polls, 1);
    ck_assert_int_eq(p.drops, 1);
    tenv_free(&env);
}

START_TEST(clones_keep_finished_task_alive_freed_in_any_order)
{
    static const enum rel orders[][3] = {
        {REL_JOIN, REL_PARKED, REL_CLONE}, {REL_JOIN, REL_CLONE, REL_PARKED},
        {REL_PARKED, REL_JOIN, REL_CLONE}, {REL_PARKED, REL_CLONE, REL_JOIN},
        {REL_CLONE, REL_JOIN, REL_PARKED}, {REL_CLONE, REL_PARKED, REL_JOIN},
    };
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
        release_in_order(orders[i]);
}
END_TEST

START_TEST(clone_keeps_detached_task_alive_after_completion)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {.ready_at = 1};
    spawn_probe_detached(q, &p);
    turns(&env, 2);
    ck_assert_int_eq(p.polls, 1);
    ck_assert_int_eq(p.drops, 1); /* no join handle: dropped at completion */
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);

    cw_waker *c = cw_waker_clone(p.parked);
    ck_assert(cw_waker_will_wake(c, p.parked));
    cw_waker_wake_by_ref(c);
    turns(&env, 2);
    ck_assert_int_eq(p.polls, 1);
    cw_waker_free(p.parked);
    cw_waker_wake(c);
    ck_assert_int_eq(p.drops, 1);
    tenv_free(&env);
}
END_TEST

START_TEST(wake_releases_reference_wake_by_ref_keeps_it)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe p = {0};
    cw_join *j = spawn_probe(q, &p);
    tenv_turn(&env);
    unsigned r0 = refs_of(p.parked);

    cw_waker *c = cw_waker_clone(p.parked);
    ck_assert_uint_eq(refs_of(p.parked), r0 + 1);
    /* wake_by_ref keeps c: usable again and again */
    for (int i = 0; i < 3; i++) {
        cw_waker_wake_by_ref(c);
        ck_assert_uint_eq(refs_of(p.parked), r0 + 1);
        ck_assert_uint_eq(runnable_of(q), 1);
        tenv_turn(&env);
        ck_assert_int_eq(p.polls, 2 + i);
    }
    /* wake wakes and releases */
    cw_waker_wake(c);
    ck_assert_uint_eq(refs_of(p.parked), r0);
    ck_assert_uint_eq(runnable_of(q), 1);
    tenv_turn(&env);
    ck_assert_int_eq(p.polls, 5);
    /* free releases without waking */
    c = cw_waker_clone(p.parked);
    cw_waker_free(c);
    ck_assert_uint_eq(refs_of(p.parked), r0);
    ck_assert_uint_eq(runnable_of(q), 0);
    turns(&env, 2);
    ck_assert_int_eq(p.polls, 5);

    cw_waker_free(p.parked);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* ---- NULL and identity ---------------------------------------------------- */

START_TEST(null_wakers_are_noops_and_will_wake_compares_tasks)
{
    ck_assert_ptr_null(cw_waker_clone(NULL));
    cw_waker_wake(NULL);
    cw_waker_wake_by_ref(NULL);
    cw_waker_free(NULL);
    ck_assert_ptr_null(cw_cx_waker(NULL));
    ck_assert(!cw_waker_will_wake(NULL, NULL));

    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    probe a = {0}, b = {0};
    spawn_probe_detached(q, &a);
    spawn_probe_detached(q, &b);
    tenv_turn(&env);
    cw_waker *a2 = cw_waker_clone(a.parked);
    ck_assert(cw_waker_will_wake(a.parked, a.parked));
    ck_assert(cw_waker_will_wake(a.parked, a2));
    ck_assert(cw_waker_will_wake(a2, a.parked));
    ck_assert(!cw_waker_will_wake(a.parked, b.parked));
    ck_assert(!cw_waker_will_wake(b.parked, a2));
    ck_assert(!cw_waker_will_wake(a.parked, NULL));
    ck_assert(!cw_waker_will_wake(NULL, a.parked));
    /* the cx waker of a later poll wakes the same task as the clone */
    cw_waker_wake(a2);
    tenv_turn(&env);
    ck_assert_int_eq(a.polls, 2);
    ck_assert_int_eq(a.cx_matches, 1);

    cw_waker_free(a.parked);
    cw_waker_free(b.parked);
    tenv_free(&env);
}
END_TEST

/* ---- wakes from other threads ---------------------------------------------- */

/* A task that parks a clone of its waker in `slot` for a thread to take. */
typedef struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cw_waker *slot;
    int polls;
    cw_executor *ex;
} handoff;

static cw_poll handoff_poll(void *state, cw_cx *cx)
{
    handoff *h = *(handoff **)state;
    if (++h->polls > 1)
        return CW_READY;
    pthread_mutex_lock(&h->mu);
    h->slot = cw_waker_clone(cw_cx_waker(cx));
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return CW_PENDING;
}

static void *handoff_waker_thread(void *arg)
{
    handoff *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->slot)
        pthread_cond_wait(&h->cv, &h->mu);
    cw_waker *w = h->slot;
    h->slot = NULL;
    pthread_mutex_unlock(&h->mu);
    /* Wait until the executor has gone idle (it then blocks in the event
     * loop): this wake must go through the notification fd. */
    while (!atomic_load(&h->ex->shared->sleeping))
        sched_yield();
    cw_waker_wake(w);
    return NULL;
}

START_TEST(remote_wake_wakes_executor_blocked_in_run_until)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 0);
    handoff h = {.ex = env.ex};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    handoff *hp = &h;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), handoff_poll, &hp,
                              sizeof hp, NULL, &j), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, handoff_waker_thread, &h), 0);

    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(h.polls, 2);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.wakes_remote, 1);
    ck_assert_uint_eq(st.wakes_local, 0);
    ck_assert_uint_eq(st.tasks_completed, 1);

    cw_join_free(j);
    tenv_free(&env);
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
}
END_TEST

#define HAMMER_THREADS 3
#define HAMMER_ROUNDS 200
#define HAMMER_WAKES 50

/* The task needs HAMMER_ROUNDS wake-ups: each poll parks a fresh clone per
 * thread and bumps gen; each thread, on seeing a new gen, wakes it
 * HAMMER_WAKES times by reference and once more by value. */
typedef struct hammer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gen;
    bool done;
    int polls;
    cw_waker *slot[HAMMER_THREADS];
} hammer;

typedef struct hammer_arg {
    hammer *h;
    int idx;
    int batches;
} hammer_arg;

static cw_poll hammer_poll(void *state, cw_cx *cx)
{
    hammer *h = *(hammer **)state;
    pthread_mutex_lock(&h->mu);
    h->polls++;
    if (h->polls > HAMMER_ROUNDS) {
        h->done = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        return CW_READY;
    }
    h->gen++;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        cw_waker_free(h->slot[i]);
        h->slot[i] = cw_waker_clone(cw_cx_waker(cx));
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return CW_PENDING;
}

static void *hammer_thread(void *arg)
{
    hammer_arg *a = arg;
    hammer *h = a->h;
    int seen = 0;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->gen == seen && !h->done)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->done)
            break;
        seen = h->gen;
        cw_waker *w = h->slot[a->idx];
        h->slot[a->idx] = NULL;
        pthread_mutex_unlock(&h->mu);
        if (w) {
            for (int i = 0; i < HAMMER_WAKES; i++)
                cw_waker_wake_by_ref(w);
            cw_waker_wake(w);
            a->batches++;
        }
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

START_TEST(many_remote_wakes_from_three_threads_lose_no_wake)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    hammer h = {.gen = 0};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    hammer *hp = &h;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, Q), hammer_poll, &hp,
                              sizeof hp, NULL, &j), 0);
    pthread_t th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        args[i] = (hammer_arg){.h = &h, .idx = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_thread, &args[i]), 0);
    }

    /* returns only if every round's wakes got through */
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    int batches = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        batches += args[i].batches;
    }
    ck_assert_int_eq(h.polls, HAMMER_ROUNDS + 1);
    /* Not batches >= HAMMER_ROUNDS: one thread's 51 wakes of the same
     * task can wake it again after the poll they caused re-parked it, so
     * a round can pass without a new batch. */
    ck_assert_int_ge(batches, 1);
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_ge(st.wakes_remote, HAMMER_ROUNDS);
    ck_assert_uint_le(st.wakes_remote, (uint64_t)batches * (HAMMER_WAKES + 1));
    ck_assert_uint_eq(st.wakes_local, 0);
    ck_assert_uint_eq(st.polls, HAMMER_ROUNDS + 1);

    for (int i = 0; i < HAMMER_THREADS; i++)
        cw_waker_free(h.slot[i]);
    cw_join_free(j);
    tenv_free(&env);
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
}
END_TEST

START_TEST(remote_wakes_from_one_thread_keep_their_order)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    tlog log = {0};
    probe a = {.log = &log, .tag = 'A'}, b = {.log = &log, .tag = 'B'},
          c = {.log = &log, .tag = 'C'};
    spawn_probe_detached(q, &a);
    spawn_probe_detached(q, &b);
    spawn_probe_detached(q, &c);
    tenv_turn(&env);
    ck_assert_str_eq(log.s, "ABC");

    remote_ops r = {0};
    remote_add(&r, OP_WAKE_BY_REF, c.parked);
    remote_add(&r, OP_WAKE_BY_REF, a.parked);
    remote_add(&r, OP_WAKE_BY_REF, c.parked);
    remote_add(&r, OP_WAKE_BY_REF, b.parked);
    on_thread(remote_ops_run, &r);
    turns(&env, 3);
    ck_assert_str_eq(log.s, "ABCCAB");
    ck_assert_uint_ge(stats_of(env.ex).wakes_remote, 3);

    cw_waker_free(a.parked);
    cw_waker_free(b.parked);
    cw_waker_free(c.parked);
    tenv_free(&env);
}
END_TEST

/* Queue QLO (weight 1) runs a CPU-bound task A that yields after every
 * 10 us of fake time; in its third poll a thread wakes task B, on queue QHI
 * (weight 100), and is joined before A returns. */
typedef struct busy {
    tenv *env;
    tlog log;
    uint64_t rounds_at[64];
    int a_polls, b_polls;
    cw_waker *b_waker;
    int b_wake_index; /* log index of A's poll that woke B */
} busy;

static void *busy_wake_b(void *arg)
{
    busy *s = arg;
    cw_waker *w = s->b_waker;
    s->b_waker = NULL;
    cw_waker_wake(w);
    return NULL;
}

static void busy_log(busy *s, cw_cx *cx, char tag)
{
    ck_assert_int_lt(s->log.n, 63);
    s->rounds_at[s->log.n] = stats_of(cw_cx_executor(cx)).rounds;
    s->log.s[s->log.n++] = tag;
}

static cw_poll busy_a(void *state, cw_cx *cx)
{
    busy *s = *(busy **)state;
    busy_log(s, cx, 'A');
    s->env->clk.now += 10000; /* 10 us of work */
    if (++s->a_polls == 3) {
        ck_assert_ptr_nonnull(s->b_waker);
        s->b_wake_index = s->log.n - 1;
        on_thread(busy_wake_b, s);
    }
    if (s->a_polls == 8)
        return CW_READY;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

static cw_poll busy_b(void *state, cw_cx *cx)
{
    busy *s = *(busy **)state;
    busy_log(s, cx, 'B');
    if (++s->b_polls == 1) {
        s->b_waker = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

START_TEST(remote_wake_while_busy_is_taken_before_next_poll)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, QLO, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, QHI, 100), 0);
    tenv env;
    tenv_init(&env, cfg, 1);
    busy s = {.env = &env, .b_wake_index = -1};
    busy *sp = &s;
    cw_join *jb, *ja;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, QHI), busy_b, &sp, sizeof sp,
                              NULL, &jb), 0);
    tenv_turn(&env); /* B parks its waker */
    ck_assert_int_eq(s.b_polls, 1);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, QLO), busy_a, &sp, sizeof sp,
                              NULL, &ja), 0);

    ck_assert_int_eq(cw_executor_run_until(env.ex, ja), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jb), 0);
    ck_assert_int_eq(s.a_polls, 8);
    ck_assert_int_eq(s.b_polls, 2);
    ck_assert_int_ge(s.b_wake_index, 0);
    int i = s.b_wake_index;
    /* B, on the heavier queue, runs before A's next poll, in the same round */
    ck_assert_msg(s.log.s[i + 1] == 'B', "poll order %s: B not right after A's 3rd poll",
                  s.log.s);
    ck_assert_uint_eq(s.rounds_at[i + 1], s.rounds_at[i]);
    ck_assert_uint_eq(stats_of(env.ex).wakes_remote, 1);

    cw_join_free(ja);
    cw_join_free(jb);
    tenv_free(&env);
}
END_TEST

/* ---- a waker outlives its executor ------------------------------------------ */

START_TEST(waker_outliving_executor_is_noop_and_freeable_on_any_thread)
{
    int fds0 = open_fds();
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    probe p = {0};
    cw_join *j = spawn_probe(cw_executor_queue(env.ex, Q), &p);
    tenv_turn(&env);
    ck_assert_int_eq(p.polls, 1);
    cw_waker *local = cw_waker_clone(p.parked);
    cw_waker *remote_a = cw_waker_clone(p.parked);
    cw_waker *remote_b = cw_waker_clone(p.parked);

    tenv_free(&env); /* cancels the task */
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_int_eq(p.drops, 1);

    cw_waker_wake_by_ref(local);
    cw_waker_wake(local);
    cw_waker *again = cw_waker_clone(p.parked);
    ck_assert(cw_waker_will_wake(again, p.parked));
    cw_waker_free(again);
    cw_join_free(j);

    remote_ops r = {0};
    remote_add(&r, OP_WAKE_BY_REF, remote_a);
    remote_add(&r, OP_WAKE, remote_a);
    remote_add(&r, OP_WAKE_BY_REF, p.parked);
    remote_add(&r, OP_WAKE, remote_b);
    remote_add(&r, OP_FREE, p.parked); /* the last reference, on another thread */
    on_thread(remote_ops_run, &r);

    ck_assert_int_eq(p.polls, 1);
    ck_assert_int_eq(p.drops, 1);
    if (fds0 >= 0) /* the notification fd went with the last reference */
        ck_assert_int_eq(open_fds(), fds0);
}
END_TEST

/* ---- counters ------------------------------------------------------------- */

START_TEST(wakes_local_counts_wakes_on_executor_thread_only)
{
    tenv env;
    tenv_init(&env, one_queue_cfg(), 1);
    probe p = {.yields = 1}; /* poll 1 wakes itself once */
    cw_join *j = spawn_probe(cw_executor_queue(env.ex, Q), &p);

    turns(&env, 2);
    ck_assert_int_eq(p.polls, 2);
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 1); /* spawn is not a wake */

    for (int i = 0; i < 3; i++) {
        cw_waker_wake_by_ref(p.parked);
        tenv_turn(&env);
    }
    ck_assert_int_eq(p.polls, 5);
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 4);
    ck_assert_uint_eq(stats_of(env.ex).wakes_remote, 0);

    remote_ops r = {0};
    remote_add(&r, OP_WAKE_BY_REF, p.parked);
    on_thread(remote_ops_run, &r);
    tenv_turn(&env);
    ck_assert_int_eq(p.polls, 6);
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 4);
    ck_assert_uint_eq(stats_of(env.ex).wakes_remote, 1);

    p.ready_at = 7;
    cw_waker_wake_by_ref(p.parked);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 5);
    cw_waker_wake_by_ref(p.parked); /* finished: wakes nothing */
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 5);

    cw_waker_free(p.parked);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("waker");
    TCase *tc = tcase_create("waker");
    tcase_add_test(tc, wake_by_ref_twice_before_poll_enqueues_once);
    tcase_add_test(tc, clone_and_wake_twice_before_poll_enqueues_once);
    tcase_add_test(tc, wake_enqueues_at_tail_in_wake_order);
    tcase_add_test(tc, wake_during_own_poll_polls_again_after_pending_once);
    tcase_add_test(tc, yielding_task_runs_to_completion_via_self_wakes);
    tcase_add_test(tc, wake_during_own_poll_then_ready_is_not_polled_again);
    tcase_add_test(tc, wake_of_finished_task_is_noop_and_clone_is_freeable_after);
    tcase_add_test(tc, wake_of_aborted_task_is_noop);
    tcase_add_test(tc, clones_keep_finished_task_alive_freed_in_any_order);
    tcase_add_test(tc, clone_keeps_detached_task_alive_after_completion);
    tcase_add_test(tc, wake_releases_reference_wake_by_ref_keeps_it);
    tcase_add_test(tc, null_wakers_are_noops_and_will_wake_compares_tasks);
    tcase_add_test(tc, remote_wake_wakes_executor_blocked_in_run_until);
    tcase_add_test(tc, many_remote_wakes_from_three_threads_lose_no_wake);
    tcase_add_test(tc, remote_wakes_from_one_thread_keep_their_order);
    tcase_add_test(tc, remote_wake_while_busy_is_taken_before_next_poll);
    tcase_add_test(tc, waker_outliving_executor_is_noop_and_freeable_on_any_thread);
    tcase_add_test(tc, wakes_local_counts_wakes_on_executor_thread_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
