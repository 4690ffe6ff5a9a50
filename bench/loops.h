/* loops.h - the event loops bench/fgbg and bench/overhead run on (--loop):
 * make a loop and an executor on it, run it, and the loop's own raw
 * primitives that the executor is measured against.
 *
 * Loops:
 *   libevent  an event_base (the default; the benches' libevent figures
 *             keep their own code, this gives them the base)
 *   libuv     a uv_loop_t (libclockworker-uv; only when configure found
 *             libuv: BENCH_HAVE_LIBUV)
 *   embed     the executor hosted by a hand-written ppoll() loop of this
 *             file (clockworker/embed.h); the raw baseline is the same
 *             loop running plain callbacks from its own deferred list
 *   uring     the executor on an io_uring it owns (libclockworker-uring,
 *             only when configure found liburing: BENCH_HAVE_URING);
 *             the raw baseline is a plain io_uring loop of this file on
 *             a ring of its own (the executor's ring takes every
 *             completion: nothing of the bench may go on it)
 *
 * The raw primitives (struct bench_cb, bench_fd_watch) are what a program
 * written directly for the loop does: libevent an event (event_active,
 * evtimer_add), libuv a uv_idle_t (run at the next iteration) and a
 * uv_timer_t (millisecond resolution: libuv's own), embed the host's
 * deferred list and its timer list, uring a request on the bench's ring
 * whose completion runs the callback (IORING_OP_NOP to run now,
 * IORING_OP_TIMEOUT at an absolute deadline to sleep, a one-shot
 * IORING_OP_POLL_ADD re-armed for an fd). Once uring has its executor
 * (bench_loop_executor()), the callbacks and fd watches made after it
 * are tasks on the queue of bench_loop_task_queue() instead (a cw_sleep,
 * a cw_fdwait, then the callback), and bench_loop_run() is
 * cw_uring_run(CW_URING_RUN_ONCE) turns until bench_loop_break().
 * bench_raw_*() are overhead's re-arm
 * baselines, written straight against each loop (no indirection in their
 * hot path) for every loop but libevent, whose baselines stay in
 * bench/overhead.c.
 */
#ifndef CW_BENCH_LOOPS_H
#define CW_BENCH_LOOPS_H

#include <stdbool.h>
#include <stdint.h>

#include <clockworker.h>

enum bench_loop_kind { BENCH_LIBEVENT, BENCH_LIBUV, BENCH_EMBED, BENCH_URING, BENCH_NLOOPS };

/* The kind named name, or -1. */
int bench_loop_find(const char *name);
const char *bench_loop_name(int kind);
/* NULL when the benches can run on kind in this build, else why not (a
 * sentence for an error message). */
const char *bench_loop_unavailable(int kind);
/* What runs the loop, for the output's header: "libuv 1.48.0",
 * "a ppoll() host loop". */
const char *bench_loop_describe(int kind);

struct bench_loop;

/* A new loop (precise: libevent's EVENT_BASE_FLAG_PRECISE_TIMER; the other
 * loops have one resolution), or NULL. */
struct bench_loop *bench_loop_new(int kind, bool precise);
/* After cw_executor_free() of its executor and bench_cb_free() of every
 * callback: frees the loop (libuv: runs it once so that closed handles
 * finish closing). NULL is ignored. */
void bench_loop_free(struct bench_loop *l);
int bench_loop_kind(const struct bench_loop *l);
/* The executor on l (one per loop): cw_executor_new(), _new_uv(),
 * _new_embed(), _new_uring(). A cw error; uring: -EBUSY once a raw
 * callback or fd watch was armed (make the executor first). */
int bench_loop_executor(struct bench_loop *l, const cw_config *cfg, cw_executor **out);
/* Runs the loop until nothing is left in it or bench_loop_break(): 0, or
 * < 0 on an error. */
int bench_loop_run(struct bench_loop *l);
void bench_loop_break(struct bench_loop *l);
/* uring on its executor: the queue that runs the loop's callbacks and fd
 * watches as tasks (bench_fd_watch() fails without one); elsewhere a
 * no-op. */
void bench_loop_task_queue(struct bench_loop *l, cw_queue *q);
/* libevent: the base (to use its own API), else NULL. */
struct event_base *bench_loop_base(const struct bench_loop *l);
/* libevent: event_base_priority_init(base, n); others: 0 (no priorities). */
int bench_loop_priorities(struct bench_loop *l, int n);
/* libevent: event_base_update_cache_time(); libuv: uv_update_time(). */
void bench_loop_refresh(struct bench_loop *l);

/* ---- raw callbacks ---------------------------------------------------------- */

typedef void (*bench_fn)(void *arg);
struct bench_cb;

/* A callback record of l (prio: libevent's priority, -1 for the default;
 * ignored elsewhere), or NULL. */
struct bench_cb *bench_cb_new(struct bench_loop *l, bench_fn fn, void *arg, int prio);
/* Run fn once at the loop's next pass (event_active, uv_idle_start, the
 * host's deferred list). 0 or < 0. */
int bench_cb_now(struct bench_cb *c);
/* Run fn once after ns (libevent refreshes its cached time first; libuv
 * rounds up to ms and updates its time first). 0 or < 0. */
int bench_cb_after(struct bench_cb *c, uint64_t ns);
/* Cancels and frees; NULL is ignored. */
void bench_cb_free(struct bench_cb *c);

/* fn(arg) at every pass where fd is readable, until bench_fd_unwatch(). */
struct bench_fdw;
struct bench_fdw *bench_fd_watch(struct bench_loop *l, int fd, bench_fn fn, void *arg, int prio);
void bench_fd_unwatch(struct bench_fdw *w);

/* ---- overhead's baselines (not libevent: see above) -------------------------- */

/* One callback re-arming itself until it has run n times: ns per callback. */
double bench_raw_rearm(struct bench_loop *l, uint32_t n);
/* tasks callbacks, each re-arming itself k times (k + 1 runs): ns per run. */
double bench_raw_yield(struct bench_loop *l, uint32_t tasks, uint32_t k);
/* Two callbacks arming each other, hops times: ns per hop. */
double bench_raw_pingpong(struct bench_loop *l, uint32_t hops);
/* The baseline column's name in the table: "uv_idle", "deferred", "nop". */
const char *bench_raw_rearm_name(int kind);

#endif
