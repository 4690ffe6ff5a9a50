/*
 * stall.c - the stall detector (clockworker/stats.h): a poll longer than
 * the threshold is counted, given to the stall hook and logged; the
 * watchdog, a thread per executor, catches such a poll while it still
 * runs and takes the executor thread's stack. And cw__fn_name(), the
 * names of poll functions in reports.
 *
 * After the poll. The poll loop measures every poll for the stats; its
 * non-lean copy (executor.c) calls cw__poll_diag(), which compares that
 * duration with ex->stall_ns and calls cw__stall(), cold, past it (and
 * updates the task's accounting, taskdump.c's, when it is on). The
 * lean copy, which runs whenever there are no hooks, histograms,
 * catch_panics, stall detector or task accounting, is not touched: off
 * costs nothing (callgrind counts the same instructions per poll as
 * before the detector). The watchdog's calls around the poll go through
 * poll_wrapped(), out of line, for the same reason.
 *
 * The watchdog. The executor thread publishes the poll in progress in a
 * seqlock: the poll function, the task and the queue are stored while
 * seq is even, then seq becomes odd for the poll, even again after it
 * (cw__watchdog_begin/_end: three relaxed stores, a fence that is free on
 * x86, one sequentially consistent store and one load per poll). The
 * thread looks every threshold/4 (the "tick"): the same odd seq seen for
 * a threshold is a stall in progress (so a stall is caught between the
 * threshold and the threshold plus a tick after the poll began, and never
 * before the threshold). It then takes the stack (the signal below),
 * keeps it for the hook the executor thread calls after the poll, and
 * writes its report. An even seq unchanged over a tick means nothing runs:
 * the thread parks on its condition variable, and the next poll's begin
 * wakes it (Dekker: begin stores seq then loads parked, the thread
 * stores parked then loads seq, both sequentially consistent, so one of
 * them sees the other). An idle executor's watchdog sleeps.
 *
 * The stack. A stack can only be walked by its own thread: the watchdog
 * sends SIGRTMAX - 1 to the executor thread, whose handler (installed
 * once per process, SA_RESTART, every signal blocked while it runs) calls
 * backtrace(3) into the one capture slot of the process and says DONE;
 * the watchdog copies the frames out. The slot is the library's only
 * global state besides the handler itself: one capture at a time
 * (g_cap_mu, taken by watchdog threads only, never in the handler); a
 * token (the executor thread's &cw__thread_token) tells the handler the
 * request is for its thread, so a stray SIGRTMAX - 1 (kill -s from a
 * shell, or a request for another thread) does nothing. backtrace(3) is
 * not async-signal-safe the first time it runs in a process (it loads
 * libgcc's unwinder, which allocates): the installation calls it once
 * first, on the executor thread, as its manual advises. The handler
 * touches errno only through backtrace() and restores it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_DLADDR
#include <dlfcn.h>
#endif
#ifdef HAVE_BACKTRACE
#include <execinfo.h>
#endif

#include "internal.h"

/* Frames kept of a stack. */
#define STACK_MAX 64

/* ---- names --------------------------------------------------------------- */

char *cw__fn_name(const void *fn, char *buf, size_t n)
{
    int r = -1;
#ifdef HAVE_DLADDR
    Dl_info di;
    if (dladdr(fn, &di) && di.dli_fname) {
        uintptr_t a = (uintptr_t)fn;
        if (di.dli_sname && di.dli_saddr == fn)
            r = snprintf(buf, n, "%s", di.dli_sname);
        else if (di.dli_sname && di.dli_saddr)
            r = snprintf(buf, n, "%s+0x%" PRIxPTR, di.dli_sname, a - (uintptr_t)di.dli_saddr);
        else {
            const char *base = strrchr(di.dli_fname, '/');
            base = base ? base + 1 : di.dli_fname;
            r = snprintf(buf, n, "%s+0x%" PRIxPTR, *base ? base : "?",
                         a - (uintptr_t)di.dli_fbase);
        }
    }
#endif
    if (r < 0)
        snprintf(buf, n, "0x%" PRIxPTR, (uintptr_t)fn);
    for (char *p = buf; *p; p++) /* one field in a report */
        if (*p == ' ' || *p == '\t' || *p == '\n')
            *p = '_';
    return buf;
}

/* "12.345" ms from ns, exact to the microsecond. */
#define MS_FMT "%" PRIu64 ".%03" PRIu64
#define MS_ARGS(ns) (ns) / 1000000, (ns) / 1000 % 1000

/* ---- after the poll --------------------------------------------------------- */

static int watchdog_frames(struct cw__watchdog *wd, void **frames);

