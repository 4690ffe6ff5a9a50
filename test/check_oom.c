/* check_oom.c - out of memory: every allocation an operation makes is
 * failed in turn (SQLite's test_malloc.c habit: count the allocations of
 * the operation in a dry run, then fail the 1st, the 2nd, ... the last,
 * once alone and once with every later one failing too). Each call then
 * reports it (-ENOMEM, or NULL where the API returns a pointer) and has no
 * effect, or absorbs it and does its whole job; the executor stays usable;
 * nothing leaks (the test allocator counts live blocks; open fds are
 * counted in /proc/self/fd). Wakers and the remote inbox never allocate.
 *
 * The test allocator serves clockworker (cw_set_allocator()) and libevent
 * (event_set_mem_functions(), installed once at the top of main(), before
 * any libevent object exists, so that it holds with CK_FORK=no too). It
 * fails nothing until a test arms it. */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ---- the test allocator -------------------------------------------------- */

enum { OWN_CW, OWN_EV, NOWNERS };
#define BLK_MAGIC 0x6f6f6d21u

/* Each block carries its owner, so that a block freed by the wrong
 * allocator (or not allocated by this one) aborts at once. */
typedef union blk {
    max_align_t align;
    struct {
        uint32_t magic;
        uint32_t owner;
    } h;
} blk;

static struct {
    atomic_long attempts;       /* allocation attempts since the last arm */
    atomic_long fail_at;        /* index of the first to fail; -1: none */
    atomic_bool persist;        /* fail every attempt after it too */
    atomic_long failed;         /* attempts failed since the last arm */
    atomic_long live[NOWNERS];  /* blocks allocated and not yet freed */
    atomic_bool paused;         /* neither count nor fail (test set-up) */
} g = {.fail_at = -1};

/* A place for a breakpoint: every injected failure passes here. */
static void oom_injected(void)
{
    atomic_fetch_add(&g.failed, 1);
}

static bool attempt_fails(void)
{
    if (atomic_load(&g.paused))
        return false;
    long i = atomic_fetch_add(&g.attempts, 1);
    long at = atomic_load(&g.fail_at);
    if (at < 0 || i < at || (i > at && !atomic_load(&g.persist)))
        return false;
    oom_injected();
    return true;
}

static void *blk_alloc(int owner, size_t n)
{
    if (attempt_fails() || n > SIZE_MAX - sizeof(blk)) {
        errno = ENOMEM;
        return NULL;
    }
    blk *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->h.magic = BLK_MAGIC;
    b->h.owner = (uint32_t)owner;
    atomic_fetch_add(&g.live[owner], 1);
    return b + 1;
}

static blk *blk_of(int owner, void *p)
{
    blk *b = (blk *)p - 1;
    if (b->h.magic != BLK_MAGIC || b->h.owner != (uint32_t)owner) {
        fprintf(stderr, "check_oom: %s freed a block it did not allocate\n",
                owner == OWN_CW ? "clockworker" : "libevent");
        abort();
    }
    return b;
}

static void blk_free(int owner, void *p)
{
    if (!p)
        return;
    blk *b = blk_of(owner, p);
    b->h.magic = 0;
    atomic_fetch_sub(&g.live[owner], 1);
    free(b);
}

static void *blk_realloc(int owner, void *p, size_t n)
{
    if (!p)
        return blk_alloc(owner, n);
    blk *b = blk_of(owner, p);
    if (attempt_fails() || n > SIZE_MAX - sizeof(blk)) {
        errno = ENOMEM;
        return NULL; /* p stays valid, as with realloc() */
    }
    blk *nb = realloc(b, sizeof *nb + (n ? n : 1));
    return nb ? nb + 1 : NULL;
}

static void *cw_test_malloc(size_t n) { return blk_alloc(OWN_CW, n); }
static void *cw_test_realloc(void *p, size_t n) { return blk_realloc(OWN_CW, p, n); }
static void cw_test_free(void *p) { blk_free(OWN_CW, p); }
static void *ev_test_malloc(size_t n) { return blk_alloc(OWN_EV, n); }
static void *ev_test_realloc(void *p, size_t n) { return blk_realloc(OWN_EV, p, n); }
static void ev_test_free(void *p) { blk_free(OWN_EV, p); }

/* From here on, fail attempt n (0-based) and, with persist, every later
 * one; n < 0 fails none (a dry run: it only counts). */
static void oom_arm(long n, bool persist)
{
    atomic_store(&g.fail_at, -1);
    atomic_store(&g.attempts, 0);
    atomic_store(&g.failed, 0);
    atomic_store(&g.persist, persist);
    atomic_store(&g.fail_at, n);
}

/* Memory is back: fail nothing from here on (the counts stay readable). */
static void oom_off(void)
{
    atomic_store(&g.fail_at, -1);
}

/* Allocations in between are neither counted nor failed. */
static void oom_pause(void)
{
    atomic_store(&g.paused, true);
}

static void oom_resume(void)
{
    atomic_store(&g.paused, false);
}

static long oom_attempts(void)
{
    return atomic_load(&g.attempts);
}

static long oom_failed(void)
{
    return atomic_load(&g.failed);
}

static long live(int owner)
{
    return atomic_load(&g.live[owner]);
}

/* OOM_VERBOSE=1 ./test/check_oom prints the sites each loop found. */
static void report_sites(const char *op, long sites, long reported, long absorbed)
{
    if (getenv("OOM_VERBOSE"))
        fprintf(stderr, "oom: %-40s %ld allocation(s): %ld reported, %ld absorbed\n",
                op, sites, reported, absorbed);
}

/* Every test starts with no block live and the test allocator installed,
 * and ends with every block freed and malloc restored. */
