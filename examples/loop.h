/* loop.h - the event loop an example runs on, picked on its command line:
 *
 *     --loop libevent|libuv|uring|embed      (default: libevent)
 *
 * hello, weighted and echo_server create their executor with
 * loop_executor_new() where a libevent-only program calls
 * event_base_new() and cw_executor_new(base, ...), and free it with
 * loop_executor_free(). The tasks do not change: everything else is the
 * same on every loop. loop.c shows each loop's own calls (a libevent
 * event_base, a libuv uv_loop_t, the executor's own io_uring, a poll()
 * loop hosting the executor through clockworker/embed.h).
 *
 * Not part of the library: a helper of the examples.
 */
#ifndef CW_EXAMPLES_LOOP_H
#define CW_EXAMPLES_LOOP_H

#include <clockworker.h>

/* For usage lines: "usage: hello " LOOP_USAGE, and the option's help. */
#define LOOP_USAGE "[--loop libevent|libuv|uring|embed]"
#define LOOP_HELP "  --loop NAME  the event loop: libevent (default), libuv, uring or embed\n"

/* Take "--loop NAME" (or "--loop=NAME") out of argv, shrinking *argc, and
 * return NAME; "libevent" without the option. A name that is not a loop,
 * or a loop this build has no driver for (configure found no libuv or no
 * liburing), prints why on stderr and exits with status 2. */
const char *loop_option(int *argc, char **argv);

/* Create the loop and an executor on it from cfg (copied). Returns 0 or
 * a cw error (cw_strerror()); on error nothing is left allocated. */
int loop_executor_new(const char *name, const cw_config *cfg, cw_executor **out);

/* Run ex's loop until it has nothing left to do (every task ended, no
 * sleep pending: event_base_dispatch() on libevent) or loop_stop() is
 * called. Programs that wait for one task call cw_executor_run_until()
 * instead, which works on every loop. Returns 0 or a negative errno. */
int loop_run(cw_executor *ex);

/* From a task: make loop_run() return after the current turn. */
void loop_stop(cw_executor *ex);

/* cw_executor_free(ex), then free its loop. NULL is a no-op. */
void loop_executor_free(cw_executor *ex);

#endif
