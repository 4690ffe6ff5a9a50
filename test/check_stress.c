/* check_stress.c - wakers hammered from three threads against a churning
 * population of tasks: no data race (run it under TSan), no lost wake, no
 * leak, exact accounting.
 *
 * The executor thread (the test's thread) runs SLOTS tasks on three queues.
 * Each task, at every poll that returns PENDING, parks a clone of its waker
 * in its slot (a mutex per slot) and bumps the slot's park generation. Some
 * tasks complete after K polls, some are aborted by the executor thread
 * (between turns of the loop) while the remote threads are waking them,
 * some abort themselves from inside their poll, some are detached; every
 * ended task is replaced by a new one. Three remote threads each perform
 * at least STRESS_OPS operations on whatever wakers are parked: wake,
 * wake_by_ref, clone+free, clone+wake, wake_by_ref under the slot lock and
 * take-and-wake.
 *
 * No lost wake: a remote thread reads the park generation g under the slot
 * lock when it takes its reference; once its wake call has returned it
 * records "woken after park g" (if the slot still holds the same task). At
 * quiescence (threads joined, inbox drained, every queue empty) a task
 * still alive whose last recorded wake is at its current generation was
 * woken after its last PENDING and never polled again: a lost wake.
 *
 * Leaks: every allocation of the library goes through a counting allocator
 * (cw_set_allocator()); at the end none is live and the descriptor count is
 * back where it was (the notification fd goes with the last task block).
 *
 * STRESS_OPS can be scaled with the environment variable CW_STRESS_SCALE
 * (a positive factor, default 1); the assertions need at least 300,000
 * operations per thread, so the factor only ever raises the count.
 *
 * Two assertions are white-box (internal.h): quiescence looks at the
 * executor's inbox and pending round, so that "every wake has been taken"
 * is a fact and not a guess. */
#include "config.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h"

#define NTHREADS 3
#define SLOTS 64
#define NQUEUES 3
#define STRESS_OPS 300000 /* per thread, before scaling */
#define MIN_OPS 300000

/* ---- a counting allocator ------------------------------------------------ */

static atomic_long g_live_allocs;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&g_live_allocs, 1);
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&g_live_allocs, 1);
    return q;
}

static void count_free(void *p)
{
    if (p)
        atomic_fetch_sub(&g_live_allocs, 1);
    free(p);
}

static void counting_allocator_on(void)
{
    atomic_store(&g_live_allocs, 0);
    ck_assert_int_eq(cw_set_allocator(count_malloc, count_realloc, count_free), 0);
}

