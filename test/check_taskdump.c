/* check_taskdump.c - cw_executor_dump_tasks() and the task accounting
 * (cw_config_set_task_accounting(); clockworker/stats.h documents the
 * format).
 *
 * A parser below reads the dump back by the documented format (title,
 * column heads, one line per task of 8 fields and an optional NO-WAKE),
 * failing on any line that does not follow it. The tests put known tasks
 * in known states (waiting on a sleep, on an fd, on both, on a join
 * handle, on a waker the program holds, on nothing; runnable; woken from
 * another thread; aborted; running: the task that dumps) and check each
 * field of each task's line. They run on the fake clock, and every task
 * records what it knows (when it was spawned, its polls, each poll's
 * invented cost, the clock when its poll returns, which is the reading
 * the executor takes after it), so the ages and times the dump must show
 * are worked out from those records, not copied from a run.
 */
#define _GNU_SOURCE /* open_memstream */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clockworker/sync.h"
#include "internal.h"
#include "testutil.h"

#define US 1000ull
#define MS 1000000ull

/* ---- the parser ------------------------------------------------------------ */

typedef struct row {
    uintptr_t task;
    uint32_t queue;
    char state[40];
    char age[32], polls[24], cpu[32], since[32];
    char poll[128];
    bool nowake;
} row;

#define MAXROWS 32
typedef struct dump {
    uint64_t live;
    bool acct;
    int nrows;
    row rows[MAXROWS];
} dump;

static bool full_match(const char *re, const char *s)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

/* A time field: "-" or microseconds with exactly three decimals. */
static void check_time_field(const char *f, const char *line)
{
    ck_assert_msg(!strcmp(f, "-") || full_match("^[0-9]+\\.[0-9]{3}$", f), "time \"%s\" in: %s",
                  f, line);
}

static void copy_field(char *dst, size_t n, const char *src, const char *line)
{
    ck_assert_msg(strlen(src) < n, "field too long in: %s", line);
    strcpy(dst, src);
}

/* Parse a whole dump; fail the test at the first departure from the
 * documented format. */
static void parse_dump(const char *text, dump *d)
{
    memset(d, 0, sizeof *d);
    char *copy = strdup(text);
    ck_assert_ptr_nonnull(copy);
    ck_assert_msg(strlen(text) > 0 && text[strlen(text) - 1] == '\n', "not whole lines:\n%s",
                  text);
    char *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    ck_assert_ptr_nonnull(line);
    /* title */
    char acct[8], extra;
    unsigned long long live;
    ck_assert_msg(sscanf(line, "clockworker tasks: %llu live, accounting %7s%c", &live, acct,
                         &extra) == 2,
                  "title: %s", line);
    ck_assert_msg(!strcmp(acct, "on") || !strcmp(acct, "off"), "title: %s", line);
    char again[96];
    snprintf(again, sizeof again, "clockworker tasks: %llu live, accounting %s", live, acct);
    ck_assert_str_eq(line, again);
    d->live = live;
    d->acct = !strcmp(acct, "on");
    /* column heads */
    line = strtok_r(NULL, "\n", &save);
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(full_match("^  task +queue +state +age_us +polls +cpu_us +since_us +poll$", line),
                  "heads: \"%s\"", line);
    /* tasks */
    while ((line = strtok_r(NULL, "\n", &save))) {
        ck_assert_msg(strncmp(line, "  0x", 4) == 0, "task line: %s", line);
        ck_assert_int_lt(d->nrows, MAXROWS);
        row *r = &d->rows[d->nrows++];
        char *f[10];
        int nf = 0;
        char *s2 = NULL;
        char *lc = strdup(line);
        for (char *t = strtok_r(lc, " ", &s2); t; t = strtok_r(NULL, " ", &s2)) {
            ck_assert_msg(nf < 10, "too many fields: %s", line);
            f[nf++] = t;
        }
        ck_assert_msg(nf == 8 || (nf == 9 && !strcmp(f[8], "NO-WAKE")), "fields: %s", line);
        char *end;
        r->task = (uintptr_t)strtoull(f[0] + 2, &end, 16);
        ck_assert_msg(*end == '\0' && end > f[0] + 2, "task: %s", line);
        unsigned long q = strtoul(f[1], &end, 10);
        ck_assert_msg(*end == '\0', "queue: %s", line);
        r->queue = (uint32_t)q;
        copy_field(r->state, sizeof r->state, f[2], line);
        ck_assert_msg(full_match("^(running|runnable|woken|cancelling|waiting:(none|other|"
                                 "sleep(\\+fd)?(\\+join)?|fd(\\+join)?|join))$",
                                 r->state),
                      "state: %s", line);
        copy_field(r->age, sizeof r->age, f[3], line);
        copy_field(r->polls, sizeof r->polls, f[4], line);
        copy_field(r->cpu, sizeof r->cpu, f[5], line);
        copy_field(r->since, sizeof r->since, f[6], line);
        copy_field(r->poll, sizeof r->poll, f[7], line);
        check_time_field(r->age, line);
        check_time_field(r->cpu, line);
        check_time_field(r->since, line);
        ck_assert_msg(!strcmp(r->polls, "-") || full_match("^[0-9]+$", r->polls), "polls: %s",
                      line);
        r->nowake = nf == 9;
        /* the flag goes with waiting:none, and only there */
        ck_assert_msg(r->nowake == !strcmp(r->state, "waiting:none"), "flag: %s", line);
        free(lc);
    }
    ck_assert_uint_eq((uint64_t)d->nrows, d->live);
    free(copy);
}

