/* check_embed.c - the embed driver (clockworker/embed.h): what the host is
 * told (watch_fd aggregated per fd and only on changes, set_timer's
 * values), a tick runs at most one round, reports nobody waits for, the
 * run_until hook; then the core scenarios every driver must pass, each
 * hosted by a poll() loop and by an epoll loop written in the test
 * (embed_host.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "embed_host.h"
#include "testutil.h"

#define US 1000ull
#define MS 1000000ull

static cw_config *cfg_one(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    return cfg;
}

static void host_new(ehost *h, int kind, cw_config *cfg)
{
    ehost_init(h, kind);
    int err = ehost_executor(h, cfg);
    ck_assert_msg(err == 0, "cw_executor_new_embed: %s", cw_strerror(err));
    cw_config_free(cfg);
}

/* Free the executor: the host must be left watching nothing, no timer. */
static void host_done(ehost *h)
{
    cw_executor_free(h->ex);
    h->ex = NULL;
    ck_assert_int_eq(h->nfds, 0);
    ck_assert_int_eq(h->timer, -1);
    ck_assert_int_eq(h->redundant, 0);
    ehost_free(h);
}

static cw_queue *q_of(ehost *h, uint32_t id)
{
    cw_queue *q = cw_executor_queue(h->ex, id);
    ck_assert_ptr_nonnull(q);
    return q;
}

/* Turns without blocking until no round is due (a slow machine, say
 * valgrind, may split the polls of one turn over several rounds). */
static void settle(ehost *h)
{
    for (int i = 0; i < 1000 && cw_embed_next_ns(h->ex) == 0; i++)
        ehost_turn(h, 0);
    ck_assert_int_ne(cw_embed_next_ns(h->ex), 0);
}

/* How many watch_fd calls named fd, and the last what. */
static int watch_calls(const ehost *h, int fd, short *last)
{
    int n = 0;
    for (int i = 0; i < h->nwatch && i < EHOST_LOG; i++)
        if (h->watch_fd_log[i] == fd) {
            n++;
            if (last)
                *last = h->watch_what_log[i];
        }
    return n;
}

static void nonblocking_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

/* Fill fd's send buffer: fd is then not writable. */
static void fill(int fd)
{
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    while (write(fd, buf, sizeof buf) > 0)
        ;
}

/* ---- tasks ------------------------------------------------------------------ */

static int g_done;

static cw_poll done_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    g_done++;
    return CW_READY;
}

/* Waits once on an fd; then counts and reads a byte if it was for reading. */
struct waiter {
    cw_fdwait w;
    int fd;
    int *fired;   /* incremented when the wait completed */
    short *seen;  /* what it saw (0: the wait failed) */
    int *dropped; /* incremented by the drop function */
};

static cw_poll waiter_poll(void *state, cw_cx *cx)
{
    struct waiter *s = state;
    if (cw_fdwait_poll(&s->w, cx) == CW_PENDING)
        return CW_PENDING;
    *s->seen = cw_fdwait_revents(&s->w);
    (*s->fired)++;
    cw_fdwait_drop(&s->w);
    return CW_READY;
}

static void waiter_drop(void *state)
{
    struct waiter *s = state;
    cw_fdwait_drop(&s->w);
    if (s->dropped)
        (*s->dropped)++;
}

static void spawn_waiter(ehost *h, int fd, short what, int *fired, short *seen, int *dropped,
                         cw_join **j)
{
    struct waiter s = {.fd = fd, .fired = fired, .seen = seen, .dropped = dropped};
    cw_fdwait_init(&s.w, fd, what);
    ck_assert_int_eq(cw_spawn(q_of(h, 1), waiter_poll, &s, sizeof s, waiter_drop, j), 0);
}

/* Sleeps ns, then counts. */
struct sleeper {
    cw_sleep s;
    int *woke;
    int *dropped;
};

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    struct sleeper *s = state;
    if (cw_sleep_poll(&s->s, cx) == CW_PENDING)
        return CW_PENDING;
    (*s->woke)++;
    return CW_READY;
}

static void sleeper_drop(void *state)
{
    struct sleeper *s = state;
    cw_sleep_drop(&s->s);
    if (s->dropped)
        (*s->dropped)++;
}

