/* echo_server.c - a TCP echo server whose connections stay responsive while
 * background tasks burn all the CPU they can get, on one thread.
 *
 * What it shows:
 * - Tasks written as protothreads (clockworker/pt.h): the acceptor and each
 *   connection read top to bottom, "try the syscall; on EAGAIN await
 *   readiness (cw_fdwait); try again", with everything that must survive
 *   an await kept in the task's state struct.
 * - Two weighted queues: the acceptor and the connections run on a
 *   foreground queue of weight 100, `--bg N` CPU burners on a background
 *   queue of weight 1. The burners never sleep: they loop and yield only
 *   when the scheduler says so (CW_YIELD_MAYBE). EEVDF gives the
 *   foreground what it asks for as soon as a socket becomes ready, and the
 *   burners the rest of the CPU.
 * - Partial writes: a connection echoes every byte it read before it reads
 *   again, awaiting EV_WRITE when the peer does not keep up.
 * - Clean shutdown: SIGINT or SIGTERM arrive on a signalfd that one more
 *   task awaits like a socket; it stops the loop. cw_executor_free()
 *   cancels every task, whose drop functions drop their cw_fdwaits and
 *   close their sockets; the process exits 0.
 * - The same program on every event loop (--loop, loop.h): the tasks and
 *   their fd waits do not change.
 *
 * Usage: echo_server [--port N] [--bg N] [--sndbuf N] [--loop NAME]
 *   --port N    TCP port on 127.0.0.1 (default 0: any free port)
 *   --bg N      background CPU burners (default 2)
 *   --sndbuf N  SO_SNDBUF of each connection (default 0: the kernel's,
 *               which grows to megabytes); a small one makes a slow
 *               reader fill it, so partial writes and EV_WRITE waits
 *               show up in the write_waits counter
 *   --loop NAME libevent (default), libuv, uring or embed
 * It prints one line on stdout, `listening on 127.0.0.1:<port>`, once it
 * accepts connections; try it with `nc 127.0.0.1 <port>`. At exit it
 * prints counters on stderr.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <clockworker.h>

#include "loop.h"

enum { Q_FOREGROUND = 1, Q_BACKGROUND = 2 };
#define FG_WEIGHT 100
#define BG_WEIGHT 1

#define ECHO_BUF 16384              /* bytes a connection reads at a time */
#define ACCEPT_BACKOFF_NS 100000000 /* 100 ms when out of descriptors */
#define BURN_CHUNK 2000             /* iterations between two yield checks */

/* What every task shares: lives in main's frame, outlives the executor. */
typedef struct server {
    cw_executor *ex;
    cw_queue *fg;
    int sndbuf;                     /* SO_SNDBUF of connections; 0: default */
    int status;                     /* the process's exit status */
    unsigned long accepted;         /* connections accepted */
    unsigned long open;             /* connection tasks not yet dropped */
    unsigned long long bytes;       /* bytes echoed */
    unsigned long long write_waits; /* times a connection awaited EV_WRITE */
    unsigned long long bg_chunks;   /* chunks of busy work done */
    uint64_t bg_sink;               /* keeps the busy work observable */
} server;

/* ---- a connection ----------------------------------------------------------- */

typedef struct conn {
    cw_pt pt;
    server *srv;
    int fd;             /* -1 once closed */
    cw_fdwait rd;       /* EV_READ on fd */
    cw_fdwait wr;       /* EV_WRITE on fd */
    size_t len;         /* bytes in buf */
    size_t off;         /* of which already written back */
    char buf[ECHO_BUF];
} conn;

static void conn_close(conn *c)
{
    /* Drop the futures before closing: their events must not outlive the
     * descriptor (the number may be reused by the next accept). */
    cw_fdwait_drop(&c->rd);
    cw_fdwait_drop(&c->wr);
    if (c->fd >= 0) {
        if (close(c->fd) != 0)
            perror("echo_server: close");
        c->fd = -1;
    }
}

