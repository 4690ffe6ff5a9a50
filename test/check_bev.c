/* check_bev.c - bufferevent futures (clockworker/bev.h) on real sockets and
 * a real base: each kind completes when its condition holds and not
 * before; EOF, a socket error and a timeout end a wait with that error;
 * the bufferevent's callbacks and watermarks are the future's only while
 * it waits and are restored after completion, drop and abort; a second
 * future on the same bufferevent is refused with -EBUSY. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clockworker/bev.h"
#include "testutil.h"

#define MAXC 8

/* The callbacks the user had before any future: they count calls. */
typedef struct user_cbs {
    int reads, writes, events;
} user_cbs;

static void user_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ((user_cbs *)arg)->reads++;
}

static void user_writecb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ((user_cbs *)arg)->writes++;
}

static void user_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    ((user_cbs *)arg)->events++;
}

/* A task that completes its future `target` times, recording each end. */
typedef struct btask {
    cw_bev_wait w;
    struct bufferevent *bev;
    int target;
    int done;
    size_t consume;        /* bytes removed from the input after each read */
    int results[MAXC];
    short events[MAXC];
    char lines[MAXC][32];
    size_t inlen[MAXC];    /* input length at each completion */
    size_t outlen[MAXC];   /* output length at each completion */
    int *drops;
} btask;

static cw_poll btask_poll(void *state, cw_cx *cx)
{
    btask *t = state;
    while (t->done < t->target) {
        if (cw_bev_poll(&t->w, cx) == CW_PENDING)
            return CW_PENDING;
        int i = t->done++;
        t->results[i] = cw_bev_result(&t->w);
        t->events[i] = cw_bev_events(&t->w);
        const char *line = cw_bev_line(&t->w, NULL);
        snprintf(t->lines[i], sizeof t->lines[i], "%s", line ? line : "");
        t->inlen[i] = evbuffer_get_length(bufferevent_get_input(t->bev));
        t->outlen[i] = evbuffer_get_length(bufferevent_get_output(t->bev));
        if (t->consume)
            evbuffer_drain(bufferevent_get_input(t->bev), t->consume);
    }
    cw_bev_drop(&t->w);
    return CW_READY;
}

static void btask_drop(void *state)
{
    btask *t = state;
    cw_bev_drop(&t->w);
    if (t->drops)
        ++*t->drops;
}

typedef struct fixture {
    tenv env;
    int sv[2];                  /* sv[0] under the bufferevent, sv[1] the peer */
    struct bufferevent *bev;
    user_cbs cbs;
} fixture;

static void fx_open_fds(fixture *f, int a, int b)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 1), 0);
    tenv_init(&f->env, cfg, 1);
    f->sv[0] = a;
    f->sv[1] = b;
    ck_assert_int_eq(evutil_make_socket_nonblocking(a), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(b), 0);
    f->bev = bufferevent_socket_new(f->env.base, a, BEV_OPT_CLOSE_ON_FREE);
    ck_assert_ptr_nonnull(f->bev);
    memset(&f->cbs, 0, sizeof f->cbs);
    bufferevent_setcb(f->bev, user_readcb, user_writecb, user_eventcb, &f->cbs);
}

static void fx_open(fixture *f)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fx_open_fds(f, sv[0], sv[1]);
}

/* A TCP pair on loopback, so that the peer can reset the connection. */
static void fx_open_tcp(fixture *f)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
    int a = accept(l, NULL, NULL);
    ck_assert_int_ge(a, 0);
    close(l);
    fx_open_fds(f, a, c);
}

static void fx_close(fixture *f)
{
    bufferevent_free(f->bev);
    if (f->sv[1] >= 0)
        close(f->sv[1]);
    tenv_free(&f->env);
}

static void assert_user_cbs(fixture *f)
{
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *arg;
    bufferevent_getcb(f->bev, &r, &w, &e, &arg);
    ck_assert_msg(r == user_readcb && w == user_writecb && e == user_eventcb && arg == &f->cbs,
                  "the user's callbacks are not in place");
}

