/*
 * eevdf.c - Earliest Eligible Virtual Deadline First over queues.
 *
 * Pure: no libevent, no clock, no allocation (the caller provides the
 * heaps' arrays, sized by its number of queues). See eevdf.h for the model.
 *
 * Symbols, as in EEVDF (Stoica & Abdel-Wahab, 1995) and Linux's fair.c:
 *
 *   w_i   weight of queue i                       cw__eq.weight
 *   v_i   virtual runtime: advances by t * S / w_i when the queue runs
 *         for t ns (S = CW__EEVDF_SCALE)            cw__eq.vruntime
 *   V     weighted average of v_i over the runnable queues
 *         V = b + sum_wv / load                     cw__eevdf.{base,sum_wv,load}
 *   lag_i = V - v_i: service owed to queue i (in virtual time). Since
 *         Sum w_i * lag_i = 0 by definition of V, a queue that is owed
 *         is balanced by queues that are ahead.
 *   r_i   request: the queue's configured slice, else
 *         max(min_slice, latency / n_runnable)
 *   d_i   virtual deadline = v_i + r_i * S / w_i, set when a request starts
 *         and renewed once v_i reaches it.
 *
 * A queue is eligible when lag_i >= 0, i.e. v_i <= V. Written without the
 * division (as entity_eligible() does, for precision):
 *
 *   (v_i - b) * load <= sum_wv
 *
 * Pick: among eligible queues, the earliest d_i (ties: lower index). The
 * runnable queues not on the pending list sit in two heaps: `elig`,
 * ordered by (d_i, index), and `inelig`, ordered by (v_i, index). Nothing
 * keeps a queue in the right one as V moves (up as queues run, down when
 * one leaves with negative lag); pick sorts it out where it matters:
 *
 *   1. the tops of inelig with v_i <= V move to elig. Eligibility is
 *      monotone in v_i, so afterwards every eligible queue is in elig;
 *   2. the tops of elig that are not eligible move to inelig;
 *   3. the top of elig is now eligible, and no queue in elig, eligible
 *      or not, has an earlier (d_i, index): it is the answer.
 *
 * The usual pick finds curr (which stays in elig while it runs) past V on
 * top of elig, and a queue V has just passed on top of inelig: the two
 * swap places, one sift down each. A queue moves when its eligibility
 * changes, O(log n) each time, about once per pick however many queues
 * are runnable; the rest of pick is O(1). curr may stay in elig because
 * its key there, d_i, only changes at a deadline renewal (sifted down
 * then), while its v_i, the key of inelig, changes as it is charged. The
 * treap this replaces (keyed by v_i, augmented with the subtree's
 * earliest deadline) paid a split and two merges per pick, some 1300
 * instructions with 256 runnable queues.
 *
 * Leaving and re-entering: a queue that empties keeps its lag, clamped to
 * one request either way (so a long sleep earns no burst and an early
 * wake loses no credit). A negative lag is worked off while the queue
 * sleeps, as if it had stayed in the competition with nothing to run
 * (Linux's delayed dequeue): on re-entry it shrinks by how far V advanced
 * meanwhile, never past 0. Without that, a queue that runs briefly and
 * sleeps (the latency-sensitive kind) would come back ineligible every
 * time and wait out other queues' slices. On re-entry it is placed so that its lag after
 * placement equals the saved lag. Adding a queue of weight w at
 * v = V - l moves the average to V' = V - w*l/(W + w), leaving the queue
 * a lag of l*W/(W + w); so, as place_entity() does, the saved lag is
 * inflated by (W + w)/W first. With nothing runnable V stays where it
 * was (v_idle), the reference for the next queue to wake.
 *
 * Precision. Weights are any uint32 from 1 (cw_config_add_queue() and
 * cw_queue_set_weight() take them all), and a slice may be a microsecond,
 * so t * S / w_i can be below one unit: at w_i = 2^30 a 1 us charge is
 * 0.98 units. Truncating each charge would lose it whole, v_i would stand
 * still and no other queue would be eligible again. So the remainder is
 * carried (cw__eq.vrem, as vruntime's fraction in units of 1/w_i):
 *
 *     v_i + vrem_i / w_i  +=  t * S / w_i          (exactly)
 *
 * After any charges adding up to T ns, v_i has advanced by T * S / w_i
 * rounded down, off by less than one unit, and the error does not grow
 * with the number of charges: the long-run shares are the weights' at
 * every weight. What remains is the granularity of one unit, w_i / S ns
 * of the queue's running (under 1 ns for w_i <= 2^20, 4.1 us at 2^32 - 1):
 * eligibility (which compares the integer v_i) may be decided up to that
 * much early, and a request (d_i - v_i) is rounded down to whole units but
 * never empty, so a slice of a heavy queue may last up to one unit longer
 * than asked. Neither accumulates. Ranges: t < 2^43 ns (2.4 h) keeps
 * t * S + vrem in 64 bits (longer charges take the 128-bit path); spans
 * are capped at 2^60, so w_i * (v_i - b) < 2^92 and the sum over 1024
 * queues fits the 128-bit sum_wv.
 *
 * Charging happens at the end of a slice, with the slice's measured
 * duration (the sum of its polls), and before a queue is placed mid-slice
 * (update_curr), so V is current where it matters without a division per
 * poll. XXX: the poll in progress when a wake happens is charged later.
 */
