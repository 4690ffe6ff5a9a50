/* check_debug.c - what the checked build (./configure --enable-debug:
 * CW_CHECKED) catches (issue 17, item 1), each in a fork()ed child whose
 * stderr the test reads:
 *
 * - a join handle or a waker whose reference was given back (freed
 *   twice, woken then freed, a borrowed cw_cx_waker() freed, used after
 *   its block went back to its slab), and a stale handle whose block was
 *   given to a new task: abort with one line naming the call and the
 *   handle (lib/core/tasks.h, "handles");
 * - a poll that returns CW_PENDING with no wake arranged: one line naming
 *   the poll function, and the executor goes on; no line when a wake is
 *   arranged, whichever way (lib/core/checked.c).
 *
 * In any other build the suite is skipped (exit 77: make check says
 * SKIP), since none of this is compiled in there. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clockworker/sync.h"
#include "testutil.h"
#include "internal.h"

#ifdef CW_CHECKED

enum { Q = 1, Q2 = 2 };

static cw_config *cfg_two(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q2, 3), 0);
    return cfg;
}

/* ---- children ------------------------------------------------------------ */

#define CHILD_CHECK(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "CHILD_CHECK failed, line %d: %s\n", __LINE__, #cond); \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

/* The handle a child names before the call that should abort: the line
 * must name the same one. */
#define CHILD_HANDLE(h) fprintf(stderr, "handle=%p\n", (const void *)(h))

static char g_err[16384];

/* Run fn in a fork()ed child whose stderr is a pipe; fail unless it
 * died of SIGABRT (want_abort) or exited 0. Returns what it wrote to
 * stderr (g_err). */
static const char *run_child(void (*fn)(void), bool want_abort)
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
    int status;
    pid_t w;
    collect_child(pid, fds[0], g_err, sizeof g_err, &status, &w);
    ck_assert_int_eq(w, pid);
    if (want_abort)
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                      "child not killed by SIGABRT (status 0x%x), stderr: %s", status, g_err);
    else
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child did not exit 0 (status 0x%x), stderr: %s", status, g_err);
    return g_err;
}

/* The child aborted with one line "clockworker: <call>(<the handle it
 * named>): <what>...", the last line it wrote. */
static void assert_abort_line(const char *err, const char *call, const char *what)
{
    const char *h = strstr(err, "handle=");
    ck_assert_msg(h != NULL, "the child named no handle: %s", err);
    char handle[64];
    ck_assert_int_eq(sscanf(h, "handle=%63s", handle), 1);
    char want[256];
    snprintf(want, sizeof want, "clockworker: %s(%s): %s", call, handle, what);
    const char *line = strstr(err, want);
    ck_assert_msg(line != NULL, "stderr \"%s\" lacks \"%s\"", err, want);
    const char *nl = strchr(line, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "not one last line: %s", err);
}

/* ---- tasks ----------------------------------------------------------------- */

/* A task that counts its polls and ends at ready_at (0: never); with
 * keep, its first poll stores a clone of its waker in *keep. */
typedef struct obs {
    int polls, drops, ready_at;
    cw_waker **keep;
    void (*hook)(struct obs *, cw_cx *);
} obs;

static cw_poll obs_poll(void *state, cw_cx *cx)
{
    obs *o = *(obs **)state;
    o->polls++;
    if (o->keep && !*o->keep)
        *o->keep = cw_waker_clone(cw_cx_waker(cx));
    if (o->hook)
        o->hook(o, cx);
    return o->ready_at && o->polls >= o->ready_at ? CW_READY : CW_PENDING;
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

static void child_env(tenv *env)
{
    tenv_init(env, cfg_two(), 1);
}

/* ---- join handles ----------------------------------------------------------- */

/* Freed twice while the task runs on (the refcount went below zero and
 * the block was reused under the executor). */
static void join_double_free_running_child(void)
{
    tenv env;
    child_env(&env);
    cw_waker *kept = NULL;
    obs o = {.keep = &kept};
    cw_join *j = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &j) == 0);
    turns(&env, 2);
    cw_join_free(j); /* detaches; the task lives */
    CHILD_HANDLE(j);
    cw_join_free(j); /* aborts */
}

