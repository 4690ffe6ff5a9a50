/*
 * sync.c - tasks talking to tasks: cw_oneshot, cw_chan, cw_notify, cw_sem.
 * (cw_remote_chan and cw_spawn_remote are in sync_remote.c.)
 *
 * Wait lists. Every waiting future embeds a cw_sync_waiter: an intrusive
 * node of a circular list whose head (a sentinel node) is in the
 * primitive; linking and unlinking are O(1) and allocate nothing. A node
 * goes through these states:
 *
 *   ZERO (never initialised: READY, -EINVAL)
 *   INIT --first poll, must wait--> WAITING (in the primitive's `waiting`
 *        list, holding a waker clone)
 *   WAITING --value/permit/notification handed over--> GRANTED (moved to
 *        the primitive's `granted` list, task woken, clone kept)
 *   GRANTED --its poll takes what was granted--> DONE
 *   any --ends (completion, close, free, drop)--> DONE (result final,
 *        unlinked, clone released, cw__obj NULL: a DONE node never
 *        touches the primitive again)
 *
 * The granted list exists so that what was handed to a waiter is never
 * lost: a GRANTED node dropped before its task ran gives it back (to the
 * next waiter or the primitive), and freeing the primitive can find and
 * detach granted nodes as well as waiting ones.
 *
 * Everything here runs on one executor thread (no atomics, no locks),
 * except cw_oneshot, whose sender may be any thread: its state is one
 * atomic word (the protocol is at the oneshot section).
 */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "clockworker/sync.h"
#include "internal.h"

#define CW__SYNC_MAX_BYTES ((size_t)1 << 40)

/* ---- wait lists ------------------------------------------------------------ */

enum { W_ZERO = 0, W_INIT, W_WAITING, W_GRANTED, W_GRANTED_ALL, W_DONE };

typedef cw_sync_waiter wnode;

static void wl_init(wnode *h)
{
    h->cw__prev = h->cw__next = h;
}

static bool wl_empty(const wnode *h)
{
    return h->cw__next == h;
}

static void wl_push(wnode *h, wnode *n)
{
    n->cw__prev = h->cw__prev;
    n->cw__next = h;
    h->cw__prev->cw__next = n;
    h->cw__prev = n;
}

static void wl_unlink(wnode *n)
{
    n->cw__prev->cw__next = n->cw__next;
    n->cw__next->cw__prev = n->cw__prev;
    n->cw__prev = n->cw__next = NULL;
}

static void w_init(wnode *w, void *obj)
{
    *w = (wnode){.cw__obj = obj,
                 .cw__state = obj ? W_INIT : W_DONE,
                 .cw__result = obj ? -EAGAIN : -EINVAL};
}

/* End the wait with a final result: unlink, release (or wake and
 * release) the clone, forget the primitive. */
static void w_finish(wnode *w, int result, bool wake)
{
    if (w->cw__state == W_WAITING || w->cw__state == W_GRANTED
        || w->cw__state == W_GRANTED_ALL)
        wl_unlink(w);
    cw_waker *k = w->cw__waker;
    w->cw__waker = NULL;
    w->cw__obj = NULL;
    w->cw__state = W_DONE;
    w->cw__result = result;
    if (wake)
        cw_waker_wake(k);
    else
        cw_waker_free(k);
}

/* A poll without a task (NULL cx, or a cx whose poll returned) ends the
 * wait with -EINVAL. A future already waiting or granted leaves through
 * its type's drop, so that what it was granted (a reserved value, a
 * notification, permits) is passed on, not lost. */
static bool w_bad_cx(const wnode *w, const cw_cx *cx)
{
    return (!cx || !cx->task) && (w->cw__state == W_WAITING || w->cw__state == W_GRANTED);
}

#define W_LEAVE_IF_BAD_CX(f, cx, drop)                 \
    do {                                               \
        if ((f) && w_bad_cx(&(f)->cw__w, (cx))) {      \
            drop(f);                                   \
            (f)->cw__w.cw__result = -EINVAL;           \
            return CW_READY;                           \
        }                                              \
    } while (0)

