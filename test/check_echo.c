/* check_echo.c - examples/echo_server, run as a separate process over real
 * sockets on 127.0.0.1: every byte comes back to every client while the
 * background queue burns CPU, connections that close at once or half-close
 * are served and closed, a large payload comes back whole, and SIGTERM or
 * SIGINT end the server with status 0.
 *
 * The server is started with fork+exec from $top_builddir/examples (the
 * binary `make` builds). It dies with the test process (PR_SET_PDEATHSIG),
 * and the fixture kills it if a test fails, so no process is left behind.
 * Waits are bounded by a hang guard (no progress for HANG_MS fails the
 * test); nothing asserts on how long anything took.
 *
 * Every test runs once on each loop this build has (the server's
 * --loop NAME, exloops.h): the same clients, the same checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exloops.h"
#include "testutil.h"

#define HANG_MS 20000 /* fail when nothing moves for this long */

/* ---- the server process -------------------------------------------------------- */

static child_proc srv = CHILD_PROC_INIT; /* the echo server */

/* The counters the server prints on stderr when it shuts down. */
typedef struct server_stats {
    unsigned long connections, open;
    unsigned long long bytes, write_waits;
    unsigned long long fg_polls, fg_cpu_ns, bg_polls, bg_cpu_ns, bg_chunks;
} server_stats;

/* Checked fixture: runs after each test, also after a failure when Check
 * does not fork; when it forks, PR_SET_PDEATHSIG kills the server. */
static void teardown(void)
{
    child_close(&srv);
}

/* Fail the test (the fixture or the parent's death kills the server). */
#define require(cond, ...) ck_assert_msg(cond, __VA_ARGS__)

/* Start $top_builddir/examples/echo_server --port 0 --bg nbg --sndbuf sndbuf
 * --loop loop and read the port from its first line. false (the test is
 * skipped) when this machine refuses the loop (exloops.h). */
static bool server_start(const char *loop, int nbg, int sndbuf)
{
    if (!ex_loop_usable(loop)) {
        fprintf(stderr, "echo_server --loop %s: the kernel refuses this loop here: skipped\n",
                loop);
        return false;
    }
    char bg[16], sb[16];
    snprintf(bg, sizeof bg, "%d", nbg);
    snprintf(sb, sizeof sb, "%d", sndbuf);
    const char *args[] = {"--port", "0", "--bg", bg, "--sndbuf", sb, "--loop", loop, NULL};
    child_start(&srv, "examples/echo_server", args);

    /* Its first line says where it listens. */
    char line[256];
    child_first_line(&srv, line, sizeof line, HANG_MS);
    int port = -1;
    char nl = 0;
    require(sscanf(line, "listening on 127.0.0.1:%d%c", &port, &nl) == 2 && nl == '\n' &&
                port > 0 && port < 65536,
            "unexpected first line: %s", line);
    srv.port = port;
    return true;
}

/* Send sig, wait for the server to exit, return its wait status. Checks
 * that it wrote nothing on stdout after the first line. */
