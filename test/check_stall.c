/* check_stall.c - the stall detector and its watchdog
 * (cw_config_set_stall_threshold(), _watchdog(), _log(); clockworker/stats.h).
 *
 * The detector's tests run on the fake clock: a poll advances env->clk.now
 * by its invented cost, so a "long" poll is exact and instant, and every
 * report, count and hook argument is known in advance. The watchdog is a
 * real thread on the real clock: its test blocks a poll in poll(2) on a
 * pipe that a second thread writes only once the watchdog's report has
 * appeared in the log, so the test waits for the report, not for a time
 * (its only bound is a generous guard against a hang).
 *
 * The poll functions are exported (and this program linked with
 * -rdynamic) so that dladdr(3) names them in the reports; one is static,
 * to see the OBJECT+0xOFFSET fallback.
 */
#define _GNU_SOURCE /* dladdr, open_memstream */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define US 1000ull
#define MS 1000000ull

/* ---- the stall hook's recorder ------------------------------------------ */

#define MAXEV 32
static char g_ev[MAXEV][160];
static int g_nev;
static fake_clock *g_clk;
static int g_marker; /* the hooks' arg */
static void *g_stack[64]; /* the last stack the stall hook got */
static int g_depth;

CW_PRINTF(1, 2)
static void rec(const char *fmt, ...)
{
    ck_assert_int_lt(g_nev, MAXEV);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_ev[g_nev++], sizeof g_ev[0], fmt, ap);
    va_end(ap);
}

/* A task is named by the string its state starts with. */
static const char *name_of(void *state)
{
    return *(const char *const *)state;
}

static void h_poll_end(void *arg, cw_queue *q, void *state, uint64_t ns, int result)
{
    ck_assert_ptr_eq(arg, &g_marker);
    (void)result;
    rec("poll_end q%u %s %" PRIu64, cw_queue_id(q), name_of(state), ns);
}

static void h_stall(void *arg, cw_queue *q, void *state, uint64_t ns, void *const *stack,
                    int depth)
{
    ck_assert_ptr_eq(arg, &g_marker);
    rec("stall q%u %s %" PRIu64 " %s %d", cw_queue_id(q), name_of(state), ns,
        stack ? "stack" : "NULL", depth);
    ck_assert_int_le(depth, 64);
    g_depth = depth;
    if (depth > 0)
        memcpy(g_stack, stack, (size_t)depth * sizeof *stack);
}

static const cw_hooks hooks = {.poll_end = h_poll_end, .stall = h_stall};

static void expect_events(const char *const *want)
{
    int n = 0;
    for (; want[n]; n++) {
        ck_assert_msg(n < g_nev, "event %d: missing, want \"%s\"", n, want[n]);
        ck_assert_msg(strcmp(g_ev[n], want[n]) == 0, "event %d: \"%s\", want \"%s\"", n,
                      g_ev[n], want[n]);
    }
    ck_assert_msg(g_nev == n, "%d events, want %d; event %d is \"%s\"", g_nev, n, n,
                  g_nev > n ? g_ev[n] : "");
    g_nev = 0;
}
#define EXPECT_EVENTS(...) expect_events((const char *const[]){__VA_ARGS__, NULL})

/* ---- scripted tasks --------------------------------------------------------- */

/* Polls cost cost[0], cost[1], ... (ns of the fake clock); READY after the
 * last (cost 0 ends the list). */
typedef struct stepper {
    const char *name;
    uint64_t cost[4];
    int n;
} stepper;

/* exported: dladdr names it */
cw_poll stall_step_poll(void *state, cw_cx *cx);
cw_poll stall_step_poll(void *state, cw_cx *cx)
{
    stepper *s = state;
    g_clk->now += s->cost[s->n++];
    if (s->n == 4 || !s->cost[s->n])
        return CW_READY;
    cw_waker_wake_by_ref(cw_cx_waker(cx));
    return CW_PENDING;
}

/* The same, static: not in the dynamic symbol table. */
static cw_poll static_step_poll(void *state, cw_cx *cx)
{
    return stall_step_poll(state, cx);
}

