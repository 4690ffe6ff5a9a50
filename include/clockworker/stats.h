/**
 * @file clockworker/stats.h
 * @brief Counters of an executor and of each queue.
 *
 * Every field is maintained. Counts are totals since the executor was
 * created; times are nanoseconds of the executor's clock. Later versions
 * add fields at the end of these structs (and bump the library version).
 */
#ifndef CLOCKWORKER_STATS_H
#define CLOCKWORKER_STATS_H

#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Number of buckets of a ::cw_hist. */
#define CW_HIST_BUCKETS 64

/**
 * A log2 histogram of nanosecond values: bucket 0 counts zeros, bucket b
 * (b >= 1) counts values in [2^(b-1), 2^b). Recording is a few
 * instructions.
 */
typedef struct cw_hist {
    uint64_t buckets[CW_HIST_BUCKETS]; /**< counts per bucket */
    uint64_t count;                    /**< values recorded */
    uint64_t sum;                      /**< their sum (ns, wraps) */
    uint64_t max;                      /**< the largest (ns) */
} cw_hist;

/**
 * The q-quantile (0 <= q <= 1; below 0 or NaN counts as 0, above 1 as 1)
 * of a histogram, interpolated linearly within the bucket that holds it,
 * and never above the recorded max.
 * @return the value in ns; 0 if h is NULL or empty. Any thread (h is not
 *         changed).
 */
CW_EXTERN uint64_t cw_hist_quantile(const cw_hist *h, double q);

/**
 * Add src's counts into dst (buckets, count, sum; max is the larger).
 * Merging the histograms of several executors, or of successive intervals,
 * gives the histogram of all their values.
 * @return 0; -EINVAL if dst or src is NULL. Any thread, as long as
 *         nobody writes dst meanwhile.
 */
CW_EXTERN int cw_hist_merge(cw_hist *dst, const cw_hist *src);

/*
 * How the executor measures time: it reads its clock (cw_config_set_clock())
 * once at the start of a round, once after each poll (the end of one poll is
 * the start of the next) and once after each scheduling decision. Every
 * time below comes from those readings: no statistic takes a clock reading
 * of its own, except a wake from outside a round (a libevent callback, say),
 * which reads the clock once to stamp the task's wake time when histograms
 * are on.
 *
 * Histograms are off by default: turn them on with
 * cw_config_set_histograms(cfg, true). Off, every cw_hist below stays
 * empty; counters and ns totals are kept either way. (On, they add two
 * histogram updates and a time stamp to every poll: about a fifth of the
 * cost of a trivial poll, nothing next to a poll that does real work.)
 */

/** Executor-wide counters, filled by cw_executor_stats(). A struct tag,
 *  not a typedef: the function has the same name. */
struct cw_executor_stats {
    uint64_t polls;           /**< task polls */
    uint64_t tasks_spawned;   /**< tasks spawned: successful cw_spawn()
                                   calls and remote spawns taken in (a
                                   cw_spawner's own task is not counted:
                                   sync.h) */
    uint64_t tasks_completed; /**< tasks that returned ::CW_READY */
    uint64_t tasks_cancelled; /**< tasks aborted or cancelled at free */
    uint64_t tasks_panicked;  /**< tasks that panicked (catch on) */
    uint64_t tasks_live;      /**< spawned and not yet ended */
    uint64_t cpu_ns;          /**< time spent inside poll functions, by the
                                   executor's clock (wall time while
                                   polling: includes time the thread was
                                   descheduled mid-poll) */
    uint64_t slices;          /**< slices run (one per scheduling decision
                                   that found a runnable queue) */
    uint64_t preemptions;     /**< slices ended early because a woken queue
                                   asked for the CPU (see preempt_requests) */
    uint64_t rounds;          /**< scheduling rounds run; each ends with a
                                   return to libevent */
    uint64_t wakes_local;     /**< wake calls on the executor thread on tasks
                                   not yet ended (a wake of a task already
                                   queued counts too) */
    uint64_t wakes_remote;    /**< wakes from other threads taken from the
                                   inbox (repeated wakes of a task already
                                   in the inbox count once) */
    cw_hist poll_ns;          /**< duration of each poll (ns) */

