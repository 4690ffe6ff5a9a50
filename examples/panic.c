/* panic.c - a task that panics, caught by the executor.
 *
 * With catch_panics on, cw_panic() ends the task (it unwinds to the poll
 * boundary: the rest of the poll function does not run), the task's drop
 * function runs, its join status is CW_EPANIC and the formatted message is
 * kept for cw_join_panic_message(); the executor and the other tasks go on.
 * With catch_panics off (the default) the message goes to stderr and the
 * process aborts, as an uncaught panic does in Rust.
 *
 * Prints: status: task panicked / message: something went wrong: 7
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <clockworker.h>

enum { MAIN_QUEUE = 0 };

struct faulty {
    int code;
};

static cw_poll faulty_poll(void *state, cw_cx *cx)
{
    struct faulty *f = state;
    cw_panic(cx, "something went wrong: %d", f->code); /* never returns */
}

int main(void)
{
    int rc = EXIT_FAILURE;
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_join *join = NULL;
    struct faulty init = {.code = 7};
    int err, status;

    base = event_base_new();
    cfg = cw_config_new();
    if (!base || !cfg) {
        fprintf(stderr, "panic: out of memory\n");
        goto out;
    }
    cw_config_set_catch_panics(cfg, true);
    if ((err = cw_config_add_queue(cfg, MAIN_QUEUE, 1)) < 0
        || (err = cw_executor_new(base, cfg, &ex)) < 0) {
        fprintf(stderr, "panic: %s\n", cw_strerror(err));
        goto out;
    }

    err = cw_spawn(cw_executor_queue(ex, MAIN_QUEUE), faulty_poll, &init, sizeof init, NULL,
                   &join);
    if (err < 0) {
        fprintf(stderr, "panic: spawn: %s\n", cw_strerror(err));
        goto out;
    }

    /* run_until returns the task's status: CW_EPANIC here. */
    status = cw_executor_run_until(ex, join);
    printf("status: %s\n", cw_strerror(status));
    if (status != CW_EPANIC) {
        fprintf(stderr, "panic: expected %s\n", cw_strerror(CW_EPANIC));
        goto out;
    }
    printf("message: %s\n", cw_join_panic_message(join));
    rc = EXIT_SUCCESS;

out:
    cw_join_free(join);
    cw_executor_free(ex);
    cw_config_free(cfg);
    if (base)
        event_base_free(base);
    return rc;
}
