/**
 * @file clockworker/io.h
 * @brief cw_fdwait: wait until a file descriptor is readable or writable,
 *        as a leaf future a task embeds in its state.
 *
 * Each waiting cw_fdwait owns one libevent event on its fd, created at its
 * first PENDING poll and reused for every later wait while the future
 * lives; cw_fdwait_drop() frees it. Two tasks waiting on the same fd each
 * have their own event, and each is woken. Readiness is level-triggered
 * (libevent's default): the usual loop is "try the syscall; on EAGAIN,
 * await readiness; try again".
 *
 * @code
 * typedef struct reader {
 *     cw_pt pt;
 *     cw_fdwait rd;
 *     int fd;
 *     char buf[512];
 *     ssize_t n;
 * } reader;
 *
 * static cw_poll reader_poll(void *state, cw_cx *cx)
 * {
 *     reader *r = state;
 *     CW_BEGIN(&r->pt);
 *     for (;;) {
 *         r->n = read(r->fd, r->buf, sizeof r->buf);
 *         if (r->n < 0 && errno == EAGAIN) {
 *             CW_AWAIT(&r->pt, cw_fdwait_poll(&r->rd, cx));
 *             if (!cw_fdwait_revents(&r->rd))
 *                 CW_RETURN(&r->pt);    // the wait failed: bad fd
 *             continue;
 *         }
 *         if (r->n <= 0)
 *             CW_RETURN(&r->pt);
 *         ... use r->buf ...
 *     }
 *     CW_END(&r->pt);
 * }
 *
 * static void reader_drop(void *state)
 * {
 *     cw_fdwait_drop(&((reader *)state)->rd);   // required
 * }
 * // spawn with the future initialised: cw_fdwait_init(&r.rd, fd, EV_READ)
 * @endcode
 *
 * IMPORTANT: the task's drop function must call cw_fdwait_drop() for every
 * cw_fdwait in its state, so that a task aborted, panicking or cancelled
 * while it waits removes its event before the state goes away: nothing
 * fires later into freed memory. cw_executor_free() also removes the
 * events of futures a drop function forgot (and detaches them: a later
 * cw_fdwait_drop() is a no-op).
 *
 * Drop before close: call cw_fdwait_drop() before close(fd). An event
 * left on a closed descriptor number can fire for the next file that
 * reuses the number (accept() returns the lowest free one).
 *
 * Thread: executor thread only. The fd is not closed by any function here.
 */
#ifndef CLOCKWORKER_IO_H
#define CLOCKWORKER_IO_H

#include <event2/util.h>

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A wait for fd readiness. Public layout so it can be embedded in a task's
 * state; every field is private (use the functions).
 */
typedef struct cw_fdwait {
    evutil_socket_t cw__fd;      /**< private */
    short cw__what;              /**< private: EV_READ and/or EV_WRITE */
    short cw__revents;           /**< private: what fired last */
    int cw__state;               /**< private */
    struct event *cw__ev;        /**< private: created at the first wait */
    cw_waker *cw__waker;         /**< private: the waiting task's clone */
    cw_executor *cw__ex;         /**< private: owner, NULL when detached */
    struct cw_fdwait *cw__prev;  /**< private: the executor's list */
    struct cw_fdwait *cw__next;  /**< private */
} cw_fdwait;

/**
 * Prepare a wait. No event is created until the first poll.
 *
 * A zeroed cw_fdwait is a valid "dropped" one (poll on it is READY with
 * cw_fdwait_revents() 0). Re-initialising a future that has an event
 * requires cw_fdwait_drop() first. NULL w: no-op. Executor thread, or
 * any thread before the struct is shared.
 *
 * @param w    the future, usually a field of the task's state.
 * @param fd   the descriptor (not owned: never closed here).
 * @param what EV_READ, EV_WRITE, or both.
 */
CW_EXTERN void cw_fdwait_init(cw_fdwait *w, evutil_socket_t fd, short what);

/**
 * Wait for readiness: ::CW_PENDING (the task is woken when the fd becomes
 * ready) until the fd is ready, then ::CW_READY once, with
 * cw_fdwait_revents() telling what fired. Polling again after READY starts
 * a new wait on the same event (no allocation).
 *
 * ::CW_READY with cw_fdwait_revents() == 0 means the wait failed: NULL cx,
 * a zeroed or dropped future, an fd or `what` libevent refuses (bad fd,
 * neither EV_READ nor EV_WRITE). When the event cannot be allocated, or
 * libevent runs out of memory adding it, the task is woken at once to
 * retry (the poll never loses its wake-up).
 * NULL w: ::CW_READY.
 */
CW_EXTERN cw_poll cw_fdwait_poll(cw_fdwait *w, cw_cx *cx);

/** What the last completed wait saw: EV_READ and/or EV_WRITE, 0 if it
 *  failed or none completed. 0 for NULL w. */
CW_EXTERN short cw_fdwait_revents(const cw_fdwait *w);

/**
 * Remove the event (if any) from the base and free it, release the waker.
 * Safe on a zeroed, never-polled, or already dropped future, and twice.
 * NULL w: no-op. Executor thread.
 */
CW_EXTERN void cw_fdwait_drop(cw_fdwait *w);

#ifdef __cplusplus
}
#endif
#endif
