/* tdrv_uv.c - the core suites on a libuv loop (CW_TEST_DRIVER=libuv):
 * a loop of uv_loop_init() per test, turned with UV_RUN_NOWAIT. */
#include <errno.h>
#include <stdlib.h>

#include <uv.h>

#include "clockworker/uv.h"
#include "tdrv.h"
#include "testutil.h"

static int uv_env_init(tenv *env, cw_config *cfg)
{
    uv_loop_t *loop = malloc(sizeof *loop);
    if (!loop)
        return -ENOMEM;
    int err = uv_loop_init(loop);
    if (err < 0) {
        free(loop);
        return err;
    }
    err = cw_executor_new_uv(loop, cfg, &env->ex);
    if (err < 0) {
        uv_loop_close(loop);
        free(loop);
        return err;
    }
    env->loop = loop;
    env->base = NULL;
    return 0;
}

/* UV_RUN_NOWAIT: due timers, ready I/O (a poll with timeout 0), then the
 * check phase, where a scheduled round runs; never blocks. */
static void uv_env_turn(tenv *env)
{
    uv_run(env->loop, UV_RUN_NOWAIT);
}

/* UV_RUN_ONCE blocks for I/O when nothing is due; a loop with nothing
 * alive has nothing to wait for (event_base_loop's 1). */
static int uv_env_run_once(tenv *env)
{
    if (!uv_loop_alive(env->loop))
        return 1;
    uv_run(env->loop, UV_RUN_ONCE);
    return 0;
}

/* Returns when no handle is active: every task ended, no sleep left. */
static int uv_env_dispatch(tenv *env)
{
    return uv_run(env->loop, UV_RUN_DEFAULT) == 0 ? 1 : -1;
}

/* The executor's handles close in the loop (uv_close): one more turn runs
 * their close callbacks, then the loop closes with nothing left. */
static void uv_env_free(tenv *env)
{
    uv_loop_t *loop = env->loop;
    if (!loop)
        return;
    uv_run(loop, UV_RUN_NOWAIT);
    int err = uv_loop_close(loop);
    ck_assert_msg(err == 0, "uv_loop_close: %s", uv_strerror(err));
    free(loop);
    env->loop = NULL;
}

/* libuv opens a pipe for signals at its first uv_loop_init() and keeps
 * it for the process. */
static void uv_env_prepare(void)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) == 0)
        uv_loop_close(&loop);
}

const tdriver tdrv_uv = {
    .name = "libuv",
    .init = uv_env_init,
    .turn = uv_env_turn,
    .run_once = uv_env_run_once,
    .dispatch = uv_env_dispatch,
    .free = uv_env_free,
    .prepare = uv_env_prepare,
};
