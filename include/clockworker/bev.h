/**
 * @file clockworker/bev.h
 * @brief Bufferevent futures: await bytes, a line, a drained output buffer,
 *        or EOF/error on a libevent bufferevent, from a task; and a
 *        bufferevent's own callbacks run on a queue.
 *
 * Two ways to put a bufferevent's work under the scheduler: keep its
 * callbacks and run them on a queue (cw_bufferevent_setcb(), at the end
 * of this header: the one-call change for an existing daemon), or await
 * it from a task, with the futures below.
 *
 * A ::cw_bev_wait is a leaf future, like ::cw_fdwait: a small struct the
 * task embeds in its state, set up with one of the init functions (which
 * says what to wait for), polled with cw_bev_poll() and released with
 * cw_bev_drop(). Four kinds:
 *
 *   cw_bev_read_init(w, bev, n)        at least n bytes in the input buffer
 *   cw_bev_readln_init(w, bev, eol, max)  a line (as evbuffer_readln()),
 *                                      removed from the input and kept in
 *                                      the future: cw_bev_line()
 *   cw_bev_drain_init(w, bev, mark)    output buffer down to mark bytes
 *   cw_bev_event_init(w, bev)          EOF, an error or a timeout
 *
 * When the task completes (::CW_READY) cw_bev_result() says how: 0 when
 * the condition holds, or a negative errno when the bufferevent reported
 * an event first -- the error is returned, never lost:
 *   - -EPIPE: EOF (the peer closed) before the condition held; for
 *     cw_bev_event_init() a clean EOF is the awaited outcome and gives 0;
 *   - -errno of the socket error (EVUTIL_SOCKET_ERROR() at the event;
 *     -EIO when it was 0) for BEV_EVENT_ERROR;
 *   - -ETIMEDOUT for BEV_EVENT_TIMEOUT (bufferevent_set_timeouts());
 *   - -EBUSY: another future is waiting on the same bufferevent;
 *   - -EIO: the bufferevent could not be enabled (bufferevent_enable()
 *     failed: nothing could wake the task);
 *   - -EMSGSIZE: (line) more than max bytes arrived without an EOL;
 *   - -ENOMEM: (line) no memory for the line's copy (it stays in the
 *     input buffer: a later wait can read it);
 *   - -EINVAL: a zeroed or dropped future, NULL bufferevent, NULL cx.
 * cw_bev_events() gives the raw BEV_EVENT_* flags of the event that ended
 * the wait (0 when none did). Data that is in the input buffer wins over
 * an EOF or error behind it: a read or line wait completes with 0 first,
 * and the next poll reports the event.
 *
 * Arming. At its first ::CW_PENDING poll a future saves the bufferevent's
 * callbacks (bufferevent_getcb()) and the watermark it needs, installs its
 * own callbacks (which wake the task through a cloned waker), and enables
 * the direction it waits for (EV_READ for read, line and event waits,
 * EV_WRITE for drain; it is left enabled afterwards). When the wait
 * completes (the poll that returns ::CW_READY), or the future is dropped,
 * the saved callbacks and watermark are put back exactly as they were.
 * So while a task waits, the bufferevent's callbacks are the future's:
 * the previous ones are not called, and events that arrive go to the task.
 * Watermarks: a read wait sets the read low watermark to n, a line wait
 * to 0, and a drain wait sets the write low watermark to mark. Read,
 * line and event waits also lift the read high watermark while they wait
 * (libevent 2.1 calls a read callback again and again, never returning to
 * the loop, while the input sits at the high watermark with more data in
 * the socket: a waiting future consumes nothing, so it must not stop
 * there). Everything is restored when the wait ends. Bound a line with
 * max; a read or event wait buffers what the peer sends meanwhile.
 *
 * One waiter per bufferevent: a future whose bufferevent already carries
 * another future's callbacks completes with -EBUSY and changes nothing
 * (wait for two things at once by awaiting them one after the other).
 *
 * Each poll after ::CW_READY starts a new wait of the same kind (a line
 * wait reads the next line and frees the previous one), so a loop needs
 * no re-initialisation:
 *
 * @code
 * typedef struct session {
 *     cw_pt pt;
 *     struct bufferevent *bev;   // owned by the session
 *     cw_bev_wait line;
 *     int err;                   // output
 * } session;
 *
 * static cw_poll session_poll(void *state, cw_cx *cx)
 * {
 *     session *s = state;
 *     CW_BEGIN(&s->pt);
 *     cw_bev_readln_init(&s->line, s->bev, EVBUFFER_EOL_CRLF, 4096);
 *     for (;;) {
 *         CW_AWAIT(&s->pt, cw_bev_poll(&s->line, cx));
 *         if ((s->err = cw_bev_result(&s->line)) != 0)
 *             break;                  // -EPIPE at EOF, or the error
 *         handle(cw_bev_line(&s->line, NULL));
 *     }
 *     cw_bev_drop(&s->line);          // callbacks restored
 *     CW_END(&s->pt);
 * }
 *
 * static void session_drop(void *state)
 * {
 *     session *s = state;
 *     cw_bev_drop(&s->line);          // required: see below
 *     bufferevent_free(s->bev);
 * }
 * @endcode
 *
 * IMPORTANT: the task's drop function must call cw_bev_drop() on every
 * cw_bev_wait in its state, before the bufferevent is freed, so that a
 * task aborted, panicking or cancelled by cw_executor_free() while it
 * waits leaves no callback behind that points into freed memory. A
 * future that is dropped holds nothing; one that completed holds nothing
 * but the line a line wait read (cw_bev_line()), which its next poll or
 * cw_bev_drop() frees: drop a completed line wait before initialising it
 * again (an init does not free it: it cannot tell an old future from
 * uninitialised memory).
 *
 * Threads: executor thread only; the bufferevent must belong to the
 * executor's event_base (its callbacks run on that thread). Deferred
 * callbacks (BEV_OPT_DEFER_CALLBACKS) work: a callback that runs after the
 * future was dropped is the restored one.
 *
 * Cost: arming is a few bufferevent calls (no allocation but the waker
 * clone, which allocates nothing); each callback is a wake by reference.
 * Requires libevent >= 2.1.1 (bufferevent_getcb()).
 */
