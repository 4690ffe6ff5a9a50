/*
 * eevdf.c - Earliest Eligible Virtual Deadline First over queues.
 *
 * Pure: no libevent, no clock, no allocation. See eevdf.h for the model.
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
 * runnable queues other than the running one sit in a treap keyed by
 * (v_i, index); each node also points at the node of earliest deadline in
 * its subtree. Keyed by v, the eligible queues form a prefix of the
 * in-order walk, so one descent finds the best of them: at an eligible
 * node, its whole left subtree is eligible and its min-deadline pointer
 * stands for all of it; at an ineligible node everything to the right is
 * ineligible too. Expected O(log n); a treap because it needs no
 * rebalancing cases (random priorities keep the expected depth
 * logarithmic) and the augmentation is one line. A bitmap would make the
 * eligibility test linear in the number of runnable queues.
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
 * Charging happens at the end of a slice, with the slice's measured
 * duration (the sum of its polls), and before a queue is placed mid-slice
 * (update_curr), so V is current where it matters without a division per
 * poll. XXX: the poll in progress when a wake happens is charged later.
 */
#include "config.h"

#include "eevdf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef CW_DEBUG
#define CHECK(s) cw__eevdf_check(s)
#else
#define CHECK(s) ((void)0)
#endif

/* Largest virtual span one request may have: keeps every product in range. */
#define VSPAN_MAX ((int64_t)1 << 60)

static int64_t vdiff(uint64_t a, uint64_t b)
{
    return (int64_t)(a - b);
}

/* Tree order: (v, index). */
static bool key_before(const cw__eq *a, const cw__eq *b)
{
    int64_t d = vdiff(a->vruntime, b->vruntime);
    return d < 0 || (d == 0 && a->index < b->index);
}

/* Pick order: (d, index). */
static bool dl_before(const cw__eq *a, const cw__eq *b)
{
    int64_t d = vdiff(a->deadline, b->deadline);
    return d < 0 || (d == 0 && a->index < b->index);
}

/* Wall ns -> virtual span for queue e: ns * S / w, capped. */
static int64_t vspan(const cw__eq *e, uint64_t ns)
{
    unsigned __int128 v = (unsigned __int128)ns * CW__EEVDF_SCALE / e->weight;
    return v > (unsigned __int128)VSPAN_MAX ? VSPAN_MAX : (int64_t)v;
}

void cw__eevdf_init(cw__eevdf *s, uint64_t latency_ns, uint64_t min_slice_ns)
{
    *s = (cw__eevdf){0};
    s->latency_ns = latency_ns;
    s->min_slice_ns = min_slice_ns;
    s->rng = 0x9e3779b9u;
}

void cw__eq_init(cw__eq *e, uint32_t index, uint32_t weight, uint64_t slice_ns)
{
    assert(weight >= 1);
    *e = (cw__eq){0};
    e->index = index;
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

/* ---- the treap ---------------------------------------------------------- */

static void update(cw__eq *t)
{
    cw__eq *m = t;
    if (t->left && dl_before(t->left->min_dl, m))
        m = t->left->min_dl;
    if (t->right && dl_before(t->right->min_dl, m))
        m = t->right->min_dl;
    t->min_dl = m;
}

/* Every key of a is before every key of b. */
static cw__eq *merge(cw__eq *a, cw__eq *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->prio > b->prio) {
        a->right = merge(a->right, b);
        update(a);
        return a;
    }
    b->left = merge(a, b->left);
    update(b);
    return b;
}

/* l gets the keys before k, r the others. */
static void split(cw__eq *t, const cw__eq *k, cw__eq **l, cw__eq **r)
{
    if (!t) {
        *l = *r = NULL;
    } else if (key_before(t, k)) {
        split(t->right, k, &t->right, r);
        update(t);
        *l = t;
    } else {
        split(t->left, k, l, &t->left);
        update(t);
        *r = t;
    }
}

