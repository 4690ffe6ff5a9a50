/**
 * @file clockworker/uring.h
 * @brief The executor on an io_uring it owns (libclockworker-uring,
 *        pkg-config clockworker-uring; needs liburing).
 *
 * Needs no liburing header itself (struct io_uring is only named).
 *
 * How the executor lives in the ring: the executor owns the ring and
 * cw_uring_run() drives it, as event_base_dispatch() or uv_run() drive
 * theirs. Each turn submits what is queued (one io_uring_enter() for the
 * whole batch), reaps the completions, fires the timer when due, then
 * runs a scheduled round. fd waits are one-shot IORING_OP_POLL_ADD
 * requests, the remote-wake fd is a poll request while watched, and the
 * timer is the timeout of the blocking wait (no request). The turn blocks
 * only when no round is scheduled.
 *
 * Between two rounds, I/O is polled by reading the completion ring in
 * memory: the kernel posts a completion as the fd becomes ready, so a
 * turn that has nothing to submit makes no system call at all (libevent
 * pays an epoll_wait() with a zero timeout there).
 */
#ifndef CLOCKWORKER_URING_H
#define CLOCKWORKER_URING_H

#include "common.h"

struct io_uring;

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Create an executor with an io_uring of its own.
 *
 * @param cfg     the settings; copied, so cfg may be freed right after.
 * @param entries the ring's submission queue size (a power of two,
 *                rounded up by the kernel; at most 32768); 0: 256. A
 *                full queue is submitted and reused, so this bounds a
 *                batch, not the number of fd waits.
 * @param out     receives the executor, to free with cw_executor_free()
 *                (which closes the ring).
 * @return 0; -EINVAL if cfg or out is NULL or cfg has no queue (*out is
 *         then set to NULL when out is not NULL); -ENOMEM; or the
 *         negative errno of io_uring_queue_init(): -ENOSYS (a kernel
 *         without io_uring), -EPERM (io_uring disabled by
 *         kernel.io_uring_disabled, seccomp or a container), -EMFILE ...
 *         or of creating the notification fd.
 */
CW_EXTERN int cw_executor_new_uring(const cw_config *cfg, unsigned entries, cw_executor **out);

/** How much cw_uring_run() runs. */
typedef enum cw_uring_run_mode {
    /** Turns until nothing is left to wait for: no task alive, no
     *  cw_sleep pending, no fd watched (as event_base_dispatch() or
     *  uv_run(UV_RUN_DEFAULT)). */
    CW_URING_RUN_DEFAULT = 0,
    /** One turn, blocking until something was handled when no round is
     *  scheduled (EVLOOP_ONCE, UV_RUN_ONCE). */
    CW_URING_RUN_ONCE = 1,
    /** One turn that does not block: what is ready now, the timer if due
     *  and a scheduled round (EVLOOP_NONBLOCK, UV_RUN_NOWAIT). */
    CW_URING_RUN_NOWAIT = 2
} cw_uring_run_mode;

/**
 * Run the executor's ring on the executor thread.
 *
 * @return 1 when there was nothing to wait for, and so nothing ran
 *         (always, on success, for ::CW_URING_RUN_DEFAULT: it returns
 *         once nothing is left), as event_base_loop() says; 0 after a
 *         ::CW_URING_RUN_ONCE or ::CW_URING_RUN_NOWAIT turn;
 *         -EINVAL if ex is NULL, does not run on io_uring or mode is
 *         unknown; -EBUSY if called from inside a task or callback of ex
 *         (the ring is being run already); a negative errno of
 *         io_uring_enter() other than -EINTR, -ETIME, -EAGAIN and
 *         -EBUSY, which end a turn without an error.
 */
CW_EXTERN int cw_uring_run(cw_executor *ex, cw_uring_run_mode mode);

/**
 * The executor's ring; NULL if ex is NULL or runs on another loop.
 *
 * For reading its features or registering resources. The ring is the
 * executor's: every completion of it belongs to the executor, so do not
 * submit requests of your own or reap completions on it (the executor
 * takes the user_data of every completion for a request of its own).
 * Needs a kernel with IORING_FEAT_EXT_ARG (5.11) for the timed wait
 * without a timeout request; liburing falls back to one before that.
 */
CW_EXTERN struct io_uring *cw_executor_uring(const cw_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
