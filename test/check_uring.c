/* check_uring.c - the io_uring driver (clockworker/uring.h): the API and
 * cw_uring_run()'s modes, and the core's scenarios on it: tasks, weighted
 * shares, sleeps, fd readiness (two waiters, drops before and after the
 * poll request reached the kernel, bad fds, a full ring), remote wakes
 * and spawns, run_until, the loop ending by itself, and freeing an
 * executor with waits in flight. Exits 77 (skipped) when io_uring is not
 * available here (-ENOSYS, -EPERM in some containers). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "testutil.h"
#include "tdrv.h"

#include "clockworker/uring.h"

#define MS 1000000ull
#define US 1000ull

/* ---- an executor on the ring, through the harness table ------------------ */

static void uinit(tenv *env, cw_config *cfg, int fake)
{
    memset(env, 0, sizeof *env);
    env->clk.now = 1000000000ull;
    if (fake)
        cw_config_set_clock(cfg, fake_now, &env->clk);
    int err = tdrv_uring.init(env, cfg);
    cw_config_free(cfg);
    ck_assert_msg(err == 0, "cw_executor_new_uring: %s", cw_strerror(err));
}

static void ufree(tenv *env)
{
    cw_executor_free(env->ex);
    tdrv_uring.free(env);
    env->ex = NULL;
}

static void uturns(tenv *env, int n)
{
    for (int i = 0; i < n; i++)
        tdrv_uring.turn(env);
}

static cw_config *one_queue(void)
{
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    return cfg;
}

static cw_queue *q0(tenv *env)
{
    return cw_executor_queue(env->ex, 0);
}

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

/* ---- tasks ---------------------------------------------------------------- */

static int g_ran;

static cw_poll count_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    g_ran++;
    return CW_READY;
}

/* Waits for fd readiness `target` times (reading what it can when
 * readable), then ends. */
typedef struct waiter {
    cw_fdwait w;
    int waits, target, polls;
    short revents;
    bool drop_after_arm; /* drop the wait in the poll that armed it */
    bool no_read;        /* leave the data for the other waiters */
    int *drops;
} waiter;

static cw_poll waiter_poll(void *state, cw_cx *cx)
{
    waiter *s = state;
    s->polls++;
    while (s->waits < s->target) {
        if (cw_fdwait_poll(&s->w, cx) == CW_PENDING) {
            if (s->drop_after_arm) {
                cw_fdwait_drop(&s->w);
                return CW_READY;
            }
            return CW_PENDING;
        }
        s->revents = cw_fdwait_revents(&s->w);
        s->waits++;
        if (!s->revents)
            return CW_READY;
        char buf[64];
        if ((s->revents & CW_FD_READ) && !s->no_read)
            (void)!read(s->w.cw__fd, buf, sizeof buf);
    }
    return CW_READY;
}

static void waiter_drop(void *state)
{
    waiter *s = state;
    cw_fdwait_drop(&s->w);
    if (s->drops)
        ++*s->drops;
}

static waiter make_waiter(int fd, short what, int target, int *drops)
{
    waiter s;
    memset(&s, 0, sizeof s);
    cw_fdwait_init(&s.w, fd, what);
    s.target = target;
    s.drops = drops;
    return s;
}

/* Sleeps ns, then ends; records when. */
typedef struct sleeper {
    cw_sleep sl;
    uint64_t ns;
    bool started;
    int64_t done_ms;
    int *drops;
} sleeper;

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    sleeper *s = state;
    if (!s->started) {
        cw_sleep_init(&s->sl, s->ns);
        s->started = true;
    }
    if (cw_sleep_poll(&s->sl, cx) == CW_PENDING)
        return CW_PENDING;
    s->done_ms = test_now_ms();
    return CW_READY;
}

static void sleeper_drop(void *state)
{
    sleeper *s = state;
    cw_sleep_drop(&s->sl);
    if (s->drops)
        ++*s->drops;
}

static void spawn_sleeper(tenv *env, uint64_t ns, int *drops, cw_join **j)
{
    sleeper s = {.ns = ns, .drops = drops};
    ck_assert_int_eq(cw_spawn(q0(env), sleeper_poll, &s, sizeof s, sleeper_drop, j), 0);
}