static cw_poll conn_poll(void *state, cw_cx *cx)
{
    conn *c = state;
    ssize_t n; /* a local: set and used between two awaits */

    CW_BEGIN(&c->pt);
    for (;;) {
        n = recv(c->fd, c->buf, sizeof c->buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (errno != ECONNRESET)
                    perror("echo_server: recv");
                break;
            }
            CW_AWAIT(&c->pt, cw_fdwait_poll(&c->rd, cx));
            if (cw_fdwait_revents(&c->rd) == 0) {
                fprintf(stderr, "echo_server: cannot wait for fd %d\n", c->fd);
                break;
            }
            continue;
        }
        if (n == 0)
            break; /* EOF: the peer is done sending */

        c->len = (size_t)n;
        c->off = 0;
        while (c->off < c->len) {
            n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
            if (n >= 0) {
                c->off += (size_t)n;
                c->srv->bytes += (unsigned long long)n;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (errno != ECONNRESET && errno != EPIPE)
                    perror("echo_server: send");
                goto done;
            }
            c->srv->write_waits++;
            CW_AWAIT(&c->pt, cw_fdwait_poll(&c->wr, cx));
            if (cw_fdwait_revents(&c->wr) == 0) {
                fprintf(stderr, "echo_server: cannot wait for fd %d\n", c->fd);
                goto done;
            }
        }
        /* A client that never pauses must not keep the other connections
         * of the queue waiting: give way when the slice is spent. */
        CW_YIELD_MAYBE(&c->pt, cx);
    }
done:
    conn_close(c);
    CW_END(&c->pt);
}

/* Runs once per connection task: when it ends, or when it is cancelled
 * (cw_executor_free() at shutdown) in the middle of a wait. */
static void conn_drop(void *state)
{
    conn *c = state;
    conn_close(c);
    c->srv->open--;
}

static void start_connection(server *srv, int fd)
{
    if (srv->sndbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &srv->sndbuf, sizeof srv->sndbuf) != 0)
        perror("echo_server: setsockopt(SO_SNDBUF)"); /* serve it anyway */
    conn c = {.srv = srv, .fd = fd};
    cw_fdwait_init(&c.rd, fd, CW_FD_READ);
    cw_fdwait_init(&c.wr, fd, CW_FD_WRITE);
    int err = cw_spawn(srv->fg, conn_poll, &c, sizeof c, conn_drop, NULL);
    if (err != 0) {
        fprintf(stderr, "echo_server: cannot serve a connection: %s\n", cw_strerror(err));
        if (close(fd) != 0)
            perror("echo_server: close");
        return;
    }
    srv->accepted++;
    srv->open++;
}

/* ---- the acceptor ----------------------------------------------------------- */

typedef struct acceptor {
    cw_pt pt;
    server *srv;
    int fd;             /* the listening socket (main owns it) */
    cw_fdwait readable;
    cw_sleep backoff;
} acceptor;

static cw_poll acceptor_poll(void *state, cw_cx *cx)
{
    acceptor *a = state;
    int fd;

    CW_BEGIN(&a->pt);
    for (;;) {
        fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            start_connection(a->srv, fd);
            CW_YIELD_MAYBE(&a->pt, cx); /* a flood of connects is work too */
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            fd = -2; /* wait for the next connection (below: no await in a switch) */
            break;
        case EINTR:
        case ECONNABORTED:
        /* accept(2): Linux passes pending network errors of the new
         * socket to accept; retry as for EAGAIN. */
        case ENETDOWN:
        case EPROTO:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            fd = -1; /* retry now */
            break;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            perror("echo_server: accept (backing off)");
            fd = -3;
            break;
        default:
            perror("echo_server: accept");
            a->srv->status = EXIT_FAILURE;
            loop_stop(a->srv->ex);
            CW_RETURN(&a->pt);
        }
        if (fd == -2) {
            CW_AWAIT(&a->pt, cw_fdwait_poll(&a->readable, cx));
            if (cw_fdwait_revents(&a->readable) == 0) {
                fprintf(stderr, "echo_server: cannot wait for the listening socket\n");
                a->srv->status = EXIT_FAILURE;
                loop_stop(a->srv->ex);
                CW_RETURN(&a->pt);
            }
        } else if (fd == -3) {
            /* Level-triggered readiness would spin while the backlog stays
             * full: sleep instead, then try again. */
            cw_sleep_init(&a->backoff, ACCEPT_BACKOFF_NS);
            CW_AWAIT(&a->pt, cw_sleep_poll(&a->backoff, cx));
        }
    }
    CW_END(&a->pt);
}

static void acceptor_drop(void *state)
{
    acceptor *a = state;
    cw_fdwait_drop(&a->readable);
    cw_sleep_drop(&a->backoff);
}

/* ---- a background CPU burner ------------------------------------------------ */

typedef struct burner {
    cw_pt pt;
    server *srv;
    uint64_t x; /* xorshift state: the "work" */
} burner;

