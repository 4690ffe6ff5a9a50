/*
 * spawn_remote.c - cw_spawner and cw_spawn_remote(): any thread spawns a
 * task onto an executor, and may wait for it (cw_remote_join). Declared
 * in clockworker/sync.h with the other cross-thread tools; part of the
 * core because the executor's inbox drain, its free and a task's end
 * call in here (cw__spawn_remote_finish/_cancel, cw__remote_join_end).
 *
 * A remotely spawned task travels through the executor's remote inbox
 * (waker.c), the same lock-free stack remote wakes use; only its join
 * handle has a mutex, taken by the executor for an instant when such a
 * task ends.
 */
#include "config.h"

#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "clockworker/sync.h"
#include "internal.h"

/* ======================================================================== */
/* cw_spawn_remote
 *
 * A spawner is (a reference on) an internal "anchor" task spawned on its
 * queue (cw__task_internal(): not in the user's statistics), whose state
 * names the queue: that reference keeps the task block and so the
 * executor's cw__shared alive (internal.h), the anchor keeps
 * the executor's remote-wake fd watched while it is live, and freeing the
 * spawner wakes the anchor, which then completes.
 *
 * cw_spawn_remote() builds a whole task block on the calling thread (a
 * slab of its own, which the executor adopts when it takes the block in),
 * with two references (the executor's and the inbox's), CW__T_SPAWNING,
 * and the queue's index copied from the anchor, and pushes it on the
 * inbox. The executor's drain calls
 * cw__spawn_remote_finish(); cw_executor_free() closes the inbox and calls
 * cw__spawn_remote_cancel() for blocks still in it; a push that finds the
 * inbox closed fails with -ESHUTDOWN and frees the block.
 */

struct anchor {
    atomic_bool closed;
    uint16_t qidx; /* the queue's index: read off the executor thread */
    bool acct;     /* the executor keeps task accounting (X_ACCT) */
};

struct cw_remote_join {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int status;   /* -EAGAIN until the task ended */
    atomic_uint refs;    /* the handle + the task */
    const char *thread;  /* the executor thread's token (internal.h) */
    char *panic_msg;
    size_t size;
    alignas(max_align_t) unsigned char state[];
};

cw_poll cw__anchor_poll(void *state, cw_cx *cx)
{
    struct anchor *a = state;
    (void)cx;
    return atomic_load(&a->closed) ? CW_READY : CW_PENDING;
}

static cw__task *anchor_of(const cw_spawner *sp)
{
    return cw__task_of_handle(sp);
}

int cw_spawner_new(cw_queue *q, cw_spawner **out)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (!out)
        return -EINVAL;
    struct anchor a = {.qidx = (uint16_t)q->index, .acct = q->ex->acct_on};
    atomic_init(&a.closed, false);
    cw_join *j;
    int err = cw_spawn(q, cw__anchor_poll, &a, sizeof a, NULL, &j);
    if (err < 0)
        return err;
    /* Keep the block through a waker reference (usable from any thread),
     * not through the join handle (executor thread only). */
    *out = (cw_spawner *)cw_waker_clone((cw_waker *)j);
    cw_join_free(j);
    return 0;
}

void cw_spawner_free(cw_spawner *sp)
{
    if (!sp)
        return;
    struct anchor *a = (struct anchor *)(void *)anchor_of(sp)->state;
    atomic_store(&a->closed, true);
    cw_waker_wake((cw_waker *)sp);
}

static void rjoin_release(cw_remote_join *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    cw__free(j->panic_msg);
    cw__free(j);
}

static cw_remote_join *rjoin_new(size_t size, const char *thread)
{
    cw_remote_join *j = cw__malloc(offsetof(cw_remote_join, state) + size);
    if (!j)
        return NULL;
    if (pthread_mutex_init(&j->mu, NULL) != 0) {
        cw__free(j);
        return NULL;
    }
    if (pthread_cond_init(&j->cv, NULL) != 0) {
        pthread_mutex_destroy(&j->mu);
        cw__free(j);
        return NULL;
    }
    atomic_init(&j->status, -EAGAIN);
    atomic_init(&j->refs, 2u);
    j->thread = thread;
    j->panic_msg = NULL;
    j->size = size;
    return j;
}

