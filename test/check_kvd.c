/* check_kvd.c - examples/kvd, run as a separate process on 127.0.0.1 and
 * driven with curl, in its three modes (clockworker, --plain, and
 * --callbacks): PUT then GET returns the value, DELETE then GET is 404,
 * 100 keys round-trip, malformed requests get 400, other methods 405,
 * other paths 404, bodies over 1 MiB 413, and SIGTERM or SIGINT end the
 * daemon with status 0 after it served everything. In the two modes with
 * an executor, the counters kvd prints at exit must show that the
 * requests ran as tasks on the foreground queue and the background work
 * on the background queue (so --callbacks cannot fall back to libevent's
 * own registration unnoticed).
 *
 * The daemon is started with fork+exec from $top_builddir/examples (the
 * binary `make` builds) with --port 0; its first line gives the port. It
 * dies with the test process (PR_SET_PDEATHSIG) and the fixture kills it
 * if a test fails. curl is found in $PATH; without it every test fails
 * saying so (CI installs it). Waits are bounded by a hang guard; one
 * test asserts a bound (SIGTERM after resets ends kvd within 2 s, against
 * a 5 s drain), nothing else asserts on how long anything took. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define HANG_MS 30000
#define NKEYS 100

static child_proc kv = CHILD_PROC_INIT; /* examples/kvd */
static char curl_path[4096];

#define require(cond, ...) ck_assert_msg(cond, __VA_ARGS__)



static void teardown(void)
{
    child_close(&kv);
}

/* curl from $PATH, or fail the test saying how to get it. */
static void find_curl(void)
{
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(curl_path, sizeof curl_path, "%s/curl", *dir ? dir : ".");
        if (access(curl_path, X_OK) == 0)
            return;
    }
    ck_abort_msg("curl is not installed (not in $PATH): this test drives examples/kvd with "
                 "curl; install it with `apt-get install curl` (.ci/run does)");
}

/* kvd's modes: the name in its first line, and the option. */
typedef struct mode {
    const char *name;
    const char *opt; /* NULL: the default */
    bool executor;   /* runs its work as tasks on queues */
} mode;

static const mode modes[] = {
    {"clockworker", NULL, true},
    {"plain", "--plain", false},
    {"callbacks", "--callbacks", true},
};
#define NMODES ((int)(sizeof modes / sizeof modes[0]))

static const mode *cur; /* the running daemon's */

static void daemon_start(const mode *m)
{
    find_curl();
    const char *args[] = {"--port", "0", "--bg-tasks", "1", m->opt, NULL};
    cur = m;
    child_start(&kv, "examples/kvd", args);
    char line[512];
    child_first_line(&kv, line, sizeof line, HANG_MS);
    int port = -1;
    require(sscanf(line, "kvd: listening on 127.0.0.1:%d ", &port) == 1 && port > 0 &&
                port < 65536,
            "unexpected first line: %s", line);
    char want[64];
    snprintf(want, sizeof want, "(%s,", m->name);
    require(strstr(line, want) != NULL, "wrong mode: %s", line);
    kv.port = port;
}

/* The counters kvd printed at exit. Every request kvd served (requests)
 * and background work ran (the first loop pass runs it, before any
 * request). With an executor, each request was a task on the foreground
 * queue (fg_tasks: at least one per request), and the background work
 * ran as polls on the background queue: in --callbacks one poll per
 * chunk (each run of plain_bg_cb), in the default mode one poll for many
 * chunks. Without an executor, no such counters. */
