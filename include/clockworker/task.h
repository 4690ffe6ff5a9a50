/**
 * @file clockworker/task.h
 * @brief Tasks: a poll function over a state struct the task owns.
 *
 * A task is a poll function and a state struct. cw_spawn() copies the state
 * into the task's own allocation (one allocation: header and state), then
 * the executor calls poll(state, cx) whenever the task is runnable. poll
 * returns ::CW_READY when the task is done (its output is whatever it left
 * in the state) or ::CW_PENDING when it must wait; before returning PENDING
 * a task must have arranged to be woken: cloned its waker
 * (cw_waker_clone(cw_cx_waker(cx))) into something that will wake it, or
 * polled a leaf future that did so. A task that returns PENDING with no
 * wake arranged is never polled again (it stays alive until aborted or the
 * executor is freed).
 *
 * Debug build. With ./configure --enable-debug (the checked build), a
 * poll that returns ::CW_PENDING with no wake arranged is reported on
 * stderr, one line naming the poll function, the task (its join handle's
 * value) and the queue:
 *
 *     clockworker: poll my_poll (task 0x..., queue 1) returned CW_PENDING
 *     with no wake arranged (no waker clone held, not woken during the
 *     poll): it will not be polled again
 *
 * "No wake arranged" is exact: no clone of the task's waker is held
 * anywhere, on any thread (every leaf future of the library holds one
 * while it waits), the task did not wake itself during the poll, and no
 * wake from another thread is on its way. Since a task is polled again
 * only through a wake, such a task hangs for certain; it is reported,
 * not aborted, because it may be parked on purpose until cw_join_abort()
 * or cw_executor_free() ends it (a task that means to can keep a clone of
 * its waker, which silences the report). The name comes from dladdr():
 * a function the dynamic linker does not know (static, or in a program
 * not linked with -rdynamic) is given as its address, with the object
 * and the offset for addr2line. A waker borrowed from cw_cx_waker() and
 * kept past the poll without a clone (a misuse) does not count.
 * In other builds none of this is compiled in (the poll loop is the same
 * code).
 *
 * Copy or in place. cw_spawn() copies a state the caller built, so that
 * state must not point into itself: a leaf future initialised before the
 * spawn that keeps a pointer to another field of the state (the output
 * pointer of cw_chan_recv_init(), cw_oneshot_recv_init() and
 * cw_remote_chan_recv_init(), the value pointer of cw_chan_send_init()
 * when the value is a field of the state) would keep pointing at the
 * caller's copy, often a dead stack frame. Such a state is built in
 * place with cw_spawn_with(), whose init callback runs on the task's own
 * block; or the future is initialised by the poll itself, at its start.
 * The other leaf futures keep no pointer into the state and may be
 * initialised before cw_spawn(): cw_sleep_init(), cw_fdwait_init(),
 * cw_yield_init(), cw_notify_wait_init(), cw_sem_acquire_init(), the
 * cw_bev_*_init() of bev.h.
 *
 * The drop function, if any, runs exactly once per task, when the state is
 * released: when the task is cancelled or panics; when it completes if no
 * join handle is held; else when the join handle is freed (the state is the
 * task's result until then).
 *
 * Threads: executor thread only. cw_spawn() may be called from a task's
 * poll or from outside one; the functions that take a ::cw_cx only from
 * inside the poll that received it (a cx is valid for that call only).
 */
#ifndef CLOCKWORKER_TASK_H
#define CLOCKWORKER_TASK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a poll function returns. */
typedef enum cw_poll {
    CW_PENDING = 0, /**< not done; a wake-up has been arranged */
    CW_READY = 1    /**< done; the output is in the state */
} cw_poll;

/**
 * A task's poll function.
 * @param state the task's state (its copy, aligned for any type; valid for
 *              the task's life).
 * @param cx    the poll's context: valid only during this call.
 */
typedef cw_poll (*cw_poll_fn)(void *state, cw_cx *cx);