static void oom_begin(void)
{
    ck_assert_int_eq(live(OWN_CW), 0);
    ck_assert_int_eq(live(OWN_EV), 0);
    ck_assert_int_eq(cw_set_allocator(cw_test_malloc, cw_test_realloc, cw_test_free), 0);
    oom_off();
}

static void oom_end(void)
{
    oom_off();
    ck_assert_int_eq(live(OWN_CW), 0);
    ck_assert_int_eq(live(OWN_EV), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- helpers ------------------------------------------------------------- */

static cw_config *one_queue(bool catch_panics)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 1), 0);
    cw_config_set_catch_panics(cfg, catch_panics);
    return cfg;
}

/* Turn the loop without blocking until the task has ended; a wake that
 * was lost leaves it running and fails the test instead of hanging it
 * (no timer is involved: whatever must happen is ready now). */
static int run_ready(struct event_base *base, cw_join *j)
{
    for (int i = 0; i < 1000 && cw_join_status(j) == -EAGAIN; i++)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
    return cw_join_status(j);
}

/* Ready at its first poll; counts its polls. */
typedef struct counter {
    int *polls;
} counter;

static cw_poll counter_poll(void *state, cw_cx *cx)
{
    (void)cx;
    ++*((counter *)state)->polls;
    return CW_READY;
}

/* Spawn a counter and run it to completion: the executor is usable. */
static void assert_spawn_and_run_works(tenv *env)
{
    int polls = 0;
    counter c = {&polls};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, 0), counter_poll, &c, sizeof c,
                              NULL, &j), 0);
    ck_assert_int_eq(run_ready(env->base, j), 0);
    ck_assert_int_eq(polls, 1);
    cw_join_free(j);
}

/* First poll: parks a clone of its waker in *slot; later: ready. */
typedef struct parker {
    cw_waker **slot;
    int polls;
} parker;

static cw_poll parker_poll(void *state, cw_cx *cx)
{
    parker *p = state;
    if (p->polls++ == 0) {
        *p->slot = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    }
    return CW_READY;
}

static void *wake_thread(void *arg)
{
    cw_waker_wake(arg);
    return NULL;
}

static void wake_from_thread(cw_waker *w)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, wake_thread, w), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/* A task parks, the executor goes idle, another thread wakes it: the wake
 * must reach the executor through its notification fd, which therefore
 * must be watched while a task lives. */
static void assert_remote_wake_works(tenv *env)
{
    cw_waker *slot = NULL;
    parker p = {&slot, 0};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, 0), parker_poll, &p, sizeof p,
                              NULL, &j), 0);
    for (int i = 0; i < 100 && !slot; i++)
        tenv_turn(env);
    ck_assert_ptr_nonnull(slot);
    ck_assert_uint_eq(stats_of(env->ex).tasks_live, 1);
    wake_from_thread(slot); /* the executor is idle: no round is pending */
    ck_assert_int_eq(run_ready(env->base, j), 0);
    cw_join_free(j);
}

/* ---- cw_set_allocator() --------------------------------------------------- */

START_TEST(set_allocator_rejects_a_partial_set_with_einval_and_keeps_the_allocator)
{
    void *(*m)(size_t) = cw_test_malloc;
    void *(*r)(void *, size_t) = cw_test_realloc;
    void (*f)(void *) = cw_test_free;

    /* from malloc: a partial set changes nothing */
    ck_assert_int_eq(cw_set_allocator(m, NULL, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, r, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, f), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(m, r, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(m, NULL, f), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, r, f), -EINVAL);
    oom_arm(-1, false);
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(oom_attempts(), 0); /* still malloc */
    cw_config_free(cfg);

    /* from the test allocator: the same, and it stays in force */
    oom_begin();
    ck_assert_int_eq(cw_set_allocator(m, NULL, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, r, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, f), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(m, r, NULL), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(m, NULL, f), -EINVAL);
    ck_assert_int_eq(cw_set_allocator(NULL, r, f), -EINVAL);
    oom_arm(-1, false);
    cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(oom_attempts(), 1);
    ck_assert_int_eq(live(OWN_CW), 1);
    cw_config_free(cfg);
    oom_end();
}
END_TEST

START_TEST(set_allocator_is_ebusy_while_a_config_executor_or_task_block_lives)
{
    oom_begin();
    cw_config *cfg = one_queue(false);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), -EBUSY);
    ck_assert_int_eq(cw_set_allocator(cw_test_malloc, cw_test_realloc, cw_test_free), -EBUSY);

    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    cw_executor *ex;
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    cw_config_free(cfg);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), -EBUSY); /* the executor */

    /* the allocator was not swapped by the refused calls */
    cw_waker *slot = NULL;
    parker p = {&slot, 0};
    cw_join *j;
    oom_arm(-1, false);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(ex, 0), parker_poll, &p, sizeof p, NULL, &j), 0);
    ck_assert_int_ge(oom_attempts(), 1);
    while (!slot)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);

    /* a waker clone and a join handle keep the task block (and the
     * executor's shared part) past cw_executor_free() */
    cw_executor_free(ex);
    ck_assert_int_eq(cw_join_status(j), -ECANCELED);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), -EBUSY);
    cw_join_free(j);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), -EBUSY); /* the clone */
    cw_waker_free(slot);
    ck_assert_int_eq(live(OWN_CW), 0);
    event_base_free(base);
    oom_end(); /* 0 now: nothing of clockworker lives */
}
END_TEST

/* ---- configs -------------------------------------------------------------- */

