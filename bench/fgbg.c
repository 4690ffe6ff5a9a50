/* fgbg.c - the headline benchmark: foreground latency while background work
 * soaks up the CPU, plain libevent against clockworker (issue 6).
 *
 * The workload is the Rust crate's (its README's table; tokio
 * current_thread there, a libevent event_base here):
 *
 * - One runtime thread, pinned to CPU 0, runs an event_base. A generator
 *   thread, pinned to CPU 1, submits --fg-count (default 5000) foreground
 *   tasks with Poisson arrivals at --rps (default 1000) per second. The
 *   arrival times and every task's work are drawn up front from a seeded RNG
 *   (--seed), so every variant gets the same sequence. (On a machine where
 *   this process may use one CPU only, both threads share it; the program
 *   says so.)
 * - A foreground task runs 1-3 segments of 100-500 us of CPU work each and
 *   sleeps 100-500 us between two segments. Per task the program measures
 *   the queue delay (submit -> first run) and the total latency (submit ->
 *   end of the last segment). The submit time is the generator's
 *   CLOCK_MONOTONIC read just before it hands the task over.
 * - --bg (default 8) background tasks loop for the whole run: 100-500 us of
 *   CPU, then a 100-500 us sleep (each task draws from its own seeded
 *   stream). Together they want about 4 CPUs, so they saturate the runtime
 *   thread. Background throughput = background iterations (CPU segments)
 *   completed per second between the generator's start and the end of the
 *   last foreground task.
 *
 * The same rules hold in every variant:
 * - Hand-over: the generator pushes the task onto one lock-free MPSC queue
 *   (Vyukov's intrusive queue) and then writes 1 to an eventfd, for every
 *   task. The runtime thread watches the eventfd with a plain persistent
 *   EV_READ event of the base; its callback drains the eventfd and starts
 *   every task it pops (libevent: event_active() of the task's event;
 *   clockworker: cw_spawn() on the FG queue).
 * - CPU work: a spin on CLOCK_MONOTONIC until the segment's time has passed
 *   (the crate's do_cpu_work does the same with Instant). The compiler
 *   cannot drop it, and other processes that take the CPU for a while do
 *   not make the run fall behind its arrivals. --burn cpu spins on the
 *   thread's CPU clock (CLOCK_THREAD_CPUTIME_ID, a syscall of ~0.5 us
 *   here) instead: a preempted segment then still does all its work
 *   afterwards. That is the honest measure for two_bases, whose background
 *   thread is preempted in mid-segment by the foreground thread (with wall
 *   time it counts such a segment as a whole iteration), but on a busy
 *   machine any stolen CPU then pushes the runtime towards overload.
 * - Granularity: a foreground segment is one callback (libevent) or one
 *   poll (clockworker), which then arms the sleep that follows it. So is
 *   a background segment in the libevent variants: a libevent callback
 *   cannot know that a more urgent event waits. A clockworker background
 *   task does what the library asks of CPU-bound work: it spins in chunks
 *   of --bg-chunk-us (default 10) us and calls cw_should_yield() after
 *   each; when told to, it returns PENDING (woken) and finishes the
 *   segment in later polls. This is the one difference in how the
 *   variants' tasks are written; --bg-chunk-us 0 runs each background
 *   segment in one poll, as libevent does.
 * - libevent's cached time: a libevent pass computes its wait for I/O from
 *   the time it cached when the pass began, so after long callbacks every
 *   timer of the base fires late by their length. clockworker refreshes
 *   it (event_base_update_cache_time) when it goes idle; plain libevent
 *   programs usually do not. The libevent variants refresh it before
 *   arming a sleep (see Sleeps), which is at the end of every callback
 *   but a foreground task's last; --lev-refresh refreshes it at the end
 *   of that one too (the strongest plain-libevent baseline).
 * - Latency target: while clockworker's foreground queue is idle, the
 *   executor returns to libevent within its latency target (the library's
 *   default, 50 us), so a request that arrives through the eventfd is
 *   seen within it. --fg-latency-us N (or none) sets it: the trade of
 *   background throughput against foreground queue delay. --idle-queue
 *   adds to every clockworker executor a configured queue of weight 1000
 *   that never gets a task (with the default target): it must cost the
 *   others nothing.
 * - Sleeps: plain libevent arms an evtimer per sleep; clockworker tasks
 *   await a cw_sleep. Every base is created with
 *   EVENT_BASE_FLAG_PRECISE_TIMER so that sleeps of 100-500 us mean that,
 *   and the libevent variants refresh the base's cached time
 *   (event_base_update_cache_time) before evtimer_add: libevent measures a
 *   timeout from the time it cached when the loop pass began, before the
 *   CPU segment ran, so without it every libevent sleep would be shorter
 *   than drawn by that segment (100-500 us) and the comparison unfair.
 *   clockworker's sleeps start at the executor's own clock reading.
 *   (The crate's tokio timer has 1 ms granularity, so its sleeps last a
 *   millisecond or more: its total latencies are not comparable with
 *   these, only the ratios between variants are.)
 * - The runtime thread runs event_base_dispatch() until the generator has
 *   submitted everything and every foreground task has finished (the last
 *   one calls event_base_loopbreak()); then the background tasks are
 *   stopped and freed. A watchdog timer (--timeout-s) ends a run that
 *   does not finish: the program then says how many tasks completed and
 *   exits 1.
 *
 * Variants (--variants a,b,...; default all, in this order):
 *   libevent_fg    plain libevent callbacks, foreground only (the baseline)
 *   libevent_fgbg  plain libevent, foreground and background
 *   libevent_prio  event_base_priority_init(base, 2): foreground events (and
 *                  the eventfd's) at priority 0, background at 1
 *   cw_fg          clockworker, foreground tasks only, on queue FG
 *   cw_fgbg        clockworker, queue FG weight 99 and BG weight 1, the
 *                  default scheduler settings
 *   two_bases      plain libevent on two threads, each with its own base,
 *                  both pinned to the runtime CPU: foreground at nice -20,
 *                  background at nice +19 where permitted (no coordination)
 *
 * Output (stdout): the crate's table (one column per variant, every cell
 * with its % against libevent_fg; the background row against
 * libevent_fgbg), then how the run compares with the targets.
 * A progress line goes to stderr while it runs.
 *   --json FILE  {"variants": {"<name>": {"queue_delay_us": {"p50","p90",
 *                "p99","p999"}, "total_latency_us": {...}, "bg_iter_per_s",
 *                "fg_completed"}}, "config": {...}} (with --repeat N, the
 *                medians, and each run under "runs")
 *   --csv FILE   variant,run,task,submit_us,queue_delay_us,total_latency_us:
 *                one row per foreground task per variant per run
 *   --repeat N   run the whole set N times; the table shows the median of
 *                each cell, the targets the median of the per-run ratios
 *   --nice N     run the runtime and generator threads at nice N in every
 *                variant (two_bases: its foreground thread stays at -20):
 *                on a shared machine, -20 keeps other processes from
 *                stealing the runtime's CPU. With autogroup on, the kernel
 *                shares a CPU between sessions first and thread nice counts
 *                only inside one, so the session's autogroup gets nice N
 *                too, until the program exits
 *   --quick      1000 tasks (same shape); --smoke: 200 tasks, to prove it
 *                works (make check); explicit options override both
 *   --loop NAME  libevent (the default; everything above), libuv, embed or
 *                uring (bench/loops.h): the same run on that loop, its raw
 *                variants NAME_fg and NAME_fgbg written as plain callbacks
 *                of that loop (libuv: a uv_idle_t starts a task, a
 *                uv_timer_t sleeps, ms resolution as libuv's; embed: the
 *                ppoll() host loop's deferred list and timer list; uring:
 *                a NOP request starts a task, an IORING_OP_TIMEOUT sleeps,
 *                a POLL_ADD watches the eventfd, on a ring of the bench)
 *                and the cw variants on that loop's executor; no
 *                libevent_prio or two_bases there. The hand-over, work and
 *                targets are the same, but on uring the executor owns its
 *                ring, so the cw variants' hand-over and watchdog are tasks
 *                of its FG queue (a cw_fdwait on the eventfd, a cw_sleep)
 *                instead of loop callbacks. A loop this build lacks, or a
 *                ring the kernel refuses: exit 2
 * Exit status: 0; 1 if a variant failed or did not complete every
 * foreground task; 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <clockworker.h>

#include "common.h"
#include "loops.h"

/* ---- settings ------------------------------------------------------------ */

