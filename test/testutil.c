#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t fake_now(void *arg)
{
    return ((fake_clock *)arg)->now;
}

void tenv_init(tenv *env, cw_config *cfg, int fake)
{
    env->clk.now = 1000000000ull;
    env->base = event_base_new();
    ck_assert_ptr_nonnull(env->base);
    if (fake)
        cw_config_set_clock(cfg, fake_now, &env->clk);
    int err = cw_executor_new(env->base, cfg, &env->ex);
    ck_assert_msg(err == 0, "cw_executor_new: %s", cw_strerror(err));
    cw_config_free(cfg);
}

void tenv_free(tenv *env)
{
    cw_executor_free(env->ex);
    event_base_free(env->base);
    env->ex = NULL;
    env->base = NULL;
}

void tenv_turn(tenv *env)
{
    ck_assert_int_ge(event_base_loop(env->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