/** Releases what the state owns (not the state's memory itself). */
typedef void (*cw_drop_fn)(void *state);

/**
 * Spawn a task at the tail of a queue.
 *
 * @param q     the queue (cw_executor_queue(); its NULL for an unknown id
 *              gives -ENOENT).
 * @param poll  the poll function; required.
 * @param state the initial state, copied (size bytes); may be NULL only
 *              when size is 0 (the poll then gets a non-NULL pointer to
 *              zero bytes).
 * @param size  bytes of state.
 * @param drop  optional; see the file comment for when it runs.
 * @param join  if not NULL, receives a join handle the caller must free
 *              with cw_join_free(); if NULL the task is detached.
 * @return 0; -ENOENT if q is NULL (no such queue: what
 *         cw_executor_queue() returns for an unknown id); -EINVAL if poll
 *         is NULL, or state is NULL with size > 0,
 *         or size > 2^40; -EPERM if the caller is not on the executor
 *         thread; -ESHUTDOWN if the executor is being freed; -ENOMEM. On error
 *         nothing was spawned and *join is untouched.
 *
 * Executor thread only; may be called from inside a task's poll (the new
 * task runs in a later turn of its queue, never inside this call).
 * Allocation: none in steady state. The task's block (a 48-byte header,
 * 64 in the checked build (--enable-debug),
 * the state, and 8 bytes each for a drop function, a join handle and,
 * with histograms on, a timestamp) is carved from a slab of blocks of its
 * 16-byte size class; states over ~1 KiB get an allocation of their own.
 */
CW_EXTERN int cw_spawn(cw_queue *q, cw_poll_fn poll, const void *state, size_t size,
                       cw_drop_fn drop, cw_join **join);

/**
 * Fills a task's state in place (cw_spawn_with()): state is the task's
 * own, zeroed, size bytes, at the address the poll function will get
 * for the task's whole life, so a future may point into it.
 * @return 0, or a negative errno: the spawn then fails with it (a
 *         positive value gives -EINVAL), nothing is spawned and the drop
 *         function does not run (init undoes what it did itself).
 */
typedef int (*cw_init_fn)(void *state, void *arg);

/**
 * Spawn a task whose state is built in place: the block is allocated,
 * its size bytes zeroed, init(state, arg) fills them, then the task is
 * queued as by cw_spawn(). For states that point into themselves (a
 * receive future whose output is a field of the state): see the file
 * comment. init runs on the calling thread, inside this call, before
 * the task can run; it may spawn other tasks.
 *
 * @code
 * typedef struct consumer { cw_pt pt; cw_chan_recv rx; int item; } consumer;
 *
 * static int consumer_init(void *state, void *ch)
 * {
 *     consumer *c = state;
 *     cw_chan_recv_init(&c->rx, ch, &c->item); // &c->item: the task's own
 *     return 0;
 * }
 * ...
 * cw_spawn_with(q, consumer_poll, sizeof(consumer), consumer_init, ch,
 *               consumer_drop, &join);
 * @endcode
 *
 * @return as cw_spawn() (-ENOENT, -EINVAL also for a NULL init,
 *         -ESHUTDOWN, -ENOMEM), or init's error. On error nothing was
 *         spawned and *join is untouched.
 */
CW_EXTERN int cw_spawn_with(cw_queue *q, cw_poll_fn poll, size_t size, cw_init_fn init,
                            void *arg, cw_drop_fn drop, cw_join **join);

/** A function cw_queue_run() calls once, with its argument. */
typedef void (*cw_run_fn)(void *arg);

