/*
 * eevdf.h - the scheduler over queues, as pure state (internal).
 *
 * No libevent, no clock, no allocation: the executor tells this module what
 * happened (a queue became runnable, a slice used so many nanoseconds, a
 * queue emptied) and asks it which queue runs next. The tests drive it with
 * invented durations. The caller provides the memory of the heaps
 * (cw__eevdf_init), sized by the number of queues.
 *
 * Cost, n runnable queues: enqueue (idle -> runnable) O(1); pick O(1)
 * plus O(log n) for each queue whose eligibility changed since the last
 * pick (about one per pick when many queues are runnable); charge O(1),
 * O(log n) when it renews the deadline; dequeue and reweight O(log n).
 */
#ifndef CW_EEVDF_H
#define CW_EEVDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Virtual time advances by ns * CW__EEVDF_SCALE / weight: one unit of
 * virtual time is weight / 2^20 ns of a queue's running (under 1 ns up to
 * weight 2^20, 4.1 us at the largest weight, 2^32 - 1). The remainder of
 * each charge is carried (cw__eq.vrem), so no weight loses service to the
 * rounding; see eevdf.c, "Precision". */
#define CW__EEVDF_SCALE ((uint64_t)1 << 20)

typedef struct cw__eq cw__eq;

/* One queue's scheduling entity. Fields are owned by eevdf.c. */
struct cw__eq {
    uint64_t weight;     /* w_i >= 1 */
    uint64_t slice_ns;   /* configured request, 0: derived from latency */
    uint64_t vruntime;   /* v_i (wraps; compare with cw__vt_before) */
    uint64_t vrem;       /* v_i's fraction: the exact virtual runtime is
                            vruntime + vrem / weight, 0 <= vrem < weight */
    uint64_t deadline;   /* d_i = v_i + r_i * SCALE / w_i at request start */
    int64_t vlag;        /* lag V - v_i saved while idle (clamped) */
    uint64_t v_left;     /* V when it went idle */
    uint32_t index;      /* position in the config: ties go to the lower */
    uint32_t new_weight; /* reweight requested while running (0: none) */
    bool on_rq;          /* runnable: counted in the sums */
    bool in_pending;     /* on the pending list (placed, not yet in a heap) */
    bool armed;          /* has been runnable: its latency target counts */
    uint8_t heap;        /* CW__EQ_NO_HEAP, CW__EQ_ELIG or CW__EQ_INELIG */
    uint32_t lat_rank;   /* its latency target's rank, CW__EQ_NO_RANK: none */
    uint32_t heap_pos;   /* its slot in that heap */
    cw__eq *next_pending;
};

/* cw__eq.lat_rank of a queue with no latency target. */
#define CW__EQ_NO_RANK UINT32_MAX

/* Most latency ranks (distinct targets) one scheduler tracks. */
#define CW__EEVDF_MAX_RANKS 1024 /* the executor's CW_MAX_QUEUES */

/* cw__eq.heap: which heap of cw__eevdf holds the queue. */
enum { CW__EQ_NO_HEAP, CW__EQ_ELIG, CW__EQ_INELIG };

/* A heap slot: the queue and its key there (d_i in elig, v_i in inelig),
 * kept side by side so that a sift reads no queue. */
typedef struct cw__eevdf_slot {
    uint64_t key;
    cw__eq *e;
} cw__eevdf_slot;

typedef struct cw__eevdf {
    /*
     * V, the weighted average of the runnable queues' virtual times, is
     * kept as two sums relative to a moving base b:
     *
     *     sum_wv = Sum_i w_i * (v_i - b)        load = Sum_i w_i
     *     V      = b + sum_wv / load
     *
     * Lag conservation (Sum_i w_i * (V - v_i) = 0) is exactly this
     * definition. |v_i - b| stays within a few slices' worth of virtual
     * time because b is moved to V at every pick, so each product fits
     * in 96 bits and the sum over 1024 queues in 106: a 128-bit integer
     * holds it with room to spare (the kernel gets by with 64 bits by
     * bounding the weights; ours are any uint32).
     */
    __int128 sum_wv;
    uint64_t load;
    uint64_t base;
    uint64_t v_idle;      /* V while nothing is runnable */
    uint32_t nr_running;  /* runnable queues, curr included */
    cw__eq *pending;      /* runnable, placed, not yet in a heap (O(1) wake) */
    cw__eq *curr;         /* the queue whose slice runs now (in elig), or NULL */
    uint64_t curr_ns;     /* ns of curr's slice already charged */
    uint64_t latency_ns;
    uint64_t min_slice_ns;
    /*
     * Every runnable queue not on the pending list sits in one of two
     * 4-ary min-heaps (arrays; each queue knows its slot):
     *
     *     elig    by (d_i, index): the queues last seen eligible, and curr
     *     inelig  by (v_i, index): the queues last seen ineligible
     *
     * The split is a hint, not an invariant (V moves both ways); pick
     * makes it exact where it matters. See eevdf.c.
     */
    uint32_t n_elig, n_inelig;
    uint32_t cap;         /* queues it may hold: slots in each heap */
    /*
     * The idle queues that have a latency target and have been runnable
     * (armed), counted by the target's rank (the executor ranks the
     * distinct targets, shortest first): lat_n[r] of them have rank r,
     * and a two-level bitmap marks the ranks with any, so the shortest
     * target of an idle queue is two bit scans away. Kept at every
     * idle <-> runnable change, O(1) (cw__eevdf_idle_rank).
     */
    uint32_t *lat_n;      /* nranks counts, or NULL: no ranks */
    uint32_t nranks;
    uint32_t lat_top;     /* bit w: lat_bits[w] != 0 */
    uint64_t lat_bits[CW__EEVDF_MAX_RANKS / 64];
    uint32_t nqueues;     /* registered (cw__eevdf_add) */
    cw__eevdf_slot *elig; /* cap slots each, in the caller's memory */
    cw__eevdf_slot *inelig;
} cw__eevdf;

