#define _GNU_SOURCE /* pipe2() */
#include "config.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t fake_now(void *arg)
{
    return ((fake_clock *)arg)->now;
}

/* ---- the drivers (tdrv.h) ------------------------------------------------- */

static int lev_init(tenv *env, cw_config *cfg)
{
    env->base = event_base_new();
    ck_assert_ptr_nonnull(env->base);
    env->loop = env->base;
    int err = cw_executor_new(env->base, cfg, &env->ex);
    if (err < 0) {
        event_base_free(env->base);
        env->base = env->loop = NULL;
    }
    return err;
}

static void lev_turn(tenv *env)
{
    ck_assert_int_ge(event_base_loop(env->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
}

static int lev_run_once(tenv *env)
{
    return event_base_loop(env->base, EVLOOP_ONCE);
}

static int lev_dispatch(tenv *env)
{
    return event_base_dispatch(env->base);
}

static void lev_free(tenv *env)
{
    event_base_free(env->base);
}

const tdriver tdrv_libevent = {
    .name = "libevent",
    .init = lev_init,
    .turn = lev_turn,
    .run_once = lev_run_once,
    .dispatch = lev_dispatch,
    .free = lev_free,
};

static const tdriver *const drivers[] = {
    &tdrv_libevent,
#ifdef CW_TEST_EMBED
    &tdrv_embed,
#endif
#ifdef CW_TEST_LIBUV
    &tdrv_uv,
#endif
#ifdef CW_TEST_URING
    &tdrv_uring,
#endif
};

const tdriver *tdrv_current(void)
{
    static const tdriver *cur;
    if (cur)
        return cur;
    const char *name = getenv("CW_TEST_DRIVER");
    if (!name || !*name)
        name = "libevent";
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i]->name, name) == 0) {
            cur = drivers[i];
            if (cur->prepare)
                cur->prepare();
            return cur;
        }
    if (!strcmp(name, "embed") || !strcmp(name, "libuv") || !strcmp(name, "uring")) {
        printf("SKIP: the %s driver is not built\n", name);
        exit(77);
    }
    fprintf(stderr, "CW_TEST_DRIVER=%s: no such driver\n", name);
    exit(99);
}

int tdrv_is_libevent(void)
{
    return tdrv_current() == &tdrv_libevent;
}

void tenv_init(tenv *env, cw_config *cfg, int fake)
{
    *env = (tenv){0};
    env->clk.now = 1000000000ull;
    env->drv = tdrv_current();
    if (fake)
        cw_config_set_clock(cfg, fake_now, &env->clk);
    int err = env->drv->init(env, cfg);
    ck_assert_msg(err == 0, "cw_executor_new on %s: %s", env->drv->name, cw_strerror(err));
    ck_assert_str_eq(cw_loop_name(cw_executor_loop(env->ex)), env->drv->name);
    cw_config_free(cfg);
}

void tenv_free(tenv *env)
{
    cw_executor_free(env->ex);
    env->drv->free(env);
    env->ex = NULL;
    env->base = NULL;
    env->loop = NULL;
    env->host = NULL;
}

void tenv_turn(tenv *env)
{
    env->drv->turn(env);
}

int tenv_run_once(tenv *env)
{
    return env->drv->run_once(env);
}

int tenv_dispatch(tenv *env)
{
    return env->drv->dispatch(env);
}

void turns(tenv *env, int n)
{
    for (int i = 0; i < n; i++)
        tenv_turn(env);
}

struct cw_executor_stats stats_of(const cw_executor *ex)
{
    struct cw_executor_stats st;
    ck_assert_int_eq(cw_executor_stats(ex, &st), 0);
    return st;
}

