/* check_http.c - the evhttp adapter (clockworker/http.h) with evhttp bound
 * on 127.0.0.1 (port 0) and a raw client socket in the same process: the
 * handler runs as a task on the chosen queue, its state starts zeroed and
 * init runs once, the reply reaches the client, a handler that ends
 * without replying (or panics) gets a 500, a client that disconnects (or
 * resets) while its task waits cancels the task (its drop runs, no reply
 * is sent), evhttp_free() and cw_executor_free() with a task in flight
 * leave nothing behind, and bad arguments are refused. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clockworker/http.h"
#include "testutil.h"

enum { Q_MAIN = 0, Q_HTTP = 7 };
#define GUARD 200000 /* loop turns without progress before a test gives up */

/* What the handlers report back (the handler arg). */
typedef struct seen {
    int inits, polls, drops, completions;
    uint32_t queue_id;    /* queue of the last poll */
    bool zeroed_at_init;  /* the state was all zero when init ran */
    char uri[128];
    char body[128];
    int reply_again;      /* what a second cw_http_reply() said */
} seen;

typedef struct hstate {
    int yields;           /* polls before replying */
    int marker;           /* set by init */
    int mode;             /* see handler_poll */
} hstate;

enum { M_REPLY = 0, M_NO_REPLY, M_WAIT_FOREVER, M_PANIC };

static void handler_init(void *state, cw_http_req *hr)
{
    hstate *s = state;
    seen *sn = cw_http_req_arg(hr);
    static const hstate zero;
    sn->zeroed_at_init = memcmp(s, &zero, sizeof zero) == 0;
    sn->inits++;
    s->marker = 42;
    const char *uri = evhttp_request_get_uri(cw_http_req_request(hr));
    if (strstr(uri, "noreply"))
        s->mode = M_NO_REPLY;
    else if (strstr(uri, "wait"))
        s->mode = M_WAIT_FOREVER;
    else if (strstr(uri, "panic"))
        s->mode = M_PANIC;
}

static cw_poll handler_poll(void *state, cw_http_req *hr, cw_cx *cx)
{
    hstate *s = state;
    seen *sn = cw_http_req_arg(hr);
    sn->polls++;
    sn->queue_id = cw_queue_id(cw_cx_queue(cx));
    ck_assert_int_eq(s->marker, 42); /* init ran first */
    switch (s->mode) {
    case M_WAIT_FOREVER:
        return CW_PENDING; /* no wake-up: only a cancel ends it */
    case M_PANIC:
        cw_panic(cx, "handler failed");
    case M_NO_REPLY:
        sn->completions++;
        return CW_READY;
    default:
        break;
    }
    if (s->yields++ < 3) { /* reply later, not in the first poll */
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    struct evhttp_request *req = cw_http_req_request(hr);
    ck_assert_ptr_nonnull(req);
    snprintf(sn->uri, sizeof sn->uri, "%s", evhttp_request_get_uri(req));
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n >= sizeof sn->body)
        n = sizeof sn->body - 1;
    evbuffer_copyout(in, sn->body, n);
    sn->body[n] = '\0';
    struct evbuffer *out = evbuffer_new();
    ck_assert_ptr_nonnull(out);
    evbuffer_add_printf(out, "served %s body=%s", sn->uri, sn->body);
    ck_assert_int_eq(cw_http_reply(hr, 200, "OK", out), 0);
    evbuffer_free(out);
    ck_assert(cw_http_req_replied(hr));
    ck_assert_ptr_null(cw_http_req_request(hr)); /* evhttp's again */
    sn->reply_again = cw_http_reply(hr, 200, "OK", NULL);
    sn->completions++;
    return CW_READY;
}

static void handler_drop(void *state)
{
    (void)state;
}

/* The drop counter needs the arg; the drop gets only the state: keep a
 * pointer to the seen struct in a static for the drop. */
static seen *g_seen;

static void counting_drop(void *state)
{
    handler_drop(state);
    if (g_seen)
        g_seen->drops++;
}

typedef struct server {
    tenv env;
    struct evhttp *http;
    int port;
    cw_http_route *route, *gen;
    seen sn;
} server;