#define DEFAULT_FG_COUNT 5000u
#define QUICK_FG_COUNT 1000u
#define SMOKE_FG_COUNT 200u /* test/check_fgbg.c relies on this number */
#define DEFAULT_RPS 1000.0
#define DEFAULT_BG 8u
#define DEFAULT_SEED 1u
#define WORK_MIN_US 100u /* CPU segments and sleeps: 100-500 us, uniform */
#define WORK_MAX_US 500u
#define MAX_SEGS 3u
#define DEFAULT_BG_CHUNK_US 10u /* clockworker background: cw_should_yield() */
#define FG_WEIGHT 99u
#define BG_WEIGHT 1u
#define FG_NICE (-20)
#define BG_NICE 19
#define PROGRESS_NS 250000000ull

enum { Q_FG = 1, Q_BG = 2, Q_IDLE = 3 };
#define IDLE_WEIGHT 1000u /* --idle-queue: configured, never used */
enum kind { K_LEV, K_CW, K_TWO };

/* K_LEV: the loop's own raw callbacks (libevent's on libevent: the
 * variants keep their libevent names there; "<loop>_fg", "<loop>_fgbg" on
 * the other loops, see vname()). */
static const struct variant {
    const char *name;
    enum kind kind;
    bool bg;       /* runs the background tasks */
    bool prio;     /* libevent priorities */
    bool libevent; /* on --loop libevent only */
} variants[] = {
    {"libevent_fg", K_LEV, false, false, false}, {"libevent_fgbg", K_LEV, true, false, false},
    {"libevent_prio", K_LEV, true, true, true},  {"cw_fg", K_CW, false, false, false},
    {"cw_fgbg", K_CW, true, false, false},       {"two_bases", K_TWO, true, false, true},
};
#define NVAR (sizeof variants / sizeof variants[0])
enum { V_LEV_FG = 0, V_LEV_FGBG = 1, V_CW_FG = 3, V_CW_FGBG = 4, V_TWO = 5 };

static int g_loop = BENCH_LIBEVENT; /* --loop */
static char vnames[NVAR][32];       /* the variants' names on g_loop */

static void set_vnames(void)
{
    for (size_t v = 0; v < NVAR; v++) {
        if (g_loop != BENCH_LIBEVENT && variants[v].kind == K_LEV)
            snprintf(vnames[v], sizeof vnames[v], "%s%s", bench_loop_name(g_loop),
                     strchr(variants[v].name, '_'));
        else
            snprintf(vnames[v], sizeof vnames[v], "%s", variants[v].name);
    }
}

static const char *vname(size_t v)
{
    return vnames[v];
}

struct opts {
    unsigned fg_count, bg, repeat, timeout_s;
    int nice; /* --nice: the runtime's and generator's threads */
    double rps;
    uint64_t seed;
    bool sel[NVAR];
    const char *json, *csv, *mode;
    const char *variants; /* --variants, parsed once --loop is known */
    unsigned bg_chunk_us;  /* --bg-chunk-us: clockworker background chunks */
    uint64_t fg_latency_ns; /* --fg-latency-us: FG's target, 0: the default */
    bool idle_queue;       /* --idle-queue */
};

/* ---- RNG, CPU work -------------------------------------------------------- */

static bool burn_cpu; /* --burn cpu */
static bool lev_refresh; /* --lev-refresh */

/* The clock CPU work spins on (--burn). */
static uint64_t burn_clock(void)
{
    return burn_cpu ? bench_thread_cpu_ns() : bench_mono_ns();
}

/* Busy CPU work: spin until us microseconds have passed (--burn cpu: until
 * this thread has used us microseconds of CPU). */
static void burn_us(uint32_t us)
{
    uint64_t end = burn_clock() + (uint64_t)us * 1000u;
    while (burn_clock() < end)
        ;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t draw_us(uint64_t *rng)
{
    return WORK_MIN_US + (uint32_t)(splitmix64(rng) % (WORK_MAX_US - WORK_MIN_US + 1));
}

/* ---- the hand-over: Vyukov's intrusive MPSC queue -------------------------- */

struct mpsc_node {
    _Atomic(struct mpsc_node *) next;
};

struct mpsc {
    _Atomic(struct mpsc_node *) head; /* producers push here */
    struct mpsc_node *tail;           /* the consumer pops here */
    struct mpsc_node stub;
};

static void mpsc_init(struct mpsc *q)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
}