static void check_counters(void)
{
    const char *err = child_stderr(&kv);
    const char *at = strstr(err, "kvd: stats: ");
    require(at != NULL, "no stats line: %s", err);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
    unsigned long long requests, bg_iterations, fg_tasks, bg_polls;
    size_t keys;
    int n = sscanf(line, "kvd: stats: requests=%llu bg_iterations=%llu keys=%zu fg_tasks=%llu "
                         "bg_polls=%llu",
                   &requests, &bg_iterations, &keys, &fg_tasks, &bg_polls);
    require(n >= 3, "unexpected stats line: %s", line);
    require(requests > 0 && bg_iterations > 0, "no requests or no background work: %s", line);
    if (!cur->executor) {
        require(n == 3, "%s mode has no executor, yet: %s", cur->name, line);
        return;
    }
    require(n == 5, "no executor counters in %s mode: %s", cur->name, line);
    require(fg_tasks >= requests, "requests did not run as tasks on the foreground queue: %s",
            line);
    require(bg_polls > 0, "no background work on the background queue: %s", line);
    if (strcmp(cur->name, "callbacks") == 0)
        require(bg_polls >= bg_iterations,
                "background chunks did not each run on the background queue: %s", line);
}

/* Signal the daemon, wait for it, require exit status 0. */
static void daemon_stop(int sig)
{
    require(kill(kv.pid, sig) == 0, "kill: %s", strerror(errno));
    int status = 0;
    int64_t deadline = test_now_ms() + HANG_MS;
    for (;;) {
        pid_t r = waitpid(kv.pid, &status, WNOHANG);
        if (r == kv.pid)
            break;
        require(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        require(test_now_ms() < deadline, "kvd still running after signal %d; stderr: %s", sig,
                child_stderr(&kv));
        poll(NULL, 0, 5);
    }
    kv.pid = -1;
    require(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kvd ended with %s %d; stderr: %s",
            WIFEXITED(status) ? "status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), child_stderr(&kv));
    check_counters();
}

static const char *last_arg(const char **argv)
{
    const char *last = "";
    for (; *argv; argv++)
        last = *argv;
    return last;
}

/* Run curl with argv (argv[0] is replaced by the path); its stdout goes
 * to out. Requires exit status 0. */
static void curl(char *out, size_t cap, const char **argv)
{
    int pfd[2];
    require(pipe2(pfd, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    require(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(pfd[1], STDOUT_FILENO) < 0)
            _exit(126);
        argv[0] = curl_path;
        execv(curl_path, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    int status;
    pid_t waited;
    collect_child(pid, pfd[0], out, cap, &status, &waited);
    require(waited == pid, "waitpid: %s", strerror(errno));
    require(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "curl %s failed (status %d); output: %s; kvd stderr: %s", last_arg(argv),
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, child_stderr(&kv));
}

static const char *url(const char *path)
{
    static char buf[8][512];
    static int next;
    char *u = buf[next++ % 8];
    snprintf(u, sizeof buf[0], "http://127.0.0.1:%d%s", kv.port, path);
    return u;
}

/* One request: "<body> <code>" in out. */
static void request(char *out, size_t cap, const char *method, const char *path,
                    const char *data)
{
    const char *argv[16] = {"curl", "-s", "-S", "--max-time", "20", "-w", " %{http_code}",
                            "-X", method};
    int n = 9;
    if (data) {
        argv[n++] = "--data-binary";
        argv[n++] = data;
    }
    argv[n++] = url(path);
    argv[n] = NULL;
    curl(out, cap, argv);
}

static int code_of(const char *out)
{
    const char *sp = strrchr(out, ' ');
    return sp ? atoi(sp + 1) : -1;
}

/* A raw TCP connection to the daemon (small receive buffer: a big reply
 * cannot be flushed to it while nobody reads). */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    require(fd >= 0, "socket: %s", strerror(errno));
    int small = 4096;
    require(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0, "SO_RCVBUF: %s",
            strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)kv.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    require(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "connect: %s",
            strerror(errno));
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        require(n > 0 || errno == EINTR, "write: %s", strerror(errno));
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
}

/* Wait until fd is readable (the reply has started), within the guard. */
static void raw_wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, HANG_MS);
    while (r < 0 && errno == EINTR);
    require(r == 1, "no reply from kvd; stderr: %s", child_stderr(&kv));
}

/* Close with SO_LINGER 0: the kernel sends a reset, not a FIN. */
static void raw_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    require(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER: %s",
            strerror(errno));
    close(fd);
}

/* Was issue 17: kvd counted a request out in evhttp's completion
 * callback, which never runs when the client resets the connection
 * before the reply is flushed; after that SIGTERM waited the whole 5 s
 * drain and printed "N requests still in flight". Clients GET a 1 MiB
 * value (more than a reader that does not read can take), wait for the
 * reply to start, and reset. Then SIGTERM must end kvd well within the
 * drain (2 s: the drain is 5 s), without that message. */
#define NRESET 4
START_TEST(sigterm_after_clients_reset_mid_reply_exits_without_waiting)
{
    daemon_start(&modes[_i]);
    size_t vlen = 1u << 20; /* MAX_BODY */
    char *val = malloc(vlen);
    require(val != NULL, "malloc");
    memset(val, 'v', vlen);
    char head[256];
    int fd = raw_connect();
    int hl = snprintf(head, sizeof head,
                      "PUT /kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      vlen);
    raw_send(fd, head, (size_t)hl);
    raw_send(fd, val, vlen);
    char buf[256];
    raw_wait_readable(fd);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    require(n > 0, "no reply to the PUT");
    buf[n] = '\0';
    require(strstr(buf, " 201 ") != NULL, "PUT failed: %s", buf);
    close(fd);
    free(val);

    int fds[NRESET];
    static const char get[] = "GET /kv/big HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < NRESET; i++) {
        fds[i] = raw_connect();
        raw_send(fds[i], get, sizeof get - 1);
    }
    for (int i = 0; i < NRESET; i++) {
        raw_wait_readable(fds[i]); /* the reply is under way, not flushed */
        raw_reset(fds[i]);
    }
    poll(NULL, 0, 50); /* let kvd see the resets */
    int64_t t0 = test_now_ms();
    daemon_stop(SIGTERM);
    int64_t took = test_now_ms() - t0;
    require(strstr(child_stderr(&kv), "still in flight") == NULL,
            "kvd counted reset requests as in flight: %s", child_stderr(&kv));
    require(took < 2000, "kvd took %lld ms to stop (the drain is 5 s); stderr: %s",
            (long long)took, child_stderr(&kv));
}
END_TEST

START_TEST(put_then_get_returns_the_value)
{
    char out[4096], val[64];
    daemon_start(&modes[_i]);
    snprintf(val, sizeof val, "value-%d-%d", (int)getpid(), _i);
    request(out, sizeof out, "PUT", "/kv/alpha", val);
    ck_assert_int_eq(code_of(out), 201);
    request(out, sizeof out, "GET", "/kv/alpha", NULL);
    char want[128];
    snprintf(want, sizeof want, "%s 200", val);
    ck_assert_str_eq(out, want);
    request(out, sizeof out, "PUT", "/kv/alpha", "second");
    ck_assert_int_eq(code_of(out), 204); /* replaced */
    request(out, sizeof out, "GET", "/kv/alpha", NULL);
    ck_assert_str_eq(out, "second 200");
    daemon_stop(SIGTERM);
}
END_TEST

START_TEST(delete_then_get_is_404)
{
    char out[4096];
    daemon_start(&modes[_i]);
    request(out, sizeof out, "PUT", "/kv/doomed", "x");
    ck_assert_int_eq(code_of(out), 201);
    request(out, sizeof out, "DELETE", "/kv/doomed", NULL);
    ck_assert_int_eq(code_of(out), 204);
    request(out, sizeof out, "GET", "/kv/doomed", NULL);
    ck_assert_int_eq(code_of(out), 404);
    request(out, sizeof out, "DELETE", "/kv/doomed", NULL);
    ck_assert_int_eq(code_of(out), 404);
    daemon_stop(SIGINT);
}
END_TEST

START_TEST(hundred_keys_round_trip)
{
    static char out[65536];
    static char vals[NKEYS][48], urls[NKEYS][128];
    static const char *argv[NKEYS * 12 + 8];
    daemon_start(&modes[_i]);
    /* One curl for the 100 PUTs (--next starts each request afresh)... */
    int n = 0;
    argv[n++] = "curl";
    for (int k = 0; k < NKEYS; k++) {
        snprintf(vals[k], sizeof vals[k], "v%d.%d.%ld", k, (int)getpid(), (long)time(NULL));
        snprintf(urls[k], sizeof urls[k], "http://127.0.0.1:%d/kv/key-%d", kv.port, k);
        if (k)
            argv[n++] = "--next";
        argv[n++] = "-s";
        argv[n++] = "-S";
        argv[n++] = "-o";
        argv[n++] = "/dev/null";
        argv[n++] = "-w";
        argv[n++] = "%{http_code}\n";
        argv[n++] = "-X";
        argv[n++] = "PUT";
        argv[n++] = "--data-binary";
        argv[n++] = vals[k];
        argv[n++] = urls[k];
    }
    argv[n] = NULL;
    curl(out, sizeof out, argv);
    int codes = 0;
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        ck_assert_str_eq(l, "201");
        codes++;
    }
    ck_assert_int_eq(codes, NKEYS);
    /* ...and one for the 100 GETs: "<value> <code>" per line. */
    n = 0;
    argv[n++] = "curl";
    argv[n++] = "-s";
    argv[n++] = "-S";
    argv[n++] = "-w";
    argv[n++] = " %{http_code}\n";
    for (int k = 0; k < NKEYS; k++)
        argv[n++] = urls[k];
    argv[n] = NULL;
    curl(out, sizeof out, argv);
    int k = 0;
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), k++) {
        ck_assert_int_lt(k, NKEYS);
        char want[64];
        snprintf(want, sizeof want, "%.47s 200", vals[k]);
        ck_assert_str_eq(l, want);
    }
    ck_assert_int_eq(k, NKEYS);
    request(out, sizeof out, "GET", "/stats", NULL);
    ck_assert_msg(strstr(out, "keys=100\n") != NULL, "stats: %s", out);
    daemon_stop(SIGTERM);
}
END_TEST

