/*
 * driver/libevent.c - the executor's binding to libevent; the only file
 * that calls libevent. The core asks for: a round soon (after libevent has
 * polled I/O), the remote-wake fd watched or not, one turn of the loop,
 * and one timer armed at the earliest sleep's deadline (time.c keeps the
 * sleeps; the timer is added to the base only while sleeps are pending,
 * so event_base_dispatch() can return once every task has ended).
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

#include <event2/event.h>

#include "internal.h"

static void round_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cw__executor_round(arg);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    cw_executor *ex = arg;
    (void)fd;
    (void)what;
    cw__notify_drain(ex->shared);
    if (!ex->round_pending)
        cw__executor_round(ex);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    cw_executor *ex = arg;
    (void)fd;
    (void)what;
    bool pending = ex->round_pending;
    cw__executor_timers(ex);
    /* Sleeps due woke an idle executor: run the round in this pass of the
     * loop rather than the next (saves an epoll_wait() and a timer update
     * per wake). This pass has polled I/O already, and event_active() from
     * a callback runs after the callbacks already active: the rule "I/O is
     * polled between two rounds" holds. */
    if (!pending && ex->round_pending) {
        evtimer_del(ex->drv.round_ev);
        event_active(ex->drv.round_ev, EV_TIMEOUT, 1);
    }
}

int cw__driver_init(cw_executor *ex)
{
    struct cw__driver *d = &ex->drv;
    d->round_ev = evtimer_new(ex->base, round_cb, ex);
    d->notify_ev = event_new(ex->base, ex->shared->notify_rfd, EV_READ | EV_PERSIST,
                             notify_cb, ex);
    d->timer_ev = evtimer_new(ex->base, timer_cb, ex);
    if (!d->round_ev || !d->notify_ev || !d->timer_ev) {
        cw__driver_free(ex);
        return -ENOMEM;
    }
    return 0;
}

void cw__driver_free(cw_executor *ex)
{
    struct cw__driver *d = &ex->drv;
    if (d->round_ev)
        event_free(d->round_ev);
    if (d->notify_ev)
        event_free(d->notify_ev);
    if (d->timer_ev)
        event_free(d->timer_ev);
    d->round_ev = d->notify_ev = d->timer_ev = NULL;
    d->notify_watched = false;
}

void cw__driver_schedule(cw_executor *ex)
{
    static const struct timeval zero = {0, 0};
    /* Adding a timer may grow libevent's timer heap. Without memory, run
     * the round in this pass of the loop instead (event_active() does not
     * allocate): the round must not be lost, since round_pending blocks
     * any other request until it runs. */
    if (evtimer_add(ex->drv.round_ev, &zero) < 0)
        event_active(ex->drv.round_ev, EV_TIMEOUT, 1);
}

/* libevent computes how long to wait for I/O from the time it cached when
 * the pass began (timeout_next() reads the cache, which is only cleared
 * just before the next epoll_wait()). After a round of long polls that
 * time is stale by the whole round, so every timer of the base, ours
 * included, would fire late by that much: a sleep due during the round
 * was seen up to a round late whenever the executor went idle. Refreshed
 * here, once per idle transition (one clock read), the wait is measured
 * from now. */
void cw__driver_idle(cw_executor *ex)
{
    event_base_update_cache_time(ex->base);
}

int cw__driver_watch_notify(cw_executor *ex, bool on)
{
    struct cw__driver *d = &ex->drv;
    if (on == d->notify_watched || !d->notify_ev)
        return 0;
    if (on ? event_add(d->notify_ev, NULL) : event_del(d->notify_ev))
        return -1;
    d->notify_watched = on;
    return 0;
}

/* Relative, in real time: libevent measures it on its own clock. Rounded
 * up to the microsecond so that, on the real clock, it does not fire
 * before the deadline because of the rounding (it may fire early anyway
 * when libevent's cached or coarse clock lags: the core then finds
 * nothing due and re-arms). Delays beyond a day are armed for a day (it
 * fires early and is re-armed), far from any overflow in libevent. */
void cw__driver_arm_timer(cw_executor *ex, uint64_t delay_ns)
{
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
    event_base_update_cache_time(ex->base);
    evtimer_add(ex->drv.timer_ev, &tv);
}

void cw__driver_disarm_timer(cw_executor *ex)
{
    if (ex->drv.timer_ev)
        evtimer_del(ex->drv.timer_ev);
}

static void fd_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    cw__fdwait_fired(arg, what);
}

struct event *cw__driver_fd_new(cw_executor *ex, evutil_socket_t fd, short what, cw_fdwait *w)
{
    return event_new(ex->base, fd, what, fd_cb, w);
}

int cw__driver_fd_add(struct event *ev)
{
    /* libevent says -1 for a refused fd and for a failed allocation (its
     * fd map, its backend's arrays); only errno tells them apart. */
    errno = 0;
    if (event_add(ev, NULL) == 0)
        return 0;
    return errno == ENOMEM ? -ENOMEM : -1;
}

void cw__driver_fd_free(struct event *ev)
{
    event_free(ev);
}

int cw__driver_loop_once(cw_executor *ex)
{
    return event_base_loop(ex->base, EVLOOP_ONCE);
}
