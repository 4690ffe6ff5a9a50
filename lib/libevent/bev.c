/*
 * bev.c - cw_bev_wait: bufferevent conditions as leaf futures.
 *
 * A wait owns nothing until its first PENDING poll. Arming saves the
 * bufferevent's three callbacks and their argument, plus the one
 * watermark the kind needs, and installs this file's callbacks with the
 * future as their argument; disarming puts everything back. Whether a
 * bufferevent is taken is read from the bufferevent itself (its read
 * callback is ours), so no table is needed and two futures on one
 * bufferevent are refused with -EBUSY.
 *
 * States: IDLE (zeroed or dropped: READY with -EINVAL) -> INIT (after
 * init, or after a completed wait) -> ARMED (callbacks ours, waker held)
 * -> INIT on completion or IDLE on drop. Callbacks only record and wake;
 * the poll decides (so a spurious wake costs one check).
 *
 * The callback form (cw_bufferevent_setcb(), at the end): the user's
 * callbacks run on a queue. A binding (struct bevcb, the bufferevent's
 * cbarg) holds them; this file's trampolines record what libevent
 * reported and spawn one small task per activation, which holds a
 * reference on the bufferevent (bufferevent_incref()) until it has run,
 * so that the bufferevent outlives a free while the activation waits.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdlib.h>

#include "cbq.h"
#include "clockworker/bev.h"

enum { BW_IDLE = 0, BW_INIT, BW_ARMED };
enum { BW_READ = 1, BW_LINE, BW_DRAIN, BW_EVENT };

static void bw_readcb(struct bufferevent *bev, void *arg);
static void bw_writecb(struct bufferevent *bev, void *arg);
static void bw_eventcb(struct bufferevent *bev, short what, void *arg);

static void bw_init(cw_bev_wait *w, struct bufferevent *bev, int kind, size_t n, int eol)
{
    *w = (cw_bev_wait){0};
    w->cw__bev = bev;
    w->cw__kind = kind;
    w->cw__n = n;
    w->cw__eol = eol;
    w->cw__result = -EAGAIN;
    w->cw__state = BW_INIT;
}

void cw_bev_read_init(cw_bev_wait *w, struct bufferevent *bev, size_t n)
{
    if (w)
        bw_init(w, bev, BW_READ, n ? n : 1, 0);
}

void cw_bev_readln_init(cw_bev_wait *w, struct bufferevent *bev, enum evbuffer_eol_style eol,
                        size_t max)
{
    if (w)
        bw_init(w, bev, BW_LINE, max, (int)eol);
}

void cw_bev_drain_init(cw_bev_wait *w, struct bufferevent *bev, size_t mark)
{
    if (w)
        bw_init(w, bev, BW_DRAIN, mark, 0);
}

void cw_bev_event_init(cw_bev_wait *w, struct bufferevent *bev)
{
    if (w)
        bw_init(w, bev, BW_EVENT, 0, 0);
}

static short wm_dir(const cw_bev_wait *w)
{
    return w->cw__kind == BW_DRAIN ? EV_WRITE : EV_READ;
}

/* Put the bufferevent back as it was and let go of the waker. */
static void disarm(cw_bev_wait *w)
{
    if (w->cw__state != BW_ARMED)
        return;
    struct bufferevent *bev = w->cw__bev;
    bufferevent_setwatermark(bev, wm_dir(w), w->cw__wm_low, w->cw__wm_high);
    bufferevent_setcb(bev, w->cw__readcb, w->cw__writecb, w->cw__eventcb, w->cw__cbarg);
    w->cw__readcb = w->cw__writecb = NULL;
    w->cw__eventcb = NULL;
    w->cw__cbarg = NULL;
    cw_waker *k = w->cw__waker;
    w->cw__waker = NULL;
    w->cw__state = BW_INIT;
    cw_waker_free(k);
}

static cw_poll complete(cw_bev_wait *w, int result, short events)
{
    disarm(w);
    w->cw__result = result;
    w->cw__events = events;
    return CW_READY;
}

