/* stats.c - histograms and the counters' getters. */
#include "config.h"

#include <string.h>

#include "internal.h"

uint64_t cw_hist_quantile(const cw_hist *h, double q)
{
    if (!h || !h->count)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double)h->count;
    uint64_t seen = 0;
    for (unsigned b = 0; b < CW_HIST_BUCKETS; b++) {
        uint64_t n = h->buckets[b];
        if (!n)
            continue;
        if ((double)(seen + n) >= rank) {
            double lo = b ? (double)((uint64_t)1 << (b - 1)) : 0;
            double hi = b ? (b < 64 ? 2 * lo : 18446744073709551615.0) : 0;
            double v = lo + (hi - lo) * ((rank - (double)seen) / (double)n);
            uint64_t r = v >= (double)h->max ? h->max : (uint64_t)v;
            return r;
        }
        seen += n;
    }
    return h->max;
}

int cw_executor_stats(const cw_executor *ex, struct cw_executor_stats *out)
{
    if (!ex || !out)
        return -EINVAL;
    if (!cw__on_thread(ex->shared))
        return -EPERM;
    *out = ex->stats;
    /* kept per queue only (the executor's would be the same sums) */
    out->polls = out->cpu_ns = out->preemptions = 0;
    for (uint32_t i = 0; i < ex->nqueues; i++) {
        const cw_queue *q = &ex->queues[i];
        out->polls += q->polls;
        out->cpu_ns += q->cpu_ns;
        out->preemptions += q->slices_ended[CW_SLICE_PREEMPTED];
    }
    return 0;
}

int cw_queue_stats(const cw_queue *q, struct cw_queue_stats *out)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (!out)
        return -EINVAL;
    if (!cw__on_thread(q->ex->shared))
        return -EPERM;
    memset(out, 0, sizeof *out);
    out->id = q->id;
    out->weight = cw_queue_weight(q);
    out->runnable = q->nrunq;
    out->tasks_spawned = q->spawned;
    out->tasks_completed = q->completed;
    out->tasks_cancelled = q->cancelled;
    out->tasks_panicked = q->panicked;
    out->polls = q->polls;
    out->cpu_ns = q->cpu_ns;
    out->slices = q->slices;
    out->preemptions = q->slices_ended[CW_SLICE_PREEMPTED];
    memcpy(out->slices_ended, q->slices_ended, sizeof out->slices_ended);
    out->queue_delay_ns = q->queue_delay_ns;
    out->service_delay_ns = q->service_delay_ns;
    out->stalls = q->stalls;
    out->vruntime = q->eq.vruntime;
    out->lag = cw__eevdf_lag(&q->ex->sched, &q->eq);
    return 0;
}
