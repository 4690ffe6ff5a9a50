/**
 * @file clockworker/sync.h
 * @brief Tasks talking to tasks and to threads: cw_oneshot, cw_chan,
 *        cw_remote_chan, cw_notify, cw_sem, cw_spawn_remote().
 *
 * | primitive       | who sends / signals           | who waits            |
 * |-----------------|-------------------------------|----------------------|
 * | ::cw_oneshot    | one sender, ANY thread        | one task             |
 * | ::cw_chan       | tasks of one executor         | tasks, same executor |
 * | ::cw_remote_chan| ANY thread (and tasks)        | one task             |
 * | ::cw_notify     | tasks / executor thread       | tasks                |
 * | ::cw_sem        | tasks / executor thread       | tasks                |
 * | cw_spawn_remote | ANY thread spawns a task      | that thread (blocks) |
 *
 * Waiting is done with small futures that a task embeds in its state, as
 * with cw_sleep (time.h): `_init` prepares one, `_poll` is awaited
 * (CW_AWAIT), `_result` says how it ended, `_drop` is called from the
 * task's drop function:
 *
 * @code
 * struct consumer {
 *     cw_pt pt;
 *     cw_chan *ch;            // owned by main, outlives the task
 *     cw_chan_recv rx;        // the wait
 *     struct item item;       // where the value lands
 *     uint64_t total;         // output
 * };
 *
 * static cw_poll consumer_poll(void *state, cw_cx *cx)
 * {
 *     struct consumer *c = state;
 *     CW_BEGIN(&c->pt);
 *     for (;;) {
 *         cw_chan_recv_init(&c->rx, c->ch, &c->item);
 *         CW_AWAIT(&c->pt, cw_chan_recv_poll(&c->rx, cx));
 *         if (cw_chan_recv_result(&c->rx) < 0)   // -EPIPE: closed, drained
 *             break;
 *         c->total += c->item.value;
 *     }
 *     CW_END(&c->pt);
 * }
 *
 * static void consumer_drop(void *state)
 * {
 *     cw_chan_recv_drop(&((struct consumer *)state)->rx);  // required
 * }
 * @endcode
 *
 * The receive futures keep a pointer to where the value lands (out), and
 * cw_chan_send_init() one to the value: initialise them inside the poll,
 * as above, or in the task's own block with cw_spawn_with() (task.h),
 * never in a state that cw_spawn() then copies (the pointer would name
 * the caller's copy). cw_notify_wait_init() and cw_sem_acquire_init()
 * keep no such pointer and may be initialised before cw_spawn().
 *
 * The rules every future here follows:
 * - The first poll either completes at once (::CW_READY) or links the
 *   future into the primitive's wait list, holding a clone of the task's
 *   waker; waiters are served in FIFO order of their first PENDING poll.
 *   Later polls keep the place (and the newest waker).
 * - After ::CW_READY, `_result` gives 0 or a negative errno; polling again
 *   gives ::CW_READY with the same result and does nothing else. Before,
 *   `_result` gives -EAGAIN. Re-initialise the future for the next wait
 *   (allowed when it is not waiting: never polled, ready, or dropped).
 * - The drop rule: a task's drop function must call `_drop` on every such
 *   future in its state, so that a task aborted (cw_join_abort()),
 *   panicking, or cancelled by cw_executor_free() while it waits leaves
 *   the wait list. Nothing is lost by it: a value, permit or notification
 *   that was already handed to the dropped waiter goes to the next waiter
 *   (or stays in the primitive). `_drop` on a future never polled, ready,
 *   or already dropped costs a test. A dropped future is finished: a poll
 *   gives ::CW_READY with result -ECANCELED (unless it had completed
 *   before). NULL is a no-op everywhere. A task that returns ::CW_READY
 *   while one of its futures still waits (a select where another branch
 *   won) must `_drop` that future first: with a join handle held, the
 *   drop function runs only when the handle is freed, and until then the
 *   future keeps its place (and whatever was handed to it).
 * - A poll with a NULL cx, or a cx whose poll has returned, completes the
 *   future with -EINVAL; one that was waiting leaves as by `_drop`
 *   (nothing handed to it is lost).
 * - A future holds a pointer to its primitive and to the caller's
 *   buffers; the buffers (usually fields of the same state) must stay
 *   valid while the future waits. Do not copy a future that waits (the
 *   wait list points at it); spawn copies the state before the first
 *   poll, which is fine.
 * - NULL f or cx, a cx outside a poll, or a future that was zeroed and
 *   never initialised give ::CW_READY with result -EINVAL, so a task never
 *   hangs on a bad argument.
 *
 * Freeing a primitive (`_free`) while futures still wait on it is allowed:
 * they are unlinked and woken, and complete with -EPIPE without touching
 * the freed object (their `_drop` is then a no-op). A future that was
 * initialised on it but never polled must not be polled after the free.
 *
 * Cost (executor side): no lock and no allocation after `_new`; a wait is
 * a waker clone (one atomic increment) and an O(1) link; a wake is
 * cw_waker_wake_by_ref() on the executor thread (an O(1) enqueue). A
 * ::cw_chan hop from a sending task to a waiting receiving task costs one
 * memcpy in, one out, and one wake: the receiver runs when its queue's
 * turn comes (the same poll round if its queue is the one running, since
 * the receiver is put at the tail of its queue's FIFO).
 *
 * Errors used here: -EINVAL (NULL or bad argument), -ENOMEM, -EAGAIN
 * (would wait: full, empty, no permit; or "not finished yet"), -EPIPE
 * (closed, the peer is gone, or the primitive was freed), -ESHUTDOWN
 * (the executor is gone), -ECANCELED, -EBUSY, -EOVERFLOW (cw_sem_release()).
 *
 * Thread rule in short: everything is executor-thread only (the thread of
 * the executor whose tasks use the primitive) unless its documentation
 * says "any thread". A primitive other than ::cw_oneshot and
 * ::cw_remote_chan must serve the tasks of one executor only.
 */
