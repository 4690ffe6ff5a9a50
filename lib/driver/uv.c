/*
 * driver/uv.c - the executor on a libuv loop: the ops of
 * clockworker/driver.h, cw_executor_new_uv() and cw_executor_uv_loop().
 * Its own library (libclockworker-uv): it reaches the core only through
 * the exported cw_* API.
 *
 * How a turn of uv_run() (libuv 1.x, src/unix/core.c) serves the core:
 *
 *   timers -> pending -> idle -> prepare -> poll I/O -> check -> closing
 *
 * The round runs in a uv_check_t, started by schedule() and stopped by
 * the round that leaves no work: check callbacks run right after the poll
 * phase, so the I/O callbacks the poll found run between two rounds. A
 * check handle started (or kept) during the check phase runs in the next
 * turn only (libuv moves the list aside before running it), after the
 * next poll. While a round is pending a no-op uv_idle_t is active too:
 * an active idle handle makes the poll's timeout 0, so the poll looks at
 * the fds without blocking and the round follows at once.
 *
 * Not a zero-timeout uv_timer_t: libuv 1.44 runs the timers phase until
 * no timer is due, and a timer re-armed with timeout 0 from its own
 * callback is due again at once (due = loop time + 0), so a round that
 * leaves work would run again and again in one timers phase with no I/O
 * poll between (test/check_uv.c shows it on the installed libuv, and
 * that the check/idle pair does poll between rounds).
 *
 * The one timer is a uv_timer_t in milliseconds: delays are rounded up
 * (never early because of the rounding; libuv's loop time is a whole
 * millisecond, floored, so it may still fire up to 1 ms early and the
 * core re-arms). libuv adds the delay to the loop time it cached when
 * the turn began, possibly a whole round ago: uv_update_time() first.
 *
 * fd readiness: libuv allows one uv_poll_t per fd and loop (uv_poll_init
 * on an fd already watched says UV_EEXIST), and several cw_fdwait may
 * wait on one fd. So each fd with records has one shared entry (struct
 * uvfd: the uv_poll_t, the list of armed records, how many armed records
 * want each interest), found through an array indexed by fd as libuv's
 * own watcher array. The poll handle is started with the union of the
 * armed records' interests and stopped when none is armed; a report wakes
 * (and disarms) the armed records whose interest it matches. The entry is
 * made at a record's first arm and closed when its last record is freed;
 * a record is attached to it from its first arm until fd_free, so a task
 * waiting on an fd again and again reuses the handle (no allocation;
 * libuv itself does an epoll_ctl() for each start and stop).
 *
 * Handles close asynchronously (uv_close()): the driver's state is freed
 * in the close callback of its last handle, an fd entry in its own. The
 * loop must run once after cw_executor_free() for that (clockworker/uv.h
 * says so, as libuv does for every handle).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <uv.h>

#include "clockworker/driver.h"
#include "clockworker/uv.h"

/* A link of a circular doubly-linked list; a list's head is a sentinel.
 * An unlinked node points to itself. */
struct link {
    struct link *prev, *next;
};

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