static void spawn_sleeper(ehost *h, uint64_t ns, int *woke, int *dropped, cw_join **j)
{
    struct sleeper s = {.woke = woke, .dropped = dropped};
    cw_sleep_init(&s.s, ns);
    ck_assert_int_eq(cw_spawn(q_of(h, 1), sleeper_poll, &s, sizeof s, sleeper_drop, j), 0);
}

/* Forever runnable: one poll advances the fake clock by step ns. */
struct spinner {
    fake_clock *clk;
    uint64_t step;
    uint64_t *polls;
};

static cw_poll spinner_poll(void *state, cw_cx *cx)
{
    struct spinner *s = state;
    if (s->clk)
        s->clk->now += s->step;
    (*s->polls)++;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* ============================================================================
 * The driver's own promises (poll() host)
 * ========================================================================= */

START_TEST(constructor_checks_its_arguments)
{
    cw_config *cfg = cfg_one();
    cw_executor *ex = (cw_executor *)1;
    ck_assert_int_eq(cw_executor_new_embed(NULL, NULL, cfg, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    cw_embed_hooks no_timer = {.watch_fd = ehost_hooks.watch_fd};
    ck_assert_int_eq(cw_executor_new_embed(&no_timer, NULL, cfg, &ex), -EINVAL);
    cw_embed_hooks no_watch = {.set_timer = ehost_hooks.set_timer};
    ck_assert_int_eq(cw_executor_new_embed(&no_watch, NULL, cfg, &ex), -EINVAL);
    ck_assert_int_eq(cw_executor_new_embed(&ehost_hooks, NULL, NULL, &ex), -EINVAL);
    ck_assert_int_eq(cw_executor_new_embed(&ehost_hooks, NULL, cfg, NULL), -EINVAL);
    cw_config *empty = cw_config_new();
    ck_assert_int_eq(cw_executor_new_embed(&ehost_hooks, NULL, empty, &ex), -EINVAL);
    cw_config_free(empty);
    cw_config_free(cfg);
    /* the embed calls on no executor, or on one of another loop */
    cw_embed_tick(NULL);
    cw_embed_fd_ready(NULL, 0, CW_FD_READ);
    ck_assert_int_eq(cw_embed_next_ns(NULL), -1);
    ck_assert_int_eq(cw_embed_next_ms(NULL), -1);
    ck_assert_ptr_null(cw_embed_arg(NULL));
    tenv env;
    tenv_init(&env, cfg_one(), 0);
    cw_embed_tick(env.ex);
    cw_embed_fd_ready(env.ex, 0, CW_FD_READ);
    ck_assert_int_eq(cw_embed_next_ns(env.ex), -1);
    ck_assert_ptr_null(cw_embed_arg(env.ex));
    tenv_free(&env);
}
END_TEST

START_TEST(a_new_executor_calls_no_hook_and_knows_its_loop)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    ck_assert_int_eq(h.nwatch, 0);
    ck_assert_int_eq(h.ntimer, 0);
    ck_assert_int_eq(cw_embed_next_ns(h.ex), -1);
    ck_assert_ptr_eq(cw_embed_arg(h.ex), &h);
    ck_assert_int_eq(cw_executor_loop(h.ex), CW_LOOP_EMBED);
    ck_assert_str_eq(cw_loop_name(cw_executor_loop(h.ex)), "embed");
    ck_assert_ptr_null(cw_executor_base(h.ex));
    host_done(&h);
}
END_TEST

START_TEST(set_timer_says_round_due_then_the_sleep_then_none)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    g_done = 0;
    ck_assert_int_eq(cw_spawn(q_of(&h, 1), done_poll, NULL, 0, NULL, NULL), 0);
    /* a round is due: 0, at once (cw_spawn ran outside any tick) */
    ck_assert_int_eq(h.ntimer, 1);
    ck_assert_int_eq(h.timer, 0);
    ck_assert_int_eq(cw_embed_next_ns(h.ex), 0);
    ck_assert_int_eq(cw_embed_next_ms(h.ex), 0);
    /* the remote-wake fd is watched while a task lives */
    ck_assert_int_eq(ehost_watching(&h, h.fds[0]), CW_FD_READ);
    ck_assert_int_eq(h.nfds, 1);
    ehost_turn(&h, 0);
    ck_assert_int_eq(g_done, 1);
    ck_assert_int_eq(h.timer, -1);
    ck_assert_int_eq(h.nfds, 0);
    ck_assert_int_eq(cw_embed_next_ns(h.ex), -1);

    int woke = 0;
    spawn_sleeper(&h, 50 * MS, &woke, NULL, NULL);
    ck_assert_int_eq(h.timer, 0);
    int before = h.ntimer;
    ehost_turn(&h, 0); /* the sleeper arms the timer: one call, the delay */
    ck_assert_int_eq(h.ntimer, before + 1);
    ck_assert_int_gt(h.timer, 0);
    ck_assert_int_le(h.timer, (int64_t)(50 * MS));
    int64_t left = cw_embed_next_ns(h.ex);
    ck_assert_int_gt(left, 0);
    ck_assert_int_le(left, (int64_t)(50 * MS));
    int ms = cw_embed_next_ms(h.ex);
    ck_assert_int_ge(ms, 1);
    ck_assert_int_le(ms, 50);
    /* an early tick changes nothing */
    cw_embed_tick(h.ex);
    ck_assert_int_eq(h.ntimer, before + 1);
    ck_assert_int_eq(woke, 0);
    ehost_run(&h);
    ck_assert_int_eq(woke, 1);
    ck_assert_int_eq(h.timer, -1);
    ck_assert_int_eq(h.nfds, 0);
    host_done(&h);
}
END_TEST

START_TEST(watch_fd_is_the_union_per_fd_and_only_its_changes)
{
    ehost h;
    cw_config *cfg = cfg_one();
    cw_config_set_driver_yield(cfg, 1000 * MS); /* both waits in one round */
    host_new(&h, EHOST_POLL, cfg);
    int sv[2];
    nonblocking_pair(sv);
    fill(sv[0]); /* sv[0]: neither readable nor writable */
    int rf = 0, wf = 0;
    short rs = 0, ws = 0;
    spawn_waiter(&h, sv[0], CW_FD_READ, &rf, &rs, NULL, NULL);
    spawn_waiter(&h, sv[0], CW_FD_WRITE, &wf, &ws, NULL, NULL);
    ehost_turn(&h, 0);
    settle(&h);
    short last = 0;
    ck_assert_int_eq(watch_calls(&h, sv[0], &last), 1);
    ck_assert_int_eq(last, CW_FD_READ | CW_FD_WRITE);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), CW_FD_READ | CW_FD_WRITE);
    ehost_turn(&h, 0); /* nothing ready: nothing changes */
    ck_assert_int_eq(watch_calls(&h, sv[0], NULL), 1);

    ck_assert_int_eq(write(sv[1], "r", 1), 1); /* readable, still not writable */
    ehost_turn(&h, 0);
    settle(&h);
    ck_assert_int_eq(rf, 1);
    ck_assert_int_eq(rs, CW_FD_READ);
    ck_assert_int_eq(wf, 0);
    ck_assert_int_eq(watch_calls(&h, sv[0], &last), 2);
    ck_assert_int_eq(last, CW_FD_WRITE);

    char buf[4096]; /* drain the peer: sv[0] writable */
    while (read(sv[1], buf, sizeof buf) > 0)
        ;
    ehost_turn(&h, 0);
    settle(&h);
    ck_assert_int_eq(wf, 1);
    ck_assert_int_eq(ws, CW_FD_WRITE);
    ck_assert_int_eq(watch_calls(&h, sv[0], &last), 3);
    ck_assert_int_eq(last, 0); /* removed */
    ck_assert_int_eq(ehost_watching(&h, sv[0]), 0);
    ck_assert_int_eq(h.nfds, 0); /* and the remote-wake fd too: no task */
    host_done(&h);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(a_tick_runs_at_most_one_round)
{
    ehost h;
    cw_config *cfg = cfg_one();
    cw_config_set_max_polls_per_yield(cfg, 4);
    host_new(&h, EHOST_POLL, cfg);
    uint64_t polls = 0;
    struct spinner s = {.polls = &polls};
    ck_assert_int_eq(cw_spawn(q_of(&h, 1), spinner_poll, &s, sizeof s, NULL, NULL), 0);
    for (int i = 0; i < 20; i++) {
        uint64_t r0 = stats_of(h.ex).rounds, p0 = polls;
        cw_embed_tick(h.ex);
        ck_assert_uint_eq(stats_of(h.ex).rounds, r0 + 1);
        ck_assert_uint_le(polls - p0, 4);
        ck_assert_uint_ge(polls - p0, 1);
        ck_assert_int_eq(cw_embed_next_ns(h.ex), 0); /* work left: due again */
        ck_assert_int_eq(h.timer, 0);
    }
    host_done(&h);
}
END_TEST