/* Poll prologue shared by every future: true when the poll must return
 * READY now (done, or a bad argument, which ends the wait). */
static bool w_settled(wnode *w, cw_cx *cx)
{
    if (w->cw__state == W_ZERO) {
        w->cw__state = W_DONE;
        w->cw__result = -EINVAL;
    }
    if (w->cw__state == W_DONE)
        return true;
    if (!cx || !cx->task) {
        w_finish(w, -EINVAL, false);
        return true;
    }
    return false;
}

/* Start waiting at the tail of list h. */
static cw_poll w_wait(wnode *h, wnode *w, cw_cx *cx)
{
    w->cw__waker = cw_waker_clone(cw_cx_waker(cx));
    w->cw__state = W_WAITING;
    wl_push(h, w);
    return CW_PENDING;
}

/* Polled again while waiting: keep the newest waker. */
static cw_poll w_still(wnode *w, cw_cx *cx)
{
    cw_waker *k = cw_cx_waker(cx);
    if (!cw_waker_will_wake(w->cw__waker, k)) {
        cw_waker_free(w->cw__waker);
        w->cw__waker = cw_waker_clone(k);
    }
    return CW_PENDING;
}

/* Hand something to the first waiter of `waiting`: move it to `granted`
 * and wake it (keeping its clone). */
static wnode *w_grant_first(wnode *waiting, wnode *granted, int state)
{
    wnode *w = waiting->cw__next;
    wl_unlink(w);
    wl_push(granted, w);
    w->cw__state = state;
    cw_waker_wake_by_ref(w->cw__waker);
    return w;
}

/* Detach every node of list h with -EPIPE and wake it (close or free). */
static void wl_fail_all(wnode *h)
{
    while (!wl_empty(h))
        w_finish(h->cw__next, -EPIPE, true);
}

static int w_result(const wnode *w)
{
    if (w->cw__state == W_DONE)
        return w->cw__result;
    return w->cw__state == W_ZERO ? -EINVAL : -EAGAIN;
}

/* ======================================================================== */
/* cw_oneshot
 *
 * state bits, one atomic word:
 *   RX_WAKER  rx_waker is set and the sender may use it
 *   VALUE     the value is in place        TX_DONE  the sender's end is gone
 *   RX_DONE   the receiver's end is gone   TAKEN    the value was taken
 *
 * Sender: write the value, then fetch_or(VALUE | TX_DONE); if RX_WAKER
 * was set, wake rx_waker by reference (it never frees it).
 * Receiver, to (re)register: clear RX_WAKER with fetch_and; if the word
 * had TX_DONE, the sender may be reading rx_waker right now: leave it
 * alone and complete. Else rx_waker is the receiver's alone: replace it,
 * then fetch_or(RX_WAKER); if that saw TX_DONE, the sender did not see the
 * bit, so complete now instead of waiting for a wake that will not come.
 * Every read-modify-write is acq_rel on the one word, so the value (and
 * rx_waker) written before a release is visible after the acquire that
 * sees its bit. rx_waker is freed by whoever frees the object (the last
 * of the two ends), which is after any sender's use of it.
 */

enum { OS_RX_WAKER = 1, OS_VALUE = 2, OS_TX_DONE = 4, OS_RX_DONE = 8, OS_TAKEN = 16 };

struct cw_oneshot {
    atomic_uint state;
    atomic_uint refs;   /* the sender's end + the receiver's end */
    cw_waker *rx_waker; /* see above */
    size_t size;
    alignas(max_align_t) unsigned char value[];
};

int cw_oneshot_new(size_t size, cw_oneshot **out)
{
    if (!out || size > CW__SYNC_MAX_BYTES)
        return -EINVAL;
    cw_oneshot *os = cw__malloc(offsetof(cw_oneshot, value) + size);
    if (!os)
        return -ENOMEM;
    atomic_init(&os->state, 0u);
    atomic_init(&os->refs, 2u);
    os->rx_waker = NULL;
    os->size = size;
    *out = os;
    return 0;
}