static void assert_not_user_cbs(fixture *f)
{
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *arg;
    bufferevent_getcb(f->bev, &r, &w, &e, &arg);
    ck_assert_msg(r != user_readcb && w != user_writecb && e != user_eventcb && arg != &f->cbs,
                  "a waiting future's callbacks are not installed");
}

static void wm(fixture *f, short dir, size_t *low, size_t *high)
{
    ck_assert_int_eq(bufferevent_getwatermark(f->bev, dir, low, high), 0);
}

static void peer_write(fixture *f, const char *s)
{
    ck_assert_int_eq(write(f->sv[1], s, strlen(s)), (ssize_t)strlen(s));
}

static cw_join *spawn(fixture *f, btask *t)
{
    cw_join *j;
    t->bev = f->bev;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(f->env.ex, 0), btask_poll, t, sizeof *t,
                              btask_drop, &j),
                     0);
    return j;
}

START_TEST(read_waits_for_n_bytes_then_restores_callbacks_and_watermark)
{
    fixture f;
    fx_open(&f);
    bufferevent_setwatermark(f.bev, EV_READ, 2, 100);
    btask t = {.target = 1};
    cw_bev_read_init(&t.w, f.bev, 10);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 3);
    assert_not_user_cbs(&f);
    size_t low, high;
    wm(&f, EV_READ, &low, &high);
    ck_assert_uint_eq(low, 10); /* woken only once 10 bytes are in */
    ck_assert_uint_eq(high, 0); /* lifted while it waits */
    peer_write(&f, "abcd");
    turns(&f.env, 5);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN); /* 4 < 10 */
    peer_write(&f, "efghij");
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], 0);
    ck_assert_uint_ge(out->inlen[0], 10); /* the bytes stay in the buffer */
    ck_assert_int_eq(f.cbs.reads + f.cbs.events, 0); /* no user callback while it waited */
    assert_user_cbs(&f);
    wm(&f, EV_READ, &low, &high);
    ck_assert_uint_eq(low, 2);
    ck_assert_uint_eq(high, 100);
    cw_join_free(j);
    /* The restored callbacks are live: more data reaches the user's. */
    peer_write(&f, "k");
    turns(&f.env, 5);
    ck_assert_int_ge(f.cbs.reads, 1);
    fx_close(&f);
}
END_TEST

START_TEST(read_high_watermark_is_lifted_while_waiting_and_restored)
{
    fixture f;
    fx_open(&f);
    bufferevent_setwatermark(f.bev, EV_READ, 0, 4);
    btask t = {.target = 1};
    cw_bev_read_init(&t.w, f.bev, 8);
    cw_join *j = spawn(&f, &t);
    peer_write(&f, "0123456789");
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    ck_assert_int_eq(((btask *)cw_join_state(j))->results[0], 0);
    size_t low, high;
    wm(&f, EV_READ, &low, &high);
    ck_assert_uint_eq(low, 0);
    ck_assert_uint_eq(high, 4);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(lines_are_read_one_per_wait_and_kept_in_the_future)
{
    fixture f;
    fx_open(&f);
    bufferevent_setwatermark(f.bev, EV_READ, 5, 0); /* must not hide a short line */
    btask t = {.target = 3};
    cw_bev_readln_init(&t.w, f.bev, EVBUFFER_EOL_CRLF, 0);
    cw_join *j = spawn(&f, &t);
    peer_write(&f, "hi\r\nwor");
    turns(&f.env, 10);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN); /* one line so far */
    peer_write(&f, "ld\n\n");
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(out->results[i], 0);
    ck_assert_str_eq(out->lines[0], "hi");
    ck_assert_str_eq(out->lines[1], "world");
    ck_assert_str_eq(out->lines[2], ""); /* an empty line is a line */
    ck_assert_uint_eq(out->inlen[2], 0);  /* each line was removed */
    assert_user_cbs(&f);
    size_t low, high;
    wm(&f, EV_READ, &low, &high);
    ck_assert_uint_eq(low, 5);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

/* An allocator that knows its live blocks, to tell its own from others. */
#define NLIVE 256
static void *live[NLIVE];
static long nallocs, nfrees;

static void live_add(void *p)
{
    for (int i = 0; p && i < NLIVE; i++)
        if (!live[i]) {
            live[i] = p;
            return;
        }
    ck_abort_msg("too many live blocks for the test allocator");
}

static int live_find(const void *p)
{
    for (int i = 0; p && i < NLIVE; i++)
        if (live[i] == p)
            return i;
    return -1;
}

static void *cnt_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        nallocs++;
        live_add(p);
    }
    return p;
}

