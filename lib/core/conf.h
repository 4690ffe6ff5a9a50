/*
 * conf.h - a config as cw_config_*() build it (config.c) and the executor reads
 * it once. Not installed.
 */
#ifndef CW_CORE_CONF_H
#define CW_CORE_CONF_H

#include <stdio.h>

#include "util.h"

/* ---- config ------------------------------------------------------------- */
struct cw__qdef {
    uint32_t id;
    uint32_t weight;
    uint64_t slice_ns; /* 0: derived */
    uint64_t latency_ns; /* latency target, CW_LATENCY_NONE: none */
    bool latency_set;    /* set by the user: in force from the start */
};

struct cw_config {
    struct cw__qdef *queues; /* in the order added: the queue's index */
    uint32_t nqueues, cap;
    uint64_t sched_latency_ns;
    uint64_t min_slice_ns;
    uint64_t driver_yield_ns;
    uint32_t max_polls_per_yield;
    bool catch_panics;
    bool no_histograms;
    uint64_t (*now_ns)(void *);
    void *clock_arg;
    /* The default clock's counter, for tests: 0 as cw__tsc_usable() says,
     * 1 the TSC (where CW__HAVE_TSC), -1 clock_gettime() only. */
    signed char default_clock_tsc;
    bool has_hooks;
    cw_hooks hooks;
    void *hooks_arg;
    uint64_t stall_ns;       /* stall threshold; 0: no stall detector */
    bool stall_watchdog;     /* and its watchdog thread */
    FILE *stall_log;         /* where stall reports go (stderr); NULL: none */
    bool task_accounting;    /* per-task accounting for the task dump */
};

struct cw__qdef *cw__config_find(const cw_config *cfg, uint32_t id);

#endif