static void oneshot_release(cw_oneshot *os)
{
    if (atomic_fetch_sub_explicit(&os->refs, 1, memory_order_acq_rel) != 1)
        return;
    cw_waker_free(os->rx_waker);
    cw__free(os);
}

int cw_oneshot_send(cw_oneshot *os, const void *value)
{
    if (!os || (!value && os->size))
        return -EINVAL;
    if (os->size)
        memcpy(os->value, value, os->size);
    unsigned prev = atomic_fetch_or_explicit(&os->state, OS_VALUE | OS_TX_DONE,
                                             memory_order_acq_rel);
    int err = prev & OS_RX_DONE ? -EPIPE : 0;
    if (!err && (prev & OS_RX_WAKER))
        cw_waker_wake_by_ref(os->rx_waker);
    oneshot_release(os);
    return err;
}

void cw_oneshot_sender_free(cw_oneshot *os)
{
    if (!os)
        return;
    unsigned prev = atomic_fetch_or_explicit(&os->state, OS_TX_DONE, memory_order_acq_rel);
    if (!(prev & OS_RX_DONE) && (prev & OS_RX_WAKER))
        cw_waker_wake_by_ref(os->rx_waker);
    oneshot_release(os);
}

void cw_oneshot_receiver_free(cw_oneshot *os)
{
    if (!os)
        return;
    atomic_fetch_or_explicit(&os->state, OS_RX_DONE, memory_order_acq_rel);
    oneshot_release(os);
}

/* Take the value if the word s says it is there: 0, -EPIPE, or -EAGAIN. */
static int oneshot_take(cw_oneshot *os, unsigned s, void *out)
{
    if (s & OS_VALUE) {
        if (atomic_fetch_or_explicit(&os->state, OS_TAKEN, memory_order_acq_rel) & OS_TAKEN)
            return -EPIPE;
        if (os->size)
            memcpy(out, os->value, os->size);
        return 0;
    }
    return s & OS_TX_DONE ? -EPIPE : -EAGAIN;
}

int cw_oneshot_try_recv(cw_oneshot *os, void *out)
{
    if (!os || (!out && os->size))
        return -EINVAL;
    return oneshot_take(os, atomic_load_explicit(&os->state, memory_order_acquire), out);
}

void cw_oneshot_recv_init(cw_oneshot_recv *f, cw_oneshot *os, void *out)
{
    if (!f)
        return;
    f->cw__os = os;
    f->cw__out = out;
    f->cw__state = os && (out || !os->size) ? W_INIT : W_DONE;
    f->cw__result = f->cw__state == W_INIT ? -EAGAIN : -EINVAL;
}

static cw_poll oneshot_done(cw_oneshot_recv *f, int result)
{
    f->cw__state = W_DONE;
    f->cw__result = result;
    return CW_READY;
}

cw_poll cw_oneshot_recv_poll(cw_oneshot_recv *f, cw_cx *cx)
{
    if (!f)
        return CW_READY;
    if (f->cw__state == W_ZERO)
        return oneshot_done(f, -EINVAL);
    if (f->cw__state == W_DONE)
        return CW_READY;
    cw_oneshot *os = f->cw__os;
    unsigned s = atomic_load_explicit(&os->state, memory_order_acquire);
    int r = oneshot_take(os, s, f->cw__out);
    if (r != -EAGAIN)
        return oneshot_done(f, r);
    cw_waker *k = cw_cx_waker(cx);
    if (!k)
        return oneshot_done(f, -EINVAL);
    if (s & OS_RX_WAKER) {
        if (cw_waker_will_wake(os->rx_waker, k)) {
            f->cw__state = W_WAITING;
            return CW_PENDING;
        }
        s = atomic_fetch_and_explicit(&os->state, ~(unsigned)OS_RX_WAKER, memory_order_acq_rel);
        if (s & OS_TX_DONE) /* the sender may be waking the old waker: leave it */
            return oneshot_done(f, oneshot_take(os, s, f->cw__out));
    }
    cw_waker_free(os->rx_waker);
    os->rx_waker = cw_waker_clone(k);
    s = atomic_fetch_or_explicit(&os->state, OS_RX_WAKER, memory_order_acq_rel);
    if (s & OS_TX_DONE) /* arrived meanwhile; the sender saw no waker */
        return oneshot_done(f, oneshot_take(os, s, f->cw__out));
    f->cw__state = W_WAITING;
    return CW_PENDING;
}

