/*
 * tasks.h - a task block, the slabs that hold them, and the task functions
 * (task.c, spawn_remote.c). Not installed.
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
#ifndef CW_CORE_TASKS_H
#define CW_CORE_TASKS_H

#include <stdalign.h>
#include <stdatomic.h>

#include "shared.h"

/* The block's layout and the handles depend on CW_CHECKED: a file that
 * includes this without config.h would disagree with the library. */
#ifndef PACKAGE_VERSION
#error "include config.h before tasks.h (internal.h)"
#endif

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
    CW__T_X_ACCT = 1 << 15,   /* ... an accounting slot (accounting on) */
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
 * cw_remote_join with RJOIN), runnable_at (X_STAMP), the accounting
 * (X_ACCT, 32 bytes: cw__acct). A task that needs none of them costs the
 * header only; the block size is its slab's.
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
#ifdef CW_CHECKED
    /* The checked build's two counters (see "handles" below; the header
     * grows to 64 bytes there): */
    atomic_uint gen;           /* the block's generation: a new one from
                                  a global counter each time it is given
                                  to a task, 0 while it is free */
    atomic_uint wakers;        /* waker clones outstanding */
#endif
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

/* A task's accounting (cw_config_set_task_accounting()), for the task
 * dump: times of the executor's clock. */
typedef struct cw__acct {
    uint64_t spawned;   /* when it was spawned (taken in, for a remote spawn) */
    uint64_t polls;     /* polls so far */
    uint64_t cpu_ns;    /* their total duration */
    uint64_t last_poll; /* when its last poll ended (0: none yet) */
} cw__acct;

/* Only for blocks with X_ACCT: it lies before the 8-byte slots. */
static inline cw__acct *cw__task_acct(const cw__task *t)
{
    assert(t->flags & CW__T_X_ACCT);
    uint16_t f = t->flags;
    size_t off = sizeof(cw__acct)
                 + 8 * (size_t)(!!(f & CW__T_X_DROP) + !!(f & CW__T_X_JOIN) + !!(f & CW__T_X_STAMP));
    return (cw__acct *)(void *)((char *)(uintptr_t)t + t->slab->size - off);
}

/*
 * Whether a live task that is not running has a wake arranged: it is
 * queued (SCHEDULED) or was woken during its poll (NOTIFIED); a remote
 * wake or a pending abort holds it in the inbox (REF_INBOX); or somebody
 * holds a clone of its waker, which is how every leaf future waits
 * (cw_sleep, cw_fdwait, cw_join_poll, the sync.h waits, the bev waits:
 * each keeps a clone while registered), and how a user's own code does.
 * The references that are not waker clones: the executor's (while the
 * task lives), its join handle's (HAS_JOIN) and the inbox's. The waker a
 * poll borrows (cw_cx_waker()) is no reference. False: nothing will ever
 * poll the task again (a poll that returned CW_PENDING without arranging
 * a wake). Executor thread; reads refs once (a clone made or freed on
 * another thread meanwhile may change the answer). O(1).
 */
static inline bool cw__task_wake_arranged(const cw__task *t)
{
    unsigned r = atomic_load_explicit(&t->refs, memory_order_relaxed);
    if ((r & CW__REF_INBOX) || (t->flags & (CW__T_SCHEDULED | CW__T_NOTIFIED)))
        return true;
    unsigned own = 1u + !!(t->flags & CW__T_HAS_JOIN);
    return CW__REF_COUNT(r) > own;
}

/* -EAGAIN until DONE, then 0, CW_EPANIC or -ECANCELED. */
static inline int cw__task_status(const cw__task *t)
{
    if (!(t->flags & CW__T_DONE))
        return -EAGAIN;
    return (t->flags & CW__T_ST_PANIC) ? CW_EPANIC : (t->flags & CW__T_ST_CANCEL) ? -ECANCELED : 0;
}

