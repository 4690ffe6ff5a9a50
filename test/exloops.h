/* exloops.h - the loops the examples can run on in this build
 * (examples/loop.h: --loop NAME), for check_examples and check_echo. */
#ifndef CW_TEST_EXLOOPS_H
#define CW_TEST_EXLOOPS_H

#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <linux/io_uring.h>
#include <sys/syscall.h>
#endif

/* libevent first: the default, whose output the others must match. */
static const char *const ex_loops[] = {
    "libevent",
    "embed",
#ifdef HAVE_LIBUV
    "libuv",
#endif
#ifdef HAVE_LIBURING
    "uring",
#endif
};
#define EX_NLOOPS ((int)(sizeof ex_loops / sizeof ex_loops[0]))

/* Whether loop can run here: io_uring may be refused by the kernel
 * (kernel.io_uring_disabled, seccomp, a container): the examples then
 * fail to create their executor, which is not what these suites test. */
static inline bool ex_loop_usable(const char *loop)
{
#ifdef HAVE_LIBURING
    if (strcmp(loop, "uring") == 0) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        long fd = syscall(__NR_io_uring_setup, 4, &p);
        if (fd < 0)
            return false;
        close((int)fd);
    }
#else
    (void)loop;
#endif
    return true;
}

#endif