START_TEST(a_tick_with_nothing_due_runs_nothing)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    int woke = 0;
    spawn_sleeper(&h, 3600000 * MS, &woke, NULL, NULL);
    ehost_turn(&h, 0);
    uint64_t r0 = stats_of(h.ex).rounds;
    int nt = h.ntimer, nw = h.nwatch;
    for (int i = 0; i < 5; i++)
        cw_embed_tick(h.ex);
    ck_assert_uint_eq(stats_of(h.ex).rounds, r0);
    ck_assert_int_eq(h.ntimer, nt);
    ck_assert_int_eq(h.nwatch, nw);
    host_done(&h);
}
END_TEST

START_TEST(reports_for_fds_nobody_waits_on_are_ignored)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    int sv[2];
    nonblocking_pair(sv);
    cw_embed_fd_ready(h.ex, sv[0], CW_FD_READ); /* never watched */
    cw_embed_fd_ready(h.ex, -1, CW_FD_READ);
    cw_embed_fd_ready(h.ex, 100000, CW_FD_READ | CW_FD_WRITE);
    cw_embed_fd_ready(h.ex, sv[0], 0);
    ck_assert_int_eq(h.nwatch, 0);
    ck_assert_int_eq(h.ntimer, 0);

    /* a record freed while the host's readiness list still names its fd */
    int fired = 0, dropped = 0;
    short seen = 0;
    cw_join *j;
    spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &seen, &dropped, &j);
    ehost_turn(&h, 0);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), CW_FD_READ);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    cw_join_abort(j); /* the host polled and saw sv[0]: now it goes */
    ck_assert_int_eq(dropped, 1);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), 0); /* told at once */
    cw_embed_fd_ready(h.ex, sv[0], CW_FD_READ);    /* the stale report */
    cw_embed_tick(h.ex);
    ck_assert_int_eq(fired, 0);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    cw_join_free(j);
    /* a report for an interest nobody has: the reader stays armed */
    spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &seen, &dropped, NULL);
    cw_embed_tick(h.ex); /* polls it: the fd is readable, but it waits */
    cw_embed_fd_ready(h.ex, sv[0], CW_FD_WRITE);
    cw_embed_tick(h.ex);
    ck_assert_int_eq(fired, 0);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), CW_FD_READ);
    ehost_turn(&h, 0);
    ck_assert_int_eq(fired, 1);
    ck_assert_int_eq(seen, CW_FD_READ);
    host_done(&h);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(a_wait_on_a_bad_fd_fails_at_once)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]); /* a closed descriptor number */
    int fired = 0;
    short seen = CW_FD_READ;
    spawn_waiter(&h, fds[0], CW_FD_READ, &fired, &seen, NULL, NULL);
    ehost_turn(&h, 0);
    ck_assert_int_eq(fired, 1);
    ck_assert_int_eq(seen, 0);
    ck_assert_int_eq(ehost_watching(&h, fds[0]), 0);
    ck_assert_int_eq(watch_calls(&h, fds[0], NULL), 0);
    host_done(&h);
}
END_TEST

