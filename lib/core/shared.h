/*
 * shared.h - the part of an executor other threads may touch: the remote inbox,
 * the notification fd, remotely freed blocks; and which thread is the
 * executor's. Not installed.
 */
#ifndef CW_CORE_SHARED_H
#define CW_CORE_SHARED_H

#include <stdatomic.h>

#include "util.h"

/* ---- the part of an executor that other threads may touch -------------- */
typedef struct cw__task cw__task;

/* The inbox is closed (the executor is gone) when it holds this. */
#define CW__INBOX_CLOSED ((cw__task *)1)

typedef struct cw__shared {
    atomic_size_t refs;       /* the executor; once it is gone, one per
                                 slab with blocks not yet freed; and one
                                 per holder (cw__shared_hold()) */
    _Atomic(cw__task *) inbox; /* Treiber stack of remotely woken tasks */
    atomic_int sleeping;      /* 1: no round pending; a remote wake signals */
    int notify_rfd, notify_wfd; /* eventfd (same fd twice) or a pipe */
    const char *thread;       /* the executor thread's &cw__thread_token */
    cw_executor *ex;          /* executor thread only; NULL once freed */
    _Atomic(cw__task *) rfree; /* blocks freed on other threads (Treiber
                                 stack); CW__INBOX_CLOSED once the executor
                                 is gone (then a block goes to its slab's
                                 live count) */
    cw__list slabs;           /* every slab (cw__slab.all); executor thread */
} cw__shared;

void cw__shared_release(cw__shared *sh, size_t n);
/* One more holder, released with cw__shared_release(sh, 1): for an object
 * that may outlive its executor and must tell that it is gone (ex NULL),
 * such as a cw_event (lib/libevent). Executor thread. */
static inline void cw__shared_hold(cw__shared *sh)
{
    atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
}
int cw__notify_open(cw__shared *sh);
void cw__notify_signal(cw__shared *sh);
void cw__notify_drain(cw__shared *sh);
/* Push a block on the inbox and signal the executor if it sleeps (the
 * protocol in waker.c); false once the inbox is closed. Any thread. */
bool cw__inbox_push(cw__shared *sh, cw__task *t);

/* One byte per thread whose address names the thread: comparing it is
 * cheaper than pthread_self() + pthread_equal() on every wake (a TLS
 * address in the initial-exec model is one load from the thread pointer). */
extern _Thread_local char cw__thread_token __attribute__((tls_model("initial-exec")));

static inline bool cw__on_thread(const cw__shared *sh)
{
    return sh->thread == &cw__thread_token;
}

#endif
