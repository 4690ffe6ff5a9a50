/* hello.c - the smallest clockworker program.
 *
 * One queue, one task. The task's output lives in its state struct: the
 * task sets `answer` and returns CW_READY; main runs the loop until the
 * task has ended and reads the finished state through the join handle.
 *
 * Usage: hello [--loop libevent|libuv|uring|embed]   (loop.h; default libevent)
 * Prints: 42
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clockworker.h>

#include "loop.h"

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

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_join *join = NULL;
    struct hello init = {.answer = 0};
    struct hello *done;
    int err;

    const char *loop = loop_option(&argc, argv); /* --loop NAME (loop.h) */
    if (argc > 1) {
        int help = strcmp(argv[1], "--help") == 0;
        fprintf(help ? stdout : stderr, "usage: hello " LOOP_USAGE "\n" LOOP_HELP);
        return help ? EXIT_SUCCESS : 2;
    }

    cfg = cw_config_new();
    if (!cfg) {
        fprintf(stderr, "hello: out of memory\n");
        goto out;
    }
    if ((err = cw_config_add_queue(cfg, MAIN_QUEUE, 1)) < 0
        || (err = loop_executor_new(loop, cfg, &ex)) < 0) {
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
    loop_executor_free(ex); /* the executor, then its loop */
    cw_config_free(cfg);
    return rc;
}
