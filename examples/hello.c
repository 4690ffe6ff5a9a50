/* hello.c - the smallest clockworker program.
 *
 * One queue, one task. The task's output lives in its state struct: the
 * task sets `answer` and returns CW_READY; main runs the loop until the
 * task has ended and reads the finished state through the join handle.
 *
 * Prints: 42
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <clockworker.h>

enum { MAIN_QUEUE = 0 };

struct hello {
    int answer; /* output */
};

static cw_poll hello_poll(void *state, cw_cx *cx)
{
    struct hello *h = state;
    (void)cx;
    h->answer = 42;
    return CW_READY;
}

int main(void)
{
    int rc = EXIT_FAILURE;
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_join *join = NULL;
    struct hello init = {.answer = 0};
    struct hello *done;
    int err;

    base = event_base_new();
    cfg = cw_config_new();
    if (!base || !cfg) {
        fprintf(stderr, "hello: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, MAIN_QUEUE, 1)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0) {
        fprintf(stderr, "hello: %s\n", cw_strerror(err));
        goto out;
    }

    err = cw_spawn(cw_executor_queue(ex, MAIN_QUEUE), hello_poll, &init, sizeof init, NULL,
                   &join);
    if (err < 0) {
        fprintf(stderr, "hello: spawn: %s\n", cw_strerror(err));
        goto out;
    }

    err = cw_executor_run_until(ex, join); /* the task's status */
    if (err < 0) {
        fprintf(stderr, "hello: task: %s\n", cw_strerror(err));
        goto out;
    }
    done = cw_join_state(join); /* the finished state, valid until cw_join_free */
    printf("%d\n", done->answer);
    rc = EXIT_SUCCESS;

out:
    cw_join_free(join);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
