/*
 * io.c - cw_fdwait: fd readiness as a leaf future.
 *
 * One record of the loop per future (a libevent event, ...: driver.h's
 * fd_new), made at its first PENDING poll and armed for one report at a
 * time for each later wait (no allocation after the first on libevent).
 * One-shot, because a level-triggered persistent watch would report
 * again on every loop pass until the task has run and drained the fd.
 * The futures that own a record are on a list of the executor (O(1)
 * link and unlink) so that cw_executor_free() can free the records of
 * futures no drop function released.
 *
 * States: IDLE (zeroed or dropped: READY, revents 0) -> INIT (armed by
 * cw_fdwait_init, or after a completed wait) -> WAITING (record armed,
 * waker held) -> FIRED (callback ran, task woken) -> READY once -> INIT.
 */
#include "config.h"

#include "internal.h"

enum { FD_IDLE = 0, FD_INIT, FD_WAITING, FD_FIRED };

static void unlink_wait(cw_fdwait *w)
{
    cw_executor *ex = w->cw__ex;
    if (w->cw__prev)
        w->cw__prev->cw__next = w->cw__next;
    else
        ex->fdwaits = w->cw__next;
    if (w->cw__next)
        w->cw__next->cw__prev = w->cw__prev;
    w->cw__prev = w->cw__next = NULL;
    w->cw__ex = NULL;
}

/* Free the record and the waker; the future becomes IDLE. */
static void release(cw_fdwait *w)
{
    if (w->cw__rec) {
        cw__loop_fd_free(w->cw__ex, w->cw__rec);
        w->cw__rec = NULL;
        unlink_wait(w);
    }
    cw_waker *k = w->cw__waker;
    w->cw__waker = NULL;
    w->cw__state = FD_IDLE;
    cw_waker_free(k);
}

void cw_fdwait_init(cw_fdwait *w, int fd, short what)
{
    if (!w)
        return;
    *w = (cw_fdwait){0};
    w->cw__fd = fd;
    w->cw__what = (short)(what & (CW_FD_READ | CW_FD_WRITE));
    w->cw__state = FD_INIT;
}

static cw_poll failed(cw_fdwait *w)
{
    w->cw__revents = 0;
    return CW_READY;
}

cw_poll cw_fdwait_poll(cw_fdwait *w, cw_cx *cx)
{
    if (!w)
        return CW_READY;
    switch (w->cw__state) {
    case FD_IDLE:
        return failed(w);
    case FD_FIRED:
        w->cw__state = FD_INIT;
        return CW_READY;
    case FD_WAITING: {
        /* polled again before the fd was ready: keep the newest waker */
        cw_waker *k = cw_cx_waker(cx);
        if (k && !cw_waker_will_wake(w->cw__waker, k)) {
            cw_waker_free(w->cw__waker);
            w->cw__waker = cw_waker_clone(k);
        }
        return CW_PENDING;
    }
    default:
        break;
    }
    cw_waker *k = cw_cx_waker(cx);
    if (!k || !w->cw__what || w->cw__fd < 0)
        return failed(w); /* libevent would take fd -1 and never fire */
    if (!w->cw__rec) {
        cw_executor *ex = cx->ex;
        w->cw__rec = cw__loop_fd_new(ex, w->cw__fd, w->cw__what, w);
        if (!w->cw__rec) { /* out of memory: retry at the next poll */
            cw_waker_wake_by_ref(k);
            return CW_PENDING;
        }
        w->cw__ex = ex;
        w->cw__prev = NULL;
        w->cw__next = ex->fdwaits;
        if (ex->fdwaits)
            ex->fdwaits->cw__prev = w;
        ex->fdwaits = w;
    }
    int err = cw__loop_fd_arm(w->cw__ex, w->cw__rec);
    if (err == -ENOMEM) { /* out of memory: retry at the next poll */
        cw_waker_wake_by_ref(k);
        return CW_PENDING;
    }
    if (err < 0)
        return failed(w);
    w->cw__waker = cw_waker_clone(k);
    w->cw__state = FD_WAITING;
    return CW_PENDING;
}

void cw__fdwait_fired(cw_fdwait *w, short what)
{
    w->cw__revents = (short)(what & (CW_FD_READ | CW_FD_WRITE));
    w->cw__state = FD_FIRED;
    cw_waker *k = w->cw__waker;
    w->cw__waker = NULL;
    cw_waker_wake(k);
}

short cw_fdwait_revents(const cw_fdwait *w)
{
    return w ? w->cw__revents : 0;
}

void cw_fdwait_drop(cw_fdwait *w)
{
    if (w)
        release(w);
}

void cw__fdwaits_free(cw_executor *ex)
{
    while (ex->fdwaits)
        release(ex->fdwaits);
}