/* ---- handles: cw_waker *, cw_join *, cw_spawner * ------------------------
 *
 * In the release build a handle is the block's address, nothing more: a
 * waker clone is a reference on the block, a join handle another, and
 * neither can be told from a copy of itself or from a handle of the next
 * task given the same block.
 *
 * The checked build (--enable-debug, CW_CHECKED) catches a handle used
 * after its reference was given back, with two counters in the block
 * header and a tag in the handle:
 *
 * - gen: each time a block is given to a task it takes a new generation
 *   from a global counter (never 0 in its low 16 bits; task.c), and 0
 *   when it is given back. A handle carries the low 16 bits of its
 *   block's generation in its top 16 bits (user-space addresses on
 *   x86-64 and arm64 fit in 48 bits); every public function that takes
 *   a handle compares the two (cw__handle_check()): a block whose
 *   generation is 0 is free (the handle was released: "already
 *   released/freed"), one whose generation differs has been given to a
 *   new task since ("stale").
 * - wakers: the task's waker clones outstanding; cw_waker_clone() adds
 *   one, cw_waker_free() and cw_waker_wake() take one, and the call that
 *   finds none gives back a reference it never had (a clone freed twice,
 *   a borrowed cw_cx_waker() freed). It is also the after-poll check's
 *   answer to "is a wake arranged" (checked.c): every leaf future holds
 *   its task through a clone.
 *
 * Why a tag and counters, not an indirection or a poisoned refcount: an
 * indirection (a small record per clone) would make cw_waker_clone(),
 * which cannot fail, allocate, and its freed records would be reused by
 * the allocator in turn; poisoning the refcount catches nothing while
 * other references (the executor's, the join handle's) keep it above
 * zero, which is the case of a clone freed twice on a live task. The tag
 * costs no memory, keeps clone and free allocation-free, and makes
 * cw_waker_will_wake() tell a stale waker from the block's new task.
 *
 * Caught, each with one line naming the call and the handle, then
 * abort(): any waker or join function on a handle whose block is free
 * or holds another task; a cw_waker_free()/cw_waker_wake() beyond the
 * task's clones; a join handle used after cw_join_free() while its task
 * lives (CW__T_HAS_JOIN gone). Not caught: a clone freed twice while
 * another clone of the same task is held (the count cannot tell whose
 * reference went: the call that gives back the last one aborts, later
 * than the mistake); a freed waker used while its task's block is still
 * referenced (a wake of a live task through it works); a handle kept
 * across a multiple of 65,536 generations of its block (the tag wraps);
 * a handle whose block's slab was given back to the allocator (a state
 * over 1 KiB has a slab of its own; an emptied slab beyond one per size
 * class) -- the check then reads freed memory, which ASan and valgrind
 * report; on other targets than x86-64 and arm64 (no tag) the reused
 * block is not told apart either.
 */
#if defined(CW_CHECKED) && (defined(__x86_64__) || defined(__aarch64__)) \
    && !defined(__SANITIZE_HWADDRESS__)
#define CW__TAG_SHIFT 48
#define CW__TAG_MASK ((uintptr_t)0xffff << CW__TAG_SHIFT)
#endif

/* The handle given out for t (in a checked build, tagged). */
static inline void *cw__handle_of(const cw__task *t)
{
#ifdef CW__TAG_SHIFT
    uintptr_t a = (uintptr_t)t;
    assert(!(a & CW__TAG_MASK)); /* a user-space address fits in 48 bits */
    return (void *)(a | ((uintptr_t)(atomic_load_explicit(&t->gen, memory_order_relaxed)
                                      & 0xffffu)
                         << CW__TAG_SHIFT));
#else
    return (void *)(uintptr_t)t;
#endif
}

/* The block of a handle, unchecked (internal uses). */
static inline cw__task *cw__task_of_handle(const void *h)
{
#ifdef CW__TAG_SHIFT
    return (cw__task *)((uintptr_t)h & ~CW__TAG_MASK);
#else
    return (cw__task *)(uintptr_t)h;
#endif
}

static inline cw__task *cw__task_of_waker(const cw_waker *w)
{
    return cw__task_of_handle(w);
}

static inline cw__task *cw__task_of_join(const cw_join *j)
{
    return cw__task_of_handle(j);
}

#ifdef CW_CHECKED
/* The checked build's test of a handle the user passed to `call`: aborts
 * (one line naming the call and the handle) when its block is free or
 * holds another task (see "handles" above). (checked.c) */
void cw__handle_check(const void *h, const cw__task *t, const char *call, bool join);
#endif

/* The block of a waker the user passed to `call`; in the checked build,
 * checked first (cw__handle_check()). */
static inline cw__task *cw__waker_task(const cw_waker *w, const char *call)
{
    cw__task *t = cw__task_of_waker(w);
#ifdef CW_CHECKED
    cw__handle_check(w, t, call, false);
#else
    (void)call;
#endif
    return t;
}

/* The block of a join handle the user passed to `call`. The checked
 * build (CW_CHECKED) aborts, naming the call and the handle, when the
 * block is free or holds another task (cw__handle_check()), or no longer
 * has a handle: it was freed (a second cw_join_free(), or a use after
 * it) while the task lives on. Off the poll path: the join functions
 * only. */
static inline cw__task *cw__join_task(const cw_join *j, const char *call)
{
    cw__task *t = cw__task_of_join(j);
#ifdef CW_CHECKED
    cw__handle_check(j, t, call, true);
    if ((t->flags & (CW__T_HAS_JOIN | CW__T_FREE)) != CW__T_HAS_JOIN)
        cw__misuse_abort(call, j, "join handle already freed (freed twice, or used after "
                                  "cw_join_free())");
#else
    (void)call;
#endif
    return t;
}

/* The library's own tasks, a spawner's anchors (spawn_remote.c), keep
 * the remote-wake fd watched like any task, but no statistic counts them
 * and no hook sees them. They are told by their poll function: the flags
 * have no bit left. */
cw_poll cw__anchor_poll(void *state, cw_cx *cx);
static inline bool cw__task_internal(const cw__task *t)
{
    return t->poll == cw__anchor_poll;
}
void cw__task_release(cw__task *t);
void cw__task_end(cw_executor *ex, cw__task *t, int status);
void cw__task_drop_state(cw__task *t);
/* (cw__task_enqueue() and cw__task_wake_local(), inline on the poll
 * path, are in exec.h: they need the executor.) */
void cw__queue_runnable(cw_executor *ex, cw_queue *q, uint64_t stamp);
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

#endif
