/* weighted.c - two queues share one CPU by weight.
 *
 * Queue "high" has weight 8 and queue "low" weight 1. Each runs one
 * CPU-bound task that counts fixed-size units of busy work and offers to
 * yield (CW_YIELD_MAYBE) after each unit; the executor ends a queue's slice
 * there, so the queues take turns and each gets CPU in proportion to its
 * weight: on an idle machine, about 8 units of "high" for 1 of "low".
 *
 * A third task, on the high queue, sleeps for the duration (cw_sleep) and
 * then raises a stop flag; the counters see it and finish. It cannot be
 * starved: the sleep wakes it at its deadline, and its queue is the one
 * that gets most of the CPU.
 *
 * Usage: weighted [--duration-ms N] [--loop libevent|libuv|uring|embed]
 *   (default 1000 ms, on libevent; loop.h)
 * Last line: high=<units> low=<units> ratio=<high/low>
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clockworker.h>

#include "loop.h"

enum { HIGH = 1, LOW = 2 };

/* A counter: busy work in units until *stop is set. */
struct counter {
    cw_pt pt;
    const bool *stop; /* input: owned by main, set by the stopper */
    uint64_t units;   /* output: units of work done */
};

/* One unit of work: a few hundred ns of arithmetic the compiler must do. */
static void work_unit(void)
{
    volatile uint64_t x = 0;
    for (unsigned i = 0; i < 500; i++)
        x = x + i;
}

static cw_poll counter_poll(void *state, cw_cx *cx)
{
    struct counter *c = state;
    CW_BEGIN(&c->pt);
    while (!*c->stop) {
        work_unit();
        c->units++;
        CW_YIELD_MAYBE(&c->pt, cx); /* yields only if cw_should_yield() */
    }
    CW_END(&c->pt);
}

/* The stopper: sleep, then raise the flag. */
struct stopper {
    cw_pt pt;
    cw_sleep sleep;
    bool *stop;
};

static cw_poll stopper_poll(void *state, cw_cx *cx)
{
    struct stopper *s = state;
    CW_BEGIN(&s->pt);
    CW_AWAIT(&s->pt, cw_sleep_poll(&s->sleep, cx));
    *s->stop = true;
    CW_END(&s->pt);
}

static void stopper_drop(void *state)
{
    struct stopper *s = state;
    cw_sleep_drop(&s->sleep); /* leave the timer heap if cancelled */
}

/* 0, 1 for --help, -1 for a bad argument. */
static int parse_args(int argc, char **argv, unsigned long *duration_ms)
{
    *duration_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            return 1;
        } else if (strcmp(argv[i], "--duration-ms") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            *duration_ms = strtoul(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end || argv[i][0] == '-' || *duration_ms == 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_queue *qhigh, *qlow;
    cw_join *jstop = NULL, *jhigh = NULL, *jlow = NULL;
    struct stopper s = {.stop = NULL};
    struct counter c = {.stop = NULL}, *high, *low;
    struct cw_queue_stats qh, ql;
    unsigned long duration_ms;
    bool stop = false;
    int err;

    const char *loop = loop_option(&argc, argv); /* --loop NAME (loop.h) */
    if ((err = parse_args(argc, argv, &duration_ms)) != 0) {
        fprintf(err > 0 ? stdout : stderr,
                "usage: weighted [--duration-ms N] " LOOP_USAGE "\n"
                "  --duration-ms N  how long the counters run (default 1000)\n" LOOP_HELP);
        return err > 0 ? EXIT_SUCCESS : 2;
    }

    cfg = cw_config_new();
    if (!cfg) {
        fprintf(stderr, "weighted: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, HIGH, 8)) < 0
        || (err = cw_config_add_queue(cfg, LOW, 1)) < 0
        || (err = loop_executor_new(loop, cfg, &ex)) < 0) {
        fprintf(stderr, "weighted: %s\n", cw_strerror(err));
        goto out;
    }

    /* Initial states, copied by cw_spawn: every task gets its own. */
    s.stop = &stop;
    cw_sleep_init(&s.sleep, (uint64_t)duration_ms * 1000000);
    c.stop = &stop;
    qhigh = cw_executor_queue(ex, HIGH);
    qlow = cw_executor_queue(ex, LOW);
    if ((err = cw_spawn(qhigh, stopper_poll, &s, sizeof s, stopper_drop, &jstop)) < 0
        || (err = cw_spawn(qhigh, counter_poll, &c, sizeof c, NULL, &jhigh)) < 0
        || (err = cw_spawn(qlow, counter_poll, &c, sizeof c, NULL, &jlow)) < 0) {
        fprintf(stderr, "weighted: spawn: %s\n", cw_strerror(err));
        goto out;
    }

    /* Run until the stopper has fired, then until both counters end. */
    if ((err = cw_executor_run_until(ex, jstop)) < 0
        || (err = cw_executor_run_until(ex, jhigh)) < 0
        || (err = cw_executor_run_until(ex, jlow)) < 0) {
        fprintf(stderr, "weighted: %s\n", cw_strerror(err));
        goto out;
    }

    high = cw_join_state(jhigh);
    low = cw_join_state(jlow);
    if ((err = cw_queue_stats(qhigh, &qh)) < 0 || (err = cw_queue_stats(qlow, &ql)) < 0) {
        fprintf(stderr, "weighted: stats: %s\n", cw_strerror(err));
        goto out;
    }
    printf("cpu_ms: high=%.1f low=%.1f\n", qh.cpu_ns / 1e6, ql.cpu_ns / 1e6);
    if (low->units > 0)
        printf("high=%llu low=%llu ratio=%.2f\n", (unsigned long long)high->units,
               (unsigned long long)low->units, (double)high->units / (double)low->units);
    else
        printf("high=%llu low=0 ratio=inf\n", (unsigned long long)high->units);
    rc = EXIT_SUCCESS;

out:
    cw_join_free(jstop);
    cw_join_free(jhigh);
    cw_join_free(jlow);
    loop_executor_free(ex); /* the executor, then its loop */
    cw_config_free(cfg);
    return rc;
}