int cw_oneshot_recv_result(const cw_oneshot_recv *f)
{
    if (!f || f->cw__state == W_ZERO)
        return -EINVAL;
    return f->cw__state == W_DONE ? f->cw__result : -EAGAIN;
}

void cw_oneshot_recv_drop(cw_oneshot_recv *f)
{
    if (!f || f->cw__state == W_ZERO || f->cw__state == W_DONE)
        return;
    if (f->cw__state == W_WAITING) {
        cw_oneshot *os = f->cw__os;
        unsigned s = atomic_fetch_and_explicit(&os->state, ~(unsigned)OS_RX_WAKER,
                                               memory_order_acq_rel);
        if ((s & OS_RX_WAKER) && !(s & OS_TX_DONE)) {
            cw_waker_free(os->rx_waker);
            os->rx_waker = NULL;
        } /* else the sender may be using it: freed with the object */
    }
    oneshot_done(f, -ECANCELED);
}

/* ======================================================================== */
/* cw_chan
 *
 * A ring of cap records: head is the oldest, len the number held.
 * `reserved` values (the oldest ones, counted, not marked) belong to the
 * receivers in the granted list, one each; len - reserved are free for
 * anyone. Invariants (checked by chan_check):
 *   senders wait only while the ring is full (or they would have sent);
 *   receivers wait only while len == reserved (no free value);
 *   reserved == length of the granted list <= len.
 * A freed slot goes at once to the first waiting sender (its value is
 * copied in and it completes); a value that arrives is at once reserved
 * for the first waiting receiver. Each is O(1): one slot or one value
 * serves at most one waiter.
 */

struct cw_chan {
    unsigned char *buf;
    size_t cap, size;
    size_t head, len, reserved;
    bool closed;
    wnode senders;   /* WAITING cw_chan_send, FIFO */
    wnode receivers; /* WAITING cw_chan_recv, FIFO */
    wnode granted;   /* GRANTED cw_chan_recv, one reserved value each */
};

static void chan_check(const cw_chan *ch)
{
#ifdef CW_DEBUG
    size_t n = 0;
    for (const wnode *w = ch->granted.cw__next; w != &ch->granted; w = w->cw__next)
        n++;
    assert(n == ch->reserved && ch->reserved <= ch->len && ch->len <= ch->cap);
    assert(wl_empty(&ch->senders) || ch->len == ch->cap);
    assert(wl_empty(&ch->receivers) || ch->len == ch->reserved);
#else
    (void)ch;
#endif
}

int cw_chan_new(size_t capacity, size_t size, cw_chan **out)
{
    if (!out || capacity == 0 || (size && capacity > CW__SYNC_MAX_BYTES / size))
        return -EINVAL;
    cw_chan *ch = cw__calloc(1, sizeof *ch);
    if (!ch)
        return -ENOMEM;
    ch->buf = cw__malloc(capacity * size);
    if (!ch->buf) {
        cw__free(ch);
        return -ENOMEM;
    }
    ch->cap = capacity;
    ch->size = size;
    wl_init(&ch->senders);
    wl_init(&ch->receivers);
    wl_init(&ch->granted);
    *out = ch;
    return 0;
}

static void ring_push(cw_chan *ch, const void *value)
{
    size_t tail = (ch->head + ch->len) % ch->cap;
    if (ch->size)
        memcpy(ch->buf + tail * ch->size, value, ch->size);
    ch->len++;
}

static void ring_pop(cw_chan *ch, void *out)
{
    if (ch->size)
        memcpy(out, ch->buf + ch->head * ch->size, ch->size);
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
}

/* A free value exists: reserve it for the first waiting receiver. */
static void serve_receiver(cw_chan *ch)
{
    if (ch->len > ch->reserved && !wl_empty(&ch->receivers)) {
        w_grant_first(&ch->receivers, &ch->granted, W_GRANTED);
        ch->reserved++;
    }
}

