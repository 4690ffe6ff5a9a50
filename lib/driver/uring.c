/*
 * driver/uring.c - the executor on an io_uring it owns: the ops of
 * clockworker/driver.h, cw_executor_new_uring() and cw_uring_run()
 * (libclockworker-uring; calls the core through driver.h only).
 *
 * A turn of the ring (turn()): submit what is queued and reap what has
 * completed, fire the timer if due, then run the round if one is
 * scheduled. It blocks (one io_uring_enter() that submits and waits) only
 * when no round is scheduled and nothing is in the completion ring yet.
 * So I/O is polled before each round, as the contract asks, and the round
 * runs after it in the same turn.
 *
 * Beyond readiness: the completion ring is shared memory, and the kernel
 * posts a poll's completion when the fd becomes ready, whatever the task
 * is doing (as task work, run when the thread next returns to user mode:
 * the ring is set up without IORING_SETUP_COOP_TASKRUN on purpose). So
 * the poll between two rounds is a read of the ring's tail: a turn that
 * has nothing to submit makes no system call (io_uring_submit() and
 * io_uring_peek_cqe() enter the kernel only when SQEs are queued or the
 * completion ring overflowed). Busy rounds back to back cost no syscall
 * where libevent pays an epoll_wait() with a zero timeout. Measured on
 * the 2-core VM of issue 16 (a task waking itself, one poll per round,
 * max_polls_per_yield 1): 50-85 ns per round trip on the ring, 1.6-1.8
 * us on libevent (one epoll_wait each); 1 io_uring_enter() for 100,000
 * rounds. The price: while rounds run back to back, a completion caused
 * by another thread (a peer's write) is posted when the kernel's
 * notification (an IPI) interrupts this thread: a waiter ran p50 26-34
 * us after the write, against 11-12 us on libevent; entering the kernel
 * every turn (io_uring_get_events) brought it to 10-15 us, at
 * libevent's cost per round. When nothing keeps a round due, the turn
 * blocks in the kernel and a completion wakes it at once.
 *
 * The timer is the timeout of the blocking wait (io_uring_enter with
 * IORING_ENTER_EXT_ARG, kernel 5.11), not an IORING_OP_TIMEOUT request:
 * the core re-arms its timer whenever the earliest sleep changes, and a
 * request would cost an SQE to replace and a completion to reap each
 * time; a deadline in memory costs nothing, and the ring is only ever
 * waited on here. The deadline is on CLOCK_MONOTONIC in ns, so the wait
 * never ends before it (no rounding) and an early wake is re-checked.
 * Under valgrind (3.19 at least), io_uring_enter() is not known to block:
 * a thread waiting in it keeps valgrind's lock and no other thread runs
 * (a remote wake never comes). There the turn submits, then blocks in
 * ppoll() on the ring's fd (readable when completions are posted).
 *
 * fd waits: one IORING_OP_POLL_ADD per armed record (one-shot; its
 * user_data is the record). fd_free of a record in flight: if its SQE was
 * not submitted yet, it is turned into a NOP in place and the record
 * freed; otherwise an IORING_OP_POLL_REMOVE is queued, the record stays
 * allocated as a "zombie" until the POLL_ADD's own completion (cancelled
 * or not) is reaped and ignored, and only then is it freed. The remote-
 * wake fd is a POLL_ADD too (user_data UD_NOTIFY), re-armed after each
 * report while watched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <liburing.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "clockworker/driver.h"
#include "clockworker/uring.h"

/* user_data of the requests that are not a record's POLL_ADD (records
 * are heap pointers, never this small). */
enum { UD_IGNORE = 1, UD_NOTIFY = 2 };

enum { REC_IDLE, REC_ARMED, REC_FREED };

#define DEFAULT_ENTRIES 256u

struct urdrv;

struct urrec {
    struct urdrv *d;
    cw_fdwait *token;
    struct io_uring_sqe *sqe; /* its POLL_ADD, valid while sqe_gen == d->gen */
    uint64_t sqe_gen;
    struct urrec *prev, *next; /* on d->zombies while REC_FREED */
    int fd;
    short what;
    unsigned char state;
    bool inflight;       /* its POLL_ADD is in the ring (its CQE is to come) */
    bool remove_queued;  /* REC_FREED: its POLL_REMOVE is queued */
    bool fd_checked;     /* the fd was open at its first arm */
};