START_TEST(config_new_returns_null_at_every_allocation_and_leaks_nothing)
{
    oom_begin();
    oom_arm(-1, false);
    cw_config *cfg = cw_config_new();
    long sites = oom_attempts();
    ck_assert_ptr_nonnull(cfg);
    cw_config_free(cfg);
    ck_assert_int_ge(sites, 1);

    for (int persist = 0; persist <= 1; persist++)
        for (long n = 0; n < sites; n++) {
            oom_arm(n, persist);
            cfg = cw_config_new();
            oom_off();
            ck_assert_int_ge(oom_failed(), 1);
            ck_assert_ptr_null(cfg);
            ck_assert_int_eq(live(OWN_CW), 0);
            /* a NULL config is fine to free and to use */
            cw_config_free(cfg);
            ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), -EINVAL);
        }
    report_sites("cw_config_new", sites, sites, 0);
    oom_end();
}
END_TEST

START_TEST(config_add_queue_growth_fails_with_enomem_and_leaves_config_unchanged)
{
    enum { NQ = 10 }; /* the array grows at the 1st, 5th and 9th queue */
    long growths = 0;

    oom_begin();
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    for (int persist = 0; persist <= 1; persist++) {
        cw_config *cfg = cw_config_new();
        ck_assert_ptr_nonnull(cfg);
        for (uint32_t id = 0; id < NQ; id++) {
            /* dry run on a copy of the state: does this add allocate? */
            bool grows = cfg->nqueues == cfg->cap;
            struct cw__qdef *queues = cfg->queues;
            uint32_t nqueues = cfg->nqueues, cap = cfg->cap;
            long blocks = live(OWN_CW);

            for (long n = 0; grows; n++) {
                oom_arm(n, persist);
                int rc = cw_config_add_queue(cfg, id, id + 1);
                oom_off();
                if (!oom_failed()) { /* past the last allocation: it worked */
                    ck_assert_int_eq(rc, 0);
                    ck_assert_int_eq(n, 1);
                    growths++;
                    break;
                }
                ck_assert_int_eq(rc, -ENOMEM);
                /* unchanged: same array, count and capacity, no block */
                ck_assert_ptr_eq(cfg->queues, queues);
                ck_assert_uint_eq(cfg->nqueues, nqueues);
                ck_assert_uint_eq(cfg->cap, cap);
                ck_assert_int_eq(live(OWN_CW), blocks);
                /* the id is still free, the settings still apply */
                ck_assert_int_eq(cw_config_set_queue_slice(cfg, id, 1000), -ENOENT);
            }
            if (!grows) {
                oom_arm(0, persist); /* would fail the first allocation */
                ck_assert_int_eq(cw_config_add_queue(cfg, id, id + 1), 0);
                oom_off();
                ck_assert_int_eq(oom_attempts(), 0);
            }
        }
        /* the config builds an executor with exactly the queues added */
        cw_executor *ex;
        ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
        for (uint32_t id = 0; id < NQ; id++)
            ck_assert_uint_eq(cw_queue_weight(cw_executor_queue(ex, id)), id + 1);
        ck_assert_ptr_null(cw_executor_queue(ex, NQ));
        cw_executor_free(ex);
        cw_config_free(cfg);
    }
    ck_assert_int_eq(growths, 6);
    report_sites("cw_config_add_queue (each growth)", 1, 1, 0);
    event_base_free(base);
    oom_end();
}
END_TEST

/* ---- executors ------------------------------------------------------------ */

START_TEST(executor_new_fails_cleanly_at_every_allocation)
{
    oom_begin();
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    /* ids out of order: the by-id index is built */
    ck_assert_int_eq(cw_config_add_queue(cfg, 5, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 2), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 3, 3), 0);

    int fds = open_fds();
    long cw_blocks = live(OWN_CW), ev_blocks = live(OWN_EV);
    cw_executor *ex;
    oom_arm(-1, false);
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    long sites = oom_attempts();
    cw_executor_free(ex);
    ck_assert_int_ge(sites, 5); /* executor, queues, index, shared part, events */

    for (int persist = 0; persist <= 1; persist++)
        for (long n = 0; n < sites; n++) {
            ex = (cw_executor *)&ex; /* garbage the call must clear */
            oom_arm(n, persist);
            int rc = cw_executor_new(base, cfg, &ex);
            oom_off();
            ck_assert_int_ge(oom_failed(), 1);
            ck_assert_msg(rc == -ENOMEM, "allocation %ld: %s", n, cw_strerror(rc));
            ck_assert_ptr_null(ex);
            ck_assert_int_eq(live(OWN_CW), cw_blocks);
            ck_assert_int_eq(live(OWN_EV), ev_blocks);
            ck_assert_int_eq(open_fds(), fds);
            /* nothing of it was left in the base */
            ck_assert_int_eq(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
        }
    report_sites("cw_executor_new", sites, sites, 0);

    /* memory is back: the same config builds a working executor */
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    cw_config_free(cfg);
    tenv env = {.base = base, .loop = base, .drv = &tdrv_libevent, .ex = ex};
    assert_spawn_and_run_works(&env);
    assert_remote_wake_works(&env);
    cw_executor_free(ex);
    ck_assert_int_eq(open_fds(), fds);
    event_base_free(base);
    oom_end();
}
END_TEST

/* With the stall watchdog: its state is one more allocation, made last;
 * a failure there undoes the rest (no thread is left running: the
 * thread count of the process is back). */
static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

