/*
 * event.c - cw_event: a libevent event whose callback runs on a queue.
 *
 * One allocation per event: the cw_event and, behind it, the libevent
 * event (event_assign() into event_get_struct_event_size() bytes), whose
 * callback (lcb) only records the activation and wakes the event's task.
 *
 * The task. An event with no task gets one at its first activation
 * (cw_spawn_with(): its state points back at the event, and the event at
 * its state). Its poll runs the user's callback with the flags gathered
 * since the last run, then stays (CW_PENDING, woken by the next
 * activation) while the event is pending, and ends (CW_READY) once it is
 * neither pending nor active. So a busy persistent event costs a wake per
 * activation, not a spawn, and an idle event holds no task: the loop's
 * liveness is libevent's (a live task keeps the executor's remote-wake fd
 * watched: executor.h).
 *
 * Links. ev->task and task->ev point at each other while both live;
 * whichever side goes first clears both: the poll when it ends, the drop
 * function when the task is cancelled (cw_executor_free()), cw_event_free()
 * when the event goes first (the task then ends at its next poll, woken
 * for it if it was idle). ev->waker is the task's waker, cloned at its
 * first poll (before it, the task is queued: nothing needs to wake it).
 *
 * The executor gone: the event holds the executor's shared part
 * (cw__shared_hold()), which outlives it, and asks it (cw__cbq_alive())
 * before spawning. Without an executor, an activation runs the callback
 * at once, as libevent would.
 */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>

#include "cbq.h"
#include "clockworker/event.h"
#include "clockworker/libevent.h"

#define EV_PENDING_MASK (EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL | EV_CLOSED)

struct ev_task {
    cw_event *ev; /* NULL once the event let go of the task */
};

struct cw_event {
    cw_queue *q;
    cw__shared *sh;           /* held: is the executor still there? */
    event_callback_fn cb;
    void *arg;
    evutil_socket_t fd;
    bool persist;             /* EV_PERSIST */
    bool kept;                /* persistent and added: pending until
                                 cw_event_del() (no event_pending() call
                                 per callback) */
    bool active;              /* an activation waits for the callback */
    short res;                /* its flags, OR'ed */
    struct ev_task *task;     /* the live task's state, NULL if none */
    cw_waker *waker;          /* the task's, from its first poll on */
    alignas(max_align_t) unsigned char lev[]; /* the libevent event */
};

static struct event *lev_of(const cw_event *ev)
{
    return (struct event *)(void *)ev->lev;
}

/* The event and its task part (either side may call it). */
static void unlink_task(cw_event *ev)
{
    ev->task->ev = NULL;
    ev->task = NULL;
    cw_waker *w = ev->waker;
    ev->waker = NULL;
    cw_waker_free(w);
}

static cw_poll ev_poll(void *state, cw_cx *cx)
{
    struct ev_task *t = state;
    cw_event *ev = t->ev;
    if (!ev)
        return CW_READY; /* the event was freed */
    if (!ev->waker)
        ev->waker = cw_waker_clone(cw_cx_waker(cx));
    if (ev->active) {
        short what = ev->res;
        ev->active = false;
        ev->res = 0;
        ev->cb(ev->fd, what, ev->arg);
        if (!(ev = t->ev))
            return CW_READY; /* freed by the callback */
        if (ev->active)
            return CW_PENDING; /* activated again meanwhile: woken */
    }
    if (ev->kept || event_pending(lev_of(ev), EV_PENDING_MASK, NULL))
        return CW_PENDING; /* the next activation wakes it */
    unlink_task(ev);
    return CW_READY;
}

/* Cancelled (the executor is being freed): the waiting activation is
 * dropped; the event stays as libevent has it. */
static void ev_drop(void *state)
{
    struct ev_task *t = state;
    cw_event *ev = t->ev;
    if (!ev)
        return;
    ev->active = false;
    ev->res = 0;
    unlink_task(ev);
}

static int ev_task_init(void *state, void *arg)
{
    struct ev_task *t = state;
    cw_event *ev = arg;
    t->ev = ev;
    ev->task = t;
    return 0;
}

/* Queue an activation: 0, or -ESHUTDOWN (no executor to take it) or
 * -ENOMEM (no task for it); nothing changed then. */