static void mpsc_push(struct mpsc *q, struct mpsc_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    struct mpsc_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* The oldest node, or NULL when empty or when a push is half done (its
 * producer writes the eventfd after it, so the consumer comes back). */
static struct mpsc_node *mpsc_pop(struct mpsc *q)
{
    struct mpsc_node *tail = q->tail;
    struct mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (!next)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL;
    mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

/* ---- tasks and runs -------------------------------------------------------- */

/* What a foreground task does (the same in every variant and run). */
struct fgspec {
    uint64_t arrival_ns; /* after the generator's start */
    uint32_t cpu_us[MAX_SEGS];
    uint32_t sleep_us[MAX_SEGS - 1];
    unsigned nseg;
};

struct lev_fg;

/* One foreground task of one run: the hand-over node and its times. */
struct fgrec {
    struct mpsc_node node;
    const struct fgspec *spec;
    uint64_t submit_ns, first_ns, finish_ns; /* 0: not yet */
    struct lev_fg *live;                     /* libevent variants, while it runs */
};

struct lev_bg;

struct run {
    const struct opts *o;
    const struct variant *v;
    unsigned run_idx, vpos, vcount; /* for the progress line */
    const struct fgspec *spec;
    struct fgrec *rec;
    unsigned n;
    int rt_cpu, gen_cpu;

    struct bench_loop *loop;
    struct bench_fdw *notify;
    struct bench_cb *watchdog;
    int efd;
    struct mpsc q;
    cw_executor *ex;
    cw_queue *qfg, *qbg;
    cw_join **bgjoin;
    struct lev_bg *lbg;
    pthread_t bg_thread;
    bool bg_thread_started;

    unsigned done;
    atomic_uint done_pub, submitted;
    atomic_bool gen_stop, bg_stop, bg_failed;
    atomic_int bg_ready; /* two_bases: 1 running, -1 failed */
    _Atomic uint64_t bg_iters;
    uint64_t t0, t_end, bg_iters_end;
    bool timed_out;
    const char *err; /* what failed, or NULL */
    int nice_fg, nice_bg; /* two_bases: 0 or the errno of setpriority() */
    int nice_err;         /* --nice: 0 or the errno of setpriority() */
};

static bool progress_tty;

static void progress(struct run *r, const char *state)
{
    unsigned sub = atomic_load_explicit(&r->submitted, memory_order_relaxed);
    unsigned done = atomic_load_explicit(&r->done_pub, memory_order_relaxed);
    fprintf(stderr, "%sfgbg: run %u/%u, %s (%u/%u): submitted %u/%u, done %u%s%s%s",
            progress_tty ? "\r" : "", r->run_idx + 1, r->o->repeat, vname((size_t)(r->v - variants)), r->vpos + 1,
            r->vcount, sub, r->n, done, progress_tty ? "\033[K" : "", state,
            progress_tty ? "" : "\n");
    fflush(stderr);
}

/* The last foreground task ends the run: take the background count now. */
static void fg_finished(struct run *r, struct fgrec *rec)
{
    rec->finish_ns = bench_mono_ns();
    r->done++;
    atomic_store_explicit(&r->done_pub, r->done, memory_order_relaxed);
    if (r->done == r->n) {
        r->t_end = rec->finish_ns;
        r->bg_iters_end = atomic_load_explicit(&r->bg_iters, memory_order_relaxed);
        atomic_store_explicit(&r->bg_stop, true, memory_order_relaxed);
        bench_loop_break(r->loop);
    }
}

static void fail(struct run *r, const char *what)
{
    if (!r->err)
        r->err = what;
    bench_loop_break(r->loop);
}

/* -- the loop's raw callbacks (plain libevent): one callback per segment --
 * bench/loops.c's bench_cb: an evtimer on libevent (event_active to start,
 * evtimer_add after refreshing the cached time, see Sleeps), uv_idle_t and
 * uv_timer_t on libuv, the host's deferred and timer lists on embed. */

struct lev_fg {
    struct bench_cb *cb;
    struct run *r;
    struct fgrec *rec;
    unsigned seg;
};

static void lev_fg_cb(void *arg)
{
    struct lev_fg *t = arg;
    const struct fgspec *sp = t->rec->spec;
    if (t->seg == 0)
        t->rec->first_ns = bench_mono_ns();
    burn_us(sp->cpu_us[t->seg]);
    if (t->seg + 1 < sp->nseg) {
        uint64_t ns = (uint64_t)sp->sleep_us[t->seg] * 1000u;
        t->seg++;
        if (bench_cb_after(t->cb, ns) < 0) /* refreshes the cached time: see Sleeps */
            fail(t->r, "evtimer_add");
        return;
    }
    if (lev_refresh)
        bench_loop_refresh(t->r->loop);
    t->rec->live = NULL;
    fg_finished(t->r, t->rec);
    bench_cb_free(t->cb);
    free(t);
}

static void lev_fg_start(struct run *r, struct fgrec *rec)
{
    struct lev_fg *t = malloc(sizeof *t);
    if (!t) {
        fail(r, "malloc");
        return;
    }
    t->r = r;
    t->rec = rec;
    t->seg = 0;
    if (!(t->cb = bench_cb_new(r->loop, lev_fg_cb, t, r->v->prio ? 0 : -1))) {
        free(t);
        fail(r, "event_assign");
        return;
    }
    rec->live = t;
    bench_cb_now(t->cb);
}

struct lev_bg {
    struct bench_cb *cb;
    struct bench_loop *loop;
    struct run *r;
    uint64_t rng;
};

static void lev_bg_cb(void *arg)
{
    struct lev_bg *b = arg;
    if (atomic_load_explicit(&b->r->bg_stop, memory_order_relaxed))
        return; /* not re-armed: the base runs out of events */
    uint32_t cpu = draw_us(&b->rng);
    uint32_t sl = draw_us(&b->rng);
    burn_us(cpu);
    atomic_fetch_add_explicit(&b->r->bg_iters, 1, memory_order_relaxed);
    if (bench_cb_after(b->cb, (uint64_t)sl * 1000u) < 0) { /* see Sleeps */
        /* may be two_bases's background thread: its own base, no r->err */
        atomic_store(&b->r->bg_failed, true);
        bench_loop_break(b->loop);
    }
}

static uint64_t bg_seed(const struct opts *o, unsigned i)
{
    uint64_t x = o->seed ^ (0xb6e0000000000000ull + i);
    return splitmix64(&x);
}

static void lev_bg_free(struct lev_bg *b, unsigned n)
{
    if (!b)
        return;
    for (unsigned i = 0; i < n; i++)
        bench_cb_free(b[i].cb);
    free(b);
}

/* Start the background tasks on loop (priority 1 when it has two). */
static struct lev_bg *lev_bg_start(struct run *r, struct bench_loop *loop, bool prio)
{
    struct lev_bg *b = calloc(r->o->bg ? r->o->bg : 1, sizeof *b);
    if (!b)
        return NULL;
    for (unsigned i = 0; i < r->o->bg; i++) {
        b[i].r = r;
        b[i].loop = loop;
        b[i].rng = bg_seed(r->o, i);
        if (!(b[i].cb = bench_cb_new(loop, lev_bg_cb, &b[i], prio ? 1 : -1))) {
            lev_bg_free(b, i);
            return NULL;
        }
    }
    for (unsigned i = 0; i < r->o->bg; i++)
        bench_cb_now(b[i].cb);
    return b;
}

/* -- clockworker: one poll per segment -- */

struct cw_fg {
    cw_pt pt;
    cw_sleep nap;
    struct run *r;
    struct fgrec *rec;
    unsigned seg;
};

static cw_poll cw_fg_poll(void *state, cw_cx *cx)
{
    struct cw_fg *t = state;
    CW_BEGIN(&t->pt);
    t->rec->first_ns = bench_mono_ns();
    for (t->seg = 0;; t->seg++) {
        burn_us(t->rec->spec->cpu_us[t->seg]);
        if (t->seg + 1 >= t->rec->spec->nseg)
            break;
        cw_sleep_init(&t->nap, (uint64_t)t->rec->spec->sleep_us[t->seg] * 1000u);
        CW_AWAIT(&t->pt, cw_sleep_poll(&t->nap, cx));
    }
    fg_finished(t->r, t->rec);
    CW_END(&t->pt);
}

static void cw_fg_drop(void *state)
{
    struct cw_fg *t = state;
    cw_sleep_drop(&t->nap);
}

struct cw_bg {
    cw_pt pt;
    cw_sleep nap;
    struct run *r;
    uint64_t rng;
    uint64_t left_ns, chunk_ns; /* of the segment in progress; 0: whole */
    uint32_t sleep_us;
};

/* Spin for what is left of the segment, asking cw_should_yield() after
 * every chunk: true when the segment is done, false when told to yield
 * (b->left_ns keeps the rest). */
static bool cw_bg_burn(struct cw_bg *b, cw_cx *cx)
{
    uint64_t t = burn_clock(), end = t + b->left_ns;
    for (;;) {
        uint64_t stop = b->chunk_ns && end - t > b->chunk_ns ? t + b->chunk_ns : end;
        while ((t = burn_clock()) < stop)
            ;
        if (t >= end)
            return true;
        if (cw_should_yield(cx)) {
            b->left_ns = end - t;
            return false;
        }
    }
}

static cw_poll cw_bg_poll(void *state, cw_cx *cx)
{
    struct cw_bg *b = state;
    CW_BEGIN(&b->pt);
    for (;;) {
        b->left_ns = (uint64_t)draw_us(&b->rng) * 1000u;
        b->sleep_us = draw_us(&b->rng);
        while (!cw_bg_burn(b, cx))
            CW_YIELD(&b->pt, cx);
        atomic_fetch_add_explicit(&b->r->bg_iters, 1, memory_order_relaxed);
        cw_sleep_init(&b->nap, (uint64_t)b->sleep_us * 1000u);
        CW_AWAIT(&b->pt, cw_sleep_poll(&b->nap, cx));
    }
    CW_END(&b->pt);
}

static void cw_bg_drop(void *state)
{
    struct cw_bg *b = state;
    cw_sleep_drop(&b->nap);
}

/* -- the runtime thread's side of the hand-over -- */

static void notify_cb(void *arg)
{
    struct run *r = arg;
    uint64_t v;
    struct mpsc_node *n;
    if (read(r->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        fail(r, "read(eventfd)");
    while ((n = mpsc_pop(&r->q))) {
        struct fgrec *rec = (struct fgrec *)((char *)n - offsetof(struct fgrec, node));
        if (r->v->kind == K_CW) {
            struct cw_fg init = {.r = r, .rec = rec};
            if (cw_spawn(r->qfg, cw_fg_poll, &init, sizeof init, cw_fg_drop, NULL) < 0)
                fail(r, "cw_spawn");
        } else {
            lev_fg_start(r, rec);
        }
    }
}

static void watchdog_cb(void *arg)
{
    struct run *r = arg;
    r->timed_out = true;
    bench_loop_break(r->loop);
}

/* ---- threads ---------------------------------------------------------------- */

static int pin_self(int cpu)
{
    cpu_set_t set;
    if (cpu < 0)
        return 0;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* This thread's nice value: 0 or the errno of setpriority(). */
static int set_nice(int nice)
{
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) < 0)
        return errno ? errno : EPERM;
    return 0;
}

/* Autogroup (CONFIG_SCHED_AUTOGROUP, /proc/sys/kernel/sched_autogroup_enabled):
 * the kernel first shares a CPU fairly between sessions, and thread nice
 * values count only inside one. So --nice also sets the nice of this
 * session's autogroup for the run and puts it back at exit (or on SIGINT,
 * SIGTERM). */
static int ag_old = 100; /* 100: not changed */

static int autogroup_set(int nice)
{
    char buf[32];
    int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
    int len = snprintf(buf, sizeof buf, "%d", nice);
    int err = 0;
    if (fd < 0)
        return errno;
    if (write(fd, buf, (size_t)len) != len)
        err = errno ? errno : EIO;
    close(fd);
    return err;
}

static void autogroup_restore(void)
{
    if (ag_old != 100)
        autogroup_set(ag_old);
}

static void on_signal(int sig)
{
    autogroup_restore(); /* open, write, close: async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* 0, or the errno that kept the session's autogroup nice from changing. */
static int autogroup_nice(int nice)
{
    FILE *f = fopen("/proc/self/autogroup", "r");
    int old, err;
    if (!f)
        return errno;
    if (fscanf(f, "/autogroup-%*d nice %d", &old) != 1) {
        fclose(f);
        return EINVAL;
    }
    fclose(f);
    if (old == nice)
        return 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if ((err = autogroup_set(nice)) != 0)
        return err;
    ag_old = old;
    atexit(autogroup_restore);
    return 0;
}

static void *gen_main(void *arg)
{
    struct run *r = arg;
    uint64_t next_progress = r->t0 + PROGRESS_NS;

    pin_self(r->gen_cpu);
    if (r->o->nice)
        set_nice(r->o->nice);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (unsigned i = 0; i < r->n; i++) {
        uint64_t due = r->t0 + r->spec[i].arrival_ns;
        struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        if (atomic_load_explicit(&r->gen_stop, memory_order_relaxed))
            return NULL;
        struct fgrec *rec = &r->rec[i];
        rec->submit_ns = bench_mono_ns();
        mpsc_push(&r->q, &rec->node);
        uint64_t one = 1;
        if (write(r->efd, &one, sizeof one) < 0)
            perror("fgbg: write(eventfd)");
        atomic_store_explicit(&r->submitted, i + 1, memory_order_relaxed);
        if (progress_tty && rec->submit_ns >= next_progress) {
            progress(r, "");
            next_progress += PROGRESS_NS;
        }
    }
    /* everything is submitted: keep the progress line going until the end */
    while (!atomic_load_explicit(&r->gen_stop, memory_order_relaxed)) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        if (progress_tty && bench_mono_ns() >= next_progress) {
            progress(r, "");
            next_progress += PROGRESS_NS;
        }
    }
    return NULL;
}

/* two_bases: the background thread, with its own base, on the same CPU. */
static void *bg_main(void *arg)
{
    struct run *r = arg;
    struct bench_loop *loop;
    struct lev_bg *b = NULL;

    pin_self(r->rt_cpu);
    r->nice_bg = set_nice(BG_NICE);
    if (!(loop = bench_loop_new(BENCH_LIBEVENT, true)) || !(b = lev_bg_start(r, loop, false))) {
        bench_loop_free(loop);
        atomic_store(&r->bg_ready, -1);
        return NULL;
    }
    atomic_store(&r->bg_ready, 1);
    /* returns when every background task has seen bg_stop */
    bench_loop_run(loop);
    lev_bg_free(b, r->o->bg);
    bench_loop_free(loop);
    return NULL;
}

static int setup(struct run *r)
{
    const struct variant *v = r->v;
    int prio = v->prio ? 0 : -1;

    if (!(r->loop = bench_loop_new(g_loop, true)))
        return r->err = "event_base_new", -1;
    if (v->prio && bench_loop_priorities(r->loop, 2) < 0)
        return r->err = "event_base_priority_init", -1;
    if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return r->err = "eventfd", -1;

    /* The executor before the hand-over and the watchdog: on uring they
     * are tasks of its FG queue (it owns the ring; bench/loops.h). */
    if (v->kind == K_CW) {
        cw_config *cfg = cw_config_new();
        int err = -ENOMEM;
        if (!cfg || (err = cw_config_add_queue(cfg, Q_FG, FG_WEIGHT)) < 0
            || (err = cw_config_add_queue(cfg, Q_BG, BG_WEIGHT)) < 0
            || (r->o->fg_latency_ns
                && (err = cw_config_set_queue_latency(cfg, Q_FG, r->o->fg_latency_ns)) < 0)
            || (r->o->idle_queue && (err = cw_config_add_queue(cfg, Q_IDLE, IDLE_WEIGHT)) < 0)
            || (err = bench_loop_executor(r->loop, cfg, &r->ex)) < 0) {
            cw_config_free(cfg);
            return r->err = "cw_executor_new", -1;
        }
        cw_config_free(cfg);
        r->qfg = cw_executor_queue(r->ex, Q_FG);
        r->qbg = cw_executor_queue(r->ex, Q_BG);
        bench_loop_task_queue(r->loop, r->qfg);
    }
    if (!(r->notify = bench_fd_watch(r->loop, r->efd, notify_cb, r, prio))
        || !(r->watchdog = bench_cb_new(r->loop, watchdog_cb, r, prio)))
        return r->err = "event_new", -1;
    if (bench_cb_after(r->watchdog, (uint64_t)r->o->timeout_s * 1000000000u) < 0)
        return r->err = "event_add", -1;
    if (!v->bg)
        return 0;
    switch (v->kind) {
    case K_LEV:
        if (!(r->lbg = lev_bg_start(r, r->loop, v->prio)))
            return r->err = "background tasks", -1;
        break;
    case K_CW:
        if (!(r->bgjoin = calloc(r->o->bg ? r->o->bg : 1, sizeof *r->bgjoin)))
            return r->err = "calloc", -1;
        for (unsigned i = 0; i < r->o->bg; i++) {
            struct cw_bg init = {.r = r,
                                 .rng = bg_seed(r->o, i),
                                 .chunk_ns = (uint64_t)r->o->bg_chunk_us * 1000u};
            if (cw_spawn(r->qbg, cw_bg_poll, &init, sizeof init, cw_bg_drop, &r->bgjoin[i]) < 0)
                return r->err = "cw_spawn", -1;
        }
        break;
    case K_TWO:
        if (pthread_create(&r->bg_thread, NULL, bg_main, r) != 0)
            return r->err = "pthread_create", -1;
        r->bg_thread_started = true;
        while (atomic_load(&r->bg_ready) == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&r->bg_ready) < 0)
            return r->err = "background thread", -1;
        break;
    }
    return 0;
}

static void teardown(struct run *r)
{
    struct mpsc_node *n;
    atomic_store(&r->bg_stop, true);
    if (r->bg_thread_started)
        pthread_join(r->bg_thread, NULL);
    lev_bg_free(r->lbg, r->o->bg);
    for (unsigned i = 0; i < r->n; i++) {
        if (r->rec[i].live) {
            bench_cb_free(r->rec[i].live->cb);
            free(r->rec[i].live);
            r->rec[i].live = NULL;
        }
    }
    if (r->bgjoin) {
        for (unsigned i = 0; i < r->o->bg; i++) {
            if (r->bgjoin[i]) {
                cw_join_abort(r->bgjoin[i]);
                cw_join_free(r->bgjoin[i]);
            }
        }
        free(r->bgjoin);
    }
    cw_executor_free(r->ex);
    while ((n = mpsc_pop(&r->q)))
        ;
    bench_fd_unwatch(r->notify);
    bench_cb_free(r->watchdog);
    if (r->efd >= 0)
        close(r->efd);
    bench_loop_free(r->loop);
}

/* The runtime thread: set up, start the generator, dispatch, tear down. */
static void *runtime_main(void *arg)
{
    struct run *r = arg;
    pthread_t gen;
    bool gen_started = false;

    pin_self(r->rt_cpu);
    if (r->o->nice)
        r->nice_err = set_nice(r->o->nice);
    if (r->v->kind == K_TWO)
        r->nice_fg = set_nice(FG_NICE);
    if (setup(r) == 0) {
        r->t0 = bench_mono_ns();
        if (pthread_create(&gen, NULL, gen_main, r) != 0)
            r->err = "pthread_create";
        else
            gen_started = true;
        if (gen_started && bench_loop_run(r->loop) < 0)
            r->err = "event_base_dispatch";
        if (r->done < r->n) {
            r->t_end = bench_mono_ns();
            r->bg_iters_end = atomic_load(&r->bg_iters);
        }
    }
    atomic_store(&r->gen_stop, true);
    if (gen_started)
        pthread_join(gen, NULL);
    teardown(r);
    return NULL;
}

/* ---- results ------------------------------------------------------------ */

enum { P50, P90, P99, P999, NP };
static const double pq[NP] = {0.50, 0.90, 0.99, 0.999};
static const char *const pkey[NP] = {"p50", "p90", "p99", "p999"};

struct result {
    bool ran;
    unsigned completed;
    double qd[NP], tl[NP]; /* us */
    double bg_rate;        /* iterations per second */
};

static int summarize(const struct run *r, struct result *res)
{
    uint64_t *qd = malloc((r->n ? r->n : 1) * sizeof *qd);
    uint64_t *tl = malloc((r->n ? r->n : 1) * sizeof *tl);
    size_t nq = 0, nt = 0;
    if (!qd || !tl) {
        free(qd);
        free(tl);
        return -1;
    }
    for (unsigned i = 0; i < r->n; i++) {
        const struct fgrec *rec = &r->rec[i];
        if (rec->first_ns)
            qd[nq++] = rec->first_ns - rec->submit_ns;
        if (rec->finish_ns)
            tl[nt++] = rec->finish_ns - rec->submit_ns;
    }
    qsort(qd, nq, sizeof *qd, bench_cmp_u64);
    qsort(tl, nt, sizeof *tl, bench_cmp_u64);
    memset(res, 0, sizeof *res);
    res->ran = true;
    res->completed = (unsigned)nt;
    for (int p = 0; p < NP; p++) {
        res->qd[p] = (double)bench_pct(qd, nq, pq[p]) / 1000.0;
        res->tl[p] = (double)bench_pct(tl, nt, pq[p]) / 1000.0;
    }
    if (r->t_end > r->t0)
        res->bg_rate = (double)r->bg_iters_end * 1e9 / (double)(r->t_end - r->t0);
    free(qd);
    free(tl);
    return 0;
}

static void write_csv_rows(FILE *f, const struct run *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        const struct fgrec *rec = &r->rec[i];
        fprintf(f, "%s,%u,%u,", vname((size_t)(r->v - variants)), r->run_idx + 1, i);
        if (rec->submit_ns)
            fprintf(f, "%.3f", (double)(rec->submit_ns - r->t0) / 1000.0);
        fputc(',', f);
        if (rec->first_ns)
            fprintf(f, "%.3f", (double)(rec->first_ns - rec->submit_ns) / 1000.0);
        fputc(',', f);
        if (rec->finish_ns)
            fprintf(f, "%.3f", (double)(rec->finish_ns - rec->submit_ns) / 1000.0);
        fputc('\n', f);
    }
}

/* Cell c of a result: 0..3 queue delay, 4..7 total latency, 8 bg rate. */
#define NCELL (2 * NP + 1)
static double cell(const struct result *res, int c)
{
    return c < NP ? res->qd[c] : c < 2 * NP ? res->tl[c - NP] : res->bg_rate;
}

static void set_cell(struct result *res, int c, double x)
{
    if (c < NP)
        res->qd[c] = x;
    else if (c < 2 * NP)
        res->tl[c - NP] = x;
    else
        res->bg_rate = x;
}

/* The median result of variant v over the runs. */
static void median_result(const struct result *all, unsigned runs, size_t v, struct result *out)
{
    double vals[runs ? runs : 1];
    memset(out, 0, sizeof *out);
    out->ran = true;
    out->completed = UINT32_MAX;
    for (unsigned k = 0; k < runs; k++)
        if (all[k * NVAR + v].completed < out->completed)
            out->completed = all[k * NVAR + v].completed;
    for (int c = 0; c < NCELL; c++) {
        for (unsigned k = 0; k < runs; k++)
            vals[k] = cell(&all[k * NVAR + v], c);
        set_cell(out, c, bench_median(vals, runs));
    }
}

/* The median over the runs of the ratio of a cell of variant v to the same
 * cell of variant base. */
static double median_ratio(const struct result *all, unsigned runs, size_t v, size_t base, int c)
{
    double vals[runs ? runs : 1];
    for (unsigned k = 0; k < runs; k++) {
        double b = cell(&all[k * NVAR + base], c);
        vals[k] = b > 0 ? cell(&all[k * NVAR + v], c) / b : INFINITY;
    }
    return bench_median(vals, runs);
}

static void fmt_ms(char *buf, size_t size, double us)
{
    double ms = us / 1000.0;
    snprintf(buf, size, ms < 1 ? "%.3fms" : ms < 100 ? "%.2fms" : "%.1fms", ms);
}

static const char *const row_name[NCELL] = {
    "p50 queue delay",   "p90 queue delay",   "p99 queue delay",   "p99.9 queue delay",
    "p50 total latency", "p90 total latency", "p99 total latency", "p99.9 total latency",
    "BG throughput (iter/s)",
};

static void print_table(const struct opts *o, const struct result *med)
{
    char cells[NCELL + 1][NVAR + 1][48];
    size_t width[NVAR + 1] = {0};
    bool has_fg = o->sel[V_LEV_FG], has_fgbg = o->sel[V_LEV_FGBG];

    snprintf(cells[0][0], sizeof cells[0][0], "Metric");
    for (int c = 0; c < NCELL; c++)
        snprintf(cells[c + 1][0], sizeof cells[0][0], "%s", row_name[c]);
    size_t col = 1;
    for (size_t v = 0; v < NVAR; v++) {
        if (!o->sel[v])
            continue;
        snprintf(cells[0][col], sizeof cells[0][0], "%s", vname(v));
        for (int c = 0; c < NCELL; c++) {
            char *s = cells[c + 1][col];
            size_t sz = sizeof cells[0][0];
            double x = cell(&med[v], c);
            if (c < 2 * NP) {
                double b = has_fg ? cell(&med[V_LEV_FG], c) : 0;
                char ms[24];
                fmt_ms(ms, sizeof ms, x);
                if (v != V_LEV_FG && b > 0)
                    snprintf(s, sz, "%s (%+.0f%%)", ms, 100.0 * (x / b - 1));
                else
                    snprintf(s, sz, "%s", ms);
            } else {
                double b = has_fgbg ? med[V_LEV_FGBG].bg_rate : 0;
                if (variants[v].bg && v != V_LEV_FGBG && b > 0)
                    snprintf(s, sz, "%.0f (%+.0f%%)", x, 100.0 * (x / b - 1));
                else
                    snprintf(s, sz, "%.0f", x);
            }
        }
        col++;
    }
    for (size_t j = 0; j < col; j++)
        for (int c = 0; c <= NCELL; c++)
            if (strlen(cells[c][j]) > width[j])
                width[j] = strlen(cells[c][j]);
    for (int c = 0; c <= NCELL; c++) {
        for (size_t j = 0; j < col; j++)
            printf(j ? " %*s |" : "| %-*s |", (int)width[j], cells[c][j]);
        putchar('\n');
        if (c == 0) {
            for (size_t j = 0; j < col; j++) {
                printf(j ? "" : "|");
                for (size_t k = 0; k < width[j] + (j ? 1 : 2); k++)
                    putchar('-');
                printf(j ? ":|" : "|");
            }
            putchar('\n');
        }
    }
    printf("Latency cells: %% against %s%s. BG throughput: %% against %s%s.\n", vname(V_LEV_FG),
           has_fg ? "" : " (not run)", vname(V_LEV_FGBG), has_fgbg ? "" : " (not run)");
}

/* The targets, when their variants ran. */
static void print_targets(const struct opts *o, const struct result *all)
{
    static const struct {
        size_t v, base;
        int cell;
        double limit;
        bool at_least;
    } t[] = {
        {V_CW_FGBG, V_LEV_FG, P50, 1.05, false},
        {V_CW_FGBG, V_LEV_FG, P90, 1.05, false},
        {V_CW_FGBG, V_LEV_FG, P99, 1.05, false},
        {V_CW_FGBG, V_LEV_FG, NP + P50, 1.05, false},
        {V_CW_FGBG, V_LEV_FG, NP + P90, 1.05, false},
        {V_CW_FGBG, V_LEV_FG, NP + P99, 1.05, false},
        {V_CW_FGBG, V_LEV_FGBG, 2 * NP, 0.95, true},
        {V_CW_FG, V_LEV_FG, P50, 1.03, false},
        {V_CW_FG, V_LEV_FG, P90, 1.03, false},
        {V_CW_FG, V_LEV_FG, P99, 1.03, false},
        {V_CW_FG, V_LEV_FG, P999, 1.03, false},
        {V_CW_FG, V_LEV_FG, NP + P50, 1.03, false},
        {V_CW_FG, V_LEV_FG, NP + P90, 1.03, false},
        {V_CW_FG, V_LEV_FG, NP + P99, 1.03, false},
        {V_CW_FG, V_LEV_FG, NP + P999, 1.03, false},
    };
    unsigned met = 0, total = 0;
    bool header = false;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!o->sel[t[i].v] || !o->sel[t[i].base])
            continue;
        if (!header) {
            printf("\nTargets (median over %u run%s of the per-run ratio):\n", o->repeat,
                   o->repeat == 1 ? "" : "s");
            header = true;
        }
        double ratio = median_ratio(all, o->repeat, t[i].v, t[i].base, t[i].cell);
        bool ok = t[i].at_least ? ratio >= t[i].limit : ratio <= t[i].limit;
        char label[64];
        snprintf(label, sizeof label, "%s %s", vname(t[i].v), row_name[t[i].cell]);
        printf("  %-32s %6.3f x %-13s (%s %.2f)  %s\n", label, ratio, vname(t[i].base),
               t[i].at_least ? ">=" : "<=", t[i].limit, ok ? "met" : "MISSED");
        met += ok;
        total++;
    }
    if (header)
        printf("  %u of %u met\n", met, total);
}

