/*
 * sync_remote.c - cw_remote_chan: any thread sends to one task.
 * (cw_spawn_remote(), the other thing that crosses threads, is part of
 * the core: lib/core/spawn_remote.c, since ending a task reaches it.)
 *
 * The executor side never blocks and takes no lock here. Remote senders
 * use a bounded lock-free queue; a sender that wants to block waits on a
 * POSIX semaphore that the receiver posts (sem_post never blocks) only
 * while someone is blocked.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <string.h>

#include "clockworker/sync.h"
#include "internal.h"

#define CW__SYNC_MAX_BYTES ((size_t)1 << 40)

/* ======================================================================== */
/* cw_remote_chan
 *
 * The ring is Dmitry Vyukov's bounded MPMC queue, used with one consumer.
 * Each slot has a sequence number: slot i of lap L is free for position
 * p = L*cap + i when seq == 2p, holds the value of p when seq == 2p + 1,
 * and is freed for p + cap by the consumer (seq = 2(p + cap)). (Vyukov's
 * original uses p and p + 1, which coincide across laps when cap is 1;
 * doubling keeps "free for p + 1" and "holds p" apart for any cap.) A
 * producer claims position `tail` with a CAS, copies its value into the
 * slot, then publishes it by storing seq = 2p + 1 (release); the consumer
 * reads slot head % cap, takes it if seq == 2 head + 1 (acquire), and
 * stores seq = 2(head + cap).
 * Bit 63 of tail is the closed flag, set with fetch_or: a claim CAS fails
 * once it is set, so every send that returned 0 claimed a position below
 * the closed tail, and the consumer reports -EPIPE only when head reaches
 * that tail (it waits for claimed slots still being written).
 *
 * Waking the receiver (the race). The receiver, finding no value,
 * registers its waker and then looks again; a sender publishes, then
 * wakes whatever is registered. The registration is an AtomicWaker (as in
 * Rust's futures crate): a word that is WAITING, REGISTERING (the
 * receiver is replacing the waker) or has WAKING set (a sender is taking
 * it). The receiver CASes WAITING -> REGISTERING, stores its clone, CASes
 * back to WAITING; a sender fetch_or's WAKING and, if the word was
 * WAITING, takes the waker, clears WAKING and wakes it. If a sender comes
 * in while the receiver registers, the receiver's second CAS fails and the
 * receiver wakes itself. All of these are seq_cst read-modify-writes of
 * one word, so they are totally ordered:
 *  - sender's WAKING after the receiver's registration: it wakes the
 *    registered waker;
 *  - before it: then the sender's publish happened before its fetch_or,
 *    which happened before the receiver's register CAS that read its
 *    result, so the receiver's second look finds the value.
 * No wake is lost; the worst case is one spurious wake.
 *
 * Blocked senders: `blocked` counts them; a sender increments it, issues
 * a seq_cst fence, tries once more, and only then waits on `space`. The
 * receiver frees a slot, issues a seq_cst fence, and posts `space` once
 * if `blocked` > 0. One of the two fences comes first, so either the
 * sender's retry sees the free slot or the receiver sees the blocker and
 * posts (Dekker); a woken sender's sem_wait synchronises with that post,
 * so its retry sees the slot (unless another sender took it: then the
 * ring is full again and the next receive posts again). Posting on every
 * such receive, without trying to count tokens, is what keeps this
 * simple: a token left over only causes a spurious retry. Close posts
 * one token per blocker, and a sender that then sees -EPIPE passes one
 * on.
 */

#define RC_CLOSED ((uint64_t)1 << 63)

enum { AW_WAITING = 0, AW_REGISTERING = 1, AW_WAKING = 2 };

typedef struct rc_slot {
    _Atomic uint64_t seq;
    unsigned char data[]; /* size bytes */
} rc_slot;

struct cw_remote_chan {
    /* written by senders */
    _Atomic uint64_t tail; /* next position to claim; bit 63: closed */
    char pad1[64 - sizeof(uint64_t)];
    /* the receiver's */
    uint64_t head;
    atomic_uint aw;        /* AW_* */
    cw_waker *waker;       /* owned by the AW protocol */
    char pad2[64 - sizeof(uint64_t) - sizeof(atomic_uint) - sizeof(cw_waker *)];
    /* fixed */
    atomic_int blocked;    /* senders blocked in send_wait */
    sem_t space;
    size_t cap, size, stride;
    unsigned char *slots;
};

