/**
 * @file clockworker/pt.h
 * @brief Protothread macros: poll functions that read top to bottom.
 *
 * A task's poll function is called again and again until it returns
 * ::CW_READY; each call must pick up where the last one stopped. Written by
 * hand that is a state machine: an enum in the state struct and a switch at
 * the top of the poll function. Protothreads (after Adam Dunkels' Contiki
 * `pt.h`) let you write the same poll function as straight-line code:
 *
 *     CW_BEGIN(&st->pt);
 *     CW_AWAIT(&st->pt, cw_join_poll(st->child, cx));  // wait for a task
 *     CW_YIELD(&st->pt, cx);                           // let others run
 *     CW_END(&st->pt);
 *
 * A ::cw_pt in the state struct remembers the point where the last poll
 * returned ::CW_PENDING; CW_BEGIN() jumps straight there. There is no stack
 * and no thread behind it: a protothread costs one word of state, and a
 * resumption is one indirect jump (or one switch). Use it for tasks that
 * are a sequence of waits (read, then sleep, then write); keep hand-written
 * state machines for tasks whose states form a graph.
 *
 * IMPORTANT: LOCAL VARIABLES DO NOT SURVIVE CW_AWAIT() OR CW_YIELD()
 * (nor CW_YIELD_MAYBE()). Each suspension returns from the poll function,
 * so its locals are gone when the next poll jumps back in (and the jump
 * skips their initialisers). Keep everything that must live across a
 * suspension -- loop counters, buffers, positions, leaf futures -- in the
 * state struct. A local is fine only between two suspensions (set and
 * used with no await in between).
 *
 * IMPORTANT: NO `switch` AROUND AN AWAIT, AND AT MOST ONE AWAIT PER LINE.
 * The portable form of these macros (below) is itself a `switch` over the
 * line numbers of the suspension points: each CW_AWAIT()/CW_YIELD() plants
 * a `case __LINE__:` label (CW_YIELD_MAYBE() too). A `switch` of your own around one steals that
 * label, and the task silently resumes in the wrong place; two suspension
 * points on one line give two equal case labels. The computed-goto form
 * (the default with GCC and Clang) tolerates a `switch`, but it names its
 * labels after `__LINE__` too, so one suspension point per line holds in
 * both forms (two on a line is a compile error, not a silent bug). Put a
 * `switch` in a helper function, or use if/else, and write each
 * CW_AWAIT(), CW_YIELD() and CW_YIELD_MAYBE() on its own line (a macro of
 * your own that expands to two of them counts as one line).
 *
 * Further rules:
 * - One CW_BEGIN() ... CW_END() pair per poll function, enclosing every
 *   other macro here; code before CW_BEGIN() runs on every poll (counting
 *   polls there is fine), nothing may follow CW_END().
 * - Leave the body through CW_RETURN() or CW_END(), not `return`: a plain
 *   `return CW_READY` would leave the continuation where it was, so a later
 *   poll would resume mid-body instead of returning ::CW_READY again.
 * - The macro arguments `pt` and `cx` are evaluated more than once; pass a
 *   plain pointer such as `&st->pt` and the poll's `cx`.
 * - A zeroed ::cw_pt is at the start: a state struct initialised with
 *   `{0}` or designated initialisers needs nothing more. cw_pt_init()
 *   rewinds one to the start.
 * - Protothreads compose like any future: a function written with these
 *   macros over its own ::cw_pt can be awaited,
 *   `CW_AWAIT(&st->pt, sub_poll(&st->sub, cx))`; rewind st->sub.pt with
 *   cw_pt_init() before running the sub-protothread again.
 *
 * Two implementations, same rules:
 * - computed goto (`goto *p` over `&&label`, a GNU C extension), chosen
 *   when the compiler defines `__GNUC__` (GCC, Clang): the continuation is
 *   the address of the label at the last suspension point. A `switch`
 *   around an await works here, but code that relies on it does not port.
 *   It triggers only -Wpedantic warnings (label addresses are GNU C).
 * - switch over `__LINE__` (Duff's device, Contiki's `lc-switch.h`),
 *   standard C, used with other compilers or when `CW_PT_USE_SWITCH` is
 *   defined (empty, or as 0 or 1: any definition counts, as with `#ifdef`).
 *   The continuation is the line number of the last suspension point.
 * The choice is made where the macros expand, not where this header is
 * included: define `CW_PT_USE_SWITCH` on the command line, or before any
 * poll function that uses these macros (never between the CW_BEGIN() and
 * CW_END() of one function).
 *
 * Example: a task that reads lines from a non-blocking socket, handles each
 * one, and pauses 10 ms after each (cw_fdwait and cw_sleep are the leaf
 * futures of io.h and time.h):
 *
 * @code
 * struct reader {
 *     cw_pt pt;              // the continuation; {0} = start
 *     evutil_socket_t fd;    // input
 *     cw_fdwait readable;    // leaf futures live in the state...
 *     cw_sleep pause;
 *     char buf[512];         // ...and so does every byte read so far
 *     size_t len;
 *     unsigned long lines;   // output
 *     int err;               // output: 0 at EOF, else a negative errno
 * };
 *
 * static cw_poll reader_poll(void *arg, cw_cx *cx)
 * {
 *     struct reader *r = arg;
 *     char *nl;              // a local: set and used between two awaits
 *     ssize_t n;
 *
 *     CW_BEGIN(&r->pt);
 *     for (;;) {
 *         while (!(nl = memchr(r->buf, '\n', r->len))) {
 *             if (r->len == sizeof r->buf) {
 *                 r->err = -EMSGSIZE;
 *                 CW_RETURN(&r->pt);
 *             }
 *             cw_fdwait_init(&r->readable, r->fd, CW_FD_READ);
 *             CW_AWAIT(&r->pt, cw_fdwait_poll(&r->readable, cx));
 *             cw_fdwait_drop(&r->readable);
 *             n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
 *             if (n == 0)
 *                 CW_RETURN(&r->pt);                 // EOF: done
 *             if (n < 0 && errno != EAGAIN && errno != EINTR) {
 *                 r->err = -errno;
 *                 CW_RETURN(&r->pt);
 *             }
 *             if (n > 0)
 *                 r->len += (size_t)n;
 *         }
 *         handle_line(r->buf, (size_t)(nl - r->buf));  // nl is still valid
 *         r->lines++;
 *         r->len -= (size_t)(nl + 1 - r->buf);
 *         memmove(r->buf, nl + 1, r->len);
 *
 *         cw_sleep_init(&r->pause, 10 * 1000000);    // 10 ms
 *         CW_AWAIT(&r->pt, cw_sleep_poll(&r->pause, cx));
 *         cw_sleep_drop(&r->pause);
 *     }
 *     CW_END(&r->pt);
 * }
 *
 * // Cancelled while waiting: drop the armed future (dropping one that is
 * // zeroed or already dropped does nothing).
 * static void reader_drop(void *arg)
 * {
 *     struct reader *r = arg;
 *     cw_fdwait_drop(&r->readable);
 *     cw_sleep_drop(&r->pause);
 * }
 *
 * struct reader init = {.fd = fd};
 * cw_spawn(q, reader_poll, &init, sizeof init, reader_drop, &join);
 * @endcode
 *
 * Note how `nl` may stay a local: it is computed in the loop condition and
 * used before the next await, while `buf`, `len` and the futures, which
 * must outlive an await, are in the struct. The same task written with a
 * `switch (r->state)` would need one state per await and the loops spelled
 * out as jumps between them.
 *
 * Threads: these macros run inside a poll, on the executor thread.
 */