    /* Added by version 0.2. */
    uint64_t polls_overrun;   /**< polls that started inside their slice and
                                   ended after its end: a task that did not
                                   yield in time */
    uint64_t decisions;       /**< scheduling decisions (EEVDF picks), the
                                   last of a round finding nothing included */
    cw_hist decision_ns;      /**< time of each decision that started a
                                   slice (so its count is slices): from the
                                   end of the previous slice (or the round's
                                   start) to the start of the new slice,
                                   which takes in the pick and, at a round's
                                   start, firing due sleeps and taking
                                   remote wakes (ns) */
    uint64_t preempt_requests;/**< times a wake asked the running slice to
                                   end early (a queue placed with an earlier
                                   eligible deadline); a slice ends at most
                                   once however often it is asked */
    uint64_t driver_yields;   /**< rounds that returned to libevent with
                                   work left because the round's budget
                                   (driver_yield ns, a latency target
                                   during a slice it applies to, or
                                   max_polls_per_yield polls) was spent;
                                   the other rounds ran out of work */
    cw_hist round_ns;         /**< duration of each round: how long libevent
                                   (I/O, timers, other events) waited for
                                   the executor; its max is the longest
                                   stall (ns) */
    cw_hist return_interval_ns; /**< time between two consecutive returns to
                                   libevent, whether or not work was left
                                   (ns; first return not counted) */
    uint64_t busy_ns;         /**< time inside rounds (polls plus the
                                   executor's own work): the sum of round_ns */
    uint64_t libevent_ns;     /**< time between a round that left work and
                                   the next round: libevent polling I/O and
                                   running other callbacks while tasks were
                                   runnable */
    uint64_t idle_ns;         /**< time between a round that left no
                                   runnable task and the next round */
    uint64_t latency_rounds;  /**< rounds in which a slice ran with a
                                   budget shortened by an idle queue's
                                   latency target
                                   (cw_config_set_queue_latency()),
                                   however the round then ended */
    uint64_t stalls;          /**< polls that ran longer than the stall
                                   threshold (cw_config_set_stall_threshold();
                                   0 while the detector is off) */
};

/** Why a slice ended: the reason given to cw_hooks::slice_end and counted
 *  per queue in ::cw_queue_stats. */
typedef enum cw_slice_end {
    CW_SLICE_EMPTY = 0,       /**< the queue had no runnable task left */
    CW_SLICE_SPENT = 1,       /**< its slice (request) was used up while
                                   another queue was runnable */
    CW_SLICE_PREEMPTED = 2,   /**< a woken queue with an earlier eligible
                                   deadline asked for the CPU */
    CW_SLICE_DRIVER_YIELD = 3,/**< the round's time budget (driver_yield,
                                   or a latency target) was spent, or the task
                                   called cw_cx_yield_to_loop(): back to
                                   libevent */
    CW_SLICE_MAX_POLLS = 4    /**< the round's poll budget
                                   (max_polls_per_yield) was spent */
} cw_slice_end;

/** Number of ::cw_slice_end reasons. */
#define CW_SLICE_END_REASONS 5

/** Per-queue counters, filled by cw_queue_stats() (a struct tag, as
 *  above). */
struct cw_queue_stats {
    uint32_t id;              /**< the queue's id */
    uint32_t weight;          /**< its current weight */
    uint64_t runnable;        /**< tasks waiting in its FIFO now */
    uint64_t tasks_spawned;   /**< tasks spawned on it */
    uint64_t tasks_completed; /**< of which returned ::CW_READY */
    uint64_t tasks_cancelled; /**< of which were cancelled */
    uint64_t tasks_panicked;  /**< of which panicked */
    uint64_t polls;           /**< polls of its tasks */
    uint64_t cpu_ns;          /**< time charged to it: the sum of its polls'
                                   durations by the executor's clock */
    uint64_t slices;          /**< slices it was picked for (slices started) */
    uint64_t preemptions;     /**< of its slices, ended by a woken queue
                                   (= slices_ended[CW_SLICE_PREEMPTED]) */
    uint64_t vruntime;        /**< its virtual runtime (scheduler units:
                                   ns x 2^20 / weight, wrapping) */
    int64_t lag;              /**< V - vruntime now, in the same units
                                   (saved lag while idle); >= 0: eligible */

    /* Added by version 0.2. */
    uint64_t slices_ended[CW_SLICE_END_REASONS]; /**< its slices by why they
                                   ended, indexed by ::cw_slice_end; the
                                   sum is slices, less one while a slice of
                                   it runs */
    cw_hist queue_delay_ns;   /**< per poll: time from the task becoming
                                   runnable (spawned or woken) to the start
                                   of that poll (ns). Inside a round, the
                                   time a task becomes runnable is the
                                   executor's latest clock reading: the
                                   start of the poll in progress for a wake
                                   or spawn made by a task, the end of its
                                   poll for a task that woke itself (a
                                   yield), the round's start for sleeps due
                                   then and for remote wakes taken then, the
                                   end of the poll before for remote wakes
                                   taken between polls; outside a round (a
                                   libevent callback, a sleep fired by the
                                   executor's timer event, code before the
                                   loop runs) a fresh reading */
    cw_hist service_delay_ns; /**< per slice: time from the queue becoming
                                   runnable (its first task queued while it
                                   had none) to the start of its first slice
                                   after that (ns) — how long EEVDF made a
                                   woken queue wait */
    uint64_t stalls;          /**< polls of its tasks that ran longer than
                                   the stall threshold */
};

