/*
 * waker.c - wakers, the remote inbox and the notification fd.
 *
 * A cw_waker * is the task block itself (tagged with the block's
 * generation in the checked build: tasks.h, "handles"); a clone is a
 * reference on it.
 *
 * On the executor thread a wake only touches the task's (plain) flags and
 * its queue. From another thread a wake pushes the task onto the shared
 * inbox, a Treiber stack (lock-free multi-producer; the executor takes the
 * whole stack with one exchange and reverses it, so remote wakes keep
 * their order). The CW__REF_INBOX bit of the task's refs keeps it in the stack at
 * most once (no allocation: the link is in the block), and the push holds
 * a reference so the block outlives its stay there.
 *
 * Sleeping protocol (no lost wake, no syscall while busy):
 *   executor going idle: sleeping = 1; then look at the inbox
 *   remote waker:        push; then if sleeping, exchange it to 0 and
 *                        write the notification fd
 * Both use sequentially consistent operations, so at least one side sees
 * the other's write (Dekker).
 */
#include "config.h"

#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include "internal.h"

/* ---- the shared part and its fd ----------------------------------------- */

int cw__notify_open(cw__shared *sh)
{
#ifdef HAVE_SYS_EVENTFD_H
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    sh->notify_rfd = sh->notify_wfd = fd;
#else
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    sh->notify_rfd = fds[0];
    sh->notify_wfd = fds[1];
#endif
    return 0;
}

void cw__notify_signal(cw__shared *sh)
{
    uint64_t one = 1;
    ssize_t r;
#ifdef HAVE_SYS_EVENTFD_H
    r = write(sh->notify_wfd, &one, sizeof one);
#else
    r = write(sh->notify_wfd, &one, 1);
#endif
    (void)r; /* EAGAIN: a signal is already pending, which is all we need */
}

void cw__notify_drain(cw__shared *sh)
{
    uint64_t buf[8];
    while (read(sh->notify_rfd, buf, sizeof buf) > 0)
        ;
}

void cw__shared_release(cw__shared *sh, size_t n)
{
    if (atomic_fetch_sub_explicit(&sh->refs, n, memory_order_acq_rel) != n)
        return;
    assert(!sh->ex && cw__list_empty(&sh->slabs));
    if (sh->notify_rfd >= 0)
        close(sh->notify_rfd);
    if (sh->notify_wfd >= 0 && sh->notify_wfd != sh->notify_rfd)
        close(sh->notify_wfd);
    cw__free(sh);
    cw__alloc_unhold();
}

/* ---- the inbox ---------------------------------------------------------- */

bool cw__inbox_push(cw__shared *sh, cw__task *t)
{
    if (!cw__stack_push(&sh->inbox, t))
        return false;
    if (atomic_load(&sh->sleeping) && atomic_exchange(&sh->sleeping, 0))
        cw__notify_signal(sh);
    return true;
}

static void wake_remote(cw__task *t)
{
    cw__shared *sh = cw__task_shared(t);

    /* Mark it in the inbox and take the inbox's reference, in one step. */
    unsigned r = atomic_load(&t->refs);
    do {
        if (r & CW__REF_INBOX)
            return; /* already on its way */
    } while (!atomic_compare_exchange_weak(&t->refs, &r, (r + 1) | CW__REF_INBOX));
    if (!cw__inbox_push(sh, t)) { /* the executor is gone */
        atomic_fetch_and(&t->refs, ~CW__REF_INBOX);
        cw__task_release(t);
    }
}