static void counting_allocator_off(void)
{
    ck_assert_int_eq(atomic_load(&g_live_allocs), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
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

static unsigned long scaled_ops(unsigned long base)
{
    const char *s = getenv("CW_STRESS_SCALE");
    double f = s ? atof(s) : 1.0;
    if (!(f >= 1.0))
        f = 1.0;
    return (unsigned long)((double)base * f);
}

/* xorshift32: one per thread */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* ---- the shared world ------------------------------------------------------ */

typedef struct slot {
    /* under mu: seen by every thread */
    pthread_mutex_t mu;
    cw_waker *w;        /* the parked clone, or NULL */
    uint64_t id;        /* the task in the slot (0: none); written on the
                           executor thread, under mu */
    uint64_t park_gen;  /* PENDING returns of that task */
    uint64_t woken_gen; /* highest park_gen after which a wake returned */
    /* executor thread only */
    cw_join *join;      /* NULL once freed (or detached) */
    bool occupied;      /* a task was spawned here and not yet reaped */
    bool ended;         /* that task completed, or its state was dropped */
    bool aborted;       /* the executor thread aborted it */
} slot;

enum op {
    OP_WAKE,           /* clone under the lock, wake (consumes) */
    OP_WAKE_BY_REF,    /* clone under the lock, wake_by_ref 1-3 times, free */
    OP_CLONE_FREE,     /* clone under the lock, clone again, free both */
    OP_CLONE_WAKE,     /* clone under the lock, clone again, wake that, free */
    OP_BY_REF_LOCKED,  /* wake_by_ref the parked waker under the lock */
    OP_TAKE,           /* take the parked waker out of the slot, wake it */
    NOPS
};

typedef struct world {
    tenv env;
    cw_queue *q[NQUEUES];
    slot slots[SLOTS];
    atomic_int threads_done;
    atomic_bool stop_remote; /* remote threads: end now (test 2) */
    unsigned long ops_target;
    /* executor thread only */
    uint64_t next_id;
    uint8_t *drops;          /* by task id: times its drop ran */
    size_t drops_cap;
    uint64_t spawned, completed, cancelled, self_aborts, aborts, aborts_twice,
             detached, local_cross_wakes;
    uint32_t rng;
    bool respawn;
} world;

typedef struct task_state {
    world *wd;
    slot *sl;
    uint64_t id;
    int polls;
    int k;          /* completes at this poll */
    int self_abort; /* aborts itself at this poll (0: never) */
    uint32_t rng;
} task_state;

typedef struct remote {
    world *wd;
    int idx;
    uint32_t rng;
    unsigned long ops;          /* operations performed */
    unsigned long by_op[NOPS];
    unsigned long wake_calls;   /* wake / wake_by_ref calls */
    pthread_t th;
} remote;

/* Executor thread: slot lock held or not (the only writer of id). */
static bool slot_holds(const slot *sl, uint64_t id)
{
    return sl->id == id;
}

/* The task leaves its slot: release the parked waker, forget the id. */
static void slot_vacate(slot *sl, uint64_t id)
{
    pthread_mutex_lock(&sl->mu);
    if (slot_holds(sl, id)) {
        cw_waker *w = sl->w;
        sl->w = NULL;
        sl->id = 0;
        cw_waker_free(w);
    }
    pthread_mutex_unlock(&sl->mu);
}

static cw_poll stress_poll(void *state, cw_cx *cx)
{
    task_state *st = state;
    world *wd = st->wd;
    slot *sl = st->sl;
    cw_waker *me = cw_cx_waker(cx);

    ck_assert_ptr_nonnull(me);
    ck_assert(slot_holds(sl, st->id));
    st->polls++;
    if (st->polls >= st->k) {
        slot_vacate(sl, st->id);
        sl->ended = true;
        wd->completed++;
        return CW_READY;
    }
    if (st->self_abort && st->polls == st->self_abort && sl->join) {
        cw_join_abort(sl->join); /* ends after this poll; drop runs then */
        wd->self_aborts++;
    }

    /* Park: a fresh clone, or keep the one there if it wakes this task. */
    uint32_t r = rnd(&st->rng);
    pthread_mutex_lock(&sl->mu);
    if (!sl->w || !cw_waker_will_wake(sl->w, me) || (r & 3) == 0) {
        cw_waker_free(sl->w);
        sl->w = cw_waker_clone(me);
    }
    sl->park_gen++;
    pthread_mutex_unlock(&sl->mu);

    if ((r >> 4) % 16 == 0) /* yield: wake self */
        cw_waker_wake_by_ref(me);
    if ((r >> 8) % 8 == 0) { /* wake another task, locally */
        slot *o = &wd->slots[(r >> 12) % SLOTS];
        if (o != sl) {
            pthread_mutex_lock(&o->mu);
            if (o->w) {
                cw_waker_wake_by_ref(o->w);
                wd->local_cross_wakes++;
            }
            pthread_mutex_unlock(&o->mu);
        }
    }
    return CW_PENDING;
}

static void stress_drop(void *state)
{
    task_state *st = state;
    world *wd = st->wd;
    ck_assert_uint_lt(st->id, wd->drops_cap);
    wd->drops[st->id]++;
    if (slot_holds(st->sl, st->id)) {
        slot_vacate(st->sl, st->id);
        st->sl->ended = true;
    }
}

static void world_init(world *wd)
{
    memset(wd, 0, sizeof *wd);
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    static const uint32_t weights[NQUEUES] = {1, 5, 20};
    for (int i = 0; i < NQUEUES; i++)
        ck_assert_int_eq(cw_config_add_queue(cfg, (uint32_t)i + 1, weights[i]), 0);
    tenv_init(&wd->env, cfg, 0);
    for (int i = 0; i < NQUEUES; i++) {
        wd->q[i] = cw_executor_queue(wd->env.ex, (uint32_t)i + 1);
        ck_assert_ptr_nonnull(wd->q[i]);
    }
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&wd->slots[i].mu, NULL);
    wd->next_id = 1;
    wd->rng = 0x2545f491u;
    wd->respawn = true;
    wd->drops_cap = 1024;
    wd->drops = calloc(wd->drops_cap, 1);
    ck_assert_ptr_nonnull(wd->drops);
}

static void world_destroy(world *wd)
{
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_destroy(&wd->slots[i].mu);
    free(wd->drops);
}

/* Executor thread: put a new task into an empty slot. */
static void spawn_into(world *wd, slot *sl)
{
    uint32_t r = rnd(&wd->rng);
    uint64_t id = wd->next_id++;
    if (id >= wd->drops_cap) {
        size_t cap = wd->drops_cap * 2;
        uint8_t *d = realloc(wd->drops, cap);
        ck_assert_ptr_nonnull(d);
        memset(d + wd->drops_cap, 0, cap - wd->drops_cap);
        wd->drops = d;
        wd->drops_cap = cap;
    }
    task_state st = {
        .wd = wd,
        .sl = sl,
        .id = id,
        .k = 1 + (int)(r % 48),
        .self_abort = (r >> 8) % 16 == 0 ? 1 + (int)((r >> 12) % 8) : 0,
        .rng = r | 1,
    };
    pthread_mutex_lock(&sl->mu);
    ck_assert_ptr_null(sl->w);
    sl->id = id;
    sl->park_gen = 0;
    sl->woken_gen = 0;
    pthread_mutex_unlock(&sl->mu);
    sl->occupied = true;
    sl->ended = false;
    sl->aborted = false;
    sl->join = NULL;
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(wd->q[(r >> 16) % NQUEUES], stress_poll, &st, sizeof st,
                              stress_drop, &j), 0);
    ck_assert_ptr_nonnull(j);
    wd->spawned++;
    if ((r >> 20) % 4 == 0) { /* detached: runs on, drops when it ends */
        cw_join_free(j);
        wd->detached++;
    } else {
        sl->join = j;
    }
}