/**
 * Fill *out with the executor's counters.
 * @return 0; -EINVAL if ex or out is NULL; -EPERM if the caller is not
 *         on the executor thread (*out untouched). Executor thread.
 */
CW_EXTERN int cw_executor_stats(const cw_executor *ex, struct cw_executor_stats *out);

/**
 * Fill *out with a queue's counters.
 * @return 0; -ENOENT if q is NULL (no such queue); -EINVAL if out is
 *         NULL; -EPERM if the caller is not on the executor thread (*out
 *         untouched). Executor thread.
 */
CW_EXTERN int cw_queue_stats(const cw_queue *q, struct cw_queue_stats *out);

/**
 * Write a readable report of the executor's counters and one table per
 * queue (counters, and p50/p90/p99/max of its histograms) to f: for logs.
 * The format is for people and may change between versions; parse the
 * structs instead.
 * @return 0; -EINVAL if ex or f is NULL; -EPERM if the caller is not on
 *         the executor thread (nothing written); -EIO if writing failed
 *         (errno from the stream). Executor thread.
 */
CW_EXTERN int cw_executor_dump_stats(const cw_executor *ex, FILE *f);

/**
 * Keep the histograms or not (off by default). Off, every ::cw_hist in
 * the stats stays empty and the executor skips their updates and the wake
 * time stamps; counters and ns totals are kept either way. NULL cfg:
 * no-op. Config functions are not thread-safe on one config.
 */
CW_EXTERN void cw_config_set_histograms(cw_config *cfg, bool on);

/**
 * Tracing hooks: optional callbacks at the executor's events, for tracing
 * and custom metrics. Any member may be NULL. Each is called on the
 * executor thread, synchronously, with the arg given to
 * cw_config_set_hooks(); a task is named by its state pointer (the one its
 * poll function gets: unique among live tasks, reused after the task's
 * block is freed). A hook must not free the executor; it may spawn, wake
 * and abort.
 *
 * Order for a task: spawn, then per poll: poll_start, poll_end (then
 * stall, for a poll past the stall threshold); wake at
 * any time in between, inside a poll too (a task waking itself reports
 * wake between its poll_start and poll_end); complete exactly once (after the last poll_end, or
 * without any poll when cancelled). Every poll happens inside a slice:
 * slice_start(q), the polls of q's tasks, slice_end(q, reason).
 *
 * Cost when unset: one predictable branch per event.
 */
typedef struct cw_hooks {
    /** A task was spawned on q (cw_spawn(); the task is queued). */
    void (*spawn)(void *arg, cw_queue *q, void *state);
    /** A poll of the task is about to start. */
    void (*poll_start)(void *arg, cw_queue *q, void *state);
    /** The poll ended after ns (executor clock); result is ::CW_PENDING,
     *  ::CW_READY, or ::CW_EPANIC when it panicked (catch_panics on). */
    void (*poll_end)(void *arg, cw_queue *q, void *state, uint64_t ns, int result);
    /** A wake was taken for a live task: remote is true for a wake from
     *  another thread (reported when the executor takes it from its inbox,
     *  on the executor thread). Counted like wakes_local/wakes_remote. */
    void (*wake)(void *arg, cw_queue *q, void *state, bool remote);
    /** The task ended with status 0, -ECANCELED or ::CW_EPANIC (as
     *  cw_join_status() will say). Its state is still readable. */
    void (*complete)(void *arg, cw_queue *q, void *state, int status);
    /** q's slice starts (the scheduler picked it). */
    void (*slice_start)(void *arg, cw_queue *q);
    /** q's slice ended after ns (executor clock), for reason. */
    void (*slice_end)(void *arg, cw_queue *q, uint64_t ns, cw_slice_end reason);
    /** A poll of the task ran ns (executor clock), longer than the stall
     *  threshold (cw_config_set_stall_threshold()); called right after its
     *  poll_end. stack: when the watchdog (cw_config_set_stall_watchdog())
     *  caught the poll while it ran, the executor thread's stack then, as
     *  its report shows it: return addresses as backtrace(3) gives them,
     *  innermost first, from the kernel's signal trampoline on (pass them
     *  to backtrace_symbols(3) or dladdr(3)), depth entries; NULL and 0
     *  otherwise. The array lives for the call only. */
    void (*stall)(void *arg, cw_queue *q, void *state, uint64_t ns, void *const *stack,
                  int depth);
} cw_hooks;