#ifndef CLOCKWORKER_SYNC_H
#define CLOCKWORKER_SYNC_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A place in a wait list, embedded in every waiting future below. The
 * layout is public only for embedding; every field is private.
 */
typedef struct cw_sync_waiter {
    struct cw_sync_waiter *cw__prev; /**< private: the primitive's list */
    struct cw_sync_waiter *cw__next; /**< private */
    cw_waker *cw__waker;             /**< private: the waiting task */
    void *cw__obj;                   /**< private: the primitive; NULL once detached */
    int cw__state;                   /**< private: init, waiting, granted, done */
    int cw__result;                  /**< private: 0 or a negative errno */
} cw_sync_waiter;

/* ======================================================================== */
/** @name cw_oneshot: one value, once, from one sender to one receiver
 *
 * The object has two ends, each released once: the sender's (by
 * cw_oneshot_send() or cw_oneshot_sender_free()) and the receiver's (by
 * cw_oneshot_receiver_free()); it is freed with the second. The sender may
 * be on ANY thread (a worker thread hands its result back to a task);
 * sending is lock-free (a few atomic operations and, when the receiver
 * waits, one wake). The receiver is one task of an executor at a time.
 * @{ */

/** A oneshot (opaque). */
typedef struct cw_oneshot cw_oneshot;

/** The receiver's wait. Public layout for embedding; fields private. */
typedef struct cw_oneshot_recv {
    cw_oneshot *cw__os; /**< private */
    void *cw__out;      /**< private: where the value is copied */
    int cw__state;      /**< private */
    int cw__result;     /**< private */
} cw_oneshot_recv;

/**
 * Create a oneshot for one value of size bytes (0 is allowed: a bare
 * "done" signal).
 * @return 0 and *out; -EINVAL if out is NULL or size > 2^40; -ENOMEM.
 * Any thread. One allocation (header + value).
 */
CW_EXTERN int cw_oneshot_new(size_t size, cw_oneshot **out);

