/* loops.c - the loops of bench/fgbg and bench/overhead (see loops.h). */
#define _GNU_SOURCE
#include "loops.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include <clockworker/embed.h>
#include <clockworker/libevent.h>

#ifdef BENCH_HAVE_LIBUV
#include <uv.h>

#include <clockworker/uv.h>
#endif

#ifdef BENCH_HAVE_URING
#include <liburing.h>

#include <clockworker/uring.h>
#endif

#include "common.h"

static const char *const loop_names[BENCH_NLOOPS] = {"libevent", "libuv", "embed", "uring"};

int bench_loop_find(const char *name)
{
    for (int k = 0; k < BENCH_NLOOPS; k++)
        if (name && strcmp(name, loop_names[k]) == 0)
            return k;
    return -1;
}

const char *bench_loop_name(int kind)
{
    return kind >= 0 && kind < BENCH_NLOOPS ? loop_names[kind] : "?";
}

const char *bench_loop_unavailable(int kind)
{
    switch (kind) {
    case BENCH_LIBEVENT:
    case BENCH_EMBED:
        return NULL;
    case BENCH_LIBUV:
#ifdef BENCH_HAVE_LIBUV
        return NULL;
#else
        return "this build has no libuv driver (configure found no libuv; install libuv1-dev "
               "and configure again)";
#endif
    case BENCH_URING:
#ifdef BENCH_HAVE_URING
    {
        /* The kernel may refuse a ring (no io_uring, a seccomp filter,
         * kernel.io_uring_disabled): asked once. */
        static int probed;
        static char why[160];
        if (!probed) {
            struct io_uring ring;
            int err = io_uring_queue_init(4, &ring, 0);
            if (err < 0)
                snprintf(why, sizeof why, "the kernel refused an io_uring here (%s)", strerror(-err));
            else
                io_uring_queue_exit(&ring);
            probed = 1;
        }
        return why[0] ? why : NULL;
    }
#else
        return "this build has no io_uring driver (configure found no liburing >= 2.0; install "
               "liburing-dev and configure again)";
#endif
    default:
        return "unknown loop";
    }
}

const char *bench_loop_describe(int kind)
{
    static char buf[64];
    switch (kind) {
    case BENCH_LIBEVENT:
        snprintf(buf, sizeof buf, "libevent %s", event_get_version());
        return buf;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        snprintf(buf, sizeof buf, "libuv %s", uv_version_string());
        return buf;
#endif
    case BENCH_EMBED:
        return "a ppoll() host loop (clockworker/embed.h)";
    case BENCH_URING:
        return "io_uring (liburing): the executor on its own ring, the raw variants on the bench's";
    default:
        return "?";
    }
}

/* ---- the embed host: a ppoll() loop ----------------------------------------
 * Its fds (the executor's, through watch_fd, and raw watches), its timers
 * (an unsorted list: the benches keep a few dozen at most), its deferred
 * list (callbacks to run at the next turn). A turn: ppoll (no wait when
 * something is deferred, else until the first timer or the executor's),
 * report the ready fds, fire due timers, run what was deferred before the
 * turn, then cw_embed_tick(). */

struct bench_cb {
    struct bench_loop *l;
    bench_fn fn;
    void *arg;
    struct event *ev; /* libevent */
#ifdef BENCH_HAVE_LIBUV
    uv_idle_t idle; /* libuv: now */
    uv_timer_t timer; /* libuv: after */
    int open;       /* libuv: handles not yet closed */
#endif
    struct bench_cb *next; /* embed: in the deferred list */
    bool deferred;
    long tidx;         /* embed: index in the timer list, or -1 */
    uint64_t deadline; /* embed */
#ifdef BENCH_HAVE_URING
    /* uring, raw (no executor): a NOP to run now, an IORING_OP_TIMEOUT to
     * run after; the record is a zombie (ur_zombie) when freed with
     * either in flight */
    struct __kernel_timespec ts; /* the TIMEOUT's deadline (absolute) */
    bool nop, timing;            /* a NOP, a TIMEOUT in flight */
    /* uring, on the executor: the task that runs fn (once, after its
     * sleep, if any), and whether it is one to run fn now, not run yet */
    cw_join *job;
    bool job_now;
#endif
};

struct bench_fdw {
    struct bench_loop *l;
    bench_fn fn;
    void *arg;
    int fd;
    struct event *ev; /* libevent */
#ifdef BENCH_HAVE_LIBUV
    uv_poll_t poll;
#endif
#ifdef BENCH_HAVE_URING
    bool armed;   /* raw: its POLL_ADD (one-shot, re-armed) in flight */
    cw_join *job; /* on the executor: the task that waits on fd */
#endif
};

struct hfd {
    bool exec;             /* the executor's (watch_fd), else a raw watch */
    struct bench_fdw *raw;
};

struct host {
    struct pollfd *fds;
    struct hfd *meta;
    size_t nfds, capfds;
    struct bench_cb **timers;
    size_t ntimers, captimers;
    struct bench_cb *dhead, **dtail; /* deferred */
    cw_executor *ex;
    bool stop;
};