/* Executor thread: a task that ended leaves its slot; maybe replace it. */
static void reap(world *wd, slot *sl)
{
    if (sl->join) {
        int status = cw_join_status(sl->join);
        ck_assert_msg(status == 0 || status == -ECANCELED, "status %d", status);
        if (status == 0)
            ck_assert_ptr_nonnull(cw_join_state(sl->join));
        else
            wd->cancelled++;
        cw_join_free(sl->join); /* a completed task's drop runs here */
        sl->join = NULL;
    }
    ck_assert(sl->ended);
    sl->occupied = false;
    if (wd->respawn)
        spawn_into(wd, sl);
}

/* Executor thread, between turns: reap, respawn, abort. */
static void maintain(world *wd, bool abort_some)
{
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &wd->slots[i];
        if (!sl->occupied) {
            if (wd->respawn)
                spawn_into(wd, sl);
            continue;
        }
        /* A joined task has ended when its status says so; a detached one
         * when its poll or drop said so. */
        if (sl->join ? cw_join_status(sl->join) != -EAGAIN : sl->ended)
            reap(wd, sl);
    }
    if (!abort_some)
        return;
    uint32_t r = rnd(&wd->rng);
    if (r % 4)
        return;
    slot *sl = &wd->slots[(r >> 8) % SLOTS];
    if (sl->occupied && sl->join && cw_join_status(sl->join) == -EAGAIN) {
        cw_join_abort(sl->join); /* remote threads may be waking it now */
        ck_assert_int_eq(cw_join_status(sl->join), -ECANCELED);
        ck_assert(sl->ended); /* the drop ran inside the abort */
        sl->aborted = true;
        wd->aborts++;
        if ((r >> 16) % 4 == 0) {
            cw_join_abort(sl->join); /* twice: a no-op */
            wd->aborts_twice++;
        }
    }
}

/* ---- the remote threads ---------------------------------------------------- */

static void record_wake(slot *sl, uint64_t id, uint64_t gen)
{
    pthread_mutex_lock(&sl->mu);
    if (sl->id == id && gen > sl->woken_gen)
        sl->woken_gen = gen;
    pthread_mutex_unlock(&sl->mu);
}