START_TEST(executor_new_with_a_stall_watchdog_fails_cleanly_at_every_allocation)
{
    oom_begin();
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 0, 1), 0);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), 0);

    int fds = open_fds(), threads = threads_now();
    long cw_blocks = live(OWN_CW), ev_blocks = live(OWN_EV);
    cw_executor *ex;
    oom_arm(-1, false);
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    long sites = oom_attempts();
    ck_assert_int_eq(threads_now(), threads + 1);
    cw_executor_free(ex);
    ck_assert_int_eq(threads_now(), threads);

    for (int persist = 0; persist <= 1; persist++)
        for (long n = 0; n < sites; n++) {
            oom_arm(n, persist);
            int rc = cw_executor_new(base, cfg, &ex);
            oom_off();
            ck_assert_msg(rc == -ENOMEM, "allocation %ld: %s", n, cw_strerror(rc));
            ck_assert_ptr_null(ex);
            ck_assert_int_eq(live(OWN_CW), cw_blocks);
            ck_assert_int_eq(live(OWN_EV), ev_blocks);
            ck_assert_int_eq(open_fds(), fds);
            ck_assert_int_eq(threads_now(), threads);
        }
    report_sites("cw_executor_new (stall watchdog)", sites, sites, 0);
    cw_config_free(cfg);
    event_base_free(base);
    oom_end();
}
END_TEST

/* The task dump's one table (the kinds of waits): -ENOMEM, nothing
 * written; then the same dump succeeds. */
static cw_poll dump_sleep_poll(void *state, cw_cx *cx)
{
    return cw_sleep_poll(state, cx);
}

static void dump_sleep_drop(void *state)
{
    cw_sleep_drop(state);
}

START_TEST(dump_tasks_out_of_memory_writes_nothing)
{
    oom_begin();
    tenv env;
    tenv_init(&env, one_queue(false), 0);
    cw_sleep s;
    cw_sleep_init(&s, UINT64_MAX);
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), dump_sleep_poll, &s, sizeof s,
                              dump_sleep_drop, NULL),
                     0);
    tenv_turn(&env);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    oom_arm(-1, false);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, f), 0);
    long sites = oom_attempts();
    ck_assert_int_eq(sites, 1);
    ck_assert(fflush(f) == 0 && len > 0 && strstr(buf, " waiting:sleep "));
    fclose(f);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    oom_arm(0, false);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, f), -ENOMEM);
    oom_off();
    ck_assert_int_eq(fflush(f), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, f), 0);
    fclose(f);
    free(buf);
    tenv_free(&env);
    oom_end();
}
END_TEST

/* ---- spawning ------------------------------------------------------------- */

/* The first spawn on a fresh executor makes the most allocations: the task
 * block, and inside libevent whatever watching the remote-wake fd and
 * scheduling the first round need. Each failure is either reported
 * (-ENOMEM, nothing spawned, *join untouched) or absorbed (0, and the task
 * does its whole job: it runs, and a wake from another thread reaches it
 * while it lives); either way the executor goes on. */
START_TEST(spawn_fails_cleanly_at_every_allocation_and_executor_stays_usable)
{
    oom_begin();
    int fds = open_fds();
    long sites = -1, reported = 0, absorbed = 0;

    for (int persist = 0; persist <= 1; persist++)
        for (long n = -1; n < 0 || n < sites; n++) { /* n = -1: the dry run */
            tenv env;
            tenv_init(&env, one_queue(false), 1);
            cw_queue *q = cw_executor_queue(env.ex, 0);
            struct cw_executor_stats before = stats_of(env.ex);
            long blocks = live(OWN_CW);
            cw_waker *slot = NULL;
            parker p = {&slot, 0};
            cw_join *j = (cw_join *)&j; /* must stay untouched on error */

            oom_arm(n, persist);
            int rc = cw_spawn(q, parker_poll, &p, sizeof p, NULL, &j);
            oom_off();
            if (n < 0) {
                sites = oom_attempts();
                ck_assert_int_eq(rc, 0);
            } else {
                ck_assert_int_ge(oom_failed(), 1);
            }
            if (rc == 0) {
                if (n >= 0 && !persist)
                    absorbed++;
                ck_assert_uint_eq(stats_of(env.ex).tasks_spawned, before.tasks_spawned + 1);
                for (int i = 0; i < 100 && !slot; i++)
                    tenv_turn(&env);
                ck_assert_ptr_nonnull(slot); /* it ran, and parked */
                wake_from_thread(slot);      /* the executor is idle */
                ck_assert_msg(run_ready(env.base, j) == 0,
                              "allocation %ld: a remote wake was lost", n);
                cw_join_free(j);
            } else {
                if (!persist)
                    reported++;
                ck_assert_msg(rc == -ENOMEM, "allocation %ld: %s", n, cw_strerror(rc));
                ck_assert_ptr_eq(j, (cw_join *)&j);
                struct cw_executor_stats after = stats_of(env.ex);
                ck_assert_uint_eq(after.tasks_spawned, before.tasks_spawned);
                ck_assert_uint_eq(after.tasks_live, before.tasks_live);
                ck_assert_int_eq(live(OWN_CW), blocks);
                for (int i = 0; i < 3; i++)
                    tenv_turn(&env);
                ck_assert_ptr_null(slot); /* never polled */
            }
            /* the executor goes on: spawns run, remote wakes arrive */
            assert_spawn_and_run_works(&env);
            assert_remote_wake_works(&env);
            tenv_free(&env);
            ck_assert_int_eq(live(OWN_CW), 0);
            ck_assert_int_eq(live(OWN_EV), 0);
            ck_assert_int_eq(open_fds(), fds);
        }
    ck_assert_int_ge(sites, 1);
    report_sites("cw_spawn (first on a fresh executor)", sites, reported, absorbed);
    ck_assert_int_ge(reported, 1); /* the task block's, at least */

    /* a later spawn, with the executor's events in place and no cached
     * block of its size: the task block only */
    tenv env;
    tenv_init(&env, one_queue(false), 1);
    assert_spawn_and_run_works(&env);
    int polls = 0;
    counter c = {&polls};
    char big[200] = {0}; /* another size class: not in the cache */
    memcpy(big, &c, sizeof c);
    oom_arm(-1, false);
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), counter_poll, big, sizeof big,
                              NULL, &j), 0);
    long later = oom_attempts();
    ck_assert_int_eq(later, 1);
    cw_join_free(j);
    tenv_turn(&env);
    for (int persist = 0; persist <= 1; persist++) {
        char bigger[300] = {0}; /* a third size class */
        memcpy(bigger, &c, sizeof c);
        cw_join *jj = (cw_join *)&jj;
        oom_arm(0, persist);
        ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), counter_poll, bigger,
                                  sizeof bigger, NULL, &jj), -ENOMEM);
        oom_off();
        ck_assert_ptr_eq(jj, (cw_join *)&jj);
    }
    report_sites("cw_spawn (later)", later, later, 0);
    assert_spawn_and_run_works(&env);
    tenv_free(&env);
    oom_end();
}
END_TEST