START_TEST(run_until_without_a_run_once_hook_is_enotsup)
{
    ehost h;
    ehost_init(&h, EHOST_POLL);
    cw_embed_hooks hooks = ehost_hooks;
    hooks.run_once = NULL;
    cw_config *cfg = cfg_one();
    ck_assert_int_eq(cw_executor_new_embed(&hooks, &h, cfg, &h.ex), 0);
    cw_config_free(cfg);
    cw_join *j;
    g_done = 0;
    ck_assert_int_eq(cw_spawn(q_of(&h, 1), done_poll, NULL, 0, NULL, &j), 0);
    ck_assert_int_eq(cw_executor_run_until(h.ex, j), -ENOTSUP);
    ck_assert_str_ne(cw_strerror(-ENOTSUP), "unknown error");
    ehost_run(&h); /* the host's own loop still runs it */
    ck_assert_int_eq(g_done, 1);
    ck_assert_int_eq(cw_executor_run_until(h.ex, j), 0); /* ended: no turn */
    cw_join_free(j);
    host_done(&h);
}
END_TEST

START_TEST(executor_free_tells_the_host_to_stop_everything)
{
    ehost h;
    host_new(&h, EHOST_POLL, cfg_one());
    int sv[2];
    nonblocking_pair(sv);
    int fired = 0, dropped = 0, woke = 0, sdropped = 0;
    short seen = 0;
    spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &seen, &dropped, NULL);
    spawn_sleeper(&h, 3600000 * MS, &woke, &sdropped, NULL);
    settle(&h);
    ck_assert_int_eq(h.nfds, 2); /* sv[0] and the remote-wake fd */
    ck_assert_int_gt(h.timer, 0);
    host_done(&h); /* asserts nothing watched, timer -1 */
    ck_assert_int_eq(dropped, 1);
    ck_assert_int_eq(sdropped, 1);
    ck_assert_int_eq(fired + woke, 0);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ============================================================================
 * The core scenarios, under a poll() host (_i == 0) and an epoll host (1)
 * ========================================================================= */