/* One operation on slot sl, if a waker is parked there; false if none. */
static bool remote_op(remote *rm, slot *sl)
{
    uint32_t r = rnd(&rm->rng);
    enum op op = (enum op)(r % NOPS);
    cw_waker *c = NULL, *c2;
    uint64_t id, gen;

    pthread_mutex_lock(&sl->mu);
    if (!sl->w) {
        pthread_mutex_unlock(&sl->mu);
        return false;
    }
    id = sl->id;
    gen = sl->park_gen;
    switch (op) {
    case OP_BY_REF_LOCKED:
        cw_waker_wake_by_ref(sl->w);
        if (gen > sl->woken_gen)
            sl->woken_gen = gen;
        break;
    case OP_TAKE:
        c = sl->w;
        sl->w = NULL;
        break;
    default:
        c = cw_waker_clone(sl->w);
        ck_assert_ptr_eq(c, sl->w);
        break;
    }
    pthread_mutex_unlock(&sl->mu);

    switch (op) {
    case OP_WAKE:
    case OP_TAKE:
        cw_waker_wake(c);
        rm->wake_calls++;
        record_wake(sl, id, gen);
        break;
    case OP_WAKE_BY_REF: {
        int n = 1 + (int)((r >> 8) % 3);
        for (int i = 0; i < n; i++)
            cw_waker_wake_by_ref(c);
        rm->wake_calls += (unsigned long)n;
        record_wake(sl, id, gen);
        cw_waker_free(c);
        break;
    }
    case OP_CLONE_FREE:
        c2 = cw_waker_clone(c);
        ck_assert(cw_waker_will_wake(c, c2));
        if (r & 0x100) {
            cw_waker_free(c);
            cw_waker_free(c2);
        } else {
            cw_waker_free(c2);
            cw_waker_free(c);
        }
        break;
    case OP_CLONE_WAKE:
        c2 = cw_waker_clone(c);
        cw_waker_wake(c2);
        rm->wake_calls++;
        record_wake(sl, id, gen);
        cw_waker_free(c);
        break;
    case OP_BY_REF_LOCKED:
        rm->wake_calls++;
        break;
    case NOPS:
        break;
    }
    rm->by_op[op]++;
    return true;
}

static void *remote_main(void *arg)
{
    remote *rm = arg;
    world *wd = rm->wd;
    unsigned misses = 0;

    while (rm->ops < wd->ops_target && !atomic_load(&wd->stop_remote)) {
        slot *sl = &wd->slots[rnd(&rm->rng) % SLOTS];
        if (remote_op(rm, sl)) {
            rm->ops++;
            misses = 0;
        } else if (++misses % SLOTS == 0) {
            sched_yield(); /* nothing parked: let the executor run */
        }
    }
    atomic_fetch_add(&wd->threads_done, 1);
    return NULL;
}

static void start_remotes(world *wd, remote rms[NTHREADS])
{
    for (int i = 0; i < NTHREADS; i++) {
        rms[i] = (remote){.wd = wd, .idx = i, .rng = 0x9e3779b9u * (uint32_t)(i + 1) | 1};
        ck_assert_int_eq(pthread_create(&rms[i].th, NULL, remote_main, &rms[i]), 0);
    }
}

static void join_remotes(remote rms[NTHREADS])
{
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_join(rms[i].th, NULL), 0);
}

/* ---- quiescence and the final checks -------------------------------------- */

static uint64_t polls_of(const cw_executor *ex)
{
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(ex, &st), 0);
    return st.polls;
}

static bool queues_empty(world *wd)
{
    for (int i = 0; i < NQUEUES; i++) {
        struct cw_queue_stats qs;
        ck_assert_int_eq(cw_queue_stats(wd->q[i], &qs), 0);
        if (qs.runnable)
            return false;
    }
    return true;
}

/* Run the loop until every wake has been taken and every woken task
 * polled: the inbox is empty, no round is pending, no queue has a task. */
static void quiesce(world *wd)
{
    cw_executor *ex = wd->env.ex;
    int calm = 0;
    for (long i = 0; i < 1000000 && calm < 3; i++) {
        uint64_t p0 = polls_of(ex);
        tenv_turn(&wd->env);
        bool idle = !atomic_load(&ex->shared->inbox) && !ex->round_pending
                    && queues_empty(wd) && polls_of(ex) == p0;
        calm = idle ? calm + 1 : 0;
    }
    ck_assert_msg(calm >= 3, "the executor did not become idle");
}

/* At quiescence: no live task was woken after its last PENDING. */
static int check_no_lost_wake(world *wd)
{
    int parked = 0;
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &wd->slots[i];
        if (!sl->occupied || sl->ended)
            continue;
        pthread_mutex_lock(&sl->mu);
        uint64_t id = sl->id, park = sl->park_gen, woken = sl->woken_gen;
        bool has_waker = sl->w != NULL;
        pthread_mutex_unlock(&sl->mu);
        ck_assert_msg(woken < park,
                      "lost wake: task %llu in slot %d was woken after park %llu "
                      "and not polled again (park_gen %llu)",
                      (unsigned long long)id, i, (unsigned long long)woken,
                      (unsigned long long)park);
        /* alive and idle: its last poll parked a waker nobody took */
        ck_assert_msg(has_waker, "live task %llu in slot %d has no parked waker",
                      (unsigned long long)id, i);
        parked++;
    }
    return parked;
}

