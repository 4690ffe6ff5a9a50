/*
 * driver/embed.c - the executor hosted by a loop of the user's own: the
 * ops of clockworker/driver.h turned into the two hooks of
 * clockworker/embed.h (which fds to watch, when to tick) and the host's
 * calls back (cw_embed_fd_ready(), cw_embed_tick()).
 *
 * State, per executor:
 *   - the round: due (schedule() ran) until a tick runs it;
 *   - the one timer: an absolute deadline on CLOCK_MONOTONIC (the core
 *     arms a relative delay; early is fine, it re-arms);
 *   - the remote-wake fd: readable, a flag a tick turns into
 *     cw_driver_notified(), so fd_ready never runs a task and a tick
 *     runs at most one round;
 *   - per fd, an entry: its records (one per cw_fdwait, one-shot, armed
 *     or not) and what the host was last told. The entries are an array
 *     indexed by fd, as libevent's evmap on Unix: O(1) lookup, memory
 *     O(highest fd).
 *
 * What the host is told is computed, not pushed: each op only marks its
 * fd (or the timer) dirty, and flush() compares the union of the fd's
 * armed records with what was told, once the outermost entry point
 * returns (or at once when the op came from outside any, e.g. cw_spawn()
 * from main()). So a record that fires and is re-armed within one tick
 * (a reader draining a socket) costs the host nothing, and the host sees
 * one watch_fd per real change. Records freed while the host is inside
 * an entry point are only marked dead and reaped by flush() (mark then
 * reap: fd_ready walks an fd's records while wakes run).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "clockworker/driver.h"
#include "clockworker/embed.h"

struct erec {
    struct erec *prev, *next; /* the fd's records */
    cw_fdwait *token;
    int fd;
    short what;
    bool armed;
    bool dead; /* freed inside an entry point: reaped by flush() */
};

struct efd {
    struct erec *recs;
    struct efd *next_dirty;
    int fd;
    short told;  /* what the host watches for this fd */
    bool notify; /* the remote-wake fd, watched for reading */
    bool dirty;  /* on the dirty list */
};

/* What set_timer last said, as a deadline: T_NONE (-1), T_ROUND (0), or
 * T_AT (told_at, absolute). */
enum { T_NONE, T_ROUND, T_AT };

struct edrv {
    cw_executor *ex;
    cw_embed_hooks hooks;
    void *arg;
    struct efd **byfd; /* entries by fd, NULL where none */
    int nbyfd;
    struct efd *dirty; /* entries whose host state may be stale */
    int notify_fd;
    int depth;         /* entry points running (tick, fd_ready, ...) */
    bool round_due;    /* schedule() asked, the round has not run */
    bool notified;     /* the remote-wake fd was reported readable */
    bool timer_armed;
    bool timer_dirty;
    uint64_t timer_at; /* CLOCK_MONOTONIC ns */
    int told_kind;
    uint64_t told_at;
};

static const cw_driver_ops embed_ops;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- telling the host ------------------------------------------------------ */

static struct efd *entry_of(struct edrv *d, int fd)
{
    return fd >= 0 && fd < d->nbyfd ? d->byfd[fd] : NULL;
}

/* The entry of fd, made if missing; NULL when out of memory. */
static struct efd *entry_get(struct edrv *d, int fd)
{
    if (fd >= d->nbyfd) {
        int n = d->nbyfd ? d->nbyfd : 64;
        while (n <= fd)
            n = n > INT_MAX / 2 ? INT_MAX : n * 2;
        struct efd **a = cw_driver_alloc((size_t)n * sizeof *a);
        if (!a)
            return NULL;
        if (d->nbyfd)
            memcpy(a, d->byfd, (size_t)d->nbyfd * sizeof *a);
        cw_driver_dealloc(d->byfd);
        d->byfd = a;
        d->nbyfd = n;
    }
    struct efd *e = d->byfd[fd];
    if (!e) {
        if (!(e = cw_driver_alloc(sizeof *e)))
            return NULL;
        e->fd = fd;
        d->byfd[fd] = e;
    }
    return e;
}

static void mark(struct edrv *d, struct efd *e)
{
    if (!e->dirty) {
        e->dirty = true;
        e->next_dirty = d->dirty;
        d->dirty = e;
    }
}

static short wanted(const struct efd *e)
{
    short w = e->notify ? CW_FD_READ : 0;
    for (const struct erec *r = e->recs; r; r = r->next)
        if (r->armed)
            w |= r->what;
    return w;
}

static void reap(struct efd *e)
{
    struct erec *r = e->recs;
    while (r) {
        struct erec *next = r->next;
        if (r->dead) {
            if (r->prev)
                r->prev->next = r->next;
            else
                e->recs = r->next;
            if (r->next)
                r->next->prev = r->prev;
            cw_driver_dealloc(r);
        }
        r = next;
    }
}