static int server_stop(int sig)
{
    require(kill(srv.pid, sig) == 0, "kill: %s", strerror(errno));
    int status = 0;
    int64_t deadline = test_now_ms() + HANG_MS;
    for (;;) {
        pid_t r = waitpid(srv.pid, &status, WNOHANG);
        if (r == srv.pid)
            break;
        require(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        require(test_now_ms() < deadline, "server still running %d ms after signal %d; stderr: %s",
                HANG_MS, sig, child_stderr(&srv));
        poll(NULL, 0, 5);
    }
    srv.pid = -1;
    char rest[64];
    ssize_t n;
    while ((n = read(srv.out, rest, sizeof rest)) < 0 && errno == EINTR)
        ;
    require(n == 0, "server wrote more than one line on stdout: %.*s", (int)(n > 0 ? n : 0),
            rest);
    return status;
}

static void require_clean_exit(int status)
{
    require(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "server ended with %s %d; stderr: %s", WIFEXITED(status) ? "status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), child_stderr(&srv));
}

static server_stats server_stats_read(void)
{
    server_stats s;
    const char *text = child_stderr(&srv);
    const char *p = strstr(text, "echo_server: stats: ");
    require(p != NULL, "no stats line on the server's stderr: %s", text);
    require(sscanf(p,
                   "echo_server: stats: connections=%lu open=%lu bytes=%llu write_waits=%llu "
                   "fg_polls=%llu fg_cpu_ns=%llu bg_polls=%llu bg_cpu_ns=%llu bg_chunks=%llu",
                   &s.connections, &s.open, &s.bytes, &s.write_waits, &s.fg_polls,
                   &s.fg_cpu_ns, &s.bg_polls, &s.bg_cpu_ns, &s.bg_chunks) == 9,
            "unparsable stats line: %s", p);
    return s;
}

/* Descriptors the server holds now (Linux /proc). */
static int server_fd_count(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)srv.pid);
    DIR *d = opendir(path);
    require(d != NULL, "%s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- clients --------------------------------------------------------------------- */

typedef struct client {
    int fd;
    const char *out;  /* what it sends, and expects back */
    size_t len;
    size_t sent;
    size_t got;       /* bytes echoed back and checked */
    size_t chunk;     /* most bytes per send(); 0: all that is left */
    bool lazy_read;   /* read only once all is sent or a send was short,
                         and then 1 KiB per wake-up */
    bool blocked;     /* the last send() was short or would have blocked */
    bool done;        /* all came back, then EOF */
} client;

/* A connected, non-blocking socket; rcvbuf > 0 sets SO_RCVBUF first. */
static int client_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    require(fd >= 0, "socket: %s", strerror(errno));
    if (rcvbuf > 0)
        require(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0,
                "SO_RCVBUF: %s", strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r;
    while ((r = connect(fd, (struct sockaddr *)&sin, sizeof sin)) != 0 && errno == EINTR)
        ;
    require(r == 0, "connect to 127.0.0.1:%d: %s", srv.port, strerror(errno));
    int fl = fcntl(fd, F_GETFL);
    require(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0, "fcntl: %s", strerror(errno));
    return fd;
}

static void client_sent_all(client *c, size_t i)
{
    /* half-close: the server sees EOF once it has read everything */
    require(shutdown(c->fd, SHUT_WR) == 0, "client %zu: shutdown: %s", i, strerror(errno));
}

/* Drive all clients with one poll() loop until each has had all its bytes
 * echoed back and then seen EOF. Every received byte is compared with the
 * byte sent at the same offset. */
static void clients_run(client *cl, size_t n)
{
    struct pollfd *p = calloc(n, sizeof *p);
    size_t *who = calloc(n, sizeof *who);
    require(p && who, "out of memory");
    static char scratch[1 << 16];
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i].done)
            continue;
        left++;
        if (cl[i].sent == cl[i].len)
            client_sent_all(&cl[i], i);
    }
    int64_t last_progress = test_now_ms();

    while (left > 0) {
        nfds_t m = 0;
        for (size_t i = 0; i < n; i++) {
            client *c = &cl[i];
            if (c->done)
                continue;
            short ev = 0;
            if (c->sent < c->len)
                ev |= POLLOUT;
            if (!c->lazy_read || c->sent == c->len || c->blocked)
                ev |= POLLIN;
            p[m] = (struct pollfd){.fd = c->fd, .events = ev};
            who[m++] = i;
        }
        int64_t wait = HANG_MS - (test_now_ms() - last_progress);
        if (wait <= 0) {
            size_t sent = 0, got = 0, total = 0;
            for (size_t i = 0; i < n; i++) {
                sent += cl[i].sent;
                got += cl[i].got;
                total += cl[i].len;
            }
            ck_abort_msg("no progress for %d ms: %zu clients unfinished, %zu of %zu bytes "
                         "sent, %zu echoed; server stderr: %s",
                         HANG_MS, left, sent, total, got, child_stderr(&srv));
        }
        int r = poll(p, m, (int)wait);
        if (r < 0 && errno == EINTR)
            continue;
        require(r >= 0, "poll: %s", strerror(errno));

        for (nfds_t k = 0; k < m && r > 0; k++) {
            if (!p[k].revents)
                continue;
            size_t i = who[k];
            client *c = &cl[i];
            if ((p[k].events & POLLOUT) && (p[k].revents & (POLLOUT | POLLERR | POLLHUP))) {
                size_t want = c->len - c->sent;
                if (c->chunk && want > c->chunk)
                    want = c->chunk;
                ssize_t w = send(c->fd, c->out + c->sent, want, MSG_NOSIGNAL);
                if (w > 0) {
                    c->sent += (size_t)w;
                    c->blocked = (size_t)w < want; /* a short send: the buffer is full */
                    last_progress = test_now_ms();
                    if (c->sent == c->len)
                        client_sent_all(c, i);
                } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    c->blocked = true;
                } else {
                    require(w < 0 && errno == EINTR, "client %zu: send after %zu bytes: %s", i,
                            c->sent, w < 0 ? strerror(errno) : "returned 0");
                }
            }
            if ((p[k].events & POLLIN) && (p[k].revents & (POLLIN | POLLERR | POLLHUP))) {
                ssize_t got = recv(c->fd, scratch, c->lazy_read ? 1024 : sizeof scratch, 0);
                if (got > 0) {
                    size_t g = (size_t)got;
                    require(c->got + g <= c->sent,
                            "client %zu: %zu bytes came back but only %zu were sent", i,
                            c->got + g, c->sent);
                    if (memcmp(scratch, c->out + c->got, g) != 0) {
                        size_t at = 0;
                        while (scratch[at] == c->out[c->got + at])
                            at++;
                        ck_abort_msg("client %zu: byte %zu came back as 0x%02x, sent 0x%02x", i,
                                     c->got + at, (unsigned char)scratch[at],
                                     (unsigned char)c->out[c->got + at]);
                    }
                    c->got += g;
                    last_progress = test_now_ms();
                } else if (got == 0) {
                    require(c->got == c->len,
                            "client %zu: server closed the connection after echoing %zu of "
                            "%zu bytes",
                            i, c->got, c->len);
                    require(close(c->fd) == 0, "close: %s", strerror(errno));
                    c->fd = -1;
                    c->done = true;
                    left--;
                    last_progress = test_now_ms();
                } else {
                    require(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR,
                            "client %zu: recv after %zu bytes: %s", i, c->got,
                            strerror(errno));
                }
            }
            r--;
        }
    }
    free(p);
    free(who);
}