/* End every task: abort the joined ones (half of them) and wake the
 * others from here until they complete. */
static void finish_all(world *wd)
{
    wd->respawn = false;
    for (int i = 0; i < SLOTS; i += 2) {
        slot *sl = &wd->slots[i];
        if (sl->occupied && sl->join && cw_join_status(sl->join) == -EAGAIN) {
            cw_join_abort(sl->join);
            wd->aborts++;
        }
    }
    for (int round = 0; round < 10000; round++) {
        maintain(wd, false);
        bool any = false;
        for (int i = 0; i < SLOTS; i++) {
            slot *sl = &wd->slots[i];
            if (!sl->occupied)
                continue;
            any = true;
            pthread_mutex_lock(&sl->mu);
            cw_waker *w = cw_waker_clone(sl->w);
            pthread_mutex_unlock(&sl->mu);
            cw_waker_wake(w);
        }
        if (!any)
            return;
        tenv_turn(&wd->env);
    }
    ck_abort_msg("tasks did not finish");
}

static void check_accounting(world *wd)
{
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(wd->env.ex, &st), 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(st.tasks_panicked, 0);
    ck_assert_uint_eq(st.tasks_spawned, wd->spawned);
    ck_assert_uint_eq(st.tasks_completed, wd->completed);
    ck_assert_uint_eq(st.tasks_cancelled, wd->cancelled);
    ck_assert_uint_eq(st.tasks_spawned, st.tasks_completed + st.tasks_cancelled);
    uint64_t spawned = 0, completed = 0, cancelled = 0;
    for (int i = 0; i < NQUEUES; i++) {
        struct cw_queue_stats qs;
        ck_assert_int_eq(cw_queue_stats(wd->q[i], &qs), 0);
        ck_assert_uint_eq(qs.runnable, 0);
        spawned += qs.tasks_spawned;
        completed += qs.tasks_completed;
        cancelled += qs.tasks_cancelled;
    }
    ck_assert_uint_eq(spawned, st.tasks_spawned);
    ck_assert_uint_eq(completed, st.tasks_completed);
    ck_assert_uint_eq(cancelled, st.tasks_cancelled);
    for (uint64_t id = 1; id < wd->next_id; id++)
        ck_assert_msg(wd->drops[id] == 1, "task %llu dropped %d times",
                      (unsigned long long)id, wd->drops[id]);
    for (uint64_t id = wd->next_id; id < wd->drops_cap; id++)
        ck_assert_int_eq(wd->drops[id], 0);
    for (int i = 0; i < SLOTS; i++) {
        ck_assert(!wd->slots[i].occupied);
        ck_assert_ptr_null(wd->slots[i].w);
        ck_assert_ptr_null(wd->slots[i].join);
    }
}