/* ---- the API -------------------------------------------------------------- */

START_TEST(constructor_checks_its_arguments)
{
    cw_executor *ex = (cw_executor *)&ex;
    ck_assert_int_eq(cw_executor_new_uring(NULL, 0, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    cw_config *cfg = one_queue();
    ck_assert_int_eq(cw_executor_new_uring(cfg, 0, NULL), -EINVAL);
    cw_config *empty = cw_config_new();
    ex = (cw_executor *)&ex;
    ck_assert_int_eq(cw_executor_new_uring(empty, 0, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    cw_config_free(empty);
    /* the ring's own error, cleanly: more entries than the kernel takes */
    ex = (cw_executor *)&ex;
    ck_assert_int_lt(cw_executor_new_uring(cfg, 1u << 20, &ex), 0);
    ck_assert_ptr_null(ex);
    /* a tiny ring is fine */
    ck_assert_int_eq(cw_executor_new_uring(cfg, 1, &ex), 0);
    cw_executor_free(ex);
    cw_config_free(cfg);
}
END_TEST

START_TEST(kind_ring_and_run_modes)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    ck_assert_int_eq(cw_executor_loop(env.ex), CW_LOOP_URING);
    ck_assert_str_eq(cw_loop_name(cw_executor_loop(env.ex)), "uring");
    struct io_uring *ring = cw_executor_uring(env.ex);
    ck_assert_ptr_nonnull(ring);
    ck_assert_int_ge(ring->ring_fd, 0);
    ck_assert_ptr_null(cw_executor_base(env.ex));
    ck_assert_ptr_null(cw_executor_uring(NULL));
    ck_assert_int_eq(cw_uring_run(NULL, CW_URING_RUN_DEFAULT), -EINVAL);
    ck_assert_int_eq(cw_uring_run(env.ex, (cw_uring_run_mode)7), -EINVAL);
    /* nothing to wait for: every mode returns 1 at once */
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_ONCE), 1);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_NOWAIT), 1);
    ufree(&env);

    /* an executor on libevent is not on a ring */
    struct event_base *base = event_base_new();
    cw_config *cfg = one_queue();
    cw_executor *lev;
    ck_assert_int_eq(cw_executor_new(base, cfg, &lev), 0);
    ck_assert_ptr_null(cw_executor_uring(lev));
    ck_assert_int_eq(cw_uring_run(lev, CW_URING_RUN_NOWAIT), -EINVAL);
    cw_executor_free(lev);
    cw_config_free(cfg);
    event_base_free(base);
}
END_TEST

/* ---- tasks and the loop ending --------------------------------------------- */

START_TEST(tasks_run_and_the_loop_ends_with_the_last)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    for (int round = 0; round < 50; round++) {
        g_ran = 0;
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(cw_spawn(q0(&env), count_poll, NULL, 0, NULL, NULL), 0);
        /* the remote-wake fd is watched while tasks live, then not:
         * DEFAULT returns once they have ended */
        ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
        ck_assert_int_eq(g_ran, 3);
        ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    }
    ufree(&env);
}
END_TEST

static cw_poll busy_inner_poll(void *state, cw_cx *cx)
{
    int *r = state;
    r[0] = cw_uring_run(cw_cx_executor(cx), CW_URING_RUN_NOWAIT);
    r[1] = cw_uring_run(cw_cx_executor(cx), CW_URING_RUN_DEFAULT);
    return CW_READY;
}

START_TEST(running_the_ring_from_a_task_is_refused)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    int r[2] = {0, 0};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q0(&env), busy_inner_poll, r, sizeof r, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    int *out = cw_join_state(j);
    ck_assert_int_eq(out[0], -EBUSY);
    ck_assert_int_eq(out[1], -EBUSY);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

/* Spinners that advance the fake clock by 10 us per poll. */
static fake_clock *g_clk;
static uint64_t g_polls[2];
static bool g_stop;

