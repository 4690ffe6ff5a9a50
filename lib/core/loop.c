/*
 * loop.c - the core's side of the driver seam (clockworker/driver.h).
 *
 * The only file of the core that calls a driver: each cw__loop_*() is the
 * op of the same name with the core's bookkeeping around it (whether the
 * remote-wake fd is watched, a driver gone while the executor is freed).
 * The drivers call back through the cw_driver_*() entry points below and
 * nothing else. Cost: one indirect call per op, against a round trip
 * through the loop (an epoll_wait) for the most frequent one, schedule.
 */
#include "config.h"

#include "internal.h"

/* ---- creating an executor on a driver ------------------------------------ */

static bool ops_complete(const cw_driver_ops *o)
{
    return o->abi == CW_DRIVER_ABI && o->init && o->free && o->schedule && o->watch_notify
        && o->arm_timer && o->disarm_timer && o->fd_new && o->fd_arm && o->fd_free
        && o->run_once;
}

int cw_driver_executor_new(const cw_driver_ops *ops, void *arg, const cw_config *cfg,
                           cw_executor **out)
{
    if (out)
        *out = NULL;
    if (!ops || !cfg || !out || !ops_complete(ops))
        return -EINVAL;
    cw_executor *ex;
    int err = cw__executor_new(cfg, &ex);
    if (err < 0)
        return err;
    void *drv = NULL;
    if ((err = ops->init(ex, arg, &drv)) < 0) {
        cw_executor_free(ex); /* no driver yet: the core's part only */
        return err;
    }
    ex->ops = ops;
    ex->drv = drv;
    *out = ex;
    return 0;
}

void cw__loop_free(cw_executor *ex)
{
    if (!ex->ops)
        return;
    ex->ops->free(ex->drv);
    ex->ops = NULL;
    ex->drv = NULL;
    ex->notify_watched = false;
}

void *cw_driver_alloc(size_t size)
{
    return cw__calloc(1, size);
}

void cw_driver_dealloc(void *p)
{
    cw__free(p);
}

void *cw_driver_state(const cw_executor *ex, const cw_driver_ops *ops)
{
    return ex && ops && ex->ops == ops ? ex->drv : NULL;
}

int cw_driver_notify_fd(const cw_executor *ex)
{
    return ex ? ex->shared->notify_rfd : -1;
}

cw_loop_kind cw_executor_loop(const cw_executor *ex)
{
    return ex && ex->ops ? ex->ops->kind : (cw_loop_kind)0;
}

const char *cw_loop_name(cw_loop_kind kind)
{
    switch (kind) {
    case CW_LOOP_LIBEVENT:
        return "libevent";
    case CW_LOOP_EMBED:
        return "embed";
    case CW_LOOP_LIBUV:
        return "libuv";
    case CW_LOOP_URING:
        return "uring";
    case CW_LOOP_OTHER:
        return "other";
    }
    return "unknown";
}

/* ---- the core asks ------------------------------------------------------- */

void cw__loop_schedule(cw_executor *ex)
{
    if (ex->ops)
        ex->ops->schedule(ex->drv);
}

void cw__loop_idle(cw_executor *ex)
{
    if (ex->ops && ex->ops->idle)
        ex->ops->idle(ex->drv);
}

int cw__loop_watch_notify(cw_executor *ex, bool on)
{
    if (on == ex->notify_watched || !ex->ops)
        return 0;
    if (ex->ops->watch_notify(ex->drv, on) < 0)
        return -1;
    ex->notify_watched = on;
    return 0;
}

void cw__loop_arm_timer(cw_executor *ex, uint64_t delay_ns)
{
    if (ex->ops)
        ex->ops->arm_timer(ex->drv, delay_ns);
}

void cw__loop_disarm_timer(cw_executor *ex)
{
    if (ex->ops)
        ex->ops->disarm_timer(ex->drv);
}

void *cw__loop_fd_new(cw_executor *ex, int fd, short what, cw_fdwait *w)
{
    return ex->ops ? ex->ops->fd_new(ex->drv, fd, what, w) : NULL;
}

int cw__loop_fd_arm(cw_executor *ex, void *rec)
{
    return ex->ops->fd_arm(ex->drv, rec);
}

void cw__loop_fd_free(cw_executor *ex, void *rec)
{
    if (ex->ops)
        ex->ops->fd_free(ex->drv, rec);
}

int cw__loop_run_once(cw_executor *ex)
{
    return ex->ops->run_once(ex->drv);
}

/* ---- the driver tells ---------------------------------------------------- */

void cw_driver_round(cw_executor *ex)
{
    cw__executor_round(ex);
}

bool cw_driver_timer(cw_executor *ex)
{
    bool pending = ex->round_pending;
    cw__executor_timers(ex);
    return !pending && ex->round_pending;
}

void cw_driver_notified(cw_executor *ex)
{
    cw__notify_drain(ex->shared);
    if (!ex->round_pending)
        cw__executor_round(ex);
}

void cw_driver_fd_ready(cw_fdwait *w, short what)
{
    cw__fdwait_fired(w, what);
}