static void server_open(server *s, bool catch_panics)
{
    memset(s, 0, sizeof *s);
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, Q_MAIN, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q_HTTP, 4), 0);
    cw_config_set_catch_panics(cfg, catch_panics);
    tenv_init(&s->env, cfg, 1);
    s->http = evhttp_new(s->env.base);
    ck_assert_ptr_nonnull(s->http);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bs);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len),
                     0);
    s->port = ntohs(sin.sin_port);
    g_seen = &s->sn;
    cw_http_handler h = {.poll = handler_poll,
                         .state_size = sizeof(hstate),
                         .init = handler_init,
                         .drop = counting_drop,
                         .arg = &s->sn};
    ck_assert_int_eq(cw_http_set_cb(s->http, "/hello", cw_executor_queue(s->env.ex, Q_HTTP), &h,
                                    &s->route),
                     0);
    ck_assert_int_eq(
        cw_http_set_gencb(s->http, cw_executor_queue(s->env.ex, Q_MAIN), &h, &s->gen), 0);
}

static void server_close(server *s)
{
    cw_http_route_free(s->route);
    cw_http_route_free(s->gen);
    if (s->http)
        evhttp_free(s->http);
    tenv_free(&s->env);
    g_seen = NULL;
}

static cw_http_route_stats route_stats(const cw_http_route *r)
{
    cw_http_route_stats st;
    ck_assert_int_eq(cw_http_route_stats_get(r, &st), 0);
    return st;
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(fd), 0);
    return fd;
}

static void client_send(int fd, const char *req)
{
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
}

/* Run the loop and read until the server closes the connection. */
static void client_read_all(server *s, int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (int guard = 0; guard < GUARD; guard++) {
        tenv_turn(&s->env);
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r == 0)
            break;
        if (r > 0)
            n += (size_t)r;
        ck_assert_uint_lt(n, cap - 1);
    }
    buf[n] = '\0';
}

/* Run the loop until *counter reaches want (bounded). */
static void turn_until(server *s, const int *counter, int want)
{
    for (int guard = 0; guard < GUARD && *counter < want; guard++)
        tenv_turn(&s->env);
    ck_assert_int_ge(*counter, want);
}

static const char *get_req(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    return buf;
}

START_TEST(handler_runs_as_a_task_on_its_queue_and_the_reply_reaches_the_client)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/hello"));
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "response: %s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "served /hello body="));
    ck_assert_uint_eq(s.sn.queue_id, Q_HTTP);
    ck_assert_int_eq(s.sn.inits, 1);
    ck_assert(s.sn.zeroed_at_init);
    ck_assert_int_eq(s.sn.polls, 4); /* it yielded three times before replying */
    ck_assert_int_eq(s.sn.reply_again, -EALREADY);
    ck_assert_int_eq(s.sn.drops, 1);
    cw_http_route_stats st = route_stats(s.route);
    ck_assert_uint_eq(st.requests, 1);
    ck_assert_uint_eq(st.replied, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_uint_eq(st.auto_500 + st.gone + st.refused, 0);
    ck_assert_uint_eq(route_stats(s.gen).requests, 0); /* the path route took it */
    server_close(&s);
}
END_TEST

START_TEST(generic_route_serves_other_paths_and_sees_the_body)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, "PUT /other/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                    "Content-Length: 5\r\n\r\nvalue");
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "response: %s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "served /other/x body=value"));
    ck_assert_uint_eq(s.sn.queue_id, Q_MAIN);
    ck_assert_uint_eq(route_stats(s.gen).replied, 1);
    ck_assert_uint_eq(route_stats(s.route).requests, 0);
    server_close(&s);
}
END_TEST

/* A generic route replaced by a newer one: freeing the old one leaves the
 * new one serving (evhttp has one generic callback). */