static cw_poll spin_poll(void *state, cw_cx *cx)
{
    uint32_t qid = *(uint32_t *)state;
    if (g_stop)
        return CW_READY;
    g_polls[qid]++;
    g_clk->now += 10 * US;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(yield_shares_follow_weights)
{
    tenv env;
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    cw_config_add_queue(cfg, 1, 3);
    uinit(&env, cfg, 1);
    g_clk = &env.clk;
    g_polls[0] = g_polls[1] = 0;
    g_stop = false;
    for (uint32_t q = 0; q < 2; q++)
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, q), spin_poll, &q, sizeof q,
                                      NULL, NULL),
                             0);
    for (int guard = 0; g_polls[0] + g_polls[1] < 8000; guard++) {
        ck_assert_int_lt(guard, 1000000);
        tdrv_uring.turn(&env);
    }
    double share = (double)g_polls[1] / (double)(g_polls[0] + g_polls[1]);
    ck_assert_msg(share > 0.74 && share < 0.76, "weight 3 of 4: share %.4f", share);
    g_stop = true;
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_uint_eq(stats_of(env.ex).tasks_live, 0);
    ufree(&env);
}
END_TEST

/* ---- sleeps ---------------------------------------------------------------- */

START_TEST(sleep_fires_then_the_loop_ends)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    cw_join *j;
    int64_t t0 = test_now_ms();
    spawn_sleeper(&env, 30 * MS, NULL, &j);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_join_status(j), 0);
    sleeper *s = cw_join_state(j);
    ck_assert_int_ge(s->done_ms - t0, 30);
    ck_assert_int_lt(s->done_ms - t0, 2000);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

START_TEST(once_blocks_until_the_timer_and_nowait_does_not)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    cw_join *j;
    spawn_sleeper(&env, 20 * MS, NULL, &j);
    /* the first turn runs the task, which arms the timer */
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_NOWAIT), 0);
    int64_t t0 = test_now_ms();
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_NOWAIT), 0);
    ck_assert_int_lt(test_now_ms() - t0, 15); /* did not wait */
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    /* ONCE: blocks for the timer, which fires the sleep and runs the
     * round in the same turn */
    int r = cw_uring_run(env.ex, CW_URING_RUN_ONCE);
    ck_assert_int_ge(r, 0);
    ck_assert_int_ge(test_now_ms() - t0, 15);
    ck_assert_int_eq(cw_join_status(j), 0);
    cw_join_free(j);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ufree(&env);
}
END_TEST

START_TEST(a_dropped_sleep_leaves_nothing_to_wait_for)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    cw_join *j;
    spawn_sleeper(&env, 3600000 * MS, NULL, &j); /* an hour */
    uturns(&env, 3);
    cw_join_abort(j);
    int64_t t0 = test_now_ms();
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_lt(test_now_ms() - t0, 1000);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

/* ---- fd readiness ------------------------------------------------------------ */

START_TEST(readable_fd_wakes_the_task)
{
    tenv env;
    int sv[2];
    uinit(&env, one_queue(), 0);
    pair(sv);
    waiter s = make_waiter(sv[0], CW_FD_READ, 3, NULL);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &s, sizeof s, waiter_drop, &j), 0);
    for (int i = 0; i < 3; i++) {
        uturns(&env, 5);
        ck_assert_int_eq(cw_join_status(j), -EAGAIN);
        ck_assert_int_eq(write(sv[1], "x", 1), 1);
        if (i < 2)
            uturns(&env, 2); /* the report, then the round */
    }
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    waiter *out = cw_join_state(j);
    ck_assert_int_eq(out->revents, CW_FD_READ);
    ck_assert_int_eq(out->waits, 3);
    ck_assert_int_eq(out->polls, 4); /* one to wait, one per report */
    cw_join_free(j);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

START_TEST(writable_and_hangup_are_reported)
{
    tenv env;
    int sv[2];
    uinit(&env, one_queue(), 0);
    pair(sv);
    waiter w = make_waiter(sv[0], CW_FD_WRITE, 1, NULL);
    waiter r = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    cw_join *jw, *jr;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &w, sizeof w, waiter_drop, &jw), 0);
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &r, sizeof r, waiter_drop, &jr), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jw), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(jw))->revents, CW_FD_WRITE);
    ck_assert_int_eq(cw_join_status(jr), -EAGAIN);
    close(sv[1]); /* hang-up: readable (EOF) */
    ck_assert_int_eq(cw_executor_run_until(env.ex, jr), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(jr))->revents, CW_FD_READ);
    cw_join_free(jw);
    cw_join_free(jr);
    close(sv[0]);
    ufree(&env);
}
END_TEST

