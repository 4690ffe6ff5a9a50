#include "testutil.h"

#include <stdlib.h>

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

int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
