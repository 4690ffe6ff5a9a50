/*
 * task.c - spawning, enqueueing, ending and freeing tasks.
 *
 * A task block is header + state in one allocation, rounded to a 16-byte
 * size class; blocks of up to 1 KiB go back to a per-class free list of
 * the executor (at most CW__CACHE_MAX each), so steady-state spawning does
 * not call malloc. Nothing here allocates on wake, poll or completion.
 */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "internal.h"

/* Largest state cw_spawn() accepts: keeps size arithmetic far from overflow. */
#define CW__MAX_STATE ((size_t)1 << 40)

static size_t block_size(size_t state_size, uint16_t *cls)
{
    size_t n = offsetof(cw__task, state) + state_size;
    n = (n + CW__CLASS_STEP - 1) / CW__CLASS_STEP * CW__CLASS_STEP;
    size_t c = n / CW__CLASS_STEP - 1;
    *cls = c < CW__NCLASSES ? (uint16_t)c : CW__NO_CLASS;
    return n;
}

static cw__task *task_alloc(cw_executor *ex, size_t state_size)
{
    uint16_t cls;
    size_t n = block_size(state_size, &cls);
    cw__task *t;

    if (cls != CW__NO_CLASS && ex->cache[cls]) {
        t = ex->cache[cls];
        ex->cache[cls] = t->inbox_next;
        ex->ncache[cls]--;
        return t; /* still holds its reference on ex->shared */
    }
    t = cw__malloc(n);
    if (!t)
        return NULL;
    t->size_class = cls;
    t->shared = ex->shared;
    atomic_fetch_add_explicit(&ex->shared->refs, 1, memory_order_relaxed);
    return t;
}

/* The block is unreferenced: cache it or give it back. */
static void task_free(cw__task *t)
{
    cw__shared *sh = t->shared;
    cw_executor *ex = cw__on_thread(sh) ? sh->ex : NULL;

    cw__free(t->panic_msg);
    t->panic_msg = NULL;
    if (ex && !ex->freeing && t->size_class != CW__NO_CLASS
        && ex->ncache[t->size_class] < CW__CACHE_MAX) {
        t->inbox_next = ex->cache[t->size_class];
        ex->cache[t->size_class] = t;
        ex->ncache[t->size_class]++;
        return;
    }
    cw__free(t);
    cw__shared_release(sh, 1);
}

void cw__task_cache_free(cw_executor *ex)
{
    size_t n = 0;
    for (int c = 0; c < CW__NCLASSES; c++) {
        while (ex->cache[c]) {
            cw__task *t = ex->cache[c];
            ex->cache[c] = t->inbox_next;
            cw__free(t);
            n++;
        }
        ex->ncache[c] = 0;
    }
    if (n)
        cw__shared_release(ex->shared, n);
}

void cw__task_release(cw__task *t)
{
    /* Holding the only reference, nobody else can take one (a clone needs
     * a reference): skip the locked decrement, the common case at the end
     * of a detached task. */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1
        || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        task_free(t);
}

void cw__task_drop_state(cw__task *t)
{
    if (t->flags & CW__T_DROPPED)
        return;
    t->flags |= CW__T_DROPPED;
    if (t->drop)
        t->drop(t->state);
}

/* The queue of a task just queued was not runnable: place it (EEVDF),
 * maybe preempt the running slice, make sure a round will run. */
void cw__queue_runnable(cw_executor *ex, cw_queue *q, uint64_t stamp)
{
    q->runnable_at = stamp;
    q->service_pending = true;
    /* V must be current for the placement: charge the running slice
     * up to the start of the poll in progress (no clock read here). */
    if (ex->sched.curr)
        cw__eevdf_update_curr(&ex->sched, ex->poll_start - ex->slice_start);
    if (cw__eevdf_enqueue(&ex->sched, &q->eq)) {
        ex->preempt = true;
        ex->stats.preempt_requests++;
    }
}