START_TEST(malformed_requests_get_400)
{
    char out[4096];
    daemon_start(&modes[_i]);
    /* A Content-Length that is not a number (evhttp refuses it). */
    const char *bad_len[] = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                             "-X", "PUT", "-H", "Content-Length: abc", "--data-binary", "x",
                             url("/kv/a"), NULL};
    curl(out, sizeof out, bad_len);
    ck_assert_str_eq(out, "400");
    /* A request line with a space inside the target. */
    const char *bad_line[] = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "--request-target", "/kv/a b", url("/"), NULL};
    curl(out, sizeof out, bad_line);
    ck_assert_str_eq(out, "400");
    /* Keys kvd refuses: empty, a byte outside [A-Za-z0-9._-], too long. */
    request(out, sizeof out, "GET", "/kv/", NULL);
    ck_assert_int_eq(code_of(out), 400);
    request(out, sizeof out, "PUT", "/kv/a%20b", "x");
    ck_assert_int_eq(code_of(out), 400);
    char longkey[300] = "/kv/";
    memset(longkey + 4, 'k', 251);
    longkey[255] = '\0';
    request(out, sizeof out, "GET", longkey, NULL);
    ck_assert_int_eq(code_of(out), 400);
    /* The daemon is still serving. */
    request(out, sizeof out, "PUT", "/kv/after", "ok");
    ck_assert_int_eq(code_of(out), 201);
    daemon_stop(SIGTERM);
}
END_TEST

