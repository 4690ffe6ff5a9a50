/* tdrv.h - the loops the Check suites run on.
 *
 * Every suite that drives an executor builds it through tenv_init()
 * (testutil.h), which takes the loop from the environment:
 * CW_TEST_DRIVER=libevent (the default), embed, libuv or uring. make check
 * runs those suites once per built driver (test/run-driver.sh); each
 * driver gives one table here, in test/tdrv_<name>.c. */
#ifndef CW_TDRV_H
#define CW_TDRV_H

#include "clockworker.h"

typedef struct tenv tenv;

typedef struct tdriver {
    const char *name; /* as CW_TEST_DRIVER names it, and cw_loop_name() */
    /* Make the loop (env->loop; env->base on libevent) and env->ex on it
     * from cfg (not freed here). Returns 0 or cw_executor_new*()'s error. */
    int (*init)(tenv *env, cw_config *cfg);
    /* One non-blocking turn: run what is ready now (ready I/O, due timers,
     * a scheduled round), never block. */
    void (*turn)(tenv *env);
    /* One blocking turn, as event_base_loop(EVLOOP_ONCE): 0, 1 when the
     * loop had nothing to wait for, < 0 on error. */
    int (*run_once)(tenv *env);
    /* Run until nothing is left, as event_base_dispatch(): 1 when the
     * loop ran out of work, < 0 on error. */
    int (*dispatch)(tenv *env);
    /* After cw_executor_free(env->ex): free the loop. */
    void (*free)(tenv *env);
    /* Optional, once per process before any test: make what the loop
     * keeps for the whole process (libuv's signal pipe), so that tests
     * counting open fds see only what an executor opens. */
    void (*prepare)(void);
} tdriver;

extern const tdriver tdrv_libevent;
extern const tdriver tdrv_embed;
extern const tdriver tdrv_uv;
extern const tdriver tdrv_uring;

/* The driver CW_TEST_DRIVER names (libevent when unset). Exits the
 * program with 77 (automake's "skipped") when that driver is not built,
 * and with 99 (a hard error) when the name is unknown. */
const tdriver *tdrv_current(void);

/* The suites run on libevent: tests of libevent itself (its events next
 * to the executor's, its cached time) are added only then. */
int tdrv_is_libevent(void);

#endif