void cw__task_wake_local(cw_executor *ex, cw__task *t)
{
    if (t->flags & CW__T_DONE)
        return;
    if (t->flags & CW__T_RUNNING)
        t->flags |= CW__T_NOTIFIED;
    else if (!(t->flags & CW__T_SCHEDULED))
        cw__task_enqueue(ex, t);
}

/* Take a scheduled task out of its FIFO (abort, free). */
static void unschedule(cw_executor *ex, cw__task *t)
{
    cw_queue *q = t->q;
    cw__list_remove(&t->link);
    q->nrunq--;
    t->flags &= (uint16_t)~CW__T_SCHEDULED;
    if (!q->nrunq && q->eq.on_rq && ex->sched.curr != &q->eq)
        cw__eevdf_dequeue(&ex->sched, &q->eq);
}

void cw__task_end(cw_executor *ex, cw__task *t, int status)
{
    cw_queue *q = t->q;

    assert(!(t->flags & CW__T_DONE));
    if (t->flags & CW__T_SCHEDULED)
        unschedule(ex, t);
    t->flags = (uint16_t)((t->flags | CW__T_DONE)
                          & ~(CW__T_RUNNING | CW__T_NOTIFIED | CW__T_CANCEL));
    t->status = status;
    cw__list_remove(&t->live);
    ex->stats.tasks_live--;
    if (status == 0) {
        ex->stats.tasks_completed++;
        q->completed++;
    } else if (status == CW_EPANIC) {
        ex->stats.tasks_panicked++;
        q->panicked++;
    } else {
        ex->stats.tasks_cancelled++;
        q->cancelled++;
    }
    CW__HOOK(ex, complete, q, t->state, status);
    if (t->flags & CW__T_RJOIN) /* copy the result out before the drop */
        cw__remote_join_end(t, status);
    /* A completed task's state is its result while a join handle holds it. */
    if (status != 0 || !(t->flags & CW__T_HAS_JOIN))
        cw__task_drop_state(t);
    if (t->join_waiter) {
        cw_waker *w = t->join_waiter;
        t->join_waiter = NULL;
        cw_waker_wake(w);
    }
    if (!ex->stats.tasks_live && !ex->in_round)
        cw__executor_update_watch(ex);
    cw__task_release(t); /* the executor's reference */
}

int cw_spawn(cw_queue *q, cw_poll_fn poll, const void *state, size_t size,
             cw_drop_fn drop, cw_join **join)
{
    if (!q || !poll || (!state && size) || size > CW__MAX_STATE)
        return -EINVAL;
    cw_executor *ex = q->ex;
    if (!cw__on_thread(ex->shared))
        return -EINVAL;
    if (ex->freeing)
        return -ESHUTDOWN;
    /* The first live task needs the remote-wake fd watched, and adding
     * that event may allocate inside libevent: do it before anything
     * else, so that a failure leaves nothing spawned. */
    bool first = ex->stats.tasks_live == 0;
    if (first && cw__driver_watch_notify(ex, true) < 0)
        return -ENOMEM;
    cw__task *t = task_alloc(ex, size);
    if (!t) {
        if (first)
            cw__driver_watch_notify(ex, false);
        return -ENOMEM;
    }
    t->poll = poll;
    t->drop = drop;
    t->q = q;
    t->inbox_next = NULL;
    t->join_waiter = NULL;
    t->panic_msg = NULL;
    atomic_init(&t->refs, join ? 2u : 1u);
    atomic_init(&t->in_inbox, 0u);
    t->flags = join ? CW__T_HAS_JOIN : 0;
    t->status = -EAGAIN;
    if (size)
        memcpy(t->state, state, size);
    cw__list_push_back(&ex->live, &t->live);
    ex->stats.tasks_live++;
    ex->stats.tasks_spawned++;
    q->spawned++;
    cw__task_enqueue(ex, t);
    CW__HOOK(ex, spawn, q, t->state);
    if (join)
        *join = (cw_join *)t;
    return 0;
}