struct urdrv {
    cw_executor *ex;
    struct io_uring ring;
    uint64_t gen;      /* bumped when queued SQEs go to the kernel */
    uint64_t deadline; /* the timer, CLOCK_MONOTONIC ns, while timer_armed */
    unsigned armed;    /* live records armed */
    struct urrec *zombies;
    bool round_due;
    bool running; /* a turn is on the stack */
    bool timer_armed;
    bool notify_on;       /* watch_notify(true) */
    bool notify_inflight; /* its POLL_ADD is in the ring */
    bool notify_removing; /* its POLL_REMOVE is queued */
    bool zombie_removes;  /* a zombie waits for an SQE for its remove */
    bool poll_wait;       /* block in ppoll() on the ring fd (valgrind) */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the submission queue ------------------------------------------------ */

static int submit(struct urdrv *d)
{
    d->gen++; /* the queued SQEs are the kernel's now */
    return io_uring_submit(&d->ring);
}

/* An SQE; when the queue is full, submit it and retry. NULL when the
 * kernel takes none (completion ring overflowed: -EBUSY). */
static struct io_uring_sqe *get_sqe(struct urdrv *d)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
    if (!sqe) {
        submit(d);
        sqe = io_uring_get_sqe(&d->ring);
    }
    return sqe;
}

static bool queue_remove(struct urdrv *d, uint64_t target)
{
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return false;
    io_uring_prep_poll_remove(sqe, target);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    return true;
}

static int arm_notify(struct urdrv *d)
{
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return -1;
    io_uring_prep_poll_add(sqe, cw_driver_notify_fd(d->ex), POLLIN);
    io_uring_sqe_set_data64(sqe, UD_NOTIFY);
    d->notify_inflight = true;
    return 0;
}

/* The removes fd_free could not queue (no SQE then). */
static void queue_zombie_removes(struct urdrv *d)
{
    if (!d->zombie_removes)
        return;
    d->zombie_removes = false;
    for (struct urrec *r = d->zombies; r; r = r->next) {
        if (!r->remove_queued) {
            if (!queue_remove(d, (uint64_t)(uintptr_t)r)) {
                d->zombie_removes = true;
                return;
            }
            r->remove_queued = true;
        }
    }
}

/* ---- completions --------------------------------------------------------- */

static short to_what(const struct urrec *r, int res)
{
    if (res < 0) /* -EBADF and the like: the task's syscall sees it */
        return r->what;
    short what = 0;
    if (res & (POLLIN | POLLPRI | POLLRDHUP))
        what |= CW_FD_READ;
    if (res & POLLOUT)
        what |= CW_FD_WRITE;
    if (res & (POLLERR | POLLHUP | POLLNVAL))
        what |= r->what;
    what &= r->what;
    return what ? what : r->what;
}

static void unlink_zombie(struct urdrv *d, struct urrec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        d->zombies = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* One completion; true if it was news to the executor. May run a round
 * (through cw_driver_notified) which frees records: the state of each is
 * read when its own completion is handled. */
static bool complete(struct urdrv *d, uint64_t ud, int res)
{
    if (ud == UD_IGNORE)
        return false;
    if (ud == UD_NOTIFY) {
        d->notify_inflight = false;
        d->notify_removing = false;
        if (!d->notify_on)
            return false;
        /* No SQE: watch_notify is not asked again, so this would lose
         * remote wakes; the next turn retries (notify_on && !inflight). */
        arm_notify(d);
        if (res > 0)
            cw_driver_notified(d->ex);
        return true;
    }
    struct urrec *r = (struct urrec *)(uintptr_t)ud;
    r->inflight = false;
    r->sqe = NULL;
    if (r->state == REC_FREED) { /* the cancelled request's last word */
        unlink_zombie(d, r);
        cw_driver_dealloc(r);
        return false;
    }
    if (r->state != REC_ARMED)
        return false;
    r->state = REC_IDLE;
    d->armed--;
    cw_driver_fd_ready(r->token, to_what(r, res));
    return true;
}

/* Handle what is in the completion ring (no syscall unless it overflowed).
 * Bounded by the ring's size per call, so a flood of completions cannot
 * hold the turn forever. @return the completions that were news. */
static unsigned reap(struct urdrv *d)
{
    unsigned news = 0, budget = *d->ring.cq.kring_entries;
    struct io_uring_cqe *cqe;
    while (budget-- && io_uring_peek_cqe(&d->ring, &cqe) == 0 && cqe) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&d->ring, cqe);
        news += complete(d, ud, res);
    }
    return news;
}

/* ---- the turn ------------------------------------------------------------ */

static bool nothing_to_wait_for(const struct urdrv *d)
{
    return !d->round_due && !d->timer_armed && !d->notify_on && !d->armed;
}

static bool timer_due(const struct urdrv *d, uint64_t now)
{
    return d->timer_armed && now >= d->deadline;
}

