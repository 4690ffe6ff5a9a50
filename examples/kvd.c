/* kvd.c - a small key-value HTTP daemon on one thread: foreground requests
 * stay fast while background compaction/scrubbing work uses the rest of
 * the CPU.
 *
 *   GET    /kv/<key>   200 with the value, or 404
 *   PUT    /kv/<key>   store the body: 201 (new) or 204 (replaced)
 *   DELETE /kv/<key>   204, or 404
 *   GET    /stats      `requests=<n> bg_iterations=<n> keys=<n>`
 * A key is 1 to 250 bytes of [A-Za-z0-9._-]; anything else is 400, as is
 * a request evhttp cannot parse. Other methods on /kv/ get 405, other
 * paths 404; bodies over 1 MiB get 413.
 *
 * Three modes, same work:
 * - default (clockworker): every request is a task on a foreground queue
 *   (clockworker/http.h: cw_http_set_gencb()), and --bg-tasks background
 *   tasks on a background queue do the scrubbing in chunks, yielding
 *   when the scheduler says so (CW_YIELD_MAYBE). --weights fg:bg sets the
 *   two queues' weights.
 * - --plain: what a libevent daemon does today: evhttp callbacks answer
 *   at once, and each background worker is a libevent timer with a zero
 *   timeout that does one chunk and re-arms itself (so libevent polls I/O
 *   between chunks).
 * - --callbacks: the --plain daemon moved onto the scheduler with the
 *   callback API (clockworker/event.h, cw_evhttp_set_gencb() in
 *   clockworker/http.h): the same two callbacks, plain_cb and plain_bg_cb,
 *   registered with the cw_ calls instead of libevent's, so the request
 *   callback runs on the foreground queue and the background timers' on
 *   the background queue, weighted by --weights. Only those calls differ
 *   from --plain (main, on_signal and the clean-up at exit).
 * Each request does --work units of CPU work (a stand-in for parsing,
 * checksums, ...); each background chunk --chunk units. The background
 * work alone saturates the CPU.
 *
 * Usage: kvd [--port N] [--bg-tasks N] [--weights F:B] [--plain | --callbacks]
 *            [--work N] [--chunk N]
 * It prints one line on stdout once it accepts connections:
 *   kvd: listening on 127.0.0.1:<port> (<mode>, ...)
 * SIGINT or SIGTERM shut it down gracefully: it stops accepting, drops
 * the background work, lets the requests in flight finish (their replies
 * flushed; at most 5 s), frees everything, prints its counters on stderr
 * and exits 0. The counters line,
 *   kvd: stats: requests=<n> bg_iterations=<n> keys=<n>
 * ends, in the modes with an executor, with the scheduler's view:
 * ` fg_tasks=<n> bg_polls=<n>`, the tasks spawned on the foreground
 * queue (one per request) and the polls on the background queue.
 * SIGUSR1 writes the task dump and the stats report
 * (cw_executor_dump_tasks(), cw_executor_dump_stats()) to stderr, in the
 * modes with an executor; task accounting is on for it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <clockworker.h>
#include "clockworker/event.h"
#include "clockworker/http.h"

enum { Q_FG = 1, Q_BG = 2 };
#define MAX_KEY 250
#define MAX_BODY (1 << 20)
#define NBUCKETS 4096
#define SCRATCH 4096
#define DRAIN_POLL_US 10000     /* shutdown: check in-flight requests every 10 ms */
#define DRAIN_MAX_TICKS 500     /* ... for at most 5 s */

/* ---- the store: a chained hash table -------------------------------------- */

typedef struct entry {
    struct entry *next;
    char *key;
    char *val;
    size_t len;
} entry;