START_TEST(join_freed_twice_while_running_aborts_naming_it)
{
    assert_abort_line(run_child(join_double_free_running_child, true), "cw_join_free",
                      "join handle already freed");
}
END_TEST

/* Freed twice after completion: the block is back in its slab. */
static void join_double_free_completed_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {.ready_at = 1};
    cw_join *j = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &j) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, j) == 0);
    cw_join_free(j);
    CHILD_CHECK(o.drops == 1);
    CHILD_HANDLE(j);
    cw_join_free(j);
}

START_TEST(join_freed_twice_after_completion_aborts_naming_it)
{
    assert_abort_line(run_child(join_double_free_completed_child, true), "cw_join_free",
                      "join handle already freed");
}
END_TEST

/* Used after its free (the status of a detached task). */
static void join_use_after_free_child(void)
{
    tenv env;
    child_env(&env);
    cw_waker *kept = NULL;
    obs o = {.keep = &kept};
    cw_join *j = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &j) == 0);
    turns(&env, 2);
    cw_join_free(j);
    CHILD_HANDLE(j);
    (void)cw_join_status(j);
}

START_TEST(join_used_after_free_aborts_naming_the_call)
{
    assert_abort_line(run_child(join_use_after_free_child, true), "cw_join_status",
                      "join handle already freed");
}
END_TEST

/* The gap the flags alone left open: the block went back to its slab
 * and a new task got it with a handle of its own; the old handle is
 * stale, and the new one works. */
static void join_stale_child(void)
{
    tenv env;
    child_env(&env);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    obs a = {.ready_at = 1}, b = {.ready_at = 2};
    cw_join *ja = NULL, *jb = NULL;
    CHILD_CHECK(spawn_obs(q, &a, &ja) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, ja) == 0);
    cw_join_free(ja);
    CHILD_CHECK(spawn_obs(q, &b, &jb) == 0);
    CHILD_CHECK(cw__task_of_join(jb) == cw__task_of_join(ja)); /* the same block */
    CHILD_CHECK(jb != ja);
    CHILD_CHECK(cw_join_status(jb) == -EAGAIN);
    CHILD_HANDLE(ja);
    (void)cw_join_status(ja);
}

START_TEST(join_handle_of_a_reused_block_aborts_as_stale)
{
    assert_abort_line(run_child(join_stale_child, true), "cw_join_status",
                      "stale join handle: its task's block now holds another task");
}
END_TEST

/* ---- wakers ------------------------------------------------------------------- */

/* A parked task whose only clone the child holds. */
typedef struct parked {
    tenv env;
    obs o;
    cw_waker *w;
    cw_join *j;
} parked;

static void park(parked *p)
{
    child_env(&p->env);
    p->w = NULL;
    p->o = (obs){.keep = &p->w};
    CHILD_CHECK(spawn_obs(cw_executor_queue(p->env.ex, Q), &p->o, &p->j) == 0);
    turns(&p->env, 2);
    CHILD_CHECK(p->o.polls == 1 && p->w != NULL);
}

static void waker_double_free_child(void)
{
    parked p;
    park(&p);
    cw_waker_free(p.w);
    CHILD_HANDLE(p.w);
    cw_waker_free(p.w);
}

START_TEST(waker_freed_twice_aborts_naming_it)
{
    assert_abort_line(run_child(waker_double_free_child, true), "cw_waker_free",
                      "waker already released");
}
END_TEST

static void waker_wake_then_free_child(void)
{
    parked p;
    park(&p);
    cw_waker_wake(p.w); /* wakes and releases */
    CHILD_HANDLE(p.w);
    cw_waker_free(p.w);
}

START_TEST(waker_woken_then_freed_aborts_naming_the_free)
{
    assert_abort_line(run_child(waker_wake_then_free_child, true), "cw_waker_free",
                      "waker already released (freed or woken more times than it was cloned");
}
END_TEST