/* SIGUSR1: the task dump (the background worker, runnable on queue 2,
 * with accounting) then the stats report, on stderr; the daemon goes on
 * serving. */
START_TEST(sigusr1_writes_the_task_dump_and_the_stats)
{
    char out[4096];
    daemon_start(&modes[0]); /* clockworker */
    request(out, sizeof out, "PUT", "/kv/k", "v");
    ck_assert_int_eq(code_of(out), 201);
    require(kill(kv.pid, SIGUSR1) == 0, "kill: %s", strerror(errno));
    int64_t deadline = test_now_ms() + HANG_MS;
    const char *err;
    while (!strstr((err = child_stderr(&kv)), "\nqueue 2\n") && test_now_ms() < deadline)
        poll(NULL, 0, 5);
    const char *dump = strstr(err, "clockworker tasks: ");
    require(dump != NULL, "no task dump: %s", err);
    const char *stats = strstr(dump, "clockworker stats\n");
    require(stats != NULL && strstr(stats, "\nqueue 2\n"), "no stats after the dump: %s", err);
    unsigned long live;
    require(sscanf(dump, "clockworker tasks: %lu live, accounting on\n", &live) == 1 && live >= 1,
            "title: %.80s", dump);
    /* the background worker: queue 2, runnable (it yields), polled */
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "\n  0x[0-9a-f]+ +2 runnable +[0-9]+\\.[0-9]{3} +[1-9][0-9]* "
                             "+[0-9]+\\.[0-9]{3} +[0-9]+\\.[0-9]{3} +[^ \n]+\n",
                             REG_EXTENDED),
                     0);
    char *head = strndup(dump, (size_t)(stats - dump));
    require(regexec(&re, head, 0, NULL, 0) == 0, "no runnable queue-2 task in: %s", head);
    regfree(&re);
    free(head);
    /* still serving */
    request(out, sizeof out, "GET", "/kv/k", NULL);
    ck_assert_str_eq(out, "v 200");
    daemon_stop(SIGTERM);
}
END_TEST