#ifdef BENCH_HAVE_URING
/* --loop uring. Raw (bench_cb, bench_fdw before any executor): requests on
 * a ring of this file, made at the first one; the run is
 * io_uring_submit_and_wait(1) and the completions' callbacks, one
 * io_uring_enter() per turn for what the turn armed. On the executor
 * (bench_loop_executor(), which owns its ring: nothing of ours may go on
 * it): bench_cb and bench_fdw are tasks on queue tq (a cw_sleep, a
 * cw_fdwait, then the callback) and the run is cw_uring_run(ONCE) turns
 * until stop. */
struct ur_zombie {
    struct ur_zombie *next;
    void *rec; /* a bench_cb or bench_fdw freed with requests in flight */
};

struct ur {
    struct io_uring ring;
    bool ring_up;
    unsigned inflight; /* raw requests whose completion is awaited */
    struct ur_zombie *zombies; /* freed once the ring is closed */
    cw_executor *ex;
    cw_queue *tq;
    bool stop;
};
#endif

struct bench_loop {
    int kind;
    struct event_base *base;
#ifdef BENCH_HAVE_LIBUV
    uv_loop_t uv;
#endif
    struct host host;
#ifdef BENCH_HAVE_URING
    struct ur ur;
#endif
};

static int host_fd_add(struct host *h, int fd, short events, bool exec, struct bench_fdw *raw)
{
    if (h->nfds == h->capfds) {
        size_t cap = h->capfds ? 2 * h->capfds : 16;
        struct pollfd *f = realloc(h->fds, cap * sizeof *f);
        if (!f)
            return -ENOMEM;
        h->fds = f;
        struct hfd *m = realloc(h->meta, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        h->meta = m;
        h->capfds = cap;
    }
    h->fds[h->nfds] = (struct pollfd){.fd = fd, .events = events};
    h->meta[h->nfds] = (struct hfd){.exec = exec, .raw = raw};
    h->nfds++;
    return 0;
}

static void host_fd_del(struct host *h, size_t i)
{
    h->fds[i] = h->fds[--h->nfds];
    h->meta[i] = h->meta[h->nfds];
}

static void host_watch_fd(void *arg, int fd, short what)
{
    struct host *h = arg;
    size_t i = 0;
    while (i < h->nfds && !(h->meta[i].exec && h->fds[i].fd == fd))
        i++;
    if (!what) {
        if (i < h->nfds)
            host_fd_del(h, i);
        return;
    }
    short ev = (short)(((what & CW_FD_READ) ? POLLIN : 0) | ((what & CW_FD_WRITE) ? POLLOUT : 0));
    if (i < h->nfds) {
        h->fds[i].events = ev;
        return;
    }
    if (host_fd_add(h, fd, ev, true, NULL) < 0) {
        /* the hook must not fail: the benches watch a handful of fds */
        fprintf(stderr, "bench: embed host: out of memory\n");
        abort();
    }
}

/* This host reads cw_embed_next_ns() before each poll. */
static void host_set_timer(void *arg, int64_t delay_ns)
{
    (void)arg;
    (void)delay_ns;
}

static const cw_embed_hooks host_hooks = {.watch_fd = host_watch_fd, .set_timer = host_set_timer};

static void host_timer_del(struct host *h, struct bench_cb *c)
{
    size_t i = (size_t)c->tidx;
    h->timers[i] = h->timers[--h->ntimers];
    h->timers[i]->tidx = (long)i;
    c->tidx = -1;
}

static void host_defer(struct host *h, struct bench_cb *c)
{
    if (c->deferred)
        return;
    c->deferred = true;
    c->next = NULL;
    *h->dtail = c;
    h->dtail = &c->next;
}

static void host_undefer(struct host *h, struct bench_cb *c)
{
    struct bench_cb **p = &h->dhead;
    while (*p && *p != c)
        p = &(*p)->next;
    if (*p) {
        *p = c->next;
        if (h->dtail == &c->next)
            h->dtail = p;
    }
    c->deferred = false;
}

static int host_run(struct host *h)
{
    int err = 0;
    while (!h->stop) {
        int64_t next = h->ex ? cw_embed_next_ns(h->ex) : -1;
        if (!h->nfds && !h->dhead && !h->ntimers && next < 0)
            break; /* nothing left */
        struct timespec ts, *tp = NULL;
        if (h->dhead) {
            next = 0;
        } else if (h->ntimers) {
            uint64_t now = bench_mono_ns(), first = UINT64_MAX;
            for (size_t i = 0; i < h->ntimers; i++)
                if (h->timers[i]->deadline < first)
                    first = h->timers[i]->deadline;
            int64_t d = first > now ? (int64_t)(first - now) : 0;
            if (next < 0 || d < next)
                next = d;
        }
        if (next >= 0) {
            ts.tv_sec = (time_t)(next / 1000000000);
            ts.tv_nsec = (long)(next % 1000000000);
            tp = &ts;
        }
        int n = ppoll(h->fds, (nfds_t)h->nfds, tp, NULL);
        if (n < 0 && errno != EINTR) {
            err = -errno;
            break;
        }
        /* report: from the end, as callbacks may remove entries */
        for (size_t i = h->nfds; n > 0 && i-- > 0;) {
            if (i >= h->nfds)
                continue;
            short re = h->fds[i].revents;
            h->fds[i].revents = 0;
            if (!re)
                continue;
            if (h->meta[i].exec) {
                short what = 0;
                if (re & (POLLIN | POLLHUP | POLLERR))
                    what |= CW_FD_READ;
                if (re & (POLLOUT | POLLHUP | POLLERR))
                    what |= CW_FD_WRITE;
                cw_embed_fd_ready(h->ex, h->fds[i].fd, what);
            } else {
                struct bench_fdw *w = h->meta[i].raw;
                w->fn(w->arg);
            }
        }
        if (h->ntimers) {
            uint64_t now = bench_mono_ns();
            for (size_t i = 0; i < h->ntimers;) {
                struct bench_cb *c = h->timers[i];
                if (c->deadline > now) {
                    i++;
                    continue;
                }
                host_timer_del(h, c); /* moves the last one to i */
                c->fn(c->arg);
            }
        }
        /* what was deferred before this turn; what it defers runs next turn */
        struct bench_cb *c = h->dhead;
        h->dhead = NULL;
        h->dtail = &h->dhead;
        while (c) {
            struct bench_cb *next_c = c->next;
            c->deferred = false;
            c->fn(c->arg);
            c = next_c;
        }
        if (h->ex)
            cw_embed_tick(h->ex);
    }
    h->stop = false;
    return err;
}

#ifdef BENCH_HAVE_URING
/* ---- uring: the bench's own ring (raw) and tasks on the executor ------------
 * Raw requests carry their record and a tag in user_data (records are
 * calloc()ed: 16-byte aligned); user_data 0 is a request whose completion
 * is ignored (TIMEOUT_REMOVE, POLL_REMOVE, a TIMEOUT update). */

enum { UR_ENTRIES = 4096, UT_NOP = 1, UT_TIMEOUT = 2, UT_POLL = 3, UT_MASK = 7 };

/* An SQE of the raw ring (made now if need be), or NULL. A full queue is
 * submitted first. */
static struct io_uring_sqe *ur_sqe(struct ur *u)
{
    struct io_uring_sqe *sqe;
    if (!u->ring_up) {
        if (io_uring_queue_init(UR_ENTRIES, &u->ring, 0) < 0)
            return NULL;
        u->ring_up = true;
    }
    if (!(sqe = io_uring_get_sqe(&u->ring))) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static bool ur_benign(int err)
{
    return err >= 0 || err == -EINTR || err == -EAGAIN || err == -EBUSY || err == -ETIME;
}

static void ur_zombie(struct ur *u, void *rec)
{
    struct ur_zombie *z = malloc(sizeof *z);
    if (!z)
        return; /* leaked: the ring may still name it */
    z->rec = rec;
    z->next = u->zombies;
    u->zombies = z;
}

static void ur_poll_arm(struct ur *u, struct bench_fdw *w)
{
    struct io_uring_sqe *sqe = ur_sqe(u);
    if (!sqe)
        return;
    io_uring_prep_poll_add(sqe, w->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)w | UT_POLL);
    w->armed = true;
    u->inflight++;
}

/* One completion: the record's callback unless it was freed meanwhile (a
 * zombie: it stays allocated until the ring is closed). */
static void ur_complete(struct ur *u, uint64_t ud, int res)
{
    void *p = (void *)(uintptr_t)(ud & ~(uint64_t)UT_MASK);
    if (!p)
        return;
    u->inflight--;
    switch (ud & UT_MASK) {
    case UT_NOP: {
        struct bench_cb *c = p;
        c->nop = false;
        if (c->fn)
            c->fn(c->arg);
        break;
    }
    case UT_TIMEOUT: {
        struct bench_cb *c = p;
        c->timing = false;
        if (c->fn && res == -ETIME)
            c->fn(c->arg);
        break;
    }
    case UT_POLL: {
        struct bench_fdw *w = p;
        w->armed = false;
        if (w->fn && res >= 0) { /* an error (a bad fd) ends the watch */
            ur_poll_arm(u, w); /* before fn, which may unwatch it */
            w->fn(w->arg);
        }
        break;
    }
    default:
        break;
    }
}

/* The raw run: a turn submits what the last one armed and waits for one
 * completion, then runs the callbacks of every completion there. */
static int ur_run_raw(struct ur *u)
{
    int err = 0;
    while (!u->stop && u->inflight) {
        int rc = io_uring_submit_and_wait(&u->ring, 1);
        if (!ur_benign(rc)) {
            err = rc;
            break;
        }
        struct io_uring_cqe *cqe;
        while (!u->stop && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&u->ring, cqe);
            ur_complete(u, ud, res);
        }
    }
    u->stop = false;
    return err;
}