__attribute__((cold, noinline)) void cw__stall(cw_executor *ex, cw_queue *q, cw__task *t,
                                                uint64_t ns)
{
    void *frames[STACK_MAX];
    int depth = 0;

    ex->stats.stalls++;
    q->stalls++;
    if (ex->wd)
        depth = watchdog_frames(ex->wd, frames);
    CW__HOOK(ex, stall, q, t->state, ns, depth ? frames : NULL, depth);
    if (!ex->stall_log)
        return;
    char name[256];
    cw__fn_name((const void *)(uintptr_t)t->poll, name, sizeof name);
    fprintf(ex->stall_log,
            "clockworker: stall: queue %" PRIu32 ", task %p, poll %s: ran " MS_FMT
            " ms (threshold " MS_FMT " ms)\n",
            q->id, (void *)t->state, name, MS_ARGS(ns), MS_ARGS(ex->stall_ns));
    fflush(ex->stall_log);
}

void cw__poll_diag(cw_executor *ex, cw_queue *q, cw__task *t, uint64_t end, uint64_t ns)
{
    if (t->flags & CW__T_X_ACCT) {
        cw__acct *a = cw__task_acct(t);
        a->polls++;
        a->cpu_ns += ns;
        a->last_poll = end;
    }
    if (__builtin_expect(ns > ex->stall_ns, 0))
        cw__stall(ex, q, t, ns);
}

/* ---- the watchdog ------------------------------------------------------------ */

#ifdef HAVE_BACKTRACE

struct cw__watchdog {
    pthread_t thread;
    pthread_t target;          /* the executor thread */
    const char *token;         /* its &cw__thread_token */
    pid_t pid;                 /* the process that started the thread */
    uint64_t threshold, tick;  /* ns */
    FILE *log;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* on CLOCK_MONOTONIC */
    bool stop;                 /* under mu */
    atomic_int parked;         /* the thread waits for the next poll */
    /* the poll in progress (seqlock: odd while it runs) */
    atomic_uint_least64_t seq;
    uint64_t nseq;             /* the executor thread's copy of seq */
    atomic_uintptr_t fn, state;
    atomic_uint_least32_t qid;
    /* the stack taken during poll frames_seq (under mu) */
    uint64_t frames_seq;
    int depth;
    void *frames[STACK_MAX];
};

/* The capture slot and the handler (see the top of the file). */
enum { CAP_IDLE, CAP_REQUESTED, CAP_TAKING, CAP_DONE };
static struct {
    atomic_int state;
    _Atomic(const char *) token; /* the thread asked for */
    int depth;
    int first; /* frames[first] is where the handler returns to */
    void *frames[STACK_MAX];
} g_cap;
static pthread_mutex_t g_cap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_sig_mu = PTHREAD_MUTEX_INITIALIZER;

static int stack_signal(void)
{
    return SIGRTMAX - 1;
}

static void on_stack_signal(int sig)
{
    (void)sig;
    int saved = errno;
    int want = CAP_REQUESTED;
    if (atomic_load_explicit(&g_cap.token, memory_order_acquire) == &cw__thread_token
        && atomic_compare_exchange_strong(&g_cap.state, &want, CAP_TAKING)) {
        /* The frames before the one this handler returns to (the
         * kernel's trampoline) are the handler's own: its frame, and a
         * sanitizer's wrapper of backtrace() if there is one. */
        void *ret = __builtin_return_address(0);
        int n = backtrace(g_cap.frames, STACK_MAX), first = 0;
        for (int i = 0; i < n; i++)
            if (g_cap.frames[i] == ret) {
                first = i;
                break;
            }
        g_cap.depth = n;
        g_cap.first = first;
        atomic_store_explicit(&g_cap.state, CAP_DONE, memory_order_release);
    }
    errno = saved;
}

static bool handler_is_ours(void)
{
    struct sigaction cur;
    return sigaction(stack_signal(), NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO)
           && cur.sa_handler == on_stack_signal;
}

/* Ours in place: 0; the default one: ours installed; another: -EBUSY. */
static int install_handler(void)
{
    int err = 0;
    pthread_mutex_lock(&g_sig_mu);
    struct sigaction cur;
    if (sigaction(stack_signal(), NULL, &cur) != 0) {
        err = -EINVAL;
    } else if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == on_stack_signal) {
        err = 0;
    } else if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) {
        err = -EBUSY;
    } else {
        void *warm[1];
        backtrace(warm, 1); /* loads the unwinder here, not in the handler */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stack_signal;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(stack_signal(), &sa, NULL) != 0)
            err = -EINVAL;
    }
    pthread_mutex_unlock(&g_sig_mu);
    return err;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The executor thread's stack, from the signal's trampoline on, into
 * frames: its depth; 0 when the handler is not ours any more, or did not
 * run within 100 ms (the thread blocks the signal, say). Watchdog threads
 * only, one at a time. */
