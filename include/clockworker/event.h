/**
 * @file clockworker/event.h
 * @brief libevent-shaped events whose callbacks run on a queue, under the
 *        scheduler, instead of at once.
 *
 * A ::cw_event is a libevent event (an fd, a timer or a signal; persistent
 * or not) with the callback of libevent's own events,
 * `void cb(evutil_socket_t fd, short what, void *arg)`. When libevent
 * fires it (or cw_event_active() activates it), the callback does not run
 * there and then: the activation waits on the event's queue, and the
 * callback runs when EEVDF picks that queue, after the work queued there
 * before it, with the queue charged for its time. So a daemon written as
 * callbacks puts a handler under the scheduler by changing the calls on
 * that one event, each to the cw_ function of the same name:
 *
 * @code
 * // before: ev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, conn);
 * cw_event *ev = cw_event_new(fg_queue, fd, EV_READ | EV_PERSIST, on_read, conn);
 * cw_event_add(ev, NULL);              // event_add(ev, NULL)
 * ...
 * static void on_read(evutil_socket_t fd, short what, void *arg)
 * {
 *     // runs on fg_queue; what: EV_READ (| EV_TIMEOUT ... if coalesced)
 * }
 * ...
 * cw_event_free(ev);                   // event_free(ev)
 * @endcode
 *
 * The event lives in the executor's event_base (cw_executor_base()): the
 * queue must be one of an executor on libevent. Queue weights replace
 * libevent's priorities, and unlike them do not starve: with
 * event_base_priority_init(), a ready low-priority fd never runs while a
 * high-priority event stays active; on weighted queues it gets its
 * queue's share.
 *
 * Activations, as libevent's:
 * - An event fires or is activated: it is *active* until its callback
 *   runs. Activations that arrive while it is active coalesce: the
 *   callback runs once, with their `what` flags OR'ed (EV_READ |
 *   EV_TIMEOUT, ...), as libevent does for an event activated twice
 *   before its callback ran.
 * - A non-persistent event stops being pending when it fires (before its
 *   callback runs); the callback may add it again. A persistent one
 *   (EV_PERSIST) stays pending until cw_event_del().
 * - Activations that arrive while the callback runs (cw_event_active()
 *   from the callback itself, the fd firing again) run it once more,
 *   later, behind the work queued on its queue meanwhile: a callback
 *   that re-activates its own event runs once per turn of its queue, not
 *   in a loop.
 * - cw_event_del() and cw_event_free() cancel an activation that has not
 *   run: the callback does not run after either returns (nor during
 *   cw_event_free()). Both may be called from any callback, the event's
 *   own included (the callback runs to its end; the event is not touched
 *   after cw_event_free()).
 *
 * Lifetime: as libevent's events, free each cw_event before
 * event_base_free() of its base. It may outlive the executor: when the
 * executor is freed, activations waiting then are dropped (their
 * callbacks do not run), and from then on the event behaves as a plain
 * libevent event: cw_event_add(), cw_event_del() and cw_event_pending()
 * work, and the callback runs at once when libevent fires the event or
 * cw_event_active() is called. cw_event_free() works then too, and is
 * still needed.
 *
 * Threads: executor thread only (every function; the callback runs
 * there). To activate from another thread, wake a task or send on a
 * cw_remote_chan (sync.h).
 *
 * Cost: the first activation of an idle event spawns a small internal
 * task (no allocation in steady state: task.h); it stays while the event
 * is pending, so each later activation of a persistent (or re-added)
 * event is one wake, and each callback one poll. The task ends when the
 * event is neither pending nor active after a callback, so
 * event_base_dispatch() returns once no event is pending, as with
 * libevent's own events. If that spawn fails (out of memory) where no
 * error can be returned (libevent firing the event), the callback runs at
 * once, as libevent would run it.
 *
 * Include it on purpose, as bev.h and http.h: it needs libevent's
 * headers, so <clockworker.h> does not include it.
 */
#ifndef CLOCKWORKER_EVENT_H
#define CLOCKWORKER_EVENT_H

#include <event2/event.h>
#include <event2/util.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An event whose callback runs on a queue (opaque; see the file comment). */
typedef struct cw_event cw_event;

/**
 * Create an event, as event_new(), whose callback runs on q. It is not
 * pending until cw_event_add().
 *
 * @param q     the queue the callback runs on; of an executor on libevent
 *              (the event is made on cw_executor_base()).
 * @param fd    the fd to watch, the signal number for EV_SIGNAL, or -1
 *              (a timer, or an event only activated by hand).
 * @param what  EV_READ, EV_WRITE, EV_SIGNAL, EV_PERSIST, EV_ET, EV_CLOSED,
 *              as for event_new() (0: a timer).
 * @param cb    the callback, libevent's type: cb(fd, what, arg), `what`
 *              holding the flags of every activation it runs for.
 * @param arg   passed to cb; event_self_cbarg() passes the ::cw_event
 *              itself (as it passes the struct event to event_new()).
 * @return the event, to free with cw_event_free(); NULL with errno set
 *         on error: ENOENT (q NULL: no such queue), EINVAL (cb NULL, or
 *         flags libevent refuses, such
 *         as EV_SIGNAL with EV_READ), ENOTSUP (q's executor runs on
 *         another loop than libevent), EPERM (not on the executor
 *         thread), ENOMEM.
 *
 * Executor thread.
 */
