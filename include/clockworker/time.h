/**
 * @file clockworker/time.h
 * @brief cw_sleep: a timer on the executor's clock, as a leaf future that
 *        a task embeds in its state and polls from its poll function.
 *
 * Deadlines are nanoseconds of the executor's clock (cw_executor_now():
 * CLOCK_MONOTONIC, or the clock injected with cw_config_set_clock()). The
 * executor keeps every pending sleep in one min-heap ordered by deadline
 * and arms a single libevent timer at the earliest one; it wakes the tasks
 * whose deadlines have passed when that timer fires, at the start of
 * every scheduling round, and before a task is spawned or woken from
 * outside a round (so a sleep that came due queues ahead of work that
 * became runnable after it, as libevent runs expired timers before the
 * callbacks a pass activates), and when a running task calls
 * cw_should_yield(); in deadline order, and sleeps with equal
 * deadlines in the order they were first polled PENDING. A woken task
 * runs when its queue's turn comes: the deadline is a lower bound of when
 * the task runs again, not a promise of when.
 *
 * @code
 * typedef struct backoff {
 *     cw_sleep sleep;
 *     ...
 * } backoff;
 *
 * static cw_poll backoff_poll(void *state, cw_cx *cx)
 * {
 *     backoff *b = state;
 *     if (cw_sleep_poll(&b->sleep, cx) == CW_PENDING)
 *         return CW_PENDING;          // woken when the deadline passes
 *     ...
 * }
 *
 * static void backoff_drop(void *state)
 * {
 *     cw_sleep_drop(&((backoff *)state)->sleep);   // required, see below
 * }
 *
 * backoff b = {0};
 * cw_sleep_init(&b.sleep, 5 * 1000000);   // 5 ms from the first poll
 * cw_spawn(q, backoff_poll, &b, sizeof b, backoff_drop, NULL);
 * @endcode
 *
 * The drop rule: a sleep that was polled PENDING sits in the executor's
 * heap until its deadline passes. The task's drop function (the
 * ::cw_drop_fn given to cw_spawn()) must call cw_sleep_drop() on every
 * cw_sleep embedded in the state, so that a task aborted
 * (cw_join_abort()), panicking or cancelled by cw_executor_free() while
 * it sleeps leaves the heap before its state goes away. cw_sleep_drop()
 * on a sleep that is not in the heap costs a test, so calling it
 * unconditionally is fine. (A sleep that stays in the heap keeps its task
 * block alive through the waker it holds, until it fires or the executor
 * is freed, so a forgotten drop delays the task block's release; a sleep
 * that lives outside the task's state must be dropped before that memory
 * is freed.)
 *
 * A task that returns ::CW_READY while one of its sleeps is still pending
 * (a timeout that lost the race) should drop that sleep first: with a
 * join handle held, the drop function runs only when the handle is freed,
 * and until then the sleep stays in the heap (its wake is a harmless
 * no-op) and keeps the executor's timer in the base, so
 * event_base_dispatch() does not return before its deadline.
 *
 * Resolution: the executor's clock decides when a sleep is due, but the
 * wait in between is libevent's timer. On a default base with the epoll
 * backend that timer has millisecond granularity and reads a coarse clock
 * (measured here: a 100 us sleep took ~4 ms); create the base with
 * EVENT_BASE_FLAG_PRECISE_TIMER (event_config_set_flag()) for sub-
 * millisecond sleeps (the same 100 us sleep: ~125 us). Either way a sleep
 * never completes before its deadline on the executor's clock.
 *
 * Threads: every function here is executor-thread only (the thread of the
 * executor whose task polls the sleep).
 *
 * Cost: the first PENDING poll inserts into the heap, O(log n) for n
 * pending sleeps (amortised: the heap array doubles when full); a repeat
 * PENDING poll is O(1); cw_sleep_drop() of a pending sleep is O(log n);
 * firing is O(log n) per expired sleep. No allocation except the heap's
 * growth.
 */
#ifndef CLOCKWORKER_TIME_H
#define CLOCKWORKER_TIME_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A timer. The layout is public only so that it can be embedded in a
 * task's state (no allocation); every field is private to the library:
 * read or write none of them, and initialise the struct only with
 * cw_sleep_init() or cw_sleep_init_until(). Do not copy a sleep that was
 * polled PENDING and not dropped (the heap points at it): spawn copies the
 * state before the first poll, which is fine.
 */
typedef struct cw_sleep {
    uint64_t cw__when;      /**< private: delay (relative) or deadline */
    uint64_t cw__seq;       /**< private: registration order (ties) */
    cw_executor *cw__ex;    /**< private: executor whose heap holds it */
    cw_waker *cw__waker;    /**< private: the sleeping task's waker */
    uint32_t cw__index;     /**< private: its slot in that heap */
    uint8_t cw__state;      /**< private: relative, deadline, done */
} cw_sleep;

/**
 * Initialise a sleep of ns nanoseconds counted from its first poll (the
 * deadline is the executor's clock at that poll plus ns, saturating, so
 * UINT64_MAX sleeps until dropped). 0 is ready at the first poll. Takes
 * no resource; a sleep that was never polled needs no cw_sleep_drop()
 * (calling it is harmless).
 *
 * Re-initialising reuses the struct for a new sleep: allowed when the
 * sleep is not in a heap (never polled, ready, or dropped); a sleep that
 * is pending must be dropped first. NULL s is a no-op.
 */
CW_EXTERN void cw_sleep_init(cw_sleep *s, uint64_t ns);

/**
 * Initialise a sleep until an absolute deadline of the executor's clock
 * (compare cw_executor_now()): ready at the first poll at which the
 * clock reads deadline_ns or later; a deadline already past is ready at
 * once. Same rules as cw_sleep_init() otherwise. NULL s is a no-op.
 */
CW_EXTERN void cw_sleep_init_until(cw_sleep *s, uint64_t deadline_ns);

/**
 * Poll the sleep from the poll function of the task that waits on it.
 *
 * @return ::CW_READY once the executor's clock has reached the deadline
 *         (and from then on, until re-initialised; also after
 *         cw_sleep_drop()). Else ::CW_PENDING: the sleep holds a clone of
 *         the task's waker (the first PENDING poll inserts it into the
 *         executor's heap; later polls keep it there, replacing the waker
 *         if another task polls it) and the task is woken once the
 *         deadline has passed. Its deadline never moves.
 *
 * NULL s or cx, or a cx outside a poll, give ::CW_READY, so a task never
 * hangs on a bad argument.
 *
 * Out of memory: the first PENDING poll may need to grow the heap; if
 * that allocation fails the sleep is not inserted, the task is woken at
 * once (cw_waker_wake_by_ref()) and ::CW_PENDING is returned, so the task
 * is polled again soon and the sleep retries with the same deadline:
 * the wake-up is never lost, at the price of polling while memory is
 * short.
 */
CW_EXTERN cw_poll cw_sleep_poll(cw_sleep *s, cw_cx *cx);

/**
 * Take the sleep out of its executor's heap now (O(log n)) and release
 * the waker it holds, without waking the task; nothing fires for it
 * afterwards. The sleep is then finished: cw_sleep_poll() returns
 * ::CW_READY until it is re-initialised. Call it from the task's drop
 * function (see the file comment) or whenever the task stops waiting
 * (a timeout that lost a race). Safe to call twice, on a sleep never
 * polled, on one already ready, and on one whose executor was freed.
 * NULL is a no-op.
 */
CW_EXTERN void cw_sleep_drop(cw_sleep *s);

#ifdef __cplusplus
}
#endif
#endif