/**
 * Send the value (size bytes copied from value; value may be NULL when
 * size is 0) and release the sender's end, whatever the result: the
 * sender is done with os after this call. Wakes the waiting receiver.
 * @return 0: the value is in the oneshot (the receiver gets it unless it
 *         frees its end first); -EPIPE: the receiver's end was already
 *         released, nothing is delivered; -EINVAL: os is NULL, or value
 *         is NULL with size > 0 (then nothing is released). Call at most
 *         once per oneshot, and not after cw_oneshot_sender_free().
 * Any thread. No lock, no allocation.
 */
CW_EXTERN int cw_oneshot_send(cw_oneshot *os, const void *value);

/**
 * Release the sender's end without sending: the receiver (waiting or
 * not) gets -EPIPE. Any thread. NULL is a no-op. Not after
 * cw_oneshot_send() (which released the end already).
 */
CW_EXTERN void cw_oneshot_sender_free(cw_oneshot *os);

/**
 * Release the receiver's end: a later cw_oneshot_send() says -EPIPE, and
 * a value already sent is discarded. Drop (or finish) the receiving
 * future first. Executor thread of the receiver (or any thread when no
 * task waits). NULL is a no-op.
 */
CW_EXTERN void cw_oneshot_receiver_free(cw_oneshot *os);

/**
 * Take the value without waiting: copies it to out (size bytes; out may
 * be NULL when size is 0).
 * @return 0; -EAGAIN: not sent yet; -EPIPE: the sender released its end
 *         without sending, or the value was already taken; -EINVAL: NULL
 *         os, or NULL out with size > 0. Receiver side (one thread).
 */
CW_EXTERN int cw_oneshot_try_recv(cw_oneshot *os, void *out);

/** Prepare a wait for the value, to be copied to out (size bytes; may
 *  be NULL when size is 0). NULL f: no-op. Executor thread. */
CW_EXTERN void cw_oneshot_recv_init(cw_oneshot_recv *f, cw_oneshot *os, void *out);

/**
 * Await the value: ::CW_READY once it was copied to out (result 0) or
 * the sender released its end without sending (result -EPIPE; also when
 * the value was taken already); else ::CW_PENDING with the task's waker
 * stored in the oneshot (the sender wakes it from its thread). Executor
 * thread.
 */
CW_EXTERN cw_poll cw_oneshot_recv_poll(cw_oneshot_recv *f, cw_cx *cx);

/** 0, -EPIPE (see cw_oneshot_recv_poll()), -EAGAIN before ::CW_READY,
 *  -ECANCELED once dropped before it completed, -EINVAL for NULL f (or
 *  a bad cx: the file comment). */
CW_EXTERN int cw_oneshot_recv_result(const cw_oneshot_recv *f);

/** Stop waiting: the waker stored in the oneshot is released (unless the
 *  sender is waking it at this instant; then the wake is a no-op). A
 *  value sent stays in the oneshot for cw_oneshot_try_recv() or a new
 *  future. Executor thread. */
CW_EXTERN void cw_oneshot_recv_drop(cw_oneshot_recv *f);
/** @} */

/* ======================================================================== */
/** @name cw_chan: bounded channel between tasks of one executor
 *
 * A ring of `capacity` records of `size` bytes, allocated at creation:
 * values are copied in by the sender and out by the receiver, in FIFO
 * order. Meant for many producers and one consumer, but any number of
 * tasks may receive (each value goes to one of them).
 *
 * Fairness: senders that find it full wait in FIFO order; when a slot
 * frees, the first waiting sender's value is copied into the ring at once
 * (so values from waiting senders enter in the order the senders began to
 * wait) and that sender completes. Receivers that find it empty wait in
 * FIFO order; each value that arrives is reserved for the first waiting
 * receiver, which takes the oldest value when it next runs. A reserved
 * value stays in the ring until then, so a receiver aborted before it ran
 * passes the reservation to the next waiting receiver (or back to the
 * channel): nothing is lost. cw_chan_try_send() and cw_chan_try_recv()
 * never overtake waiters.
 *
 * Close: sends fail with -EPIPE from then on; waiting senders complete
 * with -EPIPE (their values are not sent); receivers take the values
 * still in the ring, then get -EPIPE.
 *
 * Executor thread only, all of it; no lock, no allocation after
 * cw_chan_new(). Every operation is O(1) plus the memcpy of a record.
 * @{ */