/* What an event means for this kind of wait. */
static int event_result(const cw_bev_wait *w, short what, int err)
{
    if (what & BEV_EVENT_ERROR)
        return err ? -err : -EIO;
    if (what & BEV_EVENT_TIMEOUT)
        return -ETIMEDOUT;
    return w->cw__kind == BW_EVENT ? 0 : -EPIPE; /* EOF */
}

/* Install our callbacks and watermark. 0, -EBUSY, or -EIO when the
 * bufferevent cannot be enabled (then nothing changed). */
static int arm(cw_bev_wait *w, cw_waker *k)
{
    struct bufferevent *bev = w->cw__bev;
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;
    void *arg;
    bufferevent_getcb(bev, &rcb, &wcb, &ecb, &arg);
    if (rcb == bw_readcb || wcb == bw_writecb || ecb == bw_eventcb)
        return -EBUSY;
    size_t low = 0, high = 0;
    short dir = wm_dir(w);
    if (bufferevent_getwatermark(bev, dir, &low, &high) != 0)
        low = high = 0;
    w->cw__readcb = rcb;
    w->cw__writecb = wcb;
    w->cw__eventcb = ecb;
    w->cw__cbarg = arg;
    w->cw__wm_low = low;
    w->cw__wm_high = high;
    /* No read high watermark while we wait: libevent 2.1 runs a read
     * callback again and again, without returning to the loop, while the
     * input sits at the high watermark with more data in the socket, and
     * our callback consumes nothing. */
    switch (w->cw__kind) {
    case BW_READ:
        bufferevent_setwatermark(bev, EV_READ, w->cw__n, 0);
        break;
    case BW_LINE:
        bufferevent_setwatermark(bev, EV_READ, 0, 0);
        break;
    case BW_DRAIN:
        bufferevent_setwatermark(bev, EV_WRITE, w->cw__n, high);
        break;
    default:
        bufferevent_setwatermark(bev, EV_READ, low, 0);
        break;
    }
    bufferevent_setcb(bev, bw_readcb, bw_writecb, bw_eventcb, w);
    if (bufferevent_enable(bev, dir) < 0) {
        /* nothing would wake the task: put things back, fail the wait */
        bufferevent_setwatermark(bev, dir, low, high);
        bufferevent_setcb(bev, rcb, wcb, ecb, arg);
        return -EIO;
    }
    w->cw__waker = cw_waker_clone(k);
    w->cw__state = BW_ARMED;
    return 0;
}

/* Does the condition hold now? 1 yes, 0 no, or a negative errno. */
static int check(cw_bev_wait *w)
{
    struct bufferevent *bev = w->cw__bev;
    switch (w->cw__kind) {
    case BW_READ:
        return evbuffer_get_length(bufferevent_get_input(bev)) >= w->cw__n;
    case BW_LINE: {
        /* evbuffer_readln() would allocate with libevent's allocator;
         * the line is ours to free, so it is copied out with ours. */
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t eol_len = 0;
        struct evbuffer_ptr at
            = evbuffer_search_eol(in, NULL, &eol_len, (enum evbuffer_eol_style)w->cw__eol);
        if (at.pos < 0) {
            if (w->cw__n && evbuffer_get_length(in) > w->cw__n)
                return -EMSGSIZE;
            return 0;
        }
        size_t len = (size_t)at.pos;
        char *line = cw__malloc(len + 1);
        if (!line)
            return -ENOMEM; /* the line stays in the input */
        if (len && evbuffer_remove(in, line, len) != (ev_ssize_t)len) {
            cw__free(line);
            return -EIO;
        }
        line[len] = '\0';
        evbuffer_drain(in, eol_len);
        w->cw__line = line;
        w->cw__line_len = len;
        return 1;
    }
    case BW_DRAIN:
        return evbuffer_get_length(bufferevent_get_output(bev)) <= w->cw__n;
    default:
        return 0;
    }
}