static void *cnt_realloc(void *p, size_t n)
{
    int i = live_find(p);
    ck_assert_msg(!p || i >= 0, "realloc of a block the allocator did not give");
    void *q = realloc(p, n);
    if (q && i >= 0)
        live[i] = q;
    else if (q) {
        nallocs++;
        live_add(q);
    }
    return q;
}

static void cnt_free(void *p)
{
    if (!p)
        return;
    int i = live_find(p);
    ck_assert_msg(i >= 0, "free of a block the library allocator did not give");
    live[i] = NULL;
    nfrees++;
    free(p);
}

/* Reads two lines through an outside future, noting for each whether the
 * library allocator gave its buffer. */
typedef struct {
    cw_bev_wait *w;
    int n;
    int owned[2];
    char text[2][8];
} lt_state;

static cw_poll lt_poll(void *state, cw_cx *cx)
{
    lt_state *t = state;
    while (t->n < 2) {
        if (cw_bev_poll(t->w, cx) == CW_PENDING)
            return CW_PENDING;
        ck_assert_int_eq(cw_bev_result(t->w), 0);
        const char *line = cw_bev_line(t->w, NULL);
        t->owned[t->n] = live_find(line) >= 0;
        snprintf(t->text[t->n], sizeof t->text[t->n], "%s", line ? line : "");
        t->n++;
    }
    return CW_READY;
}

/* Was issue 17: the line came from evbuffer_readln() (libevent's
 * allocator) and went back with free(), whatever cw_set_allocator() or
 * event_set_mem_functions() said. */
