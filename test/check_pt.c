/* check_pt.c - protothread macros: an await resumes after the awaited
 * future and re-polls it until it is ready, a yield resumes on the next
 * line after one more poll, state in the struct survives suspensions,
 * CW_RETURN and CW_END end the task and keep returning READY,
 * CW_YIELD_MAYBE yields exactly when cw_should_yield() says so; and
 * cw_yield, the yield-once future.
 *
 * The protothread tests are compiled twice: first in the default form
 * (computed goto under GCC and Clang), then, with CW_PT_USE_SWITCH defined,
 * in the portable switch form: this file includes itself once (see
 * CW_PT_SECOND_PASS). Each pass names its tests with its form's suffix and
 * checks which form its macros expanded to. */
#ifndef CW_PT_SECOND_PASS /* ====== prologue: once ====================== */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { Q1 = 1 };

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(x) #x
#define STR(x) STR_(x)

/* A config with one queue (Q1). */
static cw_config *cfg_one(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q1, 1), 0);
    return cfg;
}

/* One queue, and one poll per round, so one tenv_turn() is one poll. */
static cw_config *cfg_step(void)
{
    cw_config *cfg = cfg_one();
    cw_config_set_max_polls_per_yield(cfg, 1);
    return cfg;
}

static cw_join *spawn_on(tenv *env, cw_poll_fn poll, const void *state, size_t size)
{
    cw_join *j = NULL;
    int err = cw_spawn(cw_executor_queue(env->ex, Q1), poll, state, size, NULL, &j);
    ck_assert_msg(err == 0, "cw_spawn: %s", cw_strerror(err));
    return j;
}

/* What a task did, read by the test while the task runs (the task's state
 * is not reachable until it completes). */
struct trace {
    int polls;            /* counted before CW_BEGIN: every poll */
    int a, b, c;          /* how often each marked point of the body ran */
    int at[16];           /* a per-poll snapshot (see each test) */
    int status;           /* a join status the task saw */
    int got;              /* a result the task read */
    int line;             /* __LINE__ of a suspension point */
    uintptr_t lc;         /* the continuation just after resuming there */
};

/* ---- form-independent helpers ---------------------------------------- */

/* A child task: yields `yields` times, then sets out = 42. */
struct child {
    int yields;
    int out;
};

static cw_poll child_poll(void *p, cw_cx *cx)
{
    struct child *c = p;
    if (c->yields > 0) {
        c->yields--;
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    c->out = 42;
    return CW_READY;
}

static cw_join *spawn_child_from(cw_cx *cx, int yields)
{
    struct child c = {.yields = yields, .out = 0};
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(cw_cx_queue(cx), child_poll, &c, sizeof c, NULL, &j), 0);
    return j;
}

/* A leaf future: PENDING `left` times (waking its task), then READY;
 * counts its evaluations. */
struct countdown {
    int left;
    int evals;
};