/** A channel (opaque). */
typedef struct cw_chan cw_chan;

/** A wait to send one value. Public layout for embedding; fields private. */
typedef struct cw_chan_send {
    cw_sync_waiter cw__w;   /**< private */
    const void *cw__value;  /**< private: copied when space is found */
} cw_chan_send;

/** A wait to receive one value. Public layout for embedding; fields private. */
typedef struct cw_chan_recv {
    cw_sync_waiter cw__w;   /**< private */
    void *cw__out;          /**< private */
} cw_chan_recv;

/**
 * Create a channel of capacity records of size bytes each.
 * @return 0 and *out (free with cw_chan_free()); -EINVAL if out is NULL,
 *         capacity is 0, or capacity * size overflows or exceeds 2^40
 *         bytes; -ENOMEM. Two allocations (header, ring).
 */
CW_EXTERN int cw_chan_new(size_t capacity, size_t size, cw_chan **out);

/**
 * Close (if open) and free the channel. Waiting futures complete with
 * -EPIPE and are detached (see the file comment); values still in the
 * ring are discarded. NULL is a no-op.
 */
CW_EXTERN void cw_chan_free(cw_chan *ch);

/**
 * Close: no more sends. Waiting senders complete with -EPIPE and are
 * woken; waiting receivers that have no value reserved complete with
 * -EPIPE and are woken; values in the ring can still be received.
 * Closing twice does nothing. NULL is a no-op.
 */
CW_EXTERN void cw_chan_close(cw_chan *ch);

/**
 * Send without waiting: copy size bytes from value into the ring.
 * @return 0; -EAGAIN if the ring is full (or senders wait); -EPIPE if
 *         closed; -EINVAL for NULL ch, or NULL value with size > 0.
 * Wakes the first waiting receiver. Usable inside and outside polls.
 */
CW_EXTERN int cw_chan_try_send(cw_chan *ch, const void *value);

/**
 * Receive without waiting: copy the oldest value to out (size bytes;
 * NULL allowed when size is 0), if the ring holds more values than are
 * reserved for waiting receivers (reservations are counts, not slots: a
 * waiting receiver then gets the next value, and nothing is lost).
 * @return 0; -EAGAIN if there is none; -EPIPE if closed and drained;
 *         -EINVAL for NULL ch, or NULL out with size > 0.
 * Frees a slot, so the first waiting sender completes.
 */
CW_EXTERN int cw_chan_try_recv(cw_chan *ch, void *out);

/** Values in the ring (reserved ones included); 0 for NULL. */
CW_EXTERN size_t cw_chan_len(const cw_chan *ch);

/** Prepare a send of the value at value (size bytes, read when the value
 *  enters the ring: keep it valid and unchanged until the future is ready
 *  or dropped). NULL f: no-op. */
CW_EXTERN void cw_chan_send_init(cw_chan_send *f, cw_chan *ch, const void *value);

/**
 * Await space and send: ::CW_READY with result 0 once the value is in
 * the ring, or -EPIPE if the channel is (or gets) closed or freed first.
 * Else ::CW_PENDING, waiting in FIFO order among senders.
 */
CW_EXTERN cw_poll cw_chan_send_poll(cw_chan_send *f, cw_cx *cx);

/** 0, -EPIPE, -EINVAL (see the file comment), -EAGAIN before ready,
 *  -ECANCELED once dropped before it completed. */
CW_EXTERN int cw_chan_send_result(const cw_chan_send *f);

/** Leave the senders' wait list; the value is not sent (a value already
 *  in the ring stays there). */
CW_EXTERN void cw_chan_send_drop(cw_chan_send *f);

/** Prepare a receive into out (size bytes; may be NULL when size is 0).
 *  NULL f: no-op. */
CW_EXTERN void cw_chan_recv_init(cw_chan_recv *f, cw_chan *ch, void *out);

/**
 * Await a value: ::CW_READY with result 0 once the oldest value was
 * copied to out, or -EPIPE once the channel is closed and has no value
 * for this receiver (or was freed). Else ::CW_PENDING, waiting in FIFO
 * order among receivers.
 */