START_TEST(spawn_reuses_a_freed_block_without_allocating)
{
    oom_begin();
    tenv env;
    tenv_init(&env, one_queue(false), 1);
    assert_spawn_and_run_works(&env); /* its block is now cached */
    int polls = 0;
    counter c = {&polls};
    cw_join *j;
    oom_arm(0, true); /* any allocation would fail */
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), counter_poll, &c, sizeof c, NULL,
                              &j), 0);
    ck_assert_int_eq(run_ready(env.base, j), 0);
    cw_join_free(j);
    oom_off();
    ck_assert_int_eq(oom_attempts(), 0);
    ck_assert_int_eq(polls, 1);
    tenv_free(&env);
    oom_end();
}
END_TEST

/* ---- timers --------------------------------------------------------------- */

typedef struct sleeper {
    cw_sleep s;
    int polls;
    uint64_t done_at;
} sleeper;

static cw_poll sleeper_poll(void *state, cw_cx *cx)
{
    sleeper *z = state;
    z->polls++;
    if (cw_sleep_poll(&z->s, cx) == CW_PENDING)
        return CW_PENDING;
    z->done_at = cw_executor_now(cw_cx_executor(cx));
    return CW_READY;
}

static void sleeper_drop(void *state)
{
    cw_sleep_drop(&((sleeper *)state)->s);
}

/* The first sleep, and the 17th (the heap holds 16 before it doubles):
 * the insert cannot grow the heap, the task is polled again until it
 * can, the deadline set at the first poll does not move, and the task
 * completes once memory is back. */
START_TEST(sleep_poll_out_of_memory_never_loses_the_wake)
{
    enum { D = 1000 }; /* ns of the fake clock */
    static const int pending_before[] = {0, 16};

    oom_begin();
    for (size_t k = 0; k < sizeof pending_before / sizeof *pending_before; k++) {
        long sites = -1, retried = 0;
        for (int persist = 0; persist <= 1; persist++)
            for (long n = -1; n < 0 || n < sites; n++) {
                tenv env;
                tenv_init(&env, one_queue(false), 1);
                cw_queue *q = cw_executor_queue(env.ex, 0);
                cw_join *others[16];
                for (int i = 0; i < pending_before[k]; i++) {
                    sleeper z = {.polls = 0};
                    cw_sleep_init(&z.s, UINT64_MAX);
                    ck_assert_int_eq(cw_spawn(q, sleeper_poll, &z, sizeof z, sleeper_drop,
                                              &others[i]), 0);
                }
                tenv_turn(&env);
                ck_assert_uint_eq(env.ex->timers.n, (uint32_t)pending_before[k]);

                sleeper z = {.polls = 0};
                cw_sleep_init(&z.s, D);
                cw_join *j;
                ck_assert_int_eq(cw_spawn(q, sleeper_poll, &z, sizeof z, sleeper_drop, &j), 0);
                uint64_t t0 = env.clk.now;
                oom_arm(n, persist);
                tenv_turn(&env); /* its first polls */
                oom_off();
                if (n < 0)
                    sites = oom_attempts();
                else
                    ck_assert_int_ge(oom_failed(), 1);
                ck_assert_int_eq(cw_join_status(j), -EAGAIN);
                sleeper *zs = cw_join_state(j); /* NULL while running */
                ck_assert_ptr_null(zs);

                /* not before its deadline (t0 + D, from the first poll) */
                env.clk.now = t0 + D - 1;
                for (int i = 0; i < 3; i++)
                    tenv_turn(&env);
                ck_assert_int_eq(cw_join_status(j), -EAGAIN);
                env.clk.now = t0 + D;
                ck_assert_int_eq(cw_executor_run_until(env.ex, j), 0);
                zs = cw_join_state(j);
                ck_assert_uint_ge(zs->done_at, t0 + D);
                if (n >= 0) {
                    ck_assert_int_ge(zs->polls, 3); /* failed, retried, woke */
                    retried++;
                }
                cw_join_free(j);
                for (int i = 0; i < pending_before[k]; i++)
                    cw_join_free(others[i]);
                assert_spawn_and_run_works(&env);
                tenv_free(&env);
                ck_assert_int_eq(live(OWN_CW), 0);
                ck_assert_int_eq(live(OWN_EV), 0);
            }
        ck_assert_int_ge(sites, 1);
        report_sites(pending_before[k] ? "cw_sleep_poll (17th sleep)" : "cw_sleep_poll (first)",
                     sites, 0, retried / 2);
    }
    oom_end();
}
END_TEST

/* ---- fd waits ------------------------------------------------------------- */

typedef struct reader {
    cw_fdwait w;
    int fd;
    int polls;
    int got; /* 1: read its byte; -1: the wait failed; -2: read failed */
} reader;

