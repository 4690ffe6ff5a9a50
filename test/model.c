/*
 * model.c - a model-based random test of the executor (see model.h).
 *
 * THE SET-UP
 *
 * One real executor (fake clock, catch_panics on, 3 or 4 queues with
 * random ids, weights and slices, random latency / driver_yield /
 * max_polls_per_yield / latency targets) on its own event_base, and a reference model of
 * what the headers promise. Operations come from a byte stream; tasks are
 * one poll function (m_poll) whose behaviour is set at spawn:
 *
 *   YIELD  wakes itself and returns PENDING until its K-th poll (READY);
 *          K may be "never" when a join handle can abort it
 *   HOG    the same, but burns time in chunks while cw_should_yield()
 *          says no (so a slice can end inside a poll's checks)
 *   PARK   clones its waker into the model (the driver wakes it later,
 *          from this thread or the helper thread) until its K-th poll
 *   SLEEP  K cw_sleep()s of random fake durations (0, 1-3 quanta, never)
 *   JOIN   awaits another task's join handle (cw_join_poll)
 * plus, per task: panic at poll P, abort itself (cw_join_abort on its own
 * handle) at poll A, spawn a child at poll S, and now and then wake some
 * parked task (locally or through the helper thread) from inside a poll.
 *
 * Each poll advances the fake clock by its cost (<= C_MAX). The model
 * does not re-implement EEVDF: it lets the scheduler choose the queue and
 * checks everything the choice must respect.
 *
 * WHAT IS CHECKED (after every poll and every operation)
 *
 * - A task is polled only when runnable: spawned or woken (any of: its
 *   own wake while running, a parked waker, a remote wake drained from
 *   the inbox, its sleep firing, the task it joins ending) and not polled
 *   since; never after it ended; never nested; on the executor whose cx
 *   it gets (cw_cx_executor/queue/waker).
 * - FIFO within a queue: the task polled is the head of the model's FIFO
 *   of its queue, where every enqueue (spawn, wake, re-enqueue of a task
 *   woken during its poll, inbox drain in push order, sleeps firing in
 *   (deadline, first-PENDING) order, join waiter) appends.
 * - Every drop function runs exactly once, at the documented moment
 *   (task.h, join.h, executor.h): during cw_join_abort(), cw_join_free()
 *   of a completed task, or cw_executor_free() (in spawn order); right
 *   after the poll that completed (no join handle held), panicked or
 *   aborted itself; never inside its own poll, never twice. Checked by a
 *   flag the model raises just before the call that may drop, and by
 *   checking the count right after.
 * - Join handles: cw_join_status() is -EAGAIN while live, then 0,
 *   -ECANCELED or CW_EPANIC as the model says; cw_join_state() is the
 *   finished state (its output field) only for status 0; the panic
 *   message is the task's; cw_join_poll() is READY exactly when the
 *   target ended, and the waiting task is woken when it ends (not when
 *   the handle was freed meanwhile).
 * - Rounds: the model predicts exactly in which turn of the loop a round
 *   runs (a round pending, or the notification fd signalled by a remote
 *   wake while the executor slept); a round polls at most
 *   max_polls_per_yield tasks and stops at the first poll after which one
 *   more poll as long as the queue's recent ones (the longest, decaying by
 *   1/8 per poll) would end past driver_yield, or past the shortest
 *   latency target of the idle queues whose target counts (set, or the
 *   queue has had a task);
 *   it does not return while tasks are runnable and budget is left
 *   (work conservation).
 * - Slices: every slice polls at least once and one queue only; a slice
 *   of the only runnable queue does not end while it has tasks (unless
 *   the round ends); a slice ends at the first poll that ends at least
 *   R_max past its start while another queue is runnable (R_max = the
 *   largest request any queue can get); a preemption is counted only for
 *   a slice during which some idle queue became runnable, and at most one
 *   per slice. cw_should_yield() agrees with those limits, with the
 *   chunk since the task last asked as the unit of the round's test.
 * - Stats, exactly: polls, spawned, completed, cancelled, panicked, live,
 *   cpu_ns (sum of the poll costs), slices, rounds, latency_rounds, wakes_local,
 *   wakes_remote, the poll-time histogram's count/sum/max; per queue:
 *   id, weight, runnable (FIFO length), spawned, completed, cancelled,
 *   panicked, polls, cpu_ns, slices, preemptions.
 * - The executor's events are in the base exactly while they have work
 *   (executor.h): the round event iff a round is pending, the
 *   notification fd iff a task is alive, the timer iff a sleep is pending.
 * - Memory: with count_allocs, every allocation of the library is
 *   released at the end (wakers freed last on the helper thread included).
 * - Fairness: see win_check() below.
 *
 * DETERMINISM
 *
 * Remote wakes are handed to a helper thread that performs them while the
 * main thread waits, so each lands in the inbox at a known point. The
 * libevent timer of the sleeps runs on real time, which the fake clock
 * does not drive: sleep durations and clock jumps are multiples of a
 * quantum Q (2^42 ns, 73 min) while all other fake time (poll costs, small
 * advances) stays below Q/4 per executor, so a deadline is crossed only by
 * a quantum jump and the timer, when armed, is always armed >= 3Q/4 of
 * real time ahead: it never fires by itself. The TIMER operation makes it
 * fire now (event_active() on the executor's timer event, as libevent
 * would at its deadline), so the model knows the turn in which sleeps are
 * woken by the timer (otherwise at the start of the next round).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "driver/libevent_int.h"
#include "model.h"

#define NQ_MAX 4
#define NSLOTS 256      /* task records (live, or ended and still referenced) */
#define LIVE_MAX 64     /* live tasks at most */
#define PAD_MAX 200     /* state sizes vary by up to this many bytes */
#define US 1000ull
#define MS 1000000ull
#define C_MAX (50 * US) /* the longest poll (fake ns) */
#define CHUNK (5 * US)  /* a HOG's unit of work between cw_should_yield() */
#define QUANTUM ((uint64_t)1 << 42)
#define CLOCK_START 1000000000ull
#define CLOCK_LIMIT ((uint64_t)1 << 62)
#define FINE_LIMIT (QUANTUM / 4)
#define OUT_MAGIC 0x5eedf00dc0ffee00ull

enum tstate { T_FREE, T_IDLE, T_SCHED, T_RUNNING, T_DONE };
enum tkind { K_YIELD, K_PARK, K_SLEEP, K_JOIN, K_HOG, K_NKINDS };
enum slstate { SL_NONE, SL_REL, SL_ABS, SL_FIRED };
enum { L_PARKED, L_JOIN, L_SLEEP, L_NLISTS };
enum { P_PENDING, P_READY, P_PANIC };
enum { H_NONE, H_WAKE, H_WAKE_BY_REF, H_WAKE_TWICE, H_FREE, H_QUIT };

typedef struct model model;

/* A task's state (what cw_spawn copies): header + npad pattern bytes. */
typedef struct mstate {
    model *m;
    uint32_t tid, gen;
    uint64_t out;     /* the output, written when it completes */
    cw_sleep sleep;   /* SLEEP tasks; dropped by m_drop for every task */
    unsigned char pad[];
} mstate;

/* The model of one task. */
typedef struct mtask {
    uint32_t gen;          /* bumped each time the record is reused */
    uint32_t exgen;        /* the executor it was spawned on */
    uint8_t st;            /* enum tstate */
    uint8_t kind;
    uint8_t q;             /* queue index */
    uint8_t sl;            /* enum slstate: its current cw_sleep */
    uint8_t drops;         /* times its drop function ran */
    bool notified;         /* woken while running: re-enqueued after */
    bool cancel;           /* aborted itself while running */
    bool has_join;         /* the model holds its join handle */
    bool drop_ok;          /* its drop function may run now */
    bool in_inbox;         /* pushed by a remote wake, not yet drained */
    bool sleeping;         /* its sleep is in the executor's heap */
    int32_t status;        /* -EAGAIN while live */
    cw_join *join;
    cw_waker *parked;      /* a clone of its waker the model holds */
    uint32_t polls, end_at, panic_at, abort_at, spawn_at, sleeps_left;
    uint32_t npad;
    uint64_t sl_dur, sl_deadline, sl_seq;
    uint64_t rng;
    uint64_t spawn_seq;    /* order in the executor's live list */
    int32_t next, prev;    /* FIFO links (next: free list when free) */
    int32_t target;        /* JOIN: the task awaited */
    uint32_t target_gen;
    int32_t waiter;        /* the task registered with cw_join_poll on me */
    uint32_t waiter_gen;
    int32_t li[L_NLISTS];  /* slot in the compact lists, -1 if absent */
} mtask;

typedef struct mq {
    cw_queue *q;
    uint32_t id, weight;
    uint64_t slice;        /* configured slice, 0: derived */
    int32_t head, tail;    /* FIFO of runnable tasks */
    uint32_t len;
    uint64_t spawned, completed, cancelled, panicked, polls, cpu, slices, preemptions;
    uint64_t poll_est;     /* its polls' recent length: the round budget */
    uint64_t lat;          /* latency target, CW_LATENCY_NONE: none */
    bool armed;            /* the target counts: set, or the queue was used */
} mq;

typedef struct helper {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int req;
    cw_waker *w;
    bool running;
} helper;

typedef struct reader {
    const uint8_t *p;
    size_t n, i;
    bool seeded, eof;
    uint64_t s, buf;
    int nbuf;
} reader;

struct model {
    const model_opts *o;
    model_result res;
    reader r;
    uint64_t seed;
    uint64_t op;

