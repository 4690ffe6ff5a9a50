/* testutil.h - shared helpers of the Check suites. */
#ifndef CW_TESTUTIL_H
#define CW_TESTUTIL_H

#include <check.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "clockworker.h"
#include "tdrv.h"

/* A clock the test advances by hand (ns). */
typedef struct fake_clock {
    uint64_t now;
} fake_clock;

uint64_t fake_now(void *arg);

/* A loop and an executor on it, on the driver CW_TEST_DRIVER names
 * (tdrv.h). */
struct tenv {
    struct event_base *base; /* on libevent; NULL on the other loops */
    void *loop;              /* the driver's own loop object, if any */
    void *host;              /* the driver table's state, if any */
    const tdriver *drv;
    cw_executor *ex;
    fake_clock clk;
};

/* Build an executor from cfg (which is freed). With fake != 0 the executor
 * uses env->clk. Fails the test on error. */
void tenv_init(tenv *env, cw_config *cfg, int fake);
void tenv_free(tenv *env);

/* One non-blocking turn of the loop (EVLOOP_ONCE | EVLOOP_NONBLOCK on
 * libevent): runs a pending round if any, then returns. */
void tenv_turn(tenv *env);

/* One blocking turn (EVLOOP_ONCE): 0, or 1 when nothing was left to wait
 * for. */
int tenv_run_once(tenv *env);

/* Run the loop until nothing is left (event_base_dispatch()): 1 when it
 * ran out of work. */
int tenv_dispatch(tenv *env);

/* n turns of tenv_turn(). */
void turns(tenv *env, int n);

/* The executor's counters (fails the test if the call fails). */
struct cw_executor_stats stats_of(const cw_executor *ex);

/* Read a child's output from fd until EOF into buf (NUL-terminated; what
 * does not fit is read and discarded, so the child never blocks on a full
 * pipe), close fd, then wait for the child. Returns the bytes the child
 * wrote (more than cap - 1 means buf holds only the start);
 * *status gets the wait status, *waited what waitpid() returned (pid, or
 * -1). Asserts nothing, so table-driven suites can use it too. */
size_t collect_child(pid_t pid, int fd, char *buf, size_t cap, int *status, pid_t *waited);

/* Run the built program $top_builddir/<relpath> (top_builddir defaults
 * to ".") with args (NULL-terminated, argv[0] excluded; at most 30), stdin
 * from /dev/null, and collect what it writes to fd `which` (1: stdout,
 * stderr left to the test log; 2: stderr, stdout to /dev/null) into out
 * (cap bytes, NUL-terminated); *len (if not NULL) gets the bytes. Fails
 * the test when the program is missing, on a system error, on more output
 * than fits, or when a signal killed it. Returns its exit status. */
int run_built(const char *relpath, const char *const *args, int which, char *out,
              size_t cap, size_t *len);

/* Monotonic milliseconds (for the hang guards of tests that wait). */
int64_t test_now_ms(void);

/* A long-running child (a server the test talks to): its stdout through
 * a pipe, its stderr into an unlinked temporary file, killed with the
 * test process (PR_SET_PDEATHSIG) or by child_close(). */
typedef struct child_proc {
    pid_t pid;  /* -1: not running */
    int out;    /* read end of its stdout, -1: none */
    FILE *err;  /* its stderr */
    int port;   /* for the caller: the port its first line named */
} child_proc;
#define CHILD_PROC_INIT {.pid = -1, .out = -1, .err = NULL, .port = -1}

/* Start $top_builddir/<relpath> with args (NULL-terminated, argv[0]
 * excluded). Fails the test on error. */
void child_start(child_proc *c, const char *relpath, const char *const *args);

/* Read its first stdout line (NUL-terminated, ending in '\n') within ms
 * milliseconds; fails the test, showing its stderr, otherwise. */
void child_first_line(child_proc *c, char *line, size_t cap, int ms);

/* Everything it wrote on stderr so far (a static buffer). */
const char *child_stderr(child_proc *c);

/* Kill (SIGKILL) and reap it if it runs; close its pipe and file. */
void child_close(child_proc *c);

/* Run the Check suite, print its summary, return an exit status. */
int run_suite(Suite *s);

#endif
