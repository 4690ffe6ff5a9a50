/* check_misuse.c - misuse the library catches in every build (issue 17,
 * item 1): each executor-thread-only function called from another thread
 * answers -EPERM (int functions) or writes one line to stderr (void ones)
 * and changes nothing; cw_executor_free() from inside a poll, or from a
 * drop function during the free, is refused with one line and the
 * executor goes on working.
 *
 * A line on stderr is read in a fork()ed child whose stderr is a pipe
 * (run_child()): the child checks the effects itself (CHILD_CHECK, which
 * exits with 1 naming the condition) and exits 0 when all held.
 *
 * What only the checked build (./configure --enable-debug) catches is
 * check_debug.c's. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

enum { Q = 1, Q2 = 2 };

#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a)

static cw_config *cfg_two(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q2, 3), 0);
    return cfg;
}

/* A task that counts its polls and drops and ends at its first poll
 * unless park is set (then it keeps a clone of its waker, for wake()). */
typedef struct obs {
    int polls, drops;
    bool park;
    cw_waker *parked;
    void (*hook)(struct obs *, cw_cx *);
} obs;

static cw_poll obs_poll(void *state, cw_cx *cx)
{
    obs *o = *(obs **)state;
    o->polls++;
    if (o->hook)
        o->hook(o, cx);
    if (o->park) {
        if (!o->parked)
            o->parked = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

static void obs_drop(void *state)
{
    obs *o = *(obs **)state;
    o->drops++;
}

static int spawn_obs(cw_queue *q, obs *o, cw_join **j)
{
    obs *p = o;
    return cw_spawn(q, obs_poll, &p, sizeof p, obs_drop, j);
}

/* Run fn(arg) on a new thread and wait for it. */
static void on_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fn, arg), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/* The calls another thread makes: one per executor-thread-only function. */
typedef struct call {
    tenv *env;
    cw_queue *q;
    cw_join *j;        /* cw_spawn()'s out, or the handle to abort/free */
    cw_spawner *sp;
    struct cw_executor_stats es;
    struct cw_queue_stats qs;
    FILE *f;
    int r;
} call;

static void *call_spawn(void *arg)
{
    call *c = arg;
    obs o = {0};
    c->r = spawn_obs(c->q, &o, &c->j);
    return NULL;
}

static void *call_set_weight(void *arg)
{
    call *c = arg;
    c->r = cw_queue_set_weight(c->q, 7);
    return NULL;
}

static void *call_executor_stats(void *arg)
{
    call *c = arg;
    c->r = cw_executor_stats(c->env->ex, &c->es);
    return NULL;
}

static void *call_queue_stats(void *arg)
{
    call *c = arg;
    c->r = cw_queue_stats(c->q, &c->qs);
    return NULL;
}

static void *call_dump_stats(void *arg)
{
    call *c = arg;
    c->r = cw_executor_dump_stats(c->env->ex, c->f);
    return NULL;
}

static void *call_run_until(void *arg)
{
    call *c = arg;
    c->r = cw_executor_run_until(c->env->ex, c->j);
    return NULL;
}

static void *call_spawner_new(void *arg)
{
    call *c = arg;
    c->r = cw_spawner_new(c->q, &c->sp);
    return NULL;
}

static void *call_join_abort(void *arg)
{
    call *c = arg;
    cw_join_abort(c->j);
    return NULL;
}

static void *call_join_free(void *arg)
{
    call *c = arg;
    cw_join_free(c->j);
    return NULL;
}

static void *call_executor_free(void *arg)
{
    call *c = arg;
    cw_executor_free(c->env->ex);
    return NULL;
}

/* ---- int functions: -EPERM, nothing changed ------------------------------ */

START_TEST(spawn_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    call c = {.env = &env, .q = cw_executor_queue(env.ex, Q), .j = SENTINEL};
    on_thread(call_spawn, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_ptr_eq(c.j, SENTINEL); /* *join untouched */
    struct cw_executor_stats st = stats_of(env.ex);
    ck_assert_uint_eq(st.tasks_spawned, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_str_eq(cw_err_name(c.r), "EPERM");
    tenv_free(&env);
}
END_TEST

START_TEST(set_weight_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    call c = {.env = &env, .q = cw_executor_queue(env.ex, Q2)};
    on_thread(call_set_weight, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_uint_eq(cw_queue_weight(c.q), 3);
    tenv_free(&env);
}
END_TEST

START_TEST(executor_stats_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    call c = {.env = &env};
    memset(&c.es, 0xa5, sizeof c.es);
    struct cw_executor_stats before = c.es;
    on_thread(call_executor_stats, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_int_eq(memcmp(&c.es, &before, sizeof before), 0); /* *out untouched */
    tenv_free(&env);
}
END_TEST

START_TEST(queue_stats_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    call c = {.env = &env, .q = cw_executor_queue(env.ex, Q)};
    memset(&c.qs, 0xa5, sizeof c.qs);
    struct cw_queue_stats before = c.qs;
    on_thread(call_queue_stats, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_int_eq(memcmp(&c.qs, &before, sizeof before), 0);
    tenv_free(&env);
}
END_TEST

START_TEST(dump_stats_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    char *buf = NULL;
    size_t len = 0;
    call c = {.env = &env, .f = open_memstream(&buf, &len)};
    ck_assert_ptr_nonnull(c.f);
    on_thread(call_dump_stats, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_int_eq(fflush(c.f), 0);
    ck_assert_uint_eq(len, 0); /* nothing written */
    /* on the executor thread it writes */
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, c.f), 0);
    ck_assert_uint_gt(len, 0);
    fclose(c.f);
    free(buf);
    tenv_free(&env);
}
END_TEST

START_TEST(run_until_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    obs o = {0};
    call c = {.env = &env};
    ck_assert_int_eq(spawn_obs(cw_executor_queue(env.ex, Q), &o, &c.j), 0);
    on_thread(call_run_until, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_int_eq(o.polls, 0); /* the loop did not turn there */
    ck_assert_int_eq(cw_join_status(c.j), -EAGAIN);
    ck_assert_int_eq(cw_executor_run_until(env.ex, c.j), 0);
    ck_assert_int_eq(o.polls, 1);
    cw_join_free(c.j);
    tenv_free(&env);
}
END_TEST

START_TEST(spawner_new_from_another_thread_is_eperm)
{
    tenv env;
    tenv_init(&env, cfg_two(), 1);
    call c = {.env = &env, .q = cw_executor_queue(env.ex, Q), .sp = SENTINEL};
    on_thread(call_spawner_new, &c);
    ck_assert_int_eq(c.r, -EPERM);
    ck_assert_ptr_eq(c.sp, SENTINEL);
    ck_assert_uint_eq(stats_of(env.ex).tasks_spawned, 0);
    tenv_free(&env);
}
END_TEST

START_TEST(eperm_has_its_own_text)
{
    const char *t = cw_strerror(-EPERM);
    ck_assert_ptr_nonnull(strstr(t, "not the executor's thread"));
    ck_assert_str_ne(t, cw_strerror(-EINVAL));
    ck_assert_str_eq(cw_err_name(-EPERM), "EPERM");
}
END_TEST

/* ---- void functions: one line on stderr, nothing done (in a child) ------ */

#define CHILD_CHECK(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "CHILD_CHECK failed, line %d: %s\n", __LINE__, #cond); \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

/* Run fn in a fork()ed child whose stderr is a pipe; fail unless it
 * exited 0 (or, with want_abort, died of SIGABRT) having written needle
 * to stderr. */
static void run_child_ex(void (*fn)(void), const char *needle, bool want_abort)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(3);
        close(fds[1]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    char buf[8192];
    int status;
    pid_t w;
    collect_child(pid, fds[0], buf, sizeof buf, &status, &w);
    ck_assert_int_eq(w, pid);
    if (want_abort)
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                      "child not killed by SIGABRT (status 0x%x), stderr: %s", status, buf);
    else
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child did not exit 0 (status 0x%x), stderr: %s", status, buf);
    ck_assert_msg(strstr(buf, needle) != NULL, "stderr \"%s\" lacks \"%s\"", buf, needle);
}

static void run_child(void (*fn)(void), const char *needle)
{
    run_child_ex(fn, needle, false);
}

/* The child's own executor; pthread and check calls are fine in it. */
static void child_env(tenv *env)
{
    tenv_init(env, cfg_two(), 1);
}

static void join_abort_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {.park = true};
    call c = {.env = &env};
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &c.j) == 0);
    turns(&env, 2);
    CHILD_CHECK(o.polls == 1);
    on_thread(call_join_abort, &c);
    /* not aborted: it lives, no drop, and a wake still polls it */
    CHILD_CHECK(cw_join_status(c.j) == -EAGAIN);
    CHILD_CHECK(o.drops == 0);
    CHILD_CHECK(stats_of(env.ex).tasks_cancelled == 0);
    cw_waker_wake_by_ref(o.parked);
    turns(&env, 2);
    CHILD_CHECK(o.polls == 2);
    cw_join_abort(c.j); /* here, it works */
    CHILD_CHECK(cw_join_status(c.j) == -ECANCELED && o.drops == 1);
    cw_waker_free(o.parked);
    cw_join_free(c.j);
    tenv_free(&env);
}

START_TEST(join_abort_from_another_thread_is_refused_with_a_line)
{
    run_child(join_abort_child, "clockworker: cw_join_abort(): not on the executor's thread");
}
END_TEST

static void join_free_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {0};
    call c = {.env = &env};
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &c.j) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, c.j) == 0);
    on_thread(call_join_free, &c);
    /* not freed: the result is still there, not dropped */
    CHILD_CHECK(cw_join_status(c.j) == 0);
    CHILD_CHECK(cw_join_state(c.j) != NULL);
    CHILD_CHECK(o.drops == 0);
    /* its block is not reused by the next spawn */
    obs o2 = {0};
    cw_join *j2 = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o2, &j2) == 0);
    CHILD_CHECK(j2 != c.j);
    CHILD_CHECK(cw_executor_run_until(env.ex, j2) == 0);
    cw_join_free(j2);
    cw_join_free(c.j); /* here, it works */
    CHILD_CHECK(o.drops == 1);
    CHILD_CHECK(stats_of(env.ex).tasks_live == 0);
    tenv_free(&env);
}

