/* loop.c - the loops behind --loop (loop.h): how to create, run and free
 * an executor on each of them.
 *
 *   libevent  cw_executor_new() on an event_base; event_base_dispatch()
 *   libuv     cw_executor_new_uv() on a uv_loop_t; uv_run()
 *             (libclockworker-uv)
 *   uring     cw_executor_new_uring(): the executor owns an io_uring;
 *             cw_uring_run() (libclockworker-uring)
 *   embed     cw_executor_new_embed(): a poll() loop of our own hosts the
 *             executor (as examples/embed_poll.c, with a run_once hook
 *             so that cw_executor_run_until() works too)
 *
 * The libuv and io_uring drivers are built only when configure finds
 * their libraries (HAVE_LIBUV, HAVE_LIBURING in config.h).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <clockworker.h>
#ifdef HAVE_LIBUV
#include <uv.h>

#include <clockworker/uv.h>
#endif
#ifdef HAVE_LIBURING
#include <clockworker/uring.h>
#endif

#include "loop.h"

static const char *prog = "example"; /* argv[0]'s base name, for messages */
static bool stopping;                 /* loop_stop() called (uring, embed) */

const char *loop_option(int *argc, char **argv)
{
    const char *name = "libevent";
    int n = 1;
    if (*argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
    for (int i = 1; i < *argc; i++) {
        if (strncmp(argv[i], "--loop=", 7) == 0) {
            name = argv[i] + 7;
        } else if (strcmp(argv[i], "--loop") == 0) {
            if (i + 1 == *argc) {
                fprintf(stderr, "%s: --loop needs a name: libevent, libuv, uring or embed\n",
                        prog);
                exit(2);
            }
            name = argv[++i];
        } else {
            argv[n++] = argv[i]; /* not ours: keep it for the example */
        }
    }
    argv[n] = NULL;
    *argc = n;

    const char *missing = NULL; /* the library configure did not find */
    if (strcmp(name, "libuv") == 0) {
#ifndef HAVE_LIBUV
        missing = "libuv";
#endif
    } else if (strcmp(name, "uring") == 0) {
#ifndef HAVE_LIBURING
        missing = "liburing";
#endif
    } else if (strcmp(name, "libevent") != 0 && strcmp(name, "embed") != 0) {
        fprintf(stderr, "%s: --loop: unknown loop \"%s\" (libevent, libuv, uring or embed)\n",
                prog, name);
        exit(2);
    }
    if (missing) {
        fprintf(stderr, "%s: this build has no %s driver (configure found no %s)\n", prog,
                name, missing);
        exit(2);
    }
    return name;
}

/* ---- embed: a poll() loop hosts the executor ------------------------------ */

struct host {
    cw_executor *ex;
    struct pollfd *fds; /* what the executor asked to watch */
    struct pollfd *seen; /* a copy for reporting: watch_fd may edit fds */
    int nfds, cap;
};

static void watch_fd(void *arg, int fd, short what)
{
    struct host *h = arg;
    int i = 0;
    while (i < h->nfds && h->fds[i].fd != fd)
        i++;
    if (!what) { /* stop watching fd */
        if (i < h->nfds)
            h->fds[i] = h->fds[--h->nfds];
        return;
    }
    if (i == h->nfds) {
        if (h->nfds == h->cap) { /* the hook must not fail: grow or give up */
            int cap = h->cap ? 2 * h->cap : 16;
            struct pollfd *fds = realloc(h->fds, (size_t)cap * sizeof *fds);
            struct pollfd *seen = fds ? realloc(h->seen, (size_t)cap * sizeof *seen) : NULL;
            if (!seen) {
                fprintf(stderr, "%s: out of memory watching fd %d\n", prog, fd);
                abort();
            }
            h->fds = fds;
            h->seen = seen;
            h->cap = cap;
        }
        h->nfds++;
    }
    h->fds[i].fd = fd;
    h->fds[i].events = (short)(((what & CW_FD_READ) ? POLLIN : 0)
                               | ((what & CW_FD_WRITE) ? POLLOUT : 0));
}

/* This host reads cw_embed_next_ms() before each poll instead. */
static void set_timer(void *arg, int64_t delay_ns)
{
    (void)arg;
    (void)delay_ns;
}

/* One turn: poll, report what is ready, tick. > 0: nothing to wait for. */
static int host_turn(void *arg)
{
    struct host *h = arg;
    if (h->nfds == 0 && cw_embed_next_ns(h->ex) < 0)
        return 1;
    int n = poll(h->fds, (nfds_t)h->nfds, cw_embed_next_ms(h->ex));
    if (n < 0 && errno != EINTR)
        return -errno;
    int m = h->nfds;
    if (n > 0)
        memcpy(h->seen, h->fds, (size_t)m * sizeof *h->seen);
    for (int i = 0; n > 0 && i < m; i++) {
        short what = 0;
        if (h->seen[i].revents & (POLLIN | POLLHUP | POLLERR))
            what |= CW_FD_READ;
        if (h->seen[i].revents & (POLLOUT | POLLHUP | POLLERR))
            what |= CW_FD_WRITE;
        if (what)
            cw_embed_fd_ready(h->ex, h->seen[i].fd, what);
    }
    cw_embed_tick(h->ex);
    return 0;
}

static const cw_embed_hooks hooks = {
    .watch_fd = watch_fd,
    .set_timer = set_timer,
    .run_once = host_turn, /* for cw_executor_run_until() */
};

/* ---- each loop --------------------------------------------------------------- */

int loop_executor_new(const char *name, const cw_config *cfg, cw_executor **out)
{
    int err;
    *out = NULL;
    if (strcmp(name, "embed") == 0) {
        struct host *h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        if ((err = cw_executor_new_embed(&hooks, h, cfg, out)) < 0) {
            free(h);
            return err;
        }
        h->ex = *out;
        return 0;
    }
#ifdef HAVE_LIBUV
    if (strcmp(name, "libuv") == 0) {
        uv_loop_t *loop = malloc(sizeof *loop);
        if (!loop)
            return -ENOMEM;
        if ((err = uv_loop_init(loop)) < 0) {
            free(loop);
            return err; /* a negative errno on Unix */
        }
        if ((err = cw_executor_new_uv(loop, cfg, out)) < 0) {
            uv_loop_close(loop);
            free(loop);
        }
        return err;
    }
#endif
#ifdef HAVE_LIBURING
    if (strcmp(name, "uring") == 0)
        return cw_executor_new_uring(cfg, 0, out); /* 0: the default ring size */
#endif
    struct event_base *base = event_base_new(); /* libevent */
    if (!base)
        return -ENOMEM;
    if ((err = cw_executor_new(base, cfg, out)) < 0)
        event_base_free(base);
    return err;
}

int loop_run(cw_executor *ex)
{
    int err = 0;
    switch (cw_executor_loop(ex)) {
    case CW_LOOP_LIBEVENT:
        return event_base_dispatch(cw_executor_base(ex)) < 0 ? -EIO : 0;
#ifdef HAVE_LIBUV
    case CW_LOOP_LIBUV:
        uv_run(cw_executor_uv_loop(ex), UV_RUN_DEFAULT); /* uv_stop() ends it too */
        return 0;
#endif
#ifdef HAVE_LIBURING
    case CW_LOOP_URING:
        while (!stopping && (err = cw_uring_run(ex, CW_URING_RUN_ONCE)) == 0)
            ;
        return err < 0 ? err : 0;
#endif
    case CW_LOOP_EMBED:
        while (!stopping && (err = host_turn(cw_embed_arg(ex))) == 0)
            ;
        return err < 0 ? err : 0;
    default:
        return -EINVAL;
    }
}

void loop_stop(cw_executor *ex)
{
    stopping = true;
    if (cw_executor_loop(ex) == CW_LOOP_LIBEVENT)
        event_base_loopbreak(cw_executor_base(ex));
#ifdef HAVE_LIBUV
    if (cw_executor_loop(ex) == CW_LOOP_LIBUV)
        uv_stop(cw_executor_uv_loop(ex));
#endif
}

void loop_executor_free(cw_executor *ex)
{
    if (!ex)
        return;
    switch (cw_executor_loop(ex)) {
    case CW_LOOP_LIBEVENT: {
        struct event_base *base = cw_executor_base(ex);
        cw_executor_free(ex);
        event_base_free(base);
        break;
    }
#ifdef HAVE_LIBUV
    case CW_LOOP_LIBUV: {
        uv_loop_t *loop = cw_executor_uv_loop(ex);
        cw_executor_free(ex);
        uv_run(loop, UV_RUN_DEFAULT); /* the executor's handles finish closing */
        if (uv_loop_close(loop) == 0)
            free(loop);
        else /* a handle still open: leave the loop to it */
            fprintf(stderr, "%s: uv_loop_close: a handle is still open\n", prog);
        break;
    }
#endif
    case CW_LOOP_EMBED: {
        struct host *h = cw_embed_arg(ex);
        cw_executor_free(ex); /* stops watching every fd (watch_fd(fd, 0)) */
        free(h->fds);
        free(h->seen);
        free(h);
        break;
    }
    default: /* uring: the executor closes its ring */
        cw_executor_free(ex);
        break;
    }
}