static cw_poll reader_poll(void *state, cw_cx *cx)
{
    reader *r = state;
    r->polls++;
    for (;;) {
        char c;
        ssize_t k = read(r->fd, &c, 1);
        if (k == 1) {
            r->got = 1;
            return CW_READY;
        }
        if (k < 0 && errno == EAGAIN) {
            if (cw_fdwait_poll(&r->w, cx) == CW_PENDING)
                return CW_PENDING;
            if (!cw_fdwait_revents(&r->w)) {
                r->got = -1;
                return CW_READY;
            }
            continue;
        }
        r->got = -2;
        return CW_READY;
    }
}

static void reader_drop(void *state)
{
    cw_fdwait_drop(&((reader *)state)->w);
}

static void socket_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[1]), 0);
}

/* The first wait on an fd: the event, and what libevent needs to add it.
 * Each failure makes the task poll again (never a failed wait), and the
 * read completes once memory is back and the byte arrives. */
START_TEST(fdwait_poll_out_of_memory_retries_and_completes)
{
    oom_begin();
    int fds = open_fds();
    long sites = -1, retried = 0;

    for (int persist = 0; persist <= 1; persist++)
        for (long n = -1; n < 0 || n < sites; n++) {
            tenv env;
            tenv_init(&env, one_queue(false), 1);
            int sv[2];
            socket_pair(sv);
            reader r = {.fd = sv[0]};
            cw_fdwait_init(&r.w, sv[0], EV_READ);
            cw_join *j;
            ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), reader_poll, &r, sizeof r,
                                      reader_drop, &j), 0);
            oom_arm(n, persist);
            tenv_turn(&env); /* its first polls: nothing to read yet */
            oom_off();
            if (n < 0)
                sites = oom_attempts();
            else
                ck_assert_int_ge(oom_failed(), 1);
            ck_assert_int_eq(cw_join_status(j), -EAGAIN);

            ck_assert_int_eq(write(sv[1], "x", 1), 1);
            ck_assert_int_eq(run_ready(env.base, j), 0);
            reader *rs = cw_join_state(j);
            ck_assert_msg(rs->got == 1, "allocation %ld: the reader got %d", n, rs->got);
            if (n >= 0) {
                ck_assert_int_ge(rs->polls, 3); /* failed, retried, woke */
                retried++;
            }
            cw_join_free(j);
            assert_spawn_and_run_works(&env);
            tenv_free(&env);
            close(sv[0]);
            close(sv[1]);
            ck_assert_int_eq(live(OWN_CW), 0);
            ck_assert_int_eq(live(OWN_EV), 0);
            ck_assert_int_eq(open_fds(), fds);
        }
    ck_assert_int_ge(sites, 1);
    report_sites("cw_fdwait_poll (first wait on an fd)", sites, 0, retried / 2);
    oom_end();
}
END_TEST

/* ---- panics --------------------------------------------------------------- */

typedef struct boom {
    int *drops;
} boom;

static cw_poll boom_poll(void *state, cw_cx *cx)
{
    (void)state;
    cw_panic(cx, "boom %d", 42);
}

static void boom_drop(void *state)
{
    ++*((boom *)state)->drops;
}

START_TEST(panic_message_allocation_failure_still_ends_task_with_epanic)
{
    oom_begin();
    long sites = -1;
    for (int persist = 0; persist <= 1; persist++)
        for (long n = -1; n < 0 || n < sites; n++) {
            tenv env;
            tenv_init(&env, one_queue(true), 1);
            int drops = 0;
            boom b = {&drops};
            cw_join *j;
            ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), boom_poll, &b, sizeof b,
                                      boom_drop, &j), 0);
            oom_arm(n, persist);
            int rc = run_ready(env.base, j);
            oom_off();
            if (n < 0)
                sites = oom_attempts();
            else
                ck_assert_int_ge(oom_failed(), 1);
            ck_assert_int_eq(rc, CW_EPANIC);
            ck_assert_int_eq(cw_join_status(j), CW_EPANIC);
            ck_assert_int_eq(drops, 1);
            ck_assert_uint_eq(stats_of(env.ex).tasks_panicked, 1);
            ck_assert_str_eq(cw_join_panic_message(j),
                             n < 0 ? "boom 42" : "(panic message lost: out of memory)");
            cw_join_free(j);
            assert_spawn_and_run_works(&env);
            tenv_free(&env);
            ck_assert_int_eq(live(OWN_CW), 0);
            ck_assert_int_eq(live(OWN_EV), 0);
        }
    ck_assert_int_eq(sites, 1); /* the message */
    report_sites("cw_panic (catch_panics on)", sites, sites, 0);
    oom_end();
}
END_TEST

/* ---- wakers and the remote inbox: no allocation at all -------------------- */

typedef struct bouncer {
    cw_waker **slot;
    int polls;
} bouncer;

/* Poll 1: wakes itself by reference; poll 2: clones its waker and wakes
 * through the clone; poll 3: parks a clone in *slot; poll 4: ready. */
static cw_poll bouncer_poll(void *state, cw_cx *cx)
{
    bouncer *b = state;
    switch (++b->polls) {
    case 1:
        cw_waker_wake_by_ref(cw_cx_waker(cx));
        return CW_PENDING;
    case 2:
        cw_waker_wake(cw_waker_clone(cw_cx_waker(cx)));
        return CW_PENDING;
    case 3:
        *b->slot = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    default:
        return CW_READY;
    }
}

static void *remote_waker_thread(void *arg)
{
    const cw_waker *w = arg;
    for (int i = 0; i < 100; i++) {
        cw_waker *c = cw_waker_clone(w);
        cw_waker_wake_by_ref(c);
        cw_waker_wake_by_ref(w);
        cw_waker_wake(c);
    }
    return NULL;
}

