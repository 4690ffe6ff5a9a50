/**
 * @file clockworker/waker.h
 * @brief Wakers: reference-counted handles that re-enqueue a task.
 *
 * A task gets its waker, borrowed, from cw_cx_waker(); to keep it past the
 * poll it takes its own reference with cw_waker_clone(). Waking enqueues
 * the task at the tail of its queue:
 * - waking twice (or more) before the next poll enqueues it once;
 * - waking a task while it is being polled makes it run again after that
 *   poll returns ::CW_PENDING;
 * - waking a finished or cancelled task does nothing.
 *
 * Threads: every function here may be called from ANY thread. A wake from
 * another thread goes through a lock-free inbox and, only when the executor
 * may be asleep, one write to its notification fd; the executor looks at
 * the inbox at every scheduling decision, so such a wake can preempt a
 * running slice at the next poll. A waker stays valid (as a no-op) after
 * its executor is freed, until the last reference is freed.
 *
 * Cost: clone and free are one atomic increment/decrement; a wake on the
 * executor thread is a few instructions and no allocation.
 *
 * Debug build. With ./configure --enable-debug (the checked build) every
 * function here but cw_waker_will_wake() checks its waker, and a misuse
 * writes one line naming the call and the waker to stderr, then aborts:
 *
 *     clockworker: cw_waker_free(0x...): waker already released (...)
 *
 * Caught: a cw_waker_free() or cw_waker_wake() beyond the clones taken of
 * that task (a clone freed twice, woken then freed, or the borrowed
 * waker of cw_cx_waker() freed); any use of a waker whose task has ended
 * and whose last reference is gone ("waker already released"); any use
 * of a waker whose task's memory now holds a new task ("stale waker": a
 * waker in that build carries a generation, and cw_waker_will_wake()
 * tells it from the new task's). Not caught: a clone freed twice while
 * another clone of the same task is still held (the count cannot tell
 * whose reference went: the call that gives back the last one aborts,
 * later than the mistake); a freed waker used while its task lives (the
 * task's memory is still referenced; the wake works); a waker kept across
 * 65,536 reuses of its task's memory (the generation wraps); a waker
 * whose memory was returned to the allocator (a state over ~1 KiB, or an
 * emptied slab: the check then reads freed memory, which ASan and
 * valgrind report). The generation lives in the pointer's top 16 bits on
 * x86-64 and arm64 (a waker is opaque: never dereference it); elsewhere
 * only "already released" is caught. Other builds check nothing here.
 */
#ifndef CLOCKWORKER_WAKER_H
#define CLOCKWORKER_WAKER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The waker of the task being polled, borrowed: valid for the duration of
 * this poll only; clone it to keep it. NULL if cx is NULL.
 */
CW_EXTERN cw_waker *cw_cx_waker(cw_cx *cx);

/**
 * A new reference to the same task (no allocation). The caller owns it and
 * releases it with cw_waker_wake() or cw_waker_free(). Returns NULL if w is
 * NULL. Any thread.
 */
CW_EXTERN cw_waker *cw_waker_clone(const cw_waker *w);

/** Wake the task and release this reference (wake then free). NULL is a
 *  no-op. Any thread. */
CW_EXTERN void cw_waker_wake(cw_waker *w);

/** Wake the task, keeping the reference. NULL is a no-op. Any thread. */
CW_EXTERN void cw_waker_wake_by_ref(const cw_waker *w);

/** Release a reference without waking. NULL is a no-op. Any thread. */
CW_EXTERN void cw_waker_free(cw_waker *w);

/** Whether a and b wake the same task (so a stored waker need not be
 *  replaced by a fresh clone); false if either is NULL. Any thread. */
CW_EXTERN bool cw_waker_will_wake(const cw_waker *a, const cw_waker *b);

#ifdef __cplusplus
}
#endif
#endif