/* Bring the host up to date: each dirty fd's interest, then the timer.
 * Only from outside every entry point (depth 0). A hook that calls back
 * into the executor is the host's bug; depth keeps it from recursing. */
static void flush(struct edrv *d)
{
    if (d->depth)
        return;
    d->depth++;
    while (d->dirty) {
        struct efd *e = d->dirty;
        d->dirty = e->next_dirty;
        e->dirty = false;
        e->next_dirty = NULL;
        reap(e);
        short w = wanted(e);
        if (w != e->told) {
            e->told = w;
            d->hooks.watch_fd(d->arg, e->fd, w);
        }
        if (!e->recs && e->fd != d->notify_fd) { /* told 0: forget fd */
            d->byfd[e->fd] = NULL;
            cw_driver_dealloc(e);
        }
    }
    if (d->timer_dirty) {
        d->timer_dirty = false;
        int kind = d->round_due || d->notified ? T_ROUND : d->timer_armed ? T_AT : T_NONE;
        if (kind != d->told_kind || (kind == T_AT && d->timer_at != d->told_at)) {
            d->told_kind = kind;
            d->told_at = d->timer_at;
            int64_t delay = -1;
            if (kind == T_ROUND) {
                delay = 0;
            } else if (kind == T_AT) {
                uint64_t now = mono_ns();
                uint64_t left = d->timer_at > now ? d->timer_at - now : 0;
                delay = left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
                /* 0 means "a round is due"; a timer already due says
                 * 1 ns, which every host rounds up to its resolution */
                if (!delay)
                    delay = 1;
            }
            d->hooks.set_timer(d->arg, delay);
        }
    }
    d->depth--;
}

/* ---- the ops ---------------------------------------------------------------- */