/**
 * Set the hooks of the executors built from cfg (the struct is copied;
 * arg is passed to every hook). NULL hooks removes them.
 * @return 0; -EINVAL if cfg is NULL.
 */
CW_EXTERN int cw_config_set_hooks(cw_config *cfg, const cw_hooks *hooks, void *arg);

/** Shortest stall threshold the watchdog accepts: 1 ms. */
#define CW_STALL_WATCHDOG_MIN_NS 1000000ull

/**
 * The stall detector: report polls that run longer than ns.
 *
 * A poll that does not return blocks every task of the executor, and
 * libevent with them: a blocking call, a loop that forgot
 * cw_should_yield(), a lock another thread holds. With a threshold set,
 * every poll that runs longer is reported once it returns: counted in
 * ::cw_executor_stats and ::cw_queue_stats (stalls), passed to the stall
 * hook (::cw_hooks), and written as one line to the stall log (stderr
 * unless cw_config_set_stall_log() says otherwise):
 *
 * @verbatim
   clockworker: stall: queue ID, task STATE, poll NAME: ran MS ms (threshold MS ms)
   @endverbatim
 *
 * STATE is the task's state pointer (as the hooks name tasks), NAME the
 * poll function: its symbol when dladdr(3) finds an exported one; else
 * OBJECT+0xOFFSET, which `addr2line -e OBJECT OFFSET` turns into a file
 * and line; else its address. Times are milliseconds with three
 * decimals. The duration is the one the stats measure, by the executor's
 * clock: an injected clock (cw_config_set_clock()) drives the detector
 * too.
 *
 * Cost: off (the default), nothing: the lean poll loop that the executor
 * runs without hooks, histograms or catch_panics is unchanged, to the
 * instruction. On, a call and a compare per poll, and the lean loop is
 * off (as with hooks): a poll of a task that only yields takes 213
 * instructions instead of 179 (bench/overhead --only yield, its "stall
 * detector on" row, counted with callgrind).
 *
 * @param cfg the config.
 * @param ns  the threshold; 0 turns the detector off (the default).
 *            Values beyond 2^62 ns act as 2^62 ns.
 * @return 0; -EINVAL if cfg is NULL, or if the watchdog is on and ns is
 *         below ::CW_STALL_WATCHDOG_MIN_NS (0 included: turn the watchdog
 *         off first). On error the config is unchanged.
 */
CW_EXTERN int cw_config_set_stall_threshold(cw_config *cfg, uint64_t ns);

/**
 * The stall watchdog: catch a stalled poll while it still runs, and
 * report where the executor thread is stuck.
 *
 * Each executor built from cfg gets a thread that looks at the poll in
 * progress every threshold/4. When one has run past the threshold, it
 * sends the real-time signal SIGRTMAX - 1 to the executor thread, whose
 * handler (the library's) takes the stack with backtrace(3), and writes
 * to the stall log while the poll still runs, so a poll that never
 * returns is reported too:
 *
 * @verbatim
   clockworker: stall: queue ID, task STATE, poll NAME: running for MS ms (threshold MS ms), stack:
     #0 LINE OF backtrace_symbols(3)
     ...
   @endverbatim
 *
 * The first frames are the signal's (the handler itself is left out: #0
 * is the kernel's return trampoline), then the code the poll is stuck
 * in. The time is a lower bound: how long the watchdog has seen the poll
 * run, by CLOCK_MONOTONIC whatever the executor's clock. The stack is
 * also given to the stall hook after the poll returns, and that poll's
 * line (see cw_config_set_stall_threshold()) follows as usual.
 *
 * The signal: its handler is installed at the first executor with a
 * watchdog, where the default disposition is in place, and never removed.
 * A system call the poll is blocked in sees the signal: read(2) and the
 * like restart (SA_RESTART), but poll(2), nanosleep(2) and others return
 * EINTR, as with any signal. A thread that blocks the signal gets no
 * stack (the log says so after 100 ms).
 *
 * Cost: a call around each poll, with two atomic stores (one sequentially
 * consistent) and a load: that yielding poll takes 273 instructions
 * instead of the detector's 213 (bench/overhead's "stall watchdog on"
 * row); the watchdog wakes every threshold/4 while polls run, and
 * sleeps while the executor is idle.
 *
 * @param cfg the config.
 * @param on  true: every executor built from cfg starts a watchdog, and
 *            cw_executor_new() fails with -EBUSY when the program has a
 *            handler of its own for SIGRTMAX - 1, and with -ENOMEM when
 *            the thread cannot be started. Off by default.
 * @return 0; -EINVAL if cfg is NULL, or on is true and the threshold is
 *         below ::CW_STALL_WATCHDOG_MIN_NS (set the threshold first);
 *         -ENOTSUP if this build has no backtrace(3). On error the config
 *         is unchanged.
 */
