/* embed_poll.c - the executor hosted by a hand-written poll() loop
 * (clockworker/embed.h), no event library.
 *
 * The executor tells the loop which fds to watch (watch_fd) and how long
 * it may block (cw_embed_next_ms()); the loop polls, reports what is
 * ready (cw_embed_fd_ready()) and ticks (cw_embed_tick()), until the
 * executor has nothing left: no fd watched, no timer.
 *
 * The tasks: two CPU-bound counters, on a queue of weight 3 ("high") and
 * one of weight 1 ("low"), share the CPU 3:1; a stopper sleeps 100 ms
 * (cw_sleep), stops them and writes their counts into a pipe; a reader
 * waits for the pipe (cw_fdwait) and prints what it reads.
 *
 * So that the output is the same on every run and machine, the executor
 * runs on a clock of the example's own that only the work advances: a
 * unit of work "takes" 1 ms. (Drop cw_config_set_clock() for real time:
 * the loop is the same.)
 *
 * Usage: embed_poll
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <clockworker.h>

/* ---- the host: a poll() loop ------------------------------------------- */

enum { MAXFD = 16 };

struct host {
    struct pollfd fds[MAXFD]; /* what the executor asked to watch */
    int nfds;
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
        if (h->nfds == MAXFD) {
            fprintf(stderr, "embed_poll: too many fds\n");
            exit(1);
        }
        h->nfds++;
    }
    h->fds[i].fd = fd;
    h->fds[i].events = (short)(((what & CW_FD_READ) ? POLLIN : 0)
                               | ((what & CW_FD_WRITE) ? POLLOUT : 0));
}

/* This loop reads cw_embed_next_ms() before each poll instead. */
static void set_timer(void *arg, int64_t delay_ns)
{
    (void)arg;
    (void)delay_ns;
}

static const cw_embed_hooks hooks = {.watch_fd = watch_fd, .set_timer = set_timer};

/* Until the executor has nothing left. */
static int host_run(struct host *h, cw_executor *ex)
{
    while (h->nfds > 0 || cw_embed_next_ns(ex) >= 0) {
        int n = poll(h->fds, (nfds_t)h->nfds, cw_embed_next_ms(ex));
        if (n < 0 && errno != EINTR)
            return -errno;
        /* a copy: watch_fd may change the list while we report */
        struct pollfd seen[MAXFD];
        int m = h->nfds;
        memcpy(seen, h->fds, sizeof seen);
        for (int i = 0; n > 0 && i < m; i++) {
            short what = 0;
            if (seen[i].revents & (POLLIN | POLLHUP | POLLERR))
                what |= CW_FD_READ;
            if (seen[i].revents & (POLLOUT | POLLHUP | POLLERR))
                what |= CW_FD_WRITE;
            if (what)
                cw_embed_fd_ready(ex, seen[i].fd, what);
        }
        cw_embed_tick(ex);
    }
    return 0;
}

/* ---- the tasks --------------------------------------------------------- */

enum { HIGH = 1, LOW = 2 };

static uint64_t g_clock_ns; /* the example's clock: advanced by the work */

static uint64_t work_clock(void *arg)
{
    (void)arg;
    return g_clock_ns;
}

struct counter {
    cw_pt pt;
    const bool *stop;
    uint64_t *units;
};

static cw_poll counter_poll(void *state, cw_cx *cx)
{
    struct counter *c = state;
    CW_BEGIN(&c->pt);
    while (!*c->stop) {
        g_clock_ns += 1000000; /* one unit of work: 1 ms */
        (*c->units)++;
        CW_YIELD_MAYBE(&c->pt, cx);
    }
    CW_END(&c->pt);
}

struct stopper {
    cw_pt pt;
    cw_sleep sleep;
    bool *stop;
    const uint64_t *high, *low;
    int wfd; /* the pipe's write end, closed when done */
};

