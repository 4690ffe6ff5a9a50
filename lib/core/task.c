/*
 * task.c - spawning, enqueueing, ending and freeing tasks.
 *
 * A task block is header + state + optional slots, rounded to a 16-byte
 * size class and carved from a slab of its class (internal.h): no
 * allocator overhead per task, and steady-state spawning does not call
 * malloc. Nothing here allocates on wake, poll or completion.
 */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "internal.h"

static unsigned nslots(uint16_t xflags)
{
    return !!(xflags & CW__T_X_DROP) + !!(xflags & CW__T_X_JOIN) + !!(xflags & CW__T_X_STAMP);
}

/* The block size for a state and its slots, rounded to a class step. */
static size_t block_size(size_t state_size, uint16_t xflags, uint16_t *cls)
{
    size_t n = offsetof(cw__task, state) + state_size + 8 * nslots(xflags)
               + ((xflags & CW__T_X_ACCT) ? sizeof(cw__acct) : 0);
    n = (n + CW__CLASS_STEP - 1) / CW__CLASS_STEP * CW__CLASS_STEP;
    size_t c = n / CW__CLASS_STEP - 1;
    *cls = c < CW__NCLASSES ? (uint16_t)c : CW__NO_CLASS;
    return n;
}

/* A block of n bytes in a slab of its own (big states, remote spawns),
 * not listed yet: cw__slab_adopt() lists it. Any thread. */
static cw__task *single_new(cw__shared *sh, size_t n)
{
    cw__slab *s = cw__malloc(offsetof(cw__slab, blocks) + n);
    if (!s)
        return NULL;
    s->shared = sh;
    cw__list_init(&s->all);
    cw__list_init(&s->partial);
    s->free = NULL;
    s->size = n;
    s->nblocks = s->nused = s->nalloc = 1;
    s->cls = CW__NO_CLASS;
    cw__task *t = (cw__task *)(void *)s->blocks;
    t->slab = s;
    return t;
}

static cw__slab *slab_new(cw_executor *ex, uint16_t cls)
{
    size_t size = ((size_t)cls + 1) * CW__CLASS_STEP;
    cw__slab *s = cw__malloc(CW__SLAB_BYTES);
    if (!s)
        return NULL;
    s->shared = ex->shared;
    cw__list_push_back(&ex->shared->slabs, &s->all);
    cw__list_push_back(&ex->partial[cls], &s->partial);
    s->free = NULL;
    s->size = size;
    s->nblocks = (uint32_t)((CW__SLAB_BYTES - offsetof(cw__slab, blocks)) / size);
    s->nused = s->nalloc = 0;
    s->cls = cls;
    ex->nempty[cls]++;
    return s;
}

static void slab_release(cw_executor *ex, cw__slab *s)
{
    if (s->cls != CW__NO_CLASS) {
        cw__list_remove(&s->partial);
        ex->nempty[s->cls]--;
    }
    cw__list_remove(&s->all);
    cw__free(s);
}

#ifdef CW_CHECKED
/* The checked build's block generations (tasks.h, "handles"): one
 * counter for every block of every executor, so that a block in a slab
 * of its own, freed and then allocated again at the same address, gets
 * a new generation too. Its low 16 bits (the handle's tag) are never 0:
 * 0 is a free block's. Global state of the checked build only. */
static atomic_uint gen_next;

static void checked_take(cw__task *t)
{
    unsigned g;
    do
        g = atomic_fetch_add_explicit(&gen_next, 1, memory_order_relaxed) + 1;
    while (!(g & 0xffffu));
    atomic_store_explicit(&t->gen, g, memory_order_relaxed);
    atomic_store_explicit(&t->wakers, 0, memory_order_relaxed);
}
#else
static inline void checked_take(cw__task *t)
{
    (void)t;
}
#endif

