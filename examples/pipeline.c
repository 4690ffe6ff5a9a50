/* pipeline.c - a producer thread feeds tasks; a background task aggregates.
 *
 *   producer thread --cw_remote_chan--> intake task (foreground queue)
 *     --cw_chan "work"--> 3 handler tasks (foreground)
 *     --cw_chan "results"--> aggregator task (background queue)
 *   producer thread --cw_oneshot--> aggregator: what was produced
 *
 * The producer thread sends N items, blocking while the remote channel is
 * full (cw_remote_chan_send_wait), then closes it and sends its own totals
 * through a oneshot. The intake task moves items from the remote channel
 * into the work channel and closes it at the end; the handlers take items
 * from it (each item goes to one of them), check them, and pass them on;
 * the last handler to finish closes the results channel. The aggregator,
 * on the weight-1 background queue, sums what arrives, then awaits the
 * producer's totals. Every channel is bounded, so a slow stage makes the
 * stages before it wait: nothing is dropped and nothing grows.
 *
 * Usage: pipeline [--items N]   (default 100000)
 * Prints the produced and aggregated totals; exits 0 if they match.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <clockworker.h>
#include <clockworker/sync.h>

enum { FG = 0, BG = 1 };
#define NHANDLERS 3

struct item {
    uint64_t id;
    uint64_t value;
};

struct totals {
    uint64_t items;
    uint64_t sum;
};

/* The value of item id: arbitrary, but reproducible on both sides. */
static uint64_t value_of(uint64_t id)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return x % 1000;
}

/* ---- the producer thread --------------------------------------------------- */

struct producer {
    cw_remote_chan *in;
    cw_oneshot *done; /* the sender's end is ours */
    uint64_t n;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct totals t = {0, 0};
    for (uint64_t id = 1; id <= p->n; id++) {
        struct item it = {id, value_of(id)};
        int err = cw_remote_chan_send_wait(p->in, &it); /* blocks while full */
        if (err < 0) {
            fprintf(stderr, "pipeline: send: %s\n", cw_strerror(err));
            break;
        }
        t.items++;
        t.sum += it.value;
    }
    cw_remote_chan_close(p->in); /* the intake drains it, then sees -EPIPE */
    cw_oneshot_send(p->done, &t);
    return NULL;
}

/* ---- foreground: intake ----------------------------------------------------- */

struct intake {
    cw_pt pt;
    cw_remote_chan *in;
    cw_chan *work;
    cw_remote_chan_recv rx;
    cw_chan_send tx;
    struct item it;
};

static cw_poll intake_poll(void *state, cw_cx *cx)
{
    struct intake *s = state;
    CW_BEGIN(&s->pt);
    for (;;) {
        cw_remote_chan_recv_init(&s->rx, s->in, &s->it);
        CW_AWAIT(&s->pt, cw_remote_chan_recv_poll(&s->rx, cx));
        if (cw_remote_chan_recv_result(&s->rx) < 0)
            break; /* closed by the producer and drained */
        cw_chan_send_init(&s->tx, s->work, &s->it);
        CW_AWAIT(&s->pt, cw_chan_send_poll(&s->tx, cx));
    }
    cw_chan_close(s->work); /* the handlers drain it, then see -EPIPE */
    CW_END(&s->pt);
}

static void intake_drop(void *state)
{
    struct intake *s = state;
    cw_remote_chan_recv_drop(&s->rx);
    cw_chan_send_drop(&s->tx);
}

/* ---- foreground: handlers --------------------------------------------------- */

struct handler {
    cw_pt pt;
    cw_chan *work, *results;
    int *running;       /* handlers still running; owned by main */
    uint64_t *handled;  /* this handler's count; owned by main */
    cw_chan_recv rx;
    cw_chan_send tx;
    struct item it;
};

static cw_poll handler_poll(void *state, cw_cx *cx)
{
    struct handler *h = state;
    CW_BEGIN(&h->pt);
    for (;;) {
        cw_chan_recv_init(&h->rx, h->work, &h->it);
        CW_AWAIT(&h->pt, cw_chan_recv_poll(&h->rx, cx));
        if (cw_chan_recv_result(&h->rx) < 0)
            break;
        if (h->it.value != value_of(h->it.id))
            cw_panic(cx, "item %" PRIu64 " corrupted", h->it.id);
        ++*h->handled;
        cw_chan_send_init(&h->tx, h->results, &h->it);
        CW_AWAIT(&h->pt, cw_chan_send_poll(&h->tx, cx));
    }
    if (--*h->running == 0)
        cw_chan_close(h->results);
    CW_END(&h->pt);
}

static void handler_drop(void *state)
{
    struct handler *h = state;
    cw_chan_recv_drop(&h->rx);
    cw_chan_send_drop(&h->tx);
}

/* ---- background: the aggregator -------------------------------------------- */

struct aggregator {
    cw_pt pt;
    cw_chan *results;
    cw_oneshot *done;   /* the receiver's end; owned by main */
    cw_chan_recv rx;
    cw_oneshot_recv os;
    struct item it;
    struct totals got;      /* output: what arrived */
    struct totals produced; /* output: what the producer says it sent */
    int produced_err;       /* output: the oneshot's result */
};