typedef struct store {
    entry *b[NBUCKETS];
    size_t n;
} store;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static entry **store_find(store *st, const char *key)
{
    entry **p = &st->b[hash(key) % NBUCKETS];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

/* 1 created, 0 replaced, -1 out of memory. */
static int store_put(store *st, const char *key, struct evbuffer *body)
{
    size_t len = evbuffer_get_length(body);
    char *val = malloc(len ? len : 1);
    if (!val)
        return -1;
    evbuffer_remove(body, val, len);
    entry **p = store_find(st, key);
    if (*p) {
        free((*p)->val);
        (*p)->val = val;
        (*p)->len = len;
        return 0;
    }
    entry *e = malloc(sizeof *e);
    char *k = strdup(key);
    if (!e || !k) {
        free(e);
        free(k);
        free(val);
        return -1;
    }
    *e = (entry){.key = k, .val = val, .len = len};
    *p = e;
    st->n++;
    return 1;
}

static bool store_del(store *st, const char *key)
{
    entry **p = store_find(st, key);
    entry *e = *p;
    if (!e)
        return false;
    *p = e->next;
    free(e->key);
    free(e->val);
    free(e);
    st->n--;
    return true;
}

static void store_free(store *st)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        while (st->b[i]) {
            entry *e = st->b[i];
            st->b[i] = e->next;
            free(e->key);
            free(e->val);
            free(e);
        }
    st->n = 0;
}

/* ---- the daemon ------------------------------------------------------------ */

typedef struct kvd {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    store st;
    bool plain, callbacks;
    bool stopping;
    long work, chunk;
    unsigned long long requests, bg_iterations;
    long in_flight;             /* requests whose reply evhttp has not flushed */
    struct flight *flights;     /* the requests counted in in_flight */
    int drain_ticks;
    struct event *drain_ev;     /* shutdown: waits for in_flight == 0 */
    uint64_t sink;              /* keeps the CPU work observable */
    unsigned char scratch[SCRATCH];
    /* clockworker mode */
    cw_executor *ex;
    cw_http_route *route;
    cw_join **bg_joins;
    /* plain mode */
    struct event **bg_evs;
    long nbg;
    /* callbacks mode: --plain's background timers, on the bg queue */
    cw_event **bg_cevs;
    /* plain and callbacks modes: how plain_bg_cb re-arms its timer,
     * event_add() or cw_event_add() */
    int (*bg_add)(void *ev, const struct timeval *tv);
} kvd;

/* n units of CPU work over the scratch buffer. */
static uint64_t burn(kvd *d, uint64_t x, long n)
{
    for (long i = 0; i < n; i++) {
        x ^= d->scratch[(size_t)i & (SCRATCH - 1)];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > MAX_KEY)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Serve one request into out; returns the status code and sets *reason.
 * Shared by both modes. */
static int serve(kvd *d, struct evhttp_request *req, struct evbuffer *out, const char **reason)
{
    d->requests++;
    d->sink ^= burn(d, d->requests, d->work);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path) {
        *reason = "Bad Request";
        return 400;
    }
    if (strcmp(path, "/stats") == 0 && cmd == EVHTTP_REQ_GET) {
        evbuffer_add_printf(out, "requests=%llu bg_iterations=%llu keys=%zu\n", d->requests,
                            d->bg_iterations, d->st.n);
        *reason = "OK";
        return 200;
    }
    if (strncmp(path, "/kv/", 4) != 0) {
        *reason = "Not Found";
        return 404;
    }
    const char *key = path + 4;
    if (!key_ok(key)) {
        *reason = "Bad Request";
        return 400;
    }
    entry *e;
    switch (cmd) {
    case EVHTTP_REQ_GET:
        e = *store_find(&d->st, key);
        if (!e) {
            *reason = "Not Found";
            return 404;
        }
        evbuffer_add(out, e->val, e->len);
        *reason = "OK";
        return 200;
    case EVHTTP_REQ_PUT:
        switch (store_put(&d->st, key, evhttp_request_get_input_buffer(req))) {
        case 1:
            *reason = "Created";
            return 201;
        case 0:
            *reason = "No Content";
            return 204;
        default:
            *reason = "Insufficient Storage";
            return 507;
        }
    case EVHTTP_REQ_DELETE:
        if (!store_del(&d->st, key)) {
            *reason = "Not Found";
            return 404;
        }
        *reason = "No Content";
        return 204;
    default:
        *reason = "Method Not Allowed";
        return 405;
    }
}

/*
 * Counting requests in flight: from the hand-over of the reply to evhttp
 * until the reply is flushed. evhttp calls a request's completion
 * callback only then: when the client resets the connection first,
 * evhttp frees the request with the connection and never calls it. So
 * each counted request also has the connection's close callback, which
 * evhttp_connection_free() calls: whichever of the two comes first
 * counts it out (the completion clears the close callback). evhttp
 * serves one request per connection at a time, so the connection's one
 * close callback slot is free for it: clockworker's adapter (cw_http)
 * uses it only while a task holds the request, and gives it back when
 * the task replies. libevent 2.1 has no per-request free callback.
 */
