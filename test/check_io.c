/* check_io.c - cw_fdwait: readiness wakes the task, one event per future
 * created lazily and reused, drop and abort remove it, the executor frees
 * what a drop function forgot. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

typedef struct waiter {
    cw_fdwait w;
    int waits;        /* completed waits */
    int target;       /* waits before READY */
    short revents;
    int polls;
    void *first_ev;
    bool same_ev;
    bool forget_drop; /* drop function "forgets" cw_fdwait_drop */
    int *drops;
} waiter;

static cw_poll waiter_poll(void *state, cw_cx *cx)
{
    waiter *s = state;
    s->polls++;
    while (s->waits < s->target) {
        if (cw_fdwait_poll(&s->w, cx) == CW_PENDING) {
            if (!s->first_ev)
                s->first_ev = s->w.cw__rec;
            s->same_ev = s->same_ev && s->w.cw__rec == s->first_ev;
            return CW_PENDING;
        }
        s->revents = cw_fdwait_revents(&s->w);
        s->waits++;
        if (!s->revents)
            return CW_READY; /* failed wait */
        char buf[64];
        if (s->revents & CW_FD_READ)
            (void)!read(s->w.cw__fd, buf, sizeof buf);
    }
    return CW_READY;
}

static void waiter_drop(void *state)
{
    waiter *s = state;
    if (!s->forget_drop)
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
    s.same_ev = true;
    s.drops = drops;
    return s;
}

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[1]), 0);
}

static cw_config *one_queue(void)
{
    cw_config *cfg = cw_config_new();
    cw_config_add_queue(cfg, 0, 1);
    return cfg;
}

START_TEST(readable_fd_wakes_the_waiting_task)
{
    tenv env;
    int sv[2];
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    waiter s = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, &j);
    turns(&env, 5);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN); /* nothing to read yet */
    ck_assert_ptr_nonnull(env.ex->fdwaits);       /* its event exists */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    waiter *out = cw_join_state(j);
    ck_assert_int_eq(out->revents, CW_FD_READ);
    ck_assert_int_eq(out->polls, 2); /* one to wait, one when woken */
    cw_join_free(j);                 /* drop: the event goes */
    ck_assert_ptr_null(env.ex->fdwaits);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

START_TEST(one_event_per_future_created_lazily_and_reused)
{
    tenv env;
    int sv[2];
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    waiter s = make_waiter(sv[0], CW_FD_READ, 5, NULL);
    ck_assert_ptr_null(s.w.cw__rec); /* none before the first poll */
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, &j);
    for (int i = 0; i < 5; i++) {
        turns(&env, 3);
        ck_assert_int_eq(write(sv[1], "y", 1), 1);
    }
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    waiter *out = cw_join_state(j);
    ck_assert_int_eq(out->waits, 5);
    ck_assert(out->same_ev);
    cw_join_free(j);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

START_TEST(two_tasks_waiting_on_one_fd_are_both_woken)
{
    tenv env;
    int sv[2];
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    /* CW_FD_WRITE on the other end too, and a read waiter that does not read */
    waiter a = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    waiter b = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    cw_join *ja, *jb;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &a, sizeof a, waiter_drop, &ja);
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &b, sizeof b, waiter_drop, &jb);
    turns(&env, 3);
    ck_assert_int_eq(write(sv[1], "zz", 2), 2);
    ck_assert_int_eq(cw_executor_run_until(env.ex, ja), 0);
    ck_assert_int_eq(cw_executor_run_until(env.ex, jb), 0);
    cw_join_free(ja);
    cw_join_free(jb);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