static cw_poll burner_poll(void *state, cw_cx *cx)
{
    burner *b = state;

    CW_BEGIN(&b->pt);
    for (;;) {
        for (int i = 0; i < BURN_CHUNK; i++) { /* no await inside: i may be local */
            b->x ^= b->x << 13;
            b->x ^= b->x >> 7;
            b->x ^= b->x << 17;
        }
        b->srv->bg_sink ^= b->x;
        b->srv->bg_chunks++;
        CW_YIELD_MAYBE(&b->pt, cx);
    }
    CW_END(&b->pt);
}

/* ---- signals ------------------------------------------------------------------ */

/* SIGINT and SIGTERM are blocked and queued on a signalfd, which this task
 * awaits like any socket; the first one stops the loop. */
typedef struct sigwatch {
    cw_pt pt;
    server *srv;
    int fd;             /* the signalfd (the task's: its drop closes it) */
    cw_fdwait readable;
} sigwatch;

static cw_poll sigwatch_poll(void *state, cw_cx *cx)
{
    sigwatch *w = state;
    struct signalfd_siginfo si; /* a local: set and used between two awaits */
    ssize_t n;

    CW_BEGIN(&w->pt);
    for (;;) {
        n = read(w->fd, &si, sizeof si);
        if (n == (ssize_t)sizeof si) {
            fprintf(stderr, "echo_server: %s, shutting down\n",
                    si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
            perror("echo_server: read(signalfd)");
            w->srv->status = EXIT_FAILURE;
            break;
        }
        CW_AWAIT(&w->pt, cw_fdwait_poll(&w->readable, cx));
        if (cw_fdwait_revents(&w->readable) == 0) {
            fprintf(stderr, "echo_server: cannot wait for signals\n");
            w->srv->status = EXIT_FAILURE;
            break;
        }
    }
    loop_stop(w->srv->ex);
    CW_END(&w->pt);
}

static void sigwatch_drop(void *state)
{
    sigwatch *w = state;
    cw_fdwait_drop(&w->readable); /* before close() */
    if (close(w->fd) != 0)
        perror("echo_server: close(signalfd)");
}

/* Block SIGINT and SIGTERM and spawn the task that awaits them. */
static int watch_signals(server *srv)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    int fd;
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0
        || (fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        perror("echo_server: signalfd");
        return -1;
    }
    sigwatch w = {.srv = srv, .fd = fd};
    cw_fdwait_init(&w.readable, fd, CW_FD_READ);
    int err = cw_spawn(srv->fg, sigwatch_poll, &w, sizeof w, sigwatch_drop, NULL);
    if (err != 0) {
        fprintf(stderr, "echo_server: spawning the signal task: %s\n", cw_strerror(err));
        close(fd);
        return -1;
    }
    return 0;
}

/* ---- main --------------------------------------------------------------------- */

static int parse_num(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno != 0 || end == s || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "echo_server: %s wants an integer from 0 to %ld\n", opt, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: echo_server [--port N] [--bg N] [--sndbuf N] " LOOP_USAGE "\n"
               "  --port N    TCP port on 127.0.0.1 (default 0: any free port)\n"
               "  --bg N      background CPU burner tasks (default 2)\n"
               "  --sndbuf N  SO_SNDBUF of each connection (default 0: the kernel's)\n"
               LOOP_HELP);
}

/* A non-blocking listening socket on 127.0.0.1:port; *bound gets the port
 * actually bound. -1 on error (printed). */
static int listen_on(long port, unsigned *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("echo_server: socket");
        return -1;
    }
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        perror("echo_server: setsockopt(SO_REUSEADDR)");
    } else if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        perror("echo_server: bind");
    } else if (listen(fd, SOMAXCONN) != 0) {
        perror("echo_server: listen");
    } else if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("echo_server: getsockname");
    } else {
        *bound = ntohs(sin.sin_port);
        return fd;
    }
    if (close(fd) != 0)
        perror("echo_server: close");
    return -1;
}