#include "config.h"

#include "eevdf.h"

#include "clockworker/config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef CW_DEBUG
#define CHECK(s) cw__eevdf_check(s)
#else
#define CHECK(s) ((void)0)
#endif

static void fail(const char *what)
{
    fprintf(stderr, "eevdf: invariant broken: %s\n", what);
    abort();
}

/* Largest virtual span one request may have: keeps every product in range. */
#define VSPAN_MAX ((int64_t)1 << 60)

static int64_t vdiff(uint64_t a, uint64_t b)
{
    return (int64_t)(a - b);
}

/* Pick order: (d, index). */
static bool dl_before(const cw__eq *a, const cw__eq *b)
{
    int64_t d = vdiff(a->deadline, b->deadline);
    return d < 0 || (d == 0 && a->index < b->index);
}

/* (ns * S + frac) / w and its remainder, capped at VSPAN_MAX (the
 * remainder is then 0). frac < w. With frac 0, ns of running at weight w
 * as virtual time (a lag limit). */
static uint64_t vdiv(uint64_t ns, uint64_t frac, uint64_t w, uint64_t *rem)
{
    if (ns < (uint64_t)1 << 43) {
        /* ns * S < 2^63 and frac < 2^32: 64 bits, one division for
         * quotient and remainder */
        uint64_t x = ns * CW__EEVDF_SCALE + frac;
        uint64_t q = x / w;
        if (q <= (uint64_t)VSPAN_MAX) {
            *rem = x % w;
            return q;
        }
    } else {
        unsigned __int128 x = (unsigned __int128)ns * CW__EEVDF_SCALE + frac;
        if (x / w <= (unsigned __int128)VSPAN_MAX) {
            *rem = (uint64_t)(x % w);
            return (uint64_t)(x / w);
        }
    }
    *rem = 0;
    return (uint64_t)VSPAN_MAX;
}

/* Charge e for ns of running: v_i + vrem_i / w_i += ns * S / w_i exactly
 * (see "Precision"). Returns what vruntime advanced by. */
static int64_t vcharge(cw__eq *e, uint64_t ns)
{
    return (int64_t)vdiv(ns, e->vrem, e->weight, &e->vrem);
}

/* Start a request: d_i = v_i + r_i * S / w_i from the exact virtual
 * runtime, rounded down to a whole unit but at least one, so that a
 * request is never empty. */
static void new_deadline(const cw__eevdf *s, cw__eq *e)
{
    uint64_t rem;
    uint64_t span = vdiv(cw__eevdf_request(s, e), e->vrem, e->weight, &rem);
    e->deadline = e->vruntime + (span ? span : 1);
}