static cw_poll stopper_poll(void *state, cw_cx *cx)
{
    struct stopper *s = state;
    CW_BEGIN(&s->pt);
    CW_AWAIT(&s->pt, cw_sleep_poll(&s->sleep, cx));
    *s->stop = true;
    printf("stopper: 100 ms passed, stop\n");
    char line[64];
    int n = snprintf(line, sizeof line, "high=%llu low=%llu\n", (unsigned long long)*s->high,
                     (unsigned long long)*s->low);
    if (write(s->wfd, line, (size_t)n) != n)
        perror("write");
    close(s->wfd);
    CW_END(&s->pt);
}

static void stopper_drop(void *state)
{
    cw_sleep_drop(&((struct stopper *)state)->sleep);
}

struct reader {
    cw_pt pt;
    cw_fdwait rd;
    int fd;
    char buf[128];
    size_t len;
};

static cw_poll reader_poll(void *state, cw_cx *cx)
{
    struct reader *r = state;
    CW_BEGIN(&r->pt);
    printf("reader: waiting for the pipe\n");
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n < 0 && errno == EAGAIN) {
            CW_AWAIT(&r->pt, cw_fdwait_poll(&r->rd, cx));
            if (!cw_fdwait_revents(&r->rd))
                break; /* the wait failed */
            continue;
        }
        if (n <= 0)
            break; /* end of file */
        r->len += (size_t)n;
    }
    r->buf[r->len] = '\0';
    printf("reader: got %s", r->buf);
    cw_fdwait_drop(&r->rd); /* before close() */
    close(r->fd);
    CW_END(&r->pt);
}

static void reader_drop(void *state)
{
    cw_fdwait_drop(&((struct reader *)state)->rd);
}

int main(void)
{
    cw_config *cfg = cw_config_new();
    if (!cfg || cw_config_add_queue(cfg, HIGH, 3) < 0 || cw_config_add_queue(cfg, LOW, 1) < 0) {
        fprintf(stderr, "embed_poll: config failed\n");
        return 1;
    }
    cw_config_set_clock(cfg, work_clock, NULL);
    struct host host = {.nfds = 0};
    cw_executor *ex;
    int err = cw_executor_new_embed(&hooks, &host, cfg, &ex);
    cw_config_free(cfg);
    if (err < 0) {
        fprintf(stderr, "cw_executor_new_embed: %s\n", cw_strerror(err));
        return 1;
    }
    printf("embed_poll: a poll() loop hosts the executor (%s)\n",
           cw_loop_name(cw_executor_loop(ex)));

    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        return 1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);

    bool stop = false;
    uint64_t high = 0, low = 0;
    struct counter ch = {.stop = &stop, .units = &high};
    struct counter cl = {.stop = &stop, .units = &low};
    struct stopper st = {.stop = &stop, .high = &high, .low = &low, .wfd = p[1]};
    cw_sleep_init(&st.sleep, 100 * 1000000ull);
    struct reader rd = {.fd = p[0]};
    cw_fdwait_init(&rd.rd, p[0], CW_FD_READ);
    cw_queue *qh = cw_executor_queue(ex, HIGH), *ql = cw_executor_queue(ex, LOW);
    if (cw_spawn(ql, reader_poll, &rd, sizeof rd, reader_drop, NULL) < 0
        || cw_spawn(qh, stopper_poll, &st, sizeof st, stopper_drop, NULL) < 0
        || cw_spawn(qh, counter_poll, &ch, sizeof ch, NULL, NULL) < 0
        || cw_spawn(ql, counter_poll, &cl, sizeof cl, NULL, NULL) < 0) {
        fprintf(stderr, "embed_poll: spawn failed\n");
        return 1;
    }

    err = host_run(&host, ex);
    if (err < 0) {
        fprintf(stderr, "poll: %s\n", strerror(-err));
        return 1;
    }
    printf("host: every task ended, nothing watched: the loop returned\n");
    printf("high/low = %.1f (weights 3:1)\n", low ? (double)high / (double)low : 0.0);
    cw_executor_free(ex);
    return 0;
}