int main(int argc, char **argv)
{
    long port = 0, nbg = 2, sndbuf = 0;
    const char *loop = loop_option(&argc, argv); /* --loop NAME (loop.h) */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0) {
            if (parse_num("--port", i + 1 < argc ? argv[++i] : NULL, 65535, &port) != 0)
                return EXIT_FAILURE;
        } else if (strcmp(argv[i], "--bg") == 0) {
            if (parse_num("--bg", i + 1 < argc ? argv[++i] : NULL, 1000, &nbg) != 0)
                return EXIT_FAILURE;
        } else if (strcmp(argv[i], "--sndbuf") == 0) {
            if (parse_num("--sndbuf", i + 1 < argc ? argv[++i] : NULL, 1 << 30, &sndbuf) != 0)
                return EXIT_FAILURE;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_SUCCESS;
        } else {
            usage(stderr);
            return EXIT_FAILURE;
        }
    }

    server srv = {.status = EXIT_SUCCESS, .sndbuf = (int)sndbuf};
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    unsigned bound = 0;
    int err;

    int lfd = listen_on(port, &bound);
    if (lfd < 0)
        return EXIT_FAILURE;

    cfg = cw_config_new();
    if (!cfg) {
        fprintf(stderr, "echo_server: cw_config_new: out of memory\n");
        goto fail;
    }
    if ((err = cw_config_add_queue(cfg, Q_FOREGROUND, FG_WEIGHT)) != 0 ||
        (err = cw_config_add_queue(cfg, Q_BACKGROUND, BG_WEIGHT)) != 0 ||
        (err = loop_executor_new(loop, cfg, &ex)) != 0) {
        fprintf(stderr, "echo_server: setting up the executor: %s\n", cw_strerror(err));
        goto fail;
    }
    cw_config_free(cfg);
    cfg = NULL;
    srv.ex = ex;
    srv.fg = cw_executor_queue(ex, Q_FOREGROUND);
    cw_queue *bg = cw_executor_queue(ex, Q_BACKGROUND);
    if (!srv.fg || !bg) {
        fprintf(stderr, "echo_server: a configured queue is missing\n");
        goto fail;
    }

    if (watch_signals(&srv) != 0)
        goto fail;

    acceptor a = {.srv = &srv, .fd = lfd};
    cw_fdwait_init(&a.readable, lfd, CW_FD_READ);
    cw_sleep_init(&a.backoff, 0);
    if ((err = cw_spawn(srv.fg, acceptor_poll, &a, sizeof a, acceptor_drop, NULL)) != 0) {
        fprintf(stderr, "echo_server: spawning the acceptor: %s\n", cw_strerror(err));
        goto fail;
    }
    for (long i = 0; i < nbg; i++) {
        burner b = {.srv = &srv, .x = 0x9e3779b97f4a7c15ull + (uint64_t)i};
        if ((err = cw_spawn(bg, burner_poll, &b, sizeof b, NULL, NULL)) != 0) {
            fprintf(stderr, "echo_server: spawning a burner: %s\n", cw_strerror(err));
            goto fail;
        }
    }

    if (printf("listening on 127.0.0.1:%u\n", bound) < 0 || fflush(stdout) != 0) {
        perror("echo_server: stdout");
        goto fail;
    }

    /* Runs until a signal (or a fatal accept error) stops the loop. */
    if ((err = loop_run(ex)) != 0) {
        fprintf(stderr, "echo_server: running the loop: %s\n", cw_strerror(err));
        srv.status = EXIT_FAILURE;
    }

    struct cw_queue_stats fs, bs;
    if ((err = cw_queue_stats(srv.fg, &fs)) != 0 || (err = cw_queue_stats(bg, &bs)) != 0) {
        fprintf(stderr, "echo_server: cw_queue_stats: %s\n", cw_strerror(err));
        srv.status = EXIT_FAILURE;
    } else {
        fprintf(stderr,
                "echo_server: stats: connections=%lu open=%lu bytes=%llu write_waits=%llu "
                "fg_polls=%llu fg_cpu_ns=%llu bg_polls=%llu bg_cpu_ns=%llu bg_chunks=%llu\n",
                srv.accepted, srv.open, srv.bytes, srv.write_waits,
                (unsigned long long)fs.polls, (unsigned long long)fs.cpu_ns,
                (unsigned long long)bs.polls, (unsigned long long)bs.cpu_ns, srv.bg_chunks);
    }

    /* Cancels the acceptor, the burners and every open connection: their
     * drop functions drop the fd waits and close the sockets. */
    loop_executor_free(ex);
    ex = NULL;
    if (srv.open != 0) {
        fprintf(stderr, "echo_server: %lu connections were not dropped\n", srv.open);
        srv.status = EXIT_FAILURE;
    }
    if (close(lfd) != 0) {
        perror("echo_server: close");
        srv.status = EXIT_FAILURE;
    }
    return srv.status;

fail:
    loop_executor_free(ex);
    cw_config_free(cfg);
    if (close(lfd) != 0)
        perror("echo_server: close");
    return EXIT_FAILURE;
}