static rc_slot *rc_slot_at(const cw_remote_chan *ch, uint64_t pos)
{
    return (rc_slot *)(void *)(ch->slots + (size_t)(pos % ch->cap) * ch->stride);
}

int cw_remote_chan_new(size_t capacity, size_t size, cw_remote_chan **out)
{
    const size_t al = alignof(rc_slot);
    if (!out || capacity == 0 || capacity > ((size_t)1 << 32)
        || size > CW__SYNC_MAX_BYTES)
        return -EINVAL;
    size_t stride = (sizeof(rc_slot) + size + al - 1) / al * al;
    if (capacity > CW__SYNC_MAX_BYTES / stride)
        return -EINVAL;
    cw_remote_chan *ch = cw__calloc(1, sizeof *ch);
    if (!ch)
        return -ENOMEM;
    ch->slots = cw__malloc(capacity * stride);
    if (!ch->slots || sem_init(&ch->space, 0, 0) < 0) {
        cw__free(ch->slots);
        cw__free(ch);
        return -ENOMEM;
    }
    ch->cap = capacity;
    ch->size = size;
    ch->stride = stride;
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->aw, AW_WAITING);
    atomic_init(&ch->blocked, 0);
    for (size_t i = 0; i < capacity; i++)
        atomic_init(&rc_slot_at(ch, i)->seq, 2 * (uint64_t)i);
    *out = ch;
    return 0;
}

void cw_remote_chan_free(cw_remote_chan *ch)
{
    if (!ch)
        return;
    cw_waker_free(ch->waker);
    sem_destroy(&ch->space);
    cw__free(ch->slots);
    cw__free(ch);
}

/* Sender side of the AtomicWaker. */
static void aw_wake(cw_remote_chan *ch)
{
    if (atomic_fetch_or(&ch->aw, AW_WAKING) == AW_WAITING) {
        cw_waker *k = ch->waker;
        ch->waker = NULL;
        atomic_fetch_and(&ch->aw, ~(unsigned)AW_WAKING);
        cw_waker_wake(k); /* NULL: nobody registered */
    }
}

/* Receiver side: register k (a borrowed waker), or with k NULL unregister
 * owner's registration (another receiver's, which replaced it, stays). */
static void aw_register(cw_remote_chan *ch, const cw_waker *k, const cw_waker *owner)
{
    unsigned expect = AW_WAITING;
    if (atomic_compare_exchange_strong(&ch->aw, &expect, AW_REGISTERING)) {
        cw_waker *old = NULL;
        if (!k && !cw_waker_will_wake(ch->waker, owner)) {
            /* not ours: leave it */
        } else if (!cw_waker_will_wake(ch->waker, k)) {
            old = ch->waker;
            ch->waker = cw_waker_clone(k);
        }
        expect = AW_REGISTERING;
        if (!atomic_compare_exchange_strong(&ch->aw, &expect, AW_WAITING)) {
            /* a sender came in meanwhile (REGISTERING | WAKING): wake */
            cw_waker *mine = ch->waker;
            ch->waker = NULL;
            atomic_store(&ch->aw, AW_WAITING);
            cw_waker_wake(mine);
        }
        cw_waker_free(old);
    } else if (k) {
        /* a sender is waking the old registration right now */
        assert(expect == AW_WAKING);
        cw_waker_wake_by_ref(k);
    }
}

static int rc_push(cw_remote_chan *ch, const void *value)
{
    uint64_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    rc_slot *s;
    for (;;) {
        if (pos & RC_CLOSED)
            return -EPIPE;
        s = rc_slot_at(ch, pos);
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - 2 * pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ch->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return -EAGAIN; /* the slot still holds last lap's value */
        } else {
            pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
        }
    }
    if (ch->size)
        memcpy(s->data, value, ch->size);
    atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_release);
    aw_wake(ch);
    return 0;
}

int cw_remote_chan_send(cw_remote_chan *ch, const void *value)
{
    if (!ch || (!value && ch->size))
        return -EINVAL;
    return rc_push(ch, value);
}