START_TEST(waker_clone_wake_and_remote_inbox_make_no_allocation)
{
    oom_begin();
    tenv env;
    tenv_init(&env, one_queue(false), 1);
    cw_waker *slot = NULL;
    bouncer b = {&slot, 0};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 0), bouncer_poll, &b, sizeof b, NULL,
                              &j), 0);

    oom_arm(0, true); /* from here any allocation fails, and is counted */
    for (int i = 0; i < 100 && !slot; i++)
        tenv_turn(&env);
    ck_assert_ptr_nonnull(slot);
    ck_assert_int_eq(b.polls, 0); /* b is the spawner's copy */
    ck_assert_uint_eq(stats_of(env.ex).wakes_local, 2);

    /* the executor is idle: remote wakes go through the inbox and the fd */
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, remote_waker_thread, slot), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(run_ready(env.base, j), 0);
    ck_assert_uint_ge(stats_of(env.ex).wakes_remote, 1);
    cw_waker_free(slot);
    cw_join_free(j);
    oom_off();
    ck_assert_int_eq(oom_attempts(), 0);
    ck_assert_int_eq(oom_failed(), 0);
    tenv_free(&env);
    oom_end();
}
END_TEST

/* ---- a whole program's life ----------------------------------------------- */

/* What one life of the program observed, compared with the dry run. */
typedef struct life {
    long enomem;        /* API calls that reported out of memory */
    bool gave_up;       /* persist: an API call failed, the rest skipped */
    int counter_polls;
    int detached_polls;
    int reader_got;
    uint64_t sleep_done_at, sleep_deadline;
    int panic_status;
    bool panic_msg_lost;
    int parker_status;
    int boom_drops;
} life;

/* Build a config with six queues, an executor, six tasks (one detached) that
 * complete, sleep, wait for an fd, panic and wait for a remote wake; run
 * them (memory comes back after `turns` turns of the loop, the failure
 * mode still armed until then); free everything. An API call that reports
 * ENOMEM is called again in one-shot mode (the failure is spent: it must
 * then succeed) and ends the setup in persist mode. */