static uint64_t ns_of(const char *us)
{
    unsigned long long i;
    unsigned f;
    ck_assert_msg(sscanf(us, "%llu.%3u", &i, &f) == 2, "time \"%s\"", us);
    return i * 1000 + f;
}

static const row *find_row(const dump *d, const void *state)
{
    for (int i = 0; i < d->nrows; i++)
        if (d->rows[i].task == (uintptr_t)state)
            return &d->rows[i];
    return NULL;
}

/* Dump ex into d (through a memory stream). */
static void take_dump(const cw_executor *ex, dump *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cw_executor_dump_tasks(ex, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    parse_dump(buf, d);
    free(buf);
}

/* ---- known tasks ------------------------------------------------------------ */

enum kind { SLEEPER, SELECTER, READER, JOINER, PARKER, LOST, DUMPER };

/* What a task knows of itself; the dump must agree. */
typedef struct info {
    void *state;
    uint64_t spawned;  /* clock at its spawn (the test's record) */
    uint64_t polls;
    uint64_t cpu;
    uint64_t last_end; /* clock when its last poll returned */
} info;

#define NTASKS 16
static info g_info[NTASKS];
static cw_waker *g_park[NTASKS];
static fake_clock *g_clk;
static int g_fd[2];
static const cw_executor *g_ex;
static dump g_inside;     /* what the dumper saw */
static info g_info_inside[NTASKS]; /* the records then */
static uint64_t g_now_inside;      /* the clock then */
static cw_join *g_victim; /* the dumper aborts it first */

typedef struct tk {
    enum kind kind;
    int idx;           /* its g_info / g_park slot */
    uint64_t cost;     /* each poll advances the clock by it */
    uint32_t child_q;  /* JOINER: spawns a PARKER here, index idx + 1 */
    cw_sleep sleep;
    cw_fdwait fdw;
    cw_join *child;
} tk;

/* exported: the dump names it */
cw_poll dump_tk_poll(void *state, cw_cx *cx);
cw_poll dump_tk_poll(void *state, cw_cx *cx)
{
    tk *t = state;
    info *in = &g_info[t->idx];
    in->state = state;
    if (t->kind == JOINER && !t->child) {
        /* spawned at this poll's start: the clock has not moved yet */
        tk c = {.kind = PARKER, .idx = t->idx + 1, .cost = 9 * US};
        g_info[c.idx].spawned = g_clk->now;
        ck_assert_int_eq(cw_spawn(cw_executor_queue(cw_cx_executor(cx), t->child_q),
                                  dump_tk_poll, &c, sizeof c, NULL, &t->child),
                         0);
    }
    if (t->kind == DUMPER) {
        cw_join_abort(g_victim);
        memcpy(g_info_inside, g_info, sizeof g_info);
        g_now_inside = g_clk->now;
        take_dump(g_ex, &g_inside);
    }
    g_clk->now += t->cost;
    in->polls++;
    in->cpu += t->cost;
    in->last_end = g_clk->now;
    switch (t->kind) {
    case SLEEPER:
        return cw_sleep_poll(&t->sleep, cx);
    case SELECTER:
        ck_assert_int_eq(cw_sleep_poll(&t->sleep, cx), CW_PENDING);
        return cw_fdwait_poll(&t->fdw, cx);
    case READER:
        return cw_fdwait_poll(&t->fdw, cx);
    case JOINER:
        return cw_join_poll(t->child, cx);
    case PARKER:
        if (!g_park[t->idx])
            g_park[t->idx] = cw_waker_clone(cw_cx_waker(cx));
        return CW_PENDING;
    case LOST:
        return CW_PENDING; /* no wake arranged: the bug the dump flags */
    case DUMPER:
        return CW_READY;
    }
    return CW_READY;
}

static void tk_drop(void *state)
{
    tk *t = state;
    cw_sleep_drop(&t->sleep);
    cw_fdwait_drop(&t->fdw);
    if (t->child) {
        cw_join_abort(t->child);
        cw_join_free(t->child);
    }
}

static cw_join *spawn_tk(tenv *env, uint32_t qid, tk t)
{
    if (t.kind == SLEEPER || t.kind == SELECTER)
        cw_sleep_init(&t.sleep, 1000 * MS);
    if (t.kind == SELECTER || t.kind == READER)
        cw_fdwait_init(&t.fdw, g_fd[0], CW_FD_READ);
    g_info[t.idx].spawned = env->clk.now;
    cw_join *j;
    ck_assert_int_eq(cw_spawn(cw_executor_queue(env->ex, qid), dump_tk_poll, &t, sizeof t,
                              tk_drop, &j),
                     0);
    return j;
}

static void setup(tenv *env, bool acct)
{
    memset(g_info, 0, sizeof g_info);
    memset(g_park, 0, sizeof g_park);
    ck_assert_int_eq(pipe(g_fd), 0);
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 1), 0);
    cw_config_set_task_accounting(cfg, acct);
    tenv_init(env, cfg, 1);
    g_clk = &env->clk;
    g_ex = env->ex;
}