static bool link_linked(const struct link *l)
{
    return l->next != l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

static void link_push(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

struct uvfd;

/* A record (driver.h's fd_new): one cw_fdwait's watch of its fd. */
struct uvrec {
    struct link link;   /* in its entry's armed list (or a report's
                           firing list); self-linked when not armed */
    struct uvfd *f;     /* the entry, from the first arm to fd_free */
    cw_fdwait *token;
    int fd;
    short what;         /* CW_FD_READ and/or CW_FD_WRITE */
    bool armed;         /* on the armed list, counted in nread/nwrite */
};

/* The one uv_poll_t of an fd, shared by its records. */
struct uvfd {
    uv_poll_t poll;     /* .data is the entry */
    struct uvdrv *d;    /* NULL once closing (the driver may be gone) */
    int fd;
    struct link armed;  /* the armed records */
    int nrecs;          /* records attached, armed or not */
    int nread, nwrite;  /* armed records wanting each interest */
    int events;         /* UV_READABLE/UV_WRITABLE the poll runs with;
                           0: stopped */
};

struct uvdrv {
    cw_executor *ex;
    uv_loop_t *loop;
    uv_check_t check;   /* the round, after the poll phase */
    uv_idle_t idle;     /* no-op: the poll does not block while a round
                           is pending */
    uv_timer_t timer;   /* the core's one timer */
    uv_poll_t notify;   /* the remote-wake fd */
    bool scheduled;     /* check and idle are started */
    int open;           /* handles not yet closed; freed at 0 */
    struct uvfd **fds;  /* fd -> entry, NULL: none */
    int nfds;           /* the length of fds */
};

/* ---- the round, the timer, the remote-wake fd ----------------------------- */

static void check_cb(uv_check_t *h)
{
    struct uvdrv *d = h->data;
    d->scheduled = false;
    cw_driver_round(d->ex);
    /* A round that leaves work schedules the next one from inside
     * (d->scheduled again, the handles still started): it runs after the
     * next turn's poll. Otherwise nothing keeps the loop turning. */
    if (!d->scheduled) {
        uv_check_stop(&d->check);
        uv_idle_stop(&d->idle);
    }
}

static void idle_cb(uv_idle_t *h)
{
    (void)h;
}

static void timer_cb(uv_timer_t *h)
{
    struct uvdrv *d = h->data;
    /* A round made due is scheduled (check and idle): it runs after this
     * turn's poll, which then does not block. Not run here: the timers
     * phase comes before the poll, and the last round may have run in the
     * previous turn's check phase, after its poll: running one here would
     * leave no I/O poll between the two. */
    cw_driver_timer(d->ex);
}

static void notify_cb(uv_poll_t *h, int status, int events)
{
    struct uvdrv *d = h->data;
    (void)events;
    /* status < 0 (POLLERR on an eventfd: never seen): libuv stopped the
     * handle; drain anyway, and the core's next watch_notify(true)
     * restarts it. */
    (void)status;
    cw_driver_notified(d->ex);
}

static void drv_closed(uv_handle_t *h)
{
    struct uvdrv *d = h->data;
    if (--d->open == 0)
        cw_driver_dealloc(d);
}

static void fd_closed(uv_handle_t *h)
{
    cw_driver_dealloc(h->data);
}

static void fd_close(struct uvfd *f);

static void uvd_free(void *drv)
{
    struct uvdrv *d = drv;
    /* The core freed every record before (cw__fdwaits_free), which closed
     * every entry; close any left all the same. */
    for (int fd = 0; fd < d->nfds; fd++)
        if (d->fds[fd])
            fd_close(d->fds[fd]);
    cw_driver_dealloc(d->fds);
    d->fds = NULL;
    d->nfds = 0;
    /* A handle the user closed already (a uv_walk() closing every handle
     * before cw_executor_free(), which uv.h forbids) is not closed twice
     * (libuv asserts); the state is then leaked, as libuv may still touch
     * that handle after we would free it. */
    uv_handle_t *h[4] = {(uv_handle_t *)&d->check, (uv_handle_t *)&d->idle,
                         (uv_handle_t *)&d->timer, (uv_handle_t *)&d->notify};
    d->open = 0;
    for (int i = 0; i < 4; i++)
        d->open += !uv_is_closing(h[i]);
    bool leak = d->open < 4;
    for (int i = 0; i < 4; i++)
        if (!uv_is_closing(h[i])) {
            if (leak)
                h[i]->data = NULL;
            uv_close(h[i], leak ? NULL : drv_closed);
        }
}

static int uvd_init(cw_executor *ex, void *arg, void **out)
{
    struct uvdrv *d = cw_driver_alloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->ex = ex;
    d->loop = arg;
    /* The only init that can fail comes first: nothing to close then. */
    int err = uv_poll_init(d->loop, &d->notify, cw_driver_notify_fd(ex));
    if (err < 0) {
        cw_driver_dealloc(d);
        return err;
    }
    uv_check_init(d->loop, &d->check);
    uv_idle_init(d->loop, &d->idle);
    uv_timer_init(d->loop, &d->timer);
    d->notify.data = d->check.data = d->idle.data = d->timer.data = d;
    *out = d;
    return 0;
}

/* Neither start allocates: schedule() cannot fail. */
static void uvd_schedule(void *drv)
{
    struct uvdrv *d = drv;
    if (d->scheduled)
        return;
    d->scheduled = true;
    uv_check_start(&d->check, check_cb);
    uv_idle_start(&d->idle, idle_cb);
}

static int uvd_watch_notify(void *drv, bool on)
{
    struct uvdrv *d = drv;
    return on ? uv_poll_start(&d->notify, UV_READABLE, notify_cb) : uv_poll_stop(&d->notify);
}

/* Relative, in libuv's milliseconds, rounded up; beyond a day, a day (it
 * fires early and the core re-arms). */
static void uvd_arm_timer(void *drv, uint64_t delay_ns)
{
    struct uvdrv *d = drv;
    const uint64_t day_ns = 86400ull * 1000000000u;
    if (delay_ns > day_ns)
        delay_ns = day_ns;
    uint64_t ms = delay_ns / 1000000 + (delay_ns % 1000000 != 0);
    /* The loop time was cached when this turn began, maybe a round ago:
     * from it the timer would fire early by that much (and be re-armed, a
     * wasted turn). */
    uv_update_time(d->loop);
    uv_timer_start(&d->timer, timer_cb, ms, 0);
}

static void uvd_disarm_timer(void *drv)
{
    struct uvdrv *d = drv;
    uv_timer_stop(&d->timer);
}

static int uvd_run_once(void *drv)
{
    struct uvdrv *d = drv;
    /* uv_run(UV_RUN_ONCE) on a loop with nothing active returns at once
     * with 0, as it does after a turn that left nothing: ask first. */
    if (!uv_loop_alive(d->loop))
        return 1;
    uv_run(d->loop, UV_RUN_ONCE);
    return 0;
}

/* ---- fd records ----------------------------------------------------------- */

static void fd_poll_cb(uv_poll_t *h, int status, int events);

/* Start the poll with the union of the armed records' interests, or stop
 * it when none is armed. */
static int fd_update(struct uvfd *f)
{
    int want = (f->nread ? UV_READABLE : 0) | (f->nwrite ? UV_WRITABLE : 0);
    if (want == f->events)
        return 0;
    int err = want ? uv_poll_start(&f->poll, want, fd_poll_cb) : uv_poll_stop(&f->poll);
    f->events = err < 0 ? 0 : want;
    return err;
}

static void rec_disarm(struct uvrec *r)
{
    struct uvfd *f = r->f;
    link_remove(&r->link);
    r->armed = false;
    f->nread -= (r->what & CW_FD_READ) != 0;
    f->nwrite -= (r->what & CW_FD_WRITE) != 0;
}

static void fd_close(struct uvfd *f)
{
    struct uvdrv *d = f->d;
    d->fds[f->fd] = NULL;
    f->d = NULL;
    uv_close((uv_handle_t *)&f->poll, fd_closed);
}

static void fd_poll_cb(uv_poll_t *h, int status, int events)
{
    struct uvfd *f = h->data;
    short seen;
    if (status < 0) {
        /* An error (POLLERR: libuv stopped the handle): every armed
         * record, with its interest; the task's syscall sees the error. */
        f->events = 0;
        seen = CW_FD_READ | CW_FD_WRITE;
    } else {
        seen = (short)(((events & UV_READABLE) ? CW_FD_READ : 0)
                       | ((events & UV_WRITABLE) ? CW_FD_WRITE : 0));
    }
    /* Take the records this report wakes off the armed list first, and
     * set the poll for the rest, then wake them: a wake may free or arm
     * records (of this fd too); each of those keeps the entry right. */
    struct link firing;
    link_init(&firing);
    for (struct link *l = f->armed.next, *next; l != &f->armed; l = next) {
        next = l->next;
        struct uvrec *r = (struct uvrec *)l;
        if (r->what & seen) {
            rec_disarm(r);
            link_push(&firing, &r->link);
        }
    }
    fd_update(f);
    while (link_linked(&firing)) {
        struct uvrec *r = (struct uvrec *)firing.next;
        link_remove(&r->link);
        cw_driver_fd_ready(r->token, (short)(r->what & seen));
    }
}

static void *uvd_fd_new(void *drv, int fd, short what, cw_fdwait *token)
{
    (void)drv;
    struct uvrec *r = cw_driver_alloc(sizeof *r);
    if (!r)
        return NULL;
    link_init(&r->link);
    r->token = token;
    r->fd = fd;
    r->what = what;
    return r;
}

/* The entry of fd, made (with its uv_poll_init) when there is none. */
static int fd_entry(struct uvdrv *d, int fd, struct uvfd **out)
{
    if (fd < 0)
        return -EBADF;
    if (fd < d->nfds && d->fds[fd]) {
        *out = d->fds[fd];
        return 0;
    }
    if (fd >= d->nfds) {
        int n = d->nfds ? d->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct uvfd **fds = cw_driver_alloc((size_t)n * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        if (d->nfds)
            memcpy(fds, d->fds, (size_t)d->nfds * sizeof *fds);
        cw_driver_dealloc(d->fds);
        d->fds = fds;
        d->nfds = n;
    }
    struct uvfd *f = cw_driver_alloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    /* A bad fd (EBADF), a regular file (EPERM), an fd watched by another
     * handle of the loop (EEXIST): the wait fails. */
    int err = uv_poll_init(d->loop, &f->poll, fd);
    if (err < 0) {
        cw_driver_dealloc(f);
        return err;
    }
    f->poll.data = f;
    f->d = d;
    f->fd = fd;
    link_init(&f->armed);
    d->fds[fd] = f;
    *out = f;
    return 0;
}

static int uvd_fd_arm(void *drv, void *rec)
{
    struct uvdrv *d = drv;
    struct uvrec *r = rec;
    if (!r->f) {
        struct uvfd *f;
        int err = fd_entry(d, r->fd, &f);
        if (err < 0)
            return err;
        r->f = f;
        f->nrecs++;
    }
    struct uvfd *f = r->f;
    if (r->armed)
        return 0;
    if (link_linked(&r->link))
        link_remove(&r->link); /* on a report's firing list: re-armed */
    link_push(&f->armed, &r->link);
    r->armed = true;
    f->nread += (r->what & CW_FD_READ) != 0;
    f->nwrite += (r->what & CW_FD_WRITE) != 0;
    int err = fd_update(f);
    if (err < 0) {
        rec_disarm(r);
        fd_update(f);
    }
    return err;
}

static void uvd_fd_free(void *drv, void *rec)
{
    (void)drv;
    struct uvrec *r = rec;
    struct uvfd *f = r->f;
    if (f) {
        if (r->armed)
            rec_disarm(r);
        else if (link_linked(&r->link))
            link_remove(&r->link); /* on a report's firing list */
        if (--f->nrecs == 0)
            fd_close(f);
        else
            fd_update(f);
    }
    cw_driver_dealloc(r);
}

/* ---- the ops and the constructor ------------------------------------------ */

static const cw_driver_ops uv_ops = {
    .abi = CW_DRIVER_ABI,
    .kind = CW_LOOP_LIBUV,
    .init = uvd_init,
    .free = uvd_free,
    .schedule = uvd_schedule,
    .watch_notify = uvd_watch_notify,
    .arm_timer = uvd_arm_timer,
    .disarm_timer = uvd_disarm_timer,
    .fd_new = uvd_fd_new,
    .fd_arm = uvd_fd_arm,
    .fd_free = uvd_fd_free,
    .run_once = uvd_run_once,
};

int cw_executor_new_uv(uv_loop_t *loop, const cw_config *cfg, cw_executor **out)
{
    if (!loop) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return cw_driver_executor_new(&uv_ops, loop, cfg, out);
}

uv_loop_t *cw_executor_uv_loop(const cw_executor *ex)
{
    struct uvdrv *d = cw_driver_state(ex, &uv_ops);
    return d ? d->loop : NULL;
}
