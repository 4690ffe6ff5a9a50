/* join.c - join handles: a cw_join * is the task block, holding a reference. */
#include "config.h"

#include <assert.h>

#include "internal.h"

cw_poll cw_join_poll(cw_join *j, cw_cx *cx)
{
    if (!j || !cx || !cx->task)
        return CW_READY;
    cw__task *t = cw__join_task(j, "cw_join_poll");
    if (t->flags & CW__T_DONE)
        return CW_READY;
    cw_waker *w = cw_cx_waker(cx);
    union cw__join_slot *js = cw__task_join(t); /* a cw_join has the slot */
    if (!cw_waker_will_wake(js->waiter, w)) {
        cw_waker_free(js->waiter);
        js->waiter = cw_waker_clone(w);
    }
    return CW_PENDING;
}

int cw_join_status(const cw_join *j)
{
    return j ? cw__task_status(cw__join_task(j, "cw_join_status")) : -EINVAL;
}

void *cw_join_state(cw_join *j)
{
    if (!j)
        return NULL;
    cw__task *t = cw__join_task(j, "cw_join_state");
    return cw__task_status(t) == 0 && !(t->flags & CW__T_DROPPED) ? t->state : NULL;
}

const char *cw_join_panic_message(const cw_join *j)
{
    if (!j)
        return NULL;
    cw__task *t = cw__join_task(j, "cw_join_panic_message");
    if (cw__task_status(t) != CW_EPANIC)
        return NULL;
    return t->panic_msg ? t->panic_msg : "(panic message lost: out of memory)";
}

/* Mark-then-reap for a task aborted from another task's poll: it goes
 * on the inbox (holding a reference, as a remote wake does), and the
 * drain after the poll in progress ends it (waker.c); a drain inside the
 * poll (cw_should_yield()) leaves it there. Already on the inbox (a
 * remote wake): the drain that takes it reaps it. */
static void reap_after_poll(cw__shared *sh, cw__task *t)
{
    unsigned r = atomic_load(&t->refs);
    do {
        if (r & CW__REF_INBOX)
            return;
    } while (!atomic_compare_exchange_weak(&t->refs, &r, (r + 1) | CW__REF_INBOX));
    bool pushed = cw__inbox_push(sh, t);
    assert(pushed); /* the executor is alive: its inbox is open */
    (void)pushed;
}

void cw_join_abort(cw_join *j)
{
    if (!j)
        return;
    cw__task *t = cw__join_task(j, "cw_join_abort");
    if (!cw__on_thread(cw__task_shared(t))) {
        cw__misuse("cw_join_abort()", "not on the executor's thread; not aborted");
        return;
    }
    if (t->flags & (CW__T_DONE | CW__T_CANCEL))
        return; /* ended, or ending at the next safe point */
    if (t->flags & CW__T_RUNNING) {
        /* Aborted from inside its own poll: end it once the poll returns. */
        t->flags |= CW__T_CANCEL;
        return;
    }
    cw__shared *sh = cw__task_shared(t);
    if (sh->ex->cx.task) {
        /* Inside another task's poll: the drop must not run under it. */
        t->flags |= CW__T_CANCEL;
        reap_after_poll(sh, t);
        return;
    }
    cw__task_end(sh->ex, t, -ECANCELED);
}

void cw_join_free(cw_join *j)
{
    if (!j)
        return;
    cw__task *t = cw__join_task(j, "cw_join_free");
    if (!cw__on_thread(cw__task_shared(t))) {
        cw__misuse("cw_join_free()", "not on the executor's thread; handle not freed");
        return;
    }
    t->flags &= (uint16_t)~CW__T_HAS_JOIN;
    union cw__join_slot *js = cw__task_join(t);
    if (js->waiter) {
        cw_waker *w = js->waiter;
        js->waiter = NULL;
        cw_waker_free(w);
    }
    if (t->flags & CW__T_DONE)
        cw__task_drop_state(t);
    cw__task_release(t);
}
