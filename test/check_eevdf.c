/* check_eevdf.c - the pure scheduler (lib/core/eevdf.c) driven with invented
 * durations. The library is built with CW_DEBUG for the tests, so
 * every operation also re-checks the sums and the heaps from scratch; the
 * tests call cw__eevdf_check() too. */
#include <stdlib.h>
#include <string.h>

#include "eevdf.h"
#include "testutil.h"

#define US 1000ull
#define MS 1000000ull

typedef struct sim {
    cw__eevdf s;
    uint32_t lat_n[1024]; /* latency rank counts */
    cw__eq q[1024];
    uint64_t ran[1024];
    uint32_t n;
    cw__eevdf_slot slots[]; /* cw__eevdf_slots(n): the heaps, sized as an executor does */
} sim;

static sim *sim_new(const uint32_t *w, uint32_t n, uint64_t latency, uint64_t min_slice)
{
    sim *m = calloc(1, sizeof *m + cw__eevdf_slots(n) * sizeof m->slots[0]);
    ck_assert_ptr_nonnull(m);
    cw__eevdf_init(&m->s, m->slots, n, latency, min_slice);
    cw__eevdf_set_rank_counts(&m->s, m->lat_n, 5);
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        cw__eq_init(&m->q[i], i, w[i], 0);
        /* latency ranks: 0..4, every sixth queue none */
        cw__eevdf_add(&m->s, &m->q[i], i % 6 == 5 ? CW__EQ_NO_RANK : (i * 7 + 3) % 5, false);
    }
    return m;
}

/* Run `picks` slices of at most `chunk` ns each; every queue stays busy. */
static void sim_run(sim *m, uint32_t picks, uint64_t chunk)
{
    for (uint32_t k = 0; k < picks; k++) {
        uint64_t slice;
        cw__eq *e = cw__eevdf_pick(&m->s, &slice);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(cw__eevdf_lag(&m->s, e) >= 0, "picked an ineligible queue");
        uint64_t ran = slice < chunk ? slice : chunk;
        m->ran[e->index] += ran;
        cw__eevdf_charge(&m->s, ran, true);
    }
}

static void assert_shares(const uint32_t *w, uint32_t n, uint64_t chunk)
{
    sim *m = sim_new(w, n, 2 * MS, 100 * US);
    uint64_t wsum = 0, total = 0;
    for (uint32_t i = 0; i < n; i++) {
        ck_assert(!cw__eevdf_enqueue(&m->s, &m->q[i]));
        wsum += w[i];
    }
    sim_run(m, 10000, chunk);
    cw__eevdf_check(&m->s);
    for (uint32_t i = 0; i < n; i++)
        total += m->ran[i];
    for (uint32_t i = 0; i < n; i++) {
        double share = (double)m->ran[i] / (double)total;
        double want = (double)w[i] / (double)wsum;
        ck_assert_msg(share > want - 0.01 && share < want + 0.01,
                      "queue %u (weight %u): share %.4f, want %.4f", i, w[i], share, want);
    }
    free(m);
}

START_TEST(shares_follow_weights_8_1)
{
    assert_shares((uint32_t[]){8, 1}, 2, 50 * US);
}
END_TEST

START_TEST(shares_follow_weights_99_1)
{
    assert_shares((uint32_t[]){99, 1}, 2, 50 * US);
}
END_TEST

START_TEST(shares_follow_weights_1_2_3)
{
    assert_shares((uint32_t[]){1, 2, 3}, 3, 50 * US);
}
END_TEST

START_TEST(shares_hold_with_full_slices)
{
    /* Slices run to their end (chunk larger than any request). */
    assert_shares((uint32_t[]){5, 3, 2}, 3, 100 * MS);
}
END_TEST

/* Brute force: the eligible queue with the earliest (deadline, index). */
static cw__eq *brute_pick(sim *m)
{
    cw__eq *best = NULL;
    for (uint32_t i = 0; i < m->n; i++) {
        cw__eq *e = &m->q[i];
        if (!e->on_rq || !cw__eevdf_eligible(&m->s, e))
            continue;
        if (!best || (int64_t)(e->deadline - best->deadline) < 0
            || (e->deadline == best->deadline && e->index < best->index))
            best = e;
    }
    return best;
}

