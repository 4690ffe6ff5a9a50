/*
 * driver/libevent.c - the executor on a libevent event_base: the ops of
 * clockworker/driver.h, and cw_executor_new(). The only file of the
 * library proper that calls libevent's core API (the bufferevent and
 * evhttp adapters in lib/libevent call theirs). The core asks for: a
 * round soon (after libevent has polled I/O), the remote-wake fd watched
 * or not, one turn of the loop, one timer armed at the earliest sleep's
 * deadline (time.c keeps the sleeps; the timer is added to the base only
 * while sleeps are pending, so event_base_dispatch() can return once
 * every task has ended), and an event per cw_fdwait.
 *
 * A round is scheduled as a zero-timeout timer, re-armed after each round
 * that leaves work: libevent polls I/O (epoll_wait with a zero timeout)
 * before each firing and runs the fds that became ready first, so I/O
 * callbacks run between two rounds. event_active() would run the round
 * again in the same pass, before any I/O poll, and would keep
 * event_base_loop(EVLOOP_ONCE) from returning. Cost: ~150 ns per round
 * trip on the machine of DESIGN.md, against rounds of up to driver_yield.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>

#include "clockworker/driver.h"
#include "clockworker/libevent.h"
#include "libevent_int.h"

_Static_assert(CW_FD_READ == EV_READ && CW_FD_WRITE == EV_WRITE,
               "clockworker's interest flags are libevent's");


static void round_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cw_driver_round(arg);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cw_driver_notified(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct levdrv *d = arg;
    (void)fd;
    (void)what;
    /* Sleeps due woke an idle executor: run the round in this pass of the
     * loop rather than the next (saves an epoll_wait() and a timer update
     * per wake). This pass has polled I/O already, and event_active() from
     * a callback runs after the callbacks already active: the rule "I/O is
     * polled between two rounds" holds. */
    if (cw_driver_timer(d->ex)) {
        evtimer_del(d->round_ev);
        event_active(d->round_ev, EV_TIMEOUT, 1);
    }
}

static void lev_free(void *drv)
{
    struct levdrv *d = drv;
    if (d->round_ev)
        event_free(d->round_ev);
    if (d->notify_ev)
        event_free(d->notify_ev);
    if (d->timer_ev)
        event_free(d->timer_ev);
    cw_driver_dealloc(d);
}

static int lev_init(cw_executor *ex, void *arg, void **out)
{
    struct levdrv *d = cw_driver_alloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->ex = ex;
    d->base = arg;
    d->round_ev = evtimer_new(d->base, round_cb, ex);
    d->notify_ev = event_new(d->base, cw_driver_notify_fd(ex), EV_READ | EV_PERSIST,
                             notify_cb, ex);
    d->timer_ev = evtimer_new(d->base, timer_cb, d);
    if (!d->round_ev || !d->notify_ev || !d->timer_ev) {
        lev_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

static void lev_schedule(void *drv)
{
    struct levdrv *d = drv;
    static const struct timeval zero = {0, 0};
    /* Adding a timer may grow libevent's timer heap. Without memory, run
     * the round in this pass of the loop instead (event_active() does not
     * allocate): the round must not be lost, since round_pending blocks
     * any other request until it runs. */
    if (evtimer_add(d->round_ev, &zero) < 0)
        event_active(d->round_ev, EV_TIMEOUT, 1);
}

/* libevent computes how long to wait for I/O from the time it cached when
 * the pass began (timeout_next() reads the cache, which is only cleared
 * just before the next epoll_wait()). After a round of long polls that
 * time is stale by the whole round, so every timer of the base, ours
 * included, would fire late by that much: a sleep due during the round
 * was seen up to a round late whenever the executor went idle. Refreshed
 * here, once per idle transition (one clock read), the wait is measured
 * from now. */
static void lev_idle(void *drv)
{
    struct levdrv *d = drv;
    event_base_update_cache_time(d->base);
}

static int lev_watch_notify(void *drv, bool on)
{
    struct levdrv *d = drv;
    return on ? event_add(d->notify_ev, NULL) : event_del(d->notify_ev);
}

/* Relative, in real time: libevent measures it on its own clock. Rounded
 * up to the microsecond so that, on the real clock, it does not fire
 * before the deadline because of the rounding (it may fire early anyway
 * when libevent's cached or coarse clock lags: the core then finds
 * nothing due and re-arms). Delays beyond a day are armed for a day (it
 * fires early and is re-armed), far from any overflow in libevent. */
static void lev_arm_timer(void *drv, uint64_t delay_ns)
{
    struct levdrv *d = drv;
    const uint64_t day_ns = 86400ull * 1000000000u;
    if (delay_ns > day_ns)
        delay_ns = day_ns;
    uint64_t us = delay_ns / 1000 + (delay_ns % 1000 != 0);
    struct timeval tv;
    tv.tv_sec = (time_t)(us / 1000000);
    tv.tv_usec = (suseconds_t)(us % 1000000);
    /* libevent adds tv to the time it cached when this loop pass began,
     * possibly a whole round ago: refresh it, or the timer fires early by
     * that much and the core must re-arm it (an extra loop pass). */
    event_base_update_cache_time(d->base);
    evtimer_add(d->timer_ev, &tv);
}

static void lev_disarm_timer(void *drv)
{
    struct levdrv *d = drv;
    evtimer_del(d->timer_ev);
}

static void fd_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    cw_driver_fd_ready(arg, what);
}

static void *lev_fd_new(void *drv, int fd, short what, cw_fdwait *w)
{
    struct levdrv *d = drv;
    return event_new(d->base, fd, what, fd_cb, w);
}

static int lev_fd_arm(void *drv, void *rec)
{
    (void)drv;
    /* libevent says -1 for a refused fd and for a failed allocation (its
     * fd map, its backend's arrays); only errno tells them apart. */
    errno = 0;
    if (event_add(rec, NULL) == 0)
        return 0;
    return errno == ENOMEM ? -ENOMEM : -EBADF;
}

static void lev_fd_free(void *drv, void *rec)
{
    (void)drv;
    event_free(rec);
}

static int lev_run_once(void *drv)
{
    struct levdrv *d = drv;
    return event_base_loop(d->base, EVLOOP_ONCE);
}

const cw_driver_ops cw__libevent_ops = {
    .abi = CW_DRIVER_ABI,
    .kind = CW_LOOP_LIBEVENT,
    .init = lev_init,
    .free = lev_free,
    .schedule = lev_schedule,
    .idle = lev_idle,
    .watch_notify = lev_watch_notify,
    .arm_timer = lev_arm_timer,
    .disarm_timer = lev_disarm_timer,
    .fd_new = lev_fd_new,
    .fd_arm = lev_fd_arm,
    .fd_free = lev_fd_free,
    .run_once = lev_run_once,
};

int cw_executor_new(struct event_base *base, const cw_config *cfg, cw_executor **out)
{
    if (!base) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return cw_driver_executor_new(&cw__libevent_ops, base, cfg, out);
}

struct event_base *cw_executor_base(const cw_executor *ex)
{
    struct levdrv *d = cw_driver_state(ex, &cw__libevent_ops);
    return d ? d->base : NULL;
}