static void teardown(tenv *env)
{
    tenv_free(env);
    for (int i = 0; i < NTASKS; i++) {
        cw_waker_free(g_park[i]);
        g_park[i] = NULL;
    }
    close(g_fd[0]);
    close(g_fd[1]);
}

/* The line of task i, with accounting: every field as its record says. */
static void check_row_of(const info *recs, const dump *d, int i, uint64_t now, uint32_t queue,
                         const char *state)
{
    const info *in = &recs[i];
    ck_assert_ptr_nonnull(in->state);
    const row *r = find_row(d, in->state);
    ck_assert_msg(r, "task %d (%p) is not in the dump", i, in->state);
    ck_assert_msg(r->queue == queue, "task %d: queue %u, want %u", i, r->queue, queue);
    ck_assert_msg(!strcmp(r->state, state), "task %d: state %s, want %s", i, r->state, state);
    ck_assert_str_eq(r->poll, "dump_tk_poll");
    if (!d->acct) {
        ck_assert_str_eq(r->age, "-");
        ck_assert_str_eq(r->polls, "-");
        ck_assert_str_eq(r->cpu, "-");
        ck_assert_str_eq(r->since, "-");
        return;
    }
    ck_assert_msg(ns_of(r->age) == now - in->spawned, "task %d: age %s, want %" PRIu64 " ns", i,
                  r->age, now - in->spawned);
    char polls[24];
    snprintf(polls, sizeof polls, "%" PRIu64, in->polls);
    ck_assert_msg(!strcmp(r->polls, polls), "task %d: polls %s, want %s", i, r->polls, polls);
    ck_assert_msg(ns_of(r->cpu) == in->cpu, "task %d: cpu %s, want %" PRIu64 " ns", i, r->cpu,
                  in->cpu);
    if (in->polls == 0 || !strcmp(state, "running"))
        ck_assert_msg(!strcmp(r->since, "-"), "task %d: since %s, want -", i, r->since);
    else
        ck_assert_msg(ns_of(r->since) == now - in->last_end,
                      "task %d: since %s, want %" PRIu64 " ns", i, r->since, now - in->last_end);
}