/* ---- tests ------------------------------------------------------------------------ */

enum { NCLIENTS = 50, NLINES = 100 };

START_TEST(fifty_clients_get_every_line_back_while_background_burns_cpu)
{
    if (!server_start(ex_loops[_i], 2, 0))
        return;

    static char text[NCLIENTS][NLINES * 32];
    static client cl[NCLIENTS];
    size_t total = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        size_t len = 0;
        for (int j = 0; j < NLINES; j++)
            len += (size_t)snprintf(text[i] + len, sizeof text[i] - len,
                                    "client %d line %d\n", i, j);
        /* one line per send(): the lines of the 50 clients interleave */
        cl[i] = (client){.out = text[i], .len = len, .chunk = len / NLINES};
        total += len;
    }
    /* all connected before anyone sends: 50 live connections at once */
    for (int i = 0; i < NCLIENTS; i++)
        cl[i].fd = client_connect(0);

    clients_run(cl, NCLIENTS);

    size_t lines = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert(cl[i].done);
        ck_assert_uint_eq(cl[i].got, cl[i].len);
        for (size_t k = 0; k < cl[i].got; k++)
            lines += text[i][k] == '\n';
    }
    ck_assert_uint_eq(lines, NCLIENTS * NLINES);

    require_clean_exit(server_stop(SIGTERM));
    server_stats s = server_stats_read();
    ck_assert_uint_eq(s.connections, NCLIENTS);
    ck_assert_uint_eq(s.open, 0);
    ck_assert_uint_eq(s.bytes, total);
    /* the burners ran: the background queue was runnable the whole time */
    ck_assert_uint_gt(s.bg_polls, 0);
    ck_assert_uint_gt(s.bg_cpu_ns, 0);
    ck_assert_uint_gt(s.bg_chunks, 0);
}
END_TEST