static cw_poll countdown_poll(struct countdown *c, cw_cx *cx)
{
    c->evals++;
    if (c->left > 0) {
        c->left--;
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

/* State structs of the protothread tasks (the same in both passes). */
struct pt_task {
    cw_pt pt;
    struct trace *tr;
    int stop;             /* CW_RETURN early when set */
};

struct pt_parent {
    cw_pt pt;
    struct trace *tr;
    cw_join *child;
};

struct pt_countdown {
    cw_pt pt;
    struct trace *tr;
    struct countdown cd;
};

struct pt_loops {
    cw_pt pt;
    int i, j;             /* loop counters live here, not in locals */
    int n;
    int log[16];
    long sum;
};

struct pt_maybe {
    cw_pt pt;
    struct trace *tr;
    fake_clock *clk;
    int n;                /* iterations done */
};

struct pt_yieldf {
    cw_pt pt;
    struct trace *tr;
    cw_yield y;
};

struct pt_sub {
    cw_pt pt;
    int runs;             /* how many times the body reached its end */
};

struct pt_outer {
    cw_pt pt;
    struct trace *tr;
    struct pt_sub sub;
};

struct pt_switchy {
    cw_pt pt;
    struct trace *tr;
    int k;
};

/* Names of the first pass. */
#define PASS(name) CAT(name, _goto)
#define PT_TEST_(name) START_TEST(name)
#define PT_TEST(name) PT_TEST_(PASS(name))
#define FORM_IS_SWITCH 0
#define FORM_NAME "CW__PT_GOTO"
#endif /* ====== end of prologue ======================================= */

/* ====== body: compiled once per form ===================================== */

PT_TEST(macros_expand_to_the_selected_form)
{
    ck_assert_str_eq(STR(CW__PT_FORM), FORM_NAME);
}
END_TEST

/* -- await a join: the code before the await runs once, the code after it
 *    once the child has ended, and reads the child's result. -- */
static cw_poll PASS(parent_poll)(void *p, cw_cx *cx)
{
    struct pt_parent *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    st->tr->a++;
    st->child = spawn_child_from(cx, 3);
    CW_AWAIT(&st->pt, cw_join_poll(st->child, cx));
    st->tr->b++;
    st->tr->status = cw_join_status(st->child);
    struct child *done = cw_join_state(st->child);
    st->tr->got = done ? done->out : -1;
    cw_join_free(st->child);
    st->child = NULL;
    CW_END(&st->pt);
}

PT_TEST(await_join_resumes_after_it_and_reads_result)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_parent st = {.tr = &tr};
    cw_join *j = spawn_on(&env, PASS(parent_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.a, 1);      /* no re-run from the top */
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(tr.status, 0); /* the child had ended... */
    ck_assert_int_eq(tr.got, 42);   /* ...and its output was there */
    ck_assert_int_eq(tr.polls, 2);  /* pending once, woken once by the child */
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- await re-evaluates its expression on each poll until READY. -- */
static cw_poll PASS(countdown_task_poll)(void *p, cw_cx *cx)
{
    struct pt_countdown *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    st->tr->a++;
    CW_AWAIT(&st->pt, countdown_poll(&st->cd, cx));
    st->tr->b++;
    st->tr->got = st->cd.evals;
    CW_END(&st->pt);
}

PT_TEST(await_reevaluates_expr_each_poll_until_ready)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_countdown st = {.tr = &tr, .cd = {.left = 3}};
    cw_join *j = spawn_on(&env, PASS(countdown_task_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.got, 4);    /* 3 x PENDING, then READY */
    ck_assert_int_eq(tr.polls, 4);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 1);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- CW_YIELD: the task is polled again and resumes on the next line. -- */
static cw_poll PASS(steps_poll)(void *p, cw_cx *cx)
{
    struct pt_task *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    st->tr->a++;
    st->tr->line = __LINE__; CW_YIELD(&st->pt, cx);
    st->tr->lc = st->pt.cw__lc;
    st->tr->b++;
    CW_YIELD(&st->pt, cx);
    st->tr->c++;
    CW_END(&st->pt);
}

PT_TEST(yield_resumes_at_next_line_and_is_polled_again)
{
    tenv env;
    tenv_init(&env, cfg_step(), 1);
    struct trace tr = {0};
    struct pt_task st = {.tr = &tr};
    cw_join *j = spawn_on(&env, PASS(steps_poll), &st, sizeof st);

    tenv_turn(&env);
    ck_assert_int_eq(tr.polls, 1);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 0);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);

    tenv_turn(&env); /* nothing but the yield woke it */
    ck_assert_int_eq(tr.polls, 2);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(tr.c, 0);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);

    tenv_turn(&env);
    ck_assert_int_eq(tr.polls, 3);
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(tr.c, 1);
    ck_assert_int_eq(cw_join_status(j), 0);

    tenv_turn(&env);
    ck_assert_int_eq(tr.polls, 3); /* ended: not polled again */

    /* The continuation is what the form says: the line of the suspension
     * point in the switch form, a label address in the goto form. */
    ck_assert_uint_ne(tr.lc, 0);
    if (FORM_IS_SWITCH)
        ck_assert_uint_eq(tr.lc, (uintptr_t)tr.line);
    else
        ck_assert_uint_ne(tr.lc, (uintptr_t)tr.line);

    /* a finished body, polled by hand, stays READY and runs nothing */
    struct pt_task *fin = cw_join_state(j);
    ck_assert_ptr_nonnull(fin);
    ck_assert_int_eq(PASS(steps_poll)(fin, NULL), CW_READY);
    ck_assert_int_eq(PASS(steps_poll)(fin, NULL), CW_READY);
    ck_assert_int_eq(tr.polls, 5);
    ck_assert_int_eq(tr.a + tr.b + tr.c, 3);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- loop counters and accumulators in the struct survive yields, inside
 *    nested loops. -- */
static cw_poll PASS(loops_poll)(void *p, cw_cx *cx)
{
    struct pt_loops *st = p;
    CW_BEGIN(&st->pt);
    for (st->i = 0; st->i < 4; st->i++) {
        for (st->j = 0; st->j < 3; st->j++) {
            st->log[st->n++] = st->i * 10 + st->j;
            st->sum += st->i * 10 + st->j;
            CW_YIELD(&st->pt, cx);
        }
    }
    CW_END(&st->pt);
}

PT_TEST(state_in_struct_survives_yields)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct pt_loops st = {.n = 0};
    cw_join *j = spawn_on(&env, PASS(loops_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    struct pt_loops *out = cw_join_state(j);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->n, 12);
    for (int k = 0; k < 12; k++)
        ck_assert_int_eq(out->log[k], (k / 3) * 10 + k % 3);
    ck_assert_int_eq(out->sum, 192);
    ck_assert_int_eq(out->i, 4);
    cw_join_free(j);
    ck_assert_int_eq(st.n, 0); /* the task had its own copy */
    tenv_free(&env);
}
END_TEST

/* -- CW_RETURN ends the task (status 0), skips the rest of the body, and
 *    later polls stay READY. -- */
static cw_poll PASS(ret_poll)(void *p, cw_cx *cx)
{
    struct pt_task *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    st->tr->a++;
    CW_YIELD(&st->pt, cx);
    if (st->stop)
        CW_RETURN(&st->pt);
    st->tr->b++;
    CW_YIELD(&st->pt, cx);
    st->tr->c++;
    CW_END(&st->pt);
}

PT_TEST(return_ends_with_ready_and_join_status_0)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_task st = {.tr = &tr, .stop = 1};
    cw_join *j = spawn_on(&env, PASS(ret_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(cw_join_status(j), 0);
    ck_assert_int_eq(tr.polls, 2);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 0);
    ck_assert_int_eq(tr.c, 0);

    struct pt_task *fin = cw_join_state(j);
    ck_assert_ptr_nonnull(fin);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(PASS(ret_poll)(fin, NULL), CW_READY);
    ck_assert_int_eq(tr.a + tr.b + tr.c, 1);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- The macros alone, polled by hand (NULL cx: the yield wakes nobody):
 *    zero is the start, END and RETURN stay READY, cw_pt_init rewinds. -- */
PT_TEST(zeroed_pt_starts_ends_stay_ready_and_pt_init_rewinds)
{
    struct trace tr = {0};
    struct pt_task st = {.tr = &tr};
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_PENDING);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_PENDING);
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_READY);
    ck_assert_int_eq(tr.c, 1);
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_READY); /* after CW_END */
    ck_assert_int_eq(tr.a + tr.b + tr.c, 3);

    cw_pt_init(&st.pt);
    st.stop = 1;
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_PENDING);
    ck_assert_int_eq(tr.a, 2);
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_READY); /* CW_RETURN */
    ck_assert_int_eq(PASS(ret_poll)(&st, NULL), CW_READY); /* and stays */
    ck_assert_int_eq(tr.a + tr.b + tr.c, 4);
    ck_assert_int_eq(tr.polls, 7);
    cw_pt_init(NULL); /* no-op */
}
END_TEST