START_TEST(pick_is_earliest_eligible_deadline_among_many)
{
    static uint32_t w[1024];
    srand(12345);
    for (uint32_t i = 0; i < 1024; i++)
        w[i] = 1 + (uint32_t)rand() % 1000;
    sim *m = sim_new(w, 1024, 20 * MS, 10 * US);
    for (uint32_t i = 0; i < 1024; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    for (int k = 0; k < 3000; k++) {
        /* settle pending entries into the tree before comparing */
        uint64_t slice;
        cw__eq *e = cw__eevdf_pick(&m->s, &slice);
        ck_assert_ptr_nonnull(e);
        cw__eevdf_charge(&m->s, 1 + (uint64_t)rand() % (200 * US), true);
        /* now nothing is curr: compare the next pick with brute force */
        cw__eq *want = brute_pick(m);
        e = cw__eevdf_pick(&m->s, &slice);
        ck_assert_ptr_eq(e, want);
        cw__eevdf_charge(&m->s, 1 + (uint64_t)rand() % (200 * US), (rand() % 8) != 0);
        if (!e->on_rq && rand() % 2)
            cw__eevdf_enqueue(&m->s, e);
    }
    cw__eevdf_check(&m->s);
    free(m);
}
END_TEST

START_TEST(random_operations_keep_the_invariants)
{
    uint32_t w[64];
    srand(777);
    for (uint32_t i = 0; i < 64; i++)
        w[i] = 1 + (uint32_t)rand() % 100;
    sim *m = sim_new(w, 64, 2 * MS, 100 * US);
    for (int k = 0; k < 20000; k++) {
        cw__eq *e = &m->q[rand() % 64];
        switch (rand() % 5) {
        case 0:
            if (!e->on_rq)
                cw__eevdf_enqueue(&m->s, e);
            break;
        case 1:
            if (e->on_rq && e != m->s.curr)
                cw__eevdf_dequeue(&m->s, e);
            break;
        case 2:
            cw__eevdf_reweight(&m->s, e, 1 + (uint32_t)rand() % 1000);
            break;
        default:
            if (m->s.curr) {
                cw__eevdf_charge(&m->s, (uint64_t)rand() % (3 * MS), rand() % 3 != 0);
            } else {
                uint64_t slice;
                cw__eq *p = cw__eevdf_pick(&m->s, &slice);
                if (p)
                    ck_assert_int_ge(cw__eevdf_lag(&m->s, p), 0);
                else
                    ck_assert_uint_eq(m->s.nr_running, 0);
            }
        }
        cw__eevdf_check(&m->s);
    }
    free(m);
}
END_TEST

/* Would e lose its eligibility if x (runnable, not curr) left? From the
 * sums: V' = (sum_wv - w_x (v_x - b)) / (load - w_x), and e is eligible
 * after when (v_e - b) * (load - w_x) <= sum_wv - w_x (v_x - b). */
static bool leave_makes_ineligible(const cw__eevdf *s, const cw__eq *x, const cw__eq *e)
{
    __int128 sum = s->sum_wv - (__int128)x->weight * (int64_t)(x->vruntime - s->base);
    __int128 load = (__int128)(s->load - x->weight);
    return cw__eevdf_eligible(s, e) && (__int128)(int64_t)(e->vruntime - s->base) * load > sum;
}

/* A queue sits in the eligible heap; another leaves with negative lag,
 * pulling V below the first one's v: the next pick must pass it over
 * (it is still in that heap when pick starts). */
START_TEST(queue_made_ineligible_by_a_leave_is_not_picked)
{
    uint32_t w[6] = {1, 2, 3, 1, 5, 1};
    sim *m = sim_new(w, 6, 2 * MS, 100 * US);
    uint32_t seen = 0;
    srand(4242);
    for (uint32_t i = 0; i < 6; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    for (int k = 0; k < 20000 && seen < 200; k++) {
        uint64_t slice;
        cw__eq *p = cw__eevdf_pick(&m->s, &slice);
        cw__eevdf_charge(&m->s, 1 + (uint64_t)rand() % (300 * US), true);
        (void)p;
        /* nothing is curr now: look for a leaver x and a victim e */
        cw__eq *x = NULL, *e = NULL;
        for (uint32_t i = 0; i < 6 && !e; i++) {
            if (!m->q[i].on_rq || cw__eevdf_lag(&m->s, &m->q[i]) >= 0)
                continue;
            for (uint32_t j = 0; j < 6 && !e; j++)
                if (j != i && m->q[j].on_rq && m->q[j].heap == CW__EQ_ELIG
                    && leave_makes_ineligible(&m->s, &m->q[i], &m->q[j])) {
                    x = &m->q[i];
                    e = &m->q[j];
                }
        }
        if (!e)
            continue;
        cw__eevdf_dequeue(&m->s, x);
        ck_assert(!cw__eevdf_eligible(&m->s, e));
        ck_assert_int_eq(e->heap, CW__EQ_ELIG); /* still there */
        cw__eq *want = brute_pick(m);
        p = cw__eevdf_pick(&m->s, &slice);
        ck_assert_ptr_ne(p, e);
        ck_assert_ptr_eq(p, want);
        ck_assert_int_ge(cw__eevdf_lag(&m->s, p), 0);
        cw__eevdf_charge(&m->s, 1 + (uint64_t)rand() % (300 * US), true);
        cw__eevdf_enqueue(&m->s, x);
        seen++;
    }
    ck_assert_uint_ge(seen, 200);
    cw__eevdf_check(&m->s);
    free(m);
}
END_TEST

/* Queues enter, leave, are reweighted and run at random; every pick is
 * compared with the brute-force one over all runnable queues. Counts
 * show that the heaps' hints were stale both ways (an ineligible queue
 * in the eligible heap, an eligible one in the other) and that deadlines
 * tied. */
static void enter_leave_against_brute_force(uint32_t n, uint32_t wmax, uint64_t quantum,
                                            uint32_t steps, unsigned seed)
{
    static uint32_t w[1024];
    srand(seed);
    for (uint32_t i = 0; i < n; i++)
        w[i] = 1 + (uint32_t)rand() % wmax;
    sim *m = sim_new(w, n, 2 * MS, 50 * US);
    for (uint32_t i = 0; i < n; i += 7) { /* some with a configured slice */
        uint32_t rank = m->q[i].lat_rank;
        cw__eq_init(&m->q[i], i, w[i], quantum * (1 + (uint64_t)rand() % 8));
        m->q[i].lat_rank = rank;
    }
    uint32_t picks = 0, stale_elig = 0, stale_inelig = 0, ties = 0, ranked_seen = 0;
    for (uint32_t k = 0; k < steps; k++) {
        cw__eq *e = &m->q[(uint32_t)rand() % n];
        switch (rand() % 8) {
        case 0:
        case 1:
            if (!e->on_rq)
                cw__eevdf_enqueue(&m->s, e);
            break;
        case 2:
            if (e->on_rq && e != m->s.curr)
                cw__eevdf_dequeue(&m->s, e);
            break;
        case 3:
            if (rand() % 8 == 0)
                cw__eevdf_reweight(&m->s, e, 1 + (uint32_t)rand() % wmax);
            else if (m->s.curr)
                cw__eevdf_update_curr(&m->s, m->s.curr_ns + quantum * (uint64_t)(rand() % 4));
            break;
        default:
            if (m->s.curr) {
                cw__eevdf_charge(&m->s, m->s.curr_ns + quantum * (uint64_t)(rand() % 40),
                                 rand() % 4 != 0);
                break;
            }
            for (uint32_t i = 0; i < n; i++) {
                const cw__eq *q = &m->q[i];
                if (q->heap == CW__EQ_ELIG && !cw__eevdf_eligible(&m->s, q))
                    stale_elig++;
                if (q->heap == CW__EQ_INELIG && cw__eevdf_eligible(&m->s, q))
                    stale_inelig++;
            }
            /* the idle rank against a scan of the idle queues */
            uint32_t rank = CW__EQ_NO_RANK;
            for (uint32_t i = 0; i < n; i++)
                if (!m->q[i].on_rq && m->q[i].armed && m->q[i].lat_rank < rank)
                    rank = m->q[i].lat_rank;
            ck_assert_uint_eq(cw__eevdf_idle_rank(&m->s), rank);
            if (rank != CW__EQ_NO_RANK)
                ranked_seen |= 1u << rank; /* ranks 0..4 (sim_new) */
            cw__eq *want = brute_pick(m);
            for (uint32_t i = 0; want && i < n; i++)
                if (&m->q[i] != want && m->q[i].on_rq && m->q[i].deadline == want->deadline
                    && cw__eevdf_eligible(&m->s, &m->q[i]))
                    ties++;
            uint64_t slice;
            cw__eq *p = cw__eevdf_pick(&m->s, &slice);
            ck_assert_ptr_eq(p, want);
            if (p) {
                ck_assert_uint_gt(slice, 0);
                picks++;
            }
        }
    }
    cw__eevdf_check(&m->s);
    ck_assert_uint_gt(picks, steps / 8);
    /* a rank seen; with few queues, several (with many, rank 0 is nearly
     * always among the idle ones) */
    ck_assert_uint_ge(__builtin_popcount(ranked_seen), n <= 8 ? 2 : 1);
    ck_assert_uint_gt(stale_elig, 0);
    ck_assert_uint_gt(stale_inelig, 0);
    if (wmax == 1)
        ck_assert_uint_gt(ties, 0);
    free(m);
}

START_TEST(random_enter_leave_matches_brute_force)
{
    enter_leave_against_brute_force(200, 1000, 7 * US + 13, 60000, 99);
}
END_TEST

START_TEST(random_enter_leave_matches_brute_force_few)
{
    enter_leave_against_brute_force(5, 8, 10 * US, 100000, 5);
}
END_TEST

START_TEST(random_enter_leave_matches_brute_force_all_queues)
{
    enter_leave_against_brute_force(1024, 100, 3 * US, 30000, 1024);
}
END_TEST

START_TEST(random_enter_leave_matches_brute_force_with_ties)
{
    /* equal weights, durations in whole quanta: v and d tie often */
    enter_leave_against_brute_force(64, 1, 50 * US, 60000, 7);
}
END_TEST

/* The idle queues by weight class: a queue asks whether one of a higher
 * power-of-two weight is idle (the executor then shortens its rounds). */
START_TEST(idle_rank_follows_enqueue_leave_and_first_use)
{
    /* ranks (sim_new): q0 3, q1 0, q2 2, q3 4, q4 1, q5 none */
    sim *m = sim_new((uint32_t[]){1, 99, 50, 2, 3, 7}, 6, 2 * MS, 100 * US);
    cw__eevdf *s = &m->s;
    cw__eq *q = m->q;
    uint64_t slice;
    ck_assert_uint_eq(q[4].lat_rank, 1);
    ck_assert_uint_eq(q[5].lat_rank, CW__EQ_NO_RANK);
    /* all idle, none ever runnable: no target counts */
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), CW__EQ_NO_RANK);
    cw__eevdf_enqueue(s, &q[1]);
    cw__eevdf_enqueue(s, &q[5]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), CW__EQ_NO_RANK); /* both runnable */
    cw__eevdf_dequeue(s, &q[5]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), CW__EQ_NO_RANK); /* q5: no target */
    cw__eevdf_enqueue(s, &q[0]);
    cw__eevdf_enqueue(s, &q[2]);
    cw__eevdf_dequeue(s, &q[2]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), 2);
    cw__eevdf_reweight(s, &q[2], 8); /* weights do not matter */
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), 2);
    /* q1 leaves through a charge: its rank 0 is the smallest idle one */
    while (cw__eevdf_pick(s, &slice) != &q[1])
        cw__eevdf_charge(s, slice, true);
    cw__eevdf_charge(s, slice, false);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), 0);
    cw__eevdf_enqueue(s, &q[1]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), 2);
    cw__eevdf_enqueue(s, &q[2]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), CW__EQ_NO_RANK);
    /* the first use arms the queue: idle again, it counts */
    cw__eevdf_enqueue(s, &q[4]);
    cw__eevdf_dequeue(s, &q[4]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(s), 1);
    cw__eevdf_check(s);
    free(m);

    /* a queue added armed counts from the start */
    sim *a = sim_new((uint32_t[]){1, 1}, 2, 2 * MS, 100 * US);
    ck_assert_uint_eq(a->q[0].lat_rank, 3);
    ck_assert_uint_eq(a->q[1].lat_rank, 0);
    /* rebuild its registrations: q0 armed (rank 3), q1 not */
    a->s.nqueues = 0;
    a->q[0].armed = a->q[1].armed = false;
    cw__eevdf_add(&a->s, &a->q[0], 3, true);
    cw__eevdf_add(&a->s, &a->q[1], 0, false);
    ck_assert_uint_eq(cw__eevdf_idle_rank(&a->s), 3);
    cw__eevdf_enqueue(&a->s, &a->q[0]);
    ck_assert_uint_eq(cw__eevdf_idle_rank(&a->s), CW__EQ_NO_RANK);
    cw__eevdf_check(&a->s);
    free(a);
}
END_TEST

