/* tdrv_uring.c - the io_uring driver in the test harness (tdrv.h). The
 * executor owns its ring: no loop to make or free; a turn is
 * cw_uring_run(CW_URING_RUN_NOWAIT). init fails with the ring's error
 * (-ENOSYS, -EPERM) where io_uring is not available: skip then. */
#include "testutil.h"

#include "clockworker/uring.h"

static int uring_init(tenv *env, cw_config *cfg)
{
    env->base = NULL;
    return cw_executor_new_uring(cfg, 0, &env->ex);
}

/* After cw_executor_free() (env->ex NULL) the ring is closed: there is
 * nothing left to turn or to wait for. */
static void uring_turn(tenv *env)
{
    if (env->ex)
        ck_assert_int_ge(cw_uring_run(env->ex, CW_URING_RUN_NOWAIT), 0);
}

static int uring_run_once(tenv *env)
{
    return env->ex ? cw_uring_run(env->ex, CW_URING_RUN_ONCE) : 1;
}

static int uring_dispatch(tenv *env)
{
    return cw_uring_run(env->ex, CW_URING_RUN_DEFAULT);
}

static void uring_free(tenv *env)
{
    (void)env; /* cw_executor_free() closed the ring */
}

const tdriver tdrv_uring = {
    .name = "uring",
    .init = uring_init,
    .turn = uring_turn,
    .run_once = uring_run_once,
    .dispatch = uring_dispatch,
    .free = uring_free,
};