    struct event_base *base;
    cw_executor *ex;
    uint32_t exgen;
    uint64_t clk;          /* the fake clock */
    uint64_t fine;         /* fake time not in whole quanta, this executor */
    uint32_t nq;
    mq qs[NQ_MAX];
    uint64_t latency, min_slice, yield_ns, rmax;
    uint32_t max_polls;

    /* the executor's state as the model sees it */
    bool round_pending, in_round, idle, sleeping, fd_signaled, watched;
    bool timer_active, freeing;
    bool firing;            /* in fire() */
    int curr;              /* queue of the slice in progress, -1 */
    uint64_t slice_start, round_start;
    uint64_t budget;       /* the round's time budget: yield_ns or a target */
    uint64_t check_at;     /* the poll's start or its last cw_should_yield() */
    bool round_cut;        /* a slice of this round had a latency budget */
    uint32_t round_polls;
    bool must_end_slice, must_end_round, slice_wakeup, last_others;
    uint64_t pre_seen;     /* preemptions counted so far */
    uint64_t polls, spawned, completed, cancelled, panicked, live, cpu;
    uint64_t slices, rounds, latency_rounds, wakes_local, wakes_remote, max_cost;
    uint64_t sleep_seq, spawn_seq;
    int32_t cur;           /* task being polled, -1 */
    uint64_t cur_cost;

    mtask t[NSLOTS];
    int32_t free_head;
    uint32_t nfree;
    int32_t lists[L_NLISTS][NSLOTS];
    uint32_t nlist[L_NLISTS];
    int32_t inbox[NSLOTS];
    uint32_t inbox_n;
    int32_t due[NSLOTS];   /* drops that must have run at the next check */
    uint32_t due_gen[NSLOTS];
    uint32_t ndue;
    int32_t droplog[NSLOTS];
    uint32_t ndroplog;

    /* the fairness window */
    uint32_t win_mask;
    uint64_t win_s0[NQ_MAX];

    uint64_t total_spawned, total_drops, live_sum;
    helper h;
};

/* ---- failing ------------------------------------------------------------ */

static void model_fail(model *m, int line, const char *cond, const char *fmt, ...)
    CW_PRINTF(4, 5);

static void model_fail(model *m, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nmodel: check failed at model.c:%d: %s\n  ", line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  %s, operation %llu, executor %u, fake clock %llu, polls %llu\n",
            m->r.seeded ? "seeded run" : "byte input", (unsigned long long)m->op,
            m->exgen, (unsigned long long)m->clk, (unsigned long long)m->polls);
    if (m->r.seeded)
        fprintf(stderr, "  reproduce: check_model --seed %llu --ops %llu\n",
                (unsigned long long)m->seed, (unsigned long long)m->op + 1);
    fprintf(stderr, "  queues:");
    for (uint32_t i = 0; i < m->nq; i++)
        fprintf(stderr, " [%u id %u w %u len %u cpu %llu]", i, m->qs[i].id, m->qs[i].weight,
                m->qs[i].len, (unsigned long long)m->qs[i].cpu);
    fprintf(stderr, "\n  curr %d, live %llu, round_pending %d, in_round %d\n", m->curr,
            (unsigned long long)m->live, m->round_pending, m->in_round);
    fflush(stderr);
    abort();
}

#define MCHECK(m, cond, ...)                                   \
    do {                                                       \
        if (!(cond))                                           \
            model_fail((m), __LINE__, #cond, __VA_ARGS__);     \
    } while (0)

/* ---- randomness and input ------------------------------------------------ */

static uint64_t mix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t rd8(reader *r)
{
    if (r->seeded) {
        if (!r->nbuf) {
            r->buf = mix64(&r->s);
            r->nbuf = 8;
        }
        uint8_t b = (uint8_t)r->buf;
        r->buf >>= 8;
        r->nbuf--;
        return b;
    }
    if (r->i < r->n)
        return r->p[r->i++];
    r->eof = true;
    return 0;
}

/* ---- allocation counting --------------------------------------------------- */

static atomic_long g_blocks;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&g_blocks, 1);
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&g_blocks, 1);
    return q;
}

static void count_free(void *p)
{
    if (p)
        atomic_fetch_sub(&g_blocks, 1);
    free(p);
}

/* ---- the helper thread: remote wakes, one at a time ---------------------- */

static void *helper_main(void *arg)
{
    helper *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->req == H_NONE)
            pthread_cond_wait(&h->cv, &h->mu);
        int req = h->req;
        cw_waker *w = h->w;
        if (req == H_QUIT)
            break;
        pthread_mutex_unlock(&h->mu);
        switch (req) {
        case H_WAKE:
            cw_waker_wake(w);
            break;
        case H_WAKE_BY_REF:
            cw_waker_wake_by_ref(w);
            break;
        case H_WAKE_TWICE:
            cw_waker_wake_by_ref(w);
            cw_waker_wake_by_ref(w);
            break;
        case H_FREE:
            cw_waker_free(w);
            break;
        }
        pthread_mutex_lock(&h->mu);
        h->req = H_NONE;
        h->w = NULL;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Have the helper thread do req on w, and wait until it has. */