static void check_row(const dump *d, int i, uint64_t now, uint32_t queue, const char *state)
{
    check_row_of(g_info, d, i, now, queue, state);
}

enum { I_SLEEP, I_SELECT, I_READ, I_JOIN, I_CHILD, I_LOST, I_PARK, I_RWOKEN, I_VICTIM,
       I_FRESH, I_REMOTE, I_DUMPER };

struct remote_args {
    cw_spawner *sp;
    cw_waker *wake; /* woken (and released) by the thread, if set */
};

static void *remote_main(void *arg)
{
    struct remote_args *a = arg;
    if (a->sp) {
        tk t = {.kind = PARKER, .idx = I_REMOTE, .cost = 10 * US};
        ck_assert_int_eq(cw_spawn_remote(a->sp, dump_tk_poll, &t, sizeof t, NULL, NULL), 0);
    }
    if (a->wake)
        cw_waker_wake(a->wake);
    return NULL;
}

static void on_thread(cw_spawner *sp, cw_waker *w)
{
    struct remote_args a = {sp, w};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, remote_main, &a), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/* Every kind of state, every field, with accounting on; then the dump
 * from inside a poll (running, cancelling), then after that round. */
static void dump_script(bool acct)
{
    tenv env;
    setup(&env, acct);
    const uint64_t t0 = env.clk.now;
    cw_join *j[NTASKS] = {0};
    j[I_SLEEP] = spawn_tk(&env, 1, (tk){.kind = SLEEPER, .idx = I_SLEEP, .cost = 1 * US});
    j[I_SELECT] = spawn_tk(&env, 1, (tk){.kind = SELECTER, .idx = I_SELECT, .cost = 2 * US});
    j[I_READ] = spawn_tk(&env, 2, (tk){.kind = READER, .idx = I_READ, .cost = 3 * US});
    j[I_JOIN] = spawn_tk(&env, 2,
                         (tk){.kind = JOINER, .idx = I_JOIN, .cost = 4 * US, .child_q = 1});
    j[I_LOST] = spawn_tk(&env, 1, (tk){.kind = LOST, .idx = I_LOST, .cost = 5 * US});
    j[I_PARK] = spawn_tk(&env, 2, (tk){.kind = PARKER, .idx = I_PARK, .cost = 6 * US});
    j[I_RWOKEN] = spawn_tk(&env, 1, (tk){.kind = PARKER, .idx = I_RWOKEN, .cost = 7 * US});
    j[I_VICTIM] = spawn_tk(&env, 2, (tk){.kind = PARKER, .idx = I_VICTIM, .cost = 8 * US});
    g_victim = j[I_VICTIM];
    cw_spawner *sp;
    ck_assert_int_eq(cw_spawner_new(cw_executor_queue(env.ex, 2), &sp), 0);
    turns(&env, 4);
    for (int i = I_SLEEP; i <= I_VICTIM; i++)
        ck_assert_msg(g_info[i].polls == 1, "task %d: %" PRIu64 " polls", i, g_info[i].polls);
    ck_assert_uint_eq(g_info[I_SLEEP].spawned, t0);

    /* a task spawned from another thread: spawned when taken in, at the
     * start of the round that takes it */
    on_thread(sp, NULL);
    env.clk.now += 1 * MS;
    g_info[I_REMOTE].spawned = env.clk.now;
    for (int i = 0; i < 100 && !g_info[I_REMOTE].polls; i++)
        tenv_turn(&env);
    ck_assert_uint_eq(g_info[I_REMOTE].polls, 1);
    /* a wake from another thread, not taken in yet */
    cw_waker *w = g_park[I_RWOKEN];
    g_park[I_RWOKEN] = NULL;
    on_thread(NULL, w);
    /* spawned, not polled yet */
    env.clk.now += 1 * MS;
    j[I_FRESH] = spawn_tk(&env, 1, (tk){.kind = PARKER, .idx = I_FRESH, .cost = 11 * US});

    env.clk.now += 5 * MS;
    uint64_t now = env.clk.now;
    dump d;
    take_dump(env.ex, &d);
    /* every task of the user's, and the spawner's own (which the
     * statistics leave out) */
    ck_assert_uint_eq(d.live, stats_of(env.ex).tasks_live + 1);
    ck_assert_uint_eq(d.live, 12);
    ck_assert(d.acct == acct);
    check_row(&d, I_SLEEP, now, 1, "waiting:sleep");
    check_row(&d, I_SELECT, now, 1, "waiting:sleep+fd");
    check_row(&d, I_READ, now, 2, "waiting:fd");
    check_row(&d, I_JOIN, now, 2, "waiting:join");
    check_row(&d, I_CHILD, now, 1, "waiting:other");
    check_row(&d, I_LOST, now, 1, "waiting:none");
    ck_assert(find_row(&d, g_info[I_LOST].state)->nowake);
    check_row(&d, I_PARK, now, 2, "waiting:other");
    check_row(&d, I_RWOKEN, now, 1, "woken");
    check_row(&d, I_VICTIM, now, 2, "waiting:other");
    check_row(&d, I_REMOTE, now, 2, "waiting:other");
    /* the fresh task's state pointer: the block its join handle names */
    g_info[I_FRESH].state = NULL;
    for (int i = 0; i < d.nrows; i++)
        if (!strcmp(d.rows[i].state, "runnable"))
            g_info[I_FRESH].state = (void *)d.rows[i].task;
    check_row(&d, I_FRESH, now, 1, "runnable");
    /* no other task is flagged */
    int flagged = 0;
    for (int i = 0; i < d.nrows; i++)
        flagged += d.rows[i].nowake;
    ck_assert_int_eq(flagged, 1);

    /* From inside a poll: the dumper runs (after fresh, which parks, and
     * before rwoken, whose wake is taken at the round's start), aborts
     * the victim, then dumps. */
    env.clk.now += 1 * MS;
    j[I_DUMPER] = spawn_tk(&env, 1, (tk){.kind = DUMPER, .idx = I_DUMPER, .cost = 12 * US});
    memset(&g_inside, 0, sizeof g_inside);
    for (int i = 0; i < 10 && !g_info[I_DUMPER].polls; i++)
        tenv_turn(&env);
    ck_assert_uint_eq(g_info[I_DUMPER].polls, 1);
    const dump *in = &g_inside;
    uint64_t at = g_now_inside;
    ck_assert_uint_eq(in->live, 13);
    check_row_of(g_info_inside, in, I_DUMPER, at, 1, "running");
    check_row_of(g_info_inside, in, I_VICTIM, at, 2, "cancelling");
    check_row_of(g_info_inside, in, I_RWOKEN, at, 1, "runnable");
    check_row_of(g_info_inside, in, I_FRESH, at, 1, "waiting:other");
    check_row_of(g_info_inside, in, I_SLEEP, at, 1, "waiting:sleep");
    check_row_of(g_info_inside, in, I_LOST, at, 1, "waiting:none");

    /* after the round: the victim was reaped, rwoken ran */
    turns(&env, 2);
    now = env.clk.now;
    take_dump(env.ex, &d);
    ck_assert_uint_eq(d.live, 11); /* less the victim and the dumper */
    ck_assert_ptr_null(find_row(&d, g_info[I_VICTIM].state));
    ck_assert_ptr_null(find_row(&d, g_info[I_DUMPER].state));
    check_row(&d, I_RWOKEN, now, 1, "waiting:other");
    ck_assert_uint_eq(g_info[I_RWOKEN].polls, 2);
    check_row(&d, I_JOIN, now, 2, "waiting:join");

    cw_spawner_free(sp);
    for (int i = 0; i < NTASKS; i++)
        cw_join_free(j[i]);
    teardown(&env);
}