typedef struct flight {
    struct flight *next; /* kvd.flights: freed at exit if never counted out */
    kvd *d;
    struct evhttp_connection *evcon;
} flight;

static void flight_end(flight *f)
{
    flight **pp = &f->d->flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    f->d->in_flight--;
    free(f);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    flight_end(arg); /* the reply will never be flushed */
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    flight *f = arg;
    (void)req;
    evhttp_connection_set_closecb(f->evcon, NULL, NULL);
    flight_end(f);
}

/* The reply to req, on connection evcon, has been handed to evhttp: count
 * the request until the reply is flushed or the connection closes. Not
 * counted without a connection (the client is gone: evhttp frees the
 * request in the reply call) or without memory for the record. */
static void flight_begin(kvd *d, struct evhttp_request *req, struct evhttp_connection *evcon)
{
    flight *f;
    if (!evcon || !(f = calloc(1, sizeof *f)))
        return;
    f->d = d;
    f->evcon = evcon;
    f->next = d->flights;
    d->flights = f;
    d->in_flight++;
    evhttp_connection_set_closecb(evcon, on_conn_close, f);
    evhttp_request_set_on_complete_cb(req, on_complete, f);
}

/* ---- clockworker mode: a task per request, background tasks ---------------- */

typedef struct req_task {
    bool replied;
} req_task;

static cw_poll req_poll(void *state, cw_http_req *hr, cw_cx *cx)
{
    req_task *t = state;
    kvd *d = cw_http_req_arg(hr);
    struct evhttp_request *req = cw_http_req_request(hr);
    const char *reason = "Internal Server Error";
    (void)cx;
    /* (read before the reply: once the reply is handed over, req may be
     * freed if the client has gone) */
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct evbuffer *out = evbuffer_new();
    int code = out ? serve(d, req, out, &reason) : 500;
    int err = code < 300 && out ? cw_http_reply(hr, code, reason, out)
                                : cw_http_send_error(hr, code, reason);
    if (err == 0) /* the adapter gave the close callback back: count it */
        flight_begin(d, req, evcon);
    t->replied = true;
    evbuffer_free(out);
    return CW_READY;
}

static void req_drop(void *state)
{
    (void)state; /* nothing owned: the adapter frees the request */
}

typedef struct bg_task {
    cw_pt pt;
    kvd *k;
    uint64_t x;
} bg_task;

static cw_poll bg_poll(void *state, cw_cx *cx)
{
    bg_task *b = state;
    CW_BEGIN(&b->pt);
    for (;;) {
        b->x = burn(b->k, b->x, b->k->chunk);
        b->k->sink ^= b->x;
        b->k->bg_iterations++;
        CW_YIELD_MAYBE(&b->pt, cx);
    }
    CW_END(&b->pt);
}

/* ---- plain mode: evhttp callbacks, background work as libevent events ------ */

static void plain_cb(struct evhttp_request *req, void *arg)
{
    kvd *d = arg;
    const char *reason = "Internal Server Error";
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    flight_begin(d, req, evcon); /* before the reply, which may free req */
    struct evbuffer *out = evbuffer_new();
    int code = out ? serve(d, req, out, &reason) : 500;
    if (code < 300 && out)
        evhttp_send_reply(req, code, reason, out);
    else
        evhttp_send_error(req, code, reason);
    evbuffer_free(out);
}

static const struct timeval zero_tv = {0, 0};

static kvd g_kvd; /* large (the store's buckets): not on the stack */

static void plain_bg_cb(evutil_socket_t fd, short what, void *arg)
{
    kvd *d = &g_kvd;
    (void)fd;
    (void)what;
    d->sink ^= burn(d, d->sink + 1, d->chunk);
    d->bg_iterations++;
    /* Re-arm with a zero timeout: libevent polls I/O before it fires. */
    d->bg_add(arg, &zero_tv);
}

static int add_libevent(void *ev, const struct timeval *tv)
{
    return event_add(ev, tv);
}

static int add_cw(void *ev, const struct timeval *tv)
{
    return cw_event_add(ev, tv);
}