#ifndef CLOCKWORKER_BEV_H
#define CLOCKWORKER_BEV_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A wait on a bufferevent. Public layout so it can be embedded in a
 * task's state; every field is private (use the functions). Do not copy
 * one that is armed (polled ::CW_PENDING and not completed or dropped).
 */
typedef struct cw_bev_wait {
    struct bufferevent *cw__bev;   /**< private */
    int cw__kind;                  /**< private: read, line, drain, event */
    int cw__state;                 /**< private: idle, init, armed */
    size_t cw__n;                  /**< private: bytes, max line or mark */
    int cw__eol;                   /**< private: enum evbuffer_eol_style */
    int cw__result;                /**< private: what cw_bev_result() says */
    short cw__events;              /**< private: BEV_EVENT_* that ended it */
    short cw__pending;             /**< private: event seen, not yet reported */
    int cw__errno;                 /**< private: socket error of that event */
    cw_waker *cw__waker;           /**< private: the waiting task's clone */
    bufferevent_data_cb cw__readcb;   /**< private: saved callbacks */
    bufferevent_data_cb cw__writecb;  /**< private */
    bufferevent_event_cb cw__eventcb; /**< private */
    void *cw__cbarg;                  /**< private */
    size_t cw__wm_low, cw__wm_high;   /**< private: saved watermark */
    char *cw__line;                /**< private: the last line read */
    size_t cw__line_len;           /**< private */
} cw_bev_wait;

/**
 * Wait until the input buffer holds at least n bytes (n = 0 is read as
 * 1). The bytes stay in the buffer: read them with
 * evbuffer_remove(bufferevent_get_input(bev), ...).
 * @param w   the future (any previous content is overwritten: drop an
 *            armed one first).
 * @param bev the bufferevent (not owned).
 * @param n   bytes to wait for.
 * NULL w: no-op. A NULL bev makes the first poll complete with -EINVAL.
 */