/* -- CW_YIELD_MAYBE in a CPU-bound loop: 10 us of (fake) work per
 *    iteration, one queue, driver_yield 500 us: it yields exactly when the
 *    round is spent, every 50 iterations. -- */
static cw_poll PASS(maybe_poll)(void *p, cw_cx *cx)
{
    struct pt_maybe *st = p;
    if (st->tr->polls < 16)
        st->tr->at[st->tr->polls] = st->n; /* where each poll starts */
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    while (st->n < 175) {
        st->n++;
        st->clk->now += 10000;
        CW_YIELD_MAYBE(&st->pt, cx);
    }
    CW_END(&st->pt);
}

PT_TEST(yield_maybe_yields_only_when_should_yield_says_so)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_maybe st = {.tr = &tr, .clk = &env.clk};
    cw_join *j = spawn_on(&env, PASS(maybe_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 4);
    ck_assert_int_eq(tr.at[0], 0);
    ck_assert_int_eq(tr.at[1], 50);
    ck_assert_int_eq(tr.at[2], 100);
    ck_assert_int_eq(tr.at[3], 150);
    struct pt_maybe *out = cw_join_state(j);
    ck_assert_int_eq(out->n, 175);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- awaiting the cw_yield future: one extra poll per armed yield. -- */
static cw_poll PASS(yieldf_poll)(void *p, cw_cx *cx)
{
    struct pt_yieldf *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    st->tr->a++;
    cw_yield_init(&st->y);
    CW_AWAIT(&st->pt, cw_yield_poll(&st->y, cx));
    st->tr->b++;
    cw_yield_init(&st->y);
    CW_AWAIT(&st->pt, cw_yield_poll(&st->y, cx));
    st->tr->c++;
    CW_END(&st->pt);
}

PT_TEST(await_yield_future_suspends_once_per_init)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_yieldf st = {.tr = &tr};
    cw_join *j = spawn_on(&env, PASS(yieldf_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 3);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(tr.c, 1);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* -- a protothread awaiting a sub-protothread (its own cw_pt in the
 *    parent's state), run twice with cw_pt_init in between. -- */
static cw_poll PASS(sub_poll)(struct pt_sub *sub, cw_cx *cx)
{
    CW_BEGIN(&sub->pt);
    CW_YIELD(&sub->pt, cx);
    CW_YIELD(&sub->pt, cx);
    sub->runs++;
    CW_END(&sub->pt);
}

static cw_poll PASS(outer_poll)(void *p, cw_cx *cx)
{
    struct pt_outer *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    CW_AWAIT(&st->pt, PASS(sub_poll)(&st->sub, cx));
    st->tr->a = st->sub.runs;
    cw_pt_init(&st->sub.pt);
    CW_AWAIT(&st->pt, PASS(sub_poll)(&st->sub, cx));
    st->tr->b = st->sub.runs;
    CW_END(&st->pt);
}

PT_TEST(await_sub_protothread_runs_it_to_its_end)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_outer st = {.tr = &tr};
    cw_join *j = spawn_on(&env, PASS(outer_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 2);
    ck_assert_int_eq(tr.polls, 5); /* 2 yields per run, then the end */
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

#if !FORM_IS_SWITCH
/* -- goto form only: a switch around a yield resumes inside it. (In the
 *    switch form the same code compiles and resumes in the wrong place.) -- */
static cw_poll PASS(switchy_poll)(void *p, cw_cx *cx)
{
    struct pt_switchy *st = p;
    st->tr->polls++;
    CW_BEGIN(&st->pt);
    for (st->k = 0; st->k < 3; st->k++) {
        switch (st->k) {
        case 1:
            st->tr->a++;
            CW_YIELD(&st->pt, cx);
            st->tr->b++;
            break;
        default:
            st->tr->c++;
            break;
        }
    }
    CW_END(&st->pt);
}

PT_TEST(switch_around_a_yield_works_in_goto_form)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct pt_switchy st = {.tr = &tr};
    cw_join *j = spawn_on(&env, PASS(switchy_poll), &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 2);
    ck_assert_int_eq(tr.a, 1);
    ck_assert_int_eq(tr.b, 1);
    ck_assert_int_eq(tr.c, 2);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST
#endif

static void PASS(add_tests)(TCase *tc)
{
    tcase_add_test(tc, PASS(macros_expand_to_the_selected_form));
    tcase_add_test(tc, PASS(await_join_resumes_after_it_and_reads_result));
    tcase_add_test(tc, PASS(await_reevaluates_expr_each_poll_until_ready));
    tcase_add_test(tc, PASS(yield_resumes_at_next_line_and_is_polled_again));
    tcase_add_test(tc, PASS(state_in_struct_survives_yields));
    tcase_add_test(tc, PASS(return_ends_with_ready_and_join_status_0));
    tcase_add_test(tc, PASS(zeroed_pt_starts_ends_stay_ready_and_pt_init_rewinds));
    tcase_add_test(tc, PASS(yield_maybe_yields_only_when_should_yield_says_so));
    tcase_add_test(tc, PASS(await_yield_future_suspends_once_per_init));
    tcase_add_test(tc, PASS(await_sub_protothread_runs_it_to_its_end));
#if !FORM_IS_SWITCH
    tcase_add_test(tc, PASS(switch_around_a_yield_works_in_goto_form));
#endif
}

/* ====== end of body ======================================================= */

#ifndef CW_PT_SECOND_PASS /* ====== second pass, then epilogue: once ===== */
#define CW_PT_SECOND_PASS
#define CW_PT_USE_SWITCH
#undef PASS
#undef FORM_IS_SWITCH
#undef FORM_NAME
#define PASS(name) CAT(name, _switch)
#define FORM_IS_SWITCH 1
#define FORM_NAME "CW__PT_SWITCH"
#include "check_pt.c"

/* ---- cw_yield, the leaf future ------------------------------------------ */

struct yield_probe {
    cw_yield y;
    struct trace *tr;
};

/* Polls the future once per poll, and once more after it is READY. */
static cw_poll yield_probe_poll(void *p, cw_cx *cx)
{
    struct yield_probe *st = p;
    struct trace *tr = st->tr;
    cw_poll r = cw_yield_poll(&st->y, cx);
    tr->at[tr->polls++] = (int)r;
    if (r == CW_PENDING)
        return CW_PENDING;
    tr->got = (int)cw_yield_poll(&st->y, cx);
    return CW_READY;
}

START_TEST(yield_future_is_pending_then_ready_and_stays_ready)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct yield_probe st = {.tr = &tr};
    cw_yield_init(&st.y);
    cw_join *j = spawn_on(&env, yield_probe_poll, &st, sizeof st);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 2); /* the PENDING poll woke the task */
    ck_assert_int_eq(tr.at[0], CW_PENDING);
    ck_assert_int_eq(tr.at[1], CW_READY);
    ck_assert_int_eq(tr.got, CW_READY);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

START_TEST(yield_future_zeroed_equals_init_and_init_rearms)
{
    tenv env;
    tenv_init(&env, cfg_one(), 1);
    struct trace tr = {0};
    struct yield_probe st;
    memset(&st, 0xff, sizeof st); /* garbage that init must clear */
    cw_yield_init(&st.y);
    ck_assert(!st.y.cw__yielded);
    struct yield_probe zeroed = {.tr = &tr};
    ck_assert_int_eq(memcmp(&st.y, &zeroed.y, sizeof st.y), 0);
    cw_join *j = spawn_on(&env, yield_probe_poll, &zeroed, sizeof zeroed);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 2);

    /* the finished future, re-armed, yields again */
    struct yield_probe *fin = cw_join_state(j);
    cw_yield_init(&fin->y);
    struct yield_probe again = *fin;
    cw_join_free(j);
    memset(&tr, 0, sizeof tr);
    j = spawn_on(&env, yield_probe_poll, &again, sizeof again);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(tr.polls, 2);
    ck_assert_int_eq(tr.at[0], CW_PENDING);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

/* Polls a NULL future, then waits for a wake that only a (wrong) wake
 * from that poll could give. */
static cw_poll null_yield_poll(void *p, cw_cx *cx)
{
    struct trace *tr = *(struct trace **)p;
    tr->at[tr->polls++] = (int)cw_yield_poll(NULL, cx);
    return CW_PENDING;
}

START_TEST(yield_future_null_or_outside_a_poll_is_ready)
{
    cw_yield y;
    cw_yield_init(&y);
    cw_yield_init(NULL); /* no-op */
    ck_assert_int_eq(cw_yield_poll(NULL, NULL), CW_READY);
    ck_assert_int_eq(cw_yield_poll(&y, NULL), CW_READY);
    ck_assert(!y.cw__yielded); /* not used up by a poll that woke nobody */

    tenv env;
    tenv_init(&env, cfg_one(), 1);
    /* a cx outside a poll has no task to wake: READY, not used up */
    struct trace tr = {0};
    struct trace *trp = &tr;
    cw_join *j = spawn_on(&env, null_yield_poll, &trp, sizeof trp);
    for (int k = 0; k < 4; k++)
        tenv_turn(&env);
    ck_assert_int_eq(tr.polls, 1); /* the NULL future woke nobody */
    ck_assert_int_eq(tr.at[0], CW_READY);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    cw_join_abort(j);
    cw_join_free(j);
    tenv_free(&env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pt");
    TCase *tg = tcase_create("goto");
    add_tests_goto(tg);
    suite_add_tcase(s, tg);
    TCase *ts = tcase_create("switch");
    add_tests_switch(ts);
    suite_add_tcase(s, ts);
    TCase *ty = tcase_create("yield");
    tcase_add_test(ty, yield_future_is_pending_then_ready_and_stays_ready);
    tcase_add_test(ty, yield_future_zeroed_equals_init_and_init_rearms);
    tcase_add_test(ty, yield_future_null_or_outside_a_poll_is_ready);
    suite_add_tcase(s, ty);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
#endif /* ====== end of epilogue ========================================= */
