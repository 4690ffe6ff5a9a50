/**
 * @file clockworker/config.h
 * @brief Settings an executor is built from: queues, weights, slices,
 *        scheduler knobs and the clock.
 *
 * A config is a plain value: build it, pass it to cw_executor_new() (which
 * copies what it needs), then free it or reuse it for another executor.
 * Config functions are not thread-safe on one config; distinct configs may
 * be used from distinct threads.
 *
 * @code
 * cw_config *cfg = cw_config_new();
 * cw_config_add_queue(cfg, FOREGROUND, 99);
 * cw_config_add_queue(cfg, BACKGROUND, 1);
 * cw_executor *ex;
 * int err = cw_executor_new(base, cfg, &ex);
 * cw_config_free(cfg);
 * @endcode
 */
#ifndef CLOCKWORKER_CONFIG_H
#define CLOCKWORKER_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most queues one executor may have. */
#define CW_MAX_QUEUES 1024
/** Default target period in which every runnable queue runs once: 2 ms. */
#define CW_DEFAULT_SCHED_LATENCY_NS 2000000ull
/** Default shortest derived slice: 100 us. */
#define CW_DEFAULT_MIN_SLICE_NS 100000ull
/** Default longest stretch of task polls before libevent polls I/O: 500 us. */
#define CW_DEFAULT_DRIVER_YIELD_NS 500000ull
/** Default most polls between two returns to the loop: a backstop, as
 *  rounds end by time (driver_yield, latency targets); see
 *  cw_config_set_max_polls_per_yield(). */
#define CW_DEFAULT_MAX_POLLS_PER_YIELD 1024u
/** Default latency target of every queue: 50 us
 *  (cw_config_set_queue_latency()). */
#define CW_DEFAULT_QUEUE_LATENCY_NS 50000ull
/** cw_config_set_queue_latency(cfg, id, CW_LATENCY_NONE): the queue has no
 *  latency target, and being idle it costs the others nothing. */
#define CW_LATENCY_NONE UINT64_MAX

/**
 * A new config with no queue and the default settings.
 *
 * @return the config (free it with cw_config_free()), or NULL when out of
 *         memory.
 */
CW_EXTERN cw_config *cw_config_new(void);

/** Free a config. NULL is a no-op. Executors built from it are unaffected. */
CW_EXTERN void cw_config_free(cw_config *cfg);

/**
 * Add a queue.
 *
 * @param cfg    the config.
 * @param id     the queue's id, chosen by the caller (often an enum); used
 *               with cw_executor_queue() to find the queue.
 * @param weight its share of the CPU against the other runnable queues'
 *               weights: any value from 1 to 2^32 - 1, and the shares are
 *               the weights' at every one of them (the scheduler carries
 *               what a short slice at a large weight charges below its
 *               unit of virtual time, weight / 2^20 ns; a slice of such a
 *               queue may run up to one unit, at most 4.1 us, past its
 *               request).
 * @return 0; -EINVAL if cfg is NULL, weight is 0 or the config already has
 *         ::CW_MAX_QUEUES queues; -EEXIST if id is taken; -ENOMEM. On error
 *         the config is unchanged.
 */
CW_EXTERN int cw_config_add_queue(cw_config *cfg, uint32_t id, uint32_t weight);

/**
 * Give a queue a fixed slice (request) instead of the derived one
 * (max(min_slice, sched_latency / runnable queues)). A shorter slice means
 * an earlier virtual deadline: the queue is served sooner after it wakes,
 * in shorter bursts, for the same share.
 *
 * @param cfg      the config.
 * @param id       the queue's id (cw_config_add_queue()).
 * @param slice_ns 1 ns to 2^40 ns.
 * @return 0; -EINVAL if cfg is NULL or slice_ns is 0 or too large;
 *         -ENOENT if no queue has this id. Calling it again replaces the
 *         slice.
 */
CW_EXTERN int cw_config_set_queue_slice(cw_config *cfg, uint32_t id, uint64_t slice_ns);

/** Target period in which every runnable queue runs once (derived slices
 *  divide it). 0 restores the default (2 ms). NULL cfg: no-op.
 *  Like every duration below, values beyond 2^62 ns (146 years) act as
 *  2^62 ns: never reached. */
CW_EXTERN void cw_config_set_sched_latency(cw_config *cfg, uint64_t ns);

/** Lower bound of a derived slice. 0 restores the default (100 us). NULL
 *  cfg: no-op. */