/* One pass of a turn; block: wait when no round is due and nothing is in
 * the completion ring. @return what was handled (completions that were
 * news, the timer, the round), 0 for nothing, or a negative errno. *idle:
 * it did not wait, as nothing is left to wait for. */
static int pass(struct urdrv *d, bool block, bool *idle)
{
    int err = 0, handled = 0;
    queue_zombie_removes(d);
    if (d->notify_on && !d->notify_inflight)
        arm_notify(d); /* a retry: see complete() */
    if (block && !d->round_due && !io_uring_cq_ready(&d->ring)
        && !timer_due(d, d->timer_armed ? mono_ns() : 0)) {
        if (nothing_to_wait_for(d)) {
            submit(d); /* the removes, if any */
            *idle = true;
            return 0;
        }
        struct __kernel_timespec ts, *tsp = NULL;
        if (d->timer_armed) {
            uint64_t now = mono_ns();
            uint64_t left = d->deadline > now ? d->deadline - now : 0;
            ts.tv_sec = (long long)(left / 1000000000u);
            ts.tv_nsec = (long long)(left % 1000000000u);
            tsp = &ts;
        }
        int r;
        if (d->poll_wait) {
            submit(d);
            struct pollfd p = {.fd = d->ring.ring_fd, .events = POLLIN};
            struct timespec pts = {.tv_sec = (time_t)ts.tv_sec, .tv_nsec = (long)ts.tv_nsec};
            r = ppoll(&p, 1, tsp ? &pts : NULL, NULL) < 0 ? -errno : 0;
        } else {
            struct io_uring_cqe *cqe;
            d->gen++; /* submits what is queued */
            r = io_uring_submit_and_wait_timeout(&d->ring, &cqe, 1, tsp, NULL);
        }
        if (r == -EINTR)
            err = r; /* a signal: the turn ends, as a loop's would */
        else if (r < 0 && r != -ETIME && r != -EAGAIN && r != -EBUSY)
            return r;
    } else {
        submit(d); /* no syscall when nothing is queued */
    }
    handled += (int)reap(d);
    if (timer_due(d, d->timer_armed ? mono_ns() : 0)) {
        d->timer_armed = false;
        cw_driver_timer(d->ex); /* a round it makes due runs just below */
        handled++;
    }
    if (d->round_due) {
        d->round_due = false;
        cw_driver_round(d->ex);
        handled++;
    }
    return handled ? handled : err;
}

/* One turn; block: until something was handled (a wake-up for a
 * cancelled request's completion only waits again).
 * @return 1 if there was nothing to wait for (nothing ran: as
 * event_base_loop(EVLOOP_ONCE) and driver.h's run_once), 0, or a negative
 * errno from io_uring_enter(). */
static int turn(struct urdrv *d, bool block)
{
    bool idle = false;
    int r;
    if (nothing_to_wait_for(d) && io_uring_cq_ready(&d->ring) == 0)
        return 1;
    d->running = true;
    do
        r = pass(d, block, &idle);
    while (block && r == 0 && !idle);
    d->running = false;
    if (r < 0 && r != -EINTR)
        return r;
    return 0;
}

/* ---- the ops ------------------------------------------------------------- */

static int ur_init(cw_executor *ex, void *arg, void **out)
{
    unsigned entries = *(const unsigned *)arg;
    struct urdrv *d = cw_driver_alloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->ex = ex;
    d->poll_wait = RUNNING_ON_VALGRIND;
    int err = io_uring_queue_init(entries ? entries : DEFAULT_ENTRIES, &d->ring, 0);
    if (err < 0) {
        cw_driver_dealloc(d);
        return err;
    }
    *out = d;
    return 0;
}

static void ur_free(void *drv)
{
    struct urdrv *d = drv;
    /* The kernel cancels what is in flight and never reads user_data: the
     * zombies can go after the ring. */
    io_uring_queue_exit(&d->ring);
    while (d->zombies) {
        struct urrec *r = d->zombies;
        d->zombies = r->next;
        cw_driver_dealloc(r);
    }
    cw_driver_dealloc(d);
}

static void ur_schedule(void *drv)
{
    struct urdrv *d = drv;
    d->round_due = true;
}

static int ur_watch_notify(void *drv, bool on)
{
    struct urdrv *d = drv;
    if (on) {
        if (!d->notify_inflight && arm_notify(d) < 0)
            return -1;
        d->notify_on = true;
        return 0;
    }
    if (d->notify_inflight && !d->notify_removing) {
        if (!queue_remove(d, UD_NOTIFY))
            return -1;
        d->notify_removing = true;
    }
    d->notify_on = false;
    return 0;
}

/* Delays beyond a day are armed for a day: it fires early and the core
 * re-arms (far from any overflow). */