CW_EXTERN cw_event *cw_event_new(cw_queue *q, evutil_socket_t fd, short what,
                                 event_callback_fn cb, void *arg);

/**
 * Make the event pending, as event_add(): with tv NULL, until it fires
 * (for a non-persistent event) or cw_event_del(); with tv, also for at
 * most tv (then it fires with EV_TIMEOUT; a persistent event's timeout
 * restarts each time it fires). Adding a pending event again replaces its
 * timeout. An activation already waiting is kept.
 *
 * @return 0; -EINVAL if ev is NULL or libevent refuses (a negative tv);
 *         -EPERM if not on the executor thread; or the negative errno of
 *         the backend's failure (-EBADF for a closed fd, -EPERM for a
 *         file epoll does not watch, ...). On error the event is as it
 *         was, except that a failed re-add of a pending event may have
 *         removed it (as event_add() would). libevent's -1 becomes a
 *         negative errno: test the result with `< 0`.
 *
 * Executor thread; from any callback, the event's own included.
 */
CW_EXTERN int cw_event_add(cw_event *ev, const struct timeval *tv);

/**
 * Make the event neither pending nor active, as event_del(): it stops
 * watching its fd, timer or signal, and an activation not yet run is
 * cancelled (its callback does not run). A callback running now runs to
 * its end. Deleting a deleted event does nothing.
 *
 * @return 0; -EINVAL if ev is NULL; -EPERM if not on the executor thread.
 *         Executor thread; from any callback.
 */
CW_EXTERN int cw_event_del(cw_event *ev);

/**
 * Activate the event by hand, as event_active(): its callback will run
 * on its queue with `what` (coalesced with the flags of any activation
 * that has not run yet). The event need not be pending; this does not
 * make it pending. From its own callback it runs the callback again, once
 * per turn of its queue.
 *
 * @param ev     the event.
 * @param what   the flags to pass (EV_READ, EV_WRITE, EV_TIMEOUT, ...).
 * @param ncalls ignored (libevent uses it for signals only).
 * @return 0; -EINVAL if ev is NULL; -EPERM if not on the executor
 *         thread; -ENOMEM if the activation could not be queued (the
 *         callback will not run for it). event_active() returns nothing:
 *         ignoring the result is as safe as calling it.
 *
 * Executor thread.
 */
CW_EXTERN int cw_event_active(cw_event *ev, int what, short ncalls);

/**
 * Free the event, as event_free(): deleted first (a waiting activation is
 * cancelled), then released. From the event's own callback it is freed
 * at once, and the callback must not use it afterwards (as with
 * event_free()); the callback runs to its end. Also after the executor
 * was freed (file comment); before event_base_free() of its base.
 * NULL is a no-op. Executor thread.
 */
CW_EXTERN void cw_event_free(cw_event *ev);

/**
 * Whether the event is pending or active, as event_pending(): the flags
 * of `what` (EV_TIMEOUT, EV_READ, EV_WRITE, EV_SIGNAL) that it is pending
 * for in libevent or has waiting in an activation. With EV_TIMEOUT in
 * what and tv not NULL, *tv gets the expiry of a pending timeout.
 * 0 for NULL ev. Executor thread.
 */
CW_EXTERN int cw_event_pending(const cw_event *ev, short what, struct timeval *tv);

/** The event's queue (NULL for NULL ev; unusable once the executor is
 *  freed). */
CW_EXTERN cw_queue *cw_event_queue(const cw_event *ev);

/** The event's fd or signal number (-1 for NULL ev), as event_get_fd(). */
CW_EXTERN evutil_socket_t cw_event_get_fd(const cw_event *ev);

/** evtimer_new(): a timer event on q (no fd, not persistent). */
#define cw_evtimer_new(q, cb, arg) cw_event_new((q), -1, 0, (cb), (arg))
/** evtimer_add(): cw_event_add(). */
#define cw_evtimer_add(ev, tv) cw_event_add((ev), (tv))
/** evtimer_del(): cw_event_del(). */
#define cw_evtimer_del(ev) cw_event_del(ev)
/** evtimer_pending(): cw_event_pending() for EV_TIMEOUT. */
#define cw_evtimer_pending(ev, tv) cw_event_pending((ev), EV_TIMEOUT, (tv))
/** evsignal_new(): a persistent signal event on q. */
#define cw_evsignal_new(q, signum, cb, arg) \
    cw_event_new((q), (signum), EV_SIGNAL | EV_PERSIST, (cb), (arg))
/** evsignal_add(): cw_event_add(). */
#define cw_evsignal_add(ev, tv) cw_event_add((ev), (tv))
/** evsignal_del(): cw_event_del(). */
#define cw_evsignal_del(ev) cw_event_del(ev)

#ifdef __cplusplus
}
#endif
#endif