START_TEST(line_buffers_come_from_and_go_back_to_the_library_allocator)
{
    ck_assert_int_eq(cw_set_allocator(cnt_malloc, cnt_realloc, cnt_free), 0);
    fixture f;
    fx_open(&f);
    cw_bev_wait w;
    cw_bev_readln_init(&w, f.bev, EVBUFFER_EOL_LF, 0);
    peer_write(&f, "one\ntwo\n");
    /* poll it from a task: its poll records the line pointer */
    lt_state st = {.w = &w};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(f.env.ex, 0), lt_poll, &st, sizeof st, NULL, &j),
                     0);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    lt_state *out = cw_join_state(j);
    ck_assert_int_eq(out->n, 2);
    ck_assert_str_eq(out->text[0], "one");
    ck_assert_str_eq(out->text[1], "two");
    ck_assert_msg(out->owned[0] && out->owned[1],
                  "the line was not allocated with the library allocator");
    ck_assert_ptr_nonnull(cw_bev_line(&w, NULL));
    cw_bev_drop(&w); /* frees the second line through cnt_free */
    ck_assert_ptr_null(cw_bev_line(&w, NULL));
    cw_join_free(j);
    fx_close(&f);
    ck_assert_int_eq(nallocs, nfrees); /* balanced */
    for (int i = 0; i < NLIVE; i++)
        ck_assert_ptr_null(live[i]);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(line_longer_than_max_fails_with_emsgsize)
{
    fixture f;
    fx_open(&f);
    btask t = {.target = 1};
    cw_bev_readln_init(&t.w, f.bev, EVBUFFER_EOL_LF, 8);
    cw_join *j = spawn(&f, &t);
    peer_write(&f, "0123456789abc");
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], -EMSGSIZE);
    ck_assert_uint_eq(out->inlen[0], 13); /* the bytes are left in the buffer */
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(drain_waits_until_the_output_is_down_to_the_mark)
{
    fixture f;
    fx_open(&f);
    bufferevent_setwatermark(f.bev, EV_WRITE, 7, 0);
    size_t big = 4u << 20; /* more than the socket buffers hold */
    char *data = calloc(1, big);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(bufferevent_write(f.bev, data, big), 0);
    free(data);
    btask t = {.target = 1};
    cw_bev_drain_init(&t.w, f.bev, 1000);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 10);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN); /* the peer reads nothing */
    size_t low, high;
    wm(&f, EV_WRITE, &low, &high);
    ck_assert_uint_eq(low, 1000);
    /* The peer reads everything; the task completes along the way. */
    static char sink[65536];
    size_t got = 0;
    for (int guard = 0; guard < 100000 && cw_join_status(j) == -EAGAIN; guard++) {
        ssize_t n = read(f.sv[1], sink, sizeof sink);
        if (n > 0)
            got += (size_t)n;
        tenv_turn(&f.env);
    }
    ck_assert_int_eq(cw_join_status(j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], 0);
    ck_assert_uint_le(out->outlen[0], 1000);
    ck_assert_uint_ge(got + out->outlen[0], big - 1000); /* it did wait for the peer */
    wm(&f, EV_WRITE, &low, &high);
    ck_assert_uint_eq(low, 7);
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(drain_is_ready_at_once_when_the_output_is_small)
{
    fixture f;
    fx_open(&f);
    btask t = {.target = 1};
    cw_bev_drain_init(&t.w, f.bev, 0);
    cw_join *j = spawn(&f, &t);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    ck_assert_int_eq(((btask *)cw_join_state(j))->results[0], 0);
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(event_wait_returns_zero_at_eof)
{
    fixture f;
    fx_open(&f);
    btask t = {.target = 1};
    cw_bev_event_init(&t.w, f.bev);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 5);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN);
    peer_write(&f, "data before the end");
    turns(&f.env, 5);
    ck_assert_int_eq(cw_join_status(j), -EAGAIN); /* data is not an event */
    close(f.sv[1]);
    f.sv[1] = -1;
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], 0);
    ck_assert(out->events[0] & BEV_EVENT_EOF);
    ck_assert_uint_eq(out->inlen[0], strlen("data before the end"));
    ck_assert_int_eq(f.cbs.events, 0); /* the EOF went to the task, not the user */
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(event_wait_returns_the_socket_error)
{
    fixture f;
    fx_open_tcp(&f);
    btask t = {.target = 1};
    cw_bev_event_init(&t.w, f.bev);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 5);
    /* The peer resets the connection (SO_LINGER 0). */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(f.sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(f.sv[1]);
    f.sv[1] = -1;
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], -ECONNRESET);
    ck_assert(out->events[0] & BEV_EVENT_ERROR);
    ck_assert(out->events[0] & BEV_EVENT_READING);
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(event_wait_returns_a_timeout)
{
    fixture f;
    fx_open(&f);
    struct timeval tv = {0, 20000};
    ck_assert_int_eq(bufferevent_set_timeouts(f.bev, &tv, NULL), 0);
    btask t = {.target = 1};
    cw_bev_event_init(&t.w, f.bev);
    cw_join *j = spawn(&f, &t);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], -ETIMEDOUT);
    ck_assert(out->events[0] & BEV_EVENT_TIMEOUT);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(data_wins_over_eof_which_the_next_wait_reports)
{
    fixture f;
    fx_open(&f);
    btask t = {.target = 2, .consume = 3};
    cw_bev_read_init(&t.w, f.bev, 3);
    cw_join *j = spawn(&f, &t);
    peer_write(&f, "xyz");
    close(f.sv[1]);
    f.sv[1] = -1;
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], 0);      /* the 3 bytes */
    ck_assert_int_eq(out->results[1], -EPIPE); /* then the EOF */
    ck_assert(out->events[1] & BEV_EVENT_EOF);
    assert_user_cbs(&f);
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(read_cut_short_by_eof_returns_epipe)
{
    fixture f;
    fx_open(&f);
    btask t = {.target = 1};
    cw_bev_read_init(&t.w, f.bev, 100);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 3);
    peer_write(&f, "short");
    close(f.sv[1]);
    f.sv[1] = -1;
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    btask *out = cw_join_state(j);
    ck_assert_int_eq(out->results[0], -EPIPE);
    ck_assert_uint_eq(out->inlen[0], 5); /* what arrived is still there */
    cw_join_free(j);
    fx_close(&f);
}
END_TEST