static void report(const char *name, world *wd, remote rms[NTHREADS], double secs,
                   const struct cw_executor_stats *st)
{
    fprintf(stderr,
            "%s: %.2f s; ops/thread %lu %lu %lu; spawned %llu completed %llu "
            "cancelled %llu (aborts %llu, self %llu, twice %llu); detached %llu; "
            "polls %llu; wakes remote %llu local %llu\n",
            name, secs, rms[0].ops, rms[1].ops, rms[2].ops,
            (unsigned long long)wd->spawned, (unsigned long long)wd->completed,
            (unsigned long long)wd->cancelled, (unsigned long long)wd->aborts,
            (unsigned long long)wd->self_aborts, (unsigned long long)wd->aborts_twice,
            (unsigned long long)wd->detached, (unsigned long long)st->polls,
            (unsigned long long)st->wakes_remote, (unsigned long long)st->wakes_local);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the tests ------------------------------------------------------------ */

START_TEST(three_threads_wake_churning_tasks_no_lost_wake_exact_accounting)
{
    int fds0 = open_fds();
    counting_allocator_on();
    static world wd;
    world_init(&wd);
    wd.ops_target = scaled_ops(STRESS_OPS);
    ck_assert_uint_ge(wd.ops_target, MIN_OPS);
    maintain(&wd, false); /* fill every slot */

    double t0 = now_s();
    remote rms[NTHREADS];
    start_remotes(&wd, rms);
    while (atomic_load(&wd.threads_done) < NTHREADS) {
        uint64_t p0 = polls_of(wd.env.ex);
        tenv_turn(&wd.env);
        maintain(&wd, true);
        if (polls_of(wd.env.ex) == p0)
            sched_yield();
    }
    join_remotes(rms);

    quiesce(&wd);
    int parked = check_no_lost_wake(&wd);
    ck_assert_int_gt(parked, 0);
    /* and once more after a round of respawns (new tasks, first polls) */
    maintain(&wd, false);
    quiesce(&wd);
    check_no_lost_wake(&wd);

    finish_all(&wd);
    double secs = now_s() - t0;

    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(wd.env.ex, &st), 0);
    report("stress", &wd, rms, secs, &st);
    check_accounting(&wd);

    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_uint_ge(rms[i].ops, MIN_OPS);
        for (int op = 0; op < NOPS; op++)
            ck_assert_uint_gt(rms[i].by_op[op], rms[i].ops / (2 * NOPS));
    }
    /* the mix really happened */
    ck_assert_uint_gt(wd.completed, 1000);
    ck_assert_uint_gt(wd.aborts, 100);
    ck_assert_uint_gt(wd.self_aborts, 10);
    ck_assert_uint_gt(wd.detached, 100);
    ck_assert_uint_gt(st.wakes_remote, 10000);
    ck_assert_uint_gt(st.wakes_local, 1000);

    tenv_free(&wd.env);
    world_destroy(&wd);
    counting_allocator_off();
    if (fds0 >= 0)
        ck_assert_int_eq(open_fds(), fds0);
}
END_TEST

/* The executor is freed while the remote threads are still waking: the
 * inbox closes under them, the live tasks are cancelled (one drop each),
 * the remote threads go on using their clones (no-ops now) and release
 * the last references, so the task blocks and the notification fd are
 * freed on their threads. */
typedef struct holder {
    world *wd;
    uint32_t rng;
    atomic_ulong ops;        /* read by the executor thread too */
    atomic_bool pinned;      /* holds a clone it keeps until the free */
    unsigned long after_free;
    atomic_bool *freed;
    pthread_t th;
} holder;

#define HELD 8
#define MIN_AFTER_FREE 10000 /* operations per thread once the executor is gone */

static void *holder_main(void *arg)
{
    holder *h = arg;
    world *wd = h->wd;
    cw_waker *held[HELD] = {0};

    /* Until the executor is freed there is no end, so the free always
     * happens while this thread is waking; then at least MIN_AFTER_FREE
     * more operations and ops_target in all. */
    for (;;) {
        uint32_t r = rnd(&h->rng);
        bool freed = atomic_load(h->freed);
        if (freed && h->after_free >= MIN_AFTER_FREE
            && atomic_load_explicit(&h->ops, memory_order_relaxed) >= wd->ops_target)
            break;
        int k = (int)(r % HELD);
        if (!held[k] || (r >> 8) % 16 == 0) {
            /* (re)fill from a random slot; empty once the executor is gone */
            slot *sl = &wd->slots[(r >> 12) % SLOTS];
            pthread_mutex_lock(&sl->mu);
            cw_waker *c = cw_waker_clone(sl->w);
            pthread_mutex_unlock(&sl->mu);
            if (c) {
                cw_waker_free(held[k]);
                held[k] = c;
            }
        }
        if (!held[k]) {
            if (freed) { /* nothing to refill from: stop when all are gone */
                bool any = false;
                for (int i = 0; i < HELD; i++)
                    any |= held[i] != NULL;
                if (!any)
                    break;
            } else {
                sched_yield();
            }
            continue;
        }
        /* held[0], once filled, is kept until the free, and after it no
         * clone is given up (no wake-by-value), so that the thread has
         * clones to work on once the executor is gone */
        if (k == 0 && !freed)
            atomic_store_explicit(&h->pinned, true, memory_order_relaxed);
        switch ((r >> 20) % (freed || k == 0 ? 3 : 4)) {
        case 0:
            cw_waker_wake_by_ref(held[k]);
            break;
        case 1:
            cw_waker_wake(cw_waker_clone(held[k]));
            break;
        case 2:
            cw_waker_free(cw_waker_clone(held[k]));
            break;
        default:
            cw_waker_wake(held[k]);
            held[k] = NULL;
            break;
        }
        atomic_fetch_add_explicit(&h->ops, 1, memory_order_relaxed);
        if (freed)
            h->after_free++;
    }
    for (int i = 0; i < HELD; i++)
        cw_waker_free(held[i]); /* perhaps the last reference */
    atomic_fetch_add(&wd->threads_done, 1);
    return NULL;
}