START_TEST(writable_fd_is_ready_after_one_wait)
{
    tenv env;
    int sv[2];
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    waiter s = make_waiter(sv[1], CW_FD_WRITE, 1, NULL);
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert_int_eq(((waiter *)cw_join_state(j))->revents, CW_FD_WRITE);
    cw_join_free(j);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

START_TEST(abort_while_waiting_removes_the_event_before_drop_returns)
{
    tenv env;
    int sv[2], drops = 0;
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    waiter s = make_waiter(sv[0], CW_FD_READ, 1, &drops);
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, &j);
    turns(&env, 3);
    ck_assert_ptr_nonnull(env.ex->fdwaits);
    cw_join_abort(j);
    ck_assert_int_eq(drops, 1);
    ck_assert_ptr_null(env.ex->fdwaits);
    cw_join_free(j);
    /* the fd becomes ready: nothing may fire into the freed state */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    turns(&env, 3);
    /* and the loop holds nothing of ours any more */
    ck_assert_int_eq(tenv_run_once(&env), 1);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

START_TEST(executor_free_removes_events_a_drop_forgot)
{
    tenv env;
    int sv[2], drops = 0;
    tenv_init(&env, one_queue(), 1);
    pair(sv);
    waiter s = make_waiter(sv[0], CW_FD_READ, 1, &drops);
    s.forget_drop = true;
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, &j);
    turns(&env, 3);
    cw_executor_free(env.ex);
    env.ex = NULL;
    ck_assert_int_eq(drops, 1);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    /* nothing of the executor is left in the loop, and the fd becoming
     * ready fires nothing into the freed future (a turn runs whatever is
     * due: libuv's close callbacks of the executor's handles) */
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    tenv_turn(&env);
    ck_assert_int_eq(tenv_run_once(&env), 1);
    cw_join_free(j);
    env.drv->free(&env);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static int g_polled_ready;
static cw_poll bad_poll(void *state, cw_cx *cx)
{
    cw_fdwait *w = state;
    g_polled_ready = cw_fdwait_poll(w, cx) == CW_READY && cw_fdwait_revents(w) == 0;
    cw_fdwait_drop(w);
    return CW_READY;
}

START_TEST(bad_fd_or_what_fails_with_ready_and_no_events)
{
    tenv env;
    tenv_init(&env, one_queue(), 1);
    cw_fdwait w;
    cw_fdwait_init(&w, -1, CW_FD_READ);
    cw_join *j;
    cw_spawn(cw_executor_queue(env.ex, 0), bad_poll, &w, sizeof w, NULL, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert(g_polled_ready);
    cw_join_free(j);
    cw_fdwait_init(&w, 1000, CW_FD_READ); /* not open: epoll refuses it */
    ck_assert_int_eq(fcntl(1000, F_GETFD), -1);
    g_polled_ready = 0;
    cw_spawn(cw_executor_queue(env.ex, 0), bad_poll, &w, sizeof w, NULL, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert(g_polled_ready);
    cw_join_free(j);
    cw_fdwait_init(&w, 0, 0); /* neither CW_FD_READ nor CW_FD_WRITE */
    g_polled_ready = 0;
    cw_spawn(cw_executor_queue(env.ex, 0), bad_poll, &w, sizeof w, NULL, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert(g_polled_ready);
    cw_join_free(j);
    memset(&w, 0, sizeof w); /* zeroed: a dropped future */
    g_polled_ready = 0;
    cw_spawn(cw_executor_queue(env.ex, 0), bad_poll, &w, sizeof w, NULL, &j);
    ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
    ck_assert(g_polled_ready);
    cw_join_free(j);
    ck_assert_ptr_null(env.ex->fdwaits);
    tenv_free(&env);
}
END_TEST

START_TEST(null_arguments_are_harmless)
{
    cw_fdwait w;
    ck_assert_int_eq(cw_fdwait_poll(NULL, NULL), CW_READY);
    cw_fdwait_init(NULL, 0, CW_FD_READ);
    cw_fdwait_drop(NULL);
    ck_assert_int_eq(cw_fdwait_revents(NULL), 0);
    cw_fdwait_init(&w, 0, CW_FD_READ);
    ck_assert_int_eq(cw_fdwait_poll(&w, NULL), CW_READY); /* no task: fails */
    ck_assert_int_eq(cw_fdwait_revents(&w), 0);
    cw_fdwait_drop(&w);
    cw_fdwait_drop(&w); /* twice */
}
END_TEST

START_TEST(dispatch_returns_once_the_reader_is_done)
{
    tenv env;
    int sv[2];
    tenv_init(&env, one_queue(), 0);
    pair(sv);
    ck_assert_int_eq(write(sv[1], "abc", 3), 3);
    waiter s = make_waiter(sv[0], CW_FD_READ, 1, NULL);
    cw_spawn(cw_executor_queue(env.ex, 0), waiter_poll, &s, sizeof s, waiter_drop, NULL);
    ck_assert_int_eq(tenv_dispatch(&env), 1);
    struct cw_executor_stats st;
    cw_executor_stats(env.ex, &st);
    ck_assert_uint_eq(st.tasks_completed, 1);
    close(sv[0]);
    close(sv[1]);
    tenv_free(&env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, readable_fd_wakes_the_waiting_task);
    tcase_add_test(tc, one_event_per_future_created_lazily_and_reused);
    tcase_add_test(tc, two_tasks_waiting_on_one_fd_are_both_woken);
    tcase_add_test(tc, writable_fd_is_ready_after_one_wait);
    tcase_add_test(tc, abort_while_waiting_removes_the_event_before_drop_returns);
    tcase_add_test(tc, executor_free_removes_events_a_drop_forgot);
    tcase_add_test(tc, bad_fd_or_what_fails_with_ready_and_no_events);
    tcase_add_test(tc, null_arguments_are_harmless);
    tcase_add_test(tc, dispatch_returns_once_the_reader_is_done);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