START_TEST(dump_lists_every_live_task_with_its_state_and_accounting)
{
    dump_script(true);
}
END_TEST

START_TEST(dump_without_accounting_has_the_states_and_dashes)
{
    dump_script(false);
}
END_TEST

/* The accounting slot is the only difference in a task block: 32 bytes
 * more (the 16-byte size classes keep it exact), and only when on. */
START_TEST(accounting_costs_32_bytes_per_task_only_when_on)
{
    size_t size[2];
    for (int acct = 0; acct <= 1; acct++) {
        tenv env;
        setup(&env, acct);
        cw_join *j = spawn_tk(&env, 1, (tk){.kind = LOST, .idx = 0});
        size[acct] = cw__task_of_join(j)->slab->size;
        turns(&env, 2);
        ck_assert_ptr_nonnull(g_info[0].state);
        dump d;
        take_dump(env.ex, &d);
        ck_assert(d.acct == (bool)acct);
        check_row(&d, 0, env.clk.now, 1, "waiting:none");
        cw_join_free(j);
        teardown(&env);
    }
    ck_assert_uint_eq(size[1] - size[0], 32);
}
END_TEST

static void *dump_elsewhere(void *arg)
{
    return (void *)(intptr_t)cw_executor_dump_tasks(arg, stdout);
}