void cw__eevdf_init(cw__eevdf *s, cw__eevdf_slot *slots, uint32_t n, uint64_t latency_ns,
                    uint64_t min_slice_ns)
{
    /* the heap arrays need no clearing: only slots below the counts are
     * read */
    s->cap = n;
    s->elig = slots;
    s->inelig = slots + n;
    s->sum_wv = 0;
    s->load = 0;
    s->base = 0;
    s->v_idle = 0;
    s->nr_running = 0;
    s->pending = NULL;
    s->curr = NULL;
    s->curr_ns = 0;
    s->latency_ns = latency_ns;
    s->min_slice_ns = min_slice_ns;
    s->n_elig = s->n_inelig = 0;
    s->nqueues = 0;
    s->lat_n = NULL;
    s->nranks = 0;
    s->lat_top = 0;
    for (unsigned w = 0; w < CW__EEVDF_MAX_RANKS / 64; w++)
        s->lat_bits[w] = 0;
}

void cw__eq_init(cw__eq *e, uint32_t index, uint32_t weight, uint64_t slice_ns)
{
    assert(weight >= 1);
    *e = (cw__eq){0};
    e->index = index;
    e->lat_rank = CW__EQ_NO_RANK;
    e->weight = weight;
    e->slice_ns = slice_ns;
}

uint64_t cw__eevdf_request(const cw__eevdf *s, const cw__eq *e)
{
    if (e->slice_ns)
        return e->slice_ns;
    uint64_t n = s->nr_running + (e->on_rq ? 0 : 1);
    uint64_t r = s->latency_ns / (n ? n : 1);
    return r > s->min_slice_ns ? r : s->min_slice_ns;
}

uint64_t cw__eevdf_avg(const cw__eevdf *s)
{
    if (!s->load)
        return s->v_idle;
    if (s->sum_wv >= 0 && s->sum_wv <= (__int128)UINT64_MAX) {
        /* The usual case: b was moved to V at the last pick and the sum
         * has grown since by what curr ran. Floor is truncation then, and
         * a 64-bit division gives the same quotient as a 128-bit one. */
        return s->base + (uint64_t)s->sum_wv / s->load;
    }
    __int128 q = s->sum_wv / (__int128)s->load;
    if (s->sum_wv < 0 && q * (__int128)s->load != s->sum_wv)
        q -= 1; /* floor */
    return s->base + (uint64_t)(int64_t)q;
}

bool cw__eevdf_eligible(const cw__eevdf *s, const cw__eq *e)
{
    if (!s->load)
        return true;
    return (__int128)vdiff(e->vruntime, s->base) * (__int128)s->load <= s->sum_wv;
}

int64_t cw__eevdf_lag(const cw__eevdf *s, const cw__eq *e)
{
    return e->on_rq ? vdiff(cw__eevdf_avg(s), e->vruntime) : e->vlag;
}

/* ---- idle queues by latency rank ------------------------------------------ */

_Static_assert(CW__EEVDF_MAX_RANKS / 64 <= 32, "lat_top has a bit per word");
_Static_assert(CW__EEVDF_MAX_RANKS >= CW_MAX_QUEUES, "a rank for every queue's target");

/* An armed queue with a target goes idle. */
static void idle_in(cw__eevdf *s, const cw__eq *e)
{
    uint32_t r = e->lat_rank;
    if (r == CW__EQ_NO_RANK || !e->armed)
        return;
    if (s->lat_n[r]++ == 0) {
        s->lat_bits[r / 64] |= (uint64_t)1 << (r % 64);
        s->lat_top |= 1u << (r / 64);
    }
}