START_TEST(freeing_a_replaced_generic_route_keeps_its_successor)
{
    server s;
    server_open(&s, false);
    cw_http_handler h = {.poll = handler_poll,
                         .state_size = sizeof(hstate),
                         .init = handler_init,
                         .drop = counting_drop,
                         .arg = &s.sn};
    cw_http_route *newer;
    ck_assert_int_eq(
        cw_http_set_gencb(s.http, cw_executor_queue(s.env.ex, Q_HTTP), &h, &newer), 0);
    cw_http_route_free(s.gen); /* the replaced one */
    s.gen = newer;
    int fd = client_connect(s.port);
    client_send(fd, get_req("/other/y"));
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "response: %s", resp);
    ck_assert_uint_eq(s.sn.queue_id, Q_HTTP);
    ck_assert_uint_eq(route_stats(newer).replied, 1);
    server_close(&s);
}
END_TEST

START_TEST(keep_alive_connection_serves_requests_one_after_another)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int guard = 0; guard < GUARD && s.sn.drops < 1; guard++)
        tenv_turn(&s.env);
    client_send(fd, get_req("/hello"));
    char resp[8192];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    const char *second = strstr(resp + 1, "HTTP/1.1 200 OK");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK", 15) == 0 && second, "responses: %s", resp);
    ck_assert_int_eq(s.sn.drops, 2);
    ck_assert_uint_eq(route_stats(s.route).replied, 2);
    server_close(&s);
}
END_TEST

START_TEST(task_that_ends_without_replying_gets_a_500)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/noreply"));
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 500", 12) == 0, "response: %s", resp);
    ck_assert_int_eq(s.sn.completions, 1);
    ck_assert_int_eq(s.sn.drops, 1);
    cw_http_route_stats st = route_stats(s.gen);
    ck_assert_uint_eq(st.auto_500, 1);
    ck_assert_uint_eq(st.replied, 0);
    server_close(&s);
}
END_TEST

START_TEST(panicking_handler_gets_a_500_and_its_drop_runs)
{
    server s;
    server_open(&s, true);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/panic"));
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 500", 12) == 0, "response: %s", resp);
    ck_assert_int_eq(s.sn.drops, 1);
    ck_assert_uint_eq(stats_of(s.env.ex).tasks_panicked, 1);
    server_close(&s);
}
END_TEST

static void disconnect_while_waiting(bool reset)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/wait"));
    turn_until(&s, &s.sn.polls, 1);
    turns(&s.env, 10);
    ck_assert_int_eq(s.sn.drops, 0); /* it holds the request, waiting */
    ck_assert_uint_eq(route_stats(s.gen).in_flight, 1);
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    }
    close(fd);
    turn_until(&s, &s.sn.drops, 1);
    ck_assert_int_eq(s.sn.drops, 1);
    ck_assert_int_eq(s.sn.completions, 0); /* cancelled, not completed */
    cw_http_route_stats st = route_stats(s.gen);
    ck_assert_uint_eq(st.gone, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_uint_eq(st.replied + st.auto_500, 0); /* no reply was sent */
    ck_assert_uint_eq(stats_of(s.env.ex).tasks_cancelled, 1);
    ck_assert_uint_eq(stats_of(s.env.ex).tasks_live, 0);
    /* The server is still fine. */
    fd = client_connect(s.port);
    client_send(fd, get_req("/hello"));
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp);
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK", 15) == 0, "response: %s", resp);
    server_close(&s);
}

START_TEST(client_disconnect_cancels_the_task_and_runs_its_drop)
{
    disconnect_while_waiting(false);
}
END_TEST

START_TEST(client_reset_cancels_the_task_and_runs_its_drop)
{
    disconnect_while_waiting(true);
}
END_TEST

START_TEST(evhttp_free_with_a_task_in_flight_cancels_it)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/wait"));
    turn_until(&s, &s.sn.polls, 1);
    cw_http_route_free(s.route);
    cw_http_route_free(s.gen); /* the running task keeps its route alive */
    s.route = s.gen = NULL;
    evhttp_free(s.http); /* closes the connection: the task is cancelled */
    s.http = NULL;
    ck_assert_int_eq(s.sn.drops, 1);
    ck_assert_uint_eq(stats_of(s.env.ex).tasks_live, 0);
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EAGAIN)
        ;
    ck_assert_int_eq(n, 0); /* closed, no reply */
    close(fd);
    server_close(&s);
}
END_TEST