START_TEST(two_waiters_on_one_fd_are_both_woken)
{
    tenv env;
    int sv[2];
    uinit(&env, one_queue(), 0);
    pair(sv);
    waiter a = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    waiter b = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    a.no_read = b.no_read = true;
    cw_join *ja, *jb;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &a, sizeof a, waiter_drop, &ja), 0);
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &b, sizeof b, waiter_drop, &jb), 0);
    uturns(&env, 5);
    ck_assert_int_eq(cw_join_status(ja), -EAGAIN);
    ck_assert_int_eq(cw_join_status(jb), -EAGAIN);
    ck_assert_int_eq(write(sv[1], "xy", 2), 2);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_join_status(ja), 0);
    ck_assert_int_eq(cw_join_status(jb), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(ja))->revents, CW_FD_READ);
    ck_assert_int_eq(((waiter *)cw_join_state(jb))->revents, CW_FD_READ);
    cw_join_free(ja);
    cw_join_free(jb);
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

START_TEST(dropped_waits_report_nothing)
{
    tenv env;
    int sv[2], drops = 0;
    uinit(&env, one_queue(), 0);
    pair(sv);
    /* a: dropped in the poll that armed it (its SQE was not submitted:
     * turned into a NOP); b: aborted after its request reached the
     * kernel (cancelled; the record lives until the cancellation's
     * completion); c: a waiter that stays, woken by the same write */
    waiter a = make_waiter(sv[0], CW_FD_READ, 1, &drops);
    a.drop_after_arm = true;
    waiter b = make_waiter(sv[0], CW_FD_READ, 1, &drops);
    waiter c = make_waiter(sv[0], CW_FD_READ, 1, &drops);
    cw_join *ja, *jb, *jc;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &a, sizeof a, waiter_drop, &ja), 0);
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &b, sizeof b, waiter_drop, &jb), 0);
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &c, sizeof c, waiter_drop, &jc), 0);
    uturns(&env, 5);
    ck_assert_int_eq(cw_join_status(ja), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(ja))->polls, 1);
    cw_join_abort(jb);
    ck_assert_int_eq(cw_join_status(jb), -ECANCELED);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_join_status(jc), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(jc))->revents, CW_FD_READ);
    cw_join_free(ja);
    cw_join_free(jb);
    cw_join_free(jc);
    ck_assert_int_eq(drops, 3);
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

START_TEST(drop_with_the_report_already_in_the_ring)
{
    tenv env;
    int sv[2];
    uinit(&env, one_queue(), 0);
    pair(sv);
    waiter a = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    cw_join *ja;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &a, sizeof a, waiter_drop, &ja), 0);
    uturns(&env, 3);
    /* ready: the kernel posts the completion at once (the write runs the
     * poll's wake-up); aborted before a turn reaps it */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_uint_ge(io_uring_cq_ready(cw_executor_uring(env.ex)), 1);
    cw_join_abort(ja);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_join_status(ja), -ECANCELED);
    cw_join_free(ja);
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

START_TEST(a_closed_fd_fails_the_wait_as_on_libevent)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    int fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd); /* a number no longer open */
    waiter s = make_waiter(fd, CW_FD_READ | CW_FD_WRITE, 1, NULL);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &s, sizeof s, waiter_drop, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    /* READY with no event, at once (io.h), not a POLL_ADD's -EBADF later */
    ck_assert_int_eq(((waiter *)cw_join_state(j))->revents, 0);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

