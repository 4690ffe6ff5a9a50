/*
 * executor.c - the executor: creation, the scheduling round, run_until,
 * cw_should_yield(), cw_panic() and freeing.
 *
 * A round, run when the driver says the round it was asked for is due,
 * reads as phases (cw__executor_round() at "scheduling rounds"):
 *   1. wake the sleeps whose deadlines have passed (time.c); take remote
 *      wakes from the inbox;
 *   2. pick a queue (EEVDF) and run its tasks FIFO until its slice is
 *      spent, the queue is empty, a preemption was requested, or the
 *      round's budget (driver_yield ns, max_polls_per_yield polls) is
 *      spent; charge the queue what it used; repeat. While a queue with
 *      a latency target is idle, the time budget is the shortest such
 *      target (budget_spent() is the one test of the budget, after a
 *      poll and in cw_should_yield());
 *   3. if work remains, ask the driver for another round (the loop polls
 *      I/O first); else go idle (remote wakes will signal the fd).
 * One clock read after each poll is both the end of that poll and the
 * start of the next.
 */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_Thread_local char cw__thread_token __attribute__((tls_model("initial-exec")));

/* ---- creation ------------------------------------------------------------ */

static int cmp_by_id(const void *a, const void *b, void *queues)
{
    const cw_queue *q = queues;
    uint32_t x = q[*(const uint32_t *)a].id, y = q[*(const uint32_t *)b].id;
    return x < y ? -1 : x > y;
}

/* The distinct latency targets of cfg's queues below driver_yield, sorted
 * into val (room for one per queue); returns how many. */
static uint32_t latency_ranks(const cw_config *cfg, uint64_t driver_yield, uint64_t *val)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->nqueues; i++) {
        uint64_t t = cfg->queues[i].latency_ns;
        if (t >= driver_yield)
            continue;
        uint32_t j = n;
        while (j > 0 && val[j - 1] > t)
            j--;
        if (j > 0 && val[j - 1] == t)
            continue;
        memmove(&val[j + 1], &val[j], (n - j) * sizeof *val);
        val[j] = t;
        n++;
    }
    return n;
}