static void live_once(life *L, bool persist, int turns)
{
    enum { NQ = 6, D = 1000 };
    struct event_base *base = NULL;
    cw_config *cfg = NULL;
    cw_executor *ex = NULL;
    cw_join *jc = NULL, *jz = NULL, *jr = NULL, *jb = NULL, *jp = NULL;
    cw_waker *slot = NULL;
    fake_clock clk = {1000000000ull};
    const uint64_t t0 = clk.now;
    int sv[2];
    int rc;
    counter c = {&L->counter_polls}, d = {&L->detached_polls};
    sleeper z = {.polls = 0};
    reader r = {.polls = 0};
    boom b = {&L->boom_drops};
    parker p = {&slot, 0};

    memset(L, 0, sizeof *L);
    L->panic_status = L->parker_status = 1; /* "never ran" */
    socket_pair(sv);

#define RETRY(call)                                                       \
    do {                                                                  \
        rc = (call);                                                      \
        if (rc == -ENOMEM) {                                              \
            L->enomem++;                                                  \
            if (persist) {                                                \
                L->gave_up = true;                                        \
                goto run;                                                 \
            }                                                             \
            rc = (call);                                                  \
        }                                                                 \
        ck_assert_msg(rc == 0, "%s: %s", #call, cw_strerror(rc));         \
    } while (0)

    oom_pause(); /* the base is libevent's business, not under test */
    base = event_base_new();
    oom_resume();
    ck_assert_ptr_nonnull(base);

    cfg = cw_config_new();
    if (!cfg) {
        L->enomem++;
        if (persist) {
            L->gave_up = true;
            goto run;
        }
        cfg = cw_config_new();
        ck_assert_ptr_nonnull(cfg);
    }
    for (uint32_t id = 0; id < NQ; id++)
        RETRY(cw_config_add_queue(cfg, id, id + 1));
    cw_config_set_clock(cfg, fake_now, &clk);
    cw_config_set_catch_panics(cfg, true);
    RETRY(cw_executor_new(base, cfg, &ex));
    cw_config_free(cfg);
    cfg = NULL;

    RETRY(cw_spawn(cw_executor_queue(ex, 0), counter_poll, &c, sizeof c, NULL, &jc));
    /* absolute: under OOM a retrying task costs 0 ns of the fake clock,
     * so its queue may keep the round and poll the sleeper late */
    cw_sleep_init_until(&z.s, t0 + D);
    RETRY(cw_spawn(cw_executor_queue(ex, 1), sleeper_poll, &z, sizeof z, sleeper_drop, &jz));
    r.fd = sv[0];
    cw_fdwait_init(&r.w, sv[0], EV_READ);
    RETRY(cw_spawn(cw_executor_queue(ex, 2), reader_poll, &r, sizeof r, reader_drop, &jr));
    RETRY(cw_spawn(cw_executor_queue(ex, 3), boom_poll, &b, sizeof b, boom_drop, &jb));
    RETRY(cw_spawn(cw_executor_queue(ex, 4), counter_poll, &d, sizeof d, NULL, NULL));
    RETRY(cw_spawn(cw_executor_queue(ex, 5), parker_poll, &p, sizeof p, NULL, &jp));
#undef RETRY

run:
    if (ex) {
        for (int i = 0; i < turns; i++) {
            ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
            if (i == 0) {
                ck_assert_int_eq(write(sv[1], "x", 1), 1);
                clk.now += D;
            }
        }
        oom_off(); /* memory is back */
        /* every task spawned completes: no wake was lost */
        if (jc)
            ck_assert_int_eq(run_ready(base, jc), 0);
        if (jz) {
            ck_assert_int_eq(cw_executor_run_until(ex, jz), 0);
            L->sleep_done_at = ((sleeper *)cw_join_state(jz))->done_at;
            L->sleep_deadline = t0 + D;
        }
        if (jr) {
            ck_assert_int_eq(run_ready(base, jr), 0);
            L->reader_got = ((reader *)cw_join_state(jr))->got;
        }
        if (jb) {
            L->panic_status = run_ready(base, jb);
            const char *m = cw_join_panic_message(jb);
            ck_assert_ptr_nonnull(m);
            L->panic_msg_lost = strcmp(m, "boom 42") != 0;
            if (L->panic_msg_lost)
                ck_assert_str_eq(m, "(panic message lost: out of memory)");
        }
        if (jp) {
            for (int i = 0; i < 100 && !slot; i++)
                ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
            ck_assert_ptr_nonnull(slot);
            wake_from_thread(slot);
            L->parker_status = run_ready(base, jp);
        }
        /* drain the detached task too */
        for (int i = 0; i < 100 && stats_of(ex).tasks_live; i++)
            ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
        ck_assert_uint_eq(stats_of(ex).tasks_live, 0);
    }
    oom_off();
    cw_join_free(jc);
    cw_join_free(jz);
    cw_join_free(jr);
    cw_join_free(jb);
    cw_join_free(jp);
    cw_executor_free(ex);
    cw_config_free(cfg);
    event_base_free(base);
    close(sv[0]);
    close(sv[1]);
}

START_TEST(lifecycle_fails_cleanly_at_every_allocation)
{
    oom_begin();
    int fds = open_fds();
    life dry, L;

    oom_arm(-1, false);
    live_once(&dry, false, 3);
    long sites = oom_attempts();
    ck_assert_int_eq(dry.enomem, 0);
    ck_assert_int_eq(dry.counter_polls, 1);
    ck_assert_int_eq(dry.detached_polls, 1);
    ck_assert_int_eq(dry.reader_got, 1);
    ck_assert_uint_ge(dry.sleep_done_at, dry.sleep_deadline);
    ck_assert_int_eq(dry.panic_status, CW_EPANIC);
    ck_assert(!dry.panic_msg_lost);
    ck_assert_int_eq(dry.boom_drops, 1);
    ck_assert_int_eq(dry.parker_status, 0);
    ck_assert_int_eq(live(OWN_CW), 0);
    ck_assert_int_eq(live(OWN_EV), 0);

    long reported = 0;
    for (long n = 0; n < sites; n++) {
        /* one failure: every call and task still does its whole job */
        oom_arm(n, false);
        live_once(&L, false, 3);
        ck_assert_int_eq(oom_failed(), 1);
        ck_assert_int_le(L.enomem, 1);
        reported += L.enomem;
        ck_assert_int_eq(L.counter_polls, 1);
        ck_assert_int_eq(L.detached_polls, 1);
        ck_assert_int_eq(L.reader_got, 1);
        ck_assert_uint_ge(L.sleep_done_at, L.sleep_deadline);
        ck_assert_int_eq(L.panic_status, CW_EPANIC);
        ck_assert_int_eq(L.boom_drops, 1);
        ck_assert_int_eq(L.parker_status, 0);
        ck_assert_int_eq(live(OWN_CW), 0);
        ck_assert_int_eq(live(OWN_EV), 0);
        ck_assert_int_eq(open_fds(), fds);

        /* that failure and every later one, until memory comes back
         * after a few turns of the loop */
        oom_arm(n, true);
        live_once(&L, true, 5);
        ck_assert_int_ge(oom_failed(), 1);
        ck_assert_int_le(L.enomem, 1);
        ck_assert(L.gave_up == (L.enomem == 1));
        if (L.counter_polls) /* what was spawned ran */
            ck_assert_int_eq(L.counter_polls, 1);
        if (L.reader_got)
            ck_assert_int_eq(L.reader_got, 1);
        if (L.panic_status != 1) {
            ck_assert_int_eq(L.panic_status, CW_EPANIC);
            ck_assert_int_eq(L.boom_drops, 1);
        }
        if (L.parker_status != 1)
            ck_assert_int_eq(L.parker_status, 0);
        ck_assert_int_eq(live(OWN_CW), 0);
        ck_assert_int_eq(live(OWN_EV), 0);
        ck_assert_int_eq(open_fds(), fds);
    }
    report_sites("whole life (config .. free)", sites, reported, sites - reported);
    oom_end();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("oom");
    tcase_add_test(tc, set_allocator_rejects_a_partial_set_with_einval_and_keeps_the_allocator);
    tcase_add_test(tc, set_allocator_is_ebusy_while_a_config_executor_or_task_block_lives);
    tcase_add_test(tc, config_new_returns_null_at_every_allocation_and_leaks_nothing);
    tcase_add_test(tc, config_add_queue_growth_fails_with_enomem_and_leaves_config_unchanged);
    tcase_add_test(tc, executor_new_fails_cleanly_at_every_allocation);
    tcase_add_test(tc, executor_new_with_a_stall_watchdog_fails_cleanly_at_every_allocation);
    tcase_add_test(tc, dump_tasks_out_of_memory_writes_nothing);
    tcase_add_test(tc, spawn_fails_cleanly_at_every_allocation_and_executor_stays_usable);
    tcase_add_test(tc, spawn_reuses_a_freed_block_without_allocating);
    tcase_add_test(tc, sleep_poll_out_of_memory_never_loses_the_wake);
    tcase_add_test(tc, fdwait_poll_out_of_memory_retries_and_completes);
    tcase_add_test(tc, panic_message_allocation_failure_still_ends_task_with_epanic);
    tcase_add_test(tc, waker_clone_wake_and_remote_inbox_make_no_allocation);
    tcase_add_test(tc, lifecycle_fails_cleanly_at_every_allocation);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Before any libevent object exists, in this process and (CK_FORK)
     * in every child: libevent allocates through the test allocator. */
    event_set_mem_functions(ev_test_malloc, ev_test_realloc, ev_test_free);
    return run_suite(suite());
}