CW_EXTERN cw_poll cw_chan_recv_poll(cw_chan_recv *f, cw_cx *cx);

/** 0, -EPIPE, -EINVAL (NULL f, or a bad cx), -EAGAIN before ready, or
 *  -ECANCELED once dropped before it completed. */
CW_EXTERN int cw_chan_recv_result(const cw_chan_recv *f);

/** Leave the receivers' wait list; a value reserved for this receiver
 *  goes to the next waiting receiver or stays in the ring. */
CW_EXTERN void cw_chan_recv_drop(cw_chan_recv *f);
/** @} */

/* ======================================================================== */
/** @name cw_remote_chan: bounded channel from any thread to one task
 *
 * Senders are any threads (and tasks); one task at a time receives. The
 * ring is a bounded lock-free multi-producer queue (Vyukov's, with a
 * sequence number per slot), allocated at creation; the order is FIFO per
 * sender (between senders: the order in which they claimed slots). The
 * executor side never blocks and takes no lock: a receive is two atomic
 * loads, a memcpy and an atomic store; a send is a compare-and-swap, a
 * memcpy, an atomic store and one atomic read-modify-write to see whether
 * the receiver waits. A waiting receiver is woken through its waker (see
 * waker.h: one push on the executor's lock-free inbox, and an eventfd
 * write only when the executor is idle), so a busy receiver costs its
 * senders no syscall.
 *
 * cw_remote_chan_send() does not wait: a full channel gives -EAGAIN.
 * cw_remote_chan_send_wait() blocks the calling thread until there is
 * space (on a POSIX semaphore posted by the receiver after it frees a
 * slot, only while a sender is blocked; sem_post never blocks). Never
 * call it on the executor thread of the receiver: it would wait forever.
 *
 * Close (any thread, either side): sends fail with -EPIPE from then on,
 * blocked senders return -EPIPE, and the receiver gets every value sent
 * before the close, then -EPIPE. Close is exact: a send that returned 0
 * is received (unless the channel is freed first).
 * @{ */

/** A remote channel (opaque). */
typedef struct cw_remote_chan cw_remote_chan;

/** The receiver's wait. Public layout for embedding; fields private. */
typedef struct cw_remote_chan_recv {
    cw_remote_chan *cw__ch; /**< private */
    void *cw__out;          /**< private */
    int cw__state;          /**< private */
    int cw__result;         /**< private */
    const cw_waker *cw__who; /**< private: the waker it registered */
} cw_remote_chan_recv;

/**
 * Create a remote channel of capacity records of size bytes.
 * @return 0 and *out; -EINVAL if out is NULL, capacity is 0 or above
 *         2^32, or the ring would exceed 2^40 bytes; -ENOMEM (also if the
 *         semaphore cannot be created). Any thread.
 */
CW_EXTERN int cw_remote_chan_new(size_t capacity, size_t size, cw_remote_chan **out);

/**
 * Free the channel and the values left in it. No thread may use it any
 * more (join the sending threads first), and the receiving future must
 * be finished or dropped. NULL is a no-op. Any thread.
 */
CW_EXTERN void cw_remote_chan_free(cw_remote_chan *ch);

/**
 * Send without waiting: copy size bytes from value into a free slot.
 * @return 0; -EAGAIN if full; -EPIPE if closed; -EINVAL for NULL ch, or
 *         NULL value with size > 0. Any thread; lock-free.
 */
CW_EXTERN int cw_remote_chan_send(cw_remote_chan *ch, const void *value);

/**
 * Send, blocking the calling thread while the channel is full.
 * @return 0; -EPIPE if closed before the value got in; -EINVAL as for
 *         cw_remote_chan_send(). Any thread except the receiver's
 *         executor thread.
 */
CW_EXTERN int cw_remote_chan_send_wait(cw_remote_chan *ch, const void *value);

/**
 * Close (see above). Any thread, any number of times. NULL is a no-op.
 */
CW_EXTERN void cw_remote_chan_close(cw_remote_chan *ch);

