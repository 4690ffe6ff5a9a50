/*
 * model.h - a model-based random test of the executor.
 *
 * The driver (model.c) reads a stream of operations (spawn a task, run one
 * turn of the event loop, advance the fake clock, fire the timer, wake a
 * parked task from this thread or from a helper thread, abort, check or
 * free a join handle, change a queue's weight, free the executor with
 * tasks pending and build a new one) and applies each to a real executor
 * (fake clock, catch_panics on) and to a small reference model of what the
 * documented API promises. After every step (every poll, every operation)
 * it compares the two; on the first mismatch it prints what broke, at
 * which operation, and calls abort().
 *
 * The stream is either bytes (the fuzzer's input: model_run()) or a seeded
 * pseudo-random generator (model_run_seed()); both go through the same
 * decoder, so a seed is just an endless byte stream.
 *
 * The driver uses no Check (the fuzzer links it without the framework).
 */
#ifndef CW_TEST_MODEL_H
#define CW_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct model_opts {
    uint64_t max_ops;   /* stop after this many operations (0: no limit;
                           model_run() also stops when the bytes end) */
    int verbose;        /* print a summary of the run to stderr */
    int count_allocs;   /* route the library's allocations through a
                           counting allocator (cw_set_allocator) and
                           check that the run leaves none behind */
} model_opts;

/* What a run did, for the caller to print or to assert coverage on. */
typedef struct model_result {
    uint64_t ops;            /* operations applied */
    uint64_t polls;          /* task polls checked */
    uint64_t spawned;        /* tasks spawned (driver and from polls) */
    uint64_t executors;      /* executors built (freed with tasks pending) */
    uint64_t turns;          /* turns of the event loop */
    uint64_t rounds;         /* scheduling rounds seen */
    uint64_t slices;         /* slices seen */
    uint64_t preemptions;    /* slices ended by a woken queue */
    uint64_t wakes_remote;   /* wakes that went through the inbox */
    uint64_t sleeps_fired;   /* cw_sleep deadlines reached */
    uint64_t panics;         /* tasks that panicked */
    uint64_t aborts;         /* tasks aborted (driver or self) */
    uint64_t windows;        /* fairness windows checked (>= 2 queues) */
    uint64_t long_windows;   /* of which longer than the bound (so the
                                check could have failed) */
    uint64_t max_window_ns;  /* longest window (service ns) */
    double max_dev_ratio;    /* largest |deviation| / bound seen */
} model_result;

/* Interpret n bytes of operations. Returns 0 when every check held;
 * a failed check aborts the process. res may be NULL. */
int model_run(const uint8_t *ops, size_t n, const model_opts *o, model_result *res);

/* The same over the byte stream of a seeded generator, nops operations. */
int model_run_seed(uint64_t seed, uint64_t nops, const model_opts *o, model_result *res);

#endif
