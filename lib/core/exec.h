/*
 * exec.h - the executor: its queues, its state, the round's entry points, and
 * the inline enqueue and local wake of the poll path; with the timers
 * (time.c) and fd waits (io.c) it owns. Not installed.
 */
#ifndef CW_CORE_EXEC_H
#define CW_CORE_EXEC_H

#include <setjmp.h>
#include <stdio.h>

#include "clock.h"
#include "conf.h"
#include "eevdf.h"
#include "loop.h"
#include "tasks.h"

/* ---- executor ----------------------------------------------------------- */
struct cw_queue {
    cw_executor *ex;
    uint32_t id;
    uint32_t index;
    cw__list runq;   /* FIFO of SCHEDULED tasks */
    uint64_t nrunq;
    cw__eq eq;       /* its scheduling entity */
    uint64_t spawned, completed, cancelled, panicked;
    uint64_t polls, cpu_ns, slices;
    uint64_t slices_ended[CW_SLICE_END_REASONS];
    uint64_t runnable_at;      /* clock when it became runnable */
    bool service_pending;      /* runnable, not yet served since */
    uint64_t poll_est;         /* its polls' recent length (round budget) */
    cw_hist queue_delay_ns;
    cw_hist service_delay_ns;
    uint64_t stalls;           /* polls past the stall threshold */
};

struct cw_cx {
    cw_executor *ex;
    cw__task *task; /* NULL outside a poll */
};

/* Size classes of task blocks: 16-byte steps up to 1 KiB. */
#define CW__CLASS_STEP 16
#define CW__NCLASSES 64

/* The sleepers (time.c): a binary min-heap of cw_sleep * ordered by
 * (deadline, seq); each sleep keeps its slot in cw__index. The driver's
 * one timer is armed, when armed, at armed_at <= the root's deadline. */
struct cw__timers {
    cw_sleep **heap;
    uint32_t n, cap;
    uint64_t seq;              /* next registration number */
    uint64_t armed_at;         /* deadline the driver timer was armed for */
    bool armed;
    bool firing;               /* in cw__timers_fire() */
};

struct cw_executor {
    const cw_driver_ops *ops;  /* the loop (loop.c is the one caller) */
    void *drv;                 /* its state */
    bool notify_watched;       /* the remote-wake fd is watched */
    uint64_t ntasks;           /* live tasks, internal ones included: the
                                  remote-wake fd is watched while nonzero
                                  (stats.tasks_live counts the user's only,
                                  and no statistic steers anything) */
    cw__shared *shared;
    cw_queue *queues;          /* by index (config order) */
    uint32_t *by_id;           /* indexes sorted by id */
    uint32_t nqueues;
    cw__eevdf sched;
    cw__eevdf_slot *sched_slots; /* sched's heaps: cw__eevdf_slots(nqueues) */

    uint64_t driver_yield_ns;
    uint32_t max_polls_per_yield;
    uint64_t *lat_val;         /* the distinct latency targets below
                                  driver_yield, shortest first (a rank
                                  indexes it); then their idle counts */
    bool catch_panics;
    bool hist_on;              /* histograms kept */
    bool plain;                /* no hooks, no histograms, no catch_panics,
                                  no stall detector, no task accounting:
                                  the poll loop's lean copy (executor.c) */
    bool acct_on;              /* task blocks have an X_ACCT slot */
    uint64_t stall_ns;         /* a longer poll is a stall; UINT64_MAX: off */
    FILE *stall_log;           /* where stall reports go; NULL: nowhere */
    bool diag;                 /* acct_on or a stall threshold:
                                  cw__poll_diag() after each poll */
    bool poll_wrapped;         /* catch_panics or a stall watchdog: each
                                  poll through poll_wrapped() */
    struct cw__watchdog *wd;   /* the stall watchdog (stall.c), or NULL */
    uint64_t (*now_ns)(void *);
    void *clock_arg;
    const cw_hooks *hooks;     /* &hooks_copy, or NULL: no hooks */
    cw_hooks hooks_copy;
    void *hooks_arg;

    /* run state */
    bool in_round;
    bool round_pending;
    bool idle;                 /* shared->sleeping was set */
    bool freeing;
    bool preempt;              /* end the slice after this poll */
    bool flush_pending;        /* a reply waits in libevent's buffers
                                  (cw__executor_flush_soon()) */
    uint64_t slice_start;
    uint64_t poll_start;       /* clock read before the poll in progress */
    uint64_t slice_end;
    uint64_t round_end;
    uint64_t yield_check;      /* clock at the last cw_should_yield() */
    uint64_t now_cache;        /* the latest clock reading in a round */
    uint64_t last_round_end;   /* clock at the end of the last round */
    bool last_round_left_work; /* it returned with runnable work */
    cw_cx cx;
    sigjmp_buf *panic_jmp;

    struct cw__clock clock;    /* the default clock's state */
    struct cw__timers timers;
    cw_fdwait *fdwaits;        /* waits that own an event (io.c) */
    cw__list partial[CW__NCLASSES]; /* slabs with room, by class */
    uint32_t nempty[CW__NCLASSES];  /* of them, slabs with no block out */
    struct cw_executor_stats stats;
};

static inline uint64_t cw__now(const cw_executor *ex)
{
    return ex->now_ns(ex->clock_arg);
}

/* The time a task or queue becomes runnable, for the delay histograms:
 * the latest reading inside a round, a fresh one outside. */
static inline uint64_t cw__stamp(cw_executor *ex)
{
    return ex->in_round ? ex->now_cache : cw__now(ex);
}