static cw_config *config_two_queues(void)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 1), 0);
    return cfg;
}

static void setup(tenv *env, cw_config *cfg)
{
    g_nev = 0;
    g_depth = 0;
    ck_assert_int_eq(cw_config_set_hooks(cfg, &hooks, &g_marker), 0);
    tenv_init(env, cfg, 1);
    g_clk = &env->clk;
}

static void spawn_on(tenv *env, uint32_t qid, cw_poll_fn poll, stepper s)
{
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, qid), poll, &s, sizeof s, NULL, NULL),
                     0);
}

/* Run until every task has ended. */
static void run_all(tenv *env)
{
    for (int i = 0; i < 100 && stats_of(env->ex).tasks_live; i++)
        tenv_turn(env);
    ck_assert_uint_eq(stats_of(env->ex).tasks_live, 0);
}

/* What a FILE opened by open_memstream() holds now. */
static const char *mem_text(FILE *f, char **buf)
{
    ck_assert_int_eq(fflush(f), 0);
    return *buf ? *buf : "";
}

/* A regular expression (extended) matches the whole of s. */
static bool matches(const char *re, const char *s)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

/* ---- config ------------------------------------------------------------------ */

START_TEST(stall_setters_reject_bad_input_and_leave_the_config_unchanged)
{
    ck_assert_int_eq(cw_config_set_stall_threshold(NULL, MS), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_watchdog(NULL, true), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_watchdog(NULL, false), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_log(NULL, stderr), -EINVAL);

    cw_config *cfg = config_two_queues();
    /* the watchdog needs a threshold of at least 1 ms first */
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS - 1), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), 0);
    /* and then keeps it there */
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 0), -EINVAL);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS - 1), -EINVAL);
    /* unchanged: still 1 ms, watchdog on (the executor starts one) */
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, log), 0);
    tenv env;
    setup(&env, cfg);
    ck_assert_ptr_nonnull(env.ex->wd);
    spawn_on(&env, 1, stall_step_poll, (stepper){"a", {MS + 1}, 0});
    run_all(&env);
    ck_assert_uint_eq(stats_of(env.ex).stalls, 1);
    EXPECT_EVENTS("poll_end q1 a 1000001", "stall q1 a 1000001 NULL 0");
    tenv_free(&env);
    fclose(log);
    free(buf);

    /* off again: the watchdog first, then the threshold */
    cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, MS), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, false), 0);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 0), 0);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, NULL), 0);
    setup(&env, cfg);
    ck_assert_ptr_null(env.ex->wd);
    spawn_on(&env, 1, stall_step_poll, (stepper){"a", {1000 * MS}, 0});
    run_all(&env);
    ck_assert_uint_eq(stats_of(env.ex).stalls, 0);
    EXPECT_EVENTS("poll_end q1 a 1000000000");
    tenv_free(&env);
}
END_TEST

/* ---- after the poll (fake clock) ------------------------------------------------ */

/* Threshold 10 ms. a (q1): polls of 5, 10 and 15 ms; b (q2): one of 30
 * ms. Longer than the threshold, not equal: a's third poll and b's. */