START_TEST(spawned_tasks_complete_and_the_loop_ends)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    g_done = 0;
    cw_join *j;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(cw_spawn(q_of(&h, 1), done_poll, NULL, 0, NULL, i ? NULL : &j), 0);
    ck_assert_int_gt(ehost_run(&h), 0);
    ck_assert_int_eq(g_done, 10);
    ck_assert_int_eq(cw_join_status(j), 0);
    cw_join_free(j);
    ck_assert_uint_eq(stats_of(h.ex).tasks_live, 0);
    host_done(&h);
}
END_TEST

START_TEST(two_weighted_queues_share_polls_by_weight)
{
    ehost h;
    ehost_init(&h, _i);
    fake_clock clk = {.now = 1000000000ull};
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 3), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 1), 0);
    cw_config_set_clock(cfg, fake_now, &clk);
    ck_assert_int_eq(ehost_executor(&h, cfg), 0);
    cw_config_free(cfg);
    uint64_t hi = 0, lo = 0;
    struct spinner a = {.clk = &clk, .step = 100 * US, .polls = &hi};
    struct spinner b = {.clk = &clk, .step = 100 * US, .polls = &lo};
    ck_assert_int_eq(cw_spawn(q_of(&h, 1), spinner_poll, &a, sizeof a, NULL, NULL), 0);
    ck_assert_int_eq(cw_spawn(q_of(&h, 2), spinner_poll, &b, sizeof b, NULL, NULL), 0);
    for (int i = 0; i < 2000; i++)
        ehost_turn(&h, 0);
    ck_assert_uint_gt(lo, 100);
    double ratio = (double)hi / (double)lo;
    ck_assert_msg(ratio > 2.7 && ratio < 3.3, "hi %llu lo %llu ratio %.2f",
                  (unsigned long long)hi, (unsigned long long)lo, ratio);
    host_done(&h);
}
END_TEST

START_TEST(sleeps_fire_and_the_loop_ends_after_them)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    int woke[3] = {0, 0, 0};
    uint64_t t0 = cw_executor_now(h.ex);
    spawn_sleeper(&h, 3 * MS, &woke[0], NULL, NULL);
    spawn_sleeper(&h, 1 * MS, &woke[1], NULL, NULL);
    spawn_sleeper(&h, 2 * MS, &woke[2], NULL, NULL);
    ehost_run(&h);
    ck_assert_uint_ge(cw_executor_now(h.ex) - t0, 3 * MS);
    ck_assert_int_eq(woke[0] + woke[1] + woke[2], 3);
    ck_assert_int_eq(h.nfds, 0);
    ck_assert_int_eq(h.timer, -1);
    ck_assert_int_eq(cw_embed_next_ns(h.ex), -1);
    host_done(&h);
}
END_TEST

