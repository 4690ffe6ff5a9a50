/* tdrv_uring.c - the io_uring driver in the test harness (tdrv.h). The
 * executor owns its ring: no loop to make or free; a turn is
 * cw_uring_run(CW_URING_RUN_NOWAIT). init fails with the ring's error
 * (-ENOSYS, -EPERM) where io_uring is not available: skip then. */
#include "testutil.h"
#include "tdrv.h"

#include "clockworker/uring.h"

static int uring_init(tenv *env, cw_config *cfg)
{
    env->base = NULL;
    return cw_executor_new_uring(cfg, 0, &env->ex);
}

static void uring_turn(tenv *env)
{
    ck_assert_int_ge(cw_uring_run(env->ex, CW_URING_RUN_NOWAIT), 0);
}

static void uring_free(tenv *env)
{
    (void)env; /* cw_executor_free() closed the ring */
}

const tdriver tdrv_uring = {
    .name = "uring",
    .init = uring_init,
    .turn = uring_turn,
    .free = uring_free,
};