START_TEST(executor_freed_while_three_threads_wake)
{
    int fds0 = open_fds();
    counting_allocator_on();
    static world wd;
    world_init(&wd);
    wd.ops_target = scaled_ops(STRESS_OPS) / 3;
    maintain(&wd, false);

    atomic_bool freed = false;
    holder hs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        hs[i] = (holder){.wd = &wd, .rng = 0x85ebca6bu * (uint32_t)(i + 1) | 1,
                         .freed = &freed};
        atomic_init(&hs[i].ops, 0);
        atomic_init(&hs[i].pinned, false);
        ck_assert_int_eq(pthread_create(&hs[i].th, NULL, holder_main, &hs[i]), 0);
    }
    /* run until the threads are a third of the way through and each holds
     * a clone it keeps (they do not stop before the free) */
    for (;;) {
        unsigned long least = ULONG_MAX;
        bool pinned = true;
        for (int i = 0; i < NTHREADS; i++) {
            unsigned long o = atomic_load_explicit(&hs[i].ops, memory_order_relaxed);
            least = o < least ? o : least;
            pinned &= atomic_load_explicit(&hs[i].pinned, memory_order_relaxed);
        }
        if (least >= wd.ops_target / 3 && pinned)
            break;
        uint64_t p0 = polls_of(wd.env.ex);
        tenv_turn(&wd.env);
        maintain(&wd, true);
        if (polls_of(wd.env.ex) == p0)
            sched_yield();
    }
    /* free the executor under the threads' feet */
    uint64_t live_before = 0;
    for (int i = 0; i < SLOTS; i++)
        live_before += wd.slots[i].occupied && !wd.slots[i].ended;
    cw_join *joins[SLOTS];
    for (int i = 0; i < SLOTS; i++)
        joins[i] = wd.slots[i].join;
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(wd.env.ex, &st), 0);
    wd.respawn = false;
    cw_executor_free(wd.env.ex);
    wd.env.ex = NULL;
    atomic_store(&freed, true);
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &wd.slots[i];
        if (joins[i]) {
            int s = cw_join_status(joins[i]);
            ck_assert_msg(s == 0 || s == -ECANCELED, "status %d", s);
            cw_join_free(joins[i]);
            sl->join = NULL;
        }
        pthread_mutex_lock(&sl->mu);
        bool parked = sl->w != NULL;
        pthread_mutex_unlock(&sl->mu);
        ck_assert(!parked); /* every drop released its slot */
    }
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_join(hs[i].th, NULL), 0);
    wd.env.drv->free(&wd.env); /* the loop, after its executor */
    wd.env.base = NULL;

    for (uint64_t id = 1; id < wd.next_id; id++)
        ck_assert_msg(wd.drops[id] == 1, "task %llu dropped %d times",
                      (unsigned long long)id, wd.drops[id]);
    unsigned long after = 0, ops = 0;
    for (int i = 0; i < NTHREADS; i++) {
        after += hs[i].after_free;
        ops += atomic_load(&hs[i].ops);
    }
    fprintf(stderr,
            "free-under-wakes: ops %lu (after free %lu); spawned %llu, live at free %llu, "
            "wakes remote before free %llu\n",
            ops, after, (unsigned long long)wd.spawned, (unsigned long long)live_before,
            (unsigned long long)st.wakes_remote);
    ck_assert_uint_gt(live_before, 0);
    ck_assert_uint_ge(after, NTHREADS * MIN_AFTER_FREE); /* each held a clone */
    ck_assert_uint_ge(ops, NTHREADS * wd.ops_target);
    world_destroy(&wd);
    counting_allocator_off();
    if (fds0 >= 0)
        ck_assert_int_eq(open_fds(), fds0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 600); /* TSan runs it 5-15x slower */
    tcase_add_test(tc, three_threads_wake_churning_tasks_no_lost_wake_exact_accounting);
    tcase_add_test(tc, executor_freed_while_three_threads_wake);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