/* ---- shutdown -------------------------------------------------------------- */

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    kvd *d = arg;
    (void)fd;
    (void)what;
    /* In flight: replies not flushed yet (on_complete), and in
     * clockworker mode also requests whose task has not replied yet, run
     * or not (the route counts them from their arrival). */
    long waiting = d->in_flight;
    cw_http_route_stats rs;
    if (d->route && cw_http_route_stats_get(d->route, &rs) == 0)
        waiting += (long)rs.in_flight;
    /* In callbacks mode, also requests waiting for plain_cb to run: each
     * is a task on the foreground queue until then. */
    struct cw_queue_stats qs;
    if (d->callbacks && cw_queue_stats(cw_executor_queue(d->ex, Q_FG), &qs) == 0)
        waiting += (long)(qs.tasks_spawned - qs.tasks_completed - qs.tasks_cancelled -
                          qs.tasks_panicked);
    if (waiting <= 0 || ++d->drain_ticks >= DRAIN_MAX_TICKS) {
        if (waiting > 0)
            fprintf(stderr, "kvd: %ld requests still in flight, closing anyway\n", waiting);
        event_base_loopbreak(d->base);
        return;
    }
    struct timeval tv = {0, DRAIN_POLL_US};
    event_add(d->drain_ev, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    kvd *d = arg;
    (void)what;
    if (d->stopping)
        return;
    d->stopping = true;
    fprintf(stderr, "kvd: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* Stop accepting; connections already open stay until evhttp_free. */
    evhttp_del_accept_socket(d->http, d->bound);
    d->bound = NULL;
    /* Drop the background work. */
    for (long i = 0; i < d->nbg; i++) {
        if (d->bg_joins && d->bg_joins[i])
            cw_join_abort(d->bg_joins[i]);
        if (d->bg_evs && d->bg_evs[i])
            event_del(d->bg_evs[i]);
        if (d->bg_cevs && d->bg_cevs[i])
            cw_event_del(d->bg_cevs[i]);
    }
    /* Let the requests in flight finish, then leave the loop. */
    on_drain_tick(-1, 0, d);
}

/* SIGUSR1: what every task is doing, then the counters (a libevent
 * signal event: this runs in the loop, on the executor thread). */
static void on_dump(evutil_socket_t sig, short what, void *arg)
{
    kvd *d = arg;
    (void)sig;
    (void)what;
    if (d->ex) {
        cw_executor_dump_tasks(d->ex, stderr);
        cw_executor_dump_stats(d->ex, stderr);
    }
}

/* ---- main ------------------------------------------------------------------ */

static int parse_num(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno != 0 || end == s || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "kvd: %s wants an integer from 0 to %ld\n", opt, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kvd [--port N] [--bg-tasks N] [--weights F:B] [--plain | --callbacks]\n"
               "           [--work N] [--chunk N]\n"
               "  --port N       TCP port on 127.0.0.1 (default 0: any free port)\n"
               "  --bg-tasks N   background workers (default 2)\n"
               "  --weights F:B  foreground:background queue weights (default 100:1)\n"
               "  --plain        plain evhttp callbacks and libevent background events\n"
               "  --callbacks    --plain's callbacks, run on the queues (clockworker/event.h)\n"
               "  --work N       CPU work units per request (default 2000)\n"
               "  --chunk N      CPU work units per background chunk (default 20000)\n");
}

int main(int argc, char **argv)
{
    long port = 0, nbg = 2, wfg = 100, wbg = 1, work = 2000, chunk = 20000;
    bool plain = false, callbacks = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0) {
            if (parse_num(a, v, 65535, &port) != 0)
                return EXIT_FAILURE;
            i++;
        } else if (strcmp(a, "--bg-tasks") == 0) {
            if (parse_num(a, v, 1000, &nbg) != 0)
                return EXIT_FAILURE;
            i++;
        } else if (strcmp(a, "--work") == 0) {
            if (parse_num(a, v, 1000000000, &work) != 0)
                return EXIT_FAILURE;
            i++;
        } else if (strcmp(a, "--chunk") == 0) {
            if (parse_num(a, v, 1000000000, &chunk) != 0)
                return EXIT_FAILURE;
            i++;
        } else if (strcmp(a, "--weights") == 0) {
            char extra;
            if (!v || sscanf(v, "%ld:%ld%c", &wfg, &wbg, &extra) != 2 || wfg < 1 || wbg < 1 ||
                wfg > 1000000 || wbg > 1000000) {
                fprintf(stderr, "kvd: --weights wants F:B, two integers from 1 to 1000000\n");
                return EXIT_FAILURE;
            }
            i++;
        } else if (strcmp(a, "--plain") == 0) {
            plain = true;
        } else if (strcmp(a, "--callbacks") == 0) {
            callbacks = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_SUCCESS;
        } else {
            usage(stderr);
            return EXIT_FAILURE;
        }
    }
    if (plain && callbacks) {
        fprintf(stderr, "kvd: --plain and --callbacks exclude each other\n");
        return EXIT_FAILURE;
    }
    signal(SIGPIPE, SIG_IGN);

