/*
 * stats_dump.c - merging histograms and the readable stats report.
 *
 * The report reads the counters through cw_executor_stats() and
 * cw_queue_stats(), as a user would; it is for people (logs), its format
 * may change. Layout:
 *
 *   clockworker stats
 *   executor
 *     <name>  <value> [unit]            one counter per line
 *     histogram  count  p50  p90  p99  max   (us)
 *     <name>  ...                       one histogram per line
 *   queue <id>
 *     <name>  <value> [unit]
 *     histogram ...
 *
 * Times are printed in microseconds with three decimals (exact in ns).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>

#include "internal.h"

int cw_hist_merge(cw_hist *dst, const cw_hist *src)
{
    if (!dst || !src)
        return -EINVAL;
    for (unsigned b = 0; b < CW_HIST_BUCKETS; b++)
        dst->buckets[b] += src->buckets[b];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

void cw__put(cw__out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->failed)
        return;
    va_start(ap, fmt);
    if (vfprintf(o->f, fmt, ap) < 0)
        o->failed = true;
    va_end(ap);
}

/* ns as microseconds with three decimals, exact: "1234.567". */
static void put_us(cw__out *o, const char *name, uint64_t ns)
{
    cw__put(o, "  %-22s %" PRIu64 ".%03" PRIu64 " us\n", name, ns / 1000, ns % 1000);
}

static void put_count(cw__out *o, const char *name, uint64_t n)
{
    cw__put(o, "  %-22s %" PRIu64 "\n", name, n);
}

static void put_hist_header(cw__out *o)
{
    cw__put(o, "  %-22s %12s %14s %14s %14s %14s\n", "histogram (us)", "count", "p50", "p90",
        "p99", "max");
}

static void put_hist(cw__out *o, const char *name, const cw_hist *h)
{
    const double q[4] = {0.5, 0.9, 0.99, 1.0};
    cw__put(o, "  %-22s %12" PRIu64, name, h->count);
    for (int i = 0; i < 4; i++) {
        uint64_t v = i < 3 ? cw_hist_quantile(h, q[i]) : h->max;
        cw__put(o, " %10" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
    }
    cw__put(o, "\n");
}

static const char *const end_names[CW_SLICE_END_REASONS] = {
    [CW_SLICE_EMPTY] = "empty",
    [CW_SLICE_SPENT] = "spent",
    [CW_SLICE_PREEMPTED] = "preempted",
    [CW_SLICE_DRIVER_YIELD] = "driver_yield",
    [CW_SLICE_MAX_POLLS] = "max_polls",
};

static void dump_executor(cw__out *o, const struct cw_executor_stats *s)
{
    cw__put(o, "executor\n");
    put_count(o, "tasks_spawned", s->tasks_spawned);
    put_count(o, "tasks_completed", s->tasks_completed);
    put_count(o, "tasks_cancelled", s->tasks_cancelled);
    put_count(o, "tasks_panicked", s->tasks_panicked);
    put_count(o, "tasks_live", s->tasks_live);
    put_count(o, "polls", s->polls);
    put_count(o, "polls_overrun", s->polls_overrun);
    put_count(o, "stalls", s->stalls);
    put_us(o, "cpu", s->cpu_ns);
    put_count(o, "rounds", s->rounds);
    put_count(o, "driver_yields", s->driver_yields);
    put_count(o, "latency_rounds", s->latency_rounds);
    put_count(o, "decisions", s->decisions);
    put_count(o, "slices", s->slices);
    put_count(o, "preemptions", s->preemptions);
    put_count(o, "preempt_requests", s->preempt_requests);
    put_count(o, "wakes_local", s->wakes_local);
    put_count(o, "wakes_remote", s->wakes_remote);
    put_us(o, "busy", s->busy_ns);
    put_us(o, "libevent", s->libevent_ns);
    put_us(o, "idle", s->idle_ns);
    put_hist_header(o);
    put_hist(o, "poll", &s->poll_ns);
    put_hist(o, "decision", &s->decision_ns);
    put_hist(o, "round", &s->round_ns);
    put_hist(o, "return_interval", &s->return_interval_ns);
}

static void dump_queue(cw__out *o, const struct cw_queue_stats *s)
{
    char name[32];

    cw__put(o, "queue %" PRIu32 "\n", s->id);
    put_count(o, "weight", s->weight);
    put_count(o, "runnable", s->runnable);
    put_count(o, "tasks_spawned", s->tasks_spawned);
    put_count(o, "tasks_completed", s->tasks_completed);
    put_count(o, "tasks_cancelled", s->tasks_cancelled);
    put_count(o, "tasks_panicked", s->tasks_panicked);
    put_count(o, "polls", s->polls);
    put_count(o, "stalls", s->stalls);
    put_us(o, "cpu", s->cpu_ns);
    put_count(o, "slices", s->slices);
    for (int r = 0; r < CW_SLICE_END_REASONS; r++) {
        snprintf(name, sizeof name, "slices_%s", end_names[r]);
        put_count(o, name, s->slices_ended[r]);
    }
    cw__put(o, "  %-22s %" PRIu64 "\n", "vruntime", s->vruntime);
    cw__put(o, "  %-22s %" PRId64 "\n", "lag", s->lag);
    put_hist_header(o);
    put_hist(o, "queue_delay", &s->queue_delay_ns);
    put_hist(o, "service_delay", &s->service_delay_ns);
}

int cw_executor_dump_stats(const cw_executor *ex, FILE *f)
{
    struct cw_executor_stats es;
    struct cw_queue_stats qs;
    cw__out o = {f, false};

    if (!ex || !f)
        return -EINVAL;
    int err = cw_executor_stats(ex, &es); /* -EPERM: another thread */
    if (err < 0)
        return err;
    cw__put(&o, "clockworker stats\n");
    dump_executor(&o, &es);
    for (uint32_t i = 0; i < ex->nqueues; i++) {
        if (cw_queue_stats(&ex->queues[i], &qs) < 0)
            return -EINVAL;
        dump_queue(&o, &qs);
    }
    if (fflush(f) != 0)
        o.failed = true;
    return o.failed ? -EIO : 0;
}