static void waker_wake_twice_child(void)
{
    parked p;
    park(&p);
    cw_waker_wake(p.w);
    CHILD_HANDLE(p.w);
    cw_waker_wake(p.w);
}

START_TEST(waker_woken_twice_aborts_naming_the_second_wake)
{
    assert_abort_line(run_child(waker_wake_twice_child, true), "cw_waker_wake",
                      "waker already released");
}
END_TEST

/* Freeing the borrowed waker of cw_cx_waker(): a reference never taken. */
static void free_borrowed(obs *o, cw_cx *cx)
{
    (void)o;
    cw_waker *w = cw_cx_waker(cx);
    CHILD_HANDLE(w);
    cw_waker_free(w);
}

static void waker_borrowed_free_child(void)
{
    tenv env;
    child_env(&env);
    obs o = {.hook = free_borrowed};
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, NULL) == 0);
    turns(&env, 2);
}

START_TEST(borrowed_waker_freed_aborts_naming_it)
{
    assert_abort_line(run_child(waker_borrowed_free_child, true), "cw_waker_free",
                      "waker already released");
}
END_TEST

/* The clone is freed twice on another thread: the count is atomic. */
static void *free_twice_main(void *arg)
{
    cw_waker *w = arg;
    cw_waker_free(w);
    cw_waker_free(w);
    return NULL;
}

static void waker_double_free_remote_child(void)
{
    parked p;
    park(&p);
    CHILD_HANDLE(p.w);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, NULL, free_twice_main, p.w) == 0);
    pthread_join(th, NULL);
}

START_TEST(waker_freed_twice_on_another_thread_aborts_naming_it)
{
    assert_abort_line(run_child(waker_double_free_remote_child, true), "cw_waker_free",
                      "waker already released");
}
END_TEST

/* The task ended and its last reference went: the block is free. */
static void waker_after_block_free_child(void)
{
    tenv env;
    child_env(&env);
    cw_waker *w = NULL;
    obs o = {.keep = &w, .ready_at = 1};
    cw_join *j = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q), &o, &j) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, j) == 0);
    cw_join_free(j);
    cw_waker_wake_by_ref(w); /* the task ended: a no-op, still allowed */
    cw_waker_free(w);        /* the last reference: the block is free */
    CHILD_HANDLE(w);
    cw_waker_wake_by_ref(w);
}

START_TEST(waker_used_after_its_block_was_freed_aborts_naming_it)
{
    assert_abort_line(run_child(waker_after_block_free_child, true), "cw_waker_wake_by_ref",
                      "waker already released (used after its task's last reference was given "
                      "back)");
}
END_TEST

/* ... and then given to a new task: the old waker is stale, not a
 * waker of the new task. */
static void waker_stale_child(void)
{
    tenv env;
    child_env(&env);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    cw_waker *w = NULL, *w2 = NULL;
    obs a = {.keep = &w, .ready_at = 1}, b = {.keep = &w2};
    cw_join *ja = NULL, *jb = NULL;
    CHILD_CHECK(spawn_obs(q, &a, &ja) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, ja) == 0);
    cw_join_free(ja);
    cw_waker_free(w);
    CHILD_CHECK(spawn_obs(q, &b, &jb) == 0);
    turns(&env, 2);
    CHILD_CHECK(b.polls == 1 && w2 != NULL);
    CHILD_CHECK(cw__task_of_waker(w2) == cw__task_of_waker(w)); /* the same block */
    CHILD_CHECK(!cw_waker_will_wake(w, w2));
    CHILD_HANDLE(w);
    cw_waker_wake_by_ref(w); /* would wake b */
}

START_TEST(waker_of_a_reused_block_aborts_as_stale)
{
    assert_abort_line(run_child(waker_stale_child, true), "cw_waker_wake_by_ref",
                      "stale waker: its task's block now holds another task");
}
END_TEST

/* ---- correct use fires nothing ---------------------------------------------- */

static void *wake_main(void *arg)
{
    cw_waker_wake(arg);
    return NULL;
}

/* Clones woken and freed here and on another thread, abort then free,
 * a waker outliving its executor: no line, no abort. */