static cw__task *task_alloc(cw_executor *ex, size_t state_size, uint16_t xflags)
{
    uint16_t cls;
    size_t n = block_size(state_size, xflags, &cls);
    cw__task *t;

    if (cls == CW__NO_CLASS) {
        if ((t = single_new(ex->shared, n))) {
            cw__slab_adopt(ex, t);
            checked_take(t);
        }
        return t;
    }
    cw__list *pl = &ex->partial[cls];
    if (cw__list_empty(pl) && atomic_load_explicit(&ex->shared->rfree, memory_order_relaxed))
        cw__slabs_reclaim(ex);
    if (cw__list_empty(pl) && !slab_new(ex, cls))
        return NULL;
    cw__slab *s = cw__container_of(pl->next, cw__slab, partial);
    if (s->free) {
        t = s->free;
        s->free = t->inbox_next;
    } else {
        t = (cw__task *)(void *)(s->blocks + (size_t)s->nused++ * s->size);
        t->slab = s;
    }
    if (s->nalloc++ == 0)
        ex->nempty[cls]--;
    if (s->nalloc == s->nblocks)
        cw__list_remove(&s->partial);
    checked_take(t);
    return t;
}

/* Executor thread, executor alive: the block goes back to its slab. */
static void slab_put(cw_executor *ex, cw__task *t)
{
    cw__slab *s = t->slab;
    t->flags = CW__T_FREE;
    if (s->cls == CW__NO_CLASS) {
        s->nalloc = 0;
        if (!ex->freeing) /* (the free walk needs the list as it is) */
            slab_release(ex, s);
        return;
    }
    t->inbox_next = s->free;
    s->free = t;
    if (s->nalloc-- == s->nblocks)
        cw__list_push_back(&ex->partial[s->cls], &s->partial);
    if (s->nalloc == 0) {
        ex->nempty[s->cls]++;
        /* keep one empty slab per class against churn */
        if (ex->nempty[s->cls] > 1 && !ex->freeing)
            slab_release(ex, s);
    }
}

void cw__slabs_reclaim(cw_executor *ex)
{
    cw__task *t = atomic_exchange(&ex->shared->rfree, NULL);
    while (t) {
        cw__task *next = t->inbox_next;
        slab_put(ex, t);
        t = next;
    }
}

/* The executor is gone: the block's slab counts it out (any thread). */
static void block_gone(cw__task *t)
{
    cw__slab *s = t->slab;
    cw__shared *sh = s->shared;
    if (atomic_fetch_sub_explicit(&s->live, 1, memory_order_acq_rel) == 1) {
        cw__free(s);
        cw__shared_release(sh, 1);
    }
}

/* The block is unreferenced. */
static void task_free(cw__task *t)
{
    cw__shared *sh = cw__task_shared(t);

#ifdef CW_CHECKED
    /* a free block: every handle to it is released (tasks.h) */
    atomic_store_explicit(&t->gen, 0, memory_order_relaxed);
#endif
    if ((t->flags & CW__T_ST_PANIC) && t->panic_msg) {
        cw__free(t->panic_msg);
        t->panic_msg = NULL;
    }
    if (cw__on_thread(sh) && sh->ex) {
        slab_put(sh->ex, t);
        return;
    }
    /* Another thread, or the executor is gone. */
    if (!cw__stack_push(&sh->rfree, t))
        block_gone(t);
}

cw__task *cw__task_alloc_remote(cw__shared *sh, size_t state_size, uint16_t xflags)
{
    uint16_t cls;
    cw__task *t = single_new(sh, block_size(state_size, xflags, &cls));
    if (t)
        checked_take(t);
    return t;
}

void cw__task_free_unadopted(cw__task *t)
{
    cw__free(t->slab);
}

void cw__slab_adopt(cw_executor *ex, cw__task *t)
{
    cw__list_push_back(&ex->shared->slabs, &t->slab->all);
}

void cw__tasks_cancel_all(cw_executor *ex)
{
    /* No slab comes or goes while freeing (no spawn succeeds; blocks go
     * back to their slabs but slabs stay), so the walk is safe while the
     * drop functions run; a task ended by another's drop is skipped. */
    cw__list *h = &ex->shared->slabs;
    for (cw__list *l = h->next; l != h; l = l->next) {
        cw__slab *s = cw__container_of(l, cw__slab, all);
        for (uint32_t i = 0; i < s->nused; i++) {
            cw__task *t = (cw__task *)(void *)(s->blocks + (size_t)i * s->size);
            if (!(t->flags & (CW__T_FREE | CW__T_DONE | CW__T_SPAWNING)))
                cw__task_end(ex, t, -ECANCELED);
        }
    }
}