/**
 * Run fn(arg) once on q, under the scheduler: a task whose one poll calls
 * fn(arg) and completes, for a chunk of work that needs no state struct
 * (a step of a background job, a deferred clean-up). It runs after the
 * tasks queued on q before it, when EEVDF picks q, and q is charged the
 * time it takes; a chunk that wants more runs may queue itself again
 * from fn. fn runs on the executor thread and not inside this call; it
 * has no cx, so keep each chunk short (a long loop that must check
 * cw_should_yield() is a task's job).
 *
 * @code
 * static void compact_step(void *arg)
 * {
 *     struct db *db = arg;
 *     if (db_compact_some(db, 1000))           // more to do
 *         cw_queue_run(db->background, compact_step, db);
 * }
 * ...
 * cw_queue_run(db->background, compact_step, db);
 * @endcode
 *
 * @param q   the queue (NULL gives -ENOENT, as for cw_spawn()).
 * @param fn  the function; required.
 * @param arg its argument, passed as is (not owned).
 * @return 0; the errors of cw_spawn(): -ENOENT (q NULL), -EINVAL (fn
 *         NULL), -EPERM (not on the executor thread), -ESHUTDOWN (the
 *         executor is being freed), -ENOMEM. On error fn never runs.
 *         If the executor is freed before fn ran, fn never runs.
 *
 * Executor thread; may be called from a poll or a callback. Cost: one
 * cw_spawn() of a 16-byte state, without join or drop.
 */
CW_EXTERN int cw_queue_run(cw_queue *q, cw_run_fn fn, void *arg);

/**
 * Whether the running task should return soon: its queue's slice is spent
 * while another queue waits, one more chunk of work as long as the one
 * since the task last asked (or since its poll began) would end past the
 * round's budget (driver_yield; the shortest latency target of an idle
 * queue, so that the loop polls the I/O that would wake that queue:
 * cw_config_set_queue_latency()), or a more deserving queue woke
 * (a preemption was requested). Sleeps that came due during the poll are
 * woken here (they would otherwise wait for the poll to end), so a task
 * of a heavier queue whose cw_sleep ended counts as such a wake. A
 * CPU-bound task calls it between chunks of work and, when true, wakes
 * itself (cw_waker_wake_by_ref(cw_cx_waker(cx))) and returns
 * ::CW_PENDING. The executor ends the round after a poll by the same
 * test (with a poll as long as the queue's recent ones as the unit), so
 * a task told to go on is not cut off. Reads the clock once. NULL cx:
 * false.
 */
CW_EXTERN bool cw_should_yield(cw_cx *cx);

/**
 * Return to libevent after this poll: the round ends (the slice ends with
 * reason ::CW_SLICE_DRIVER_YIELD, and cw_should_yield() says true for the
 * rest of the poll). For a task that has just queued output in libevent
 * (an evbuffer, a bufferevent, an evhttp reply: cw_http_reply() calls it)
 * or started I/O whose answer it awaits, so that libevent flushes and polls
 * now rather than after the rest of the round (up to driver_yield of other
 * tasks' polls). The task is not woken: return ::CW_PENDING with a wake
 * arranged, or ::CW_READY, as usual. Costs nothing on the poll path. NULL
 * cx, or outside a poll: no-op.
 */
CW_EXTERN void cw_cx_yield_to_loop(cw_cx *cx);

/**
 * End the running task with a panic: formats the message and unwinds (with
 * longjmp) to the poll boundary. With catch_panics on the task ends with
 * status ::CW_EPANIC, the message is kept for cw_join_panic_message() and
 * the drop function runs; otherwise the message is printed to stderr and
 * the process aborts. Never returns.
 *
 * Unwinding skips the rest of the poll function and whatever it called:
 * free nothing in between that the drop function does not know about.
 * NULL cx, or a cx whose poll has returned: prints and aborts. A NULL fmt
 * gives the message "(no message)".
 */
CW_NORETURN CW_EXTERN void cw_panic(cw_cx *cx, const char *fmt, ...) CW_PRINTF(2, 3);

/** The executor running this poll (NULL if cx is NULL). */
CW_EXTERN cw_executor *cw_cx_executor(cw_cx *cx);

/** The queue of the task being polled (NULL if cx is NULL). Spawning onto
 *  it from the poll puts the new task behind this one. */
CW_EXTERN cw_queue *cw_cx_queue(cw_cx *cx);

#ifdef __cplusplus
}
#endif
#endif
