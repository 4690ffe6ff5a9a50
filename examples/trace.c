/* trace.c - one line per executor event, through the tracing hooks.
 *
 * cw_config_set_hooks() installs callbacks that the executor calls at each
 * event: spawn, poll start and end, wake, complete, slice start and end.
 * Here every hook prints one line to stderr in key=value form:
 *
 *   t=<ns since start> ev=<event> q=<queue id> [task=<state pointer>] ...
 *
 * e.g. "t=2101467 ev=poll_end q=1 task=0x55d0c8e1f2a0 ns=2113 result=ready".
 * A task is named by its state pointer. The run is short: two sleepers
 * (2 and 3 ms), a worker that yields three times, and a victim that
 * would sleep 10 s but is cancelled once the sleepers are done. Then the
 * program exits 0. The times vary; the kinds of lines do not.
 *
 * Usage: trace                     (the trace goes to stderr)
 *        trace 2>&1 | grep ev=complete
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <clockworker.h>

enum { MAIN_QUEUE = 1 };

/* ---- the hooks ------------------------------------------------------------ */

struct tracer {
    cw_executor *ex; /* set once the executor exists */
    uint64_t t0;     /* its clock at the start */
};

static uint64_t since(struct tracer *tr)
{
    return cw_executor_now(tr->ex) - tr->t0;
}

static void on_spawn(void *arg, cw_queue *q, void *state)
{
    fprintf(stderr, "t=%" PRIu64 " ev=spawn q=%" PRIu32 " task=%p\n", since(arg),
            cw_queue_id(q), state);
}

static void on_poll_start(void *arg, cw_queue *q, void *state)
{
    fprintf(stderr, "t=%" PRIu64 " ev=poll_start q=%" PRIu32 " task=%p\n", since(arg),
            cw_queue_id(q), state);
}

static void on_poll_end(void *arg, cw_queue *q, void *state, uint64_t ns, int result)
{
    const char *r = result == CW_READY ? "ready" : result == CW_PENDING ? "pending" : "panic";
    fprintf(stderr, "t=%" PRIu64 " ev=poll_end q=%" PRIu32 " task=%p ns=%" PRIu64 " result=%s\n",
            since(arg), cw_queue_id(q), state, ns, r);
}

static void on_wake(void *arg, cw_queue *q, void *state, bool remote)
{
    fprintf(stderr, "t=%" PRIu64 " ev=wake q=%" PRIu32 " task=%p from=%s\n", since(arg),
            cw_queue_id(q), state, remote ? "remote" : "local");
}

static void on_complete(void *arg, cw_queue *q, void *state, int status)
{
    const char *s = status == 0 ? "ok" : status == CW_EPANIC ? "panicked" : "cancelled";
    fprintf(stderr, "t=%" PRIu64 " ev=complete q=%" PRIu32 " task=%p status=%s\n", since(arg),
            cw_queue_id(q), state, s);
}

static void on_slice_start(void *arg, cw_queue *q)
{
    fprintf(stderr, "t=%" PRIu64 " ev=slice_start q=%" PRIu32 "\n", since(arg), cw_queue_id(q));
}

static void on_slice_end(void *arg, cw_queue *q, uint64_t ns, cw_slice_end reason)
{
    static const char *const reasons[CW_SLICE_END_REASONS] = {
        [CW_SLICE_EMPTY] = "empty",
        [CW_SLICE_SPENT] = "spent",
        [CW_SLICE_PREEMPTED] = "preempted",
        [CW_SLICE_DRIVER_YIELD] = "driver_yield",
        [CW_SLICE_MAX_POLLS] = "max_polls",
    };
    fprintf(stderr, "t=%" PRIu64 " ev=slice_end q=%" PRIu32 " ns=%" PRIu64 " reason=%s\n",
            since(arg), cw_queue_id(q), ns, reasons[reason]);
}

/* ---- the tasks --------------------------------------------------------------- */

/* Sleep, then end. */
struct sleeper {
    cw_pt pt;
    cw_sleep nap;
};

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    struct sleeper *s = state;
    CW_BEGIN(&s->pt);
    CW_AWAIT(&s->pt, cw_sleep_poll(&s->nap, cx));
    CW_END(&s->pt);
}

static void sleeper_drop(void *state)
{
    struct sleeper *s = state;
    cw_sleep_drop(&s->nap); /* the victim is cancelled asleep */
}

/* Yield three times, then end. */
struct worker {
    cw_pt pt;
    int i;
};

static cw_poll worker_poll(void *state, cw_cx *cx)
{
    struct worker *w = state;
    CW_BEGIN(&w->pt);
    for (w->i = 0; w->i < 3; w->i++)
        CW_YIELD(&w->pt, cx);
    CW_END(&w->pt);
}

int main(void)
{
    int rc = EXIT_FAILURE;
    struct event_base *base = event_base_new();
    cw_config *cfg = cw_config_new();
    cw_executor *ex = NULL;
    cw_join *j2ms = NULL, *j3ms = NULL, *jwork = NULL, *jvictim = NULL;
    struct tracer tr = {NULL, 0};
    const cw_hooks hooks = {
        .spawn = on_spawn,
        .poll_start = on_poll_start,
        .poll_end = on_poll_end,
        .wake = on_wake,
        .complete = on_complete,
        .slice_start = on_slice_start,
        .slice_end = on_slice_end,
    };
    struct sleeper s2, s3, victim; /* initial states, copied by cw_spawn */
    struct worker w = {.i = 0};
    cw_queue *q;
    int err;

    if (!base || !cfg) {
        fprintf(stderr, "trace: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, MAIN_QUEUE, 1)) < 0
        || (err = cw_config_set_hooks(cfg, &hooks, &tr)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0) {
        fprintf(stderr, "trace: %s\n", cw_strerror(err));
        goto out;
    }
    tr.ex = ex;
    tr.t0 = cw_executor_now(ex);

    q = cw_executor_queue(ex, MAIN_QUEUE);
    cw_pt_init(&s2.pt);
    cw_pt_init(&s3.pt);
    cw_pt_init(&victim.pt);
    cw_sleep_init(&s2.nap, 2000000);
    cw_sleep_init(&s3.nap, 3000000);
    cw_sleep_init(&victim.nap, 10000000000ull);
    if ((err = cw_spawn(q, sleeper_poll, &s2, sizeof s2, sleeper_drop, &j2ms)) < 0
        || (err = cw_spawn(q, sleeper_poll, &s3, sizeof s3, sleeper_drop, &j3ms)) < 0
        || (err = cw_spawn(q, worker_poll, &w, sizeof w, NULL, &jwork)) < 0
        || (err = cw_spawn(q, sleeper_poll, &victim, sizeof victim, sleeper_drop, &jvictim)) < 0) {
        fprintf(stderr, "trace: spawn: %s\n", cw_strerror(err));
        goto out;
    }
    if ((err = cw_executor_run_until(ex, j3ms)) < 0 || (err = cw_executor_run_until(ex, j2ms)) < 0
        || (err = cw_executor_run_until(ex, jwork)) < 0) {
        fprintf(stderr, "trace: run: %s\n", cw_strerror(err));
        goto out;
    }
    cw_join_abort(jvictim); /* ev=complete ... status=cancelled */
    rc = EXIT_SUCCESS;
out:
    cw_join_free(j2ms);
    cw_join_free(j3ms);
    cw_join_free(jwork);
    cw_join_free(jvictim);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
