/* cancel.c - abort a task that is waiting.
 *
 * A ticker task sleeps 100 ms at a time, forever, counting its ticks. Main
 * lets the loop run for 500 ms (by running it until a second task that just
 * sleeps 500 ms has ended), then aborts the ticker with cw_join_abort(): the
 * ticker is never polled again, its drop function runs (and takes its
 * pending sleep out of the executor's timer heap), and its join status
 * becomes -ECANCELED.
 *
 * A cancelled task's state is released, so the tick count lives in main
 * and the ticker holds a pointer to it.
 *
 * Prints a line per tick, then: status: task cancelled / ticks: <n>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <clockworker.h>

enum { MAIN_QUEUE = 0 };

#define MS 1000000ull /* ns */

/* Ticks every 100 ms until cancelled. */
struct ticker {
    cw_pt pt;
    cw_sleep nap;
    int *ticks; /* owned by main: outlives the task */
};

static cw_poll ticker_poll(void *state, cw_cx *cx)
{
    struct ticker *t = state;
    CW_BEGIN(&t->pt);
    for (;;) {
        cw_sleep_init(&t->nap, 100 * MS);
        CW_AWAIT(&t->pt, cw_sleep_poll(&t->nap, cx));
        ++*t->ticks;
        printf("tick %d\n", *t->ticks);
    }
    CW_END(&t->pt);
}

static void ticker_drop(void *state)
{
    struct ticker *t = state;
    cw_sleep_drop(&t->nap); /* required: the task may be cancelled asleep */
}

/* Sleeps once, then ends: main runs the loop until it has. */
struct timer {
    cw_sleep sleep;
};

static cw_poll timer_poll(void *state, cw_cx *cx)
{
    struct timer *tm = state;
    return cw_sleep_poll(&tm->sleep, cx);
}

static void timer_drop(void *state)
{
    struct timer *tm = state;
    cw_sleep_drop(&tm->sleep);
}

int main(void)
{
    int rc = EXIT_FAILURE;
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_queue *q;
    cw_join *jticker = NULL, *jtimer = NULL;
    int ticks = 0;
    struct ticker t = {.ticks = &ticks};
    struct timer tm;
    int err, status;

    base = event_base_new();
    cfg = cw_config_new();
    if (!base || !cfg) {
        fprintf(stderr, "cancel: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, MAIN_QUEUE, 1)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0) {
        fprintf(stderr, "cancel: %s\n", cw_strerror(err));
        goto out;
    }

    q = cw_executor_queue(ex, MAIN_QUEUE);
    cw_sleep_init(&tm.sleep, 500 * MS);
    if ((err = cw_spawn(q, ticker_poll, &t, sizeof t, ticker_drop, &jticker)) < 0
        || (err = cw_spawn(q, timer_poll, &tm, sizeof tm, timer_drop, &jtimer)) < 0) {
        fprintf(stderr, "cancel: spawn: %s\n", cw_strerror(err));
        goto out;
    }

    /* Let the ticker run for 500 ms. */
    if ((err = cw_executor_run_until(ex, jtimer)) < 0) {
        fprintf(stderr, "cancel: timer: %s\n", cw_strerror(err));
        goto out;
    }

    /* Cancel it: its drop function runs now. */
    cw_join_abort(jticker);
    status = cw_join_status(jticker);
    printf("status: %s\n", cw_strerror(status));
    printf("ticks: %d\n", ticks);
    if (status != -ECANCELED) {
        fprintf(stderr, "cancel: expected %s\n", cw_strerror(-ECANCELED));
        goto out;
    }
    rc = EXIT_SUCCESS;

out:
    cw_join_free(jticker);
    cw_join_free(jtimer);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
