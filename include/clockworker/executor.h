/**
 * @file clockworker/executor.h
 * @brief The executor: queues, the EEVDF scheduler and the run loop, bound
 *        to one libevent event_base and one thread.
 *
 * The executor is an event of the base. When a task becomes runnable and no
 * scheduling round is pending, it schedules one; a round polls tasks for at
 * most driver_yield ns (or max_polls_per_yield polls; the shortest latency
 * target of an idle queue, cw_config_set_queue_latency())
 * and returns to libevent, which polls I/O before the next round. So any loop that runs the
 * base runs the tasks: event_base_dispatch(), event_base_loop(), or
 * cw_executor_run_until().
 *
 * The executor keeps its internal events in the base only while they have
 * work: the cross-thread wake-up fd while any task is alive, the timer
 * while any cw_sleep is pending, the round while tasks are runnable. So
 * event_base_dispatch() returns once every task has ended and every sleep
 * has fired or been dropped (and nothing else is pending), as it would for
 * plain libevent events.
 *
 * Thread: "the executor thread" is the thread that called
 * cw_executor_new(). Everything here is executor-thread only unless said.
 * Wakers may be used from any thread (waker.h).
 */
#ifndef CLOCKWORKER_EXECUTOR_H
#define CLOCKWORKER_EXECUTOR_H

#include "common.h"

struct event_base;

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Create an executor on a libevent base.
 *
 * @param base libevent base the executor runs in; it must outlive the
 *             executor. It needs no evthread setup: remote wakes use the
 *             executor's own notification fd.
 * @param cfg  the settings; copied, so cfg may be freed right after.
 * @param out  receives the executor, to free with cw_executor_free().
 * @return 0; -EINVAL if base, cfg or out is NULL or cfg has no queue
 *         (*out is then set to NULL when out is not NULL); -ENOMEM; or a
 *         negative errno from creating the notification fd.
 */
CW_EXTERN int cw_executor_new(struct event_base *base, const cw_config *cfg, cw_executor **out);

/**
 * Free an executor: cancels every live task (each drop function runs
 * exactly once, here, in no promised order), removes its events from the base and frees its
 * memory. Join handles the user still holds stay valid (status
 * -ECANCELED for the tasks cancelled here) until cw_join_free(); wakers
 * still held elsewhere stay valid and become no-ops. A spawn attempted
 * from a drop function during the free fails with -ESHUTDOWN.
 * Must not be called from inside a task's poll. NULL is a no-op.
 */
CW_EXTERN void cw_executor_free(cw_executor *ex);

/**
 * The queue with this id.
 * @return the queue (owned by the executor, valid until cw_executor_free()),
 *         or NULL if ex is NULL or no queue has this id. O(log n).
 */
CW_EXTERN cw_queue *cw_executor_queue(cw_executor *ex, uint32_t id);

/**
 * Run the base (event_base_loop(base, EVLOOP_ONCE), repeatedly) until the
 * task behind join has ended, and return its status.
 *
 * @return 0 (completed; the state is in cw_join_state()), -ECANCELED,
 *         ::CW_EPANIC; -EINVAL if ex or join is NULL or join belongs to
 *         another executor; -EBUSY if called from inside a task of ex
 *         (that would run the executor re-entrantly); -ESHUTDOWN if the
 *         executor is being freed; -EIO if event_base_loop() fails
 *         (for instance when called from a callback of the same base:
 *         libevent refuses re-entrant loops).
 *         Does not free the join handle.
 *
 * Like any event loop waiting for an event that never fires, it does not
 * return while the task waits for a wake that never comes: the executor
 * keeps its remote-wake fd watched while a task is alive, since another
 * thread may still wake it.
 */
CW_EXTERN int cw_executor_run_until(cw_executor *ex, cw_join *join);

/** The event_base the executor runs in, or NULL if ex is NULL. */
CW_EXTERN struct event_base *cw_executor_base(const cw_executor *ex);

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
 * @return 0; -EINVAL if q is NULL or weight is 0. Executor thread.
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