/**
 * Receive without waiting into out (size bytes; NULL when size is 0).
 * @return 0; -EAGAIN if empty (or the oldest claimed slot is still being
 *         written); -EPIPE if closed and drained; -EINVAL for NULL ch, or
 *         NULL out with size > 0. The receiving side only (one thread).
 */
CW_EXTERN int cw_remote_chan_try_recv(cw_remote_chan *ch, void *out);

/** Prepare a receive into out. NULL f: no-op. Executor thread. */
CW_EXTERN void cw_remote_chan_recv_init(cw_remote_chan_recv *f, cw_remote_chan *ch,
                                        void *out);

/**
 * Await a value: ::CW_READY with result 0 once one was copied to out, or
 * -EPIPE once closed and drained. Else ::CW_PENDING with the task's waker
 * registered; a send from any thread wakes it. One task receives at a
 * time: a second waiting receiver replaces the first's registration.
 * Executor thread.
 */
CW_EXTERN cw_poll cw_remote_chan_recv_poll(cw_remote_chan_recv *f, cw_cx *cx);

/** 0, -EPIPE, -EINVAL (NULL f, or a bad cx), -EAGAIN before ready, or
 *  -ECANCELED once dropped before it completed. */
CW_EXTERN int cw_remote_chan_recv_result(const cw_remote_chan_recv *f);

/** Stop waiting: the registration is removed; values stay in the ring
 *  for the next receive. Executor thread. */
CW_EXTERN void cw_remote_chan_recv_drop(cw_remote_chan_recv *f);
/** @} */

/* ======================================================================== */
/** @name cw_notify: wake one or all waiting tasks
 *
 * Like tokio's Notify. cw_notify_one() wakes the first waiting task; if
 * none waits, it stores one notification, which the next wait consumes at
 * its first poll (completing at once). Several cw_notify_one() with no
 * waiter store just one. cw_notify_all() wakes every task waiting at that
 * moment (a wait counts as waiting after its first PENDING poll) and
 * stores nothing. A waiter woken by cw_notify_one() and dropped before it
 * ran passes the notification on (to the next waiter, or stored).
 * Executor thread only; no lock, no allocation after cw_notify_new();
 * cw_notify_all() is O(waiters), the rest O(1).
 * @{ */

/** A notify (opaque). */
typedef struct cw_notify cw_notify;

/** A wait for a notification. Public layout for embedding; fields private. */
typedef struct cw_notify_wait {
    cw_sync_waiter cw__w; /**< private */
} cw_notify_wait;

/** Create a notify with no stored notification. @return 0 and *out;
 *  -EINVAL for NULL out; -ENOMEM. */
CW_EXTERN int cw_notify_new(cw_notify **out);

/** Free it; waiting futures complete with -EPIPE (see the file
 *  comment). NULL is a no-op. */
CW_EXTERN void cw_notify_free(cw_notify *n);

/** Wake the first waiter, or store one notification. NULL: no-op. */
CW_EXTERN void cw_notify_one(cw_notify *n);

/** Wake every current waiter; store nothing. NULL: no-op. */
CW_EXTERN void cw_notify_all(cw_notify *n);

/** Prepare a wait. NULL f: no-op. */
CW_EXTERN void cw_notify_wait_init(cw_notify_wait *f, cw_notify *n);

/**
 * Await a notification: ::CW_READY with result 0 when notified (at the
 * first poll if one was stored), -EPIPE if the notify was freed. Else
 * ::CW_PENDING, waiting in FIFO order.
 */
CW_EXTERN cw_poll cw_notify_wait_poll(cw_notify_wait *f, cw_cx *cx);

/** 0, -EPIPE, -EINVAL (NULL f, or a bad cx), -EAGAIN before ready, or
 *  -ECANCELED once dropped before it completed. */
CW_EXTERN int cw_notify_wait_result(const cw_notify_wait *f);

/** Leave the wait list (passing on a cw_notify_one() notification
 *  received and not yet seen). */
CW_EXTERN void cw_notify_wait_drop(cw_notify_wait *f);
/** @} */