#ifndef CLOCKWORKER_PT_H
#define CLOCKWORKER_PT_H

#include "common.h"
#include "task.h"
#include "waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A protothread's continuation: where the next poll resumes.
 *
 * Embed one in the task's state struct and pass its address to the macros.
 * Zero (`{0}`, or cw_pt_init()) means "at the start". The layout is public
 * so that it can be embedded; the field is private: a label address in the
 * computed-goto form, a line number in the switch form.
 */
typedef struct cw_pt {
    uintptr_t cw__lc; /**< private: the resumption point, 0 = start */
} cw_pt;

/**
 * Rewind a protothread to its start, so the next poll runs its body from
 * CW_BEGIN() again (to re-run a finished sub-protothread, say). NULL is a
 * no-op. Equivalent to zeroing the struct.
 * @param pt the continuation.
 * @sa CW_BEGIN
 */
static inline void cw_pt_init(cw_pt *pt)
{
    if (pt)
        pt->cw__lc = 0;
}

/* ---- macros ------------------------------------------------------------------ */

/**
 * Open a protothread's body; resume where the last poll stopped.
 *
 * The first statement of the body, after any code that must run on every
 * poll. On the first poll (a zeroed @p pt) execution continues below it; on
 * later polls it jumps back into the CW_AWAIT() that returned ::CW_PENDING
 * (which polls its future again), or to just after the CW_YIELD() or
 * CW_YIELD_MAYBE() that did; once the body has ended (CW_RETURN(),
 * CW_END()) it returns ::CW_READY at once. Opens a block that
 * CW_END() closes, so a missing CW_END() does not compile.
 *
 * @param pt pointer to the ::cw_pt in the task's state (evaluated more
 *           than once).
 * @sa CW_END, cw_pt_init
 */