static void correct_use_child(void)
{
    tenv env;
    child_env(&env);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    cw_waker *w = NULL;
    obs a = {.keep = &w, .ready_at = 4}, b = {.ready_at = 1};
    cw_join *ja = NULL, *jb = NULL;
    CHILD_CHECK(spawn_obs(q, &a, &ja) == 0);
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q2), &b, &jb) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, jb) == 0);
    CHILD_CHECK(a.polls == 1 && w);
    cw_waker *c = cw_waker_clone(w);
    CHILD_CHECK(cw_waker_will_wake(c, w));
    cw_waker_wake(c);
    turns(&env, 2);
    CHILD_CHECK(a.polls == 2);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, NULL, wake_main, cw_waker_clone(w)) == 0);
    pthread_join(th, NULL);
    turns(&env, 2);
    CHILD_CHECK(a.polls == 3);
    cw_join_abort(jb); /* ended: nothing */
    cw_join_free(jb);
    cw_join_abort(ja);
    cw_join_abort(ja);
    CHILD_CHECK(cw_join_status(ja) == -ECANCELED && a.drops == 1);
    cw_join_free(ja);
    tenv_free(&env);
    cw_waker_wake_by_ref(w); /* its executor is gone: a no-op */
    cw_waker_free(w);
}

START_TEST(correct_use_fires_no_check)
{
    const char *err = run_child(correct_use_child, false);
    ck_assert_msg(strstr(err, "clockworker:") == NULL, "stderr: %s", err);
}
END_TEST

/* ---- a poll that returns CW_PENDING with no wake arranged ----------------- */

/* Global, and the suite is linked with -export-dynamic: dladdr() names it. */
cw_poll cwdbg_never_woken_poll(void *state, cw_cx *cx);

cw_poll cwdbg_never_woken_poll(void *state, cw_cx *cx)
{
    int *polls = *(int **)state;
    (void)cx;
    ++*polls;
    return CW_PENDING;
}

static void never_woken_child(void)
{
    tenv env;
    child_env(&env);
    int polls = 0, *p = &polls;
    cw_join *j = NULL;
    CHILD_CHECK(cw_spawn(cw_executor_queue(env.ex, Q), cwdbg_never_woken_poll, &p, sizeof p,
                         NULL, &j) == 0);
    CHILD_HANDLE(j);
    turns(&env, 4);
    /* reported, not aborted: it stays parked, the executor goes on */
    CHILD_CHECK(polls == 1 && cw_join_status(j) == -EAGAIN);
    obs b = {.ready_at = 1};
    cw_join *jb = NULL;
    CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q2), &b, &jb) == 0);
    CHILD_CHECK(cw_executor_run_until(env.ex, jb) == 0);
    cw_join_free(jb);
    cw_join_abort(j);
    CHILD_CHECK(cw_join_status(j) == -ECANCELED);
    cw_join_free(j);
    tenv_free(&env);
}

START_TEST(pending_with_no_wake_arranged_is_reported_by_name)
{
    const char *err = run_child(never_woken_child, false);
    char handle[64];
    const char *h = strstr(err, "handle=");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(sscanf(h, "handle=%63s", handle), 1);
    char want[512];
    snprintf(want, sizeof want,
             "clockworker: poll cwdbg_never_woken_poll (task %s, queue 1) returned CW_PENDING "
             "with no wake arranged (no waker clone held, not woken during the poll): it will "
             "not be polled again\n",
             handle);
    const char *line = strstr(err, want);
    ck_assert_msg(line != NULL, "stderr \"%s\" lacks \"%s\"", err, want);
    ck_assert_msg(strstr(line + strlen(want), "no wake arranged") == NULL, "reported twice: %s",
                  err);
}
END_TEST

/* Not in the dynamic symbol table: the address, and the object and the
 * offset in it (for addr2line). */
static cw_poll hidden_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_PENDING;
}