/* The slots cw__eevdf_init() needs for a scheduler of at most n queues. */
static inline size_t cw__eevdf_slots(uint32_t n)
{
    return 2 * (size_t)n;
}

/* Set up an empty scheduler for at most n queues (cw__eevdf_add), over
 * `slots`: cw__eevdf_slots(n) of them, uninitialised, owned by the caller
 * and alive as long as s is used. */
void cw__eevdf_init(cw__eevdf *s, cw__eevdf_slot *slots, uint32_t n, uint64_t latency_ns,
                    uint64_t min_slice_ns);
void cw__eq_init(cw__eq *e, uint32_t index, uint32_t weight, uint64_t slice_ns);

/* Give the scheduler the counts for latency ranks 0..nranks-1 (zeroed;
 * nranks <= CW__EEVDF_MAX_RANKS), owned by the caller. Before any add. */
void cw__eevdf_set_rank_counts(cw__eevdf *s, uint32_t *counts, uint32_t nranks);

/* Register an idle queue (cw__eq_init'ed) with the scheduler: every queue
 * is added once, before its first enqueue. lat_rank: the rank of its
 * latency target (below nranks), or CW__EQ_NO_RANK; armed: the target
 * counts from now on, else from the queue's first enqueue. */
void cw__eevdf_add(cw__eevdf *s, cw__eq *e, uint32_t lat_rank, bool armed);

/* The smallest rank among the idle queues that have been runnable and
 * have a latency target, or CW__EQ_NO_RANK. O(1). */
uint32_t cw__eevdf_idle_rank(const cw__eevdf *s);

/* a before b in virtual time (wrap-safe). */
static inline bool cw__vt_before(uint64_t a, uint64_t b)
{
    return (int64_t)(a - b) < 0;
}

/* Idle -> runnable: place at V - lag. Returns true when the running
 * queue's slice should end at the next poll (e is eligible and its
 * deadline is earlier than curr's). O(1): the heap insert waits for the
 * next pick. */
bool cw__eevdf_enqueue(cw__eevdf *s, cw__eq *e);

/* Runnable, not running -> idle (its last task went away). */
void cw__eevdf_dequeue(cw__eevdf *s, cw__eq *e);

/* Choose the next queue (eligible, earliest deadline; ties: lower index),
 * make it curr and return it, or NULL when nothing is runnable. Requires
 * curr == NULL. *slice_ns gets the wall time the slice may last. */
cw__eq *cw__eevdf_pick(cw__eevdf *s, uint64_t *slice_ns);

/* Charge curr for its slice so far (ns since the pick), so that V is
 * current when a queue is placed mid-slice (Linux's update_curr()). */
void cw__eevdf_update_curr(cw__eevdf *s, uint64_t ns);

/* End curr's slice having used ns of CPU in all (what update_curr charged
 * is not charged again); it stays runnable or goes idle. */
void cw__eevdf_charge(cw__eevdf *s, uint64_t ns, bool still_runnable);

/* Change a weight. For curr it applies when the slice is charged; for
 * the others now, preserving w_i * lag_i so that V does not move. */
void cw__eevdf_reweight(cw__eevdf *s, cw__eq *e, uint32_t weight);

/* The request r_i (wall ns) the queue would get now. */
uint64_t cw__eevdf_request(const cw__eevdf *s, const cw__eq *e);

/* V, and the lag V - v_i of a queue (its saved lag when idle). */
uint64_t cw__eevdf_avg(const cw__eevdf *s);
int64_t cw__eevdf_lag(const cw__eevdf *s, const cw__eq *e);
bool cw__eevdf_eligible(const cw__eevdf *s, const cw__eq *e);

/* Recompute every sum and the heap invariants from scratch (walking the
 * heaps and the pending list); aborts on a mismatch. O(n). Built with
 * CW_DEBUG, every operation ends with it; tests call it. */
void cw__eevdf_check(const cw__eevdf *s);

#endif