static int take_stack(struct cw__watchdog *wd, void **frames)
{
    int depth = 0;
    if (!handler_is_ours())
        return 0;
    pthread_mutex_lock(&g_cap_mu);
    atomic_store_explicit(&g_cap.token, wd->token, memory_order_relaxed);
    atomic_store_explicit(&g_cap.state, CAP_REQUESTED, memory_order_release);
    if (pthread_kill(wd->target, stack_signal()) == 0) {
        for (int i = 0; i < 100 && atomic_load(&g_cap.state) != CAP_DONE; i++)
            sleep_ns(1000000);
        int want = CAP_REQUESTED;
        if (!atomic_compare_exchange_strong(&g_cap.state, &want, CAP_IDLE)) {
            /* taken, or being taken: the handler finishes */
            while (atomic_load_explicit(&g_cap.state, memory_order_acquire) != CAP_DONE)
                sleep_ns(100000);
            depth = g_cap.depth - g_cap.first;
            memcpy(frames, g_cap.frames + g_cap.first, (size_t)depth * sizeof *frames);
        }
    }
    atomic_store_explicit(&g_cap.token, NULL, memory_order_relaxed);
    atomic_store(&g_cap.state, CAP_IDLE);
    pthread_mutex_unlock(&g_cap_mu);
    return depth;
}

struct snap {
    const void *fn;
    void *state;
    uint32_t qid;
};

/* The poll published as seq s, if it still runs. */
static bool snapshot(struct cw__watchdog *wd, uint64_t s, struct snap *out)
{
    if (atomic_load_explicit(&wd->seq, memory_order_acquire) != s)
        return false;
    out->fn = (const void *)atomic_load_explicit(&wd->fn, memory_order_relaxed);
    out->state = (void *)atomic_load_explicit(&wd->state, memory_order_relaxed);
    out->qid = (uint32_t)atomic_load_explicit(&wd->qid, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&wd->seq, memory_order_relaxed) == s;
}

/* Poll s has run at least `ran` ns: take the stack, keep it, report. */
static void catch_stall(struct cw__watchdog *wd, uint64_t s, uint64_t ran)
{
    struct snap sn;
    void *frames[STACK_MAX];
    if (!snapshot(wd, s, &sn))
        return;
    int depth = take_stack(wd, frames);
    if (atomic_load(&wd->seq) != s)
        return; /* it returned meanwhile: the stack may be from after */
    if (depth > 0) {
        pthread_mutex_lock(&wd->mu);
        wd->frames_seq = s;
        wd->depth = depth;
        memcpy(wd->frames, frames, (size_t)depth * sizeof *frames);
        pthread_mutex_unlock(&wd->mu);
    }
    if (!wd->log)
        return;
    char name[256];
    cw__fn_name(sn.fn, name, sizeof name);
    char **sym = depth > 0 ? backtrace_symbols(frames, depth) : NULL;
    flockfile(wd->log);
    fprintf(wd->log,
            "clockworker: stall: queue %" PRIu32 ", task %p, poll %s: running for " MS_FMT
            " ms (threshold " MS_FMT " ms), stack:\n",
            sn.qid, sn.state, name, MS_ARGS(ran), MS_ARGS(wd->threshold));
    for (int i = 0; i < depth; i++) {
        if (sym)
            fprintf(wd->log, "  #%d %s\n", i, sym[i]);
        else
            fprintf(wd->log, "  #%d [%p]\n", i, frames[i]);
    }
    if (depth == 0)
        fprintf(wd->log, "  (not taken: the executor thread did not run the SIGRTMAX-1 "
                         "handler within 100 ms)\n");
    fflush(wd->log);
    funlockfile(wd->log);
    free(sym); /* backtrace_symbols() allocates with malloc() */
}

/* Wait on cv for up to ns, or until woken. Under mu. */
static void wait_ns(struct cw__watchdog *wd, uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(t / 1000000000u);
    ts.tv_nsec = (long)(t % 1000000000u);
    pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
}

