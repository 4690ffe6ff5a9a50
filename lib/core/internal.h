/*
 * internal.h - structures shared by the library's files. Not installed.
 *
 * Ownership in one paragraph: a task is one block (cw__task header, state,
 * optional slots) in a slab. It is referenced by the executor while it is
 * alive (not ended), by its join handle, by every waker clone, and by the
 * remote inbox while it sits there; the last reference gives the block
 * back to its slab (on the executor thread directly, from elsewhere
 * through the shared part's rfree stack). The shared part (cw__shared)
 * lives while the executor does and, after it is freed, for as long as
 * any block is still referenced (say by a waker on another thread): each
 * slab with blocks out holds a reference on it until its last block goes.
 */
#ifndef CW_INTERNAL_H
#define CW_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>

#include "clockworker.h"
#include "clockworker/driver.h"
#include "eevdf.h"

#define CW__MAX_SLICE_NS ((uint64_t)1 << 40)

/* Largest state cw_spawn() and cw_spawn_remote() accept: keeps size
 * arithmetic far from overflow. */
#define CW__MAX_STATE ((size_t)1 << 40)

/* An internal invariant on the poll path, where it would cost a compare
 * and a branch per poll: checked in the test build (CW_DEBUG, which runs
 * every suite) and compiled out of the installed library. Everywhere
 * else, plain assert(). */
#ifdef CW_DEBUG
#define CW_ASSERT_HOT(x) assert(x)
#else
#define CW_ASSERT_HOT(x) ((void)sizeof(!(x)))
#endif

/* ---- allocation: every allocation in the library goes through here ---- */
void *cw__malloc(size_t n);
void *cw__calloc(size_t n, size_t size);
void *cw__realloc(void *p, size_t n);
void cw__free(void *p);
/* Held by each config and each executor's shared part (which lives until
 * the last task block is freed): cw_set_allocator() says -EBUSY meanwhile. */
void cw__alloc_hold(void);
void cw__alloc_unhold(void);

/* ---- intrusive circular doubly-linked list (as libuv's queue.h) -------- */
/* Every operation is O(1); no allocation. */
typedef struct cw__list {
    struct cw__list *prev, *next;
} cw__list;

#define cw__container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void cw__list_init(cw__list *h)
{
    h->prev = h->next = h;
}

static inline bool cw__list_empty(const cw__list *h)
{
    return h->next == h;
}

static inline void cw__list_push_back(cw__list *h, cw__list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Take n out of its list, leaving n's own links stale (the poll loop
 * relinks the task or ends it; cw__list_remove() when they are read). */