int cw_remote_chan_send_wait(cw_remote_chan *ch, const void *value)
{
    if (!ch || (!value && ch->size))
        return -EINVAL;
    bool waited = false;
    for (;;) {
        int r = rc_push(ch, value);
        if (r == -EAGAIN) {
            atomic_fetch_add(&ch->blocked, 1);
            atomic_thread_fence(memory_order_seq_cst);
            r = rc_push(ch, value);
            if (r == -EAGAIN) {
                while (sem_wait(&ch->space) < 0 && errno == EINTR)
                    ;
                waited = true;
            }
            atomic_fetch_sub(&ch->blocked, 1);
        }
        if (r == -EPIPE && waited)
            sem_post(&ch->space); /* pass the close on to another blocker */
        if (r != -EAGAIN)
            return r;
    }
}

/* Post a token for each sender blocked in send_wait, at most max. */
static void rc_post_blocked(cw_remote_chan *ch, int max)
{
    atomic_thread_fence(memory_order_seq_cst);
    int n = atomic_load(&ch->blocked);
    for (int i = 0; i < n && i < max; i++)
        sem_post(&ch->space);
}

void cw_remote_chan_close(cw_remote_chan *ch)
{
    if (!ch)
        return;
    atomic_fetch_or(&ch->tail, RC_CLOSED);
    aw_wake(ch);
    rc_post_blocked(ch, INT_MAX);
}

int cw_remote_chan_try_recv(cw_remote_chan *ch, void *out)
{
    if (!ch || (!out && ch->size))
        return -EINVAL;
    uint64_t pos = ch->head;
    rc_slot *s = rc_slot_at(ch, pos);
    if (atomic_load_explicit(&s->seq, memory_order_acquire) == 2 * pos + 1) {
        if (ch->size)
            memcpy(out, s->data, ch->size);
        atomic_store_explicit(&s->seq, 2 * (pos + ch->cap), memory_order_release);
        ch->head = pos + 1;
        rc_post_blocked(ch, 1);
        return 0;
    }
    uint64_t tail = atomic_load(&ch->tail);
    if ((tail & RC_CLOSED) && (tail & ~RC_CLOSED) == pos)
        return -EPIPE;
    return -EAGAIN; /* empty, or the oldest claimed slot is being written */
}

void cw_remote_chan_recv_init(cw_remote_chan_recv *f, cw_remote_chan *ch, void *out)
{
    if (!f)
        return;
    bool ok = ch && (out || !ch->size);
    f->cw__ch = ok ? ch : NULL;
    f->cw__out = out;
    f->cw__state = ok ? 1 : 3; /* init, or done */
    f->cw__result = ok ? -EAGAIN : -EINVAL;
}

enum { RR_ZERO = 0, RR_INIT = 1, RR_WAITING = 2, RR_DONE = 3 };

static cw_poll rr_done(cw_remote_chan_recv *f, int result)
{
    if (f->cw__state == RR_WAITING)
        aw_register(f->cw__ch, NULL, f->cw__who);
    f->cw__state = RR_DONE;
    f->cw__result = result;
    return CW_READY;
}

cw_poll cw_remote_chan_recv_poll(cw_remote_chan_recv *f, cw_cx *cx)
{
    if (!f)
        return CW_READY;
    if (f->cw__state == RR_ZERO)
        return rr_done(f, -EINVAL);
    if (f->cw__state == RR_DONE)
        return CW_READY;
    cw_waker *k = cw_cx_waker(cx);
    if (!k)
        return rr_done(f, -EINVAL);
    int r = cw_remote_chan_try_recv(f->cw__ch, f->cw__out);
    if (r != -EAGAIN)
        return rr_done(f, r);
    /* Register, then look again: a value published before the
     * registration is seen now; one published after it wakes us. */
    aw_register(f->cw__ch, k, NULL);
    f->cw__who = k;
    f->cw__state = RR_WAITING;
    r = cw_remote_chan_try_recv(f->cw__ch, f->cw__out);
    if (r != -EAGAIN)
        return rr_done(f, r);
    return CW_PENDING;
}

int cw_remote_chan_recv_result(const cw_remote_chan_recv *f)
{
    if (!f || f->cw__state == RR_ZERO)
        return -EINVAL;
    return f->cw__state == RR_DONE ? f->cw__result : -EAGAIN;
}

void cw_remote_chan_recv_drop(cw_remote_chan_recv *f)
{
    if (!f || f->cw__state == RR_ZERO || f->cw__state == RR_DONE)
        return;
    rr_done(f, -ECANCELED);
}