#define d g_kvd
    d.plain = plain;
    d.callbacks = callbacks;
    d.work = work;
    d.chunk = chunk;
    d.nbg = nbg;
    for (size_t i = 0; i < SCRATCH; i++)
        d.scratch[i] = (unsigned char)(i * 131 + 7);
    int status = EXIT_FAILURE, err;
    cw_config *cfg = NULL;
    struct event *sigint_ev = NULL, *sigterm_ev = NULL, *sigusr1_ev = NULL;

    d.base = event_base_new();
    d.http = d.base ? evhttp_new(d.base) : NULL;
    if (!d.http) {
        fprintf(stderr, "kvd: cannot create the event base or evhttp\n");
        goto out;
    }
    evhttp_set_max_body_size(d.http, MAX_BODY);
    evhttp_set_allowed_methods(d.http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    d.bound = evhttp_bind_socket_with_handle(d.http, "127.0.0.1", (ev_uint16_t)port);
    if (!d.bound) {
        fprintf(stderr, "kvd: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        goto out;
    }
    d.drain_ev = evtimer_new(d.base, on_drain_tick, &d);
    sigint_ev = evsignal_new(d.base, SIGINT, on_signal, &d);
    sigterm_ev = evsignal_new(d.base, SIGTERM, on_signal, &d);
    sigusr1_ev = evsignal_new(d.base, SIGUSR1, on_dump, &d);
    if (!d.drain_ev || !sigint_ev || !sigterm_ev || !sigusr1_ev ||
        event_add(sigint_ev, NULL) != 0 || event_add(sigterm_ev, NULL) != 0 ||
        event_add(sigusr1_ev, NULL) != 0) {
        fprintf(stderr, "kvd: cannot set up signal handling\n");
        goto out;
    }

    if (!plain) { /* clockworker and --callbacks: the executor, two queues */
        cfg = cw_config_new();
        if (!cfg)
            goto oom;
        cw_config_set_task_accounting(cfg, true); /* for the SIGUSR1 dump */
        if ((err = cw_config_add_queue(cfg, Q_FG, (uint32_t)wfg)) != 0 ||
            (err = cw_config_add_queue(cfg, Q_BG, (uint32_t)wbg)) != 0 ||
            (err = cw_executor_new(d.base, cfg, &d.ex)) != 0) {
            fprintf(stderr, "kvd: executor: %s\n", cw_strerror(err));
            goto out;
        }
    }
    if (plain) {
        evhttp_set_gencb(d.http, plain_cb, &d);
        d.bg_add = add_libevent;
        d.bg_evs = calloc((size_t)nbg + 1, sizeof *d.bg_evs);
        if (!d.bg_evs)
            goto oom;
        for (long i = 0; i < nbg; i++) {
            d.bg_evs[i] = evtimer_new(d.base, plain_bg_cb, event_self_cbarg());
            if (!d.bg_evs[i] || event_add(d.bg_evs[i], &zero_tv) != 0)
                goto oom;
        }
    } else if (callbacks) {
        /* --plain's setup, each call that registers a callback replaced
         * by the cw_ call that runs the callback on a queue */
        cw_queue *fg = cw_executor_queue(d.ex, Q_FG), *bg = cw_executor_queue(d.ex, Q_BG);
        if ((err = cw_evhttp_set_gencb(fg, d.http, plain_cb, &d)) != 0) {
            fprintf(stderr, "kvd: cw_evhttp_set_gencb: %s\n", cw_strerror(err));
            goto out;
        }
        d.bg_add = add_cw;
        d.bg_cevs = calloc((size_t)nbg + 1, sizeof *d.bg_cevs);
        if (!d.bg_cevs)
            goto oom;
        for (long i = 0; i < nbg; i++) {
            d.bg_cevs[i] = cw_evtimer_new(bg, plain_bg_cb, event_self_cbarg());
            if (!d.bg_cevs[i] || cw_evtimer_add(d.bg_cevs[i], &zero_tv) != 0)
                goto oom;
        }
    } else {
        cw_http_handler h = {.poll = req_poll,
                             .state_size = sizeof(req_task),
                             .drop = req_drop,
                             .arg = &d};
        if ((err = cw_http_set_gencb(d.http, cw_executor_queue(d.ex, Q_FG), &h, &d.route)) != 0) {
            fprintf(stderr, "kvd: cw_http_set_gencb: %s\n", cw_strerror(err));
            goto out;
        }
        d.bg_joins = calloc((size_t)nbg + 1, sizeof *d.bg_joins);
        if (!d.bg_joins)
            goto oom;
        for (long i = 0; i < nbg; i++) {
            bg_task b = {.k = &d, .x = (uint64_t)i * 2654435761u + 1};
            if ((err = cw_spawn(cw_executor_queue(d.ex, Q_BG), bg_poll, &b, sizeof b, NULL,
                                &d.bg_joins[i])) != 0) {
                fprintf(stderr, "kvd: cw_spawn: %s\n", cw_strerror(err));
                goto out;
            }
        }
    }

    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    if (getsockname(evhttp_bound_socket_get_fd(d.bound), (struct sockaddr *)&sin, &slen) != 0) {
        perror("kvd: getsockname");
        goto out;
    }
    printf("kvd: listening on 127.0.0.1:%u (%s, weights %ld:%ld, %ld bg tasks, work %ld, "
           "chunk %ld)\n",
           (unsigned)ntohs(sin.sin_port),
           plain ? "plain" : callbacks ? "callbacks" : "clockworker", wfg, wbg, nbg, work, chunk);
    fflush(stdout);

    if (event_base_dispatch(d.base) < 0) {
        fprintf(stderr, "kvd: event_base_dispatch failed\n");
        goto out;
    }
    status = EXIT_SUCCESS;
    goto out;
oom:
    fprintf(stderr, "kvd: out of memory\n");
out:
    fprintf(stderr, "kvd: stats: requests=%llu bg_iterations=%llu keys=%zu", d.requests,
            d.bg_iterations, d.st.n);
    struct cw_queue_stats fgs, bgs;
    if (d.ex && cw_queue_stats(cw_executor_queue(d.ex, Q_FG), &fgs) == 0 &&
        cw_queue_stats(cw_executor_queue(d.ex, Q_BG), &bgs) == 0)
        fprintf(stderr, " fg_tasks=%llu bg_polls=%llu", (unsigned long long)fgs.tasks_spawned,
                (unsigned long long)bgs.polls);
    fprintf(stderr, "\n");
    cw_http_route_free(d.route);
    if (d.http && callbacks)
        cw_evhttp_free(d.http);
    else if (d.http)
        evhttp_free(d.http);
    while (d.flights) /* connections freed without their close callback */
        flight_end(d.flights);
    if (d.bg_joins) {
        for (long i = 0; i < nbg; i++)
            if (d.bg_joins[i]) {
                cw_join_abort(d.bg_joins[i]);
                cw_join_free(d.bg_joins[i]);
            }
        free(d.bg_joins);
    }
    cw_executor_free(d.ex);
    cw_config_free(cfg);
    if (d.bg_evs) {
        for (long i = 0; i < nbg; i++)
            if (d.bg_evs[i])
                event_free(d.bg_evs[i]);
        free(d.bg_evs);
    }
    if (d.bg_cevs) {
        for (long i = 0; i < nbg; i++)
            cw_event_free(d.bg_cevs[i]);
        free(d.bg_cevs);
    }
    if (d.drain_ev)
        event_free(d.drain_ev);
    if (sigint_ev)
        event_free(sigint_ev);
    if (sigterm_ev)
        event_free(sigterm_ev);
    if (sigusr1_ev)
        event_free(sigusr1_ev);
    if (d.base)
        event_base_free(d.base);
    store_free(&d.st);
    return status;
#undef d
}