START_TEST(join_free_from_another_thread_is_refused_with_a_line)
{
    run_child(join_free_child, "clockworker: cw_join_free(): not on the executor's thread");
}
END_TEST

static void executor_free_off_thread_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {.park = true};
    call c = {.env = &env};
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &c.j) == 0);
    turns(&env, 2);
    on_thread(call_executor_free, &c);
    /* not freed: the task was not cancelled, and the executor still runs */
    CHILD_CHECK(o.drops == 0);
    CHILD_CHECK(cw_join_status(c.j) == -EAGAIN);
    obs o2 = {0};
    cw_join *j2 = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q2), &o2, &j2) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, j2) == 0 && o2.polls == 1);
    cw_join_free(j2);
    cw_waker_free(o.parked);
    tenv_free(&env); /* here, it frees: the parked task is cancelled */
    CHILD_CHECK(o.drops == 1);
    CHILD_CHECK(cw_join_status(c.j) == -ECANCELED);
    cw_join_free(c.j);
}

START_TEST(executor_free_from_another_thread_is_refused_with_a_line)
{
    run_child(executor_free_off_thread_child,
              "clockworker: cw_executor_free(): not on the executor's thread");
}
END_TEST

/* ---- cw_executor_free() from inside a poll or a drop during the free ---- */