/* On the executor: turns until bench_loop_break() or nothing is left. */
static int ur_run_cw(struct ur *u)
{
    int err = 0;
    while (!u->stop) {
        int rc = cw_uring_run(u->ex, CW_URING_RUN_ONCE);
        if (rc < 0) {
            err = rc;
            break;
        }
        if (rc == 1)
            break;
    }
    u->stop = false;
    return err;
}

/* The task of a bench_cb on the executor: sleeps until deadline (0: none),
 * then runs the callback once. */
struct ur_cb_task {
    cw_pt pt;
    cw_sleep nap;
    bool napping;
    uint64_t deadline;
    struct bench_cb *c;
};

static cw_poll ur_cb_poll(void *state, cw_cx *cx)
{
    struct ur_cb_task *t = state;
    CW_BEGIN(&t->pt);
    if (t->deadline) {
        cw_sleep_init_until(&t->nap, t->deadline);
        t->napping = true;
        CW_AWAIT(&t->pt, cw_sleep_poll(&t->nap, cx));
    }
    {
        struct bench_cb *c = t->c; /* fn may free c or re-arm it */
        c->job_now = false;
        c->fn(c->arg);
    }
    CW_END(&t->pt);
}

static void ur_cb_drop(void *state)
{
    struct ur_cb_task *t = state;
    if (t->napping)
        cw_sleep_drop(&t->nap);
}