/* What kvd refuses besides malformed requests: other methods on /kv/
 * (405), other paths and methods other than GET on /stats (404), a body
 * over 1 MiB (413, from evhttp: the handler never sees it). */
START_TEST(other_methods_paths_and_big_bodies_are_refused)
{
    char out[4096];
    daemon_start(&modes[_i]);
    request(out, sizeof out, "POST", "/kv/a", "x");
    ck_assert_int_eq(code_of(out), 405);
    request(out, sizeof out, "GET", "/nope", NULL);
    ck_assert_int_eq(code_of(out), 404);
    request(out, sizeof out, "POST", "/stats", "x");
    ck_assert_int_eq(code_of(out), 404);
    char path[] = "/tmp/check_kvd.XXXXXX";
    int fd = mkstemp(path);
    require(fd >= 0, "mkstemp: %s", strerror(errno));
    require(ftruncate(fd, (1 << 20) + 1) == 0, "ftruncate: %s", strerror(errno));
    close(fd);
    char data[64];
    snprintf(data, sizeof data, "@%s", path);
    /* (Expect: 100-continue: the 413 comes before the body is sent) */
    const char *big[] = {"curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                         "Expect: 100-continue", "-X", "PUT", "--data-binary", data,
                         url("/kv/big"), NULL};
    curl(out, sizeof out, big);
    unlink(path);
    ck_assert_str_eq(out, "413");
    request(out, sizeof out, "GET", "/kv/big", NULL);
    ck_assert_int_eq(code_of(out), 404); /* not stored */
    daemon_stop(SIGTERM);
}
END_TEST

static Suite *kvd_suite(void)
{
    Suite *s = suite_create("kvd");
    TCase *tc = tcase_create("curl");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_loop_test(tc, put_then_get_returns_the_value, 0, NMODES);
    tcase_add_loop_test(tc, delete_then_get_is_404, 0, NMODES);
    tcase_add_loop_test(tc, hundred_keys_round_trip, 0, NMODES);
    tcase_add_loop_test(tc, malformed_requests_get_400, 0, NMODES);
    tcase_add_loop_test(tc, other_methods_paths_and_big_bodies_are_refused, 0, NMODES);
    tcase_add_loop_test(tc, sigterm_after_clients_reset_mid_reply_exits_without_waiting, 0,
                        NMODES);
    tcase_add_test(tc, sigusr1_writes_the_task_dump_and_the_stats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return run_suite(kvd_suite());
}