/* A slot freed: the first waiting sender's value goes in. */
static void serve_sender(cw_chan *ch)
{
    if (ch->len < ch->cap && !wl_empty(&ch->senders)) {
        cw_chan_send *f = cw__container_of(ch->senders.cw__next, cw_chan_send, cw__w);
        ring_push(ch, f->cw__value);
        w_finish(&f->cw__w, 0, true);
        serve_receiver(ch);
    }
}

/* Take the oldest value (the caller has the right to one). */
static void chan_take(cw_chan *ch, void *out)
{
    ring_pop(ch, out);
    serve_sender(ch);
    chan_check(ch);
}

void cw_chan_close(cw_chan *ch)
{
    if (!ch || ch->closed)
        return;
    ch->closed = true;
    wl_fail_all(&ch->senders);
    wl_fail_all(&ch->receivers);
    chan_check(ch);
}

void cw_chan_free(cw_chan *ch)
{
    if (!ch)
        return;
    cw_chan_close(ch);
    wl_fail_all(&ch->granted);
    cw__free(ch->buf);
    cw__free(ch);
}

int cw_chan_try_send(cw_chan *ch, const void *value)
{
    if (!ch || (!value && ch->size))
        return -EINVAL;
    if (ch->closed)
        return -EPIPE;
    if (ch->len == ch->cap)
        return -EAGAIN; /* (waiting senders imply a full ring) */
    ring_push(ch, value);
    serve_receiver(ch);
    chan_check(ch);
    return 0;
}

int cw_chan_try_recv(cw_chan *ch, void *out)
{
    if (!ch || (!out && ch->size))
        return -EINVAL;
    if (ch->len > ch->reserved) {
        chan_take(ch, out);
        return 0;
    }
    return ch->closed ? -EPIPE : -EAGAIN;
}

size_t cw_chan_len(const cw_chan *ch)
{
    return ch ? ch->len : 0;
}

void cw_chan_send_init(cw_chan_send *f, cw_chan *ch, const void *value)
{
    if (!f)
        return;
    w_init(&f->cw__w, ch && (value || !ch->size) ? ch : NULL);
    f->cw__value = value;
}

cw_poll cw_chan_send_poll(cw_chan_send *f, cw_cx *cx)
{
    W_LEAVE_IF_BAD_CX(f, cx, cw_chan_send_drop);
    if (!f || w_settled(&f->cw__w, cx))
        return CW_READY;
    if (f->cw__w.cw__state == W_WAITING)
        return w_still(&f->cw__w, cx);
    cw_chan *ch = f->cw__w.cw__obj;
    int r = cw_chan_try_send(ch, f->cw__value);
    if (r != -EAGAIN) {
        w_finish(&f->cw__w, r, false);
        return CW_READY;
    }
    w_wait(&ch->senders, &f->cw__w, cx);
    chan_check(ch);
    return CW_PENDING;
}

int cw_chan_send_result(const cw_chan_send *f)
{
    return f ? w_result(&f->cw__w) : -EINVAL;
}

void cw_chan_send_drop(cw_chan_send *f)
{
    if (!f || f->cw__w.cw__state == W_ZERO || f->cw__w.cw__state == W_DONE)
        return;
    w_finish(&f->cw__w, -ECANCELED, false); /* INIT or WAITING: nothing sent */
}

void cw_chan_recv_init(cw_chan_recv *f, cw_chan *ch, void *out)
{
    if (!f)
        return;
    w_init(&f->cw__w, ch && (out || !ch->size) ? ch : NULL);
    f->cw__out = out;
}