/* Arms c on the executor: the task that ran it before (ended, or running
 * this callback: aborted after its poll) is let go. */
static int ur_cb_task(struct bench_cb *c, uint64_t ns, bool now)
{
    struct ur *u = &c->l->ur;
    if (now && c->job && c->job_now)
        return 0; /* armed to run at once already */
    if (c->job) {
        cw_join_abort(c->job);
        cw_join_free(c->job);
        c->job = NULL;
    }
    struct ur_cb_task init = {.c = c, .deadline = now ? 0 : cw_executor_now(u->ex) + ns};
    if (!now && !init.deadline)
        init.deadline = 1;
    int err = cw_spawn(u->tq, ur_cb_poll, &init, sizeof init, ur_cb_drop, &c->job);
    if (err == 0)
        c->job_now = now;
    return err;
}

/* The task of a bench_fdw on the executor: a cw_fdwait on the fd, the
 * callback at each readiness. */
struct ur_fdw_task {
    cw_pt pt;
    cw_fdwait fw;
    struct bench_fdw *w;
};

static cw_poll ur_fdw_poll(void *state, cw_cx *cx)
{
    struct ur_fdw_task *t = state;
    CW_BEGIN(&t->pt);
    cw_fdwait_init(&t->fw, t->w->fd, CW_FD_READ);
    for (;;) {
        CW_AWAIT(&t->pt, cw_fdwait_poll(&t->fw, cx));
        if (!cw_fdwait_revents(&t->fw))
            break; /* the ring refused the fd */
        t->w->fn(t->w->arg);
    }
    CW_END(&t->pt);
}

static void ur_fdw_drop(void *state)
{
    struct ur_fdw_task *t = state;
    cw_fdwait_drop(&t->fw);
}
#endif

/* ---- loops -------------------------------------------------------------------- */

struct bench_loop *bench_loop_new(int kind, bool precise)
{
    if (bench_loop_unavailable(kind))
        return NULL;
    struct bench_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->kind = kind;
    switch (kind) {
    case BENCH_LIBEVENT:
        if (!(l->base = bench_base_new(precise))) {
            free(l);
            return NULL;
        }
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        if (uv_loop_init(&l->uv) != 0) {
            free(l);
            return NULL;
        }
        break;
#endif
    case BENCH_EMBED:
        l->host.dtail = &l->host.dhead;
        break;
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        break; /* the raw ring is made at the first raw request */
#endif
    default:
        free(l);
        return NULL;
    }
    return l;
}

void bench_loop_free(struct bench_loop *l)
{
    if (!l)
        return;
    switch (l->kind) {
    case BENCH_LIBEVENT:
        event_base_free(l->base);
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        uv_run(&l->uv, UV_RUN_DEFAULT); /* closes what was closed */
        if (uv_loop_close(&l->uv) != 0)
            fprintf(stderr, "bench: uv_loop_close: a handle is still open\n");
        break;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        if (l->ur.ring_up)
            io_uring_queue_exit(&l->ur.ring);
        while (l->ur.zombies) {
            struct ur_zombie *z = l->ur.zombies;
            l->ur.zombies = z->next;
            free(z->rec);
            free(z);
        }
        break;
#endif
    default:
        free(l->host.fds);
        free(l->host.meta);
        free(l->host.timers);
        break;
    }
    free(l);
}

int bench_loop_kind(const struct bench_loop *l)
{
    return l->kind;
}