/* --fg-latency-us as JSON: a number of us, "none" or "default". */
static const char *fg_latency_str(const struct opts *o)
{
    static char buf[32];
    if (!o->fg_latency_ns)
        return "\"default\"";
    if (o->fg_latency_ns == CW_LATENCY_NONE)
        return "\"none\"";
    snprintf(buf, sizeof buf, "%" PRIu64, o->fg_latency_ns / 1000);
    return buf;
}

static void json_result(FILE *f, const struct result *r)
{
    fprintf(f, "\"queue_delay_us\": ");
    bench_json_nums(f, pkey, r->qd, NP, 3);
    fprintf(f, ", \"total_latency_us\": ");
    bench_json_nums(f, pkey, r->tl, NP, 3);
    fprintf(f, ", \"bg_iter_per_s\": %.1f, \"fg_completed\": %u", r->bg_rate, r->completed);
}

static void write_json(FILE *f, const struct opts *o, const struct result *all,
                       const struct result *med, int rt_cpu, int gen_cpu, int ncpu)
{
    bool first = true;
    fprintf(f, "{\"variants\": {");
    for (size_t v = 0; v < NVAR; v++) {
        if (!o->sel[v])
            continue;
        fprintf(f, "%s\n  \"%s\": {", first ? "" : ",", vname(v));
        first = false;
        json_result(f, &med[v]);
        if (o->repeat > 1) {
            fprintf(f, ", \"runs\": [");
            for (unsigned k = 0; k < o->repeat; k++) {
                fprintf(f, "%s{", k ? ", " : "");
                json_result(f, &all[k * NVAR + v]);
                fputc('}', f);
            }
            fputc(']', f);
        }
        fputc('}', f);
    }
    fprintf(f,
            "},\n \"config\": {\"fg_count\": %u, \"rps\": %.3f, \"bg\": %u, \"seed\": %" PRIu64
            ", \"repeat\": %u, \"mode\": \"%s\", \"burn\": \"%s\", \"nice\": %d, \"runtime_cpu\": %d, "
            "\"generator_cpu\": %d, \"cpus_available\": %d, \"bg_chunk_us\": %u, "
            "\"fg_latency_us\": %s, \"idle_queue\": %s, \"lev_refresh\": %s",
            o->fg_count, o->rps, o->bg, o->seed, o->repeat, o->mode, burn_cpu ? "cpu" : "wall", o->nice,
            rt_cpu, gen_cpu, ncpu, o->bg_chunk_us, fg_latency_str(o), o->idle_queue ? "true" : "false",
            lev_refresh ? "true" : "false");
    if (g_loop != BENCH_LIBEVENT) /* libevent's JSON stays as it was before --loop */
        fprintf(f, ", \"loop\": \"%s\"", bench_loop_name(g_loop));
    fprintf(f, "}}\n");
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fgbg [--fg-count N] [--rps X] [--bg N] [--seed S] [--variants a,b,...]\n"
            "            [--repeat N] [--json FILE] [--csv FILE] [--timeout-s N]\n"
            "            [--burn wall|cpu] [--nice N] [--bg-chunk-us N] [--lev-refresh]\n"
            "            [--fg-latency-us N|none] [--idle-queue]\n"
            "            [--quick | --smoke] [--loop libevent|libuv|embed|uring]\n"
            "variants:");
    for (size_t v = 0; v < NVAR; v++)
        if (g_loop == BENCH_LIBEVENT || !variants[v].libevent)
            fprintf(f, " %s", vname(v));
    fprintf(f, "\n");
}