START_TEST(second_future_on_one_bufferevent_is_refused_with_ebusy)
{
    fixture f;
    fx_open(&f);
    btask a = {.target = 1}, b = {.target = 1};
    cw_bev_read_init(&a.w, f.bev, 4);
    cw_bev_event_init(&b.w, f.bev);
    cw_join *ja = spawn(&f, &a);
    turns(&f.env, 3);
    bufferevent_data_cb r1, w1, r2, w2;
    bufferevent_event_cb e1, e2;
    void *arg1, *arg2;
    bufferevent_getcb(f.bev, &r1, &w1, &e1, &arg1);
    cw_join *jb = spawn(&f, &b);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, jb), 0);
    ck_assert_int_eq(((btask *)cw_join_state(jb))->results[0], -EBUSY);
    bufferevent_getcb(f.bev, &r2, &w2, &e2, &arg2);
    ck_assert(r1 == r2 && w1 == w2 && e1 == e2 && arg1 == arg2); /* untouched */
    peer_write(&f, "four");
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, ja), 0); /* the first still works */
    ck_assert_int_eq(((btask *)cw_join_state(ja))->results[0], 0);
    assert_user_cbs(&f);
    cw_join_free(ja);
    cw_join_free(jb);
    fx_close(&f);
}
END_TEST

START_TEST(abort_while_waiting_leaves_no_callback_behind)
{
    static const int kinds[] = {0, 1, 2, 3};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fixture f;
        fx_open(&f);
        bufferevent_setwatermark(f.bev, EV_READ, 3, 50);
        bufferevent_setwatermark(f.bev, EV_WRITE, 9, 0);
        if (k == 2) { /* something to drain that the peer never reads */
            char *data = calloc(1, 4u << 20);
            ck_assert_ptr_nonnull(data);
            bufferevent_write(f.bev, data, 4u << 20);
            free(data);
        }
        int drops = 0;
        btask t = {.target = 1, .drops = &drops};
        switch (kinds[k]) {
        case 0: cw_bev_read_init(&t.w, f.bev, 10); break;
        case 1: cw_bev_readln_init(&t.w, f.bev, EVBUFFER_EOL_LF, 0); break;
        case 2: cw_bev_drain_init(&t.w, f.bev, 0); break;
        default: cw_bev_event_init(&t.w, f.bev); break;
        }
        cw_join *j = spawn(&f, &t);
        turns(&f.env, 5);
        ck_assert_int_eq(cw_join_status(j), -EAGAIN);
        assert_not_user_cbs(&f);
        cw_join_abort(j);
        ck_assert_int_eq(drops, 1);
        ck_assert_int_eq(cw_join_status(j), -ECANCELED);
        assert_user_cbs(&f);
        size_t low, high;
        wm(&f, EV_READ, &low, &high);
        ck_assert_uint_eq(low, 3);
        ck_assert_uint_eq(high, 50);
        wm(&f, EV_WRITE, &low, &high);
        ck_assert_uint_eq(low, 9);
        cw_join_free(j);
        /* Everything that happens now goes to the user's callbacks (a
         * callback left behind would touch the freed task state). */
        peer_write(&f, "0123456789\n");
        close(f.sv[1]);
        f.sv[1] = -1;
        turns(&f.env, 10);
        ck_assert_int_ge(f.cbs.reads + f.cbs.events, 1);
        fx_close(&f);
    }
}
END_TEST