int bench_loop_executor(struct bench_loop *l, const cw_config *cfg, cw_executor **out)
{
    switch (l->kind) {
    case BENCH_LIBEVENT:
        return cw_executor_new(l->base, cfg, out);
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        return cw_executor_new_uv(&l->uv, cfg, out);
#endif
    case BENCH_EMBED: {
        int err = cw_executor_new_embed(&host_hooks, &l->host, cfg, out);
        if (err == 0)
            l->host.ex = *out;
        return err;
    }
#ifdef BENCH_HAVE_URING
    case BENCH_URING: {
        /* raw requests made before it would stay on the bench's ring */
        if (l->ur.ring_up)
            return -EBUSY;
        int err = cw_executor_new_uring(cfg, 0, out);
        if (err == 0)
            l->ur.ex = *out;
        return err;
    }
#endif
    default:
        return -ENOTSUP;
    }
}

int bench_loop_run(struct bench_loop *l)
{
    switch (l->kind) {
    case BENCH_LIBEVENT:
        return event_base_dispatch(l->base) < 0 ? -EIO : 0;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        uv_run(&l->uv, UV_RUN_DEFAULT);
        return 0;
#endif
    case BENCH_EMBED:
        return host_run(&l->host);
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        return l->ur.ex ? ur_run_cw(&l->ur) : ur_run_raw(&l->ur);
#endif
    default:
        return -ENOTSUP;
    }
}

void bench_loop_break(struct bench_loop *l)
{
    switch (l->kind) {
    case BENCH_LIBEVENT:
        event_base_loopbreak(l->base);
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        uv_stop(&l->uv);
        break;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        l->ur.stop = true;
        break;
#endif
    default:
        l->host.stop = true;
        break;
    }
}

struct event_base *bench_loop_base(const struct bench_loop *l)
{
    return l->kind == BENCH_LIBEVENT ? l->base : NULL;
}

void bench_loop_task_queue(struct bench_loop *l, cw_queue *q)
{
#ifdef BENCH_HAVE_URING
    if (l->kind == BENCH_URING)
        l->ur.tq = q;
#else
    (void)l;
    (void)q;
#endif
}

int bench_loop_priorities(struct bench_loop *l, int n)
{
    if (l->kind == BENCH_LIBEVENT)
        return event_base_priority_init(l->base, n);
    return 0;
}

void bench_loop_refresh(struct bench_loop *l)
{
    if (l->kind == BENCH_LIBEVENT)
        event_base_update_cache_time(l->base);
#ifdef BENCH_HAVE_LIBUV
    else if (l->kind == BENCH_LIBUV)
        uv_update_time(&l->uv);
#endif
}

/* ---- raw callbacks ---------------------------------------------------------- */

static void lev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench_cb *c = arg;
    (void)fd;
    (void)what;
    c->fn(c->arg);
}

#ifdef BENCH_HAVE_LIBUV
static void bl_idle_cb(uv_idle_t *h)
{
    struct bench_cb *c = h->data;
    uv_idle_stop(h);
    c->fn(c->arg);
}

static void bl_timer_cb(uv_timer_t *h)
{
    struct bench_cb *c = h->data;
    c->fn(c->arg);
}

static void uv_cb_closed(uv_handle_t *h)
{
    struct bench_cb *c = h->data;
    if (--c->open == 0)
        free(c);
}
#endif

struct bench_cb *bench_cb_new(struct bench_loop *l, bench_fn fn, void *arg, int prio)
{
    struct bench_cb *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->l = l;
    c->fn = fn;
    c->arg = arg;
    c->tidx = -1;
    switch (l->kind) {
    case BENCH_LIBEVENT:
        if (!(c->ev = evtimer_new(l->base, lev_cb, c))
            || (prio >= 0 && event_priority_set(c->ev, prio) < 0)) {
            if (c->ev)
                event_free(c->ev);
            free(c);
            return NULL;
        }
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        uv_idle_init(&l->uv, &c->idle);
        uv_timer_init(&l->uv, &c->timer);
        c->idle.data = c->timer.data = c;
        c->open = 2;
        break;
#endif
    default:
        break;
    }
    return c;
}

int bench_cb_now(struct bench_cb *c)
{
    switch (c->l->kind) {
    case BENCH_LIBEVENT:
        event_active(c->ev, EV_TIMEOUT, 1);
        return 0;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        return uv_idle_start(&c->idle, bl_idle_cb) < 0 ? -EIO : 0;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING: {
        struct ur *u = &c->l->ur;
        if (u->ex)
            return ur_cb_task(c, 0, true);
        if (c->nop)
            return 0;
        struct io_uring_sqe *sqe = ur_sqe(u);
        if (!sqe)
            return -EIO;
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | UT_NOP);
        c->nop = true;
        u->inflight++;
        return 0;
    }
#endif
    default:
        host_defer(&c->l->host, c);
        return 0;
    }
}