size_t collect_child(pid_t pid, int fd, char *buf, size_t cap, int *status, pid_t *waited)
{
    size_t n = 0, total = 0;
    char spill[4096];
    for (;;) {
        ssize_t r = n < cap - 1 ? read(fd, buf + n, cap - 1 - n) : read(fd, spill, sizeof spill);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (n < cap - 1)
            n += (size_t)r;
        total += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    pid_t w;
    while ((w = waitpid(pid, status, 0)) < 0 && errno == EINTR)
        ;
    *waited = w;
    return total;
}

int run_suite(Suite *s)
{
    /* which loop the suite runs on, in its log next to Check's summary */
    printf("driver: %s\n", tdrv_current()->name);
    fflush(stdout);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int run_built(const char *relpath, const char *const *args, int which, char *out,
              size_t cap, size_t *len)
{
    const char *top = getenv("top_builddir");
    char path[4096];
    const char *argv[32];
    size_t argc = 0;
    int fds[2];

    if (!top || !*top)
        top = ".";
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/%s", top, relpath), (int)sizeof path);
    ck_assert_msg(access(path, X_OK) == 0, "%s: not built or not executable: %s", path,
                  strerror(errno));
    argv[argc++] = path;
    for (; args && *args; args++) {
        ck_assert_uint_lt(argc, sizeof argv / sizeof argv[0] - 1);
        argv[argc++] = *args;
    }
    argv[argc] = NULL;

    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0
            || (which == 2 && dup2(devnull, STDOUT_FILENO) < 0) || dup2(fds[1], which) < 0)
            _exit(126);
        close(devnull);
        close(fds[0]);
        close(fds[1]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    int status;
    pid_t w;
    size_t n = collect_child(pid, fds[0], out, cap, &status, &w);
    ck_assert_msg(n < cap - 1, "%s: too much output", relpath);
    ck_assert_int_eq(w, pid);
    ck_assert_msg(!WIFSIGNALED(status), "%s: killed by signal %d; output:\n%s", relpath,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0, out);
    if (len)
        *len = n;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void child_start(child_proc *c, const char *relpath, const char *const *args)
{
    const char *top = getenv("top_builddir");
    char path[4096];
    const char *argv[32];
    size_t argc = 0;

    if (!top || !*top)
        top = ".";
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/%s", top, relpath), (int)sizeof path);
    ck_assert_msg(access(path, X_OK) == 0, "%s: %s (make builds it)", path, strerror(errno));
    argv[argc++] = path;
    for (; args && *args; args++) {
        ck_assert_uint_lt(argc, sizeof argv / sizeof argv[0] - 1);
        argv[argc++] = *args;
    }
    argv[argc] = NULL;

    int pfd[2];
    ck_assert_msg(pipe2(pfd, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    c->out = pfd[0];
    c->err = tmpfile();
    ck_assert_msg(c->err != NULL, "tmpfile: %s", strerror(errno));
    ck_assert_msg(fcntl(fileno(c->err), F_SETFD, FD_CLOEXEC) == 0, "fcntl: %s", strerror(errno));
    /* The child writes at the end whatever child_stderr() reads meanwhile:
     * the two share the file's offset, and without O_APPEND a read in the
     * middle of the child's output made it overwrite itself. */
    ck_assert_msg(fcntl(fileno(c->err), F_SETFL, O_APPEND) == 0, "fcntl: %s", strerror(errno));
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* die with the test process, whatever ends it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        if (dup2(pfd[1], STDOUT_FILENO) < 0 || dup2(fileno(c->err), STDERR_FILENO) < 0)
            _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    c->pid = pid;
    close(pfd[1]);
}

void child_first_line(child_proc *c, char *line, size_t cap, int ms)
{
    size_t len = 0;
    int64_t deadline = test_now_ms() + ms;
    while (len == 0 || line[len - 1] != '\n') {
        ck_assert_msg(len < cap - 1, "first line too long: %.*s", (int)len, line);
        int64_t left = deadline - test_now_ms();
        ck_assert_msg(left > 0, "no first line within %d ms; stderr: %s", ms, child_stderr(c));
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        ck_assert_msg(r >= 0, "poll: %s", strerror(errno));
        if (r == 0)
            continue;
        ssize_t n = read(c->out, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "stdout closed before the first line (%s); stderr: %s",
                      n == 0 ? "EOF" : strerror(errno), child_stderr(c));
        len++;
    }
    line[len] = '\0';
}

const char *child_stderr(child_proc *c)
{
    static char text[65536];
    text[0] = '\0';
    if (!c->err)
        return text;
    fflush(c->err);
    if (fseek(c->err, 0, SEEK_SET) != 0)
        return "(cannot read the child's stderr)";
    size_t n = fread(text, 1, sizeof text - 1, c->err);
    text[n] = '\0';
    return text;
}

void child_close(child_proc *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        c->pid = -1;
    }
    if (c->out >= 0)
        close(c->out);
    c->out = -1;
    if (c->err)
        fclose(c->err);
    c->err = NULL;
}