static void hidden_child(void)
{
    tenv env;
    child_env(&env);
    CHILD_CHECK(cw_spawn(cw_executor_queue(env.ex, Q2), hidden_poll, NULL, 0, NULL, NULL) == 0);
    turns(&env, 2);
    fprintf(stderr, "fn=%p\n", (void *)(uintptr_t)hidden_poll);
    tenv_free(&env);
}

START_TEST(pending_report_of_an_unnamed_poll_gives_its_address)
{
    const char *err = run_child(hidden_child, false);
    const char *f = strstr(err, "fn=");
    ck_assert_ptr_nonnull(f);
    char fn[64];
    ck_assert_int_eq(sscanf(f, "fn=%63s", fn), 1);
    char want[128];
    snprintf(want, sizeof want, "clockworker: poll %s (", fn);
    ck_assert_msg(strstr(err, want) != NULL, "stderr \"%s\" lacks \"%s\"", err, want);
    ck_assert_msg(strstr(err, "check_debug+0x") != NULL, "no object+offset: %s", err);
    ck_assert_msg(strstr(err, ", queue 2) returned CW_PENDING with no wake arranged") != NULL,
                  "stderr: %s", err);
}
END_TEST

/* Each way a wake can be arranged, in a task that ends at its second
 * poll: no line. */
enum mode {
    M_CLONE,       /* keeps a clone of its waker (the user's own) */
    M_SELF_WAKE,   /* cw_waker_wake_by_ref() of its own waker */
    M_SLEEP,       /* cw_sleep */
    M_FDWAIT,      /* cw_fdwait */
    M_JOIN,        /* cw_join_poll() on a running task */
    M_NOTIFY,      /* a sync waiter (cw_notify) */
    M_REMOTE_WAKE, /* a clone woken and released on another thread during
                      the poll: on the inbox, no clone left */
    M_COUNT
};

static const char *const mode_names[M_COUNT] = {"clone",  "self-wake", "sleep",      "fdwait",
                                                "join",   "notify",    "remote wake"};

typedef struct arranger {
    enum mode mode;
    int polls;
    cw_waker *w;
    cw_sleep sleep;
    cw_fdwait fdw;
    cw_join *other;
    cw_notify *n;
    cw_notify_wait nw;
} arranger;

static cw_poll arranger_poll(void *state, cw_cx *cx)
{
    arranger *a = *(arranger **)state;
    if (++a->polls == 2)
        return CW_READY;
    switch (a->mode) {
    case M_CLONE:
        a->w = cw_waker_clone(cw_cx_waker(cx));
        break;
    case M_SELF_WAKE:
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        break;
    case M_SLEEP:
        CHILD_CHECK(cw_sleep_poll(&a->sleep, cx) == CW_PENDING);
        break;
    case M_FDWAIT:
        CHILD_CHECK(cw_fdwait_poll(&a->fdw, cx) == CW_PENDING);
        break;
    case M_JOIN:
        CHILD_CHECK(cw_join_poll(a->other, cx) == CW_PENDING);
        break;
    case M_NOTIFY:
        CHILD_CHECK(cw_notify_wait_poll(&a->nw, cx) == CW_PENDING);
        break;
    case M_REMOTE_WAKE: {
        pthread_t th;
        CHILD_CHECK(pthread_create(&th, NULL, wake_main, cw_waker_clone(cw_cx_waker(cx))) == 0);
        pthread_join(th, NULL);
        break;
    }
    default:
        break;
    }
    return CW_PENDING;
}

static enum mode g_mode;