START_TEST(polls_longer_than_the_threshold_are_counted_hooked_and_logged)
{
    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 10 * MS), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, log), 0);
    tenv env;
    setup(&env, cfg);
    spawn_on(&env, 1, stall_step_poll, (stepper){"a", {5 * MS, 10 * MS, 15 * MS}, 0});
    run_all(&env);
    EXPECT_EVENTS("poll_end q1 a 5000000", "poll_end q1 a 10000000", "poll_end q1 a 15000000",
                  "stall q1 a 15000000 NULL 0");
    spawn_on(&env, 2, stall_step_poll, (stepper){"b", {30 * MS}, 0});
    run_all(&env);
    EXPECT_EVENTS("poll_end q2 b 30000000", "stall q2 b 30000000 NULL 0");

    struct cw_executor_stats s = stats_of(env.ex);
    ck_assert_uint_eq(s.stalls, 2);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 1), &qs), 0);
    ck_assert_uint_eq(qs.stalls, 1);
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 2), &qs), 0);
    ck_assert_uint_eq(qs.stalls, 1);

    /* one line per stall, each naming queue, task, function, times */
    const char *text = mem_text(log, &buf);
    const char *re = "^clockworker: stall: queue 1, task 0x[0-9a-f]+, poll stall_step_poll: "
                     "ran 15\\.000 ms \\(threshold 10\\.000 ms\\)\n"
                     "clockworker: stall: queue 2, task 0x[0-9a-f]+, poll stall_step_poll: "
                     "ran 30\\.000 ms \\(threshold 10\\.000 ms\\)\n$";
    ck_assert_msg(matches(re, text), "log:\n%s", text);

    /* the stats report has the counters too */
    char *dump = NULL;
    size_t dlen = 0;
    FILE *f = open_memstream(&dump, &dlen);
    ck_assert_int_eq(cw_executor_dump_stats(env.ex, f), 0);
    fclose(f);
    ck_assert_msg(strstr(dump, "executor\n") && strstr(dump, "  stalls                 2\n"),
                  "%s", dump);
    ck_assert_ptr_nonnull(strstr(strstr(dump, "queue 1\n"), "  stalls                 1\n"));
    free(dump);
    tenv_free(&env);
    fclose(log);
    free(buf);
}
END_TEST

START_TEST(the_task_in_the_report_is_its_state_pointer)
{
    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 1 * MS), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, log), 0);
    tenv env;
    setup(&env, cfg);
    stepper s = {"a", {2 * MS, 1}, 0};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 1), stall_step_poll, &s, sizeof s, NULL,
                              &j),
                     0);
    run_all(&env);
    char want[128];
    snprintf(want, sizeof want, "task %p, poll", cw_join_state(j));
    ck_assert_msg(strstr(mem_text(log, &buf), want), "want \"%s\" in:\n%s", want, buf);
    cw_join_free(j);
    tenv_free(&env);
    fclose(log);
    free(buf);
}
END_TEST

START_TEST(a_null_log_writes_nothing_but_counts_and_hooks)
{
    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 1 * MS), 0);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, NULL), 0);
    /* stderr into a file for the test's length: nothing may reach it */
    FILE *err = tmpfile();
    ck_assert_ptr_nonnull(err);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(err), 2), 2);
    tenv env;
    setup(&env, cfg);
    spawn_on(&env, 1, stall_step_poll, (stepper){"a", {3 * MS}, 0});
    run_all(&env);
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    EXPECT_EVENTS("poll_end q1 a 3000000", "stall q1 a 3000000 NULL 0");
    ck_assert_uint_eq(stats_of(env.ex).stalls, 1);
    ck_assert_int_eq(fseek(err, 0, SEEK_END), 0);
    ck_assert_int_eq(ftell(err), 0);
    fclose(err);
    tenv_free(&env);
}
END_TEST

/* Off by default: no count, no hook, no line (stderr is the default log),
 * and the executor runs the lean poll loop, as before the detector. */
START_TEST(off_by_default_nothing_is_reported_and_the_loop_stays_lean)
{
    cw_config *cfg = config_two_queues();
    tenv env;
    tenv_init(&env, cfg, 1);
    g_clk = &env.clk;
    ck_assert(env.ex->plain);
    ck_assert_uint_eq(env.ex->stall_ns, UINT64_MAX);
    tenv_free(&env);

    cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, MS), 0);
    tenv_init(&env, cfg, 1);
    ck_assert(!env.ex->plain);
    tenv_free(&env);

    cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, MS), 0);
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 0), 0);
    tenv_init(&env, cfg, 1);
    ck_assert(env.ex->plain);
    tenv_free(&env);

    /* with hooks (not lean): still nothing */
    FILE *err = tmpfile();
    ck_assert_ptr_nonnull(err);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_eq(dup2(fileno(err), 2), 2);
    setup(&env, config_two_queues());
    spawn_on(&env, 1, stall_step_poll, (stepper){"a", {3600 * 1000 * MS}, 0});
    run_all(&env);
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    EXPECT_EVENTS("poll_end q1 a 3600000000000");
    ck_assert_uint_eq(stats_of(env.ex).stalls, 0);
    ck_assert_int_eq(fseek(err, 0, SEEK_END), 0);
    ck_assert_int_eq(ftell(err), 0);
    fclose(err);
    tenv_free(&env);
}
END_TEST