static void free_own_executor(obs *o, cw_cx *cx)
{
    (void)o;
    cw_executor_free(cw_cx_executor(cx));
}

static void executor_free_in_poll_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {.hook = free_own_executor};
    cw_join *j = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &j) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, j) == 0);
    CHILD_CHECK(o.polls == 1);
    cw_join_free(j);
    CHILD_CHECK(o.drops == 1);
    /* the executor still works: spawn, run, count */
    obs o2 = {0};
    cw_join *j2 = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q2), &o2, &j2) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, j2) == 0 && o2.polls == 1);
    cw_join_free(j2);
    struct cw_executor_stats st = stats_of(env.ex);
    CHILD_CHECK(st.tasks_completed == 2 && st.tasks_live == 0);
    tenv_free(&env);
}

START_TEST(executor_free_from_inside_a_poll_is_refused_with_a_line)
{
    run_child(executor_free_in_poll_child,
              "clockworker: cw_executor_free(): called from inside a task's poll");
}
END_TEST

static cw_executor *g_freeing;

static void free_again_drop(void *state)
{
    int *drops = *(int **)state;
    ++*drops;
    cw_executor_free(g_freeing);
}

static cw_poll park_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_PENDING; /* never woken: ends at the executor's free */
}

static void executor_free_from_drop_during_free_child(void)
{
    tenv env;
    child_env(&env);
    int drops = 0;
    int *p = &drops;
    g_freeing = env.ex;
    CHILD_CHECK(cw_spawn(cw_executor_queue(env.ex, Q), park_poll, &p, sizeof p,
                         free_again_drop, NULL) == 0);
    turns(&env, 2);
    tenv_free(&env); /* the drop's nested free is refused; this one completes */
    CHILD_CHECK(drops == 1);
}

START_TEST(executor_free_from_a_drop_during_the_free_is_refused_with_a_line)
{
    run_child(executor_free_from_drop_during_free_child,
              "clockworker: cw_executor_free(): called while the executor is being freed");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("other_thread");
    tcase_add_test(tc, spawn_from_another_thread_is_eperm);
    tcase_add_test(tc, set_weight_from_another_thread_is_eperm);
    tcase_add_test(tc, executor_stats_from_another_thread_is_eperm);
    tcase_add_test(tc, queue_stats_from_another_thread_is_eperm);
    tcase_add_test(tc, dump_stats_from_another_thread_is_eperm);
    tcase_add_test(tc, run_until_from_another_thread_is_eperm);
    tcase_add_test(tc, spawner_new_from_another_thread_is_eperm);
    tcase_add_test(tc, eperm_has_its_own_text);
    tcase_add_test(tc, join_abort_from_another_thread_is_refused_with_a_line);
    tcase_add_test(tc, join_free_from_another_thread_is_refused_with_a_line);
    tcase_add_test(tc, executor_free_from_another_thread_is_refused_with_a_line);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("free_in_round");
    tcase_add_test(tf, executor_free_from_inside_a_poll_is_refused_with_a_line);
    tcase_add_test(tf, executor_free_from_a_drop_during_the_free_is_refused_with_a_line);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