static int embed_init(cw_executor *ex, void *arg, void **out)
{
    const struct edrv *proto = arg;
    struct edrv *d = cw_driver_alloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->ex = ex;
    d->hooks = proto->hooks;
    d->arg = proto->arg;
    d->told_kind = T_NONE;
    d->notify_fd = cw_driver_notify_fd(ex);
    /* the remote-wake fd's entry now, kept until the end, so that
     * watch_notify never fails */
    if (!entry_get(d, d->notify_fd)) {
        cw_driver_dealloc(d->byfd);
        cw_driver_dealloc(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

/* The executor is going: the core freed every record and disarmed the
 * timer already (flushed, at depth 0); stop whatever the host still
 * watches (the remote-wake fd) and free the entries. */
static void embed_free(void *drv)
{
    struct edrv *d = drv;
    for (int fd = 0; fd < d->nbyfd; fd++) {
        struct efd *e = d->byfd[fd];
        if (!e)
            continue;
        if (e->told)
            d->hooks.watch_fd(d->arg, fd, 0);
        for (struct erec *r = e->recs, *next; r; r = next) {
            next = r->next;
            cw_driver_dealloc(r);
        }
        cw_driver_dealloc(e);
    }
    if (d->told_kind != T_NONE)
        d->hooks.set_timer(d->arg, -1);
    cw_driver_dealloc(d->byfd);
    cw_driver_dealloc(d);
}

static void embed_schedule(void *drv)
{
    struct edrv *d = drv;
    d->round_due = true;
    d->timer_dirty = true;
    flush(d);
}

static int embed_watch_notify(void *drv, bool on)
{
    struct edrv *d = drv;
    struct efd *e = entry_of(d, d->notify_fd); /* made at init, kept */
    e->notify = on;
    mark(d, e);
    flush(d);
    return 0;
}

static void embed_arm_timer(void *drv, uint64_t delay_ns)
{
    struct edrv *d = drv;
    uint64_t now = mono_ns();
    d->timer_at = delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
    d->timer_armed = true;
    d->timer_dirty = true;
    flush(d);
}

static void embed_disarm_timer(void *drv)
{
    struct edrv *d = drv;
    if (!d->timer_armed)
        return;
    d->timer_armed = false;
    d->timer_dirty = true;
    flush(d);
}

static void *embed_fd_new(void *drv, int fd, short what, cw_fdwait *token)
{
    struct edrv *d = drv;
    struct efd *e = entry_get(d, fd);
    if (!e)
        return NULL;
    struct erec *r = cw_driver_alloc(sizeof *r);
    if (!r) {
        mark(d, e); /* forgets e at the next flush if it is empty */
        flush(d);
        return NULL;
    }
    r->token = token;
    r->fd = fd;
    r->what = (short)(what & (CW_FD_READ | CW_FD_WRITE));
    r->next = e->recs;
    if (e->recs)
        e->recs->prev = r;
    e->recs = r;
    return r;
}

/* The host is asked for nothing it cannot know to refuse: a bad fd shows
 * here, with one fcntl() when the host would have to watch something new
 * for this fd (as libevent's epoll_ctl() comes only with a change of the
 * fd's interest), so that the wait fails as it does on libevent. */
static int embed_fd_arm(void *drv, void *rec)
{
    struct edrv *d = drv;
    struct erec *r = rec;
    struct efd *e = entry_of(d, r->fd);
    if ((e->told & r->what) != r->what && fcntl(r->fd, F_GETFD) < 0)
        return -EBADF;
    r->armed = true;
    mark(d, e);
    flush(d);
    return 0;
}

static void embed_fd_free(void *drv, void *rec)
{
    struct edrv *d = drv;
    struct erec *r = rec;
    r->armed = false;
    r->dead = true;
    mark(d, entry_of(d, r->fd));
    flush(d); /* reaps it now when no entry point runs */
}

static int embed_run_once(void *drv)
{
    struct edrv *d = drv;
    if (!d->hooks.run_once)
        return -ENOTSUP;
    return d->hooks.run_once(d->arg);
}

static const cw_driver_ops embed_ops = {
    .abi = CW_DRIVER_ABI,
    .kind = CW_LOOP_EMBED,
    .init = embed_init,
    .free = embed_free,
    .schedule = embed_schedule,
    .watch_notify = embed_watch_notify,
    .arm_timer = embed_arm_timer,
    .disarm_timer = embed_disarm_timer,
    .fd_new = embed_fd_new,
    .fd_arm = embed_fd_arm,
    .fd_free = embed_fd_free,
    .run_once = embed_run_once,
};

/* ---- the host's calls ------------------------------------------------------ */

int cw_executor_new_embed(const cw_embed_hooks *hooks, void *arg, const cw_config *cfg,
                          cw_executor **out)
{
    if (!hooks || !hooks->watch_fd || !hooks->set_timer) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    struct edrv proto = {.hooks = *hooks, .arg = arg};
    return cw_driver_executor_new(&embed_ops, &proto, cfg, out);
}

void cw_embed_fd_ready(cw_executor *ex, int fd, short what)
{
    struct edrv *d = cw_driver_state(ex, &embed_ops);
    what &= CW_FD_READ | CW_FD_WRITE;
    if (!d || !what)
        return;
    struct efd *e = entry_of(d, fd);
    if (!e)
        return; /* nobody waits on fd (any more) */
    d->depth++;
    if (e->notify && (what & CW_FD_READ) && !d->notified) {
        d->notified = true; /* the next tick drains it */
        d->timer_dirty = true;
    }
    /* Each armed record interested: disarmed (one-shot), then its task
     * woken. A wake runs no task, but dead records stay linked until
     * flush() (depth > 0), so next stays valid whatever it frees. */
    for (struct erec *r = e->recs, *next; r; r = next) {
        next = r->next;
        short got = (short)(r->what & what);
        if (!r->armed || !got)
            continue;
        r->armed = false;
        mark(d, e);
        cw_driver_fd_ready(r->token, got);
    }
    d->depth--;
    flush(d);
}

void cw_embed_tick(cw_executor *ex)
{
    struct edrv *d = cw_driver_state(ex, &embed_ops);
    if (!d || d->depth)
        return; /* from inside a task or a hook: the outer tick runs */
    d->depth++;
    bool ran = false;
    if (d->timer_armed && mono_ns() >= d->timer_at) {
        d->timer_armed = false;
        d->timer_dirty = true;
        /* a round this makes due runs below, in this tick: the host
         * has polled I/O just before */
        cw_driver_timer(ex);
    }
    if (d->notified) {
        d->notified = false;
        d->timer_dirty = true;
        /* drains the fd; runs the round (ours for this tick) unless one
         * is scheduled, which then runs below and takes the wakes */
        ran = !d->round_due;
        cw_driver_notified(ex);
    }
    if (!ran && d->round_due) {
        d->round_due = false; /* before: the round may schedule again */
        d->timer_dirty = true;
        cw_driver_round(ex);
    }
    d->depth--;
    flush(d);
}

int64_t cw_embed_next_ns(const cw_executor *ex)
{
    const struct edrv *d = cw_driver_state(ex, &embed_ops);
    if (!d)
        return -1;
    if (d->round_due || d->notified)
        return 0;
    if (!d->timer_armed)
        return -1;
    uint64_t now = mono_ns();
    if (d->timer_at <= now)
        return 0;
    uint64_t left = d->timer_at - now;
    return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

int cw_embed_next_ms(const cw_executor *ex)
{
    int64_t ns = cw_embed_next_ns(ex);
    if (ns <= 0)
        return (int)ns;
    int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

void *cw_embed_arg(const cw_executor *ex)
{
    const struct edrv *d = cw_driver_state(ex, &embed_ops);
    return d ? d->arg : NULL;
}