/* A poll function dladdr() finds no exported symbol for is named
 * OBJECT+0xOFFSET: the object's base name and the offset from its load
 * address (what addr2line takes). */
START_TEST(a_static_poll_function_is_named_by_object_and_offset)
{
    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, 1 * MS), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, log), 0);
    tenv env;
    setup(&env, cfg);
    spawn_on(&env, 1, static_step_poll, (stepper){"a", {2 * MS}, 0});
    run_all(&env);

    Dl_info di;
    ck_assert(dladdr((void *)(uintptr_t)static_step_poll, &di));
    ck_assert_ptr_nonnull(di.dli_fname);
    const char *base = strrchr(di.dli_fname, '/');
    base = base ? base + 1 : di.dli_fname;
    char want[256];
    snprintf(want, sizeof want, ", poll %s+0x%" PRIxPTR ": ran 2.000 ms", base,
             (uintptr_t)static_step_poll - (uintptr_t)di.dli_fbase);
    ck_assert_msg(strstr(mem_text(log, &buf), want), "want \"%s\" in:\n%s", want, buf);

    /* an address in no object: its hex */
    char name[64];
    ck_assert_str_eq(cw__fn_name((const void *)(uintptr_t)0x10, name, sizeof name), "0x10");
    /* the exported one by its symbol, and inside it by symbol+offset */
    ck_assert_str_eq(cw__fn_name((const void *)(uintptr_t)stall_step_poll, name, sizeof name),
                     "stall_step_poll");
    ck_assert_str_eq(cw__fn_name((const char *)(uintptr_t)stall_step_poll + 3, name, sizeof name),
                     "stall_step_poll+0x3");
    tenv_free(&env);
    fclose(log);
    free(buf);
}
END_TEST

/* ---- the watchdog (a real thread, the real clock) ------------------------------ */

static int g_block[2]; /* the blocked poll reads g_block[0] */

/* exported, never inlined: the stack names it */
__attribute__((noinline)) void stall_blocked_in_wait(void);
__attribute__((noinline)) void stall_blocked_in_wait(void)
{
    /* poll(2), which the watchdog's signal interrupts (EINTR: wait again),
     * then read(2) */
    struct pollfd p = {.fd = g_block[0], .events = POLLIN};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    char c;
    ck_assert_int_eq(read(g_block[0], &c, 1), 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

typedef struct blocker {
    const char *name;
} blocker;

cw_poll stall_blocking_poll(void *state, cw_cx *cx);
cw_poll stall_blocking_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    stall_blocked_in_wait();
    return CW_READY;
}

/* The log's reader: collects what the executor side writes into the
 * log pipe; once the watchdog's report (through its last stack line)
 * is there, releases the blocked poll. */
struct reader {
    int fd;
    char text[64 * 1024];
    size_t len;
    bool released;
};

static void release_poll(struct reader *r)
{
    char c = 1;
    r->released = true;
    ck_assert_int_eq(write(g_block[1], &c, 1), 1);
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    int64_t deadline = test_now_ms() + 60000; /* a hang guard only */
    for (;;) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 100) == 0) {
            if (!r->released && test_now_ms() > deadline)
                release_poll(r); /* never reported: the test fails */
            continue;
        }
        ssize_t n = read(r->fd, r->text + r->len, sizeof r->text - 1 - r->len);
        if (n <= 0)
            break;
        r->len += (size_t)n;
        r->text[r->len] = '\0';
        const char *rep = strstr(r->text, ": running for ");
        if (!r->released && rep && strstr(rep, "(stall_blocking_poll+0x"))
            release_poll(r);
    }
    return NULL;
}