CW_EXTERN int cw_config_set_stall_watchdog(cw_config *cfg, bool on);

/**
 * Where stall reports are written: stderr by default; NULL writes none
 * (the counters and the hook still see every stall). The executor thread
 * writes the report after a poll, the watchdog thread the one it takes
 * while a poll runs (stdio locks the stream; each report is flushed). f
 * must stay open while executors built from cfg live.
 * @return 0; -EINVAL if cfg is NULL.
 */
CW_EXTERN int cw_config_set_stall_log(cw_config *cfg, FILE *f);

/**
 * Keep per-task accounting for cw_executor_dump_tasks(): when each task
 * was spawned, its polls, their total time and when its last poll ended
 * (executor clock). Off by default: on, each task block grows by 32
 * bytes (48 to 80 for a task with no state), and the executor leaves its
 * lean poll loop (as with hooks) for one that updates the block after
 * each poll: a poll of a task that only yields takes 239 instructions
 * instead of 179 (bench/overhead's "task accounting on" rows, counted
 * with callgrind). The dump works without it, with "-" in those
 * columns. NULL cfg: no-op.
 */
CW_EXTERN void cw_config_set_task_accounting(cw_config *cfg, bool on);

/**
 * Write one line per live task (spawned, not ended) to f: for a person
 * looking at a daemon that hangs or crawls (examples/kvd writes it on
 * SIGUSR1), and parseable. Executor thread; a task may call it from its
 * poll. It takes O(t log k) for t live tasks and k waiting sleeps, fd
 * waits and joins, and allocates one table of k entries. The format
 * (fields separated by spaces, padded; no field contains a space):
 *
 * @verbatim
   clockworker tasks: N live, accounting on|off
     task               queue state              age_us    polls  cpu_us  since_us  poll
     0xSTATE            QUEUE STATE              AGE_US    POLLS  CPU_US  SINCE_US  NAME [NO-WAKE]
     ...
   @endverbatim
 *
 * The first two lines are the title and the column heads; then a line a
 * task:
 * - task: the task's state pointer in hex (as the hooks name tasks).
 * - queue: its queue's id.
 * - state: running: its poll is in progress (the caller's own task, or
 *   the task the caller runs in); runnable: in its queue's FIFO; woken:
 *   woken from another thread, not yet taken in; cancelling: aborted,
 *   ends at the next safe point; waiting:KINDS: not runnable, KINDS
 *   saying what holds its waker: sleep (a cw_sleep), fd (a cw_fdwait),
 *   join (it awaits another task's join handle), several joined by '+'
 *   (in that order), or other (a clone held elsewhere: a sync.h or
 *   bev.h wait, the program's own code); waiting:none when nothing holds
 *   its waker, so nothing will ever poll it again (a poll returned
 *   ::CW_PENDING without arranging a wake): that line ends with the
 *   flag NO-WAKE.
 * - age_us: time since it was spawned; polls: its polls so far; cpu_us:
 *   their total time; since_us: time since its last poll ended ("-"
 *   before its first poll ends, and while it runs). Times are
 *   microseconds with three decimals, by the executor's clock. All four
 *   are "-" with task accounting off (cw_config_set_task_accounting()).
 * - poll: its poll function, named as in the stall report (see
 *   cw_config_set_stall_threshold()).
 *
 * Tasks come in no particular order; the library's own tasks (a
 * cw_spawner's, an HTTP route's) are listed too, so the count in the
 * first line may exceed the statistics' tasks_live, which leaves a
 * cw_spawner's out.
 * @return 0; -EINVAL if ex or f is NULL; -EPERM if the caller is not on
 *         the executor thread; -ENOMEM (nothing written); -EIO if
 *         writing failed (errno from the stream).
 */
CW_EXTERN int cw_executor_dump_tasks(const cw_executor *ex, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