START_TEST(executor_free_cancels_a_waiting_task_and_restores_callbacks)
{
    fixture f;
    fx_open(&f);
    int drops = 0;
    btask t = {.target = 1, .drops = &drops};
    cw_bev_read_init(&t.w, f.bev, 1);
    cw_join *j = spawn(&f, &t);
    turns(&f.env, 3);
    assert_not_user_cbs(&f);
    cw_executor_free(f.env.ex);
    f.env.ex = NULL;
    ck_assert_int_eq(drops, 1);
    assert_user_cbs(&f);
    cw_join_free(j);
    peer_write(&f, "x");
    event_base_loop(f.env.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_int_eq(f.cbs.reads, 1);
    bufferevent_free(f.bev);
    close(f.sv[1]);
    event_base_free(f.env.base);
}
END_TEST

/* Polls a future with a NULL cx from inside a task: -EINVAL. */
typedef struct nullcx {
    cw_bev_wait w;
    int result;
} nullcx;

static cw_poll nullcx_poll(void *state, cw_cx *cx)
{
    nullcx *s = state;
    (void)cx;
    ck_assert_int_eq(cw_bev_poll(&s->w, NULL), CW_READY);
    s->result = cw_bev_result(&s->w);
    return CW_READY;
}

START_TEST(bad_arguments_complete_with_einval)
{
    fixture f;
    fx_open(&f);
    cw_bev_wait z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(cw_bev_poll(NULL, NULL), CW_READY);
    ck_assert_int_eq(cw_bev_result(NULL), -EINVAL);
    ck_assert_int_eq(cw_bev_events(NULL), 0);
    ck_assert_ptr_null(cw_bev_line(NULL, NULL));
    cw_bev_drop(NULL);
    cw_bev_read_init(NULL, f.bev, 1);
    cw_bev_readln_init(NULL, f.bev, EVBUFFER_EOL_LF, 0);
    cw_bev_drain_init(NULL, f.bev, 0);
    cw_bev_event_init(NULL, f.bev);
    ck_assert_int_eq(cw_bev_poll(&z, NULL), CW_READY); /* zeroed: dropped */
    ck_assert_int_eq(cw_bev_result(&z), -EINVAL);
    cw_bev_drop(&z);
    cw_bev_drop(&z);

    btask t = {.target = 1}; /* NULL bufferevent */
    cw_bev_read_init(&t.w, NULL, 1);
    cw_join *j = spawn(&f, &t);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    ck_assert_int_eq(((btask *)cw_join_state(j))->results[0], -EINVAL);
    cw_join_free(j);

    nullcx n = {.result = 1};
    cw_bev_read_init(&n.w, f.bev, 1);
    ck_assert_int_eq(cw_bev_result(&n.w), -EAGAIN); /* nothing completed yet */
    ck_assert_int_eq(cw_spawn(cw_executor_queue(f.env.ex, 0), nullcx_poll, &n, sizeof n, NULL,
                              &j),
                     0);
    ck_assert_int_eq(cw_executor_run_until(f.env.ex, j), 0);
    ck_assert_int_eq(((nullcx *)cw_join_state(j))->result, -EINVAL);
    cw_join_free(j);
    assert_user_cbs(&f);
    fx_close(&f);
}
END_TEST

static Suite *bev_suite(void)
{
    Suite *s = suite_create("bev");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, read_waits_for_n_bytes_then_restores_callbacks_and_watermark);
    tcase_add_test(tc, read_high_watermark_is_lifted_while_waiting_and_restored);
    tcase_add_test(tc, lines_are_read_one_per_wait_and_kept_in_the_future);
    tcase_add_test(tc, line_buffers_come_from_and_go_back_to_the_library_allocator);
    tcase_add_test(tc, line_longer_than_max_fails_with_emsgsize);
    tcase_add_test(tc, drain_waits_until_the_output_is_down_to_the_mark);
    tcase_add_test(tc, drain_is_ready_at_once_when_the_output_is_small);
    tcase_add_test(tc, event_wait_returns_zero_at_eof);
    tcase_add_test(tc, event_wait_returns_the_socket_error);
    tcase_add_test(tc, event_wait_returns_a_timeout);
    tcase_add_test(tc, data_wins_over_eof_which_the_next_wait_reports);
    tcase_add_test(tc, read_cut_short_by_eof_returns_epipe);
    tcase_add_test(tc, second_future_on_one_bufferevent_is_refused_with_ebusy);
    tcase_add_test(tc, abort_while_waiting_leaves_no_callback_behind);
    tcase_add_test(tc, executor_free_cancels_a_waiting_task_and_restores_callbacks);
    tcase_add_test(tc, bad_arguments_complete_with_einval);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return run_suite(bev_suite());
}