START_TEST(clients_that_close_at_once_are_closed_and_do_not_disturb_others)
{
    if (!server_start(ex_loops[_i], 2, 0))
        return;
    int baseline = server_fd_count();

    /* connect and close without a byte */
    for (int i = 0; i < 10; i++)
        require(close(client_connect(0)) == 0, "close: %s", strerror(errno));

    /* connect and half-close at once: the server answers EOF with EOF */
    client empty = {.fd = client_connect(0), .out = "", .len = 0};
    clients_run(&empty, 1);
    ck_assert(empty.done);

    /* and it still echoes */
    client after = {.fd = client_connect(0), .out = "still here\n", .len = 11};
    clients_run(&after, 1);
    ck_assert(after.done);

    /* every accepted socket gets closed (eventually: the server sees the
     * EOFs in its own time; the guard only bounds a hang) */
    int64_t deadline = test_now_ms() + HANG_MS;
    int fds;
    while ((fds = server_fd_count()) != baseline) {
        require(test_now_ms() < deadline, "server holds %d descriptors, %d before the clients came",
                fds, baseline);
        poll(NULL, 0, 5);
    }

    require_clean_exit(server_stop(SIGTERM));
    server_stats s = server_stats_read();
    ck_assert_uint_eq(s.connections, 12);
    ck_assert_uint_eq(s.open, 0);
    ck_assert_uint_eq(s.bytes, 11);
}
END_TEST

START_TEST(one_mib_sent_in_one_call_comes_back_whole)
{
    enum { SIZE = 1 << 20 };
    if (!server_start(ex_loops[_i], 2, 4096)) /* small send buffers: writes back up */
        return;

    char *payload = malloc(SIZE);
    require(payload != NULL, "out of memory");
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        payload[i] = (char)x;
    }
    /* A small receive buffer and a slow reader (nothing until all is sent
     * or a send is short, then 1 KiB per wake-up), against small server
     * send buffers: the server's writes back up (short sends, EV_WRITE
     * waits). */
    client c = {.fd = client_connect(4096), .out = payload, .len = SIZE, .lazy_read = true};
    clients_run(&c, 1);
    ck_assert(c.done);
    ck_assert_uint_eq(c.got, SIZE);

    require_clean_exit(server_stop(SIGTERM));
    server_stats s = server_stats_read();
    ck_assert_uint_eq(s.connections, 1);
    ck_assert_uint_eq(s.bytes, SIZE);
    /* The path under test was taken: the server writes 16 KiB chunks into
     * a send buffer of about 8 KiB while this client drains 1 KiB per
     * wake-up (in runs here: about 100 waits for the 64 chunks). */
    ck_assert_msg(s.write_waits > 0,
                  "the server never awaited EV_WRITE: partial writes were not exercised");
    free(payload);
}
END_TEST

START_TEST(sigint_with_a_connection_open_exits_zero_after_dropping_it)
{
    if (!server_start(ex_loops[_i], 1, 0))
        return;
    /* a conversation in progress: one line echoed, the connection open */
    client c = {.fd = client_connect(0), .out = "hello\n", .len = 6};
    int64_t deadline = test_now_ms() + HANG_MS;
    require(send(c.fd, c.out, c.len, MSG_NOSIGNAL) == (ssize_t)c.len, "send: %s",
            strerror(errno));
    char buf[16];
    while (c.got < c.len) {
        int64_t left = deadline - test_now_ms();
        require(left > 0, "no echo within %d ms; stderr: %s", HANG_MS, child_stderr(&srv));
        struct pollfd p = {.fd = c.fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv(c.fd, buf + c.got, sizeof buf - c.got, 0);
        require(n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)), "recv: %s",
                n == 0 ? "EOF" : strerror(errno));
        if (n > 0)
            c.got += (size_t)n;
    }
    ck_assert_uint_eq(c.got, 6);
    ck_assert(memcmp(buf, "hello\n", 6) == 0);

    /* Exit status 0 includes the server's own check that every
     * connection task was dropped by cw_executor_free(). */
    require_clean_exit(server_stop(SIGINT));
    server_stats s = server_stats_read();
    ck_assert_uint_eq(s.connections, 1);
    ck_assert_uint_eq(s.open, 1); /* still open when the signal came */
    ck_assert_ptr_nonnull(strstr(child_stderr(&srv), "SIGINT"));
    close(c.fd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("echo");
    TCase *tc = tcase_create("echo_server");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    /* _i: the loop, ex_loops[_i] */
    tcase_add_loop_test(tc, fifty_clients_get_every_line_back_while_background_burns_cpu, 0,
                        EX_NLOOPS);
    tcase_add_loop_test(tc, clients_that_close_at_once_are_closed_and_do_not_disturb_others, 0,
                        EX_NLOOPS);
    tcase_add_loop_test(tc, one_mib_sent_in_one_call_comes_back_whole, 0, EX_NLOOPS);
    tcase_add_loop_test(tc, sigint_with_a_connection_open_exits_zero_after_dropping_it, 0,
                        EX_NLOOPS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