int bench_cb_after(struct bench_cb *c, uint64_t ns)
{
    switch (c->l->kind) {
    case BENCH_LIBEVENT: {
        struct timeval tv = {(time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000)};
        event_base_update_cache_time(c->l->base); /* bench/fgbg.c: see Sleeps */
        return evtimer_add(c->ev, &tv) < 0 ? -EIO : 0;
    }
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
    {
        /* From now, not from the loop time cached when the turn began (as
         * libevent's refresh), but without uv_update_time(): libuv 1.44
         * runs its timers phase until no timer is due at the loop time, so
         * advancing that time from inside a timer callback lets saturating
         * re-armed timers keep the phase going for ever. The loop time is
         * CLOCK_MONOTONIC in ms, as uv_hrtime(): the deadline rounded up
         * to its ms, less the cached time. */
        uint64_t due_ms = (uv_hrtime() + ns + 999999) / 1000000, now_ms = uv_now(&c->l->uv);
        return uv_timer_start(&c->timer, bl_timer_cb, due_ms > now_ms ? due_ms - now_ms : 0, 0) < 0
                   ? -EIO
                   : 0;
    }
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING: {
        /* A TIMEOUT at an absolute CLOCK_MONOTONIC deadline taken now (it
         * is submitted at the next turn); a pending one is moved. */
        struct ur *u = &c->l->ur;
        if (u->ex)
            return ur_cb_task(c, ns, false);
        uint64_t due = bench_mono_ns() + ns;
        struct io_uring_sqe *sqe = ur_sqe(u);
        if (!sqe)
            return -EIO;
        c->ts.tv_sec = (long long)(due / 1000000000u);
        c->ts.tv_nsec = (long long)(due % 1000000000u);
        if (c->timing) {
            io_uring_prep_timeout_update(sqe, &c->ts, (uint64_t)(uintptr_t)c | UT_TIMEOUT,
                                         IORING_TIMEOUT_ABS);
            io_uring_sqe_set_data64(sqe, 0);
            return 0;
        }
        io_uring_prep_timeout(sqe, &c->ts, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | UT_TIMEOUT);
        c->timing = true;
        u->inflight++;
        return 0;
    }
#endif
    default: {
        struct host *h = &c->l->host;
        c->deadline = bench_mono_ns() + ns;
        if (c->tidx >= 0)
            return 0;
        if (h->ntimers == h->captimers) {
            size_t cap = h->captimers ? 2 * h->captimers : 64;
            struct bench_cb **t = realloc(h->timers, cap * sizeof *t);
            if (!t)
                return -ENOMEM;
            h->timers = t;
            h->captimers = cap;
        }
        c->tidx = (long)h->ntimers;
        h->timers[h->ntimers++] = c;
        return 0;
    }
    }
}

void bench_cb_free(struct bench_cb *c)
{
    if (!c)
        return;
    switch (c->l->kind) {
    case BENCH_LIBEVENT:
        event_free(c->ev);
        free(c);
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        /* freed when both have closed (the next run of the loop) */
        uv_close((uv_handle_t *)&c->idle, uv_cb_closed);
        uv_close((uv_handle_t *)&c->timer, uv_cb_closed);
        break;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        if (c->job) { /* on the executor (freed or not by now) */
            cw_join_abort(c->job);
            cw_join_free(c->job);
        }
        if (c->timing) {
            struct io_uring_sqe *sqe = ur_sqe(&c->l->ur);
            if (sqe) {
                io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)c | UT_TIMEOUT, 0);
                io_uring_sqe_set_data64(sqe, 0);
            }
        }
        if (c->nop || c->timing) { /* its completion will come: a zombie */
            c->fn = NULL;
            ur_zombie(&c->l->ur, c);
        } else {
            free(c);
        }
        break;
#endif
    default:
        if (c->tidx >= 0)
            host_timer_del(&c->l->host, c);
        if (c->deferred)
            host_undefer(&c->l->host, c);
        free(c);
        break;
    }
}

static void lev_fd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench_fdw *w = arg;
    (void)fd;
    (void)what;
    w->fn(w->arg);
}

#ifdef BENCH_HAVE_LIBUV
static void uv_fd_cb(uv_poll_t *h, int status, int events)
{
    struct bench_fdw *w = h->data;
    (void)status;
    (void)events;
    w->fn(w->arg);
}

static void uv_fdw_closed(uv_handle_t *h)
{
    free(h->data);
}
#endif

