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
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdlib.h>

#include "clockworker/bev.h"
#include "internal.h"

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