static inline void cw__list_unlink(cw__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static inline void cw__list_remove(cw__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

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
};

struct cw__qdef *cw__config_find(const cw_config *cfg, uint32_t id);

/* ---- the part of an executor that other threads may touch -------------- */
typedef struct cw__task cw__task;

/* The inbox is closed (the executor is gone) when it holds this. */
#define CW__INBOX_CLOSED ((cw__task *)1)

typedef struct cw__shared {
    atomic_size_t refs;       /* the executor; once it is gone, one per
                                 slab with blocks not yet freed */
    _Atomic(cw__task *) inbox; /* Treiber stack of remotely woken tasks */
    atomic_int sleeping;      /* 1: no round pending; a remote wake signals */
    int notify_rfd, notify_wfd; /* eventfd (same fd twice) or a pipe */
    const char *thread;       /* the executor thread's &cw__thread_token */
    cw_executor *ex;          /* executor thread only; NULL once freed */
    _Atomic(cw__task *) rfree; /* blocks freed on other threads (Treiber
                                 stack); CW__INBOX_CLOSED once the executor
                                 is gone (then a block goes to its slab's
                                 live count) */
    cw__list slabs;           /* every slab (cw__slab.all); executor thread */
} cw__shared;

void cw__shared_release(cw__shared *sh, size_t n);
int cw__notify_open(cw__shared *sh);
void cw__notify_signal(cw__shared *sh);
void cw__notify_drain(cw__shared *sh);
/* Push a block on the inbox and signal the executor if it sleeps (the
 * protocol in waker.c); false once the inbox is closed. Any thread. */
bool cw__inbox_push(cw__shared *sh, cw__task *t);

/* ---- tasks -------------------------------------------------------------- */
enum {
    CW__T_SCHEDULED = 1 << 0, /* in its queue's FIFO */
    CW__T_RUNNING = 1 << 1,   /* being polled */
    CW__T_NOTIFIED = 1 << 2,  /* woken while running: re-enqueue after */
    CW__T_DONE = 1 << 3,      /* ended; status is final (ST_* bits) */
    CW__T_CANCEL = 1 << 4,    /* aborted while running: end after the poll */
    CW__T_HAS_JOIN = 1 << 5,  /* a join handle exists */
    CW__T_DROPPED = 1 << 6,   /* the drop function has run (or none) */
    CW__T_SPAWNING = 1 << 7,  /* spawned remotely, in the inbox (sync_remote.c) */
    CW__T_RJOIN = 1 << 8,     /* the join slot holds a cw_remote_join */
    CW__T_ST_PANIC = 1 << 9,  /* DONE: status CW_EPANIC */
    CW__T_ST_CANCEL = 1 << 10, /* DONE: status -ECANCELED */
    CW__T_X_DROP = 1 << 11,   /* the block has a drop slot (fixed at spawn) */
    CW__T_X_JOIN = 1 << 12,   /* ... a join slot */
    CW__T_X_STAMP = 1 << 13,  /* ... a runnable_at slot (histograms on) */
    CW__T_FREE = 1 << 14,     /* a free block in its slab */
};

#define CW__NO_CLASS UINT16_MAX

/* refs: the reference count, and this bit while the block is in the inbox
 * (the inbox holds one of the references then). */
#define CW__REF_INBOX (1u << 31)
#define CW__REF_COUNT(v) ((v) & ~CW__REF_INBOX)

typedef struct cw__slab cw__slab;

/*
 * A task block: this 48-byte header, the state, and at the block's end the
 * optional slots its flags name, from the end backwards: the drop function
 * (X_DROP), the join slot (X_JOIN: the awaiting task's waker, or the
 * cw_remote_join with RJOIN), runnable_at (X_STAMP). A task that needs none
 * of them costs the header only; the block size is its slab's.
 */
struct cw__task {
    cw_poll_fn poll;
    cw__slab *slab;            /* its slab: the shared part, the block size */
    union {
        cw__list link;         /* q->runq while SCHEDULED */
        char *panic_msg;       /* DONE with ST_PANIC (never scheduled again) */
    };
    cw__task *inbox_next;      /* inbox, remote-free stack or slab free list */
    atomic_uint refs;          /* count | CW__REF_INBOX */
    uint16_t flags;            /* CW__T_*: executor thread only */
    uint16_t qidx;             /* its queue's index */
    alignas(max_align_t) unsigned char state[];
};

/*
 * Blocks live in slabs: one allocation of many blocks of one size class
 * (16-byte steps up to 1 KiB), or of a single block for larger states and
 * for blocks built by cw_spawn_remote() (cls CW__NO_CLASS). A slab has no
 * per-block allocator overhead and names the shared part for all its
 * blocks. Slabs are listed in the shared part; the executor thread alone
 * hands blocks out and takes them back (other threads push freed blocks
 * on sh->rfree); the executor frees a slab that empties (keeping one empty
 * slab per class). Once the executor is gone, each slab still holding
 * blocks counts them down atomically and the last one frees it.
 */
struct cw__slab {
    cw__shared *shared;
    cw__list all;              /* sh->slabs */
    cw__list partial;          /* ex->partial[cls] while it has room */
    cw__task *free;            /* blocks given back, linked by inbox_next */
    size_t size;               /* block size */
    uint32_t nblocks;          /* blocks it holds */
    uint32_t nused;            /* blocks handed out at least once */
    uint32_t nalloc;           /* blocks handed out now */
    atomic_uint live;          /* once the executor is gone: blocks out;
                                  the last one frees the slab */
    uint16_t cls;              /* size class, or CW__NO_CLASS */
    alignas(max_align_t) unsigned char blocks[];
};

#define CW__SLAB_BYTES ((size_t)32 << 10)

union cw__join_slot {
    cw_waker *waiter;               /* the task awaiting this one (owned ref) */
    struct cw_remote_join *rjoin;   /* CW__T_RJOIN (no cw_join then) */
};

/* Push a block on a Treiber stack of the shared part (the inbox, rfree),
 * linked by inbox_next; false, with nothing pushed, once the stack is
 * closed (CW__INBOX_CLOSED: the executor is gone). Any thread. */
static inline bool cw__stack_push(_Atomic(cw__task *) *top, cw__task *t)
{
    cw__task *head = atomic_load(top);
    do {
        if (head == CW__INBOX_CLOSED)
            return false;
        t->inbox_next = head;
    } while (!atomic_compare_exchange_weak(top, &head, t));
    return true;
}

static inline cw__shared *cw__task_shared(const cw__task *t)
{
    return t->slab->shared;
}

/* The optional slots, counted back from the block's end. */
static inline char *cw__task_slot(const cw__task *t, uint16_t which)
{
    char *end = (char *)(uintptr_t)t + t->slab->size;
    size_t off = 8;
    if (which != CW__T_X_DROP && (t->flags & CW__T_X_DROP))
        off += 8;
    if (which == CW__T_X_STAMP && (t->flags & CW__T_X_JOIN))
        off += 8;
    return end - off;
}

static inline cw_drop_fn cw__task_drop_fn(const cw__task *t)
{
    return (t->flags & CW__T_X_DROP) ? *(cw_drop_fn *)(void *)cw__task_slot(t, CW__T_X_DROP)
                                     : NULL;
}

/* Only for blocks with X_JOIN. */
static inline union cw__join_slot *cw__task_join(const cw__task *t)
{
    assert(t->flags & CW__T_X_JOIN);
    return (union cw__join_slot *)(void *)cw__task_slot(t, CW__T_X_JOIN);
}

/* Only for blocks with X_STAMP. */
static inline uint64_t *cw__task_stamp(const cw__task *t)
{
    assert(t->flags & CW__T_X_STAMP);
    return (uint64_t *)(void *)cw__task_slot(t, CW__T_X_STAMP);
}

/* -EAGAIN until DONE, then 0, CW_EPANIC or -ECANCELED. */
static inline int cw__task_status(const cw__task *t)
{
    if (!(t->flags & CW__T_DONE))
        return -EAGAIN;
    return (t->flags & CW__T_ST_PANIC) ? CW_EPANIC : (t->flags & CW__T_ST_CANCEL) ? -ECANCELED : 0;
}

static inline cw__task *cw__task_of_waker(const cw_waker *w)
{
    return (cw__task *)(uintptr_t)w;
}

static inline cw__task *cw__task_of_join(const cw_join *j)
{
    return (cw__task *)(uintptr_t)j;
}

void cw__task_release(cw__task *t);
void cw__task_end(cw_executor *ex, cw__task *t, int status);
void cw__task_drop_state(cw__task *t);
static inline void cw__task_wake_local(cw_executor *ex, cw__task *t);
void cw__queue_runnable(cw_executor *ex, cw_queue *q, uint64_t stamp);
static inline void cw__task_enqueue(cw_executor *ex, cw__task *t);
/* Executor free: cancel every live task (a walk over the slabs). */
void cw__tasks_cancel_all(cw_executor *ex);
/* Executor free, last: free the empty slabs; each slab with blocks still
 * referenced is freed by its last block, and holds a reference on the
 * shared part until then. */
void cw__slabs_detach(cw_executor *ex);
/* Blocks freed on other threads go back to their slabs (executor thread:
 * when a size class runs out of room, and after each round). */
void cw__slabs_reclaim(cw_executor *ex);
/* A block built off the executor thread (cw_spawn_remote): a slab of its
 * own; the executor adopts it (cw__slab_adopt) when it takes it in. */
cw__task *cw__task_alloc_remote(cw__shared *sh, size_t state_size, uint16_t xflags);
void cw__slab_adopt(cw_executor *ex, cw__task *t);
void cw__task_free_unadopted(cw__task *t);

/* ---- cw_spawn_remote (spawn_remote.c) --------------------------------------
 * A remotely spawned block reaches the executor through the inbox with
 * CW__T_SPAWNING set: the drain finishes the spawn; cw_executor_free()
 * cancels one still there. cw__task_end() reports to a cw_remote_join
 * (CW__T_RJOIN) before the state is dropped. */
void cw__spawn_remote_finish(cw_executor *ex, cw__task *t);
void cw__spawn_remote_cancel(cw_executor *ex, cw__task *t);
void cw__remote_join_end(cw__task *t, int status);

/* ---- the default clock (clock.c) ------------------------------------------
 * CLOCK_MONOTONIC read through the TSC between anchors where the TSC is
 * invariant or the kernel keeps time with it; clock_gettime() elsewhere. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CW__HAVE_TSC 1 /* rdtsc and <cpuid.h> */
#endif
struct cw__clock {
    uint64_t start_ns, start_tsc;   /* calibration window start */
    uint64_t anchor_ns, anchor_tsc; /* latest clock_gettime() and its TSC */
    uint64_t anchor_ticks;          /* re-anchor after this many ticks */
    uint64_t ns_per_tick_q32;       /* measured rate, 32.32 fixed point */
    uint64_t last_ns;               /* the latest reading: never go back */
    uint64_t (*counter)(void);      /* re-reads it at an anchor; NULL: no */
    bool calibrated;
};

uint64_t cw__monotonic_ns(void *arg);   /* clock_gettime(CLOCK_MONOTONIC) */
uint64_t cw__clock_now(void *clock);    /* arg: struct cw__clock * */
/* The same from a counter value and a clock (tests drive them). */
uint64_t cw__clock_read(struct cw__clock *c, uint64_t tsc, uint64_t (*mono)(void *));
/* Start from the pair (tsc, ns), with no counter to re-read (set it after). */
void cw__clock_start(struct cw__clock *c, uint64_t tsc, uint64_t ns);
/* Whether to read the TSC, from what the machine reports: true when
 * CPUID leaf 0x80000007 exists (max_ext_leaf, EAX of leaf 0x80000000, is
 * at least 0x80000007) and its EDX has bit 8 (invariant TSC) set, or when
 * clocksource (the contents of .../clocksource0/current_clocksource, a
 * trailing newline allowed; NULL: unreadable) is "tsc". Pure: the tests
 * drive it with simulated inputs. */
bool cw__tsc_decide(uint32_t max_ext_leaf, uint32_t edx_80000007, const char *clocksource);
/* cw__tsc_decide() on this machine's CPUID and clocksource, probed once
 * per process (thread-safe); false where CW__HAVE_TSC is not defined. */
bool cw__tsc_usable(void);
/* Start *c on the TSC if use_tsc (and CW__HAVE_TSC): true, and the
 * executor reads cw__clock_now(c). False: it reads cw__monotonic_ns. */
bool cw__clock_init(struct cw__clock *c, bool use_tsc);

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
    bool plain;                /* no hooks, no histograms, no catch_panics:
                                  the poll loop's lean copy (executor.c) */
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

/* Longest span a deadline may be ahead of now: virtual and wall times are
 * compared by signed difference, so anything beyond 2^63 would read as
 * past. 2^62 ns is 146 years: settings larger than that mean "never". */
#define CW__MAX_SPAN_NS ((uint64_t)1 << 62)

static inline uint64_t cw__deadline(uint64_t now, uint64_t span)
{
    return now + (span < CW__MAX_SPAN_NS ? span : CW__MAX_SPAN_NS);
}

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

/* One byte per thread whose address names the thread: comparing it is
 * cheaper than pthread_self() + pthread_equal() on every wake (a TLS
 * address in the initial-exec model is one load from the thread pointer). */
extern _Thread_local char cw__thread_token __attribute__((tls_model("initial-exec")));

static inline bool cw__on_thread(const cw__shared *sh)
{
    return sh->thread == &cw__thread_token;
}

/* The core's part of an executor, no driver yet (loop.c adds it). */
int cw__executor_new(const cw_config *cfg, cw_executor **out);
void cw__executor_schedule(cw_executor *ex);
void cw__executor_yield_to_loop(cw_executor *ex); /* cw_cx_yield_to_loop() */
void cw__executor_flush_soon(cw_executor *ex);    /* a reply to write soon */
void cw__executor_round(cw_executor *ex);
void cw__executor_update_watch(cw_executor *ex);
void cw__inbox_drain(cw_executor *ex);
/* Record v in h: a few instructions, inlined on the poll path. */
static inline void cw__hist_record(cw_hist *h, uint64_t v)
{
    unsigned b = v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
    h->buckets[b < CW_HIST_BUCKETS ? b : CW_HIST_BUCKETS - 1]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static inline cw_queue *cw__task_queue(const cw_executor *ex, const cw__task *t)
{
    return &ex->queues[t->qidx];
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

/* ---- the loop (loop.c): the one file that calls the driver ------------
 * Each is the driver op of the same name (driver.h) with the core's
 * bookkeeping around it. */
void cw__loop_schedule(cw_executor *ex);          /* a round after I/O */
void cw__loop_idle(cw_executor *ex);              /* a round left no work */
/* Watch the remote-wake fd or not: 0, or -1 when the loop refuses (out of
 * memory: watching may allocate inside the loop). */
int cw__loop_watch_notify(cw_executor *ex, bool on);
void cw__loop_arm_timer(cw_executor *ex, uint64_t delay_ns);
void cw__loop_disarm_timer(cw_executor *ex);
void *cw__loop_fd_new(cw_executor *ex, int fd, short what, cw_fdwait *w);
int cw__loop_fd_arm(cw_executor *ex, void *rec);
void cw__loop_fd_free(cw_executor *ex, void *rec);
int cw__loop_run_once(cw_executor *ex);
void cw__loop_free(cw_executor *ex);

#endif