START_TEST(fd_readiness_wakes_each_waiter_and_a_dropped_one_never)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    int sv[2];
    nonblocking_pair(sv);
    int fired = 0, dropped = 0, gone_fired = 0, gone_dropped = 0;
    short s1 = 0, s2 = 0, s3 = 0;
    cw_join *gone;
    spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &s1, &dropped, NULL);
    spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &s2, &dropped, NULL);
    spawn_waiter(&h, sv[0], CW_FD_READ, &gone_fired, &s3, &gone_dropped, &gone);
    settle(&h);
    ck_assert_int_eq(fired, 0);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), CW_FD_READ);
    ck_assert_int_eq(watch_calls(&h, sv[0], NULL), 1);
    cw_join_abort(gone); /* dropped before the fd is ready */
    ck_assert_int_eq(gone_dropped, 1);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ehost_turn(&h, 1000);
    settle(&h);
    ck_assert_int_eq(fired, 2); /* both */
    ck_assert_int_eq(s1, CW_FD_READ);
    ck_assert_int_eq(s2, CW_FD_READ);
    ehost_run(&h);
    ck_assert_int_eq(gone_fired, 0);
    ck_assert_int_eq(cw_join_status(gone), -ECANCELED);
    cw_join_free(gone);
    ck_assert_int_eq(h.nfds, 0);
    host_done(&h);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A task that waits for one value from another thread's remote channel. */
struct chan_task {
    cw_remote_chan_recv r; /* receives into *got */
    int *got;
};

static cw_poll chan_poll(void *state, cw_cx *cx)
{
    struct chan_task *c = state;
    if (cw_remote_chan_recv_poll(&c->r, cx) == CW_PENDING)
        return CW_PENDING;
    ck_assert_int_eq(cw_remote_chan_recv_result(&c->r), 0);
    ck_assert_int_eq(*c->got, 42);
    return CW_READY;
}

static void chan_drop(void *state)
{
    cw_remote_chan_recv_drop(&((struct chan_task *)state)->r);
}

struct remote_arg {
    cw_spawner *sp;
    cw_remote_chan *ch;
    int spawned_rc;
    int joined;
};

static void *remote_thread(void *arg)
{
    struct remote_arg *a = arg;
    usleep(20000); /* let the host block in its poll */
    cw_remote_join *j = NULL;
    a->spawned_rc = cw_spawn_remote(a->sp, done_poll, NULL, 0, NULL, &j);
    if (a->spawned_rc == 0) {
        a->joined = cw_remote_join_wait(j);
        cw_remote_join_free(j);
    }
    int v = 42;
    cw_remote_chan_send(a->ch, &v);
    return NULL;
}

START_TEST(remote_spawn_and_wake_from_another_thread_reach_a_blocked_host)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    g_done = 0;
    int got = 0;
    struct remote_arg a = {.spawned_rc = -1, .joined = -1};
    ck_assert_int_eq(cw_spawner_new(q_of(&h, 1), &a.sp), 0);
    ck_assert_int_eq(cw_remote_chan_new(4, sizeof(int), &a.ch), 0);
    struct chan_task c = {.got = &got};
    cw_remote_chan_recv_init(&c.r, a.ch, &got);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(q_of(&h, 1), chan_poll, &c, sizeof c, chan_drop, &j), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, remote_thread, &a), 0);
    /* the host blocks (no timer: -1) until the thread's writes wake it */
    int64_t start = test_now_ms();
    while (cw_join_status(j) == -EAGAIN && test_now_ms() - start < 10000)
        ehost_turn(&h, cw_embed_next_ms(h.ex));
    pthread_join(t, NULL);
    ck_assert_int_eq(cw_join_status(j), 0);
    ck_assert_int_eq(a.spawned_rc, 0);
    ck_assert_int_eq(a.joined, 0);
    ck_assert_int_eq(g_done, 1);
    ck_assert_int_eq(got, 42);
    ck_assert_uint_ge(stats_of(h.ex).wakes_remote, 1);
    cw_join_free(j);
    cw_spawner_free(a.sp); /* its anchor task ends: then the loop does */
    ehost_run(&h);
    ck_assert_int_eq(h.nfds, 0);
    host_done(&h);
    cw_remote_chan_free(a.ch);
}
END_TEST