static bool parse_variants(const char *s, bool *sel)
{
    const char *item;
    size_t len;
    bool any = false;
    if (!s)
        return false;
    memset(sel, 0, NVAR * sizeof *sel);
    if (strcmp(s, "all") == 0) {
        for (size_t v = 0; v < NVAR; v++)
            sel[v] = g_loop == BENCH_LIBEVENT || !variants[v].libevent;
        return true;
    }
    while (bench_list_next(&s, &item, &len)) {
        if (len == 0) /* "a,,b" is a,b */
            continue;
        const char *names[NVAR];
        for (size_t k = 0; k < NVAR; k++)
            names[k] = vname(k);
        long v = bench_name_index(item, len, names, sizeof names[0], NVAR);
        if (v < 0 || (g_loop != BENCH_LIBEVENT && variants[v].libevent))
            return false;
        sel[v] = any = true;
    }
    return any;
}

/* 0 ok, 1 --help, -1 usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    long long fg = -1, bg = -1;
    memset(o, 0, sizeof *o);
    o->rps = DEFAULT_RPS;
    o->seed = DEFAULT_SEED;
    o->repeat = 1;
    o->mode = "default";
    o->bg_chunk_us = DEFAULT_BG_CHUNK_US;
    o->variants = "all";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long x;
        int len = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--quick") == 0) {
            o->mode = "quick";
            continue;
        }
        if (strcmp(a, "--smoke") == 0) {
            o->mode = "smoke";
            continue;
        }
        if (strcmp(a, "--lev-refresh") == 0) {
            lev_refresh = true;
            continue;
        }
        if (strcmp(a, "--idle-queue") == 0) {
            o->idle_queue = true;
            continue;
        }
        i++; /* every other option takes a value */
        if (strcmp(a, "--fg-count") == 0 && bench_parse_uint(val, 10000000, &x) && x > 0)
            fg = (long long)x;
        else if (strcmp(a, "--bg") == 0 && bench_parse_uint(val, 100000, &x))
            bg = (long long)x;
        else if (strcmp(a, "--seed") == 0 && bench_parse_uint(val, UINT64_MAX, &x))
            o->seed = x;
        else if (strcmp(a, "--repeat") == 0 && bench_parse_uint(val, 1000, &x) && x > 0)
            o->repeat = (unsigned)x;
        else if (strcmp(a, "--timeout-s") == 0 && bench_parse_uint(val, 1000000, &x) && x > 0)
            o->timeout_s = (unsigned)x;
        else if (strcmp(a, "--json") == 0 && val && *val)
            o->json = val;
        else if (strcmp(a, "--csv") == 0 && val && *val)
            o->csv = val;
        else if (strcmp(a, "--variants") == 0 && val)
            o->variants = val;
        else if (strcmp(a, "--loop") == 0 && val && bench_loop_find(val) >= 0) {
            const char *why = bench_loop_unavailable(bench_loop_find(val));
            if (why) {
                fprintf(stderr, "fgbg: --loop %s: %s\n", val, why);
                return -2;
            }
            g_loop = bench_loop_find(val);
        }
        else if (strcmp(a, "--nice") == 0 && val && sscanf(val, "%d%n", &o->nice, &len) == 1
                 && !val[len] && o->nice >= -20 && o->nice <= 19)
            ;
        else if (strcmp(a, "--bg-chunk-us") == 0 && bench_parse_uint(val, 1000000, &x))
            o->bg_chunk_us = (unsigned)x;
        else if (strcmp(a, "--fg-latency-us") == 0 && val && strcmp(val, "none") == 0)
            o->fg_latency_ns = CW_LATENCY_NONE;
        else if (strcmp(a, "--fg-latency-us") == 0 && bench_parse_uint(val, 1000000000, &x) && x > 0)
            o->fg_latency_ns = x * 1000;
        else if (strcmp(a, "--burn") == 0 && val && strcmp(val, "cpu") == 0)
            burn_cpu = true;
        else if (strcmp(a, "--burn") == 0 && val && strcmp(val, "wall") == 0)
            burn_cpu = false;
        else if (strcmp(a, "--rps") == 0 && val) {
            char *end;
            errno = 0;
            o->rps = strtod(val, &end);
            if (errno || *end || !(o->rps >= 1 && o->rps <= 1e6)) {
                fprintf(stderr, "fgbg: bad value for --rps: %s\n", val);
                return -1;
            }
        } else {
            fprintf(stderr, "fgbg: unknown option, or a bad or missing value: %s%s%s\n", a,
                    val ? " " : "", val ? val : "");
            return -1;
        }
    }
    o->fg_count = fg >= 0                            ? (unsigned)fg
                  : strcmp(o->mode, "smoke") == 0 ? SMOKE_FG_COUNT
                  : strcmp(o->mode, "quick") == 0 ? QUICK_FG_COUNT
                                                  : DEFAULT_FG_COUNT;
    o->bg = bg >= 0 ? (unsigned)bg : DEFAULT_BG;
    set_vnames();
    if (!parse_variants(o->variants, o->sel)) {
        fprintf(stderr, "fgbg: unknown option, or a bad or missing value: --variants %s\n",
                o->variants);
        return -1;
    }
    if (!o->timeout_s)
        o->timeout_s = (unsigned)(3.0 * o->fg_count / o->rps) + 30;
    return 0;
}