static uint32_t next_prio(cw__eevdf *s)
{
    /* xorshift32: any spread of priorities keeps the expected depth. */
    uint32_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return s->rng = x;
}

static void tree_insert(cw__eevdf *s, cw__eq *e)
{
    cw__eq *l, *r;
    assert(!e->in_tree);
    e->left = e->right = NULL;
    e->prio = next_prio(s);
    e->min_dl = e;
    split(s->root, e, &l, &r);
    s->root = merge(merge(l, e), r);
    e->in_tree = true;
}

static cw__eq *erase(cw__eq *t, cw__eq *e)
{
    assert(t);
    if (t == e)
        return merge(t->left, t->right);
    if (key_before(e, t))
        t->left = erase(t->left, e);
    else
        t->right = erase(t->right, e);
    update(t);
    return t;
}

static void tree_remove(cw__eevdf *s, cw__eq *e)
{
    assert(e->in_tree);
    s->root = erase(s->root, e);
    e->left = e->right = NULL;
    e->in_tree = false;
}

static void flush_pending(cw__eevdf *s)
{
    cw__eq *e = s->pending;
    s->pending = NULL;
    while (e) {
        cw__eq *next = e->next_pending;
        e->in_pending = false;
        e->next_pending = NULL;
        if (e->on_rq && !e->in_tree && e != s->curr)
            tree_insert(s, e);
        e = next;
    }
}

/* ---- operations --------------------------------------------------------- */

static int64_t clamp_lag(const cw__eevdf *s, const cw__eq *e, int64_t lag)
{
    int64_t limit = vspan(e, cw__eevdf_request(s, e));
    return lag > limit ? limit : lag < -limit ? -limit : lag;
}

/* Take e out of the sums, remembering its lag. */
static void leave(cw__eevdf *s, cw__eq *e)
{
    uint64_t V = cw__eevdf_avg(s);
    e->vlag = clamp_lag(s, e, vdiff(V, e->vruntime));
    e->v_left = V;
    if (e->in_tree)
        tree_remove(s, e);
    sum_sub(s, e);
    if (!s->load) {
        s->v_idle = V;
        s->base = V;
        s->sum_wv = 0;
    }
}

bool cw__eevdf_enqueue(cw__eevdf *s, cw__eq *e)
{
    assert(!e->on_rq);
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
    if (!s->load)
        s->base = V;
    sum_add(s, e);
    e->deadline = e->vruntime + (uint64_t)vspan(e, cw__eevdf_request(s, e));
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
    cw__eq *best = NULL;

    assert(!s->curr);
    flush_pending(s);
    if (!s->nr_running)
        return NULL;
    if (s->nr_running == 1) {
        /* Fast path: the only runnable queue; V == its v. */
        best = s->root;
        s->base = best->vruntime;
        s->sum_wv = 0;
    } else {
        rebase(s, cw__eevdf_avg(s));
        for (cw__eq *n = s->root; n;) {
            if (cw__eevdf_eligible(s, n)) {
                if (!best || dl_before(n, best))
                    best = n;
                if (n->left && dl_before(n->left->min_dl, best))
                    best = n->left->min_dl;
                n = n->right;
            } else {
                n = n->left;
            }
        }
        if (!best) {
            /* Cannot happen: the smallest v is never above the average.
             * Like pick_eevdf(), fall back to the leftmost. */
            assert(!"eevdf: no eligible queue");
            for (best = s->root; best->left; best = best->left)
                ;
        }
    }
    tree_remove(s, best);
    s->curr = best;
    s->curr_ns = 0;
    if (!cw__vt_before(best->vruntime, best->deadline))
        best->deadline = best->vruntime + (uint64_t)vspan(best, cw__eevdf_request(s, best));
    /* The rest of the request in wall time: (d - v) * w / S, at least 1. */
    unsigned __int128 left = (unsigned __int128)(uint64_t)vdiff(best->deadline, best->vruntime)
                             * best->weight / CW__EEVDF_SCALE;
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
    bool in_tree = e->in_tree;
    int64_t lag = vdiff(V, e->vruntime);
    int64_t dl = vdiff(e->deadline, e->vruntime);
    if (in_tree)
        tree_remove(s, e);
    sum_sub(s, e);
    lag = (int64_t)((__int128)lag * (__int128)e->weight / weight);
    dl = (int64_t)((__int128)dl * (__int128)e->weight / weight);
    e->weight = weight;
    e->vruntime = V - (uint64_t)lag;
    e->deadline = e->vruntime + (uint64_t)dl;
    sum_add(s, e);
    if (in_tree)
        tree_insert(s, e);
}