static void helper_do(model *m, int req, cw_waker *w)
{
    helper *h = &m->h;
    if (!h->running) {
        MCHECK(m, pthread_mutex_init(&h->mu, NULL) == 0, "mutex");
        MCHECK(m, pthread_cond_init(&h->cv, NULL) == 0, "cond");
        h->req = H_NONE;
        MCHECK(m, pthread_create(&h->th, NULL, helper_main, h) == 0, "helper thread");
        h->running = true;
    }
    pthread_mutex_lock(&h->mu);
    h->w = w;
    h->req = req;
    pthread_cond_broadcast(&h->cv);
    while (h->req != H_NONE)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void helper_stop(model *m)
{
    helper *h = &m->h;
    if (!h->running)
        return;
    pthread_mutex_lock(&h->mu);
    h->req = H_QUIT;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    h->running = false;
}

/* ---- compact lists of task ids (parked wakers, join handles, sleeps) ----- */

static void il_add(model *m, int l, int32_t tid)
{
    mtask *t = &m->t[tid];
    MCHECK(m, t->li[l] < 0, "task %d already on list %d", tid, l);
    t->li[l] = (int32_t)m->nlist[l];
    m->lists[l][m->nlist[l]++] = tid;
}

static void il_del(model *m, int l, int32_t tid)
{
    mtask *t = &m->t[tid];
    MCHECK(m, t->li[l] >= 0, "task %d not on list %d", tid, l);
    uint32_t i = (uint32_t)t->li[l];
    int32_t last = m->lists[l][--m->nlist[l]];
    m->lists[l][i] = last;
    m->t[last].li[l] = (int32_t)i;
    t->li[l] = -1;
}

static int32_t tid_of(model *m, const mtask *t)
{
    return (int32_t)(t - m->t);
}

/* ---- task records ------------------------------------------------------------ */

static void slots_init(model *m)
{
    m->free_head = -1;
    m->nfree = 0;
    for (int32_t i = NSLOTS - 1; i >= 0; i--) {
        m->t[i].st = T_FREE;
        m->t[i].next = m->free_head;
        m->free_head = i;
        m->nfree++;
        for (int l = 0; l < L_NLISTS; l++)
            m->t[i].li[l] = -1;
    }
}

/* Forget a task once nothing refers to it any more. */
static void maybe_reclaim(model *m, mtask *t)
{
    if (t->st != T_DONE || t->drops != 1 || t->has_join || t->parked || t->in_inbox
        || t->sleeping || tid_of(m, t) == m->cur)
        return;
    t->st = T_FREE;
    t->gen++;
    t->next = m->free_head;
    m->free_head = tid_of(m, t);
    m->nfree++;
}

static mtask *live_task(model *m, int32_t tid, uint32_t gen)
{
    if (tid < 0 || tid >= NSLOTS)
        return NULL;
    mtask *t = &m->t[tid];
    return t->st != T_FREE && t->gen == gen ? t : NULL;
}

/* ---- the fairness window ------------------------------------------------------ */

/*
 * Fairness. Over any stretch of service in which the set A of runnable
 * queues and their weights stay the same (a window: it closes when a
 * queue becomes runnable or idle, or a weight changes), with s_i the
 * service of queue i (the sum of its polls' costs, exact on the fake
 * clock) and T = Sum_{j in A} s_j:
 *
 *     dev_i = s_i - (w_i / W) * T,     W = Sum_{j in A} w_j.
 *
 * In EEVDF terms (eevdf.c), v_i advances by t * S / w_i when queue i runs
 * for t, V is the weighted average of the v_j, and queue i's lag in wall
 * time is L_i = w_i * (V - v_i) / S. While A is fixed V moves only with
 * the v_j, so Delta V = S * T / W and Delta v_i = S * s_i / w_i:
 *
 *     dev_i = L_i(start) - L_i(end),   hence |dev_i| <= 2 * max |L_i|.
 *
 * The lag of a runnable queue, with R the largest request any queue can
 * get (max of sched_latency, min_slice and the configured slices) and c
 * the longest poll (C_MAX):
 * - a queue is picked only when eligible (L_i >= 0) and runs one slice,
 *   at most R of wall time plus the poll that crosses its end, so its own
 *   running takes its lag at most R + c below 0; a queue picked alone
 *   (slice = the whole latency) and joined mid-slice starts the
 *   competition at most one saved lag (<= R: lags are clamped to one
 *   request when a queue leaves) below 0 and runs at most R + c more:
 *   L_i >= -(2R + c);
 * - a queue that joins or leaves moves the others' lags by their share
 *   (w_i / W) of the lag it brings or takes away (<= R, or the >= -(2R+c)
 *   above), and a wake placed during a poll uses V as of the poll's start
 *   (eevdf.c's XXX), off by at most c: we allow one more c;
 * - Sum_j L_j = 0, so the n - 1 others bound L_i from above.
 * So |L_i| <= (n - 1) * (2R + 2c) (an argument, not a proof: the lag
 * moved by joins and leaves is taken as one request per queue), and the
 * check is
 *
 *     |dev_i| <= LAG_K * (n - 1) * (R + c),   LAG_K = 4,   n = |A| >= 2.
 *
 * Conservative: over 6 million operations (30 seeds) the largest
 * |dev_i| seen was 0.34 of the bound. Not vacuous: windows run up to
 * seconds of service against bounds of 8-50 ms (the run counts the
 * windows longer than their bound: ~17,000 per million operations), and
 * a scheduler that ignores eligibility and deadlines (strict priority by
 * queue index), or charges one weight-1 queue as weight 2, or ignores
 * weights above 2, fails it within the fixed seed's first 100,000
 * operations.
 */
#define LAG_K 4

static uint32_t rq_mask(const model *m)
{
    uint32_t mk = 0;
    for (uint32_t i = 0; i < m->nq; i++)
        if (m->qs[i].len || m->curr == (int)i)
            mk |= 1u << i;
    return mk;
}

static void win_open(model *m)
{
    m->win_mask = rq_mask(m);
    for (uint32_t i = 0; i < m->nq; i++)
        m->win_s0[i] = m->qs[i].cpu;
}

static void win_check(model *m, bool closing)
{
    uint32_t mk = m->win_mask, n = 0;
    __int128 W = 0, T = 0;
    for (uint32_t i = 0; i < m->nq; i++) {
        uint64_t ds = m->qs[i].cpu - m->win_s0[i];
        if (!(mk >> i & 1)) {
            MCHECK(m, ds == 0, "queue %u ran %llu ns while not runnable", i,
                   (unsigned long long)ds);
            continue;
        }
        n++;
        W += m->qs[i].weight;
        T += ds;
    }
    if (n < 2)
        return;
    uint64_t bound = LAG_K * (uint64_t)(n - 1) * (m->rmax + C_MAX);
    for (uint32_t i = 0; i < m->nq; i++) {
        if (!(mk >> i & 1))
            continue;
        __int128 dev = (__int128)(m->qs[i].cpu - m->win_s0[i]) * W - (__int128)m->qs[i].weight * T;
        __int128 adev = dev < 0 ? -dev : dev;
        double ratio = (double)adev / (double)W / (double)bound;
        if (ratio > m->res.max_dev_ratio)
            m->res.max_dev_ratio = ratio;
        MCHECK(m, adev <= (__int128)bound * W,
               "fairness: queue %u (weight %u of %lld, %u runnable) got %llu ns of %llu in "
               "its window: deviation %.0f ns > bound %llu ns",
               i, m->qs[i].weight, (long long)W, n,
               (unsigned long long)(m->qs[i].cpu - m->win_s0[i]), (unsigned long long)T,
               (double)dev / (double)W, (unsigned long long)bound);
    }
    if (closing) {
        m->res.windows++;
        if (T > (__int128)bound)
            m->res.long_windows++;
        if (T > (__int128)m->res.max_window_ns)
            m->res.max_window_ns = (uint64_t)T;
    }
}

/* The set of runnable queues may have changed: close and reopen. */
static void win_sync(model *m)
{
    if (rq_mask(m) == m->win_mask)
        return;
    win_check(m, true);
    win_open(m);
}

/* ---- the model of the executor ----------------------------------------------- */

static void fifo_push(model *m, mtask *t)
{
    mq *q = &m->qs[t->q];
    int32_t tid = tid_of(m, t);
    t->next = -1;
    t->prev = q->tail;
    if (q->tail >= 0)
        m->t[q->tail].next = tid;
    else
        q->head = tid;
    q->tail = tid;
    q->len++;
    q->armed = true; /* a default target counts from the first task */
}

static void fifo_remove(model *m, mtask *t)
{
    mq *q = &m->qs[t->q];
    if (t->prev >= 0)
        m->t[t->prev].next = t->next;
    else
        q->head = t->next;
    if (t->next >= 0)
        m->t[t->next].prev = t->prev;
    else
        q->tail = t->prev;
    t->next = t->prev = -1;
    q->len--;
}

/* cw__executor_schedule() */
static void schedule(model *m)
{
    if (m->in_round || m->round_pending || m->freeing)
        return;
    if (m->idle) {
        m->idle = false;
        m->sleeping = false;
    }
    m->round_pending = true;
}

static void fire(model *m);

/* cw__task_enqueue(): at the tail of its queue; from outside a round the
 * sleeps already due go first (cw__timers_catch_up). */
static void enqueue(model *m, mtask *t)
{
    if (!m->in_round && m->nlist[L_SLEEP] && !m->firing && !m->freeing) {
        fire(m);
        if (t->st == T_SCHED || t->st == T_DONE) /* its own sleep was due, or ended */
            return;
    }
    mq *q = &m->qs[t->q];
    bool was_on = q->len || m->curr == t->q;
    fifo_push(m, t);
    t->st = T_SCHED;
    if (!was_on && m->curr >= 0)
        m->slice_wakeup = true; /* may preempt the running slice */
    win_sync(m);
    schedule(m);
}

/* cw__task_wake_local() */
static void wake_local(model *m, mtask *t)
{
    if (t->st == T_DONE)
        return;
    if (t->st == T_RUNNING)
        t->notified = true;
    else if (t->st != T_SCHED)
        enqueue(m, t);
}

/* A wake on the executor thread (cw_waker_wake_by_ref). */
static void api_wake_local(model *m, mtask *t)
{
    if (!m->ex || t->exgen != m->exgen || t->st == T_DONE)
        return; /* its executor is gone, or it ended: a no-op */
    m->wakes_local++;
    wake_local(m, t);
}

/* A wake from another thread: into the inbox, signalling if asleep. */
static void api_wake_remote(model *m, mtask *t)
{
    if (!m->ex || t->exgen != m->exgen)
        return; /* the inbox is closed */
    if (t->in_inbox)
        return;
    t->in_inbox = true;
    m->inbox[m->inbox_n++] = tid_of(m, t);
    if (m->sleeping) {
        m->sleeping = false;
        m->fd_signaled = true;
    }
}

/* cw__inbox_drain(): oldest first. */
static void drain(model *m)
{
    uint32_t n = m->inbox_n;
    m->inbox_n = 0;
    for (uint32_t i = 0; i < n; i++) {
        mtask *t = &m->t[m->inbox[i]];
        t->in_inbox = false;
        if (t->st != T_DONE) {
            m->wakes_remote++;
            m->res.wakes_remote++;
            wake_local(m, t);
        }
        maybe_reclaim(m, t);
    }
}

static void sleep_forget(model *m, mtask *t)
{
    if (t->sleeping) {
        t->sleeping = false;
        il_del(m, L_SLEEP, tid_of(m, t));
    }
}

/* Wake the sleeps due at the fake clock, in (deadline, seq) order. */
static void fire(model *m)
{
    int32_t due[NSLOTS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nlist[L_SLEEP]; i++) {
        int32_t tid = m->lists[L_SLEEP][i];
        if (m->t[tid].sl_deadline <= m->clk)
            due[n++] = tid;
    }
    for (uint32_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (uint32_t j = i; j > 0; j--) {
            mtask *a = &m->t[due[j - 1]], *b = &m->t[due[j]];
            if (a->sl_deadline < b->sl_deadline
                || (a->sl_deadline == b->sl_deadline && a->sl_seq < b->sl_seq))
                break;
            int32_t x = due[j];
            due[j] = due[j - 1];
            due[j - 1] = x;
        }
    m->firing = true;
    for (uint32_t i = 0; i < n; i++) {
        mtask *t = &m->t[due[i]];
        sleep_forget(m, t);
        t->sl = SL_FIRED;
        m->res.sleeps_fired++;
        api_wake_local(m, t);
    }
    m->firing = false;
}

/* Its drop function must run now (inside the call about to be made, or
 * right after the poll in progress). */
static void expect_drop(model *m, mtask *t)
{
    MCHECK(m, t->drops == 0 && !t->drop_ok, "task %d: second drop expected", tid_of(m, t));
    t->drop_ok = true;
    sleep_forget(m, t); /* the drop function drops the sleep */
    m->due[m->ndue] = tid_of(m, t);
    m->due_gen[m->ndue++] = t->gen;
}

static void check_due(model *m)
{
    for (uint32_t i = 0; i < m->ndue; i++) {
        mtask *t = live_task(m, m->due[i], m->due_gen[i]);
        if (!t)
            continue;
        MCHECK(m, t->drops == 1, "task %d: drop function did not run when it should have (%u runs)",
               m->due[i], t->drops);
        maybe_reclaim(m, t);
    }
    m->ndue = 0;
}

/* cw__task_end() */
static void task_end(model *m, mtask *t, int status)
{
    mq *q = &m->qs[t->q];
    if (t->st == T_SCHED)
        fifo_remove(m, t);
    t->st = T_DONE;
    t->status = status;
    t->notified = t->cancel = false;
    m->live--;
    if (status == 0) {
        m->completed++;
        q->completed++;
    } else if (status == CW_EPANIC) {
        m->panicked++;
        q->panicked++;
        m->res.panics++;
    } else {
        m->cancelled++;
        q->cancelled++;
        m->res.aborts++;
    }
    if (status != 0 || !t->has_join)
        expect_drop(m, t);
    else
        MCHECK(m, !t->sleeping, "task %d completed with a sleep pending", tid_of(m, t));
    mtask *w = live_task(m, t->waiter, t->waiter_gen);
    t->waiter = -1;
    if (w)
        api_wake_local(m, w);
    if (!m->live && !m->in_round)
        m->watched = false;
    win_sync(m);
}

static bool others_runnable(const model *m)
{
    for (uint32_t i = 0; i < m->nq; i++)
        if ((int)i != m->curr && m->qs[i].len)
            return true;
    return false;
}

/* ---- the executor: build, check, free ----------------------------------------- */

static uint64_t fake_clock(void *arg)
{
    return *(uint64_t *)arg;
}

static const uint32_t weights[] = {1, 1, 2, 3, 4, 8, 10, 50, 100, 1000, 5, 2, 1, 16, 3, 7};

static void exec_new(model *m)
{
    cw_config *cfg = cw_config_new();
    MCHECK(m, cfg, "cw_config_new");
    cw_config_set_histograms(cfg, true);
    uint8_t b = rd8(&m->r);
    m->nq = 3 + (b & 1);
    uint32_t idbase = rd8(&m->r);
    m->rmax = 0;
    for (uint32_t i = 0; i < m->nq; i++) {
        mq *q = &m->qs[i];
        memset(q, 0, sizeof *q);
        q->head = q->tail = -1;
        /* ids out of order, so that the id -> queue lookup is exercised */
        q->id = idbase * 16 + ((i * 7 + b) % 16);
        uint8_t x = rd8(&m->r);
        q->weight = weights[x % 16];
        MCHECK(m, cw_config_add_queue(cfg, q->id, q->weight) == 0, "add queue %u", q->id);
        if (x >= 192) {
            static const uint64_t slices[] = {100 * US, 300 * US, 1 * MS, 3 * MS};
            q->slice = slices[x % 4];
            MCHECK(m, cw_config_set_queue_slice(cfg, q->id, q->slice) == 0, "set slice");
        }
        /* latency targets: the default (from the first task on), none,
         * or one set (in force from the start; 3 ms: above driver_yield) */
        uint8_t y = rd8(&m->r);
        static const uint64_t lats[] = {20 * US, 30 * US, 100 * US, 3 * MS};
        q->lat = (y & 3) == 0 ? CW_DEFAULT_QUEUE_LATENCY_NS
                 : (y & 3) == 1 ? CW_LATENCY_NONE
                                : lats[(y >> 2) & 3];
        q->armed = (y & 3) >= 2;
        if ((y & 3) != 0)
            MCHECK(m, cw_config_set_queue_latency(cfg, q->id, q->lat) == 0, "set latency");
    }
    uint8_t c = rd8(&m->r);
    static const uint64_t lat[] = {2 * MS, 1 * MS, 4 * MS, 2 * MS};
    static const uint64_t minsl[] = {100 * US, 50 * US};
    static const uint64_t yield[] = {500 * US, 200 * US, 2 * MS, 500 * US};
    static const uint32_t maxp[] = {CW_DEFAULT_MAX_POLLS_PER_YIELD, 7, 500, 61};
    m->latency = lat[c & 3];
    m->min_slice = minsl[(c >> 2) & 1];
    m->yield_ns = yield[(c >> 3) & 3];
    m->max_polls = maxp[(c >> 5) & 3];
    cw_config_set_sched_latency(cfg, m->latency == 2 * MS ? 0 : m->latency); /* 0: default */
    cw_config_set_min_slice(cfg, m->min_slice);
    cw_config_set_driver_yield(cfg, m->yield_ns);
    cw_config_set_max_polls_per_yield(cfg, m->max_polls == CW_DEFAULT_MAX_POLLS_PER_YIELD ? 0 : m->max_polls);
    cw_config_set_catch_panics(cfg, true);
    cw_config_set_clock(cfg, fake_clock, &m->clk);
    m->rmax = m->latency > m->min_slice ? m->latency : m->min_slice;
    for (uint32_t i = 0; i < m->nq; i++)
        if (m->qs[i].slice > m->rmax)
            m->rmax = m->qs[i].slice;

    m->clk = CLOCK_START;
    m->fine = 0;
    m->base = event_base_new();
    MCHECK(m, m->base, "event_base_new");
    int err = cw_executor_new(m->base, cfg, &m->ex);
    MCHECK(m, err == 0, "cw_executor_new: %s", cw_strerror(err));
    cw_config_free(cfg);
    for (uint32_t i = 0; i < m->nq; i++) {
        mq *q = &m->qs[i];
        q->q = cw_executor_queue(m->ex, q->id);
        MCHECK(m, q->q && cw_queue_id(q->q) == q->id && cw_queue_weight(q->q) == q->weight
                      && cw_queue_executor(q->q) == m->ex,
               "queue %u (id %u) lookup", i, q->id);
    }
    MCHECK(m, cw_executor_now(m->ex) == CLOCK_START, "injected clock not used");
    m->exgen++;
    m->res.executors++;
    m->round_pending = m->in_round = m->idle = m->sleeping = false;
    m->fd_signaled = m->watched = m->timer_active = m->freeing = false;
    m->curr = -1;
    m->must_end_slice = m->must_end_round = m->slice_wakeup = m->last_others = false;
    m->pre_seen = 0;
    m->polls = m->spawned = m->completed = m->cancelled = m->panicked = m->live = m->cpu = 0;
    m->slices = m->rounds = m->latency_rounds = m->wakes_local = m->wakes_remote = m->max_cost = 0;
    m->sleep_seq = m->spawn_seq = 0;
    m->inbox_n = 0;
    win_open(m);
}

static void check_exec(model *m)
{
    struct cw_executor_stats st;
    if (!m->ex)
        return;
    MCHECK(m, cw_executor_stats(m->ex, &st) == 0, "cw_executor_stats");
#define EQ(field, want)                                                               \
    MCHECK(m, st.field == (want), "stats." #field " is %llu, model says %llu",       \
           (unsigned long long)st.field, (unsigned long long)(want))
    EQ(polls, m->polls);
    EQ(tasks_spawned, m->spawned);
    EQ(tasks_completed, m->completed);
    EQ(tasks_cancelled, m->cancelled);
    EQ(tasks_panicked, m->panicked);
    EQ(tasks_live, m->live);
    EQ(cpu_ns, m->cpu);
    EQ(slices, m->slices);
    EQ(rounds, m->rounds);
    EQ(latency_rounds, m->latency_rounds);
    EQ(preemptions, m->pre_seen);
    EQ(wakes_local, m->wakes_local);
    EQ(wakes_remote, m->wakes_remote);
    EQ(poll_ns.count, m->polls);
    EQ(poll_ns.sum, m->cpu);
    EQ(poll_ns.max, m->max_cost);
#undef EQ
    for (uint32_t i = 0; i < m->nq; i++) {
        mq *q = &m->qs[i];
        struct cw_queue_stats qs;
        MCHECK(m, cw_queue_stats(q->q, &qs) == 0, "cw_queue_stats");
#define QEQ(field, want)                                                              \
    MCHECK(m, qs.field == (want), "queue %u: stats." #field " is %llu, model says %llu", \
           i, (unsigned long long)qs.field, (unsigned long long)(want))
        QEQ(id, q->id);
        QEQ(weight, q->weight);
        QEQ(runnable, q->len);
        QEQ(tasks_spawned, q->spawned);
        QEQ(tasks_completed, q->completed);
        QEQ(tasks_cancelled, q->cancelled);
        QEQ(tasks_panicked, q->panicked);
        QEQ(polls, q->polls);
        QEQ(cpu_ns, q->cpu);
        QEQ(slices, q->slices);
        QEQ(preemptions, q->preemptions);
#undef QEQ
    }
    /* executor.h: its events are in the base only while they have work */
    struct levdrv *d = cw_driver_state(m->ex, &cw__libevent_ops);
    MCHECK(m, !!event_pending(d->round_ev, EV_TIMEOUT, NULL) == m->round_pending,
           "round event pending %d, model says %d", !!event_pending(d->round_ev, EV_TIMEOUT, NULL),
           m->round_pending);
    MCHECK(m, !!event_pending(d->notify_ev, EV_READ, NULL) == m->watched,
           "notification fd watched %d, model says %d (live %llu)",
           !!event_pending(d->notify_ev, EV_READ, NULL), m->watched,
           (unsigned long long)m->live);
    MCHECK(m, m->watched == (m->live > 0), "model: watched but no task alive");
    MCHECK(m, !!event_pending(d->timer_ev, EV_TIMEOUT, NULL) == (m->nlist[L_SLEEP] > 0),
           "timer event pending %d with %u sleeps pending",
           !!event_pending(d->timer_ev, EV_TIMEOUT, NULL), m->nlist[L_SLEEP]);
}

/* Every task record against the library, from the outside. */
static void check_tasks(model *m)
{
    for (int32_t i = 0; i < NSLOTS; i++) {
        mtask *t = &m->t[i];
        if (t->st == T_FREE)
            continue;
        MCHECK(m, t->st != T_RUNNING, "task %d running outside a poll", i);
        bool dropped = t->st == T_DONE && (t->status != 0 || !t->has_join);
        MCHECK(m, t->drops == (dropped ? 1 : 0), "task %d (state %d status %d join %d): drop ran %u times",
               i, t->st, t->status, t->has_join, t->drops);
        if (t->has_join)
            MCHECK(m, cw_join_status(t->join) == t->status, "task %d: join status %d, model says %d",
                   i, cw_join_status(t->join), t->status);
    }
}

/* Free the executor with whatever is pending: every live task is cancelled
 * and dropped here, each once (in an order the library does not promise:
 * it walks its slabs; the model ends them in spawn order). */
static void exec_free(model *m)
{
    int32_t order[NSLOTS];
    uint32_t n = 0;
    for (int32_t i = 0; i < NSLOTS; i++) {
        mtask *t = &m->t[i];
        if (t->st != T_FREE && t->exgen == m->exgen && t->st != T_DONE)
            order[n++] = i;
    }
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && m->t[order[j - 1]].spawn_seq > m->t[order[j]].spawn_seq; j--) {
            int32_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    /* the inbox closes first: its references go, no wake */
    int32_t closed[NSLOTS];
    uint32_t nclosed = m->inbox_n;
    for (uint32_t i = 0; i < m->inbox_n; i++) {
        closed[i] = m->inbox[i];
        m->t[m->inbox[i]].in_inbox = false;
    }
    m->inbox_n = 0;
    m->freeing = true;
    for (uint32_t i = 0; i < n; i++)
        task_end(m, &m->t[order[i]], -ECANCELED);
    m->ndroplog = 0;
    cw_executor_free(m->ex);
    m->ex = NULL;
    MCHECK(m, m->ndroplog == n, "cw_executor_free ran %u drops, %u tasks were live", m->ndroplog, n);
    bool seen[NSLOTS] = {false};
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = m->droplog[i];
        MCHECK(m, d >= 0 && d < NSLOTS && !seen[d], "cw_executor_free: drop %u was task %d: not live or dropped twice",
               i, d);
        seen[d] = true;
    }
    for (uint32_t i = 0; i < n; i++)
        MCHECK(m, seen[order[i]], "cw_executor_free: live task %d was not dropped", order[i]);
    check_due(m);
    for (uint32_t i = 0; i < nclosed; i++)
        maybe_reclaim(m, &m->t[closed[i]]);
    event_base_free(m->base);
    m->base = NULL;
    m->freeing = false;
    m->curr = -1;
    for (uint32_t i = 0; i < m->nq; i++)
        m->qs[i].head = m->qs[i].tail = -1, m->qs[i].len = 0;
    /* the sleeps of the ended tasks were dropped by their drop functions */
    MCHECK(m, m->nlist[L_SLEEP] == 0, "sleeps left after free");
}

/* ---- tasks ---------------------------------------------------------------------- */

static uint64_t expected_out(const mtask *t, int32_t tid)
{
    return OUT_MAGIC ^ ((uint64_t)tid << 32) ^ t->gen;
}

static void pad_check(model *m, const mstate *s, const mtask *t)
{
    for (uint32_t i = 0; i < t->npad; i++)
        MCHECK(m, s->pad[i] == (unsigned char)(s->tid * 31 + s->gen * 7 + i),
               "task %u: state byte %u corrupted", s->tid, i);
}

static void m_drop(void *state)
{
    mstate *s = state;
    model *m = s->m;
    MCHECK(m, s->tid < NSLOTS, "drop of an unknown task");
    mtask *t = &m->t[s->tid];
    MCHECK(m, t->st != T_FREE && t->gen == s->gen, "drop of task %u after the model forgot it", s->tid);
    MCHECK(m, m->cur != (int32_t)s->tid, "task %u dropped inside its own poll", s->tid);
    MCHECK(m, t->drops == 0, "task %u dropped twice", s->tid);
    MCHECK(m, t->drop_ok, "task %u dropped at the wrong moment (state %d, status %d, join %d)",
           s->tid, t->st, t->status, t->has_join);
    pad_check(m, s, t);
    t->drops++;
    t->drop_ok = false;
    m->total_drops++;
    if (m->freeing && m->ndroplog < NSLOTS)
        m->droplog[m->ndroplog++] = (int32_t)s->tid;
    cw_sleep_drop(&s->sleep); /* time.h: required for every embedded sleep */
}

static cw_poll m_poll(void *state, cw_cx *cx);

static uint8_t param8(model *m, mtask *parent)
{
    return parent ? (uint8_t)mix64(&parent->rng) : rd8(&m->r);
}

/* Spawn a task; from the driver (parent NULL) or from a poll. */
static void spawn(model *m, mtask *parent)
{
    uint8_t b[10];
    for (int i = 0; i < 10; i++)
        b[i] = param8(m, parent);
    if (m->live >= LIVE_MAX || m->nfree == 0)
        return;
    int32_t tid = m->free_head;
    mtask *t = &m->t[tid];
    m->free_head = t->next;
    m->nfree--;
    uint32_t gen = t->gen;
    memset(t, 0, sizeof *t);
    t->gen = gen;
    for (int l = 0; l < L_NLISTS; l++)
        t->li[l] = -1;
    t->exgen = m->exgen;
    t->q = (uint8_t)(b[0] % m->nq);
    static const uint8_t kinds[16] = {K_YIELD, K_YIELD, K_YIELD, K_YIELD, K_PARK, K_PARK,
                                      K_PARK, K_PARK, K_SLEEP, K_SLEEP, K_SLEEP, K_JOIN,
                                      K_JOIN, K_HOG, K_HOG, K_HOG};
    t->kind = kinds[b[1] % 16];
    bool join = b[2] & 1;
    t->status = -EAGAIN;
    t->waiter = t->target = -1;
    t->rng = (uint64_t)b[3] | (uint64_t)b[4] << 8 | (uint64_t)b[5] << 16 | (uint64_t)tid << 32;
    t->npad = b[6] % PAD_MAX;
    uint8_t e = b[7], f = b[8];
    switch (t->kind) {
    case K_YIELD:
        t->end_at = e < 200 ? 1u + e % 8u : join && e >= 248 ? 0u : 20u + e;
        break;
    case K_HOG:
        t->end_at = e < 200 ? 5u + e : join && e >= 240 ? 0u : 300u + e * 4u;
        break;
    case K_PARK:
        t->end_at = 1 + e % 6;
        break;
    case K_SLEEP:
        t->sleeps_left = 1 + e % 3;
        break;
    case K_JOIN:
        if (m->nlist[L_JOIN]) {
            int32_t g = m->lists[L_JOIN][e % m->nlist[L_JOIN]];
            t->target = g;
            t->target_gen = m->t[g].gen;
        }
        break;
    }
    if (f % 16 == 0)
        t->panic_at = 1 + (f >> 4) % 4;
    else if (f % 16 == 1 && join)
        t->abort_at = 1 + (f >> 4) % 4;
    if (b[9] % 8 == 0)
        t->spawn_at = 1 + (b[9] >> 3) % 5;

    _Alignas(max_align_t) unsigned char buf[sizeof(mstate) + PAD_MAX];
    mstate *s = (mstate *)buf;
    memset(s, 0, sizeof *s);
    s->m = m;
    s->tid = (uint32_t)tid;
    s->gen = t->gen;
    for (uint32_t i = 0; i < t->npad; i++)
        s->pad[i] = (unsigned char)(s->tid * 31 + s->gen * 7 + i);

    /* the model first (nothing in cw_spawn calls back) */
    mq *q = &m->qs[t->q];
    t->spawn_seq = m->spawn_seq++;
    if (m->live++ == 0)
        m->watched = true;
    m->spawned++;
    q->spawned++;
    m->total_spawned++;
    m->res.spawned++;
    enqueue(m, t);

    cw_join *j = NULL;
    int err = cw_spawn(q->q, m_poll, s, sizeof *s + t->npad, m_drop, join ? &j : NULL);
    MCHECK(m, err == 0, "cw_spawn: %s", cw_strerror(err));
    if (join) {
        MCHECK(m, j, "no join handle");
        t->join = j;
        t->has_join = true;
        il_add(m, L_JOIN, tid);
        MCHECK(m, cw_join_status(j) == -EAGAIN, "new task's status %d", cw_join_status(j));
        MCHECK(m, cw_join_state(j) == NULL, "state of a running task");
    }
}

static void park(model *m, mtask *t, cw_cx *cx)
{
    if (t->parked) {
        MCHECK(m, cw_waker_will_wake(t->parked, cw_cx_waker(cx)), "a task's waker changed");
        return;
    }
    t->parked = cw_waker_clone(cw_cx_waker(cx));
    MCHECK(m, t->parked, "cw_waker_clone");
    il_add(m, L_PARKED, tid_of(m, t));
}

static void self_wake(model *m, mtask *t, cw_cx *cx, bool via_clone)
{
    api_wake_local(m, t);
    if (via_clone)
        cw_waker_wake(cw_waker_clone(cw_cx_waker(cx)));
    else
        cw_waker_wake_by_ref(cw_cx_waker(cx));
}

static void give_up_parked(model *m, mtask *t)
{
    t->parked = NULL;
    il_del(m, L_PARKED, tid_of(m, t));
}

/* Ways to use a parked waker. */
enum { W_WAKE, W_BY_REF, W_TWICE, W_CLONE, W_FREE };

/* Mostly wakes: a waker let go without waking leaves its task stuck. */
static int how_of(uint8_t b)
{
    static const uint8_t map[16] = {W_WAKE, W_WAKE, W_WAKE, W_WAKE, W_WAKE, W_BY_REF, W_BY_REF,
                                    W_BY_REF, W_BY_REF, W_TWICE, W_TWICE, W_TWICE, W_CLONE,
                                    W_CLONE, W_CLONE, W_FREE};
    return map[b % 16];
}

/* Wake (or release) the parked waker of p, here or on the helper thread. */
static void wake_parked(model *m, mtask *p, int how, bool remote)
{
    cw_waker *w = p->parked;
    if (!remote) {
        switch (how) {
        case W_WAKE: /* wake and release */
            give_up_parked(m, p);
            api_wake_local(m, p);
            cw_waker_wake(w);
            break;
        case W_BY_REF:
            api_wake_local(m, p);
            cw_waker_wake_by_ref(w);
            break;
        case W_TWICE: /* twice before the next poll: enqueued once */
            api_wake_local(m, p);
            cw_waker_wake_by_ref(w);
            api_wake_local(m, p);
            cw_waker_wake_by_ref(w);
            break;
        case W_CLONE: /* wake a clone */
            api_wake_local(m, p);
            cw_waker_wake(cw_waker_clone(w));
            break;
        case W_FREE: /* let it go without waking */
            give_up_parked(m, p);
            cw_waker_free(w);
            break;
        }
    } else {
        switch (how) {
        case W_WAKE:
            give_up_parked(m, p);
            api_wake_remote(m, p);
            helper_do(m, H_WAKE, w);
            break;
        case W_BY_REF:
        case W_CLONE:
            api_wake_remote(m, p);
            helper_do(m, H_WAKE_BY_REF, w);
            break;
        case W_TWICE:
            api_wake_remote(m, p);
            helper_do(m, H_WAKE_TWICE, w);
            break;
        case W_FREE:
            give_up_parked(m, p);
            helper_do(m, H_FREE, w);
            break;
        }
    }
    maybe_reclaim(m, p);
}

static void advance(model *m, mtask *t, uint64_t ns)
{
    m->clk += ns;
    m->fine += ns;
    m->cpu += ns;
    m->qs[t->q].cpu += ns;
    m->cur_cost += ns;
}

/* ---- polls ------------------------------------------------------------------------ */

/* The slice of m->curr has ended: seen at the first poll of the next slice
 * (next_in_round) or when the round returned. */
static void slice_end(model *m, uint64_t preemptions, bool next_in_round)
{
    uint64_t d = preemptions - m->pre_seen;
    MCHECK(m, d <= 1, "%llu preemptions counted for one slice", (unsigned long long)d);
    if (d) {
        MCHECK(m, m->slice_wakeup,
               "slice of queue %d counted as preempted though no idle queue woke during it", m->curr);
        m->qs[m->curr].preemptions++;
        m->res.preemptions++;
    } else if (next_in_round && m->qs[m->curr].len) {
        /* not emptied, not preempted, not the end of the round: its slice
         * time ran out, which ends a slice only when another queue is
         * runnable (one runnable queue keeps the CPU) */
        MCHECK(m, m->last_others,
               "slice of queue %d, the only runnable queue, ended with %u tasks runnable", m->curr,
               m->qs[m->curr].len);
    }
    m->pre_seen = preemptions;
    m->curr = -1;
    win_sync(m);
}

/* The round's budget for a slice of queue qi: the shortest latency
 * target below driver_yield among the idle queues whose target counts. */
static uint64_t slice_budget(const model *m, uint32_t qi)
{
    uint64_t b = m->yield_ns;
    for (uint32_t j = 0; j < m->nq; j++)
        if (j != qi && m->qs[j].len == 0 && m->qs[j].armed && m->qs[j].lat < b)
            b = m->qs[j].lat;
    return b;
}

static mtask *poll_begin(model *m, mstate *s, cw_cx *cx)
{
    MCHECK(m, s->tid < NSLOTS, "poll of an unknown task %u", s->tid);
    int32_t tid = (int32_t)s->tid;
    mtask *t = &m->t[tid];
    MCHECK(m, t->st != T_FREE && t->gen == s->gen, "poll of task %d after the model forgot it", tid);
    MCHECK(m, m->cur < 0, "poll of task %d inside the poll of task %d", tid, m->cur);
    MCHECK(m, m->in_round, "poll of task %d outside a round the model expected", tid);
    MCHECK(m, t->exgen == m->exgen, "poll of task %d of a freed executor", tid);
    MCHECK(m, t->st != T_DONE, "task %d polled after it ended (status %d)", tid, t->status);
    MCHECK(m, t->st == T_SCHED, "task %d polled while not runnable (state %d)", tid, t->st);
    MCHECK(m, m->qs[t->q].head == tid, "FIFO: task %d polled but the head of queue %u is task %d",
           tid, t->q, m->qs[t->q].head);
    MCHECK(m, cw_cx_executor(cx) == m->ex && cw_cx_queue(cx) == m->qs[t->q].q && cw_cx_waker(cx),
           "task %d: the cx names another executor, queue or no waker", tid);
    pad_check(m, s, t);
    check_due(m);
    MCHECK(m, !m->must_end_round, "round went on past its budget: %u polls (max %u), %llu ns (budget %llu)",
           m->round_polls, m->max_polls, (unsigned long long)(m->clk - m->round_start),
           (unsigned long long)m->budget);

    struct cw_executor_stats st;
    MCHECK(m, cw_executor_stats(m->ex, &st) == 0, "stats");
    MCHECK(m, st.polls == m->polls && st.rounds == m->rounds,
           "in a poll: %llu polls %llu rounds, model says %llu %llu", (unsigned long long)st.polls,
           (unsigned long long)st.rounds, (unsigned long long)m->polls, (unsigned long long)m->rounds);
    bool fresh = st.slices == m->slices + 1;
    MCHECK(m, fresh || st.slices == m->slices, "slices went from %llu to %llu between two polls",
           (unsigned long long)m->slices, (unsigned long long)st.slices);
    if (!fresh) {
        MCHECK(m, m->curr == (int)t->q, "the slice of queue %d polled task %d of queue %u", m->curr,
               tid, t->q);
        MCHECK(m, !m->must_end_slice,
               "slice of queue %d went on %llu ns after its start with other queues runnable "
               "(no request is longer than %llu ns)",
               m->curr, (unsigned long long)(m->clk - m->slice_start), (unsigned long long)m->rmax);
        MCHECK(m, st.preemptions == m->pre_seen, "preemption counted inside a slice");
    } else {
        if (m->curr >= 0)
            slice_end(m, st.preemptions, true);
        else
            MCHECK(m, st.preemptions == m->pre_seen, "preemption counted with no slice");
        m->curr = t->q;
        /* the round's budget, for this slice */
        m->budget = slice_budget(m, t->q);
        if (m->budget < m->yield_ns && !m->round_cut) {
            m->round_cut = true;
            m->latency_rounds++;
        }
        m->slices++;
        m->qs[t->q].slices++;
        m->res.slices++;
        m->slice_start = m->clk;
        m->slice_wakeup = false;
        m->must_end_slice = false;
        win_sync(m);
    }
    fifo_remove(m, t);
    t->st = T_RUNNING;
    m->cur = tid;
    m->check_at = m->clk;
    m->cur_cost = 0;
    m->polls++;
    m->qs[t->q].polls++;
    m->res.polls++;
    return t;
}

/* What the executor does once the poll returns (run_slice()). */
static cw_poll poll_finish(model *m, mtask *t, int res)
{
    m->cur = -1;
    MCHECK(m, m->cur_cost <= C_MAX, "poll cost %llu", (unsigned long long)m->cur_cost);
    if (m->cur_cost > m->max_cost)
        m->max_cost = m->cur_cost;
    if (res == P_PANIC)
        task_end(m, t, CW_EPANIC);
    else if (t->cancel)
        task_end(m, t, -ECANCELED);
    else if (res == P_READY)
        task_end(m, t, 0);
    else {
        t->st = T_IDLE;
        if (t->notified) {
            t->notified = false;
            enqueue(m, t);
        }
    }
    if (m->inbox_n)
        drain(m);
    m->round_polls++;
    /* the time budget: the round ends when one more poll as long as the
     * queue's recent ones (the longest, decaying by 1/8 per poll) would
     * end past driver_yield */
    mq *pq = &m->qs[t->q];
    pq->poll_est -= pq->poll_est >> 3;
    if (m->cur_cost > pq->poll_est)
        pq->poll_est = m->cur_cost;
    if (m->round_polls >= m->max_polls || m->clk + pq->poll_est - m->round_start > m->budget)
        m->must_end_round = true;
    m->last_others = others_runnable(m);
    if (m->last_others && m->clk - m->slice_start >= m->rmax)
        m->must_end_slice = true;
    win_check(m, false);
    return res == P_READY ? CW_READY : CW_PENDING;
}

static cw_poll finish_ready(model *m, mtask *t, mstate *s)
{
    s->out = expected_out(t, tid_of(m, t));
    return poll_finish(m, t, P_READY);
}

/* cw_should_yield() said y: check it against the limits the model knows. */
static void check_should_yield(model *m, bool y)
{
    if (m->inbox_n)
        drain(m); /* it looks at the inbox first */
    if (m->nlist[L_SLEEP] && !m->firing)
        fire(m); /* then wakes the sleeps due (a preemption may follow) */
    bool others = others_runnable(m);
    /* the executor's test: one more chunk as long as the one since the
     * last question (or the poll's start) would end past the budget */
    uint64_t chunk = m->clk - m->check_at;
    m->check_at = m->clk;
    bool over_round = m->clk + chunk - m->round_start > m->budget;
    bool over_slice = others && m->clk - m->slice_start >= m->rmax;
    if (!y)
        MCHECK(m, !over_round && !over_slice,
               "cw_should_yield() false %llu ns into the round, %llu ns into the slice (others %d)",
               (unsigned long long)(m->clk - m->round_start),
               (unsigned long long)(m->clk - m->slice_start), others);
    else
        MCHECK(m, over_round || others,
               "cw_should_yield() true with no other queue runnable and %llu ns of %llu used",
               (unsigned long long)(m->clk - m->round_start), (unsigned long long)m->budget);
}

/* The model's cw_sleep_poll(): true if it must say READY. */
static bool model_sleep_poll(model *m, mtask *t)
{
    if (t->sl == SL_FIRED)
        return true;
    if (t->sl == SL_REL) {
        uint64_t d = m->clk + t->sl_dur;
        t->sl_deadline = d < m->clk ? UINT64_MAX : d;
        t->sl = SL_ABS;
    }
    if (t->sl_deadline <= m->clk) {
        sleep_forget(m, t);
        return true;
    }
    if (!t->sleeping) {
        t->sleeping = true;
        t->sl_seq = m->sleep_seq++;
        il_add(m, L_SLEEP, tid_of(m, t));
    }
    return false;
}

static cw_poll m_poll(void *state, cw_cx *cx)
{
    mstate *s = state;
    model *m = s->m;
    mtask *t = poll_begin(m, s, cx);
    int32_t tid = tid_of(m, t);
    uint32_t n = ++t->polls;
    uint64_t r = mix64(&t->rng);

    advance(m, t, (r & 3) == 0 ? 0 : (r >> 2) % (20 * US + 1));
    if (t->spawn_at == n)
        spawn(m, t);
    if ((r >> 24) % 16 == 0 && m->nlist[L_PARKED]) {
        mtask *p = &m->t[m->lists[L_PARKED][(r >> 32) % m->nlist[L_PARKED]]];
        wake_parked(m, p, how_of((uint8_t)((r >> 40) % 15)), (r >> 48) % 64 == 0);
    }
    if (t->panic_at == n) {
        poll_finish(m, t, P_PANIC);
        cw_panic(cx, "panic %d.%u", tid, t->gen);
    }
    if (t->abort_at == n && t->has_join) {
        if (r >> 56 & 1)
            self_wake(m, t, cx, false);
        t->cancel = true;
        cw_join_abort(t->join); /* ends it after this poll */
        MCHECK(m, t->drops == 0 && cw_join_status(t->join) == -EAGAIN,
               "task %d aborted itself: dropped or ended inside its poll", tid);
        if (r >> 57 & 1)
            self_wake(m, t, cx, true);
        if (r >> 58 & 1)
            return finish_ready(m, t, s); /* the abort wins over READY */
        return poll_finish(m, t, P_PENDING);
    }

    switch (t->kind) {
    case K_HOG: {
        uint32_t chunks = (uint32_t)(r >> 8) % 7;
        for (uint32_t i = 0; i < chunks; i++) {
            bool y = cw_should_yield(cx);
            check_should_yield(m, y);
            if (y)
                break;
            advance(m, t, CHUNK);
        }
    }
        /* fall through */
    case K_YIELD:
        if (t->end_at && n >= t->end_at)
            return finish_ready(m, t, s);
        if ((r >> 60) == 0)
            park(m, t, cx); /* also hand the driver a waker */
        self_wake(m, t, cx, r >> 59 & 1);
        return poll_finish(m, t, P_PENDING);
    case K_PARK:
        if (n >= t->end_at)
            return finish_ready(m, t, s);
        park(m, t, cx);
        return poll_finish(m, t, P_PENDING);
    case K_SLEEP:
        for (;;) {
            if (t->sl == SL_NONE) {
                if (!t->sleeps_left)
                    return finish_ready(m, t, s);
                uint64_t x = mix64(&t->rng);
                static const uint8_t quanta[16] = {0, 1, 1, 1, 2, 2, 3, 0, 1, 1, 2, 3, 1, 2, 1, 255};
                uint8_t k = quanta[x % 16];
                uint64_t dur = k == 255 ? UINT64_MAX : k * QUANTUM;
                if (x >> 8 & 1) {
                    cw_sleep_init(&s->sleep, dur);
                    t->sl = SL_REL;
                    t->sl_dur = dur;
                } else {
                    uint64_t d = m->clk + dur;
                    t->sl_deadline = d < m->clk ? UINT64_MAX : d;
                    cw_sleep_init_until(&s->sleep, t->sl_deadline);
                    t->sl = SL_ABS;
                }
            }
            bool ready = model_sleep_poll(m, t);
            cw_poll pr = cw_sleep_poll(&s->sleep, cx);
            MCHECK(m, pr == (ready ? CW_READY : CW_PENDING),
                   "task %d: cw_sleep_poll() %d, model says %d (deadline %llu, clock %llu)", tid, pr,
                   ready, (unsigned long long)t->sl_deadline, (unsigned long long)m->clk);
            if (pr == CW_READY) {
                t->sleeps_left--;
                t->sl = SL_NONE;
                continue;
            }
            if (r >> 61 & 1)
                park(m, t, cx); /* may be woken before its deadline */
            return poll_finish(m, t, P_PENDING);
        }
    case K_JOIN: {
        mtask *g = live_task(m, t->target, t->target_gen);
        if (!g || !g->has_join || g == t)
            return finish_ready(m, t, s);
        cw_poll jr = cw_join_poll(g->join, cx);
        bool done = g->st == T_DONE;
        MCHECK(m, jr == (done ? CW_READY : CW_PENDING),
               "task %d: cw_join_poll() on task %d says %d, which is %s", tid, t->target, jr,
               done ? "done" : "live");
        if (done) {
            MCHECK(m, cw_join_status(g->join) == g->status, "join status");
            return finish_ready(m, t, s);
        }
        g->waiter = tid;
        g->waiter_gen = t->gen;
        return poll_finish(m, t, P_PENDING);
    }
    }
    MCHECK(m, 0, "unknown kind %d", t->kind);
    return CW_READY;
}

/* ---- turns of the loop ------------------------------------------------------------- */

static void round_begin(model *m)
{
    m->round_pending = false;
    m->in_round = true;
    m->rounds++;
    m->res.rounds++;
    m->round_start = m->clk;
    m->budget = m->yield_ns;
    m->round_cut = false;
    m->round_polls = 0;
    m->must_end_round = m->must_end_slice = false;
    m->curr = -1;
    if (m->nlist[L_SLEEP])
        fire(m);
    if (m->inbox_n)
        drain(m);
}

static void round_end(model *m)
{
    struct cw_executor_stats st;
    MCHECK(m, cw_executor_stats(m->ex, &st) == 0, "stats");
    MCHECK(m, st.rounds == m->rounds, "the model expected a round in this turn: %llu rounds, want %llu",
           (unsigned long long)st.rounds, (unsigned long long)m->rounds);
    MCHECK(m, st.slices == m->slices, "%llu slices after the round, %llu seen polling",
           (unsigned long long)st.slices, (unsigned long long)m->slices);
    if (m->curr >= 0)
        slice_end(m, st.preemptions, false);
    else
        MCHECK(m, st.preemptions == m->pre_seen, "preemption in a round without a slice");
    check_due(m);
    bool work = false;
    for (uint32_t i = 0; i < m->nq; i++)
        work |= m->qs[i].len > 0;
    MCHECK(m, !work || m->must_end_round,
           "round returned to libevent with tasks runnable and budget left (%u polls of %u, %llu ns of %llu)",
           m->round_polls, m->max_polls, (unsigned long long)(m->clk - m->round_start),
           (unsigned long long)m->budget);
    m->in_round = false;
    if (work) {
        schedule(m);
        return;
    }
    m->idle = true;
    m->sleeping = true;
    if (m->inbox_n)
        schedule(m);
    if (!m->live)
        m->watched = false;
}

/* One non-blocking turn of the loop (tenv_turn()). In a turn, in this
 * order: the timer (if the TIMER operation made it fire; a round its
 * wakes ask for runs in this turn), the notification fd (a round if none
 * is pending), the pending round. */
static void op_turn(model *m)
{
    m->res.turns++;
    if (m->timer_active) {
        m->timer_active = false;
        fire(m);
    }
    /* a round pending, or one the timer's wakes asked for: the driver runs
     * that one in this pass (event_active() from the timer's callback) */
    bool round = m->round_pending;
    if (m->fd_signaled && m->watched) {
        m->fd_signaled = false;
        if (!m->round_pending)
            round = true;
    }
    if (round)
        round_begin(m);
    int rc = event_base_loop(m->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    MCHECK(m, rc >= 0, "event_base_loop: %d", rc);
    MCHECK(m, m->cur < 0, "a poll did not return");
    if (round) {
        round_end(m);
    } else {
        struct cw_executor_stats st;
        MCHECK(m, cw_executor_stats(m->ex, &st) == 0, "stats");
        MCHECK(m, st.rounds == m->rounds, "a round ran in a turn where the model expected none");
    }
    check_due(m);
}

/* Turns until nothing is pending (at most 24). */
static void op_settle(model *m)
{
    for (int i = 0; i < 24 && (m->round_pending || (m->fd_signaled && m->watched)); i++)
        op_turn(m);
}

/* ---- the other operations ----------------------------------------------------------- */

static mtask *pick(model *m, int l)
{
    uint8_t b = rd8(&m->r);
    if (!m->nlist[l])
        return NULL;
    return &m->t[m->lists[l][b % m->nlist[l]]];
}

static void join_free(model *m, mtask *t)
{
    t->has_join = false;
    il_del(m, L_JOIN, tid_of(m, t));
    t->waiter = -1; /* released without a wake */
    if (t->st == T_DONE && t->drops == 0)
        expect_drop(m, t); /* a completed task's state goes now */
    cw_join *j = t->join;
    t->join = NULL;
    cw_join_free(j);
    check_due(m);
    maybe_reclaim(m, t);
}

static void abort_task(model *m, mtask *t, uint8_t b)
{
    if (t->st != T_DONE)
        task_end(m, t, -ECANCELED); /* dropped inside cw_join_abort() */
    cw_join_abort(t->join);
    check_due(m);
    if (b & 1)
        cw_join_abort(t->join); /* twice: nothing more */
    MCHECK(m, cw_join_status(t->join) == t->status, "status %d after abort, model says %d",
           cw_join_status(t->join), t->status);
}

static void op_abort(model *m)
{
    mtask *t = pick(m, L_JOIN);
    uint8_t b = rd8(&m->r);
    if (!t)
        return op_turn(m);
    abort_task(m, t, b);
}

/* Many tasks alive (the stuck ones pile up: parked wakers let go, joins
 * of freed handles, endless sleeps): abort some, wake the parked. */
static void reap(model *m)
{
    for (uint32_t i = m->nlist[L_JOIN], n = 0; i-- > 0 && n < 8;) {
        mtask *t = &m->t[m->lists[L_JOIN][i]];
        if (t->st != T_DONE) {
            abort_task(m, t, (uint8_t)i);
            n++;
        }
    }
    for (uint32_t i = m->nlist[L_PARKED]; i-- > 0;) {
        mtask *t = &m->t[m->lists[L_PARKED][i]];
        if (t->st != T_DONE)
            wake_parked(m, t, W_BY_REF, false);
    }
}

static void op_join_check(model *m)
{
    mtask *t = pick(m, L_JOIN);
    if (!t)
        return op_turn(m);
    int32_t tid = tid_of(m, t);
    int st = cw_join_status(t->join);
    MCHECK(m, st == t->status, "task %d: cw_join_status() %d, model says %d", tid, st, t->status);
    mstate *s = cw_join_state(t->join);
    if (t->status == 0) {
        MCHECK(m, s && s->tid == (uint32_t)tid && s->gen == t->gen && s->out == expected_out(t, tid),
               "task %d: cw_join_state() is not its finished state", tid);
        pad_check(m, s, t);
    } else {
        MCHECK(m, !s, "task %d: a state for status %d", tid, t->status);
    }
    const char *msg = cw_join_panic_message(t->join);
    if (t->status == CW_EPANIC) {
        char want[32];
        snprintf(want, sizeof want, "panic %d.%u", tid, t->gen);
        MCHECK(m, msg && strcmp(msg, want) == 0, "task %d: panic message %s, want %s", tid,
               msg ? msg : "(null)", want);
    } else {
        MCHECK(m, !msg, "task %d: panic message for status %d", tid, t->status);
    }
}

static void op_wake(model *m, bool remote)
{
    mtask *p = pick(m, L_PARKED);
    int how = how_of(rd8(&m->r));
    if (!p)
        return op_turn(m);
    wake_parked(m, p, how, remote);
}

static void op_advance(model *m)
{
    uint8_t b = rd8(&m->r);
    if (b < 96) {
        uint64_t ns = (uint64_t)(b + 1) * 10 * US;
        m->clk += ns;
        m->fine += ns;
    } else if (m->clk < CLOCK_LIMIT) {
        m->clk += (uint64_t)(1 + b % 3) * QUANTUM;
    }
}

static void op_timer(model *m)
{
    if (m->nlist[L_SLEEP]) {
        /* the driver's timer comes due: libevent would run its callback */
        struct levdrv *d = cw_driver_state(m->ex, &cw__libevent_ops);
        MCHECK(m, event_pending(d->timer_ev, EV_TIMEOUT, NULL), "timer not armed");
        event_active(d->timer_ev, EV_TIMEOUT, 1);
        m->timer_active = true;
    }
    op_turn(m);
}

static void op_weight(model *m)
{
    uint8_t a = rd8(&m->r), b = rd8(&m->r);
    mq *q = &m->qs[a % m->nq];
    uint32_t w = weights[b % 16];
    win_check(m, true); /* the window of the old weights ends here */
    MCHECK(m, cw_queue_set_weight(q->q, w) == 0, "cw_queue_set_weight");
    q->weight = w;
    MCHECK(m, cw_queue_weight(q->q) == w, "cw_queue_weight");
    win_open(m);
}

/* Let go of the handles and wakers of ended tasks (frees records). */
static void op_cleanup(model *m)
{
    for (uint32_t i = m->nlist[L_JOIN]; i-- > 0;) {
        mtask *t = &m->t[m->lists[L_JOIN][i]];
        if (t->st == T_DONE)
            join_free(m, t);
    }
    for (uint32_t i = m->nlist[L_PARKED]; i-- > 0;) {
        mtask *t = &m->t[m->lists[L_PARKED][i]];
        if (t->st == T_DONE)
            wake_parked(m, t, i & 1 ? W_WAKE : W_FREE, i & 2); /* wake (a no-op) or free */
    }
}

static void exec_renew(model *m)
{
    exec_free(m);
    exec_new(m);
}

static void apply(model *m, uint8_t b)
{
    if (b < 64)
        op_turn(m);
    else if (b < 76) {
        uint8_t n = rd8(&m->r);
        for (int i = 0; i < 2 + n % 15; i++)
            op_turn(m);
    } else if (b < 114) {
        if (m->nfree < 16)
            op_cleanup(m);
        if (m->live >= LIVE_MAX / 2)
            reap(m);
        spawn(m, NULL);
    } else if (b < 144)
        op_wake(m, false);
    else if (b < 160)
        op_wake(m, true);
    else if (b < 172)
        op_advance(m);
    else if (b < 184)
        op_timer(m);
    else if (b < 196)
        op_abort(m);
    else if (b < 212)
        op_join_check(m);
    else if (b < 230) {
        mtask *t = pick(m, L_JOIN);
        if (t)
            join_free(m, t);
        else
            op_turn(m);
    } else if (b < 236)
        op_weight(m);
    else if (b < 248)
        op_settle(m);
    else {
        uint8_t c = rd8(&m->r);
        if (c == 0)
            exec_renew(m); /* free the executor with tasks pending */
        else if (c < 64)
            op_cleanup(m);
        else if (c < 128) {
            for (int i = 0; i < 8; i++)
                spawn(m, NULL);
        } else {
            while (m->nlist[L_PARKED] && m->nlist[L_PARKED] < NSLOTS) {
                mtask *p = &m->t[m->lists[L_PARKED][0]];
                wake_parked(m, p, W_WAKE, c & 1);
            }
        }
    }
}

/* ---- running ------------------------------------------------------------------------ */

static void finish(model *m)
{
    if (m->ex)
        exec_free(m);
    while (m->nlist[L_JOIN])
        join_free(m, &m->t[m->lists[L_JOIN][0]]);
    for (uint32_t i = 0; m->nlist[L_PARKED]; i++)
        wake_parked(m, &m->t[m->lists[L_PARKED][0]], i & 1 ? W_WAKE : W_FREE, i & 2);
    for (int32_t i = 0; i < NSLOTS; i++)
        MCHECK(m, m->t[i].st == T_FREE,
               "task %d still known at the end (state %d, drops %u, join %d, parked %d, inbox %d, "
               "sleeping %d)",
               i, m->t[i].st, m->t[i].drops, m->t[i].has_join, !!m->t[i].parked, m->t[i].in_inbox,
               m->t[i].sleeping);
    MCHECK(m, m->total_drops == m->total_spawned, "%llu drops for %llu tasks",
           (unsigned long long)m->total_drops, (unsigned long long)m->total_spawned);
    helper_stop(m);
}

static int run(model *m, model_result *res)
{
    const model_opts *o = m->o;
    if (o->count_allocs) {
        atomic_store(&g_blocks, 0);
        MCHECK(m, cw_set_allocator(count_malloc, count_realloc, count_free) == 0, "cw_set_allocator");
    }
    slots_init(m);
    exec_new(m);
    while (!o->max_ops || m->op < o->max_ops) {
        if (m->clk > CLOCK_LIMIT || m->fine > FINE_LIMIT)
            exec_renew(m);
        uint8_t b = rd8(&m->r);
        if (m->r.eof)
            break;
        apply(m, b);
        m->op++;
        m->live_sum += m->live;
        check_exec(m);
        if ((m->op & 63) == 0)
            check_tasks(m);
    }
    check_exec(m);
    check_tasks(m);
    finish(m);
    if (o->count_allocs) {
        long left = atomic_load(&g_blocks);
        MCHECK(m, left == 0, "%ld blocks of the library's memory not freed", left);
        cw_set_allocator(NULL, NULL, NULL);
    }
    m->res.ops = m->op;
    if (o->verbose) {
        model_result *r = &m->res;
        fprintf(stderr,
                "model: %llu ops, %llu polls, %llu tasks, %llu executors, %llu turns, %llu rounds, "
                "%llu slices, %llu preemptions, %llu remote wakes, %llu sleeps fired, %llu panics, "
                "%llu aborts, %.1f live on average\n"
                "model: fairness: %llu windows, %llu longer than their bound, longest %.1f ms, "
                "largest deviation %.3f of the bound\n",
                (unsigned long long)r->ops, (unsigned long long)r->polls,
                (unsigned long long)r->spawned, (unsigned long long)r->executors,
                (unsigned long long)r->turns, (unsigned long long)r->rounds,
                (unsigned long long)r->slices, (unsigned long long)r->preemptions,
                (unsigned long long)r->wakes_remote, (unsigned long long)r->sleeps_fired,
                (unsigned long long)r->panics, (unsigned long long)r->aborts,
                m->op ? (double)m->live_sum / (double)m->op : 0.0,
                (unsigned long long)r->windows, (unsigned long long)r->long_windows,
                (double)r->max_window_ns / 1e6, r->max_dev_ratio);
    }
    if (res)
        *res = m->res;
    return 0;
}

int model_run(const uint8_t *ops, size_t n, const model_opts *o, model_result *res)
{
    static const model_opts none;
    model *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->o = o ? o : &none;
    m->r.p = ops;
    m->r.n = n;
    m->cur = -1;
    int rc = run(m, res);
    free(m);
    return rc;
}

int model_run_seed(uint64_t seed, uint64_t nops, const model_opts *o, model_result *res)
{
    static const model_opts none;
    model_opts oo = o ? *o : none;
    oo.max_ops = nops;
    model *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->o = &oo;
    m->seed = seed;
    m->r.seeded = true;
    m->r.s = seed;
    m->cur = -1;
    int rc = run(m, res);
    free(m);
    return rc;
}