/* Executor thread: take every remotely woken task and wake it here. */
void cw__inbox_drain(cw_executor *ex)
{
    cw__task *t = atomic_exchange(&ex->shared->inbox, NULL);
    cw__task *fifo = NULL;

    while (t) { /* reverse: oldest first */
        cw__task *next = t->inbox_next;
        t->inbox_next = fifo;
        fifo = t;
        t = next;
    }
    while (fifo) {
        cw__task *next = fifo->inbox_next; /* read before re-arming */
        /* Aborted from a poll (join.c): reaped here, but never inside a
         * poll (cw_should_yield() drains): back on the inbox then, still
         * holding its reference, for the drain after the poll. */
        bool reap = (fifo->flags & (CW__T_CANCEL | CW__T_RUNNING | CW__T_DONE | CW__T_SPAWNING))
                    == CW__T_CANCEL;
        if (reap && ex->cx.task) {
            bool pushed = cw__stack_push(&ex->shared->inbox, fifo);
            assert(pushed);
            (void)pushed;
            fifo = next;
            continue;
        }
        /* an exchange, not a store: it reads the value a remote waker's
         * exchange wrote, so that waker's writes happen before the poll
         * this wake leads to (a store would not synchronise with it) */
        atomic_fetch_and(&fifo->refs, ~CW__REF_INBOX);
        if (fifo->flags & CW__T_SPAWNING) /* cw_spawn_remote() */
            cw__spawn_remote_finish(ex, fifo);
        else if (reap)
            cw__task_end(ex, fifo, -ECANCELED);
        else if (!(fifo->flags & CW__T_DONE)) {
            ex->stats.wakes_remote++;
            CW__HOOK(ex, wake, cw__task_queue(ex, fifo), fifo->state, true);
            cw__task_wake_local(ex, fifo);
        }
        cw__task_release(fifo);
        fifo = next;
    }
}

/* ---- the public functions ----------------------------------------------- */

cw_waker *cw_cx_waker(cw_cx *cx)
{
    return cx && cx->task ? (cw_waker *)cw__handle_of(cx->task) : NULL;
}

cw_waker *cw_waker_clone(const cw_waker *w)
{
    if (!w)
        return NULL;
    cw__task *t = cw__waker_task(w, "cw_waker_clone");
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
#ifdef CW_CHECKED
    atomic_fetch_add_explicit(&t->wakers, 1, memory_order_relaxed);
#endif
    return (cw_waker *)(uintptr_t)w;
}

void cw_waker_wake_by_ref(const cw_waker *w)
{
    if (!w)
        return;
    cw__task *t = cw__waker_task(w, "cw_waker_wake_by_ref");
    cw__shared *sh = cw__task_shared(t);
    if (!cw__on_thread(sh)) {
        wake_remote(t);
        return;
    }
    cw_executor *ex = sh->ex;
    if (!ex || (t->flags & CW__T_DONE))
        return;
    ex->stats.wakes_local++;
    CW__HOOK(ex, wake, cw__task_queue(ex, t), t->state, false);
    cw__task_wake_local(ex, t);
}

#ifdef CW_CHECKED
/* Give back a waker clone; the checked build counts them (tasks.h,
 * "handles"). The decrement releases, so that an after-poll check that
 * reads 0 also sees what this thread did before (a remote wake's inbox
 * bit: checked.c). */
static void release_checked(cw_waker *w, const char *call)
{
    cw__task *t = cw__waker_task(w, call);
    if (atomic_fetch_sub_explicit(&t->wakers, 1, memory_order_acq_rel) == 0)
        cw__misuse_abort(call, w, "waker already released (freed or woken more times than it "
                                  "was cloned; a waker from cw_cx_waker() is borrowed)");
    cw__task_release(t);
}

void cw_waker_wake(cw_waker *w)
{
    if (!w)
        return;
    (void)cw__waker_task(w, "cw_waker_wake"); /* named as this call, not the next */
    cw_waker_wake_by_ref(w);
    release_checked(w, "cw_waker_wake");
}

void cw_waker_free(cw_waker *w)
{
    if (w)
        release_checked(w, "cw_waker_free");
}
#else
void cw_waker_wake(cw_waker *w)
{
    cw_waker_wake_by_ref(w);
    cw_waker_free(w);
}

void cw_waker_free(cw_waker *w)
{
    if (w)
        cw__task_release(cw__task_of_waker(w));
}
#endif

bool cw_waker_will_wake(const cw_waker *a, const cw_waker *b)
{
    return a && a == b;
}