static void ur_arm_timer(void *drv, uint64_t delay_ns)
{
    struct urdrv *d = drv;
    const uint64_t day_ns = 86400ull * 1000000000u;
    if (delay_ns > day_ns)
        delay_ns = day_ns;
    d->deadline = mono_ns() + delay_ns;
    d->timer_armed = true;
}

static void ur_disarm_timer(void *drv)
{
    struct urdrv *d = drv;
    d->timer_armed = false;
}

static void *ur_fd_new(void *drv, int fd, short what, cw_fdwait *token)
{
    struct urrec *r = cw_driver_alloc(sizeof *r);
    if (!r)
        return NULL;
    r->d = drv;
    r->token = token;
    r->fd = fd;
    r->what = what;
    return r;
}

/* An invalid fd is only known at the completion (-EBADF): reported then
 * as ready for the interest, so the task's syscall sees the error. */
static int ur_fd_arm(void *drv, void *rec)
{
    struct urdrv *d = drv;
    struct urrec *r = rec;
    if (r->state == REC_ARMED)
        return 0;
    /* A closed fd fails the wait now (revents 0), as epoll_ctl() does on
     * libevent: the POLL_ADD would only say so in its completion. Once per
     * record: a later wait on the same future is on the same fd. */
    if (!r->fd_checked) {
        if (fcntl(r->fd, F_GETFD) < 0)
            return -EBADF;
        r->fd_checked = true;
    }
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe) /* the kernel takes no SQE until completions are reaped */
        return -ENOMEM;
    unsigned mask = 0;
    if (r->what & CW_FD_READ)
        mask |= POLLIN;
    if (r->what & CW_FD_WRITE)
        mask |= POLLOUT;
    io_uring_prep_poll_add(sqe, r->fd, mask);
    io_uring_sqe_set_data(sqe, r);
    r->sqe = sqe;
    r->sqe_gen = d->gen;
    r->inflight = true;
    r->state = REC_ARMED;
    d->armed++;
    return 0;
}

static void ur_fd_free(void *drv, void *rec)
{
    struct urdrv *d = drv;
    struct urrec *r = rec;
    if (r->state == REC_ARMED)
        d->armed--;
    if (r->inflight && r->sqe && r->sqe_gen == d->gen) {
        /* Not submitted yet: the SQE is still ours to rewrite. */
        io_uring_prep_nop(r->sqe);
        io_uring_sqe_set_data64(r->sqe, UD_IGNORE);
        r->inflight = false;
    }
    if (!r->inflight) {
        cw_driver_dealloc(r);
        return;
    }
    r->state = REC_FREED;
    r->prev = NULL;
    r->next = d->zombies;
    if (d->zombies)
        d->zombies->prev = r;
    d->zombies = r;
    r->remove_queued = queue_remove(d, (uint64_t)(uintptr_t)r);
    if (!r->remove_queued)
        d->zombie_removes = true;
}

static int ur_run_once(void *drv)
{
    struct urdrv *d = drv;
    if (d->running)
        return -EBUSY;
    return turn(d, true);
}

static const cw_driver_ops uring_ops = {
    .abi = CW_DRIVER_ABI,
    .kind = CW_LOOP_URING,
    .init = ur_init,
    .free = ur_free,
    .schedule = ur_schedule,
    .idle = NULL,
    .watch_notify = ur_watch_notify,
    .arm_timer = ur_arm_timer,
    .disarm_timer = ur_disarm_timer,
    .fd_new = ur_fd_new,
    .fd_arm = ur_fd_arm,
    .fd_free = ur_fd_free,
    .run_once = ur_run_once,
};

/* ---- the public API ------------------------------------------------------ */

int cw_executor_new_uring(const cw_config *cfg, unsigned entries, cw_executor **out)
{
    return cw_driver_executor_new(&uring_ops, &entries, cfg, out);
}

int cw_uring_run(cw_executor *ex, cw_uring_run_mode mode)
{
    struct urdrv *d = cw_driver_state(ex, &uring_ops);
    if (!d)
        return -EINVAL;
    if (d->running)
        return -EBUSY;
    switch (mode) {
    case CW_URING_RUN_DEFAULT: {
        int r;
        while ((r = turn(d, true)) == 0)
            ;
        return r;
    }
    case CW_URING_RUN_ONCE:
        return turn(d, true);
    case CW_URING_RUN_NOWAIT:
        return turn(d, false);
    }
    return -EINVAL;
}

struct io_uring *cw_executor_uring(const cw_executor *ex)
{
    struct urdrv *d = cw_driver_state(ex, &uring_ops);
    return d ? &d->ring : NULL;
}