static void *watchdog_main(void *arg)
{
    struct cw__watchdog *wd = arg;
    uint64_t seen = 0, since = 0;
    bool caught = false;

    pthread_mutex_lock(&wd->mu);
    while (!wd->stop) {
        uint64_t s = atomic_load(&wd->seq);
        uint64_t now = mono_ns();
        if (s != seen) {
            seen = s;
            since = now;
            caught = false;
        } else if (!(s & 1)) {
            /* no poll began or ended for a tick: sleep until one begins */
            atomic_store(&wd->parked, 1);
            while (atomic_load(&wd->seq) == s && atomic_load(&wd->parked) && !wd->stop)
                pthread_cond_wait(&wd->cv, &wd->mu);
            atomic_store(&wd->parked, 0);
            continue;
        } else if (!caught && now - since >= wd->threshold) {
            caught = true;
            pthread_mutex_unlock(&wd->mu);
            catch_stall(wd, s, now - since);
            pthread_mutex_lock(&wd->mu);
            continue;
        }
        wait_ns(wd, wd->tick);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

static void wd_free(struct cw__watchdog *wd)
{
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
    cw__free(wd);
}

int cw__watchdog_start(cw_executor *ex, const cw_config *cfg)
{
    int err = install_handler();
    if (err < 0)
        return err;
    struct cw__watchdog *wd = cw__calloc(1, sizeof *wd);
    if (!wd)
        return -ENOMEM;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&wd->mu, NULL) != 0) {
        cw__free(wd);
        return -ENOMEM;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&wd->mu);
        cw__free(wd);
        return -ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&wd->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (r != 0) {
        pthread_mutex_destroy(&wd->mu);
        cw__free(wd);
        return -ENOMEM;
    }
    wd->target = pthread_self();
    wd->token = &cw__thread_token;
    wd->pid = getpid();
    wd->threshold = cfg->stall_ns;
    wd->tick = cfg->stall_ns / 4;
    wd->log = cfg->stall_log;
    atomic_init(&wd->parked, 0);
    atomic_init(&wd->seq, 0);
    atomic_init(&wd->fn, 0);
    atomic_init(&wd->state, 0);
    atomic_init(&wd->qid, 0);
    /* The thread takes no signal meant for the process. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        wd_free(wd);
        return -ENOMEM;
    }
    ex->wd = wd;
    return 0;
}

void cw__watchdog_stop(cw_executor *ex)
{
    struct cw__watchdog *wd = ex->wd;
    if (!wd)
        return;
    ex->wd = NULL;
    if (wd->pid != getpid()) {
        /* a child of fork(): the thread stayed in the parent */
        cw__free(wd);
        return;
    }
    pthread_mutex_lock(&wd->mu);
    wd->stop = true;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    wd_free(wd);
}

void cw__watchdog_begin(struct cw__watchdog *wd, const cw_queue *q, const cw__task *t)
{
    /* the stores of the poll before (end) come before these */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&wd->fn, (uintptr_t)t->poll, memory_order_relaxed);
    atomic_store_explicit(&wd->state, (uintptr_t)t->state, memory_order_relaxed);
    atomic_store_explicit(&wd->qid, q->id, memory_order_relaxed);
    atomic_store(&wd->seq, ++wd->nseq); /* odd */
    if (atomic_load(&wd->parked)) {
        pthread_mutex_lock(&wd->mu);
        atomic_store(&wd->parked, 0);
        pthread_cond_signal(&wd->cv);
        pthread_mutex_unlock(&wd->mu);
    }
}

void cw__watchdog_end(struct cw__watchdog *wd)
{
    atomic_store_explicit(&wd->seq, ++wd->nseq, memory_order_release); /* even */
}

bool cw__watchdog_parked(const cw_executor *ex)
{
    return ex->wd && atomic_load(&ex->wd->parked);
}

/* The stack the watchdog took during the poll that just ended (seq
 * nseq - 1), into frames: its depth, or 0. */
static int watchdog_frames(struct cw__watchdog *wd, void **frames)
{
    int depth = 0;
    pthread_mutex_lock(&wd->mu);
    if (wd->frames_seq == wd->nseq - 1 && wd->depth > 0) {
        depth = wd->depth;
        memcpy(frames, wd->frames, (size_t)depth * sizeof *frames);
    }
    pthread_mutex_unlock(&wd->mu);
    return depth;
}

#else /* no backtrace(3): cw_config_set_stall_watchdog() said -ENOTSUP */

int cw__watchdog_start(cw_executor *ex, const cw_config *cfg)
{
    (void)ex;
    (void)cfg;
    return -ENOTSUP;
}

void cw__watchdog_stop(cw_executor *ex)
{
    (void)ex;
}

void cw__watchdog_begin(struct cw__watchdog *wd, const cw_queue *q, const cw__task *t)
{
    (void)wd;
    (void)q;
    (void)t;
}

void cw__watchdog_end(struct cw__watchdog *wd)
{
    (void)wd;
}

bool cw__watchdog_parked(const cw_executor *ex)
{
    (void)ex;
    return false;
}

static int watchdog_frames(struct cw__watchdog *wd, void **frames)
{
    (void)wd;
    (void)frames;
    return 0;
}

#endif