START_TEST(run_until_turns_the_host_loop_through_its_hook)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    int woke = 0;
    cw_join *j;
    uint64_t t0 = cw_executor_now(h.ex);
    spawn_sleeper(&h, 2 * MS, &woke, NULL, &j);
    ck_assert_int_eq(cw_executor_run_until(h.ex, j), 0);
    ck_assert_int_eq(woke, 1);
    ck_assert_uint_ge(cw_executor_now(h.ex) - t0, 2 * MS);
    ck_assert_int_gt(h.turns, 0);
    cw_join_free(j);
    host_done(&h);
}
END_TEST

START_TEST(executor_free_drops_tasks_waiting_on_fds_and_sleeps)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    int sv[2];
    nonblocking_pair(sv);
    int fired = 0, dropped = 0, woke = 0, sdropped = 0;
    short seen = 0;
    for (int i = 0; i < 3; i++) {
        spawn_waiter(&h, sv[0], CW_FD_READ, &fired, &seen, &dropped, NULL);
        spawn_sleeper(&h, (uint64_t)(i + 1) * 3600000 * MS, &woke, &sdropped, NULL);
    }
    settle(&h);
    ck_assert_int_eq(ehost_watching(&h, sv[0]), CW_FD_READ);
    host_done(&h);
    ck_assert_int_eq(dropped, 3);
    ck_assert_int_eq(sdropped, 3);
    ck_assert_int_eq(fired + woke, 0);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(the_loop_kind_is_embed)
{
    ehost h;
    host_new(&h, _i, cfg_one());
    ck_assert_int_eq(cw_executor_loop(h.ex), CW_LOOP_EMBED);
    host_done(&h);
}
END_TEST

static Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("driver");
    tcase_add_test(tc, constructor_checks_its_arguments);
    tcase_add_test(tc, a_new_executor_calls_no_hook_and_knows_its_loop);
    tcase_add_test(tc, set_timer_says_round_due_then_the_sleep_then_none);
    tcase_add_test(tc, watch_fd_is_the_union_per_fd_and_only_its_changes);
    tcase_add_test(tc, a_tick_runs_at_most_one_round);
    tcase_add_test(tc, a_tick_with_nothing_due_runs_nothing);
    tcase_add_test(tc, reports_for_fds_nobody_waits_on_are_ignored);
    tcase_add_test(tc, a_wait_on_a_bad_fd_fails_at_once);
    tcase_add_test(tc, run_until_without_a_run_once_hook_is_enotsup);
    tcase_add_test(tc, executor_free_tells_the_host_to_stop_everything);
    suite_add_tcase(s, tc);
    TCase *core = tcase_create("core on poll and epoll hosts");
    tcase_set_timeout(core, 30);
    tcase_add_loop_test(core, spawned_tasks_complete_and_the_loop_ends, 0, 2);
    tcase_add_loop_test(core, two_weighted_queues_share_polls_by_weight, 0, 2);
    tcase_add_loop_test(core, sleeps_fire_and_the_loop_ends_after_them, 0, 2);
    tcase_add_loop_test(core, fd_readiness_wakes_each_waiter_and_a_dropped_one_never, 0, 2);
    tcase_add_loop_test(core, remote_spawn_and_wake_from_another_thread_reach_a_blocked_host,
                        0, 2);
    tcase_add_loop_test(core, run_until_turns_the_host_loop_through_its_hook, 0, 2);
    tcase_add_loop_test(core, executor_free_drops_tasks_waiting_on_fds_and_sleeps, 0, 2);
    tcase_add_loop_test(core, the_loop_kind_is_embed, 0, 2);
    suite_add_tcase(s, core);
    return s;
}

int main(void)
{
    return run_suite(embed_suite());
}