cw_poll cw_bev_poll(cw_bev_wait *w, cw_cx *cx)
{
    if (!w)
        return CW_READY;
    if (w->cw__state == BW_IDLE || !w->cw__bev)
        return complete(w, -EINVAL, 0);
    cw_waker *k = cw_cx_waker(cx);
    if (!k)
        return complete(w, -EINVAL, 0);
    if (w->cw__line) { /* a new wait: the last line is no longer wanted */
        cw__free(w->cw__line);
        w->cw__line = NULL;
        w->cw__line_len = 0;
    }
    int ok = check(w);
    if (ok > 0)
        return complete(w, 0, 0);
    if (ok < 0)
        return complete(w, ok, 0);
    if (w->cw__pending) { /* kept across a completion that data won */
        short what = w->cw__pending;
        w->cw__pending = 0;
        return complete(w, event_result(w, what, w->cw__errno), what);
    }
    if (w->cw__state == BW_ARMED) {
        /* polled again before anything happened: keep the newest waker */
        if (!cw_waker_will_wake(w->cw__waker, k)) {
            cw_waker_free(w->cw__waker);
            w->cw__waker = cw_waker_clone(k);
        }
        return CW_PENDING;
    }
    int err = arm(w, k);
    if (err < 0)
        return complete(w, err, 0);
    return CW_PENDING;
}

/* ---- the callbacks: record, wake; the poll decides ---------------------- */

static void bw_readcb(struct bufferevent *bev, void *arg)
{
    cw_bev_wait *w = arg;
    (void)bev;
    if (w->cw__kind == BW_READ || w->cw__kind == BW_LINE)
        cw_waker_wake_by_ref(w->cw__waker);
}

static void bw_writecb(struct bufferevent *bev, void *arg)
{
    cw_bev_wait *w = arg;
    (void)bev;
    if (w->cw__kind == BW_DRAIN)
        cw_waker_wake_by_ref(w->cw__waker);
}

static void bw_eventcb(struct bufferevent *bev, short what, void *arg)
{
    cw_bev_wait *w = arg;
    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return; /* BEV_EVENT_CONNECTED */
    int err = EVUTIL_SOCKET_ERROR();
    if (!w->cw__pending) { /* the first event is the one reported */
        w->cw__pending = what;
        w->cw__errno = (what & BEV_EVENT_ERROR) ? err : 0;
    }
    cw_waker_wake_by_ref(w->cw__waker);
}

int cw_bev_result(const cw_bev_wait *w)
{
    return w ? w->cw__result : -EINVAL;
}

short cw_bev_events(const cw_bev_wait *w)
{
    return w ? w->cw__events : 0;
}

const char *cw_bev_line(const cw_bev_wait *w, size_t *len)
{
    if (len)
        *len = w && w->cw__line ? w->cw__line_len : 0;
    return w ? w->cw__line : NULL;
}

void cw_bev_drop(cw_bev_wait *w)
{
    if (!w)
        return;
    disarm(w);
    cw__free(w->cw__line); /* allocated by check() */
    w->cw__line = NULL;
    w->cw__line_len = 0;
    w->cw__state = BW_IDLE;
}

/* ---- callbacks on a queue: cw_bufferevent_setcb() ------------------------ */

enum { BC_READ = 1, BC_WRITE = 2, BC_EVENT = 4 };

struct bevcb_task;

/* The binding: the bufferevent's cbarg while its callbacks are ours. */
struct bevcb {
    struct bufferevent *bev;
    cw_queue *q;
    cw__shared *sh;             /* held: is the executor still there? */
    bufferevent_data_cb readcb, writecb;
    bufferevent_event_cb eventcb;
    void *arg;
    unsigned pend;              /* BC_* reported, not yet delivered */
    short what;                 /* BEV_EVENT_* of those events, OR'ed */
    struct bevcb_task *task;    /* the activation waiting or running */
};

/* An activation: one task (or, at once, a frame of deliver_now()). */
struct bevcb_task {
    struct bevcb *b;            /* NULL once the binding went */
    struct bufferevent *bev;    /* referenced until the task ends */
};