void cw__eevdf_update_curr(cw__eevdf *s, uint64_t ns)
{
    cw__eq *e = s->curr;
    if (!e || ns <= s->curr_ns)
        return;
    int64_t delta = vspan(e, ns - s->curr_ns);
    s->curr_ns = ns;
    e->vruntime += (uint64_t)delta;
    s->sum_wv += (__int128)e->weight * delta;
}

void cw__eevdf_charge(cw__eevdf *s, uint64_t ns, bool still_runnable)
{
    cw__eq *e = s->curr;
    assert(e && e->on_rq && !e->in_tree);
    cw__eevdf_update_curr(s, ns);
    s->curr = NULL;
    if (!cw__vt_before(e->vruntime, e->deadline))
        e->deadline = e->vruntime + (uint64_t)vspan(e, cw__eevdf_request(s, e));
    if (e->new_weight) {
        uint32_t w = e->new_weight;
        e->new_weight = 0;
        reweight_now(s, e, w);
    }
    if (still_runnable)
        tree_insert(s, e);
    else
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

static void fail(const char *what)
{
    fprintf(stderr, "eevdf: invariant broken: %s\n", what);
    abort();
}

struct acc {
    __int128 sum;
    uint64_t load;
    uint32_t n;
};

static void account(const cw__eevdf *s, const cw__eq *e, struct acc *a)
{
    if (!e->on_rq)
        fail("queue in the structure is not runnable");
    a->sum += (__int128)e->weight * vdiff(e->vruntime, s->base);
    a->load += e->weight;
    a->n++;
}

static const cw__eq *walk(const cw__eevdf *s, const cw__eq *t, struct acc *a,
                          const cw__eq *prev)
{
    if (!t)
        return prev;
    if (!t->in_tree)
        fail("tree node not marked in_tree");
    prev = walk(s, t->left, a, prev);
    if (prev && !key_before(prev, t))
        fail("tree out of (v, index) order");
    if (t->left && t->left->prio > t->prio)
        fail("heap order (left)");
    if (t->right && t->right->prio > t->prio)
        fail("heap order (right)");
    const cw__eq *m = t;
    if (t->left && dl_before(t->left->min_dl, m))
        m = t->left->min_dl;
    if (t->right && dl_before(t->right->min_dl, m))
        m = t->right->min_dl;
    if (m != t->min_dl)
        fail("min-deadline pointer stale");
    account(s, t, a);
    return walk(s, t->right, a, t);
}

void cw__eevdf_check(const cw__eevdf *s)
{
    struct acc a = {0};
    walk(s, s->root, &a, NULL);
    for (const cw__eq *e = s->pending; e; e = e->next_pending) {
        if (!e->in_pending)
            fail("pending entry not marked");
        if (e->on_rq && !e->in_tree && e != s->curr)
            account(s, e, &a);
    }
    if (s->curr) {
        if (s->curr->in_tree)
            fail("curr is in the tree");
        account(s, s->curr, &a);
    }
    if (a.n != s->nr_running)
        fail("nr_running does not match");
    if (a.load != s->load)
        fail("load does not match");
    if (a.sum != s->sum_wv)
        fail("sum_wv does not match");
}