START_TEST(watchdog_reports_the_stack_of_a_poll_stuck_in_a_wait_while_it_runs)
{
    int logp[2];
    ck_assert_int_eq(pipe(g_block), 0);
    ck_assert_int_eq(pipe(logp), 0);
    FILE *log = fdopen(logp[1], "w");
    ck_assert_ptr_nonnull(log);
    struct reader *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->fd = logp[0];
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, r), 0);

    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), 0);
    ck_assert_int_eq(cw_config_set_stall_log(cfg, log), 0);
    ck_assert_int_eq(cw_config_set_hooks(cfg, &hooks, &g_marker), 0);
    g_nev = 0;
    g_depth = 0;
    tenv env;
    tenv_init(&env, cfg, 0); /* the real clock */
    blocker b = {"blocked"};
    cw_join *j;
    /* Nothing runs yet: the watchdog goes to sleep (a hang guard only),
     * and the poll's start must wake it. */
    int64_t guard = test_now_ms() + 60000;
    while (!cw__watchdog_parked(env.ex) && test_now_ms() < guard)
        usleep(1000);
    ck_assert(cw__watchdog_parked(env.ex));
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env.ex, 2), stall_blocking_poll, &b, sizeof b,
                              NULL, &j),
                     0);
    void *state = NULL;
    for (int i = 0; i < 100 && cw_join_status(j) == -EAGAIN; i++)
        tenv_turn(&env);
    ck_assert_int_eq(cw_join_status(j), 0);
    state = cw_join_state(j);
    ck_assert_msg(r->released && strstr(r->text, ": running for "), "log:\n%s", r->text);
    ck_assert_uint_eq(stats_of(env.ex).stalls, 1);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(cw_executor_queue(env.ex, 2), &qs), 0);
    ck_assert_uint_eq(qs.stalls, 1);
    tenv_free(&env); /* stops the watchdog */
    fclose(log);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    close(logp[0]);
    close(g_block[0]);
    close(g_block[1]);

    /* the watchdog's report, while the poll ran: queue, task, function,
     * at least the threshold, then the stack from the kernel's
     * trampoline through poll() to the function the poll is stuck in */
    const char *t = r->text;
    char head[128];
    snprintf(head, sizeof head, "clockworker: stall: queue 2, task %p, poll stall_blocking_poll: "
                                "running for ", state);
    ck_assert_msg(strncmp(t, head, strlen(head)) == 0, "log:\n%s", t);
    unsigned ms, frac;
    ck_assert_int_eq(sscanf(t + strlen(head), "%u.%3u ms (threshold 1.000 ms), stack:\n", &ms,
                            &frac),
                     2);
    ck_assert_uint_ge(ms, 1);
    const char *stack = strstr(t, "stack:\n") + 7;
    ck_assert(matches("^  #0 .*\n  #1 ", stack));
    const char *in_read = strstr(stack, "(stall_blocked_in_wait+0x");
    const char *in_poll = strstr(stack, "(stall_blocking_poll+0x");
    ck_assert_msg(in_read && in_poll && in_read < in_poll, "stack:\n%s", stack);
    /* then the line of the poll's end, on the executor clock */
    const char *end = strstr(stack, "\nclockworker: stall: queue 2, task ");
    ck_assert_msg(end, "log:\n%s", t);
    ck_assert(matches("^\nclockworker: stall: queue 2, task 0x[0-9a-f]+, poll "
                      "stall_blocking_poll: ran [0-9]+\\.[0-9]{3} ms \\(threshold 1\\.000 ms\\)\n$",
                      end));

    /* the hook got the same stack: a frame inside stall_blocked_in_wait */
    ck_assert_int_eq(g_nev, 2);
    ck_assert_msg(strncmp(g_ev[1], "stall q2 blocked ", 17) == 0, "%s", g_ev[1]);
    ck_assert_msg(strstr(g_ev[1], " stack "), "%s", g_ev[1]);
    ck_assert_int_gt(g_depth, 2);
    bool found = false;
    for (int i = 0; i < g_depth; i++) {
        Dl_info di;
        if (dladdr(g_stack[i], &di) && di.dli_sname
            && strcmp(di.dli_sname, "stall_blocked_in_wait") == 0)
            found = true;
    }
    ck_assert(found);
    /* the library's signal handler is left out: the first frame is the
     * trampoline the kernel returns through (libc's, or valgrind's),
     * not code of this program (which holds the handler, linked in) */
    Dl_info first, self;
    ck_assert(dladdr((void *)(uintptr_t)stall_blocking_poll, &self));
    ck_assert_msg(!dladdr(g_stack[0], &first) || first.dli_fbase != self.dli_fbase,
                  "frame #0 %p is in %s", g_stack[0], first.dli_fname);
    cw_join_free(j);
    free(r);
}
END_TEST