cw_poll cw_chan_recv_poll(cw_chan_recv *f, cw_cx *cx)
{
    W_LEAVE_IF_BAD_CX(f, cx, cw_chan_recv_drop);
    if (!f || w_settled(&f->cw__w, cx))
        return CW_READY;
    cw_chan *ch = f->cw__w.cw__obj;
    switch (f->cw__w.cw__state) {
    case W_WAITING:
        return w_still(&f->cw__w, cx);
    case W_GRANTED: /* a value is reserved for us: the oldest is ours */
        w_finish(&f->cw__w, 0, false);
        ch->reserved--;
        chan_take(ch, f->cw__out);
        return CW_READY;
    default:
        break;
    }
    int r = cw_chan_try_recv(ch, f->cw__out);
    if (r != -EAGAIN) {
        w_finish(&f->cw__w, r, false);
        return CW_READY;
    }
    w_wait(&ch->receivers, &f->cw__w, cx);
    chan_check(ch);
    return CW_PENDING;
}

int cw_chan_recv_result(const cw_chan_recv *f)
{
    return f ? w_result(&f->cw__w) : -EINVAL;
}

void cw_chan_recv_drop(cw_chan_recv *f)
{
    if (!f || f->cw__w.cw__state == W_ZERO || f->cw__w.cw__state == W_DONE)
        return;
    cw_chan *ch = f->cw__w.cw__obj;
    bool granted = f->cw__w.cw__state == W_GRANTED;
    w_finish(&f->cw__w, -ECANCELED, false);
    if (granted) { /* pass the reserved value on */
        ch->reserved--;
        serve_receiver(ch);
        chan_check(ch);
    }
}

/* ======================================================================== */
/* cw_notify: `stored` is the one kept notification. Granted nodes are
 * W_GRANTED (by cw_notify_one: passed on if dropped) or W_GRANTED_ALL. */

struct cw_notify {
    bool stored;
    wnode waiting;
    wnode granted;
};

int cw_notify_new(cw_notify **out)
{
    if (!out)
        return -EINVAL;
    cw_notify *n = cw__calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    wl_init(&n->waiting);
    wl_init(&n->granted);
    *out = n;
    return 0;
}

void cw_notify_free(cw_notify *n)
{
    if (!n)
        return;
    wl_fail_all(&n->waiting);
    wl_fail_all(&n->granted);
    cw__free(n);
}

void cw_notify_one(cw_notify *n)
{
    if (!n)
        return;
    if (wl_empty(&n->waiting))
        n->stored = true;
    else
        w_grant_first(&n->waiting, &n->granted, W_GRANTED);
}

void cw_notify_all(cw_notify *n)
{
    if (!n)
        return;
    while (!wl_empty(&n->waiting))
        w_grant_first(&n->waiting, &n->granted, W_GRANTED_ALL);
}

void cw_notify_wait_init(cw_notify_wait *f, cw_notify *n)
{
    if (f)
        w_init(&f->cw__w, n);
}

cw_poll cw_notify_wait_poll(cw_notify_wait *f, cw_cx *cx)
{
    W_LEAVE_IF_BAD_CX(f, cx, cw_notify_wait_drop);
    if (!f || w_settled(&f->cw__w, cx))
        return CW_READY;
    cw_notify *n = f->cw__w.cw__obj;
    switch (f->cw__w.cw__state) {
    case W_WAITING:
        return w_still(&f->cw__w, cx);
    case W_GRANTED:
    case W_GRANTED_ALL:
        w_finish(&f->cw__w, 0, false);
        return CW_READY;
    default:
        break;
    }
    if (n->stored) {
        n->stored = false;
        w_finish(&f->cw__w, 0, false);
        return CW_READY;
    }
    return w_wait(&n->waiting, &f->cw__w, cx);
}

int cw_notify_wait_result(const cw_notify_wait *f)
{
    return f ? w_result(&f->cw__w) : -EINVAL;
}

void cw_notify_wait_drop(cw_notify_wait *f)
{
    if (!f || f->cw__w.cw__state == W_ZERO || f->cw__w.cw__state == W_DONE)
        return;
    cw_notify *n = f->cw__w.cw__obj;
    bool pass_on = f->cw__w.cw__state == W_GRANTED;
    w_finish(&f->cw__w, -ECANCELED, false);
    if (pass_on)
        cw_notify_one(n);
}