static void arranged_child(void)
{
    tenv env;
    child_env(&env);
    cw_queue *q = cw_executor_queue(env.ex, Q);
    arranger a = {.mode = g_mode}, *ap = &a;
    int fds[2] = {-1, -1};
    cw_waker *other_w = NULL;
    obs other = {.keep = &other_w};
    switch (g_mode) {
    case M_SLEEP:
        cw_sleep_init(&a.sleep, 1000);
        break;
    case M_FDWAIT:
        CHILD_CHECK(pipe(fds) == 0);
        cw_fdwait_init(&a.fdw, fds[0], CW_FD_READ);
        break;
    case M_JOIN:
        CHILD_CHECK(spawn_obs(cw_executor_queue(env.ex, Q2), &other, &a.other) == 0);
        break;
    case M_NOTIFY:
        CHILD_CHECK(cw_notify_new(&a.n) == 0);
        cw_notify_wait_init(&a.nw, a.n);
        break;
    default:
        break;
    }
    cw_join *j = NULL;
    CHILD_CHECK(cw_spawn(q, arranger_poll, &ap, sizeof ap, NULL, &j) == 0);
    turns(&env, 3);
    /* the arranged wake */
    switch (g_mode) {
    case M_CLONE:
        CHILD_CHECK(a.polls == 1);
        cw_waker_wake(a.w);
        break;
    case M_SLEEP:
        CHILD_CHECK(a.polls == 1);
        env.clk.now += 2000;
        break;
    case M_FDWAIT:
        CHILD_CHECK(a.polls == 1);
        CHILD_CHECK(write(fds[1], "x", 1) == 1);
        break;
    case M_JOIN:
        CHILD_CHECK(a.polls == 1);
        cw_join_abort(a.other); /* it ends: its awaiter is woken */
        break;
    case M_NOTIFY:
        CHILD_CHECK(a.polls == 1);
        cw_notify_one(a.n);
        break;
    default: /* woken during its poll */
        break;
    }
    CHILD_CHECK(cw_executor_run_until(env.ex, j) == 0);
    CHILD_CHECK(a.polls == 2);
    cw_join_free(j);
    switch (g_mode) {
    case M_SLEEP:
        cw_sleep_drop(&a.sleep);
        break;
    case M_FDWAIT:
        cw_fdwait_drop(&a.fdw);
        close(fds[0]);
        close(fds[1]);
        break;
    case M_JOIN:
        cw_join_free(a.other);
        cw_waker_free(other_w);
        break;
    case M_NOTIFY:
        cw_notify_wait_drop(&a.nw);
        cw_notify_free(a.n);
        break;
    default:
        break;
    }
    tenv_free(&env);
}

START_TEST(pending_with_a_wake_arranged_is_not_reported)
{
    g_mode = (enum mode)_i;
    const char *err = run_child(arranged_child, false);
    ck_assert_msg(strstr(err, "clockworker:") == NULL, "%s: stderr: %s", mode_names[_i], err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("debug");
    TCase *tj = tcase_create("join");
    tcase_add_test(tj, join_freed_twice_while_running_aborts_naming_it);
    tcase_add_test(tj, join_freed_twice_after_completion_aborts_naming_it);
    tcase_add_test(tj, join_used_after_free_aborts_naming_the_call);
    tcase_add_test(tj, join_handle_of_a_reused_block_aborts_as_stale);
    suite_add_tcase(s, tj);
    TCase *tw = tcase_create("waker");
    tcase_add_test(tw, waker_freed_twice_aborts_naming_it);
    tcase_add_test(tw, waker_woken_then_freed_aborts_naming_the_free);
    tcase_add_test(tw, waker_woken_twice_aborts_naming_the_second_wake);
    tcase_add_test(tw, borrowed_waker_freed_aborts_naming_it);
    tcase_add_test(tw, waker_freed_twice_on_another_thread_aborts_naming_it);
    tcase_add_test(tw, waker_used_after_its_block_was_freed_aborts_naming_it);
    tcase_add_test(tw, waker_of_a_reused_block_aborts_as_stale);
    tcase_add_test(tw, correct_use_fires_no_check);
    suite_add_tcase(s, tw);
    TCase *tp = tcase_create("pending");
    tcase_add_test(tp, pending_with_no_wake_arranged_is_reported_by_name);
    tcase_add_test(tp, pending_report_of_an_unnamed_poll_gives_its_address);
    tcase_add_loop_test(tp, pending_with_a_wake_arranged_is_not_reported, 0, M_COUNT);
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    return run_suite(suite());
}

#else /* not the checked build */

int main(void)
{
    printf("check_debug: skipped: the library was not configured with --enable-debug "
           "(CW_CHECKED), which these checks need\n");
    return 77; /* automake: SKIP */
}

#endif