#define CW_BEGIN(pt) CW__PT_OP(BEGIN)(pt)

/**
 * Wait for a future: re-evaluate @p expr on each poll until it is
 * ::CW_READY.
 *
 * @p expr is a call returning ::cw_poll, such as
 * `cw_join_poll(st->child, cx)`, `cw_sleep_poll(&st->nap, cx)` or a
 * sub-protothread's poll function. While it gives ::CW_PENDING the macro
 * returns ::CW_PENDING from the poll function (the future has arranged the
 * wake-up) and the next poll evaluates @p expr again, right here; when it
 * gives ::CW_READY execution continues with the next statement, in the
 * same poll. Locals do not survive it; at most one suspension point per
 * line, and (in the switch form) no `switch` around it: see the file
 * comment.
 *
 * @param pt   pointer to the ::cw_pt in the task's state.
 * @param expr an expression of type ::cw_poll, evaluated once per poll
 *             that reaches or resumes here.
 * @sa CW_YIELD, cw_join_poll, cw_yield_poll
 */
#define CW_AWAIT(pt, expr) CW__PT_OP(AWAIT)(pt, expr)

/**
 * Let the other tasks run: wake self, return ::CW_PENDING once, and
 * continue after this line on the next poll.
 *
 * The task goes to the tail of its queue (cw_waker_wake_by_ref() on its own
 * waker), so the queue's other tasks run before it, and the scheduler may
 * end the slice or the round here. Unconditional; in a CPU-bound loop,
 * CW_YIELD_MAYBE() yields only when there is a reason to. Locals do not
 * survive it.
 *
 * @param pt pointer to the ::cw_pt in the task's state.
 * @param cx the poll's context.
 * @sa CW_YIELD_MAYBE, cw_yield_poll
 */
#define CW_YIELD(pt, cx) CW__PT_OP(YIELD)(pt, cx)

/**
 * Yield as CW_YIELD() does, but only when cw_should_yield() says so.
 *
 * For CPU-bound loops: call it between chunks of work. It costs one clock
 * read when it does not yield; it yields when the queue's slice or the
 * round's budget (driver_yield, or an idle queue's latency target) would
 * be spent by one more chunk as long as the last one or a more deserving queue woke, so a long computation neither
 * starves the other queues beyond its slice nor keeps libevent from
 * polling I/O for longer than that budget. Locals do not survive it.
 *
 * @param pt pointer to the ::cw_pt in the task's state.
 * @param cx the poll's context.
 * @sa CW_YIELD, cw_should_yield
 */
#define CW_YIELD_MAYBE(pt, cx) CW__PT_OP(YIELD_MAYBE)(pt, cx)

/**
 * End the task now: return ::CW_READY.
 *
 * Like falling through CW_END() from anywhere in the body: the task
 * completes (its join status is 0 and its output is what it left in the
 * state), and any later poll of this protothread returns ::CW_READY without
 * running the body again.
 *
 * @param pt pointer to the ::cw_pt in the task's state.
 * @sa CW_END
 */
#define CW_RETURN(pt) CW__PT_OP(RETURN)(pt)

