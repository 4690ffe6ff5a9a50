/**
 * @file clockworker/executor.h
 * @brief The executor: queues, the EEVDF scheduler and the run loop, bound
 *        to one event loop and one thread.
 *
 * An executor runs inside an event loop it does not own. Pick the loop by
 * the constructor: cw_executor_new() on a libevent event_base
 * (libevent.h, the default), cw_executor_new_embed() in a loop of your
 * own (embed.h), cw_executor_new_uv() on a libuv loop (uv.h,
 * libclockworker-uv), cw_executor_new_uring() on an io_uring the executor
 * owns (uring.h, libclockworker-uring). Everything else is the same on
 * every loop.
 *
 * When a task becomes runnable and no scheduling round is pending, the
 * executor asks the loop for one; a round polls tasks for at most
 * driver_yield ns (or max_polls_per_yield polls; the shortest latency
 * target of an idle queue, cw_config_set_queue_latency()) and returns to
 * the loop, which polls I/O before the next round. So whatever runs the
 * loop runs the tasks: event_base_dispatch(), uv_run(), the embed host's
 * own loop, or cw_executor_run_until() on any of them.
 *
 * The executor keeps its internal events in the loop only while they have
 * work: the cross-thread wake-up fd while any task is alive, the timer
 * while any cw_sleep is pending, the round while tasks are runnable. So
 * event_base_dispatch() (or uv_run()) returns once every task has ended
 * and every sleep has fired or been dropped (and nothing else is
 * pending), as it would for plain events of that loop.
 *
 * Thread: "the executor thread" is the thread that created the executor.
 * Everything here is executor-thread only unless said. Wakers may be used
 * from any thread (waker.h). The rule is checked in every build (one
 * thread-local compare per call, none on the poll path): from another
 * thread a function that returns int answers -EPERM and changes nothing;
 * cw_executor_free() writes one line to stderr and does nothing.
 */
#ifndef CLOCKWORKER_EXECUTOR_H
#define CLOCKWORKER_EXECUTOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The event loops an executor can run on (cw_executor_loop()). */
typedef enum cw_loop_kind {
    CW_LOOP_LIBEVENT = 1, /**< a libevent event_base (libevent.h) */
    CW_LOOP_EMBED = 2,    /**< a host loop through the embed API (embed.h) */
    CW_LOOP_LIBUV = 3,    /**< a libuv uv_loop_t (uv.h) */
    CW_LOOP_URING = 4,    /**< an io_uring the executor owns (uring.h) */
    CW_LOOP_OTHER = 5     /**< a driver of the user's own (driver.h) */
} cw_loop_kind;

/** The loop ex runs on; 0 if ex is NULL. */
CW_EXTERN cw_loop_kind cw_executor_loop(const cw_executor *ex);

/** A loop kind's name: "libevent", "embed", "libuv", "uring", "other";
 *  "unknown" for any other value. Never NULL. */
CW_EXTERN const char *cw_loop_name(cw_loop_kind kind);

/**
 * Free an executor: cancels every live task (each drop function runs
 * exactly once, here, in no promised order), removes its events from the loop and frees its
 * memory. Join handles the user still holds stay valid (status
 * -ECANCELED for the tasks cancelled here) until cw_join_free(); wakers
 * still held elsewhere stay valid and become no-ops. A spawn attempted
 * from a drop function during the free fails with -ESHUTDOWN.
 * NULL is a no-op.
 *
 * Refused (it returns having freed nothing, and writes one line naming
 * the call to stderr: it has no return value to say so) when called from
 * another thread than the executor's, from inside a round (a task's poll,
 * a hook, or a drop function run there), or from a drop function during
 * this free. The caller then frees the executor later, from the executor
 * thread outside the loop's callbacks.
 */
CW_EXTERN void cw_executor_free(cw_executor *ex);

/**
 * The queue with this id.
 * @return the queue (owned by the executor, valid until cw_executor_free()),
 *         or NULL if ex is NULL or no queue has this id. O(log n).
 */
CW_EXTERN cw_queue *cw_executor_queue(cw_executor *ex, uint32_t id);

/**
 * Run the loop, one turn at a time (event_base_loop(base, EVLOOP_ONCE) on
 * libevent, uv_run(loop, UV_RUN_ONCE) on libuv, a wait for completions on
 * io_uring, the host's run_once hook under embed) until the task behind
 * join has ended, and return its status.
 *
 * @return 0 (completed; the state is in cw_join_state()), -ECANCELED,
 *         ::CW_EPANIC; -EINVAL if ex or join is NULL or join belongs to
 *         another executor; -EPERM if the caller is not on the executor
 *         thread (nothing runs); -EBUSY if called from inside a task of ex
 *         (that would run the executor re-entrantly); -ESHUTDOWN if the
 *         executor is being freed; -EIO if a turn of the loop fails
 *         (for instance when called from a callback of the same libevent
 *         base: libevent refuses re-entrant loops); -EAGAIN if the loop
 *         had nothing left to wait for while the task lives (defensive:
 *         the remote-wake fd stays watched while a task is alive);
 *         -ENOTSUP under embed without a run_once hook.
 *         Does not free the join handle.
 *
 * Like any event loop waiting for an event that never fires, it does not
 * return while the task waits for a wake that never comes: the executor
 * keeps its remote-wake fd watched while a task is alive, since another
 * thread may still wake it.
 */
CW_EXTERN int cw_executor_run_until(cw_executor *ex, cw_join *join);

/** The executor's clock (the injected one in tests), in ns. 0 if ex is
 *  NULL. Executor thread. */
CW_EXTERN uint64_t cw_executor_now(const cw_executor *ex);

/**
 * Change a queue's weight. Takes effect at the next pick: a queue that is
 * running now is charged for its slice at its old weight first. The
 * queue's lag is scaled so that w * lag stays constant, which keeps the
 * weighted average V where it was (no queue gains or loses position).
 * Every weight from 1 to 2^32 - 1 is accepted and exact, as in
 * cw_config_add_queue().
 *
 * @return 0; -ENOENT if q is NULL (no such queue: what
 *         cw_executor_queue() gives for an unknown id); -EINVAL if weight
 *         is 0; -EPERM if the caller
 *         is not on the executor thread (the weight is unchanged).
 *         Executor thread.
 */
CW_EXTERN int cw_queue_set_weight(cw_queue *q, uint32_t weight);

/** The queue's id (0 if q is NULL). */
CW_EXTERN uint32_t cw_queue_id(const cw_queue *q);

/** The queue's current weight (0 if q is NULL). */
CW_EXTERN uint32_t cw_queue_weight(const cw_queue *q);

/** The executor that owns the queue (NULL if q is NULL). */
CW_EXTERN cw_executor *cw_queue_executor(const cw_queue *q);

#ifdef __cplusplus
}
#endif
#endif