/* Hook calls: one predictable branch when no hooks are set. */
#define CW__HOOK(ex, name, ...)                                          \
    do {                                                                 \
        if (__builtin_expect((ex)->hooks != NULL, 0) && (ex)->hooks->name) \
            (ex)->hooks->name((ex)->hooks_arg, __VA_ARGS__);             \
    } while (0)

/* The core's part of an executor, no driver yet (loop.c adds it). */
int cw__executor_new(const cw_config *cfg, cw_executor **out);
void cw__executor_schedule(cw_executor *ex);
void cw__executor_yield_to_loop(cw_executor *ex); /* cw_cx_yield_to_loop() */
void cw__executor_flush_soon(cw_executor *ex);    /* a reply to write soon */
void cw__executor_round(cw_executor *ex);
void cw__executor_update_watch(cw_executor *ex);
void cw__inbox_drain(cw_executor *ex);
static inline cw_queue *cw__task_queue(const cw_executor *ex, const cw__task *t)
{
    return &ex->queues[t->qidx];
}

/* A task's accounting starts (spawn, or a remote spawn taken in): the
 * latest reading inside a round, a fresh one outside. */
static inline void cw__acct_init(cw_executor *ex, cw__task *t)
{
    *cw__task_acct(t) = (cw__acct){.spawned = cw__stamp(ex)};
}

/* Wake the sleeps due at now, unless sleeps are firing already (time.c). */
void cw__timers_catch_up(cw_executor *ex, uint64_t now);

/* Put a task at the tail of its queue; the queue may become runnable.
 * From outside a round, sleeps already due are woken first: they became
 * runnable before this task did (as a libevent pass runs expired timers
 * before the callbacks its other callbacks activate). */
static inline __attribute__((always_inline)) void cw__task_enqueue(cw_executor *ex, cw__task *t)
{
    if (!ex->in_round && ex->timers.n && !ex->timers.firing) {
        cw__timers_catch_up(ex, cw__now(ex));
        /* its own sleep was due, or a hook run by a wake there ended it */
        if (t->flags & (CW__T_SCHEDULED | CW__T_DONE))
            return;
    }
    cw_queue *q = &ex->queues[t->qidx];
    assert(!(t->flags & (CW__T_SCHEDULED | CW__T_DONE)));
    t->flags |= CW__T_SCHEDULED;
    cw__list_push_back(&q->runq, &t->link);
    q->nrunq++;
    uint64_t stamp = 0;
    if (ex->hist_on)
        *cw__task_stamp(t) = stamp = cw__stamp(ex);
    if (!q->eq.on_rq)
        cw__queue_runnable(ex, q, stamp);
    if (!ex->in_round)
        cw__executor_schedule(ex);
}

/* A wake on the executor thread: a running task is marked, to be queued
 * again after its poll (a yield: run_slice); an idle one is queued; one
 * queued or ended already is left alone. Inline: every local wake. */
static inline void cw__task_wake_local(cw_executor *ex, cw__task *t)
{
    uint16_t f = t->flags;
    if (f & CW__T_DONE)
        return;
    if (f & CW__T_RUNNING)
        t->flags = (uint16_t)(f | CW__T_NOTIFIED);
    else if (!(f & CW__T_SCHEDULED))
        cw__task_enqueue(ex, t);
}

#ifdef CW_CHECKED
/* The checked build, after a poll that returned CW_PENDING and was not
 * woken during it: one line on stderr if no wake is arranged either (no
 * waker clone outstanding, no remote wake on its way). (checked.c) */
void cw__checked_pending(const cw_executor *ex, const cw__task *t);
#endif

/* ---- the stall detector (stall.c) ---------------------------------------- */
/* Start the watchdog of a new executor (cfg->stall_watchdog): 0, -EBUSY
 * (the signal has the program's handler), -ENOMEM. Stopped (the thread
 * joined) by cw__watchdog_stop(), which cw_executor_free() calls. */
int cw__watchdog_start(cw_executor *ex, const cw_config *cfg);
void cw__watchdog_stop(cw_executor *ex);
/* The poll loop around each poll while a watchdog runs: the poll in
 * progress is published, then cleared. */
void cw__watchdog_begin(struct cw__watchdog *wd, const cw_queue *q, const cw__task *t);
void cw__watchdog_end(struct cw__watchdog *wd);
/* The watchdog sleeps until the next poll (tests wait for it). */
bool cw__watchdog_parked(const cw_executor *ex);
/* A poll of t ran ns, past the threshold: count, hook, log. Cold. */
void cw__stall(cw_executor *ex, cw_queue *q, cw__task *t, uint64_t ns);
/* After a poll of t that ended at `end` and took ns, with ex->diag (out
 * of line: see poll_wrapped() in executor.c): the task's accounting, the
 * stall test. */
void cw__poll_diag(cw_executor *ex, cw_queue *q, cw__task *t, uint64_t end, uint64_t ns);

/* ---- timers (time.c) ----------------------------------------------------- */
void cw__timers_fire(cw_executor *ex, uint64_t now); /* wake sleeps due at now */
void cw__executor_timers(cw_executor *ex);           /* the loop's timer fired */
void cw__timers_free(cw_executor *ex);               /* detach leftovers, free */
/* Check the heap (order, slots, owner, wakers, arming); aborts on a
 * mismatch. O(n). Built with CW_DEBUG (the test library), every
 * heap operation ends with it; tests call it. */
void cw__timers_check(const cw_executor *ex);

/* ---- fd readiness (io.c) ------------------------------------------------- */
void cw__fdwait_fired(cw_fdwait *w, short what);    /* the loop saw it ready */
void cw__fdwaits_free(cw_executor *ex);             /* free leftovers' events */

#endif