/* ======================================================================== */
/** @name cw_sem: counting semaphore, FIFO for acquirers
 *
 * Acquirers are served strictly in FIFO order: one that waits for n
 * permits holds back later ones, even those that would fit (no
 * starvation of large requests). Permits granted to a waiter that is
 * dropped before it ran go back to the semaphore (and on to the next
 * waiters). Permits a task acquired (its future ::CW_READY with result 0)
 * are the task's until it calls cw_sem_release(): a task's drop function
 * releases what it holds. Executor thread only; no lock, no allocation
 * after cw_sem_new(); each operation is O(1) per waiter served.
 * @{ */

/** A semaphore (opaque). */
typedef struct cw_sem cw_sem;

/** A wait for permits. Public layout for embedding; fields private. */
typedef struct cw_sem_acquire {
    cw_sync_waiter cw__w; /**< private */
    uint64_t cw__n;       /**< private: permits wanted */
} cw_sem_acquire;

/** Create a semaphore with permits permits. @return 0 and *out;
 *  -EINVAL for NULL out; -ENOMEM. */
CW_EXTERN int cw_sem_new(uint64_t permits, cw_sem **out);

/** Free it; waiting futures complete with -EPIPE. NULL is a no-op. */
CW_EXTERN void cw_sem_free(cw_sem *s);

/**
 * Take n permits without waiting. @return 0; -EAGAIN if fewer than n are
 * free or acquirers wait (no overtaking); -EINVAL for NULL s.
 */
CW_EXTERN int cw_sem_try_acquire(cw_sem *s, uint64_t n);

/**
 * Give n permits back (or add new ones) and serve the waiters in FIFO
 * order. The semaphore counts at most 2^64 - 1 permits: the free ones
 * plus those granted to waiters that have not run yet (so that a granted
 * waiter dropped before it ran can always give its permits back); the
 * permits tasks hold are not counted. @return 0; -EINVAL for NULL s;
 * -EOVERFLOW if that count would pass 2^64 - 1: nothing changes (no
 * permit is added, none is lost, no waiter is served).
 */
CW_EXTERN int cw_sem_release(cw_sem *s, uint64_t n);

/** Permits free now (not counting those granted to waiters that have
 *  not run yet); 0 for NULL. */
CW_EXTERN uint64_t cw_sem_available(const cw_sem *s);

/** Prepare a wait for n permits (0 is ready at once, even while others
 *  wait). NULL f: no-op. */
CW_EXTERN void cw_sem_acquire_init(cw_sem_acquire *f, cw_sem *s, uint64_t n);

/**
 * Await n permits: ::CW_READY with result 0 once they are the task's, or
 * -EPIPE if the semaphore was freed. Else ::CW_PENDING, in FIFO order.
 */
CW_EXTERN cw_poll cw_sem_acquire_poll(cw_sem_acquire *f, cw_cx *cx);

/** 0, -EPIPE, -EINVAL (NULL f, or a bad cx), -EAGAIN before ready, or
 *  -ECANCELED once dropped before it completed. */
CW_EXTERN int cw_sem_acquire_result(const cw_sem_acquire *f);

/** Leave the wait list; permits granted and not yet seen go back. Does
 *  NOT release permits the future already completed with (use
 *  cw_sem_release()). */
CW_EXTERN void cw_sem_acquire_drop(cw_sem_acquire *f);
/** @} */

/* ======================================================================== */
/** @name cw_spawn_remote: spawn onto an executor from another thread
 *
 * A ::cw_spawner is obtained on the executor thread for one queue and then
 * used from any thread. cw_spawn_remote() allocates the task on the
 * calling thread, copies the state, and hands the task to the executor
 * through its lock-free remote inbox (the one remote wakes use); the
 * executor links it in, counts it in its stats and enqueues it on the
 * queue at its next scheduling decision, and it runs on the executor
 * thread like any task. The caller may get a ::cw_remote_join to wait for
 * it (blocking) or to poll its status from its own thread.
 *
 * A spawner keeps the executor's shared part alive, so a careful user is
 * safe: after cw_executor_free(), cw_spawn_remote() fails with
 * -ESHUTDOWN instead of touching freed memory. While it exists it keeps
 * the executor's remote-wake fd watched by the loop, as a live uv_async_t
 * keeps a libuv loop alive: event_base_dispatch() (uv_run() in
 * UV_RUN_DEFAULT, cw_uring_run() in CW_URING_RUN_DEFAULT) does not return
 * while a spawner exists, since work may still arrive; free it, from any
 * thread, to let the loop end. (The library does this with a task of its
 * own on the queue, which no statistic counts and no hook sees.)
 * @{ */