/* An idle queue becomes runnable; the first time, it is armed instead. */
static void idle_out(cw__eevdf *s, cw__eq *e)
{
    uint32_t r = e->lat_rank;
    if (!e->armed) {
        e->armed = true;
        return;
    }
    if (r == CW__EQ_NO_RANK)
        return;
    assert(s->lat_n[r] > 0);
    if (--s->lat_n[r] == 0) {
        s->lat_bits[r / 64] &= ~((uint64_t)1 << (r % 64));
        if (!s->lat_bits[r / 64])
            s->lat_top &= ~(1u << (r / 64));
    }
}

void cw__eevdf_set_rank_counts(cw__eevdf *s, uint32_t *counts, uint32_t nranks)
{
    assert(!s->nqueues && nranks <= CW__EEVDF_MAX_RANKS);
    s->lat_n = counts;
    s->nranks = nranks;
}

void cw__eevdf_add(cw__eevdf *s, cw__eq *e, uint32_t lat_rank, bool armed)
{
    assert(!e->on_rq && !e->armed && s->nqueues < s->cap);
    assert(lat_rank == CW__EQ_NO_RANK || lat_rank < s->nranks);
    e->lat_rank = lat_rank;
    e->armed = armed;
    idle_in(s, e);
    s->nqueues++;
}

uint32_t cw__eevdf_idle_rank(const cw__eevdf *s)
{
    if (!s->lat_top)
        return CW__EQ_NO_RANK;
    unsigned w = (unsigned)__builtin_ctz(s->lat_top);
    return w * 64 + (unsigned)__builtin_ctzll(s->lat_bits[w]);
}

/* ---- the sums ---------------------------------------------------------- */

static void sum_add(cw__eevdf *s, cw__eq *e)
{
    s->sum_wv += (__int128)e->weight * vdiff(e->vruntime, s->base);
    s->load += e->weight;
    s->nr_running++;
    e->on_rq = true;
}

static void sum_sub(cw__eevdf *s, cw__eq *e)
{
    assert(e->on_rq && s->nr_running > 0 && s->load >= e->weight);
    s->sum_wv -= (__int128)e->weight * vdiff(e->vruntime, s->base);
    s->load -= e->weight;
    s->nr_running--;
    e->on_rq = false;
}

/* Move the base to V so that every v_i - b stays small. O(1). */
static void rebase(cw__eevdf *s, uint64_t V)
{
    s->sum_wv -= (__int128)s->load * vdiff(V, s->base);
    s->base = V;
}

/* Eligibility right after rebase(s, cw__eevdf_avg(s)): then b = V and
 * 0 <= sum_wv < load (V is the floor of the average), so
 * (v_i - b) * load <= sum_wv holds exactly when v_i - b <= 0. */
static bool eligible_rebased(const cw__eevdf *s, const cw__eq *e)
{
    bool r = vdiff(e->vruntime, s->base) <= 0;
#ifdef CW_DEBUG
    if (s->sum_wv < 0 || s->sum_wv >= (__int128)s->load || r != cw__eevdf_eligible(s, e))
        fail("eligibility after rebase differs from cw__eevdf_eligible");
#endif
    return r;
}

/* ---- the heaps ---------------------------------------------------------- */

/* 4-ary min-heaps of slots: slot i's children are 4i+1 to 4i+4. Every
 * queue in a heap knows its slot (heap_pos), so that dequeue and reweight
 * can take it out of the middle. The two heaps share the code; `h` (a
 * constant wherever it matters, the functions are inlined) says which
 * array and which key. Measured against a binary heap with the same
 * code, 4-ary halves the levels a sift walks for a little more work per
 * level: with 256 runnable queues pick + charge is some 13% faster. */
#define ARITY 4

typedef cw__eevdf_slot slot;

static inline slot *heap_of(cw__eevdf *s, uint8_t h)
{
    return h == CW__EQ_ELIG ? s->elig : s->inelig;
}

static inline uint32_t *count_of(cw__eevdf *s, uint8_t h)
{
    return h == CW__EQ_ELIG ? &s->n_elig : &s->n_inelig;
}

