/**
 * @file clockworker/io.h
 * @brief cw_fdwait: wait until a file descriptor is readable or writable,
 *        as a leaf future a task embeds in its state.
 *
 * Each waiting cw_fdwait owns one watch of its fd in the executor's loop
 * (a libevent event, a libuv poll handle's share, an io_uring poll
 * request, an entry of the embed host's list), created at its first
 * PENDING poll and reused for every later wait while the future lives;
 * cw_fdwait_drop() frees it. Two tasks waiting on the same fd are each
 * woken. Readiness is level-triggered: the usual loop is "try the
 * syscall; on EAGAIN, await readiness; try again".
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
 * // spawn with the future initialised: cw_fdwait_init(&r.rd, fd, CW_FD_READ)
 * @endcode
 *
 * IMPORTANT: the task's drop function must call cw_fdwait_drop() for every
 * cw_fdwait in its state, so that a task aborted, panicking or cancelled
 * while it waits removes its watch before the state goes away: nothing
 * fires later into freed memory. cw_executor_free() also removes the
 * watches of futures a drop function forgot (and detaches them: a later
 * cw_fdwait_drop() is a no-op).
 *
 * Drop before close: call cw_fdwait_drop() before close(fd). A watch
 * left on a closed descriptor number can fire for the next file that
 * reuses the number (accept() returns the lowest free one).
 *
 * Thread: executor thread only. The fd is not closed by any function here.
 */
#ifndef CLOCKWORKER_IO_H
#define CLOCKWORKER_IO_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Interest and readiness: readable. Equal to libevent's EV_READ, so
 *  code written with EV_READ keeps working. */
#define CW_FD_READ 0x02
/** Interest and readiness: writable. Equal to libevent's EV_WRITE. */
#define CW_FD_WRITE 0x04

/**
 * A wait for fd readiness. Public layout so it can be embedded in a task's
 * state; every field is private (use the functions).
 */
typedef struct cw_fdwait {
    int cw__fd;                  /**< private */
    short cw__what;              /**< private: CW_FD_READ and/or CW_FD_WRITE */
    short cw__revents;           /**< private: what fired last */
    int cw__state;               /**< private */
    void *cw__rec;               /**< private: the loop's record, made at
                                      the first wait */
    cw_waker *cw__waker;         /**< private: the waiting task's clone */
    cw_executor *cw__ex;         /**< private: owner, NULL when detached */
    struct cw_fdwait *cw__prev;  /**< private: the executor's list */
    struct cw_fdwait *cw__next;  /**< private */
} cw_fdwait;

/**
 * Prepare a wait. Nothing is made in the loop until the first poll.
 *
 * A zeroed cw_fdwait is a valid "dropped" one (poll on it is READY with
 * cw_fdwait_revents() 0). Re-initialising a future that has a watch
 * requires cw_fdwait_drop() first. NULL w: no-op. Executor thread, or
 * any thread before the struct is shared.
 *
 * @param w    the future, usually a field of the task's state.
 * @param fd   the descriptor (not owned: never closed here).
 * @param what ::CW_FD_READ, ::CW_FD_WRITE, or both (other bits are
 *             ignored).
 */
CW_EXTERN void cw_fdwait_init(cw_fdwait *w, int fd, short what);

/**
 * Wait for readiness: ::CW_PENDING (the task is woken when the fd becomes
 * ready) until the fd is ready, then ::CW_READY once, with
 * cw_fdwait_revents() telling what fired. Polling again after READY starts
 * a new wait on the same watch (no allocation on libevent).
 *
 * ::CW_READY with cw_fdwait_revents() == 0 means the wait failed: NULL cx,
 * a zeroed or dropped future, an fd or `what` the loop refuses (bad fd,
 * neither CW_FD_READ nor CW_FD_WRITE). When the watch cannot be
 * allocated, or the loop runs out of memory adding it, the task is woken at once to
 * retry (the poll never loses its wake-up).
 * NULL w: ::CW_READY.
 */
CW_EXTERN cw_poll cw_fdwait_poll(cw_fdwait *w, cw_cx *cx);

/** What the last completed wait saw: CW_FD_READ and/or CW_FD_WRITE, 0 if it
 *  failed or none completed. 0 for NULL w. */
CW_EXTERN short cw_fdwait_revents(const cw_fdwait *w);

/**
 * Remove the watch (if any) from the loop and free it, release the waker.
 * Safe on a zeroed, never-polled, or already dropped future, and twice.
 * NULL w: no-op. Executor thread.
 */
CW_EXTERN void cw_fdwait_drop(cw_fdwait *w);

#ifdef __cplusplus
}
#endif
#endif