START_TEST(ties_go_to_the_lower_index)
{
    sim *m = sim_new((uint32_t[]){3, 3, 3}, 3, 2 * MS, 100 * US);
    cw__eevdf_enqueue(&m->s, &m->q[2]);
    cw__eevdf_enqueue(&m->s, &m->q[1]);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    /* same weight, lag 0, same request: identical deadlines */
    uint64_t slice;
    cw__eq *e = cw__eevdf_pick(&m->s, &slice);
    ck_assert_uint_eq(e->index, 0);
    free(m);
}
END_TEST

START_TEST(single_queue_fast_path_keeps_v_equal_to_avg)
{
    sim *m = sim_new((uint32_t[]){7}, 1, 2 * MS, 100 * US);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    for (int k = 0; k < 1000; k++) {
        uint64_t slice;
        ck_assert_ptr_eq(cw__eevdf_pick(&m->s, &slice), &m->q[0]);
        cw__eevdf_charge(&m->s, 123 * US, true);
        ck_assert_int_eq(cw__eevdf_lag(&m->s, &m->q[0]), 0);
    }
    free(m);
}
END_TEST

START_TEST(slice_is_the_derived_request)
{
    sim *m = sim_new((uint32_t[]){1, 1, 1, 1}, 4, 2 * MS, 100 * US);
    uint64_t slice;
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    ck_assert_ptr_nonnull(cw__eevdf_pick(&m->s, &slice));
    ck_assert_uint_eq(slice, 2 * MS); /* latency / 1 */
    cw__eevdf_charge(&m->s, 2 * MS, true);
    cw__eevdf_enqueue(&m->s, &m->q[1]);
    cw__eevdf_enqueue(&m->s, &m->q[2]);
    cw__eevdf_enqueue(&m->s, &m->q[3]);
    cw__eq *e = cw__eevdf_pick(&m->s, &slice);
    ck_assert_ptr_ne(e, &m->q[0]);      /* q0 has used its request */
    ck_assert_uint_eq(slice, 2 * MS / 4); /* latency / 4 runnable */
    free(m);
    /* min_slice bounds it below */
    m = sim_new((uint32_t[]){1, 1, 1, 1}, 4, 200 * US, 100 * US);
    for (int i = 0; i < 4; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    cw__eevdf_pick(&m->s, &slice);
    ck_assert_uint_eq(slice, 100 * US);
    free(m);
}
END_TEST

START_TEST(configured_slice_gives_an_earlier_deadline)
{
    sim *m = sim_new((uint32_t[]){1, 1}, 2, 20 * MS, 100 * US);
    cw__eq_init(&m->q[1], 1, 1, 100 * US);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    cw__eevdf_enqueue(&m->s, &m->q[1]);
    uint64_t slice;
    /* equal lag, but q1's short request ends first: q1 although index 1 */
    ck_assert_ptr_eq(cw__eevdf_pick(&m->s, &slice), &m->q[1]);
    ck_assert_uint_eq(slice, 100 * US);
    free(m);
}
END_TEST

START_TEST(woke_early_keeps_its_lag)
{
    sim *m = sim_new((uint32_t[]){1, 1, 2}, 3, 2 * MS, 100 * US);
    for (int i = 0; i < 3; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    sim_run(m, 7, 37 * US);
    /* find a queue with positive lag that is not running, let it leave */
    cw__eq *e = NULL;
    for (int i = 0; i < 3; i++)
        if (cw__eevdf_lag(&m->s, &m->q[i]) > 0)
            e = &m->q[i];
    ck_assert_ptr_nonnull(e);
    int64_t lag = cw__eevdf_lag(&m->s, e);
    cw__eevdf_dequeue(&m->s, e);
    ck_assert_int_eq(e->vlag, lag); /* within one request: not clamped */
    /* the others run a little, then it comes back early */
    sim_run(m, 3, 20 * US);
    cw__eevdf_enqueue(&m->s, e);
    int64_t back = cw__eevdf_lag(&m->s, e);
    /* placed so that its lag after placement equals the saved lag (the
     * inflation by (W + w) / W), up to rounding */
    ck_assert_msg(back >= lag - 2 && back <= lag + 2, "lag %lld came back as %lld",
                  (long long)lag, (long long)back);
    free(m);
}
END_TEST

START_TEST(long_idle_earns_no_burst)
{
    sim *m = sim_new((uint32_t[]){1, 1}, 2, 2 * MS, 100 * US);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    cw__eevdf_enqueue(&m->s, &m->q[1]);
    uint64_t slice;
    cw__eq *e = cw__eevdf_pick(&m->s, &slice);
    cw__eq *other = e == &m->q[0] ? &m->q[1] : &m->q[0];
    cw__eevdf_charge(&m->s, slice, true);
    /* `other` is now owed; it leaves before being served */
    cw__eevdf_dequeue(&m->s, other);
    /* ... and stays away while e runs alone for a long time */
    for (int k = 0; k < 1000; k++) {
        cw__eevdf_pick(&m->s, &slice);
        cw__eevdf_charge(&m->s, 1 * MS, true);
    }
    cw__eevdf_enqueue(&m->s, other);
    /* its credit is what it had when it left (at most one request), not a
     * second of catch-up */
    int64_t limit = (int64_t)(cw__eevdf_request(&m->s, other) * CW__EEVDF_SCALE / 1);
    ck_assert_int_le(cw__eevdf_lag(&m->s, other), 2 * limit);
    memset(m->ran, 0, sizeof m->ran);
    sim_run(m, 200, 100 * US);
    double share = (double)m->ran[other->index] / (double)(m->ran[0] + m->ran[1]);
    ck_assert_msg(share < 0.55, "returning queue took %.3f of the next 20 ms", share);
    free(m);
}
END_TEST

START_TEST(lag_is_clamped_to_one_request)
{
    sim *m = sim_new((uint32_t[]){1, 1000}, 2, 2 * MS, 100 * US);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    cw__eevdf_enqueue(&m->s, &m->q[1]);
    /* q0 runs far past its share, then leaves with a large negative lag */
    uint64_t slice;
    while (cw__eevdf_pick(&m->s, &slice) != &m->q[0])
        cw__eevdf_charge(&m->s, slice, true);
    cw__eevdf_charge(&m->s, 500 * MS, false);
    int64_t limit = (int64_t)(cw__eevdf_request(&m->s, &m->q[0]) * CW__EEVDF_SCALE / 1);
    ck_assert_int_eq(m->q[0].vlag, -limit);
    free(m);
}
END_TEST

START_TEST(enqueue_requests_preemption_only_when_more_deserving)
{
    sim *m = sim_new((uint32_t[]){1, 100, 1}, 3, 20 * MS, 100 * US);
    uint64_t slice;
    /* q0 and q2 ask for the same request whatever the number runnable */
    cw__eq_init(&m->q[0], 0, 1, 5 * MS);
    cw__eq_init(&m->q[2], 2, 1, 5 * MS);
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    cw__eevdf_pick(&m->s, &slice); /* q0 runs */
    /* a heavy queue with lag 0 has a much nearer deadline: preempt */
    ck_assert(cw__eevdf_enqueue(&m->s, &m->q[1]));
    cw__eevdf_dequeue(&m->s, &m->q[1]);
    /* an equal queue with lag 0 and the same request: its deadline is not
     * earlier (equal, and the tie goes to the lower index) */
    ck_assert(!cw__eevdf_enqueue(&m->s, &m->q[2]));
    cw__eevdf_dequeue(&m->s, &m->q[2]);
    /* a heavy queue with negative lag is not eligible: no preemption */
    m->q[1].vlag = -1000;
    ck_assert(!cw__eevdf_enqueue(&m->s, &m->q[1]));
    free(m);
}
END_TEST

START_TEST(reweight_keeps_the_average_and_changes_shares)
{
    sim *m = sim_new((uint32_t[]){1, 1, 1}, 3, 2 * MS, 100 * US);
    for (int i = 0; i < 3; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    sim_run(m, 11, 70 * US);
    uint64_t V = cw__eevdf_avg(&m->s);
    cw__eevdf_reweight(&m->s, &m->q[1], 6);
    uint64_t V2 = cw__eevdf_avg(&m->s);
    ck_assert_msg((int64_t)(V2 - V) >= -8 && (int64_t)(V2 - V) <= 8,
                  "V moved by %lld", (long long)(int64_t)(V2 - V));
    memset(m->ran, 0, sizeof m->ran);
    sim_run(m, 10000, 50 * US);
    uint64_t total = m->ran[0] + m->ran[1] + m->ran[2];
    double share = (double)m->ran[1] / (double)total;
    ck_assert_msg(share > 0.74 && share < 0.76, "share after reweight %.4f", share);
    /* reweighting the running queue waits for its charge */
    uint64_t slice;
    cw__eq *e = cw__eevdf_pick(&m->s, &slice);
    cw__eevdf_reweight(&m->s, e, 2);
    ck_assert_uint_eq(e->new_weight, 2);
    cw__eevdf_charge(&m->s, slice, true);
    ck_assert_uint_eq(e->weight, 2);
    ck_assert_uint_eq(e->new_weight, 0);
    free(m);
}
END_TEST

START_TEST(virtual_time_wraps_harmlessly)
{
    sim *m = sim_new((uint32_t[]){8, 1}, 2, 2 * MS, 100 * US);
    /* start just below the wrap of the 64-bit virtual clock */
    m->s.v_idle = m->s.base = UINT64_MAX - 3 * MS * CW__EEVDF_SCALE;
    for (int i = 0; i < 2; i++)
        cw__eevdf_enqueue(&m->s, &m->q[i]);
    sim_run(m, 10000, 50 * US);
    ck_assert(m->q[1].vruntime < UINT64_MAX / 2); /* it did wrap */
    double share = (double)m->ran[0] / (double)(m->ran[0] + m->ran[1]);
    ck_assert_msg(share > 8.0 / 9 - 0.01 && share < 8.0 / 9 + 0.01, "share %.4f", share);
    free(m);
}
END_TEST

START_TEST(charges_carry_their_remainder_at_any_weight)
{
    /* v advances by the total charged * S / w rounded down, however the
     * charges are cut: at w = 2^30 + 7 every 1 us charge is under one unit */
    static const uint32_t ws[] = {1, 3, 1000003, (1u << 30) + 7, UINT32_MAX};
    for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
        sim *m = sim_new(&ws[k], 1, 2 * MS, 100 * US);
        cw__eq *e = &m->q[0];
        cw__eevdf_enqueue(&m->s, e);
        uint64_t v0 = e->vruntime, total = 0, slice;
        for (uint64_t i = 0; i < 5000; i++) {
            ck_assert_ptr_eq(cw__eevdf_pick(&m->s, &slice), e);
            uint64_t ns = 500 + (i * 7919) % 1500; /* 500..1999 ns */
            cw__eevdf_charge(&m->s, ns, true);
            total += ns;
            uint64_t want = (uint64_t)((unsigned __int128)total * CW__EEVDF_SCALE / ws[k]);
            ck_assert_msg(e->vruntime - v0 == want, "weight %u after %llu ns: v advanced %llu, want %llu",
                          ws[k], (unsigned long long)total,
                          (unsigned long long)(e->vruntime - v0), (unsigned long long)want);
        }
        /* and the slice it is given is never empty */
        ck_assert_uint_ge(slice, 1);
        free(m);
    }
}
END_TEST

START_TEST(nothing_runnable_picks_null_and_v_stays)
{
    sim *m = sim_new((uint32_t[]){1}, 1, 2 * MS, 100 * US);
    uint64_t slice;
    ck_assert_ptr_null(cw__eevdf_pick(&m->s, &slice));
    cw__eevdf_enqueue(&m->s, &m->q[0]);
    cw__eevdf_pick(&m->s, &slice);
    cw__eevdf_charge(&m->s, 1 * MS, false);
    uint64_t V = cw__eevdf_avg(&m->s);
    ck_assert_ptr_null(cw__eevdf_pick(&m->s, &slice));
    ck_assert_uint_eq(cw__eevdf_avg(&m->s), V);
    ck_assert_uint_eq(V, m->q[0].vruntime);
    free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("eevdf");
    TCase *tc = tcase_create("eevdf");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, shares_follow_weights_8_1);
    tcase_add_test(tc, shares_follow_weights_99_1);
    tcase_add_test(tc, shares_follow_weights_1_2_3);
    tcase_add_test(tc, shares_hold_with_full_slices);
    tcase_add_test(tc, pick_is_earliest_eligible_deadline_among_many);
    tcase_add_test(tc, random_operations_keep_the_invariants);
    tcase_add_test(tc, queue_made_ineligible_by_a_leave_is_not_picked);
    tcase_add_test(tc, random_enter_leave_matches_brute_force);
    tcase_add_test(tc, random_enter_leave_matches_brute_force_few);
    tcase_add_test(tc, random_enter_leave_matches_brute_force_all_queues);
    tcase_add_test(tc, random_enter_leave_matches_brute_force_with_ties);
    tcase_add_test(tc, ties_go_to_the_lower_index);
    tcase_add_test(tc, idle_rank_follows_enqueue_leave_and_first_use);
    tcase_add_test(tc, single_queue_fast_path_keeps_v_equal_to_avg);
    tcase_add_test(tc, slice_is_the_derived_request);
    tcase_add_test(tc, configured_slice_gives_an_earlier_deadline);
    tcase_add_test(tc, woke_early_keeps_its_lag);
    tcase_add_test(tc, long_idle_earns_no_burst);
    tcase_add_test(tc, lag_is_clamped_to_one_request);
    tcase_add_test(tc, enqueue_requests_preemption_only_when_more_deserving);
    tcase_add_test(tc, reweight_keeps_the_average_and_changes_shares);
    tcase_add_test(tc, virtual_time_wraps_harmlessly);
    tcase_add_test(tc, nothing_runnable_picks_null_and_v_stays);
    tcase_add_test(tc, charges_carry_their_remainder_at_any_weight);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