static void bc_readcb(struct bufferevent *bev, void *arg);
static void bc_writecb(struct bufferevent *bev, void *arg);
static void bc_eventcb(struct bufferevent *bev, short what, void *arg);

/* The binding of bev, if its callbacks are ours, or were ours when a
 * waiting cw_bev_wait saved them. */
static struct bevcb *binding_of(struct bufferevent *bev)
{
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *arg;
    bufferevent_getcb(bev, &r, &w, &e, &arg);
    if (r == bc_readcb || w == bc_writecb || e == bc_eventcb)
        return arg;
    if (r == bw_readcb) { /* a future waits; ours are saved in it */
        const cw_bev_wait *f = arg;
        if (f->cw__readcb == bc_readcb || f->cw__writecb == bc_writecb
            || f->cw__eventcb == bc_eventcb)
            return f->cw__cbarg;
    }
    return NULL;
}

/* Let go of the binding: its waiting activation (if any) delivers
 * nothing; the binding is freed. */
static void unbind(struct bevcb *b)
{
    if (b->task)
        b->task->b = NULL;
    cw__shared_release(b->sh, 1);
    cw__free(b);
}

/* Whether the activation may go on delivering: its binding is alive and
 * still installed. A binding no longer installed (the bufferevent was
 * freed, or given other callbacks, with plain libevent calls) is
 * unreachable but from here: freed. */
static bool still_bound(struct bevcb_task *t)
{
    struct bevcb *b = t->b;
    if (!b)
        return false;
    if (binding_of(t->bev) == b)
        return true;
    b->task = NULL;
    t->b = NULL;
    unbind(b);
    return false;
}

/* Run the callbacks for what is pending: a connection first, then read,
 * write, and the other events (EOF, error, timeout) last, as libevent
 * reports them. Stops as soon as a callback unbinds or frees. */
static void deliver(struct bevcb_task *t)
{
    if (!still_bound(t))
        return;
    struct bevcb *b = t->b;
    struct bufferevent *bev = t->bev;
    cw_executor *ex = cw__cbq_alive(b->sh) ? b->sh->ex : NULL;
    unsigned pend = b->pend;
    short what = b->what;
    b->pend = 0;
    b->what = 0;
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t out0 = evbuffer_get_length(out);
    short first = what & BEV_EVENT_CONNECTED, last = what & ~BEV_EVENT_CONNECTED;
    if ((pend & BC_EVENT) && first && b->eventcb) {
        b->eventcb(bev, first, b->arg);
        if (!still_bound(t))
            goto out;
        b = t->b;
    }
    if ((pend & BC_READ) && b->readcb) {
        b->readcb(bev, b->arg);
        if (!still_bound(t))
            goto out;
        b = t->b;
    }
    if ((pend & BC_WRITE) && b->writecb) {
        b->writecb(bev, b->arg);
        if (!still_bound(t))
            goto out;
        b = t->b;
    }
    if ((pend & BC_EVENT) && last && b->eventcb)
        b->eventcb(bev, last, b->arg);
out:
    /* Output queued by a callback waits in libevent's buffers: let the
     * loop write it soon (as cw_http_reply() does). */
    if (ex && evbuffer_get_length(out) > out0)
        cw__executor_flush_soon(ex);
}

/* The activation is over: the reference goes (which may free the
 * bufferevent, if the user freed it meanwhile). Idempotent. */
static void finish(struct bevcb_task *t)
{
    if (t->b) {
        t->b->task = NULL;
        t->b = NULL;
    }
    struct bufferevent *bev = t->bev;
    t->bev = NULL;
    if (bev)
        bufferevent_decref(bev);
}

static cw_poll bc_poll(void *state, cw_cx *cx)
{
    struct bevcb_task *t = state;
    deliver(t);
    if (t->b && t->b->pend) {
        /* reported while the callbacks ran: once more, behind the work
         * queued meanwhile (as a yield) */
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    }
    finish(t);
    return CW_READY;
}

/* Ended without delivering (the executor is being freed): what waited is
 * dropped. Also runs after bc_poll()'s CW_READY (nothing left then). */
