/*
 * checked.c - the checked build's misuse checks (./configure
 * --enable-debug: CW_CHECKED), out of line: a handle whose reference was
 * given back (tasks.h, "handles"), and a poll that returns CW_PENDING
 * with no wake arranged. Nothing here is compiled into other builds.
 */
#include "config.h"

#include "internal.h"

#ifdef CW_CHECKED

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void cw__handle_check(const void *h, const cw__task *t, const char *call, bool join)
{
    unsigned g = atomic_load_explicit(&t->gen, memory_order_relaxed);
    if (g == 0)
        cw__misuse_abort(call, h, join ? "join handle already freed (freed twice, or used after "
                                         "cw_join_free())"
                                       : "waker already released (used after its task's last "
                                         "reference was given back)");
#ifdef CW__TAG_SHIFT
    if ((g & 0xffffu) != (uintptr_t)h >> CW__TAG_SHIFT)
        cw__misuse_abort(call, h, join ? "stale join handle: its task's block now holds another "
                                         "task (used after cw_join_free())"
                                       : "stale waker: its task's block now holds another task "
                                         "(used after its last reference was given back)");
#endif
}

/* The poll function's name into buf: its symbol when the dynamic linker
 * knows it exactly, else its address followed by where it lies
 * (cw__fn_name(): "object+0x<offset>", for addr2line). */
static const char *fn_name(cw_poll_fn fn, char *buf, size_t cap)
{
    char where[256];
    void *addr = (void *)(uintptr_t)fn;
    cw__fn_name(addr, where, sizeof where);
    if (strncmp(where, "0x", 2) == 0) /* nothing known of it */
        snprintf(buf, cap, "%p", addr);
    else if (strstr(where, "+0x")) /* not a symbol's start */
        snprintf(buf, cap, "%p (%s)", addr, where);
    else
        snprintf(buf, cap, "%s", where);
    return buf;
}

/*
 * After a poll that returned CW_PENDING, was not woken during it (no
 * CW__T_NOTIFIED) and not aborted: is a wake arranged? The only ways to
 * poll a task again are a wake through its waker and nothing else (an
 * abort ends it, it does not poll it), and a waker outlives the poll only
 * as a clone; every leaf future of the library (sleep, fd wait, join,
 * sync waiters, channels, bufferevent waits, the spawner's anchor) holds
 * its task through one. So with no clone outstanding, anywhere, on any
 * thread, and no remote wake on its way (the inbox bit: a clone given to
 * another thread and woken there during the poll), the task will never
 * be polled again: a certain hang unless it is meant to wait for
 * cw_join_abort() or cw_executor_free(). It is reported, not aborted, for
 * that case (such a task can hold a clone of its own waker to say so).
 *
 * The acquire load pairs with the release of a clone given back on
 * another thread (waker.c): reading 0, the inbox bit that thread's wake
 * set before is seen too.
 */
void cw__checked_pending(const cw_executor *ex, const cw__task *t)
{
    if (atomic_load_explicit(&t->wakers, memory_order_acquire) != 0)
        return;
    if (atomic_load_explicit(&t->refs, memory_order_acquire) & CW__REF_INBOX)
        return;
    char buf[512], line[1024];
    snprintf(line, sizeof line,
             "clockworker: poll %s (task %p, queue %u) returned CW_PENDING with no wake arranged "
             "(no waker clone held, not woken during the poll): it will not be polled again\n",
             fn_name(t->poll, buf, sizeof buf), cw__handle_of(t), cw__task_queue(ex, t)->id);
    fputs(line, stderr);
    fflush(stderr);
}

#else
typedef int cw__checked_unused; /* (an empty file is not ISO C) */
#endif