/** A handle for spawning onto one queue from any thread (opaque). */
typedef struct cw_spawner cw_spawner;

/** A remote thread's view of a task it spawned (opaque). */
typedef struct cw_remote_join cw_remote_join;

/**
 * Create a spawner for queue q.
 * @return 0 and *out (free with cw_spawner_free()); -ENOENT if q is
 *         NULL (no such queue); -EINVAL if out is NULL; -EPERM if not on q's executor thread; -ESHUTDOWN if the
 *         executor is being freed; -ENOMEM. Executor thread.
 */
CW_EXTERN int cw_spawner_new(cw_queue *q, cw_spawner **out);

/** Release the spawner (tasks it spawned run on). Any thread; once.
 *  NULL is a no-op. Valid after the executor was freed. */
CW_EXTERN void cw_spawner_free(cw_spawner *sp);

/**
 * Spawn a task from any thread onto the spawner's queue. poll, state,
 * size and drop are as for cw_spawn(): the state is copied here; poll and
 * drop run on the executor thread (drop also when the executor is freed
 * before the task ended).
 *
 * @param sp    the spawner (names the executor and the queue).
 * @param poll  the poll function; required.
 * @param state the initial state, copied (size bytes); may be NULL only
 *              when size is 0.
 * @param size  bytes of state.
 * @param drop  optional; runs on the executor thread (see cw_spawn()).
 * @param join  if not NULL, receives a handle to free with
 *              cw_remote_join_free() (any thread); NULL detaches the task.
 * @return 0; -EINVAL if sp or poll is NULL, or state is NULL with
 *         size > 0, or size > 2^40; -ESHUTDOWN if the executor has been
 *         (or is being) freed; -ENOMEM. On error nothing was spawned,
 *         *join is untouched and drop is not called.
 *
 * Any thread, the executor's too (the task then starts at the executor's
 * next scheduling decision, never inside this call). Cost: one or two
 * allocations (task block; join handle with room for a copy of the
 * state), a lock-free push, and an eventfd write if the executor is idle.
 */
CW_EXTERN int cw_spawn_remote(cw_spawner *sp, cw_poll_fn poll, const void *state, size_t size,
                              cw_drop_fn drop, cw_remote_join **join);

/**
 * Block until the task has ended and return its status: 0, -ECANCELED
 * (aborted, or the executor was freed before it ended: its drop function
 * ran during cw_executor_free()), ::CW_EPANIC. -EINVAL for NULL j;
 * -EBUSY on the executor's own thread (it would wait forever). Any other
 * thread; any number of times.
 */
CW_EXTERN int cw_remote_join_wait(cw_remote_join *j);

/** The status without blocking: -EAGAIN while the task has not ended, then
 *  as cw_remote_join_wait(); -EINVAL for NULL. Any thread. */
CW_EXTERN int cw_remote_join_status(const cw_remote_join *j);

/**
 * A copy of the task's finished state, taken when it completed (status 0)
 * and before its drop function ran on the executor thread (so pointers in
 * it that drop released are dangling). Valid until cw_remote_join_free();
 * NULL unless the status is 0. Any thread (after status 0 was seen).
 */
CW_EXTERN const void *cw_remote_join_state(const cw_remote_join *j);

/** The panic message if the status is ::CW_EPANIC, else NULL. Valid
 *  until cw_remote_join_free(). Any thread. */
CW_EXTERN const char *cw_remote_join_panic_message(const cw_remote_join *j);

/** Release the handle (a running task is detached). Any thread; once.
 *  NULL is a no-op. */
CW_EXTERN void cw_remote_join_free(cw_remote_join *j);
/** @} */

#ifdef __cplusplus
}
#endif
#endif