static inline uint64_t key_of(const cw__eq *e, uint8_t h)
{
    return h == CW__EQ_ELIG ? e->deadline : e->vruntime;
}

/* (key, index) order; keys compare wrap-safe, equal ones (rare) by index. */
static inline bool before(slot a, slot b)
{
    int64_t d = vdiff(a.key, b.key);
    if (__builtin_expect(d == 0, 0))
        return a.e->index < b.e->index;
    return d < 0;
}

static inline void put(slot *a, uint32_t i, slot x)
{
    a[i] = x;
    x.e->heap_pos = i;
}

/* The smallest of the children from c on (c < n). */
static inline uint32_t min_child(const slot *a, uint32_t n, uint32_t c)
{
    if (c + 3 < n) {
        /* a tournament, without branches unless keys tie */
        const slot *p = a + c;
        uint64_t k0 = p[0].key, k1 = p[1].key, k2 = p[2].key, k3 = p[3].key;
        int64_t d01 = vdiff(k1, k0), d23 = vdiff(k3, k2);
        uint64_t kx = d01 < 0 ? k1 : k0, ky = d23 < 0 ? k3 : k2;
        uint32_t x = d01 < 0, y = 2 + (d23 < 0);
        int64_t dyx = vdiff(ky, kx);
        if (__builtin_expect(d01 != 0 && d23 != 0 && dyx != 0, 1))
            return c + (dyx < 0 ? y : x);
    }
    uint32_t m = c;
    for (uint32_t k = c + 1; k < n && k < c + ARITY; k++)
        if (before(a[k], a[m]))
            m = k;
    return m;
}

/* Fill the hole at i with x, moving x up past larger parents. */
static inline void sift_up(slot *a, uint32_t i, slot x)
{
    while (i > 0) {
        uint32_t p = (i - 1) / ARITY;
        if (!before(x, a[p]))
            break;
        put(a, i, a[p]);
        i = p;
    }
    put(a, i, x);
}

/* Fill the hole at i with x, moving x down past smaller children. n: the
 * entries, hole included. */
static inline void sift_down(slot *a, uint32_t n, uint32_t i, slot x)
{
    for (uint32_t c; (c = ARITY * i + 1) < n; i = c) {
        c = min_child(a, n, c);
        if (!before(a[c], x))
            break;
        put(a, i, a[c]);
    }
    put(a, i, x);
}

/* Move the hole at i down to a leaf along the smallest children, then
 * fill it with x from there up (Floyd): for an x that belongs near the
 * bottom, as the last entry does, it saves a comparison per level. */
static inline void sift_hole(slot *a, uint32_t n, uint32_t i, slot x)
{
    for (uint32_t c; (c = ARITY * i + 1) < n; i = c) {
        c = min_child(a, n, c);
        put(a, i, a[c]);
    }
    sift_up(a, i, x);
}

static inline void heap_push(cw__eevdf *s, cw__eq *e, uint8_t h)
{
    uint32_t *n = count_of(s, h);
    assert(e->heap == CW__EQ_NO_HEAP && *n < s->cap);
    e->heap = h;
    sift_up(heap_of(s, h), (*n)++, (slot){key_of(e, h), e});
}

/* Take out the entry at slot i; returns it. */
static inline cw__eq *heap_take(cw__eevdf *s, uint8_t h, uint32_t i)
{
    slot *a = heap_of(s, h);
    uint32_t n = --*count_of(s, h);
    cw__eq *e = a[i].e;
    e->heap = CW__EQ_NO_HEAP;
    if (i != n)
        sift_hole(a, n, i, a[n]);
    return e;
}

/* e's key went up (a later deadline, in elig). */
static inline void heap_key_up(cw__eevdf *s, cw__eq *e, uint8_t h)
{
    assert(e->heap == h);
    sift_down(heap_of(s, h), *count_of(s, h), e->heap_pos, (slot){key_of(e, h), e});
}