/* ======================================================================== */
/* cw_sem: `permits` free; waiters served strictly FIFO (the first one
 * that does not fit stops the scan). A granted node holds its permits
 * until its poll (then they are the task's) or its drop (then they go
 * back). Invariant: permits + held <= UINT64_MAX, so a granted node's
 * permits always fit back (cw_sem_release() refuses what would break it). */

struct cw_sem {
    uint64_t permits;
    uint64_t held; /* the sum over granted nodes not yet polled */
    wnode waiting;
    wnode granted;
};

int cw_sem_new(uint64_t permits, cw_sem **out)
{
    if (!out)
        return -EINVAL;
    cw_sem *s = cw__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->permits = permits;
    wl_init(&s->waiting);
    wl_init(&s->granted);
    *out = s;
    return 0;
}

void cw_sem_free(cw_sem *s)
{
    if (!s)
        return;
    wl_fail_all(&s->waiting);
    wl_fail_all(&s->granted);
    cw__free(s);
}

static void sem_serve(cw_sem *s)
{
    while (!wl_empty(&s->waiting)) {
        cw_sem_acquire *f = cw__container_of(s->waiting.cw__next, cw_sem_acquire, cw__w);
        if (f->cw__n > s->permits)
            break;
        s->permits -= f->cw__n;
        s->held += f->cw__n;
        w_grant_first(&s->waiting, &s->granted, W_GRANTED);
    }
}

int cw_sem_try_acquire(cw_sem *s, uint64_t n)
{
    if (!s)
        return -EINVAL;
    if (!wl_empty(&s->waiting) || n > s->permits)
        return -EAGAIN;
    s->permits -= n;
    return 0;
}

int cw_sem_release(cw_sem *s, uint64_t n)
{
    if (!s)
        return -EINVAL;
    if (n > UINT64_MAX - s->permits - s->held)
        return -EOVERFLOW;
    s->permits += n;
    sem_serve(s);
    return 0;
}

uint64_t cw_sem_available(const cw_sem *s)
{
    return s ? s->permits : 0;
}

void cw_sem_acquire_init(cw_sem_acquire *f, cw_sem *s, uint64_t n)
{
    if (!f)
        return;
    w_init(&f->cw__w, s);
    f->cw__n = n;
}

cw_poll cw_sem_acquire_poll(cw_sem_acquire *f, cw_cx *cx)
{
    W_LEAVE_IF_BAD_CX(f, cx, cw_sem_acquire_drop);
    if (!f || w_settled(&f->cw__w, cx))
        return CW_READY;
    if (f->cw__n == 0 && f->cw__w.cw__state != W_WAITING) { /* nothing to wait for */
        w_finish(&f->cw__w, 0, false);
        return CW_READY;
    }
    cw_sem *s = f->cw__w.cw__obj;
    switch (f->cw__w.cw__state) {
    case W_WAITING:
        return w_still(&f->cw__w, cx);
    case W_GRANTED:
        s->held -= f->cw__n; /* the task's now */
        w_finish(&f->cw__w, 0, false);
        return CW_READY;
    default:
        break;
    }
    if (cw_sem_try_acquire(s, f->cw__n) == 0) {
        w_finish(&f->cw__w, 0, false);
        return CW_READY;
    }
    return w_wait(&s->waiting, &f->cw__w, cx);
}

int cw_sem_acquire_result(const cw_sem_acquire *f)
{
    return f ? w_result(&f->cw__w) : -EINVAL;
}

void cw_sem_acquire_drop(cw_sem_acquire *f)
{
    if (!f || f->cw__w.cw__state == W_ZERO || f->cw__w.cw__state == W_DONE)
        return;
    cw_sem *s = f->cw__w.cw__obj;
    int state = f->cw__w.cw__state;
    bool first = state == W_WAITING && s->waiting.cw__next == &f->cw__w;
    w_finish(&f->cw__w, -ECANCELED, false);
    if (state == W_GRANTED) { /* back to the free ones: fits (invariant) */
        assert(s->held >= f->cw__n && f->cw__n <= UINT64_MAX - s->permits);
        s->held -= f->cw__n;
        s->permits += f->cw__n;
    }
    if (state == W_GRANTED || first)
        sem_serve(s);
}