CW_EXTERN void cw_bev_read_init(cw_bev_wait *w, struct bufferevent *bev, size_t n);

/**
 * Wait for a line: each completed wait removes one line from the input
 * buffer, as evbuffer_readln(input, &len, eol) would, and keeps it in the
 * future (cw_bev_line()), without its end-of-line. The copy is allocated
 * with clockworker's allocator (cw_set_allocator()), not libevent's.
 * @param w   the future (as for cw_bev_read_init()).
 * @param bev the bufferevent (not owned).
 * @param eol an enum evbuffer_eol_style (EVBUFFER_EOL_CRLF, _LF, ...).
 * @param max longest line accepted, in bytes: when more than max bytes
 *            are buffered with no end-of-line in them, the wait completes
 *            with -EMSGSIZE (the bytes stay in the buffer). 0: no limit.
 * NULL w: no-op.
 */
CW_EXTERN void cw_bev_readln_init(cw_bev_wait *w, struct bufferevent *bev,
                                  enum evbuffer_eol_style eol, size_t max);

/**
 * Wait until the output buffer holds at most mark bytes (0: all written
 * to the socket), for flow control: write, then await the drain before
 * writing more. Ready at once when it already holds that little.
 * NULL w: no-op.
 */
CW_EXTERN void cw_bev_drain_init(cw_bev_wait *w, struct bufferevent *bev, size_t mark);

/**
 * Wait for EOF, an error or a timeout (BEV_EVENT_CONNECTED is not one:
 * it is ignored). Result 0 for EOF, else the error (see the file
 * comment); cw_bev_events() has the flags. Reading is enabled while it
 * waits, so data that arrives meanwhile is read into the input buffer
 * (and left there). NULL w: no-op.
 */
CW_EXTERN void cw_bev_event_init(cw_bev_wait *w, struct bufferevent *bev);

/**
 * Poll the wait: ::CW_PENDING (the callbacks are armed and the task will
 * be woken) until the condition holds or an event ends the wait, then
 * ::CW_READY once with cw_bev_result() set and the callbacks restored.
 * Polling again after ::CW_READY starts a new wait of the same kind.
 * NULL w: ::CW_READY. NULL cx: ::CW_READY with -EINVAL.
 */
CW_EXTERN cw_poll cw_bev_poll(cw_bev_wait *w, cw_cx *cx);

/** How the last wait ended: 0, or a negative errno (file comment).
 *  -EAGAIN while none has completed; -EINVAL for NULL w. */
CW_EXTERN int cw_bev_result(const cw_bev_wait *w);

/** BEV_EVENT_* flags of the event that ended the last wait (0 if none
 *  did, or NULL w). */
CW_EXTERN short cw_bev_events(const cw_bev_wait *w);

/**
 * The line the last completed line wait read, NUL-terminated, without its
 * end-of-line; owned by the future, valid until its next poll or
 * cw_bev_drop() (which free it with clockworker's allocator; an init
 * does not: drop first). NULL if there is none (or NULL w). *len (if len
 * is not NULL) gets its length (0 with NULL).
 */
CW_EXTERN const char *cw_bev_line(const cw_bev_wait *w, size_t *len);

/**
 * Stop waiting: restore the bufferevent's callbacks and watermark if the
 * future is armed, release the waker and free the line. The future is
 * then dropped (a later poll completes with -EINVAL until re-initialised).
 * Safe on a zeroed, never-polled, completed or already dropped future.
 * NULL w: no-op. Executor thread; call it before bufferevent_free().
 */
CW_EXTERN void cw_bev_drop(cw_bev_wait *w);