/* Swap the tops of the two heaps: the top of elig goes to inelig. */
static inline void heap_swap_tops(cw__eevdf *s)
{
    cw__eq *x = s->elig[0].e, *y = s->inelig[0].e;
    x->heap = CW__EQ_INELIG;
    y->heap = CW__EQ_ELIG;
    sift_down(s->inelig, s->n_inelig, 0, (slot){x->vruntime, x});
    sift_down(s->elig, s->n_elig, 0, (slot){y->deadline, y});
}

static void heap_remove(cw__eevdf *s, cw__eq *e)
{
    assert(e->heap != CW__EQ_NO_HEAP);
    if (e->heap == CW__EQ_ELIG)
        heap_take(s, CW__EQ_ELIG, e->heap_pos);
    else
        heap_take(s, CW__EQ_INELIG, e->heap_pos);
}

/* Into the heap its eligibility calls for (exact, whenever). */
static void heap_insert(cw__eevdf *s, cw__eq *e)
{
    if (cw__eevdf_eligible(s, e))
        heap_push(s, e, CW__EQ_ELIG);
    else
        heap_push(s, e, CW__EQ_INELIG);
}

static void flush_pending(cw__eevdf *s)
{
    cw__eq *e = s->pending;
    s->pending = NULL;
    while (e) {
        cw__eq *next = e->next_pending;
        e->in_pending = false;
        e->next_pending = NULL;
        if (e->on_rq && e->heap == CW__EQ_NO_HEAP)
            heap_insert(s, e);
        e = next;
    }
}

/* ---- operations --------------------------------------------------------- */

static int64_t clamp_lag(const cw__eevdf *s, const cw__eq *e, int64_t lag)
{
    uint64_t rem;
    int64_t limit = (int64_t)vdiv(cw__eevdf_request(s, e), 0, e->weight, &rem);
    return lag > limit ? limit : lag < -limit ? -limit : lag;
}

/* Take e out of the sums, remembering its lag. */
static void leave(cw__eevdf *s, cw__eq *e)
{
    uint64_t V = cw__eevdf_avg(s);
    e->vlag = clamp_lag(s, e, vdiff(V, e->vruntime));
    e->v_left = V;
    if (e->heap != CW__EQ_NO_HEAP)
        heap_remove(s, e);
    sum_sub(s, e);
    idle_in(s, e);
    if (!s->load) {
        s->v_idle = V;
        s->base = V;
        s->sum_wv = 0;
    }
}

bool cw__eevdf_enqueue(cw__eevdf *s, cw__eq *e)
{
    assert(!e->on_rq);
    idle_out(s, e);
    uint64_t V = cw__eevdf_avg(s);
    int64_t lag = e->vlag;
    if (lag < 0) { /* worked off while asleep */
        int64_t since = vdiff(V, e->v_left);
        if (since > 0)
            lag = since >= -lag ? 0 : lag + since;
    }
    if (s->load)
        lag = (int64_t)((__int128)lag * (__int128)(s->load + e->weight) / (__int128)s->load);
    e->vruntime = V - (uint64_t)lag;
    e->vrem = 0;
    if (!s->load)
        s->base = V;
    sum_add(s, e);
    new_deadline(s, e);
    if (!e->in_pending) {
        e->in_pending = true;
        e->next_pending = s->pending;
        s->pending = e;
    }
    CHECK(s);
    return s->curr && lag >= 0 && dl_before(e, s->curr);
}

void cw__eevdf_dequeue(cw__eevdf *s, cw__eq *e)
{
    assert(e->on_rq && e != s->curr);
    leave(s, e);
    CHECK(s);
}