START_TEST(a_full_ring_is_submitted_and_reused)
{
    enum { N = 100 };
    tenv env;
    int sv[2];
    cw_config *cfg = one_queue();
    memset(&env, 0, sizeof env);
    ck_assert_int_eq(cw_executor_new_uring(cfg, 2, &env.ex), 0); /* 2 SQEs, 4 CQEs */
    cw_config_free(cfg);
    pair(sv);
    cw_join *j[N];
    for (int i = 0; i < N; i++) {
        waiter s = make_waiter(sv[0], CW_FD_READ, 1, NULL);
        s.no_read = true; /* (a round may not reach them all before the write) */
        ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &s, sizeof s, waiter_drop, &j[i]), 0);
    }
    uturns(&env, 5);
    ck_assert_int_eq(cw_join_status(j[0]), -EAGAIN);
    /* the completions overflow the CQ ring: the kernel keeps them */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(cw_join_status(j[i]), 0);
        ck_assert_int_eq(((waiter *)cw_join_state(j[i]))->revents, CW_FD_READ);
        cw_join_free(j[i]);
    }
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

static cw_poll spinner_poll(void *state, cw_cx *cx)
{
    int *left = state;
    if (--*left <= 0)
        return CW_READY;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

START_TEST(io_is_seen_between_busy_rounds)
{
    tenv env;
    int sv[2];
    uinit(&env, one_queue(), 0);
    pair(sv);
    int spins = 1000000;
    cw_join *js, *jw;
    ck_assert_int_eq(cw_spawn(q0(&env), spinner_poll, &spins, sizeof spins, NULL, &js), 0);
    waiter w = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &w, sizeof w, waiter_drop, &jw), 0);
    uturns(&env, 3);
    ck_assert_int_eq(cw_join_status(jw), -EAGAIN);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    /* a round is always due: turns never block, yet the completion is
     * seen in the next turn and the waiter runs in the round after */
    uturns(&env, 2);
    ck_assert_int_eq(cw_join_status(jw), 0);
    ck_assert_int_eq(cw_join_status(js), -EAGAIN);
    cw_join_abort(js);
    cw_join_free(js);
    cw_join_free(jw);
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    close(sv[0]);
    close(sv[1]);
    ufree(&env);
}
END_TEST

/* ---- remote wakes and spawns -------------------------------------------------- */

static cw_waker *_Atomic g_remote_waker;

static cw_poll parked_poll(void *state, cw_cx *cx)
{
    int *woken = state;
    if (*woken)
        return CW_READY;
    *woken = 1;
    atomic_store(&g_remote_waker, cw_waker_clone(cw_cx_waker(cx)));
    return CW_PENDING;
}

static void *waker_thread(void *arg)
{
    (void)arg;
    cw_waker *k;
    while (!(k = atomic_load(&g_remote_waker)))
        usleep(1000);
    usleep(20000);
    cw_waker_wake(k);
    return NULL;
}

START_TEST(a_wake_from_another_thread)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    atomic_store(&g_remote_waker, NULL);
    int woken = 0;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q0(&env), parked_poll, &woken, sizeof woken, NULL, &j), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waker_thread, NULL), 0);
    /* blocks in the ring until the eventfd's poll completes */
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    ck_assert_int_eq(cw_join_status(j), 0);
    pthread_join(th, NULL);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

typedef struct remote_arg {
    cw_spawner *sp;
    cw_remote_join *rj;
    int err;
} remote_arg;

static cw_poll remote_task_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    /* on the executor thread: release the parked task */
    cw_waker_wake(atomic_exchange(&g_remote_waker, NULL));
    return CW_READY;
}

static void *spawner_thread(void *arg)
{
    remote_arg *a = arg;
    while (!atomic_load(&g_remote_waker))
        usleep(1000);
    usleep(10000);
    int v = 7;
    a->err = cw_spawn_remote(a->sp, remote_task_poll, &v, sizeof v, NULL, &a->rj);
    if (!a->err)
        a->err = cw_remote_join_wait(a->rj);
    return NULL;
}

START_TEST(a_spawn_from_another_thread)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    atomic_store(&g_remote_waker, NULL);
    remote_arg a = {0};
    ck_assert_int_eq(cw_spawner_new(q0(&env), &a.sp), 0);
    int woken = 0;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q0(&env), parked_poll, &woken, sizeof woken, NULL, &j), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, spawner_thread, &a), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(a.err, 0);
    cw_remote_join_free(a.rj);
    cw_spawner_free(a.sp); /* it kept the remote-wake fd watched */
    ck_assert_int_eq(cw_uring_run(env.ex, CW_URING_RUN_DEFAULT), 1);
    cw_join_free(j);
    ufree(&env);
}
END_TEST