/**
 * Close a protothread's body: reaching it returns ::CW_READY.
 *
 * The last statement of the poll function. It closes the block CW_BEGIN()
 * opened and ends with `return CW_READY`, so the function needs no return
 * of its own. Later polls return ::CW_READY without running the body.
 *
 * @param pt pointer to the ::cw_pt in the task's state.
 * @sa CW_BEGIN, CW_RETURN
 */
#define CW_END(pt) CW__PT_OP(END)(pt)

/* ---- implementation (private) ------------------------------------------------ */

/* Paste after expanding both sides (so CW__CONCAT(x, __LINE__) is x123).
 * Unguarded on purpose: an identical definition elsewhere is allowed, a
 * different one is diagnosed. */
#define CW__CONCAT_(a, b) a##b
#define CW__CONCAT(a, b) CW__CONCAT_(a, b)

/* The form is picked where a macro expands. CW__PT_FORM pastes
 * CW__PT_SEL_ <CW_PT_USE_SWITCH> _form: an undefined CW_PT_USE_SWITCH stays
 * its own name (CW__PT_SEL_CW_PT_USE_SWITCH_form: goto, given GNU C), a
 * defined one gives CW__PT_SEL__form, CW__PT_SEL_1_form or
 * CW__PT_SEL_0_form (switch). CW__PT_OP(BEGIN) then names
 * CW__PT_GOTO_BEGIN or CW__PT_SWITCH_BEGIN. */
#define CW__PT_CAT3_(a, b, c) a##b##c
#define CW__PT_CAT3(a, b, c) CW__PT_CAT3_(a, b, c)
#if defined(__GNUC__)
#define CW__PT_SEL_CW_PT_USE_SWITCH_form CW__PT_GOTO
#else
#define CW__PT_SEL_CW_PT_USE_SWITCH_form CW__PT_SWITCH
#endif
#define CW__PT_SEL__form CW__PT_SWITCH
#define CW__PT_SEL_0_form CW__PT_SWITCH
#define CW__PT_SEL_1_form CW__PT_SWITCH
#define CW__PT_FORM CW__PT_CAT3(CW__PT_SEL_, CW_PT_USE_SWITCH, _form)
#define CW__PT_OP(op) CW__CONCAT(CW__PT_FORM, _##op)

/* The label or case of the suspension point on this line. */
#define CW__PT_LABEL CW__CONCAT(cw__pt_resume_, __LINE__)

/* A statement that falls into a case label says so (-Wimplicit-fallthrough). */
#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define CW__PT_FALLTHROUGH __attribute__((fallthrough))
#endif
#endif
#ifndef CW__PT_FALLTHROUGH
#define CW__PT_FALLTHROUGH ((void)0)
#endif

/* -- computed goto: cw__lc is a label address; the end is the label
 *    cw__pt_done, defined once per function by CW_END. -- */
#define CW__PT_GOTO_BEGIN(pt)                                                  \
    {                                                                          \
        if ((pt)->cw__lc)                                                      \
            goto *(void *)(pt)->cw__lc

#define CW__PT_GOTO_AWAIT(pt, expr)                                            \
    do {                                                                       \
        (pt)->cw__lc = (uintptr_t)&&CW__PT_LABEL;                              \
    CW__PT_LABEL:                                                              \
        if ((expr) != CW_READY)                                                \
            return CW_PENDING;                                                 \
    } while (0)

#define CW__PT_GOTO_YIELD(pt, cx)                                              \
    do {                                                                       \
        (pt)->cw__lc = (uintptr_t)&&CW__PT_LABEL;                              \
        cw_waker_wake_by_ref(cw_cx_waker(cx));                                 \
        return CW_PENDING;                                                     \
    CW__PT_LABEL:;                                                             \
    } while (0)

#define CW__PT_GOTO_YIELD_MAYBE(pt, cx)                                        \
    do {                                                                       \
        if (cw_should_yield(cx)) {                                             \
            (pt)->cw__lc = (uintptr_t)&&CW__PT_LABEL;                          \
            cw_waker_wake_by_ref(cw_cx_waker(cx));                             \
            return CW_PENDING;                                                 \
        CW__PT_LABEL:;                                                         \
        }                                                                      \
    } while (0)

#define CW__PT_GOTO_RETURN(pt)                                                 \
    do {                                                                       \
        (pt)->cw__lc = (uintptr_t)&&cw__pt_done;                               \
        return CW_READY;                                                       \
    } while (0)

#define CW__PT_GOTO_END(pt)                                                    \
    }                                                                          \
    (pt)->cw__lc = (uintptr_t)&&cw__pt_done;                                   \
    cw__pt_done:                                                               \
    return CW_READY