cw__eq *cw__eevdf_pick(cw__eevdf *s, uint64_t *slice_ns)
{
    cw__eq *best;

    assert(!s->curr);
    if (s->pending)
        flush_pending(s);
    if (!s->nr_running)
        return NULL;
    if (s->nr_running == 1) {
        /* Fast path: the only runnable queue; V == its v. */
        assert(s->n_elig + s->n_inelig == 1);
        if (!s->n_elig)
            heap_push(s, heap_take(s, CW__EQ_INELIG, 0), CW__EQ_ELIG);
        best = s->elig[0].e;
        s->base = best->vruntime;
        s->sum_wv = 0;
    } else {
        rebase(s, cw__eevdf_avg(s));
        /* Every eligible queue into elig, the ineligible ones off its top.
         * Typically curr ran past V and tops elig while V passed the top of
         * inelig: the two swap, one sift each. */
        for (;;) {
            bool in = s->n_inelig && eligible_rebased(s, s->inelig[0].e);
            bool out = s->n_elig && !eligible_rebased(s, s->elig[0].e);
            if (in && out)
                heap_swap_tops(s);
            else if (in)
                heap_push(s, heap_take(s, CW__EQ_INELIG, 0), CW__EQ_ELIG);
            else if (out)
                heap_push(s, heap_take(s, CW__EQ_ELIG, 0), CW__EQ_INELIG);
            else
                break;
        }
        if (!s->n_elig) {
            /* Cannot happen: the smallest v is never above the average.
             * Like pick_eevdf(), fall back to the smallest v. */
            assert(!"eevdf: no eligible queue");
            heap_push(s, heap_take(s, CW__EQ_INELIG, 0), CW__EQ_ELIG);
        }
        best = s->elig[0].e;
    }
    s->curr = best;
    s->curr_ns = 0;
    if (!cw__vt_before(best->vruntime, best->deadline)) {
        new_deadline(s, best);
        heap_key_up(s, best, CW__EQ_ELIG);
    }
    /* The rest of the request in wall time, from the exact v:
     * ((d - v) * w - vrem) / S, at least 1 (d - v >= 1 > vrem / w). */
    unsigned __int128 left = ((unsigned __int128)(uint64_t)vdiff(best->deadline, best->vruntime)
                                  * best->weight
                              - best->vrem)
                             / CW__EEVDF_SCALE;
    *slice_ns = left ? (left > UINT64_MAX ? UINT64_MAX : (uint64_t)left) : 1;
    CHECK(s);
    return best;
}

static void reweight_now(cw__eevdf *s, cw__eq *e, uint32_t weight)
{
    if (!e->on_rq) {
        /* w * lag is what is conserved. */
        e->vlag = (int64_t)((__int128)e->vlag * (__int128)e->weight / weight);
        e->weight = weight;
        return;
    }
    uint64_t V = cw__eevdf_avg(s);
    bool in_heap = e->heap != CW__EQ_NO_HEAP;
    int64_t lag = vdiff(V, e->vruntime);
    int64_t dl = vdiff(e->deadline, e->vruntime);
    if (in_heap)
        heap_remove(s, e);
    sum_sub(s, e);
    lag = (int64_t)((__int128)lag * (__int128)e->weight / weight);
    dl = (int64_t)((__int128)dl * (__int128)e->weight / weight);
    e->weight = weight;
    e->vruntime = V - (uint64_t)lag;
    e->vrem = 0;
    e->deadline = e->vruntime + (uint64_t)dl;
    sum_add(s, e);
    if (in_heap)
        heap_insert(s, e);
}

void cw__eevdf_update_curr(cw__eevdf *s, uint64_t ns)
{
    cw__eq *e = s->curr;
    if (!e || ns <= s->curr_ns)
        return;
    int64_t delta = vcharge(e, ns - s->curr_ns);
    s->curr_ns = ns;
    e->vruntime += (uint64_t)delta;
    s->sum_wv += (__int128)e->weight * delta;
}

