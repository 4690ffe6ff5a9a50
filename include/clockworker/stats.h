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

/** Executor-wide counters, filled by cw_executor_stats(). A struct tag,
 *  not a typedef: the function has the same name. */
struct cw_executor_stats {
    uint64_t polls;           /**< task polls */
    uint64_t tasks_spawned;   /**< successful cw_spawn() calls */
    uint64_t tasks_completed; /**< tasks that returned ::CW_READY */
    uint64_t tasks_cancelled; /**< tasks aborted or cancelled at free */
    uint64_t tasks_panicked;  /**< tasks that panicked (catch on) */
    uint64_t tasks_live;      /**< spawned and not yet ended */
    uint64_t cpu_ns;          /**< time spent inside poll functions, by the
                                   executor's clock (wall time while
                                   polling: includes time the thread was
                                   descheduled mid-poll) */
    uint64_t slices;          /**< slices run (one per scheduling pick) */
    uint64_t preemptions;     /**< slices ended early by a woken queue */
    uint64_t rounds;          /**< scheduling rounds (returns to libevent) */
    uint64_t wakes_local;     /**< wake calls on the executor thread on tasks
                                   not yet ended (a wake of a task already
                                   queued counts too) */
    uint64_t wakes_remote;    /**< wakes from other threads taken from the
                                   inbox (repeated wakes of a task already
                                   in the inbox count once) */
    cw_hist poll_ns;          /**< duration of each poll */
};

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
    uint64_t slices;          /**< slices it was picked for */
    uint64_t preemptions;     /**< of its slices, ended by a woken queue */
    uint64_t vruntime;        /**< its virtual runtime (scheduler units) */
    int64_t lag;              /**< V - vruntime now (saved lag while idle) */
};

/**
 * Fill *out with the executor's counters.
 * @return 0; -EINVAL if ex or out is NULL. Executor thread.
 */
CW_EXTERN int cw_executor_stats(const cw_executor *ex, struct cw_executor_stats *out);

/**
 * Fill *out with a queue's counters.
 * @return 0; -EINVAL if q or out is NULL. Executor thread.
 */
CW_EXTERN int cw_queue_stats(const cw_queue *q, struct cw_queue_stats *out);

#ifdef __cplusplus
}
#endif
#endif
