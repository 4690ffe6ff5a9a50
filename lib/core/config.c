/* config.c - the settings an executor is built from. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

cw_config *cw_config_new(void)
{
    cw_config *cfg = cw__calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cw__alloc_hold();
    cfg->sched_latency_ns = CW_DEFAULT_SCHED_LATENCY_NS;
    cfg->min_slice_ns = CW_DEFAULT_MIN_SLICE_NS;
    cfg->driver_yield_ns = CW_DEFAULT_DRIVER_YIELD_NS;
    cfg->max_polls_per_yield = CW_DEFAULT_MAX_POLLS_PER_YIELD;
    cfg->no_histograms = true;
    cfg->stall_log = stderr;
    return cfg;
}

void cw_config_free(cw_config *cfg)
{
    if (!cfg)
        return;
    cw__free(cfg->queues);
    cw__free(cfg);
    cw__alloc_unhold();
}

struct cw__qdef *cw__config_find(const cw_config *cfg, uint32_t id)
{
    for (uint32_t i = 0; i < cfg->nqueues; i++)
        if (cfg->queues[i].id == id)
            return &cfg->queues[i];
    return NULL;
}

int cw_config_add_queue(cw_config *cfg, uint32_t id, uint32_t weight)
{
    if (!cfg || weight == 0 || cfg->nqueues >= CW_MAX_QUEUES)
        return -EINVAL;
    if (cw__config_find(cfg, id))
        return -EEXIST;
    if (cfg->nqueues == cfg->cap) {
        uint32_t cap = cfg->cap ? cfg->cap * 2 : 4;
        struct cw__qdef *q = cw__realloc(cfg->queues, cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        cfg->queues = q;
        cfg->cap = cap;
    }
    cfg->queues[cfg->nqueues++] =
        (struct cw__qdef){.id = id, .weight = weight, .latency_ns = CW_DEFAULT_QUEUE_LATENCY_NS};
    return 0;
}

int cw_config_set_queue_slice(cw_config *cfg, uint32_t id, uint64_t slice_ns)
{
    if (!cfg || slice_ns == 0 || slice_ns > CW__MAX_SLICE_NS)
        return -EINVAL;
    struct cw__qdef *q = cw__config_find(cfg, id);
    if (!q)
        return -ENOENT;
    q->slice_ns = slice_ns;
    return 0;
}

void cw_config_set_sched_latency(cw_config *cfg, uint64_t ns)
{
    if (cfg)
        cfg->sched_latency_ns = ns ? ns : CW_DEFAULT_SCHED_LATENCY_NS;
}

void cw_config_set_min_slice(cw_config *cfg, uint64_t ns)
{
    if (cfg)
        cfg->min_slice_ns = ns ? ns : CW_DEFAULT_MIN_SLICE_NS;
}

void cw_config_set_driver_yield(cw_config *cfg, uint64_t ns)
{
    if (cfg)
        cfg->driver_yield_ns = ns ? ns : CW_DEFAULT_DRIVER_YIELD_NS;
}

void cw_config_set_max_polls_per_yield(cw_config *cfg, uint32_t n)
{
    if (cfg)
        cfg->max_polls_per_yield = n ? n : CW_DEFAULT_MAX_POLLS_PER_YIELD;
}

int cw_config_set_queue_latency(cw_config *cfg, uint32_t id, uint64_t ns)
{
    if (!cfg)
        return -EINVAL;
    struct cw__qdef *q = cw__config_find(cfg, id);
    if (!q)
        return -ENOENT;
    q->latency_ns = ns ? ns : CW_DEFAULT_QUEUE_LATENCY_NS;
    q->latency_set = ns != 0;
    return 0;
}

void cw_config_set_catch_panics(cw_config *cfg, bool on)
{
    if (cfg)
        cfg->catch_panics = on;
}

void cw_config_set_clock(cw_config *cfg, uint64_t (*now_ns)(void *), void *arg)
{
    if (!cfg)
        return;
    cfg->now_ns = now_ns;
    cfg->clock_arg = now_ns ? arg : NULL;
}

void cw_config_set_histograms(cw_config *cfg, bool on)
{
    if (cfg)
        cfg->no_histograms = !on;
}

int cw_config_set_hooks(cw_config *cfg, const cw_hooks *hooks, void *arg)
{
    if (!cfg)
        return -EINVAL;
    cfg->has_hooks = hooks != NULL;
    if (hooks)
        cfg->hooks = *hooks;
    else
        memset(&cfg->hooks, 0, sizeof cfg->hooks);
    cfg->hooks_arg = hooks ? arg : NULL;
    return 0;
}

int cw_config_set_stall_threshold(cw_config *cfg, uint64_t ns)
{
    if (!cfg || (cfg->stall_watchdog && ns < CW_STALL_WATCHDOG_MIN_NS))
        return -EINVAL;
    cfg->stall_ns = ns < CW__MAX_SPAN_NS ? ns : CW__MAX_SPAN_NS;
    return 0;
}

int cw_config_set_stall_watchdog(cw_config *cfg, bool on)
{
    if (!cfg || (on && cfg->stall_ns < CW_STALL_WATCHDOG_MIN_NS))
        return -EINVAL;
#ifndef HAVE_BACKTRACE
    if (on)
        return -ENOTSUP;
#endif
    cfg->stall_watchdog = on;
    return 0;
}

int cw_config_set_stall_log(cw_config *cfg, FILE *f)
{
    if (!cfg)
        return -EINVAL;
    cfg->stall_log = f;
    return 0;
}

void cw_config_set_task_accounting(cw_config *cfg, bool on)
{
    if (cfg)
        cfg->task_accounting = on;
}