int cw_spawn_remote(cw_spawner *sp, cw_poll_fn poll, const void *state, size_t size,
                    cw_drop_fn drop, cw_remote_join **join)
{
    if (!sp || !poll || (!state && size) || size > CW__MAX_STATE)
        return -EINVAL;
    cw__task *a = anchor_of(sp);
    cw__shared *sh = cw__task_shared(a);
    if (atomic_load(&sh->inbox) == CW__INBOX_CLOSED)
        return -ESHUTDOWN;

    cw_remote_join *rj = NULL;
    if (join && !(rj = rjoin_new(size, sh->thread)))
        return -ENOMEM;
    /* a stamp slot always: whether histograms are on is not known here */
    const struct anchor *an = (const struct anchor *)(const void *)a->state;
    uint16_t x = (uint16_t)((drop ? CW__T_X_DROP : 0) | (rj ? CW__T_X_JOIN : 0) | CW__T_X_STAMP
                            | (an->acct ? CW__T_X_ACCT : 0));
    cw__task *t = cw__task_alloc_remote(sh, size, x);
    if (!t) {
        if (rj) {
            atomic_store(&rj->refs, 1u);
            rjoin_release(rj);
        }
        return -ENOMEM;
    }
    t->poll = poll;
    t->inbox_next = NULL;
    atomic_init(&t->refs, 2u | CW__REF_INBOX); /* the executor's + the inbox's */
    t->flags = (uint16_t)(x | CW__T_SPAWNING | (rj ? CW__T_RJOIN : 0));
    t->qidx = ((struct anchor *)(void *)a->state)->qidx;
    if (drop)
        *(cw_drop_fn *)(void *)cw__task_slot(t, CW__T_X_DROP) = drop;
    if (rj)
        cw__task_join(t)->rjoin = rj;
    if (size)
        memcpy(t->state, state, size);
    /* sh is alive: the spawner holds a reference on its anchor block */

    if (!cw__inbox_push(sh, t)) { /* freed meanwhile: undo */
        cw__task_free_unadopted(t);
        if (rj) {
            atomic_store(&rj->refs, 1u);
            rjoin_release(rj);
        }
        return -ESHUTDOWN;
    }
    if (join)
        *join = rj;
    return 0;
}

void cw__spawn_remote_finish(cw_executor *ex, cw__task *t)
{
    cw_queue *q = cw__task_queue(ex, t);
    t->flags &= (uint16_t)~CW__T_SPAWNING;
    if (!ex->ntasks) /* (a spawner's anchor normally ensures it) */
        cw__loop_watch_notify(ex, true);
    cw__slab_adopt(ex, t);
    ex->ntasks++;
    if (t->flags & CW__T_X_ACCT)
        cw__acct_init(ex, t);
    ex->stats.tasks_live++;
    ex->stats.tasks_spawned++;
    q->spawned++;
    cw__task_enqueue(ex, t);
    CW__HOOK(ex, spawn, q, t->state);
}

void cw__spawn_remote_cancel(cw_executor *ex, cw__task *t)
{
    cw__slab_adopt(ex, t);
    t->flags = (uint16_t)((t->flags & ~CW__T_SPAWNING) | CW__T_DONE | CW__T_ST_CANCEL);
    if (t->flags & CW__T_RJOIN)
        cw__remote_join_end(t, -ECANCELED);
    cw__task_drop_state(t);
    cw__task_release(t); /* the executor's reference; the caller drops the inbox's */
}

void cw__remote_join_end(cw__task *t, int status)
{
    cw_remote_join *j = cw__task_join(t)->rjoin;
    cw__task_join(t)->rjoin = NULL;
    t->flags &= (uint16_t)~CW__T_RJOIN;
    if (status == 0 && j->size)
        memcpy(j->state, t->state, j->size);
    if (status == CW_EPANIC) {
        j->panic_msg = t->panic_msg;
        t->panic_msg = NULL;
    }
    pthread_mutex_lock(&j->mu);
    atomic_store_explicit(&j->status, status, memory_order_release);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    rjoin_release(j);
}

int cw_remote_join_wait(cw_remote_join *j)
{
    if (!j)
        return -EINVAL;
    int st = atomic_load_explicit(&j->status, memory_order_acquire);
    if (st != -EAGAIN)
        return st;
    if (j->thread == &cw__thread_token)
        return -EBUSY;
    pthread_mutex_lock(&j->mu);
    while ((st = atomic_load_explicit(&j->status, memory_order_acquire)) == -EAGAIN)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    return st;
}

int cw_remote_join_status(const cw_remote_join *j)
{
    return j ? atomic_load_explicit(&j->status, memory_order_acquire) : -EINVAL;
}

const void *cw_remote_join_state(const cw_remote_join *j)
{
    return cw_remote_join_status(j) == 0 ? j->state : NULL;
}

const char *cw_remote_join_panic_message(const cw_remote_join *j)
{
    if (cw_remote_join_status(j) != CW_EPANIC)
        return NULL;
    return j->panic_msg ? j->panic_msg : "(panic message lost: out of memory)";
}

void cw_remote_join_free(cw_remote_join *j)
{
    if (j)
        rjoin_release(j);
}
