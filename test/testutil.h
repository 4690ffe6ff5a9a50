/* testutil.h - shared helpers of the Check suites. */
#ifndef CW_TESTUTIL_H
#define CW_TESTUTIL_H

#include <check.h>
#include <event2/event.h>
#include <stdint.h>

#include "clockworker.h"

/* A clock the test advances by hand (ns). */
typedef struct fake_clock {
    uint64_t now;
} fake_clock;

uint64_t fake_now(void *arg);

/* A base and an executor on it. */
typedef struct tenv {
    struct event_base *base;
    cw_executor *ex;
    fake_clock clk;
} tenv;

/* Build an executor from cfg (which is freed). With fake != 0 the executor
 * uses env->clk. Fails the test on error. */
void tenv_init(tenv *env, cw_config *cfg, int fake);
void tenv_free(tenv *env);

/* One non-blocking turn of the loop (EVLOOP_ONCE | EVLOOP_NONBLOCK):
 * runs a pending round if any, then returns. */
void tenv_turn(tenv *env);

/* n turns of tenv_turn(). */
void turns(tenv *env, int n);

/* The executor's counters (fails the test if the call fails). */
struct cw_executor_stats stats_of(const cw_executor *ex);

/* Run the Check suite, print its summary, return an exit status. */
int run_suite(Suite *s);

#endif