/* A target's rank among the n sorted ones, or CW__EQ_NO_RANK. */
static uint32_t latency_rank(const uint64_t *val, uint32_t n, uint64_t t)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (val[mid] == t)
            return mid;
        if (val[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return CW__EQ_NO_RANK;
}

int cw__executor_new(const cw_config *cfg, cw_executor **out)
{
    int err = -ENOMEM;

    *out = NULL;
    if (cfg->nqueues == 0)
        return -EINVAL;

    cw_executor *ex = cw__calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    ex->nqueues = cfg->nqueues;
    ex->driver_yield_ns = cfg->driver_yield_ns;
    ex->max_polls_per_yield = cfg->max_polls_per_yield;
    ex->catch_panics = cfg->catch_panics;
    ex->hist_on = !cfg->no_histograms;
    if (cfg->has_hooks) {
        ex->hooks_copy = cfg->hooks;
        ex->hooks = &ex->hooks_copy;
        ex->hooks_arg = cfg->hooks_arg;
    }
    ex->acct_on = cfg->task_accounting;
    ex->stall_ns = cfg->stall_ns ? cfg->stall_ns : UINT64_MAX;
    ex->stall_log = cfg->stall_log;
    ex->diag = ex->acct_on || cfg->stall_ns;
    ex->poll_wrapped = ex->catch_panics || cfg->stall_watchdog;
    ex->plain = !ex->hooks && !ex->hist_on && !ex->catch_panics && !ex->diag;
    if (cfg->now_ns) {
        ex->now_ns = cfg->now_ns;
        ex->clock_arg = cfg->clock_arg;
    } else if (cw__clock_init(&ex->clock, cfg->default_clock_tsc ? cfg->default_clock_tsc > 0
                                                                  : cw__tsc_usable())) {
        ex->now_ns = cw__clock_now;
        ex->clock_arg = &ex->clock;
    } else {
        ex->now_ns = cw__monotonic_ns;
    }
    ex->cx.ex = ex;
    for (int c = 0; c < CW__NCLASSES; c++)
        cw__list_init(&ex->partial[c]);

    ex->queues = cw__calloc(cfg->nqueues, sizeof *ex->queues);
    ex->by_id = cw__calloc(cfg->nqueues, sizeof *ex->by_id);
    /* the distinct latency targets below driver_yield (the others change
     * nothing), then a count per target: at most one per queue */
    ex->lat_val = cw__calloc(cfg->nqueues, sizeof *ex->lat_val + sizeof(uint32_t));
    ex->sched_slots = cw__calloc(cw__eevdf_slots(cfg->nqueues), sizeof *ex->sched_slots);
    cw__shared *sh = cw__calloc(1, sizeof *sh);
    if (sh) {
        /* released with the last task block (cw__shared_release) */
        cw__alloc_hold();
        atomic_init(&sh->refs, 1);
        atomic_init(&sh->inbox, NULL);
        atomic_init(&sh->sleeping, 0);
        atomic_init(&sh->rfree, NULL);
        cw__list_init(&sh->slabs);
        sh->notify_rfd = sh->notify_wfd = -1;
        sh->thread = &cw__thread_token;
    }
    if (!ex->queues || !ex->by_id || !ex->lat_val || !ex->sched_slots || !sh)
        goto fail;
    cw__eevdf_init(&ex->sched, ex->sched_slots, cfg->nqueues, cfg->sched_latency_ns,
                   cfg->min_slice_ns);
    uint32_t nranks = latency_ranks(cfg, ex->driver_yield_ns, ex->lat_val);
    cw__eevdf_set_rank_counts(&ex->sched, (uint32_t *)(ex->lat_val + cfg->nqueues), nranks);
    for (uint32_t i = 0; i < cfg->nqueues; i++) {
        cw_queue *q = &ex->queues[i];
        q->ex = ex;
        q->id = cfg->queues[i].id;
        q->index = i;
        cw__list_init(&q->runq);
        cw__eq_init(&q->eq, i, cfg->queues[i].weight, cfg->queues[i].slice_ns);
        cw__eevdf_add(&ex->sched, &q->eq,
                      latency_rank(ex->lat_val, nranks, cfg->queues[i].latency_ns),
                      cfg->queues[i].latency_set);
        ex->by_id[i] = i;
    }
    /* insertion sort: configs are small and this runs once */
    for (uint32_t i = 1; i < cfg->nqueues; i++)
        for (uint32_t j = i; j > 0 && cmp_by_id(&ex->by_id[j - 1], &ex->by_id[j], ex->queues) > 0; j--) {
            uint32_t tmp = ex->by_id[j];
            ex->by_id[j] = ex->by_id[j - 1];
            ex->by_id[j - 1] = tmp;
        }

    sh->ex = ex;
    ex->shared = sh;
    if ((err = cw__notify_open(sh)) < 0)
        goto fail;
    if (cfg->stall_watchdog && (err = cw__watchdog_start(ex, cfg)) < 0)
        goto fail;
    *out = ex;
    return 0;

fail:
    if (sh) {
        sh->ex = NULL;
        ex->shared = NULL;
        cw__shared_release(sh, 1);
    }
    cw__free(ex->lat_val);
    cw__free(ex->sched_slots);
    cw__free(ex->by_id);
    cw__free(ex->queues);
    cw__free(ex);
    return err;
}

/* ---- freeing ------------------------------------------------------------- */

void cw_executor_free(cw_executor *ex)
{
    if (!ex)
        return;
    /* Refused, in every build: freeing under the running round (or the
     * free in progress) would use the executor after it is gone. */
    if (!cw__on_thread(ex->shared)) {
        cw__misuse("cw_executor_free()", "not on the executor's thread; not freed");
        return;
    }
    if (ex->in_round || ex->freeing) {
        cw__misuse("cw_executor_free()", ex->freeing
                   ? "called while the executor is being freed (from a drop); not freed again"
                   : "called from inside a task's poll (or a round's hook or drop); not freed");
        return;
    }
    ex->freeing = true;
    cw__watchdog_stop(ex);

    /* Close the inbox; the references it held go. */
    cw__task *t = atomic_exchange(&ex->shared->inbox, CW__INBOX_CLOSED);
    while (t) {
        cw__task *next = t->inbox_next;
        atomic_fetch_and(&t->refs, ~CW__REF_INBOX);
        if (t->flags & CW__T_SPAWNING) /* spawned remotely, never started */
            cw__spawn_remote_cancel(ex, t);
        cw__task_release(t);
        t = next;
    }
    /* Cancel every live task; a drop function may end others. */
    cw__tasks_cancel_all(ex);
    cw__timers_free(ex);
    cw__fdwaits_free(ex);
    cw__loop_free(ex);
    cw__slabs_detach(ex);
    ex->shared->ex = NULL;
    cw__shared_release(ex->shared, 1);
    cw__free(ex->lat_val);
    cw__free(ex->sched_slots);
    cw__free(ex->by_id);
    cw__free(ex->queues);
    cw__free(ex);
}

/* ---- small accessors ----------------------------------------------------- */

cw_queue *cw_executor_queue(cw_executor *ex, uint32_t id)
{
    if (!ex)
        return NULL;
    uint32_t lo = 0, hi = ex->nqueues;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        cw_queue *q = &ex->queues[ex->by_id[mid]];
        if (q->id == id)
            return q;
        if (q->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint64_t cw_executor_now(const cw_executor *ex)
{
    return ex ? cw__now(ex) : 0;
}

uint32_t cw_queue_id(const cw_queue *q)
{
    return q ? q->id : 0;
}

uint32_t cw_queue_weight(const cw_queue *q)
{
    if (!q)
        return 0;
    return q->eq.new_weight ? q->eq.new_weight : (uint32_t)q->eq.weight;
}

cw_executor *cw_queue_executor(const cw_queue *q)
{
    return q ? q->ex : NULL;
}

int cw_queue_set_weight(cw_queue *q, uint32_t weight)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (weight == 0)
        return -EINVAL;
    if (!cw__on_thread(q->ex->shared))
        return -EPERM;
    cw__eevdf_reweight(&q->ex->sched, &q->eq, weight);
    return 0;
}

cw_executor *cw_cx_executor(cw_cx *cx)
{
    return cx ? cx->ex : NULL;
}

cw_queue *cw_cx_queue(cw_cx *cx)
{
    return cx && cx->task ? cw__task_queue(cx->ex, cx->task) : NULL;
}

/* ---- scheduling rounds --------------------------------------------------- */

void cw__executor_schedule(cw_executor *ex)
{
    if (ex->in_round || ex->round_pending || ex->freeing)
        return;
    if (ex->idle) {
        ex->idle = false;
        atomic_store(&ex->shared->sleeping, 0);
    }
    ex->round_pending = true;
    cw__loop_schedule(ex);
}

void cw__executor_update_watch(cw_executor *ex)
{
    cw__loop_watch_notify(ex, ex->ntasks > 0 && !ex->freeing);
}

/* Poll one task with catch_panics on: a cw_panic() lands back here
 * (true). Out of line: its sigjmp_buf frame stays off the plain path. */
static __attribute__((noinline)) bool poll_catching(cw_executor *ex, cw__task *t, cw_poll *res)
{
    sigjmp_buf jb;

    ex->panic_jmp = &jb;
    if (sigsetjmp(jb, 0)) {
        ex->panic_jmp = NULL;
        return true;
    }
    *res = t->poll(t->state, &ex->cx);
    ex->panic_jmp = NULL;
    return false;
}

/* Poll one task with catch_panics on or a stall watchdog: the watchdog
 * is told around the poll. Out of line, as poll_catching(): the lean
 * poll loop's code stays what it is without them (measured: the
 * watchdog's call inline in the full copy cost the lean copy 0.7
 * instructions a poll). */
static __attribute__((noinline)) bool poll_wrapped(cw_executor *ex, cw_queue *q, cw__task *t,
                                                   cw_poll *res)
{
    bool panicked = false;
    if (ex->wd)
        cw__watchdog_begin(ex->wd, q, t);
    if (ex->catch_panics)
        panicked = poll_catching(ex, t, res);
    else
        *res = t->poll(t->state, &ex->cx);
    if (ex->wd)
        cw__watchdog_end(ex->wd);
    return panicked;
}

/*
 * The budget test, after a poll (run_slice) and inside one
 * (cw_should_yield()): the round is over at `now` when one more unit of
 * work as long as `unit` would end past the round's end (so a round does
 * not overshoot its budget by a unit: I/O waits for the round to end),
 * and the slice when its wall time is spent while another queue waits.
 * After a poll the unit is a poll as long as the queue's recent ones;
 * inside one it is the chunk since the task last asked.
 */
static inline cw_slice_end budget_spent(const cw_executor *ex, uint64_t now, uint64_t unit)
{
    if ((int64_t)(now + unit - ex->round_end) > 0)
        return CW_SLICE_DRIVER_YIELD;
    if (ex->sched.nr_running > 1 && (int64_t)(now - ex->slice_end) >= 0)
        return CW_SLICE_SPENT;
    return CW_SLICE_EMPTY; /* neither */
}

/*
 * Run q's tasks FIFO until the slice ends; returns why. `plain` is a
 * constant at each of the two call sites (always inlined): true when the
 * executor has no hooks, no histograms and catch_panics off (ex->plain,
 * fixed at creation), so that copy of the loop tests none of them per
 * poll. Both copies do the same thing otherwise.
 */
static inline __attribute__((always_inline)) cw_slice_end
run_slice_impl(cw_executor *ex, cw_queue *q, uint64_t *now, uint32_t *polls_left, const bool plain)
{
    cw__shared *sh = ex->shared;

    for (;;) {
        if (cw__list_empty(&q->runq))
            return CW_SLICE_EMPTY;
        cw__task *t = cw__container_of(q->runq.next, cw__task, link);
        cw__list_unlink(&t->link);
        q->nrunq--;
        t->flags = (uint16_t)((t->flags & ~CW__T_SCHEDULED) | CW__T_RUNNING);

        cw_poll res = CW_PENDING;
        bool panicked = false;
        uint64_t t0 = *now;
        if (!plain) {
            if (ex->hist_on)
                cw__hist_record(&q->queue_delay_ns, t0 - *cw__task_stamp(t));
            CW__HOOK(ex, poll_start, q, t->state);
        }
        ex->poll_start = t0;
        ex->cx.task = t;
        if (!plain && ex->poll_wrapped)
            panicked = poll_wrapped(ex, q, t, &res);
        else
            res = t->poll(t->state, &ex->cx);
        ex->cx.task = NULL;

        uint64_t t1 = cw__now(ex);
        uint64_t dt = t1 - t0;
        *now = t1;
        ex->now_cache = t1;
        /* (the executor's polls and cpu_ns are the queues' sums: stats.c) */
        q->polls++;
        q->cpu_ns += dt;
        uint64_t est = q->poll_est - (q->poll_est >> 3); /* the round budget */
        q->poll_est = dt > est ? dt : est;
        if (!plain && ex->hist_on)
            cw__hist_record(&ex->stats.poll_ns, dt);
        int64_t past_end = (int64_t)(t1 - ex->slice_end);
        if (past_end > 0 && (int64_t)(t0 - ex->slice_end) < 0)
            ex->stats.polls_overrun++;
        if (!plain) {
            CW__HOOK(ex, poll_end, q, t->state, dt, panicked ? CW_EPANIC : (int)res);
            if (ex->diag)
                cw__poll_diag(ex, q, t, t1, dt);
        }

        uint16_t f = t->flags;
        if (!panicked && res != CW_READY && (f & (CW__T_CANCEL | CW__T_NOTIFIED)) == CW__T_NOTIFIED) {
            /* Woken during its poll (a yield): back to the tail of q.
             * This is cw__task_enqueue() with what is known here: inside
             * a round (no sleeps to catch up, no round to ask for), and
             * q, the running queue, is runnable already. */
            CW_ASSERT_HOT(q->eq.on_rq && !(f & (CW__T_SCHEDULED | CW__T_DONE)));
            t->flags = (uint16_t)((f & ~(CW__T_RUNNING | CW__T_NOTIFIED)) | CW__T_SCHEDULED);
            cw__list_push_back(&q->runq, &t->link);
            q->nrunq++;
            if (!plain && ex->hist_on)
                *cw__task_stamp(t) = ex->now_cache;
        } else if (panicked) {
            cw__task_end(ex, t, CW_EPANIC);
        } else if (f & CW__T_CANCEL) {
            cw__task_end(ex, t, -ECANCELED);
        } else if (res == CW_READY) {
            cw__task_end(ex, t, 0);
        } else {
            t->flags = (uint16_t)(f & ~CW__T_RUNNING);
#ifdef CW_CHECKED
            cw__checked_pending(ex, t); /* no wake arranged? (checked.c) */
#endif
        }

        if (atomic_load_explicit(&sh->inbox, memory_order_relaxed))
            cw__inbox_drain(ex);
        if (--*polls_left == 0)
            return CW_SLICE_MAX_POLLS;
        /* The unit is the longest recent poll, decaying by 1/8 per poll. */
        cw_slice_end why = budget_spent(ex, t1, q->poll_est);
        if (why == CW_SLICE_DRIVER_YIELD)
            return why;
        if (ex->preempt)
            return CW_SLICE_PREEMPTED;
        if (why == CW_SLICE_SPENT)
            return why;
    }
}

static cw_slice_end run_slice(cw_executor *ex, cw_queue *q, uint64_t *now, uint32_t *polls_left)
{
    return ex->plain ? run_slice_impl(ex, q, now, polls_left, true)
                     : run_slice_impl(ex, q, now, polls_left, false);
}

/* The time between two rounds goes to libevent (work was left) or idle. */
static void account_gap(cw_executor *ex, uint64_t now)
{
    if (ex->stats.rounds == 1)
        return; /* the first round: no previous one */
    uint64_t gap = now - ex->last_round_end;
    if (ex->last_round_left_work)
        ex->stats.libevent_ns += gap;
    else
        ex->stats.idle_ns += gap;
}

static void account_round(cw_executor *ex, uint64_t start, uint64_t end, bool left_work)
{
    ex->stats.busy_ns += end - start;
    if (ex->hist_on) {
        cw__hist_record(&ex->stats.round_ns, end - start);
        if (ex->stats.rounds > 1)
            cw__hist_record(&ex->stats.return_interval_ns, end - ex->last_round_end);
    }
    ex->last_round_end = end;
    ex->last_round_left_work = left_work;
}

/*
 * The round, as named phases (each with its bound), called from the
 * driver when the round it was asked for is due:
 *
 *   round_begin   account the time since the last round; set the budget
 *   run_due       sleeps whose deadline passed, then remote wakes (bound:
 *                 what is due now; each only makes tasks runnable)
 *   run_slices    pick a queue, run its slice, charge it; again until no
 *                 queue is runnable or the round's budget is spent
 *                 (driver_yield ns or max_polls_per_yield polls, or the
 *                 shortest latency target of an idle queue)
 *   round_end     reclaim blocks freed remotely; account; ask for the
 *                 next round if work is left, else go idle
 */
static bool round_begin(cw_executor *ex, uint64_t *now)
{
    ex->round_pending = false;
    if (ex->in_round || ex->freeing)
        return false;
    ex->in_round = true;
    ex->stats.rounds++;
    *now = cw__now(ex);
    ex->now_cache = *now;
    account_gap(ex, *now);
    ex->round_end = cw__deadline(*now, ex->driver_yield_ns);
    ex->flush_pending = false;
    return true;
}

static void run_due(cw_executor *ex, uint64_t now)
{
    if (ex->timers.n)
        cw__timers_fire(ex, now);
    cw__inbox_drain(ex);
}

/* The round's time budget for the next slice: while a queue with a
 * latency target is idle, what would wake it is I/O that the loop sees
 * only between rounds (timers and remote wakes are seen inside one), so
 * return to it within the shortest such target rather than driver_yield
 * (the ranks hold only shorter ones). */
static uint64_t round_budget(cw_executor *ex, bool *cut)
{
    uint32_t rank = cw__eevdf_idle_rank(&ex->sched);
    if (rank == CW__EQ_NO_RANK)
        return ex->driver_yield_ns;
    if (!*cut) {
        *cut = true;
        ex->stats.latency_rounds++;
    }
    return ex->lat_val[rank];
}

static cw_slice_end run_slices(cw_executor *ex, uint64_t round_start, uint64_t *now)
{
    uint32_t polls_left = ex->max_polls_per_yield;
    cw_slice_end why = CW_SLICE_EMPTY;
    bool cut = false; /* a slice of this round had a latency budget */
    for (;;) {
        uint64_t slice;
        ex->stats.decisions++;
        cw__eq *e = cw__eevdf_pick(&ex->sched, &slice);
        if (!e)
            break;
        cw_queue *q = cw__container_of(e, cw_queue, eq);
        if (ex->hist_on) {
            /* one reading ends the decision and starts the slice */
            uint64_t t = cw__now(ex);
            cw__hist_record(&ex->stats.decision_ns, t - *now);
            *now = ex->now_cache = t;
            if (q->service_pending)
                cw__hist_record(&q->service_delay_ns, *now - q->runnable_at);
        }
        q->service_pending = false;
        ex->round_end = cw__deadline(round_start, round_budget(ex, &cut));
        uint64_t start = *now;
        ex->preempt = false;
        ex->slice_start = start;
        ex->poll_start = start;
        ex->slice_end = cw__deadline(start, slice);
        ex->stats.slices++;
        q->slices++;
        CW__HOOK(ex, slice_start, q);
        why = run_slice(ex, q, now, &polls_left);
        q->slices_ended[why]++;
        cw__eevdf_charge(&ex->sched, *now - start, q->nrunq > 0);
        ex->preempt = false;
        CW__HOOK(ex, slice_end, q, *now - start, why);
        /* A reply waits in the loop's buffers (cw__executor_flush_soon):
         * the tasks queued behind it on its queue (requests read in the
         * same pass, as evhttp would run their callbacks) ran within
         * its round_end, but no other queue runs first. */
        if (why == CW_SLICE_MAX_POLLS || why == CW_SLICE_DRIVER_YIELD || ex->flush_pending)
            break;
    }
    return why;
}

static void round_end(cw_executor *ex, uint64_t round_start, uint64_t now, cw_slice_end why)
{
    ex->in_round = false;
    if (atomic_load_explicit(&ex->shared->rfree, memory_order_relaxed))
        cw__slabs_reclaim(ex);
    bool left_work = ex->sched.nr_running != 0;
    if (left_work && (why == CW_SLICE_MAX_POLLS || why == CW_SLICE_DRIVER_YIELD))
        ex->stats.driver_yields++;
    account_round(ex, round_start, now, left_work);
    if (left_work) {
        cw__executor_schedule(ex);
        return;
    }
    /* Idle: the loop may block now (libevent refreshes its cached time,
     * which this round made stale); let remote wakers know they must
     * signal, then look once more. */
    cw__loop_idle(ex);
    ex->idle = true;
    atomic_store(&ex->shared->sleeping, 1);
    if (atomic_load(&ex->shared->inbox)) {
        cw__executor_schedule(ex);
        return;
    }
    if (!ex->ntasks)
        cw__executor_update_watch(ex);
}

void cw__executor_round(cw_executor *ex)
{
    uint64_t now;
    if (!round_begin(ex, &now))
        return;
    uint64_t round_start = now;
    run_due(ex, now);
    cw_slice_end why = run_slices(ex, round_start, &now);
    round_end(ex, round_start, now, why);
}

int cw_executor_run_until(cw_executor *ex, cw_join *join)
{
    if (!ex || !join)
        return -EINVAL;
    if (!cw__on_thread(ex->shared))
        return -EPERM;
    cw__task *t = cw__join_task(join, "cw_executor_run_until");
    if (cw__task_shared(t) != ex->shared)
        return -EINVAL;
    if (ex->in_round)
        return -EBUSY;
    if (ex->freeing)
        return -ESHUTDOWN;
    while (!(t->flags & CW__T_DONE)) {
        int r = cw__loop_run_once(ex);
        if (r < 0) /* -ENOTSUP: a loop that cannot turn (embed, no hook) */
            return r == -ENOTSUP ? r : -EIO;
        if (r > 0 && !(t->flags & CW__T_DONE))
            return -EAGAIN; /* defensive: the watched remote-wake fd keeps
                               the base non-empty while the task lives */
    }
    return cw__task_status(t);
}

/* ---- inside a poll -------------------------------------------------------- */

bool cw_should_yield(cw_cx *cx)
{
    if (!cx || !cx->task)
        return false;
    cw_executor *ex = cx->ex;
    if (atomic_load_explicit(&ex->shared->inbox, memory_order_relaxed))
        cw__inbox_drain(ex);
    if (ex->preempt)
        return true;
    uint64_t now = cw__now(ex);
    /* the chunk since the task last asked, or since its poll began */
    uint64_t since = (int64_t)(ex->yield_check - ex->poll_start) > 0 ? ex->yield_check
                                                                       : ex->poll_start;
    ex->yield_check = now;
    if (ex->timers.n) {
        /* A sleep of a more deserving queue that came due during this
         * poll asks for a preemption now, not after the poll: a task
         * that checks between chunks of work gives way to it within a
         * chunk. (One comparison when none is due.) */
        ex->now_cache = now;
        cw__timers_catch_up(ex, now);
        if (ex->preempt)
            return true;
    }
    return budget_spent(ex, now, now - since) != CW_SLICE_EMPTY;
}

void cw__executor_yield_to_loop(cw_executor *ex)
{
    /* A round end in the past: the budget check after the poll ends the
     * round, as would a spent driver_yield. */
    if (ex && ex->in_round && ex->cx.task)
        ex->round_end = ex->poll_start - 1;
}

/* A reply went into libevent's buffers: return to libevent once the
 * polling queue has no runnable task left, or 50 us (the default latency
 * target; at most driver_yield) after this poll's start, whichever comes
 * first. A burst of requests read in one pass is answered in one round,
 * as evhttp's own callbacks would be, instead of a round and an I/O poll
 * per request. Only the first reply of a round moves round_end: the round
 * ends with the slice it came in (cw__executor_round), and round_end
 * only moves earlier within a slice. */
void cw__executor_flush_soon(cw_executor *ex)
{
    if (!ex || !ex->in_round || !ex->cx.task || ex->flush_pending)
        return;
    ex->flush_pending = true;
    uint64_t by = cw__deadline(ex->poll_start, CW_DEFAULT_QUEUE_LATENCY_NS < ex->driver_yield_ns
                                                   ? CW_DEFAULT_QUEUE_LATENCY_NS
                                                   : ex->driver_yield_ns);
    if ((int64_t)(ex->round_end - by) > 0)
        ex->round_end = by;
}

void cw_cx_yield_to_loop(cw_cx *cx)
{
    if (cx)
        cw__executor_yield_to_loop(cx->ex);
}

CW_NORETURN void cw_panic(cw_cx *cx, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (!fmt) {
        static const char none[] = "(no message)";
        if ((msg = cw__malloc(sizeof none)))
            memcpy(msg, none, sizeof none);
    } else {
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && (msg = cw__malloc((size_t)n + 1))) {
            va_start(ap, fmt);
            vsnprintf(msg, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    if (cx && cx->task && cx->ex->panic_jmp) {
        cx->task->panic_msg = msg;
        siglongjmp(*cx->ex->panic_jmp, 1);
    }
    fprintf(stderr, "clockworker: task panicked: %s\n",
            msg ? msg : "(message lost: out of memory)");
    fflush(stderr);
    abort();
}