struct bench_fdw *bench_fd_watch(struct bench_loop *l, int fd, bench_fn fn, void *arg, int prio)
{
    struct bench_fdw *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->l = l;
    w->fn = fn;
    w->arg = arg;
    w->fd = fd;
    switch (l->kind) {
    case BENCH_LIBEVENT:
        if (!(w->ev = event_new(l->base, fd, EV_READ | EV_PERSIST, lev_fd_cb, w))
            || (prio >= 0 && event_priority_set(w->ev, prio) < 0) || event_add(w->ev, NULL) < 0) {
            if (w->ev)
                event_free(w->ev);
            free(w);
            return NULL;
        }
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        if (uv_poll_init(&l->uv, &w->poll, fd) < 0) {
            free(w);
            return NULL;
        }
        w->poll.data = w;
        if (uv_poll_start(&w->poll, UV_READABLE, uv_fd_cb) < 0) {
            uv_close((uv_handle_t *)&w->poll, uv_fdw_closed);
            return NULL;
        }
        break;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        if (l->ur.ex) {
            struct ur_fdw_task init = {.w = w};
            if (!l->ur.tq
                || cw_spawn(l->ur.tq, ur_fdw_poll, &init, sizeof init, ur_fdw_drop, &w->job) < 0) {
                free(w);
                return NULL;
            }
        } else {
            ur_poll_arm(&l->ur, w);
            if (!w->armed) {
                free(w);
                return NULL;
            }
        }
        break;
#endif
    default:
        if (host_fd_add(&l->host, fd, POLLIN, false, w) < 0) {
            free(w);
            return NULL;
        }
        break;
    }
    return w;
}

void bench_fd_unwatch(struct bench_fdw *w)
{
    if (!w)
        return;
    switch (w->l->kind) {
    case BENCH_LIBEVENT:
        event_free(w->ev);
        free(w);
        break;
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        uv_close((uv_handle_t *)&w->poll, uv_fdw_closed);
        break;
#endif
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        if (w->job) {
            cw_join_abort(w->job);
            cw_join_free(w->job);
        }
        if (w->armed) {
            struct io_uring_sqe *sqe = ur_sqe(&w->l->ur);
            if (sqe) {
                io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)w | UT_POLL);
                io_uring_sqe_set_data64(sqe, 0);
            }
            w->fn = NULL;
            ur_zombie(&w->l->ur, w);
        } else {
            free(w);
        }
        break;
#endif
    default: {
        struct host *h = &w->l->host;
        for (size_t i = 0; i < h->nfds; i++)
            if (!h->meta[i].exec && h->meta[i].raw == w) {
                host_fd_del(h, i);
                break;
            }
        free(w);
        break;
    }
    }
}

/* ---- overhead's baselines --------------------------------------------------------- */

const char *bench_raw_rearm_name(int kind)
{
    switch (kind) {
    case BENCH_LIBUV:
        return "uv_idle";
    case BENCH_EMBED:
        return "deferred";
    case BENCH_URING:
        return "nop";
    default:
        return "active";
    }
}

struct rearm {
    uint64_t left, count;
    struct bench_cb *self; /* embed */
#ifdef BENCH_HAVE_LIBUV
    uv_idle_t idle; /* libuv */
#endif
};

#ifdef BENCH_HAVE_LIBUV
/* Stays active (re-armed: libuv calls it again at the next iteration)
 * until it has run left times. */
static void uv_rearm_cb(uv_idle_t *h)
{
    struct rearm *a = h->data;
    a->count++;
    if (--a->left == 0)
        uv_idle_stop(h);
}

static void uv_close_noop(uv_handle_t *h)
{
    (void)h;
}
#endif

static void host_rearm_fn(void *arg)
{
    struct rearm *a = arg;
    a->count++;
    if (--a->left)
        host_defer(&a->self->l->host, a->self);
}

#ifdef BENCH_HAVE_URING
/* The uring baselines: each callback is a NOP request whose completion
 * runs it; re-arming queues another NOP, submitted with the turn's batch
 * by the next io_uring_submit_and_wait() (one system call per turn, the
 * NOPs complete inline). Straight against liburing, as the libuv ones
 * against libuv: no bench_cb in the hot path. */
static bool ur_nop(struct ur *u, void *data)
{
    struct io_uring_sqe *sqe = ur_sqe(u);
    if (!sqe)
        return false;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, data);
    return true;
}

/* Runs the ring until live callbacks have stopped re-arming: step(data)
 * returns false when its callback did not re-arm. ns taken, 0 on error. */
static uint64_t ur_raw_run(struct ur *u, unsigned live, bool (*step)(struct ur *, void *))
{
    uint64_t t0 = bench_mono_ns();
    while (live) {
        if (!ur_benign(io_uring_submit_and_wait(&u->ring, 1)))
            return 0;
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            n++;
            if (!step(u, io_uring_cqe_get_data(cqe)))
                live--;
        }
        io_uring_cq_advance(&u->ring, n);
    }
    return bench_mono_ns() - t0;
}
#endif

/* Runs the loop for the callbacks (already started): ns taken, 0 on error. */
static uint64_t timed_run(struct bench_loop *l)
{
    uint64_t t0 = bench_mono_ns();
    if (bench_loop_run(l) < 0)
        return 0;
    return bench_mono_ns() - t0;
}

#ifdef BENCH_HAVE_URING
static bool ur_rearm_step(struct ur *u, void *data)
{
    struct rearm *a = data;
    a->count++;
    return --a->left && ur_nop(u, a);
}
#endif