/* -- switch over __LINE__: cw__lc is the line of the suspension point; the
 *    end is a value no case matches: `default` leaves the switch and
 *    CW_END's tail returns READY. -- */
#define CW__PT_SWITCH_DONE ((uintptr_t)-1)

#define CW__PT_SWITCH_BEGIN(pt)                                                \
    {                                                                          \
        switch ((pt)->cw__lc) {                                                \
        default: /* the end (CW__PT_SWITCH_DONE) */                            \
            break;                                                             \
        case 0:

#define CW__PT_SWITCH_AWAIT(pt, expr)                                          \
    do {                                                                       \
        (pt)->cw__lc = __LINE__;                                               \
        CW__PT_FALLTHROUGH;                                                    \
    case __LINE__:                                                             \
        if ((expr) != CW_READY)                                                \
            return CW_PENDING;                                                 \
    } while (0)

#define CW__PT_SWITCH_YIELD(pt, cx)                                            \
    do {                                                                       \
        (pt)->cw__lc = __LINE__;                                               \
        cw_waker_wake_by_ref(cw_cx_waker(cx));                                 \
        return CW_PENDING;                                                     \
    case __LINE__:;                                                            \
    } while (0)

#define CW__PT_SWITCH_YIELD_MAYBE(pt, cx)                                      \
    do {                                                                       \
        if (cw_should_yield(cx)) {                                             \
            (pt)->cw__lc = __LINE__;                                           \
            cw_waker_wake_by_ref(cw_cx_waker(cx));                             \
            return CW_PENDING;                                                 \
        case __LINE__:;                                                        \
        }                                                                      \
    } while (0)

#define CW__PT_SWITCH_RETURN(pt)                                               \
    do {                                                                       \
        (pt)->cw__lc = CW__PT_SWITCH_DONE;                                     \
        return CW_READY;                                                       \
    } while (0)

#define CW__PT_SWITCH_END(pt)                                                  \
    }                                                                          \
    }                                                                          \
    (pt)->cw__lc = CW__PT_SWITCH_DONE;                                         \
    return CW_READY

/* ---- cw_yield: a leaf future --------------------------------------------------- */

/**
 * A future that yields once: its first poll wakes the task and returns
 * ::CW_PENDING, every later poll returns ::CW_READY. The await form of
 * CW_YIELD(), for poll functions written without the protothread macros or
 * as one step of a composed future.
 *
 * Public so that it can be embedded in a state struct; the field is
 * private. Zeroed (or cw_yield_init()) = not yet yielded. It owns nothing:
 * there is no drop function.
 */
typedef struct cw_yield {
    bool cw__yielded; /**< private: the first poll has happened */
} cw_yield;

/**
 * Arm (or re-arm) a yield: its next poll will yield. NULL is a no-op.
 * Executor thread, or any thread before the struct is shared.
 * @param y the future.
 * @sa cw_yield_poll
 */
CW_EXTERN void cw_yield_init(cw_yield *y);

/**
 * Poll a yield: the first poll after cw_yield_init() wakes the polling task
 * (cw_waker_wake_by_ref(), so it goes to the tail of its queue) and returns
 * ::CW_PENDING; later polls return ::CW_READY until it is re-armed.
 *
 * A NULL @p y or @p cx, or a @p cx outside a poll (no task to wake), gives
 * ::CW_READY at once, so a task never waits for a wake nobody arranged.
 * Executor thread only, from inside a poll.
 *
 * @param y  the future.
 * @param cx the poll's context.
 * @return ::CW_PENDING once, then ::CW_READY.
 * @sa CW_YIELD, CW_AWAIT
 */
CW_EXTERN cw_poll cw_yield_poll(cw_yield *y, cw_cx *cx);

#ifdef __cplusplus
}
#endif
#endif
