/**
 * @file clockworker/join.h
 * @brief Join handles: the spawner's view of a task.
 *
 * cw_spawn() gives a join handle when asked. With it the owner can await
 * the task from another task (cw_join_poll()), read its status and result
 * (the finished state struct, in place: no copy), abort it, or let it go
 * (cw_join_free(), which detaches a running task).
 *
 * Status values: 0 (completed), -ECANCELED (aborted, or cancelled by
 * cw_executor_free()), ::CW_EPANIC (panicked with catch_panics on), -EAGAIN
 * (still running).
 *
 * Threads: executor thread only (the thread of the task's executor),
 * also after the executor is freed. A handle stays valid after its
 * executor is freed, until cw_join_free(). cw_join_abort() and
 * cw_join_free() check the thread in every build: from another thread
 * each writes one line naming the call to stderr and does nothing (the
 * task runs on; the handle stays valid, to free on the right thread).
 * A build configured with --enable-debug (the checked build) also
 * catches a handle freed twice, or used after cw_join_free(): every
 * function here (and cw_executor_run_until()) then writes one line
 * naming the call and the handle and aborts, e.g.
 * "clockworker: cw_join_status(0x...): join handle already freed (...)";
 * when the task's memory has been given to a new task since, "stale join
 * handle" (a handle in that build carries a generation; see waker.h for
 * its limits: 65,536 reuses, a state over ~1 KiB, x86-64 and arm64).
 */
#ifndef CLOCKWORKER_JOIN_H
#define CLOCKWORKER_JOIN_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Await the task from inside another task's poll: ::CW_READY once it has
 * ended (any status), else ::CW_PENDING with the polling task's waker
 * registered (replacing any waker an earlier poll registered); the polling
 * task is woken when the task ends. A NULL j or cx gives ::CW_READY (and
 * cw_join_status(NULL) says -EINVAL), so a waiting task never hangs on a
 * bad handle.
 */
CW_EXTERN cw_poll cw_join_poll(cw_join *j, cw_cx *cx);

/** The task's status (see the file comment); -EINVAL if j is NULL. */
CW_EXTERN int cw_join_status(const cw_join *j);

/**
 * The finished state struct (the task's output), owned by the task and
 * valid until cw_join_free(); NULL unless the status is 0.
 */
CW_EXTERN void *cw_join_state(cw_join *j);

/** The panic message (valid until cw_join_free()), or NULL unless the
 *  status is ::CW_EPANIC. */
CW_EXTERN const char *cw_join_panic_message(const cw_join *j);

/**
 * Cancel the task: it is not polled again, its drop function runs, and the
 * status becomes -ECANCELED; a task awaiting it is woken. When the drop
 * runs (mark-then-reap): outside any task's poll, now, inside this call;
 * from inside a poll of the same executor (the task's own or another
 * task's), right after that poll returns, never under it -- until then
 * the status stays -EAGAIN, and freeing the handle meanwhile is safe. A
 * task that waits for a wake that never comes is released then, not at
 * some later wake. Aborting a task that has already ended (or aborting
 * twice) does nothing. NULL is a no-op. From another thread than the
 * executor's: refused, with one line on stderr (see the file comment).
 */
CW_EXTERN void cw_join_abort(cw_join *j);

/**
 * Release the handle. A running task is detached: it runs on, and its
 * state is dropped when it ends. A completed task's state is dropped now.
 * NULL is a no-op. Each handle is freed once. From another thread than
 * the executor's: refused, with one line on stderr; the handle stays
 * valid (see the file comment).
 */
CW_EXTERN void cw_join_free(cw_join *j);

#ifdef __cplusplus
}
#endif
#endif