void cw__slabs_detach(cw_executor *ex)
{
    cw__shared *sh = ex->shared;
    /* Blocks other threads freed meanwhile go back first. */
    cw__slabs_reclaim(ex);
    /* Each slab with blocks out is on its own from here: no list holds
     * it, its live count says how many blocks are out, the last one frees
     * it; the shared part counts the slabs. */
    size_t n = 0;
    cw__list *h = &sh->slabs;
    for (cw__list *l = h->next; l != h;) {
        cw__slab *s = cw__container_of(l, cw__slab, all);
        l = l->next;
        if (s->nalloc == 0) {
            slab_release(ex, s);
            continue;
        }
        atomic_init(&s->live, s->nalloc);
        cw__list_remove(&s->all);
        cw__list_remove(&s->partial);
        n++;
    }
    atomic_fetch_add_explicit(&sh->refs, n, memory_order_relaxed);
    /* From the exchange on, a freed block goes to block_gone(); those
     * pushed before it are taken here (the executor's own reference is
     * still held: never the last). */
    cw__task *t = atomic_exchange(&sh->rfree, CW__INBOX_CLOSED);
    while (t) {
        cw__task *next = t->inbox_next;
        block_gone(t);
        t = next;
    }
}

void cw__task_release(cw__task *t)
{
    /* Holding the only reference, nobody else can take one (a clone needs
     * a reference): skip the locked decrement, the common case at the end
     * of a detached task. (1 also says the inbox bit is clear.) */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1
        || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        task_free(t);
}