START_TEST(executor_free_with_a_task_in_flight_answers_500)
{
    server s;
    server_open(&s, false);
    int fd = client_connect(s.port);
    client_send(fd, get_req("/wait"));
    turn_until(&s, &s.sn.polls, 1);
    cw_executor_free(s.env.ex); /* cancels: the drop runs, a 500 is queued */
    s.env.ex = NULL;
    ck_assert_int_eq(s.sn.drops, 1);
    ck_assert_uint_eq(route_stats(s.gen).auto_500, 1);
    char resp[4096];
    client_read_all(&s, fd, resp, sizeof resp); /* evhttp sends it */
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 500", 12) == 0, "response: %s", resp);
    server_close(&s);
}
END_TEST

static cw_poll never_poll(void *state, cw_http_req *hr, cw_cx *cx)
{
    (void)state;
    (void)hr;
    (void)cx;
    return CW_READY;
}

START_TEST(bad_arguments_are_refused)
{
    server s;
    server_open(&s, false);
    cw_queue *q = cw_executor_queue(s.env.ex, Q_MAIN);
    cw_http_handler h = {.poll = never_poll};
    cw_http_handler nopoll = {.poll = NULL};
    cw_http_handler huge = {.poll = never_poll, .state_size = (size_t)1 << 31};
    cw_http_route *r = (cw_http_route *)&s; /* must stay untouched */
    ck_assert_int_eq(cw_http_set_cb(NULL, "/a", q, &h, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_cb(s.http, NULL, q, &h, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/a", NULL, &h, &r), -ENOENT);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/a", q, NULL, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/a", q, &nopoll, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/a", q, &huge, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/a", q, &h, NULL), -EINVAL);
    ck_assert_int_eq(cw_http_set_gencb(NULL, q, &h, &r), -EINVAL);
    ck_assert_int_eq(cw_http_set_gencb(s.http, NULL, &h, &r), -ENOENT);
    ck_assert_int_eq(cw_http_set_gencb(s.http, q, &nopoll, &r), -EINVAL);
    ck_assert_ptr_eq(r, (cw_http_route *)&s);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/hello", q, &h, &r), -EEXIST); /* taken */
    ck_assert_ptr_eq(r, (cw_http_route *)&s);
    ck_assert_int_eq(cw_http_route_stats_get(NULL, NULL), -EINVAL);
    cw_http_route_free(NULL);
    ck_assert_ptr_null(cw_http_req_request(NULL));
    ck_assert_ptr_null(cw_http_req_arg(NULL));
    ck_assert(!cw_http_req_replied(NULL));
    ck_assert_int_eq(cw_http_reply(NULL, 200, "OK", NULL), -EINVAL);
    ck_assert_int_eq(cw_http_send_error(NULL, 404, NULL), -EINVAL);
    /* A freed path route frees the path: it can be registered again. */
    cw_http_route_free(s.route);
    ck_assert_int_eq(cw_http_set_cb(s.http, "/hello", q, &h, &s.route), 0);
    server_close(&s);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, handler_runs_as_a_task_on_its_queue_and_the_reply_reaches_the_client);
    tcase_add_test(tc, generic_route_serves_other_paths_and_sees_the_body);
    tcase_add_test(tc, freeing_a_replaced_generic_route_keeps_its_successor);
    tcase_add_test(tc, keep_alive_connection_serves_requests_one_after_another);
    tcase_add_test(tc, task_that_ends_without_replying_gets_a_500);
    tcase_add_test(tc, panicking_handler_gets_a_500_and_its_drop_runs);
    tcase_add_test(tc, client_disconnect_cancels_the_task_and_runs_its_drop);
    tcase_add_test(tc, client_reset_cancels_the_task_and_runs_its_drop);
    tcase_add_test(tc, evhttp_free_with_a_task_in_flight_cancels_it);
    tcase_add_test(tc, executor_free_with_a_task_in_flight_answers_500);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return run_suite(http_suite());
}