double bench_raw_yield(struct bench_loop *l, uint32_t tasks, uint32_t k)
{
    struct rearm *a = calloc(tasks ? tasks : 1, sizeof *a);
    double res = -1;
    if (!a)
        return -1;
    uint64_t dt = 0, want = (uint64_t)tasks * (k + 1), got = 0;
    switch (l->kind) {
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        for (uint32_t i = 0; i < tasks; i++) {
            a[i].left = (uint64_t)k + 1;
            uv_idle_init(&l->uv, &a[i].idle);
            a[i].idle.data = &a[i];
            uv_idle_start(&a[i].idle, uv_rearm_cb);
        }
        dt = timed_run(l);
        for (uint32_t i = 0; i < tasks; i++)
            uv_close((uv_handle_t *)&a[i].idle, uv_close_noop);
        uv_run(&l->uv, UV_RUN_DEFAULT); /* the closes */
        break;
#endif
    case BENCH_EMBED:
        for (uint32_t i = 0; i < tasks; i++) {
            a[i].left = (uint64_t)k + 1;
            if (!(a[i].self = bench_cb_new(l, host_rearm_fn, &a[i], -1)))
                goto out;
            bench_cb_now(a[i].self);
        }
        dt = timed_run(l);
        break;
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        for (uint32_t i = 0; i < tasks; i++) {
            a[i].left = (uint64_t)k + 1;
            if (!ur_nop(&l->ur, &a[i]))
                goto out;
        }
        dt = ur_raw_run(&l->ur, tasks, ur_rearm_step);
        break;
#endif
    default:
        goto out;
    }
    for (uint32_t i = 0; i < tasks; i++)
        got += a[i].count;
    if (got == want && dt)
        res = (double)dt / (double)want;
out:
    for (uint32_t i = 0; l->kind == BENCH_EMBED && i < tasks; i++)
        bench_cb_free(a[i].self);
    free(a);
    return res;
}

double bench_raw_rearm(struct bench_loop *l, uint32_t n)
{
    return bench_raw_yield(l, 1, n ? n - 1 : 0);
}

/* Two ends, one count: each end's callback arms the other one. */
struct pp {
    uint64_t left, count;
    struct bench_cb *cb[2]; /* embed */
#ifdef BENCH_HAVE_LIBUV
    uv_idle_t h[2]; /* libuv */
#endif
};

struct pp_end {
    struct pp *p;
    int me;
};

static void host_pp_fn(void *arg)
{
    struct pp_end *e = arg;
    struct pp *p = e->p;
    if (p->left) {
        p->left--;
        p->count++;
        host_defer(&p->cb[!e->me]->l->host, p->cb[!e->me]);
    }
}

#ifdef BENCH_HAVE_LIBUV
static void uv_pp_cb(uv_idle_t *h)
{
    struct pp *p = h->data;
    uv_idle_stop(h);
    if (p->left) {
        p->left--;
        p->count++;
        uv_idle_start(&p->h[h == &p->h[0]], uv_pp_cb);
    }
}
#endif

#ifdef BENCH_HAVE_URING
static bool ur_pp_step(struct ur *u, void *data)
{
    struct pp_end *e = data;
    struct pp *p = e->p;
    if (!p->left)
        return false;
    p->left--;
    p->count++;
    return ur_nop(u, e + (e->me ? -1 : 1)); /* the other end */
}
#endif

double bench_raw_pingpong(struct bench_loop *l, uint32_t hops)
{
    struct pp p;
    struct pp_end e[2] = {{&p, 0}, {&p, 1}};
    uint64_t dt = 0;
    memset(&p, 0, sizeof p);
    p.left = hops;
    switch (l->kind) {
#ifdef BENCH_HAVE_LIBUV
    case BENCH_LIBUV:
        for (int i = 0; i < 2; i++) {
            uv_idle_init(&l->uv, &p.h[i]);
            p.h[i].data = &p;
        }
        uv_idle_start(&p.h[0], uv_pp_cb);
        dt = timed_run(l);
        for (int i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&p.h[i], uv_close_noop);
        uv_run(&l->uv, UV_RUN_DEFAULT);
        break;
#endif
    case BENCH_EMBED:
        if (!(p.cb[0] = bench_cb_new(l, host_pp_fn, &e[0], -1))
            || !(p.cb[1] = bench_cb_new(l, host_pp_fn, &e[1], -1))) {
            bench_cb_free(p.cb[0]);
            return -1;
        }
        bench_cb_now(p.cb[0]);
        dt = timed_run(l);
        bench_cb_free(p.cb[0]);
        bench_cb_free(p.cb[1]);
        break;
#ifdef BENCH_HAVE_URING
    case BENCH_URING:
        if (!ur_nop(&l->ur, &e[0]))
            return -1;
        dt = ur_raw_run(&l->ur, 1, ur_pp_step);
        break;
#endif
    default:
        return -1;
    }
    if (p.count != hops || !dt)
        return -1;
    return (double)dt / hops;
}
