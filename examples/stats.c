/* stats.c - what the executor's counters say after a busy second.
 *
 * Two queues: "fg" (id 1, weight 8) and "bg" (id 2, weight 1). Each runs a
 * CPU-bound cruncher that yields when cw_should_yield() says so. Four
 * request tasks on fg sleep 1 ms, then do a short burst of work, in a loop:
 * they stand for foreground requests arriving while the background is
 * busy. A stopper sleeps for the duration, then raises the stop flag; every
 * task sees it and ends. Then the program prints the executor's report
 * (cw_executor_dump_stats): the executor's counters, then one table per
 * queue. In it, look at:
 *   - queue 1 / queue 2 cpu: about 8:1 while both crunch;
 *   - queue 1 queue_delay: how long a woken request waited for its poll;
 *   - queue 1 service_delay: how long fg, woken, waited for its slice;
 *   - executor round: how long libevent waited for the executor.
 * The numbers depend on the machine; the layout does not.
 *
 * Usage: stats [--duration-ms N]   (default 1000)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <clockworker.h>

enum { FG = 1, BG = 2 };
enum { NREQUESTS = 4 };

/* One unit of work: a few hundred ns of arithmetic the compiler must do. */
static void work_unit(void)
{
    volatile uint64_t x = 0;
    for (unsigned i = 0; i < 500; i++)
        x = x + i;
}

/* CPU-bound: units of work until *stop. */
struct cruncher {
    cw_pt pt;
    const bool *stop;
};

static cw_poll cruncher_poll(void *state, cw_cx *cx)
{
    struct cruncher *c = state;
    CW_BEGIN(&c->pt);
    while (!*c->stop) {
        work_unit();
        CW_YIELD_MAYBE(&c->pt, cx); /* yields only if cw_should_yield() */
    }
    CW_END(&c->pt);
}

/* A foreground "request" every millisecond: sleep, then 20 units of work. */
struct requester {
    cw_pt pt;
    cw_sleep nap;
    const bool *stop;
    int i; /* loop counter: kept in the state, locals do not survive */
};

static cw_poll requester_poll(void *state, cw_cx *cx)
{
    struct requester *r = state;
    CW_BEGIN(&r->pt);
    while (!*r->stop) {
        cw_sleep_init(&r->nap, 1000000);
        CW_AWAIT(&r->pt, cw_sleep_poll(&r->nap, cx));
        for (r->i = 0; r->i < 20; r->i++)
            work_unit();
    }
    CW_END(&r->pt);
}

static void requester_drop(void *state)
{
    struct requester *r = state;
    cw_sleep_drop(&r->nap);
}

/* Sleep for the duration, then raise the flag. */
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
    cw_sleep_drop(&s->sleep);
}

static int parse_args(int argc, char **argv, unsigned long *duration_ms)
{
    *duration_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--duration-ms") == 0 && i + 1 < argc) {
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
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_queue *fg, *bg;
    cw_join *joins[3 + NREQUESTS] = {NULL}; /* stopper, crunchers, requesters */
    struct stopper s = {.stop = NULL};
    struct cruncher c = {.stop = NULL};
    struct requester r = {.stop = NULL};
    size_t njoins = 0;
    unsigned long duration_ms;
    bool stop = false;
    int err;

    if (parse_args(argc, argv, &duration_ms) < 0) {
        fprintf(stderr, "usage: stats [--duration-ms N]\n");
        return 2;
    }
    base = event_base_new();
    cfg = cw_config_new();
    if (!base || !cfg) {
        fprintf(stderr, "stats: out of memory\n");
        goto out;
    }
    cw_config_set_histograms(cfg, true); /* off by default: they cost */
    if ((err = cw_config_add_queue(cfg, FG, 8)) < 0
        || (err = cw_config_add_queue(cfg, BG, 1)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0) {
        fprintf(stderr, "stats: %s\n", cw_strerror(err));
        goto out;
    }
    fg = cw_executor_queue(ex, FG);
    bg = cw_executor_queue(ex, BG);

    /* Initial states, copied by cw_spawn: every task gets its own. */
    s.stop = &stop;
    c.stop = &stop;
    r.stop = &stop;
    cw_sleep_init(&s.sleep, (uint64_t)duration_ms * 1000000);
    cw_sleep_init(&r.nap, 0);
    err = cw_spawn(fg, stopper_poll, &s, sizeof s, stopper_drop, &joins[njoins++]);
    if (err == 0)
        err = cw_spawn(fg, cruncher_poll, &c, sizeof c, NULL, &joins[njoins++]);
    if (err == 0)
        err = cw_spawn(bg, cruncher_poll, &c, sizeof c, NULL, &joins[njoins++]);
    for (int i = 0; err == 0 && i < NREQUESTS; i++)
        err = cw_spawn(fg, requester_poll, &r, sizeof r, requester_drop, &joins[njoins++]);
    if (err < 0) {
        fprintf(stderr, "stats: spawn: %s\n", cw_strerror(err));
        goto out;
    }

    /* Run until the stopper fires, then until every task has seen it. */
    for (size_t i = 0; i < njoins; i++) {
        if ((err = cw_executor_run_until(ex, joins[i])) < 0) {
            fprintf(stderr, "stats: run: %s\n", cw_strerror(err));
            goto out;
        }
    }

    if ((err = cw_executor_dump_stats(ex, stdout)) < 0) {
        fprintf(stderr, "stats: dump: %s\n", cw_strerror(err));
        goto out;
    }
    rc = EXIT_SUCCESS;
out:
    for (size_t i = 0; i < njoins; i++)
        cw_join_free(joins[i]);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