static cw_poll aggregator_poll(void *state, cw_cx *cx)
{
    struct aggregator *a = state;
    CW_BEGIN(&a->pt);
    for (;;) {
        cw_chan_recv_init(&a->rx, a->results, &a->it);
        CW_AWAIT(&a->pt, cw_chan_recv_poll(&a->rx, cx));
        if (cw_chan_recv_result(&a->rx) < 0)
            break;
        a->got.items++;
        a->got.sum += a->it.value;
    }
    cw_oneshot_recv_init(&a->os, a->done, &a->produced);
    CW_AWAIT(&a->pt, cw_oneshot_recv_poll(&a->os, cx));
    a->produced_err = cw_oneshot_recv_result(&a->os);
    CW_END(&a->pt);
}

static void aggregator_drop(void *state)
{
    struct aggregator *a = state;
    cw_chan_recv_drop(&a->rx);
    cw_oneshot_recv_drop(&a->os);
}

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE, err;
    uint64_t n = 100000;
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_remote_chan *in = NULL;
    cw_chan *work = NULL, *results = NULL;
    cw_oneshot *done = NULL;
    cw_join *jagg = NULL;
    pthread_t thread;
    bool started = false;
    int running = NHANDLERS;
    uint64_t handled[NHANDLERS] = {0};

    if (argc == 3 && strcmp(argv[1], "--items") == 0)
        n = strtoull(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: pipeline [--items N]\n");
        return 2;
    }

    base = event_base_new();
    cfg = cw_config_new();
    if (!base || !cfg) {
        fprintf(stderr, "pipeline: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, FG, 8)) < 0
        || (err = cw_config_add_queue(cfg, BG, 1)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0
        || (err = cw_remote_chan_new(64, sizeof(struct item), &in)) < 0
        || (err = cw_chan_new(16, sizeof(struct item), &work)) < 0
        || (err = cw_chan_new(16, sizeof(struct item), &results)) < 0
        || (err = cw_oneshot_new(sizeof(struct totals), &done)) < 0) {
        fprintf(stderr, "pipeline: %s\n", cw_strerror(err));
        goto out;
    }

    cw_queue *fg = cw_executor_queue(ex, FG), *bg = cw_executor_queue(ex, BG);
    struct intake in_st = {.in = in, .work = work};
    struct aggregator agg = {.results = results, .done = done};
    if ((err = cw_spawn(fg, intake_poll, &in_st, sizeof in_st, intake_drop, NULL)) < 0
        || (err = cw_spawn(bg, aggregator_poll, &agg, sizeof agg, aggregator_drop, &jagg)) < 0) {
        fprintf(stderr, "pipeline: spawn: %s\n", cw_strerror(err));
        goto out;
    }
    for (int i = 0; i < NHANDLERS; i++) {
        struct handler h = {.work = work, .results = results, .running = &running,
                            .handled = &handled[i]};
        if ((err = cw_spawn(fg, handler_poll, &h, sizeof h, handler_drop, NULL)) < 0) {
            fprintf(stderr, "pipeline: spawn: %s\n", cw_strerror(err));
            goto out;
        }
    }

    struct producer prod = {.in = in, .done = done, .n = n};
    if ((err = pthread_create(&thread, NULL, producer_main, &prod)) != 0) {
        fprintf(stderr, "pipeline: pthread_create: %s\n", strerror(err));
        goto out;
    }
    started = true;

    if ((err = cw_executor_run_until(ex, jagg)) != 0) {
        fprintf(stderr, "pipeline: aggregator: %s\n", cw_strerror(err));
        goto out;
    }
    const struct aggregator *res = cw_join_state(jagg);
    if (res->produced_err < 0) {
        fprintf(stderr, "pipeline: producer totals: %s\n", cw_strerror(res->produced_err));
        goto out;
    }
    printf("produced:   %" PRIu64 " items, sum %" PRIu64 "\n", res->produced.items,
           res->produced.sum);
    printf("handled:   ");
    for (int i = 0; i < NHANDLERS; i++)
        printf(" %" PRIu64, handled[i]);
    printf("\n");
    printf("aggregated: %" PRIu64 " items, sum %" PRIu64 "\n", res->got.items, res->got.sum);
    if (res->got.items == res->produced.items && res->got.sum == res->produced.sum
        && res->produced.items == n) {
        printf("totals match\n");
        rc = EXIT_SUCCESS;
    } else {
        printf("totals DIFFER\n");
    }

out:
    if (started) {
        if (rc != EXIT_SUCCESS)
            cw_remote_chan_close(in); /* unblock the producer */
        pthread_join(thread, NULL);
    } else if (done) {
        cw_oneshot_sender_free(done); /* the producer never ran */
    }
    cw_join_free(jagg);
    cw_executor_free(ex); /* cancels what is left, running the drops */
    cw_oneshot_receiver_free(done);
    cw_chan_free(work);
    cw_chan_free(results);
    cw_remote_chan_free(in);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