/**
 * Set a bufferevent's callbacks, as bufferevent_setcb(), to run on a
 * queue: when libevent reports data (readcb), a drained output buffer
 * (writecb) or an event (eventcb), the callback runs when EEVDF picks q,
 * behind the work queued there before, with q charged for its time. The
 * callbacks and their arguments are libevent's own, so a daemon changes
 * one call (and frees the bufferevent with cw_bufferevent_free()):
 *
 * @code
 * // before: bufferevent_setcb(bev, conn_read, NULL, conn_event, conn);
 * cw_bufferevent_setcb(fg_queue, bev, conn_read, NULL, conn_event, conn);
 * bufferevent_enable(bev, EV_READ);
 * ...
 * static void conn_event(struct bufferevent *bev, short what, void *arg)
 * {
 *     if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
 *         cw_bufferevent_free(bev);    // not bufferevent_free(): see below
 * }
 * @endcode
 *
 * Activations: what libevent reports before the callbacks ran coalesces
 * into one activation, run in this order: eventcb for
 * BEV_EVENT_CONNECTED, readcb, writecb, then eventcb with the other
 * events (EOF, ERROR, TIMEOUT, OR'ed with their READING/WRITING flags);
 * each runs at most once per activation. Reports that arrive while they
 * run make one more activation, behind the work queued meanwhile. A
 * callback that frees the bufferevent (cw_bufferevent_free()), clears its
 * callbacks, or replaces them with plain bufferevent_setcb() ends the
 * activation: nothing more runs for it (callbacks changed with this
 * function run for the rest of it). Output a
 * callback queued (bufferevent_write()) makes the round end soon
 * (within 50 us), so that libevent writes it, as cw_http_reply() does:
 * no cw_cx_yield_to_loop() is needed.
 *
 * Lifetime: the binding (a small allocation, the bufferevent's cbarg)
 * lives until the callbacks are cleared (this function with all three
 * NULL) or the bufferevent is freed with cw_bufferevent_free(). Freeing
 * it with plain bufferevent_free(), or replacing the callbacks with plain
 * bufferevent_setcb(), leaks the binding (72 bytes and a hold on the
 * executor's shared part) unless an activation was waiting then (which
 * notices and frees it); the bufferevent itself is never used after its
 * free: a waiting activation holds a reference (bufferevent_incref()).
 * While a cw_bev_wait waits on the bufferevent, this function sets the
 * callbacks the future will restore. If the executor is freed,
 * activations waiting then are dropped, and from then on the callbacks
 * run at once, as libevent's own; cw_bufferevent_free() still works.
 * If an activation cannot be queued (out of memory), its callbacks run
 * at once.
 *
 * @param q      the queue the callbacks run on (of an executor on
 *               libevent); may be NULL when all three callbacks are.
 * @param bev    the bufferevent, on the executor's event_base.
 * @param readcb, writecb, eventcb  as for bufferevent_setcb(); NULL ones
 *               are not called (all NULL: plain bufferevent_setcb() with
 *               no callbacks, the binding freed).
 * @param cbarg  their argument.
 * @return 0; -EINVAL if bev is NULL or on another event_base; -ENOENT
 *         if q is NULL with a callback (no such queue); -ENOTSUP if q's executor runs on
 *         another loop than libevent; -EPERM if not on the executor
 *         thread; -ESHUTDOWN while the executor is being freed; -ENOMEM.
 *         On error the callbacks are as they were. Calling it again
 *         changes the callbacks, argument and queue in place (an
 *         activation already waiting stays on its queue).
 *
 * Executor thread; from any callback, the bufferevent's own included.
 */
CW_EXTERN int cw_bufferevent_setcb(cw_queue *q, struct bufferevent *bev,
                                   bufferevent_data_cb readcb, bufferevent_data_cb writecb,
                                   bufferevent_event_cb eventcb, void *cbarg);

/**
 * Free a bufferevent, as bufferevent_free(), and its binding if
 * cw_bufferevent_setcb() made one: an activation waiting runs nothing.
 * For any bufferevent (one never bound is just freed). From any
 * callback, the bufferevent's own included; also after the executor was
 * freed. NULL is a no-op. Executor thread (of the bound executor: from
 * another thread it writes one line to stderr and frees nothing).
 */
CW_EXTERN void cw_bufferevent_free(struct bufferevent *bev);

#ifdef __cplusplus
}
#endif
#endif