/* The arrival schedule and each task's work: the same for every variant. */
static struct fgspec *make_specs(const struct opts *o)
{
    struct fgspec *s = calloc(o->fg_count, sizeof *s);
    uint64_t rng = o->seed;
    double t = 0;
    if (!s)
        return NULL;
    for (unsigned i = 0; i < o->fg_count; i++) {
        double u = (double)((splitmix64(&rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
        t += -log(u) / o->rps * 1e9;
        s[i].arrival_ns = (uint64_t)t;
        s[i].nseg = 1 + (unsigned)(splitmix64(&rng) % MAX_SEGS);
        for (unsigned k = 0; k < MAX_SEGS; k++)
            s[i].cpu_us[k] = draw_us(&rng);
        for (unsigned k = 0; k + 1 < MAX_SEGS; k++)
            s[i].sleep_us[k] = draw_us(&rng);
    }
    return s;
}

/* The CPUs for the runtime and the generator: the first two this process may
 * use (CPU 0 and 1 normally), or the same one when there is only one. */
static int pick_cpus(int *rt, int *gen)
{
    cpu_set_t set;
    int n = 0;
    *rt = *gen = -1;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (n == 0)
            *rt = c;
        else if (n == 1)
            *gen = c;
        n++;
    }
    if (n == 1)
        *gen = *rt;
    return n;
}

static void cpu_model(char *buf, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(buf, size, "unknown CPU");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *p = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && p) {
            p += strspn(p + 1, " \t") + 1;
            p[strcspn(p, "\n")] = '\0';
            snprintf(buf, size, "%s", p);
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    struct opts o;
    set_vnames();
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        if (rc != -2) /* -2: said why already */
            usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    progress_tty = isatty(STDERR_FILENO);

    int rt_cpu, gen_cpu, ncpu = pick_cpus(&rt_cpu, &gen_cpu);
    char model[128];
    struct utsname un;
    cpu_model(model, sizeof model);
    if (uname(&un) < 0)
        snprintf(un.release, sizeof un.release, "?");

    size_t nsel = 0;
    for (size_t v = 0; v < NVAR; v++)
        nsel += o.sel[v];

    struct fgspec *spec = make_specs(&o);
    struct fgrec *rec = calloc(o.fg_count, sizeof *rec);
    struct result *all = calloc((size_t)o.repeat * NVAR, sizeof *all);
    struct result med[NVAR];
    FILE *csv = NULL, *json = NULL;
    int status = 0;
    int nice_fg = -1, nice_bg = -1;
    bool nice_warned = false;

    if (!spec || !rec || !all) {
        fprintf(stderr, "fgbg: out of memory\n");
        return 1;
    }
    if (o.csv && !(csv = fopen(o.csv, "w"))) {
        fprintf(stderr, "fgbg: %s: %s\n", o.csv, strerror(errno));
        return 1;
    }
    if (o.json && !(json = fopen(o.json, "w"))) {
        fprintf(stderr, "fgbg: %s: %s\n", o.json, strerror(errno));
        return 1;
    }
    if (csv)
        fprintf(csv, "variant,run,task,submit_us,queue_delay_us,total_latency_us\n");

    printf("bench/fgbg: %u foreground tasks at %.0f/s (Poisson, seed %" PRIu64
           "), %u background tasks, %u run%s (%s), CPU segments spin on the %s clock\n",
           o.fg_count, o.rps, o.seed, o.bg, o.repeat, o.repeat == 1 ? "" : "s", o.mode,
           burn_cpu ? "thread's CPU (--burn cpu)" : "wall");
    printf("machine: %d CPU%s usable (%s), Linux %s, %s\n", ncpu, ncpu == 1 ? "" : "s", model,
           un.release, bench_loop_describe(g_loop));
    if (g_loop != BENCH_LIBEVENT)
        printf("loop: %s (--loop): %s_fg and %s_fgbg are plain %s callbacks (%s), the cw "
               "variants the executor on it\n",
               bench_loop_name(g_loop), bench_loop_name(g_loop), bench_loop_name(g_loop),
               g_loop == BENCH_EMBED ? "host-loop" : bench_loop_name(g_loop),
               g_loop == BENCH_LIBUV   ? "uv_idle_t to start, uv_timer_t to sleep: ms timers"
               : g_loop == BENCH_EMBED ? "its deferred list to start, its timer list to sleep"
               : g_loop == BENCH_URING ? "a NOP to start, IORING_OP_TIMEOUT to sleep, on the "
                                         "bench's ring"
                                       : "");
    if (g_loop == BENCH_URING)
        printf("uring: the executor owns its ring, so the cw variants' eventfd watch and "
               "watchdog are tasks of its FG queue (cw_fdwait, cw_sleep)\n");
    if (o.bg_chunk_us)
        printf("clockworker background tasks call cw_should_yield() every %u us of a segment "
               "(--bg-chunk-us)\n",
               o.bg_chunk_us);
    else
        printf("clockworker background tasks run each segment in one poll (--bg-chunk-us 0)\n");
    if (lev_refresh)
        printf("libevent callbacks refresh the base's cached time when they end (--lev-refresh)\n");
    if (o.fg_latency_ns == CW_LATENCY_NONE)
        printf("clockworker's foreground queue has no latency target (--fg-latency-us none)\n");
    else if (o.fg_latency_ns)
        printf("clockworker's foreground queue has the latency target %" PRIu64
               " us (--fg-latency-us)\n",
               o.fg_latency_ns / 1000);
    if (o.idle_queue)
        printf("clockworker executors have a configured, never used queue of weight %u "
               "(--idle-queue)\n",
               IDLE_WEIGHT);
    if (o.nice) {
        int err = autogroup_nice(o.nice);
        printf("runtime and generator threads at nice %d (--nice); this session's autogroup: "
               "%s\n",
               o.nice, err == ENOENT ? "none (autogroup off)" : err ? strerror(err) : "same nice");
    }
    if (ncpu >= 2)
        printf("runtime thread on CPU %d, generator thread on CPU %d\n", rt_cpu, gen_cpu);
    else
        printf("note: only one CPU is usable: runtime and generator threads share CPU %d\n",
               rt_cpu);
    fflush(stdout);

    for (unsigned k = 0; k < o.repeat; k++) {
        size_t vpos = 0;
        for (size_t v = 0; v < NVAR; v++) {
            if (!o.sel[v])
                continue;
            struct run r;
            pthread_t rt;
            memset(&r, 0, sizeof r);
            memset(rec, 0, o.fg_count * sizeof *rec);
            for (unsigned i = 0; i < o.fg_count; i++)
                rec[i].spec = &spec[i];
            r.o = &o;
            r.v = &variants[v];
            r.run_idx = k;
            r.vpos = (unsigned)vpos++;
            r.vcount = (unsigned)nsel;
            r.spec = spec;
            r.rec = rec;
            r.n = o.fg_count;
            r.rt_cpu = rt_cpu;
            r.gen_cpu = gen_cpu;
            r.efd = -1;
            mpsc_init(&r.q);
            atomic_init(&r.done_pub, 0);
            atomic_init(&r.submitted, 0);
            atomic_init(&r.gen_stop, false);
            atomic_init(&r.bg_stop, false);
            atomic_init(&r.bg_failed, false);
            atomic_init(&r.bg_ready, 0);
            atomic_init(&r.bg_iters, 0);
            progress(&r, progress_tty ? "" : " (starting)");
            if (pthread_create(&rt, NULL, runtime_main, &r) != 0) {
                fprintf(stderr, "fgbg: pthread_create failed\n");
                return 1;
            }
            pthread_join(rt, NULL);
            progress(&r, progress_tty ? "\n" : "");
            if (r.nice_err && !nice_warned) {
                fprintf(stderr, "fgbg: --nice %d: %s\n", o.nice, strerror(r.nice_err));
                nice_warned = true;
            }
            if (v == V_TWO) {
                nice_fg = r.nice_fg;
                nice_bg = r.nice_bg;
            }
            if (!r.err && atomic_load(&r.bg_failed))
                r.err = "a background task's evtimer_add";
            if (r.err) {
                fprintf(stderr, "fgbg: %s: %s failed\n", vname((size_t)(r.v - variants)), r.err);
                status = 1;
            }
            if (r.done < r.n) {
                fprintf(stderr, "fgbg: %s: only %u of %u foreground tasks completed%s\n",
                        vname((size_t)(r.v - variants)), r.done, r.n,
                        r.timed_out ? " (the watchdog ended the run; see --timeout-s)" : "");
                status = 1;
            }
            if (summarize(&r, &all[k * NVAR + v]) < 0) {
                fprintf(stderr, "fgbg: out of memory\n");
                return 1;
            }
            if (csv)
                write_csv_rows(csv, &r);
        }
    }

    for (size_t v = 0; v < NVAR; v++)
        if (o.sel[v])
            median_result(all, o.repeat, v, &med[v]);
    printf("\n");
    if (o.repeat > 1)
        printf("Median of %u runs per cell.\n", o.repeat);
    print_table(&o, med);
    if (o.sel[V_TWO])
        printf("two_bases: foreground thread nice %d: %s; background thread nice %+d: %s\n",
               FG_NICE, nice_fg == 0 ? "set" : nice_fg > 0 ? strerror(nice_fg) : "not tried",
               BG_NICE, nice_bg == 0 ? "set" : nice_bg > 0 ? strerror(nice_bg) : "not tried");
    print_targets(&o, all);
    if (status)
        printf("\nFAILED: not every variant completed every foreground task (see stderr)\n");

    if (json) {
        write_json(json, &o, all, med, rt_cpu, gen_cpu, ncpu);
        if (fclose(json) != 0) {
            fprintf(stderr, "fgbg: %s: %s\n", o.json, strerror(errno));
            status = 1;
        }
    }
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "fgbg: %s: %s\n", o.csv, strerror(errno));
        status = 1;
    }
    free(spec);
    free(rec);
    free(all);
    return status;
}