static void bc_drop(void *state)
{
    struct bevcb_task *t = state;
    if (t->b) {
        t->b->pend = 0;
        t->b->what = 0;
    }
    finish(t);
}

static int bc_task_init(void *state, void *arg)
{
    struct bevcb_task *t = state;
    struct bevcb *b = arg;
    t->b = b;
    t->bev = b->bev;
    b->task = t;
    bufferevent_incref(b->bev);
    return 0;
}

/* No task can take the activation (no executor, or no memory): the
 * callbacks run now, as libevent would run them. */
static void deliver_now(struct bevcb *b)
{
    struct bevcb_task t;
    bc_task_init(&t, b);
    while (t.b && t.b->pend)
        deliver(&t);
    finish(&t);
}

static void report(struct bevcb *b, unsigned bit, short what)
{
    b->pend |= bit;
    b->what |= what;
    if (b->task)
        return; /* waiting or running: coalesced */
    if (cw__cbq_alive(b->sh)
        && cw_spawn_with(b->q, bc_poll, sizeof(struct bevcb_task), bc_task_init, b, bc_drop,
                         NULL)
               == 0)
        return;
    deliver_now(b);
}

static void bc_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    report(arg, BC_READ, 0);
}

static void bc_writecb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    report(arg, BC_WRITE, 0);
}

static void bc_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    report(arg, BC_EVENT, what);
}

/* Set the callbacks, or, while a cw_bev_wait waits on bev, the ones it
 * saved and will restore (setting bev's would take it from the future). */
static void install(struct bufferevent *bev, bufferevent_data_cb r, bufferevent_data_cb w,
                    bufferevent_event_cb e, void *arg)
{
    bufferevent_data_cb cr, cw;
    bufferevent_event_cb ce;
    void *carg;
    bufferevent_getcb(bev, &cr, &cw, &ce, &carg);
    if (cr == bw_readcb) {
        cw_bev_wait *f = carg;
        f->cw__readcb = r;
        f->cw__writecb = w;
        f->cw__eventcb = e;
        f->cw__cbarg = arg;
        return;
    }
    bufferevent_setcb(bev, r, w, e, arg);
}

int cw_bufferevent_setcb(cw_queue *q, struct bufferevent *bev, bufferevent_data_cb readcb,
                         bufferevent_data_cb writecb, bufferevent_event_cb eventcb, void *cbarg)
{
    if (!bev)
        return -EINVAL;
    struct bevcb *b = binding_of(bev);
    if (b && !cw__on_thread(b->sh))
        return -EPERM;
    if (!readcb && !writecb && !eventcb) { /* no callbacks: unbound */
        if (b)
            unbind(b);
        install(bev, NULL, NULL, NULL, cbarg);
        return 0;
    }
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    cw_executor *ex = cw_queue_executor(q);
    if (!cw__on_thread(ex->shared))
        return -EPERM;
    if (ex->freeing)
        return -ESHUTDOWN;
    struct event_base *base = cw_executor_base(ex);
    if (!base)
        return -ENOTSUP;
    if (bufferevent_get_base(bev) != base)
        return -EINVAL;
    if (!b) {
        if (!(b = cw__calloc(1, sizeof *b)))
            return -ENOMEM;
        b->bev = bev;
        b->sh = ex->shared;
        cw__shared_hold(b->sh);
    }
    b->q = q;
    b->readcb = readcb;
    b->writecb = writecb;
    b->eventcb = eventcb;
    b->arg = cbarg;
    install(bev, readcb ? bc_readcb : NULL, writecb ? bc_writecb : NULL,
            eventcb ? bc_eventcb : NULL, b);
    return 0;
}

void cw_bufferevent_free(struct bufferevent *bev)
{
    if (!bev)
        return;
    struct bevcb *b = binding_of(bev);
    if (b) {
        if (!cw__on_thread(b->sh)) {
            cw__misuse("cw_bufferevent_free()", "not on the executor's thread; not freed");
            return;
        }
        unbind(b);
    }
    bufferevent_free(bev);
}