static int activate(cw_event *ev, short what)
{
    if (!ev->task) {
        if (!cw__cbq_alive(ev->sh))
            return -ESHUTDOWN;
        int err = cw_spawn_with(ev->q, ev_poll, sizeof(struct ev_task), ev_task_init, ev,
                                ev_drop, NULL);
        if (err < 0)
            return err;
    }
    ev->active = true;
    ev->res |= what;
    if (ev->waker) /* (none before the first poll: queued already) */
        cw_waker_wake_by_ref(ev->waker);
    return 0;
}

/* libevent fired the event. */
static void lcb(evutil_socket_t fd, short what, void *arg)
{
    cw_event *ev = arg;
    if (activate(ev, what) < 0)
        ev->cb(fd, what, ev->arg); /* no executor, or no memory: at once */
}

cw_event *cw_event_new(cw_queue *q, evutil_socket_t fd, short what, event_callback_fn cb,
                       void *arg)
{
    int err = 0;
    cw_executor *ex = q ? cw_queue_executor(q) : NULL;
    struct event_base *base = NULL;
    cw_event *ev = NULL;
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        err = ENOENT;
    else if (!cb)
        err = EINVAL;
    else if (!cw__on_thread(ex->shared))
        err = EPERM;
    else if (ex->freeing)
        err = ESHUTDOWN;
    else if (!(base = cw_executor_base(ex)))
        err = ENOTSUP;
    else if (!(ev = cw__calloc(1, sizeof *ev + event_get_struct_event_size())))
        err = ENOMEM;
    else if (event_assign(lev_of(ev), base, fd, what, lcb, ev) < 0)
        err = EINVAL;
    if (err) {
        cw__free(ev);
        errno = err;
        return NULL;
    }
    ev->q = q;
    ev->sh = ex->shared;
    cw__shared_hold(ev->sh);
    ev->cb = cb;
    ev->arg = arg == event_self_cbarg() ? ev : arg;
    ev->fd = fd;
    ev->persist = (what & EV_PERSIST) != 0;
    return ev;
}

int cw_event_add(cw_event *ev, const struct timeval *tv)
{
    if (!ev)
        return -EINVAL;
    if (!cw__on_thread(ev->sh))
        return -EPERM;
    errno = 0;
    if (event_add(lev_of(ev), tv) < 0) {
        ev->kept = false; /* (a failed re-add may have removed it) */
        return errno > 0 ? -errno : -EINVAL;
    }
    ev->kept = ev->persist;
    return 0;
}

int cw_event_del(cw_event *ev)
{
    if (!ev)
        return -EINVAL;
    if (!cw__on_thread(ev->sh))
        return -EPERM;
    event_del(lev_of(ev));
    ev->kept = false;
    ev->active = false;
    ev->res = 0;
    /* An idle task ends at the poll this asks for (neither pending nor
     * active); a queued or running one needs nothing. */
    if (ev->waker)
        cw_waker_wake_by_ref(ev->waker);
    return 0;
}

int cw_event_active(cw_event *ev, int what, short ncalls)
{
    if (!ev)
        return -EINVAL;
    if (!cw__on_thread(ev->sh))
        return -EPERM;
    int err = activate(ev, (short)what);
    if (err == -ESHUTDOWN) { /* no executor: libevent runs it */
        event_active(lev_of(ev), what, ncalls);
        return 0;
    }
    return err;
}

void cw_event_free(cw_event *ev)
{
    if (!ev)
        return;
    if (!cw__on_thread(ev->sh)) {
        cw__misuse("cw_event_free()", "not on the executor's thread; not freed");
        return;
    }
    event_del(lev_of(ev));
    if (ev->task) {
        /* The task ends at its next poll: wake it in case it is idle (a
         * queued one stays queued, a running one is marked). */
        cw_waker *w = ev->waker;
        ev->waker = NULL;
        ev->task->ev = NULL;
        ev->task = NULL;
        cw_waker_wake(w);
    }
    cw__shared_release(ev->sh, 1);
    cw__free(ev);
}

int cw_event_pending(const cw_event *ev, short what, struct timeval *tv)
{
    if (!ev)
        return 0;
    int flags = event_pending(lev_of(ev), what, tv);
    if (ev->active)
        flags |= ev->res & what & EV_PENDING_MASK;
    return flags;
}

cw_queue *cw_event_queue(const cw_event *ev)
{
    return ev ? ev->q : NULL;
}

evutil_socket_t cw_event_get_fd(const cw_event *ev)
{
    return ev ? ev->fd : -1;
}