CW_EXTERN void cw_config_set_min_slice(cw_config *cfg, uint64_t ns);

/** Longest run of polls before the executor returns to libevent so that
 *  I/O is polled (shorter while an idle queue has a latency target:
 *  cw_config_set_queue_latency()): after each poll, the round ends if one more poll as long
 *  as the queue's recent ones (the longest, decaying by 1/8 per poll)
 *  would end past this budget, so a round of long polls does not overshoot
 *  it by a poll; a single poll longer than the budget still runs whole.
 *  0 restores the default (500 us). NULL cfg: no-op. */
CW_EXTERN void cw_config_set_driver_yield(cw_config *cfg, uint64_t ns);

/** Most polls between two returns to the loop. 0 restores the default
 *  (1024). Rounds end by time (cw_config_set_driver_yield(), the latency
 *  targets), so this count only ends rounds of polls shorter than
 *  driver_yield / n, and bounds a round when the clock does not advance
 *  (an injected clock). A return costs the loop's poll for I/O
 *  (epoll_wait: 1.2-3 us on a KVM guest): at tokio's 61 polls of a
 *  self-waking task (~15 ns each) that was most of the round, and a
 *  yield cost 2.5x a self-re-arming event_active callback; at 1024 it
 *  costs about the same (bench/overhead, bench/README). A lower count
 *  polls I/O sooner between very short polls. NULL cfg: no-op. */
CW_EXTERN void cw_config_set_max_polls_per_yield(cw_config *cfg, uint32_t n);

/**
 * Give a queue a latency target: how long a wake-up of the queue that
 * comes through the event loop may wait to be seen while the queue is
 * idle.
 *
 * A wake from I/O (a request on a socket, a task spawned from a libevent
 * callback) reaches the executor only when the loop polls, between two
 * rounds; inside a round only timers and other threads' wakes are seen.
 * So while a queue with a target is idle, every round returns to the loop
 * within the target (counted from the round's start; the shortest target
 * among the idle queues counts, and driver_yield still bounds every
 * round), and the wake is seen within about that plus the poll in
 * progress. When the woken queue then runs is the scheduler's decision:
 * at once (after the poll in progress) if it is eligible with an earlier
 * virtual deadline than the running queue, as a heavier queue usually
 * is; else at its turn.
 *
 * A target set here is in force from the executor's start. Each queue
 * has ::CW_DEFAULT_QUEUE_LATENCY_NS (50 us) unless set, in force from
 * the queue's first task on: a queue that has never had a task (a
 * configured, unused one) costs the others nothing. Which queues are idle
 * is looked at when a slice starts.
 *
 * The cost: each return to the loop is one of its passes (an
 * epoll_wait() with a zero timeout, about a microsecond on a VM), paid by
 * the queues that run while a queue with a target is idle: a few percent
 * of their CPU at 50 us when their polls are short or call
 * cw_should_yield() (or CW_YIELD_MAYBE()) between chunks of work. A
 * longer target costs less and answers later; ::CW_LATENCY_NONE (or any
 * value at or above driver_yield) costs nothing and leaves the queue's
 * wakes to driver_yield. bench/fgbg --fg-latency-us shows the trade.
 *
 * @param cfg the config.
 * @param id  the queue's id (cw_config_add_queue()).
 * @param ns  the target, 1 ns or more; ::CW_LATENCY_NONE for none; 0
 *            restores the default (and its start at the first task).
 * @return 0; -EINVAL if cfg is NULL; -ENOENT if no queue has this id.
 *         Calling it again replaces the target.
 */
CW_EXTERN int cw_config_set_queue_latency(cw_config *cfg, uint32_t id, uint64_t ns);

/**
 * Catch cw_panic(): when on, a panicking task ends with status ::CW_EPANIC,
 * its drop function runs and the executor goes on. When off (the default,
 * as in tokio and the Rust crate), the message goes to stderr and the
 * process aborts. NULL cfg: no-op.
 */
CW_EXTERN void cw_config_set_catch_panics(cw_config *cfg, bool on);

/**
 * Replace the clock (monotonic nanoseconds). Tests inject a clock they
 * advance by hand so that scheduling is deterministic. The function is
 * called on the executor thread only, between polls.
 *
 * @param cfg    the config.
 * @param now_ns the clock, or NULL to restore CLOCK_MONOTONIC.
 * @param arg    passed to now_ns.
 * NULL cfg: no-op.
 */
CW_EXTERN void cw_config_set_clock(cw_config *cfg, uint64_t (*now_ns)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