void cw__task_drop_state(cw__task *t)
{
    if (t->flags & CW__T_DROPPED)
        return;
    t->flags |= CW__T_DROPPED;
    cw_drop_fn drop = cw__task_drop_fn(t);
    if (drop)
        drop(t->state);
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

/* Take a scheduled task out of its FIFO (abort, free). */
static void unschedule(cw_executor *ex, cw__task *t)
{
    cw_queue *q = cw__task_queue(ex, t);
    cw__list_remove(&t->link);
    q->nrunq--;
    t->flags &= (uint16_t)~CW__T_SCHEDULED;
    if (!q->nrunq && q->eq.on_rq && ex->sched.curr != &q->eq)
        cw__eevdf_dequeue(&ex->sched, &q->eq);
}

void cw__task_end(cw_executor *ex, cw__task *t, int status)
{
    cw_queue *q = cw__task_queue(ex, t);

    assert(!(t->flags & CW__T_DONE));
    if (t->flags & CW__T_SCHEDULED)
        unschedule(ex, t);
    uint16_t st = status == 0 ? 0 : status == CW_EPANIC ? CW__T_ST_PANIC : CW__T_ST_CANCEL;
    assert(status == 0 || status == CW_EPANIC || status == -ECANCELED);
    t->flags = (uint16_t)(((t->flags | CW__T_DONE | st)
                           & ~(CW__T_RUNNING | CW__T_NOTIFIED | CW__T_CANCEL)));
    ex->ntasks--;
    if (!cw__task_internal(t)) { /* the library's own: not counted */
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
    }
    if (t->flags & CW__T_RJOIN) /* copy the result out before the drop */
        cw__remote_join_end(t, status);
    /* A completed task's state is its result while a join handle holds it. */
    if (status != 0 || !(t->flags & CW__T_HAS_JOIN))
        cw__task_drop_state(t);
    /* (a cw_remote_join was told above and its slot cleared) */
    if ((t->flags & CW__T_X_JOIN) && cw__task_join(t)->waiter) {
        union cw__join_slot *js = cw__task_join(t);
        cw_waker *w = js->waiter;
        js->waiter = NULL;
        cw_waker_wake(w);
    }
    if (!ex->ntasks && !ex->in_round)
        cw__executor_update_watch(ex);
    cw__task_release(t); /* the executor's reference */
}

/* Both spawns: the block is allocated, then init fills its state (NULL:
 * copy src), and only then is the task counted and queued, so a failing
 * init leaves nothing behind. */
static int spawn(cw_queue *q, cw_poll_fn poll, size_t size, cw_init_fn init, void *arg,
                 const void *src, cw_drop_fn drop, cw_join **join)
{
    cw_executor *ex = q->ex;
    if (!cw__on_thread(ex->shared))
        return -EPERM;
    if (ex->freeing)
        return -ESHUTDOWN;
    /* The first live task needs the remote-wake fd watched, and adding
     * that event may allocate inside the loop: do it before anything
     * else, so that a failure leaves nothing spawned. */
    bool first = ex->ntasks == 0;
    if (first && cw__loop_watch_notify(ex, true) < 0)
        return -ENOMEM;
    uint16_t x = (uint16_t)((drop ? CW__T_X_DROP : 0) | (join ? CW__T_X_JOIN : 0)
                            | (ex->hist_on ? CW__T_X_STAMP : 0)
                            | (ex->acct_on ? CW__T_X_ACCT : 0));
    cw__task *t = task_alloc(ex, size, x);
    if (!t) {
        if (first)
            cw__loop_watch_notify(ex, false);
        return -ENOMEM;
    }
    t->poll = poll;
    t->inbox_next = NULL;
    atomic_init(&t->refs, join ? 2u : 1u);
    t->flags = (uint16_t)(x | (join ? CW__T_HAS_JOIN : 0));
    t->qidx = (uint16_t)q->index;
    if (drop)
        *(cw_drop_fn *)(void *)cw__task_slot(t, CW__T_X_DROP) = drop;
    if (join)
        cw__task_join(t)->waiter = NULL;
    if (init) {
        memset(t->state, 0, size);
        int err = init(t->state, arg);
        if (err != 0) {
            /* Never started: back to its slab as it came, no drop. */
            atomic_store(&t->refs, 1u);
            t->flags = (uint16_t)(t->flags | CW__T_DONE | CW__T_DROPPED);
            cw__task_release(t);
            if (first && !ex->ntasks)
                cw__loop_watch_notify(ex, false);
            return err < 0 ? err : -EINVAL;
        }
    } else if (size) {
        memcpy(t->state, src, size);
    }
    if (x & CW__T_X_ACCT)
        cw__acct_init(ex, t);
    ex->ntasks++;
    bool internal = cw__task_internal(t);
    if (!internal) {
        ex->stats.tasks_live++;
        ex->stats.tasks_spawned++;
        q->spawned++;
    }
    cw__task_enqueue(ex, t);
    if (!internal)
        CW__HOOK(ex, spawn, q, t->state);
    if (join)
        *join = (cw_join *)cw__handle_of(t);
    return 0;
}

int cw_spawn(cw_queue *q, cw_poll_fn poll, const void *state, size_t size,
             cw_drop_fn drop, cw_join **join)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (!poll || (!state && size) || size > CW__MAX_STATE)
        return -EINVAL;
    return spawn(q, poll, size, NULL, NULL, state, drop, join);
}

int cw_spawn_with(cw_queue *q, cw_poll_fn poll, size_t size, cw_init_fn init, void *arg,
                  cw_drop_fn drop, cw_join **join)
{
    if (!q)
        return -ENOENT;
    if (!poll || !init || size > CW__MAX_STATE)
        return -EINVAL;
    return spawn(q, poll, size, init, arg, NULL, drop, join);
}

/* cw_queue_run(): a task whose one poll is the call. */
struct run_call {
    cw_run_fn fn;
    void *arg;
};

static cw_poll run_call_poll(void *state, cw_cx *cx)
{
    const struct run_call *c = state;
    (void)cx;
    c->fn(c->arg);
    return CW_READY;
}

int cw_queue_run(cw_queue *q, cw_run_fn fn, void *arg)
{
    if (!fn)
        return q ? -EINVAL : -ENOENT;
    struct run_call c = {fn, arg};
    return cw_spawn(q, run_call_poll, &c, sizeof c, NULL, NULL);
}
