/**
 * @file clockworker/uv.h
 * @brief The executor on a libuv loop (libclockworker-uv,
 *        clockworker-uv.pc).
 *
 * A separate library, as libevent_pthreads is: link it with
 * `pkg-config --cflags --libs clockworker-uv`, which brings libclockworker
 * and libuv. <clockworker.h> does not include this header: include it on
 * purpose, beside <uv.h> (this header needs no libuv header: it names
 * libuv's loop by its struct tag, as libevent.h names struct event_base).
 *
 * How the executor lives in the loop: the user runs the loop (uv_run())
 * and the executor's handles run the tasks. A round runs in a uv_check_t,
 * right after libuv's poll phase, so the I/O callbacks that poll found
 * run between two rounds; while a round is pending a no-op uv_idle_t
 * keeps that poll from blocking. The executor's timer is a uv_timer_t
 * (millisecond resolution: a cw_sleep is rounded up to the next
 * millisecond), the remote-wake fd a uv_poll_t, and the cw_fdwait futures
 * of one fd share that fd's uv_poll_t (libuv allows one per fd and loop).
 * Each handle is active only while it has work, so uv_run(loop,
 * UV_RUN_DEFAULT) returns once every task has ended and every sleep has
 * fired or been dropped (and nothing of the user's is active), and
 * cw_executor_run_until() turns the loop with uv_run(loop, UV_RUN_ONCE).
 *
 * Closing a libuv handle completes in the loop (uv_close()): after
 * cw_executor_free() the loop must run once more before uv_loop_close(),
 * for instance uv_run(loop, UV_RUN_DEFAULT) (which then returns at once
 * when nothing else is active); otherwise uv_loop_close() returns
 * UV_EBUSY and the executor's handles are leaked. That is libuv's own
 * rule for any handle. The executor's handles are its own: do not close
 * them (a uv_walk() that closes every handle of the loop must come after
 * cw_executor_free()).
 *
 * libuv specifics a user sees: uv_poll_init() makes an fd non-blocking
 * (a cw_fdwait's fd becomes O_NONBLOCK at its first wait); an fd that the
 * user also watches through libuv in the same loop (a uv_poll_t of its
 * own, a uv_tcp_t that is reading) cannot be waited on with cw_fdwait
 * (the wait fails: ready with cw_fdwait_revents() 0), since libuv allows
 * one watcher per fd and loop.
 */
#ifndef CLOCKWORKER_UV_H
#define CLOCKWORKER_UV_H

#include "common.h"

/* libuv's uv_loop_t, by its struct tag: this header needs no libuv header
 * (uv.h itself wants POSIX types that a strict -std=c11 hides), and a
 * repeated typedef of uv_loop_t would be an error before C11. */
struct uv_loop_s;

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Create an executor on a libuv loop.
 *
 * The executor adds its handles to loop (inactive until they have work)
 * and runs whenever the loop runs: uv_run() in any mode, or
 * cw_executor_run_until(). Remote wakes use the executor's own
 * notification fd (no uv_async_t).
 *
 * @param loop the libuv loop (a uv_loop_t *: struct uv_loop_s is its
 *             tag) the executor runs in (uv_default_loop() or
 *             one of uv_loop_init()); it must outlive the executor, and
 *             run once after cw_executor_free() so that the executor's
 *             handles finish closing (see the file's description).
 * @param cfg  the settings; copied, so cfg may be freed right after.
 * @param out  receives the executor, to free with cw_executor_free().
 * @return 0; -EINVAL if loop, cfg or out is NULL or cfg has no queue
 *         (*out is then set to NULL when out is not NULL); -ENOMEM; or a
 *         negative errno from creating the notification fd or from
 *         libuv watching it.
 */
CW_EXTERN int cw_executor_new_uv(struct uv_loop_s *loop, const cw_config *cfg,
                                 cw_executor **out);

/** The libuv loop the executor runs in; NULL if ex is NULL or runs on
 *  another loop. */
CW_EXTERN struct uv_loop_s *cw_executor_uv_loop(const cw_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