static void other_handler(int sig)
{
    (void)sig;
}

/* The program handles SIGRTMAX - 1 itself: no watchdog, -EBUSY, nothing
 * made; its handler is left in place. */
START_TEST(watchdog_refuses_a_signal_the_program_handles)
{
    struct sigaction sa, old, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = other_handler;
    ck_assert_int_eq(sigaction(SIGRTMAX - 1, &sa, &old), 0);

    cw_config *cfg = config_two_queues();
    ck_assert_int_eq(cw_config_set_stall_threshold(cfg, CW_STALL_WATCHDOG_MIN_NS), 0);
    ck_assert_int_eq(cw_config_set_stall_watchdog(cfg, true), 0);
    struct event_base *base = event_base_new();
    cw_executor *ex = (cw_executor *)&ex;
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), -EBUSY);
    ck_assert_ptr_null(ex);
    ck_assert_int_eq(sigaction(SIGRTMAX - 1, NULL, &now), 0);
    ck_assert(now.sa_handler == other_handler);
    ck_assert_str_eq(cw_strerror(-EBUSY),
                     "busy (executor inside a task, already awaited, or signal in use)");

    /* the default disposition back: the library installs its own */
    ck_assert_int_eq(sigaction(SIGRTMAX - 1, &old, NULL), 0);
    sa.sa_handler = SIG_DFL;
    ck_assert_int_eq(sigaction(SIGRTMAX - 1, &sa, NULL), 0);
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    ck_assert_int_eq(sigaction(SIGRTMAX - 1, NULL, &now), 0);
    ck_assert(now.sa_handler != SIG_DFL && now.sa_handler != other_handler);
    /* a stray signal (not a request) does nothing */
    ck_assert_int_eq(raise(SIGRTMAX - 1), 0);
    cw_executor_free(ex);
    cw_config_free(cfg);
    event_base_free(base);
}
END_TEST

static Suite *stall_suite(void)
{
    Suite *s = suite_create("stall");
    TCase *c = tcase_create("config");
    tcase_add_test(c, stall_setters_reject_bad_input_and_leave_the_config_unchanged);
    suite_add_tcase(s, c);

    TCase *d = tcase_create("detector");
    tcase_add_test(d, polls_longer_than_the_threshold_are_counted_hooked_and_logged);
    tcase_add_test(d, the_task_in_the_report_is_its_state_pointer);
    tcase_add_test(d, a_null_log_writes_nothing_but_counts_and_hooks);
    tcase_add_test(d, off_by_default_nothing_is_reported_and_the_loop_stays_lean);
    tcase_add_test(d, a_static_poll_function_is_named_by_object_and_offset);
    suite_add_tcase(s, d);

    TCase *w = tcase_create("watchdog");
    tcase_set_timeout(w, 120);
    tcase_add_test(w, watchdog_reports_the_stack_of_a_poll_stuck_in_a_wait_while_it_runs);
    if (tdrv_is_libevent()) /* builds its executor on a base directly */
        tcase_add_test(w, watchdog_refuses_a_signal_the_program_handles);
    suite_add_tcase(s, w);
    return s;
}

int main(void)
{
    return run_suite(stall_suite());
}
