/* stall.c - a poll that blocks the thread, caught by the stall detector;
 * then the task dump.
 *
 * Three tasks. "lookup" (queue 1) calls a blocking function from its poll,
 * a stand-in for a synchronous DNS lookup or a disk read: 100 ms during
 * which no other task and no libevent callback runs. "ticker" (queue 2)
 * wants to run every 10 ms and is held up. "forgetful" (queue 2) returns
 * CW_PENDING without arranging a wake: nothing will poll it again.
 *
 * The executor has a stall threshold of 20 ms and the watchdog on: while
 * lookup blocks, the watchdog prints where the thread is stuck, and when
 * the poll returns, the after-poll report follows. Then the program
 * prints the task dump (ticker sleeping, forgetful flagged NO-WAKE) and
 * the stall counter. Every report goes to stdout here
 * (cw_config_set_stall_log); the default is stderr.
 *
 * The build links it with -rdynamic, so that the reports name its
 * functions; without, they read stall+0x<offset> (addr2line -e stall
 * <offset> gives the line).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include <clockworker.h>

#define MS 1000000ull

/* The blocking call: 100 ms of nanosleep, resumed when a signal (the
 * watchdog's) interrupts it. (noinline: it stands for a function of
 * another library, and shows in the stack as such.) */
__attribute__((noinline)) void blocking_lookup(void);
__attribute__((noinline)) void blocking_lookup(void)
{
    struct timespec left = {0, 100 * (long)MS};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

cw_poll lookup_poll(void *state, cw_cx *cx);
cw_poll lookup_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    blocking_lookup(); /* the bug: blocks every task */
    return CW_READY;
}

/* Every 10 ms, forever. */
struct ticker {
    cw_pt pt;
    cw_sleep nap;
};

cw_poll ticker_poll(void *state, cw_cx *cx);
cw_poll ticker_poll(void *state, cw_cx *cx)
{
    struct ticker *t = state;
    CW_BEGIN(&t->pt);
    for (;;) {
        cw_sleep_init(&t->nap, 10 * MS);
        CW_AWAIT(&t->pt, cw_sleep_poll(&t->nap, cx));
    }
    CW_END(&t->pt);
}

static void ticker_drop(void *state)
{
    cw_sleep_drop(&((struct ticker *)state)->nap);
}

/* The other bug: pending, and nobody holds its waker. */
cw_poll forgetful_poll(void *state, cw_cx *cx);
cw_poll forgetful_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_PENDING;
}

int main(void)
{
    struct event_base *base = event_base_new();
    cw_config *cfg = cw_config_new();
    cw_executor *ex = NULL;
    cw_join *lookup = NULL;
    int err = -ENOMEM;
    if (!base || !cfg)
        goto out;
    if ((err = cw_config_add_queue(cfg, 1, 1)) < 0 || (err = cw_config_add_queue(cfg, 2, 1)) < 0 ||
        (err = cw_config_set_stall_threshold(cfg, 20 * MS)) < 0 ||
        (err = cw_config_set_stall_watchdog(cfg, true)) < 0 ||
        (err = cw_config_set_stall_log(cfg, stdout)) < 0)
        goto out;
    cw_config_set_task_accounting(cfg, true);
    if ((err = cw_executor_new(base, cfg, &ex)) < 0)
        goto out;

    struct ticker t = {0};
    cw_pt_init(&t.pt);
    if ((err = cw_spawn(cw_executor_queue(ex, 2), ticker_poll, &t, sizeof t, ticker_drop,
                        NULL)) < 0 ||
        (err = cw_spawn(cw_executor_queue(ex, 2), forgetful_poll, NULL, 0, NULL, NULL)) < 0)
        goto out;
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* their first polls */
    if ((err = cw_spawn(cw_executor_queue(ex, 1), lookup_poll, NULL, 0, NULL, &lookup)) < 0)
        goto out;
    err = cw_executor_run_until(ex, lookup);
    if (err < 0)
        goto out;
    if ((err = cw_executor_dump_tasks(ex, stdout)) < 0)
        goto out;
    struct cw_executor_stats s;
    if ((err = cw_executor_stats(ex, &s)) < 0)
        goto out;
    printf("stalls: %llu\n", (unsigned long long)s.stalls);
out:
    if (err < 0)
        fprintf(stderr, "stall: %s\n", cw_strerror(err));
    cw_join_free(lookup);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return err < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