void cw__eevdf_charge(cw__eevdf *s, uint64_t ns, bool still_runnable)
{
    cw__eq *e = s->curr;
    assert(e && e->on_rq && e->heap == CW__EQ_ELIG);
    cw__eevdf_update_curr(s, ns);
    s->curr = NULL;
    if (!cw__vt_before(e->vruntime, e->deadline)) {
        new_deadline(s, e);
        if (still_runnable && !e->new_weight) /* else it leaves elig below */
            heap_key_up(s, e, CW__EQ_ELIG);
    }
    if (e->new_weight) {
        uint32_t w = e->new_weight;
        e->new_weight = 0;
        reweight_now(s, e, w);
    }
    /* Still runnable, it stays in elig even if it ran past V: the next
     * pick moves it, with V at hand. */
    if (!still_runnable)
        leave(s, e);
    CHECK(s);
}

void cw__eevdf_reweight(cw__eevdf *s, cw__eq *e, uint32_t weight)
{
    assert(weight >= 1);
    if (e == s->curr) {
        e->new_weight = weight;
        return;
    }
    reweight_now(s, e, weight);
    CHECK(s);
}

/* ---- debug check -------------------------------------------------------- */

struct acc {
    __int128 sum;
    uint64_t load;
    uint32_t n;
};

static void account(const cw__eevdf *s, const cw__eq *e, struct acc *a)
{
    if (!e->on_rq)
        fail("queue in the structure is not runnable");
    if (e->vrem >= e->weight)
        fail("vruntime's fraction is a unit or more");
    a->sum += (__int128)e->weight * vdiff(e->vruntime, s->base);
    a->load += e->weight;
    a->n++;
}

static void check_heap(const cw__eevdf *s, uint8_t h, struct acc *a)
{
    const slot *heap = h == CW__EQ_ELIG ? s->elig : s->inelig;
    uint32_t n = h == CW__EQ_ELIG ? s->n_elig : s->n_inelig;
    if (n > s->cap)
        fail("heap count out of range");
    for (uint32_t i = 0; i < n; i++) {
        const cw__eq *e = heap[i].e;
        /* the slot check also makes the entries distinct */
        if (e->heap != h || e->heap_pos != i)
            fail("heap entry does not know its slot");
        if (heap[i].key != key_of(e, h))
            fail("heap key stale");
        if (e->in_pending)
            fail("heap entry also on the pending list");
        if (i > 0 && before(heap[i], heap[(i - 1) / ARITY]))
            fail(h == CW__EQ_ELIG ? "elig out of (d, index) order"
                                  : "inelig out of (v, index) order");
        account(s, e, a);
    }
}

void cw__eevdf_check(const cw__eevdf *s)
{
    struct acc a = {0};
    if (s->nqueues > s->cap)
        fail("more queues registered than the heaps hold");
    check_heap(s, CW__EQ_ELIG, &a);
    check_heap(s, CW__EQ_INELIG, &a);
    for (const cw__eq *e = s->pending; e; e = e->next_pending) {
        if (!e->in_pending)
            fail("pending entry not marked");
        if (e->on_rq && e->heap == CW__EQ_NO_HEAP)
            account(s, e, &a);
    }
    if (s->curr && (s->curr->heap != CW__EQ_ELIG || s->elig[s->curr->heap_pos].e != s->curr))
        fail("curr is not in elig");
    if (a.n != s->nr_running)
        fail("nr_running does not match");
    if (a.load != s->load)
        fail("load does not match");
    if (a.sum != s->sum_wv)
        fail("sum_wv does not match");
    if (s->nr_running > s->nqueues)
        fail("more queues runnable than registered");
    uint32_t top = 0;
    for (unsigned w = 0; w < CW__EEVDF_MAX_RANKS / 64; w++) {
        uint64_t bits = 0;
        for (unsigned b = 0; b < 64 && w * 64 + b < s->nranks; b++) {
            uint32_t n = s->lat_n[w * 64 + b];
            if (n > s->nqueues - s->nr_running)
                fail("more idle queues of a latency rank than idle queues");
            bits |= n ? (uint64_t)1 << b : 0;
        }
        if (bits != s->lat_bits[w])
            fail("latency rank bits do not match their counts");
        top |= bits ? 1u << w : 0;
    }
    if (top != s->lat_top)
        fail("latency rank summary does not match its words");
}