START_TEST(dump_rejects_null_other_threads_and_reports_write_errors)
{
    tenv env;
    setup(&env, true);
    cw_join *j = spawn_tk(&env, 1, (tk){.kind = SLEEPER, .idx = 0, .cost = 1});
    turns(&env, 2);
    ck_assert_int_eq(cw_executor_dump_tasks(NULL, stdout), -EINVAL);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, NULL), -EINVAL);
    pthread_t th;
    void *rc;
    ck_assert_int_eq(pthread_create(&th, NULL, dump_elsewhere, env.ex), 0);
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, -EPERM);
    FILE *f = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, f), -EIO);
    fclose(f);
    char small[64];
    f = fmemopen(small, sizeof small, "w");
    ck_assert_ptr_nonnull(f);
    setvbuf(f, NULL, _IONBF, 0);
    ck_assert_int_eq(cw_executor_dump_tasks(env.ex, f), -EIO);
    fclose(f);
    cw_join_free(j);
    teardown(&env);
}
END_TEST

static Suite *taskdump_suite(void)
{
    Suite *s = suite_create("taskdump");
    TCase *c = tcase_create("dump");
    tcase_add_test(c, dump_lists_every_live_task_with_its_state_and_accounting);
    tcase_add_test(c, dump_without_accounting_has_the_states_and_dashes);
    tcase_add_test(c, accounting_costs_32_bytes_per_task_only_when_on);
    tcase_add_test(c, dump_rejects_null_other_threads_and_reports_write_errors);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    return run_suite(taskdump_suite());
}