/* ---- run_until and freeing ---------------------------------------------------- */

START_TEST(run_until_returns_with_the_task)
{
    tenv env;
    uinit(&env, one_queue(), 0);
    cw_join *j1, *j2;
    spawn_sleeper(&env, 5 * MS, NULL, &j1);
    spawn_sleeper(&env, 3600000 * MS, NULL, &j2);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j1), 0);
    ck_assert_int_eq(cw_join_status(j2), -EAGAIN); /* still sleeping */
    cw_join_free(j1);
    cw_join_free(j2); /* detached: freed with the executor */
    ufree(&env);
}
END_TEST

START_TEST(free_with_waits_in_flight)
{
    tenv env;
    int sv[2], drops = 0;
    uinit(&env, one_queue(), 0);
    pair(sv);
    cw_join *j[6];
    for (int i = 0; i < 3; i++) {
        waiter s = make_waiter(sv[0], i == 2 ? CW_FD_WRITE : CW_FD_READ, 1, &drops);
        s.target = i == 2 ? 1000000 : 1; /* a writer kept busy */
        ck_assert_int_eq(cw_spawn(q0(&env), waiter_poll, &s, sizeof s, waiter_drop, &j[i]), 0);
    }
    for (int i = 3; i < 6; i++)
        spawn_sleeper(&env, (uint64_t)i * 3600000 * MS, &drops, &j[i]);
    uturns(&env, 3); /* the polls reached the kernel */
    /* one aborted just before the free: its cancellation is in flight */
    cw_join_abort(j[0]);
    ck_assert_int_eq(drops, 1);
    /* one with a report in the ring, not reaped */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ufree(&env);
    ck_assert_int_eq(drops, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(cw_join_status(j[i]), -ECANCELED);
        cw_join_free(j[i]);
    }
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("uring");
    TCase *tc = tcase_create("uring");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, constructor_checks_its_arguments);
    tcase_add_test(tc, kind_ring_and_run_modes);
    tcase_add_test(tc, tasks_run_and_the_loop_ends_with_the_last);
    tcase_add_test(tc, running_the_ring_from_a_task_is_refused);
    tcase_add_test(tc, yield_shares_follow_weights);
    tcase_add_test(tc, sleep_fires_then_the_loop_ends);
    tcase_add_test(tc, once_blocks_until_the_timer_and_nowait_does_not);
    tcase_add_test(tc, a_dropped_sleep_leaves_nothing_to_wait_for);
    tcase_add_test(tc, readable_fd_wakes_the_task);
    tcase_add_test(tc, writable_and_hangup_are_reported);
    tcase_add_test(tc, two_waiters_on_one_fd_are_both_woken);
    tcase_add_test(tc, dropped_waits_report_nothing);
    tcase_add_test(tc, drop_with_the_report_already_in_the_ring);
    tcase_add_test(tc, a_closed_fd_fails_the_wait_as_on_libevent);
    tcase_add_test(tc, a_full_ring_is_submitted_and_reused);
    tcase_add_test(tc, io_is_seen_between_busy_rounds);
    tcase_add_test(tc, a_wake_from_another_thread);
    tcase_add_test(tc, a_spawn_from_another_thread);
    tcase_add_test(tc, run_until_returns_with_the_task);
    tcase_add_test(tc, free_with_waits_in_flight);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* io_uring may be refused here (no kernel support, a seccomp filter
     * or kernel.io_uring_disabled in a container): skip, do not fail. */
    cw_config *cfg = one_queue();
    cw_executor *ex;
    int err = cw_executor_new_uring(cfg, 0, &ex);
    cw_config_free(cfg);
    if (err < 0) {
        printf("SKIP: no io_uring here: %s\n", strerror(-err));
        return 77;
    }
    cw_executor_free(ex);
    return run_suite(suite());
}
