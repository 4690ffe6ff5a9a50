/* check_fgbg.c - bench/fgbg runs, and its outputs have the promised shape.
 *
 * Each test runs the built benchmark ($top_builddir/bench/fgbg, fork + exec,
 * stdout through a pipe, stderr left to the test log) with --smoke, a few
 * hundred foreground tasks per variant, and checks what it wrote: the exit
 * status, the table's columns, the JSON (--json) and the CSV (--csv).
 * No timing assertion: the numbers are checked only for what holds on any
 * machine (every task completed, percentiles in order, a task's total
 * latency not below its queue delay, no background work in the fg-only
 * variants). Under valgrind (make check-valgrind) the benchmark itself runs
 * natively: the suite's children are not followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CW_TEST_URING
#include <liburing.h>
#endif

#include "testutil.h"

#define SMOKE_COUNT 200 /* bench/fgbg.c: SMOKE_FG_COUNT */

static const char *const all_variants[] = {
    "libevent_fg", "libevent_fgbg", "libevent_prio", "cw_fg", "cw_fgbg", "two_bases",
};
#define NVAR (sizeof all_variants / sizeof all_variants[0])

struct run {
    int exit_code; /* exit status, or -1 if it did not exit normally */
    char out[64 * 1024];
    size_t len;
};

static struct run r; /* static: 64 KiB is much for a stack */

/* Run bench/fgbg with these arguments (NULL-terminated, argv[0] excluded). */
static void run_fgbg(const char *const *args, struct run *res)
{
    res->exit_code = run_built("bench/fgbg", args, 1, res->out, sizeof res->out, &res->len);
}

/* A temporary file's name (the file exists, empty). */
static void temp_name(char *buf, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    ck_assert_int_lt(snprintf(buf, size, "%s/check_fgbg_%s_XXXXXX", dir, tag), (int)size);
    int fd = mkstemp(buf);
    ck_assert_msg(fd >= 0, "mkstemp(%s): %s", buf, strerror(errno));
    close(fd);
}

/* The whole file, NUL-terminated (free it). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    ck_assert(!ferror(f));
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ---- a minimal JSON reader: validates and finds keys, builds nothing ---- */

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p)
            return NULL;
    return *p == '"' ? p + 1 : NULL;
}

/* The end of the JSON value at p, or NULL if it is not one. */
static const char *skip_value(const char *p, int depth)
{
    p = ws(p);
    if (depth > 32)
        return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = skip_string(p)))
                    return NULL;
                p = ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = skip_value(p, depth + 1)))
                return NULL;
            p = ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
            p = ws(p);
        }
    }
    if (*p == '"')
        return skip_string(p);
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

/* Call fn on each key of the object at p; returns the number of keys, or -1
 * if p is not an object. */
static int obj_each(const char *p, void (*fn)(const char *key, size_t klen, const char *val,
                                              void *arg),
                    void *arg)
{
    int n = 0;
    p = ws(p);
    if (*p != '{')
        return -1;
    p = ws(p + 1);
    if (*p == '}')
        return 0;
    for (;;) {
        const char *k = p;
        if (!(p = skip_string(p)))
            return -1;
        size_t klen = (size_t)(p - k) - 2;
        p = ws(p);
        if (*p++ != ':')
            return -1;
        p = ws(p);
        if (fn)
            fn(k + 1, klen, p, arg);
        n++;
        if (!(p = skip_value(p, 0)))
            return -1;
        p = ws(p);
        if (*p == '}')
            return n;
        if (*p++ != ',')
            return -1;
        p = ws(p);
    }
}

struct find {
    const char *key;
    const char *val;
};

static void find_fn(const char *key, size_t klen, const char *val, void *arg)
{
    struct find *f = arg;
    if (!f->val && strlen(f->key) == klen && strncmp(key, f->key, klen) == 0)
        f->val = val;
}

/* The value of key in the object at p; fails the test if there is none. */
static const char *get(const char *p, const char *key)
{
    struct find f = {key, NULL};
    ck_assert_msg(obj_each(p, find_fn, &f) >= 0, "not a JSON object at: %.60s", p);
    ck_assert_msg(f.val != NULL, "no key \"%s\" in: %.200s", key, p);
    return f.val;
}

static double get_num(const char *p, const char *key)
{
    const char *v = get(p, key);
    char *end;
    double x = strtod(v, &end);
    ck_assert_msg(end != v, "\"%s\" is not a number: %.40s", key, v);
    return x;
}

/* ---- checks of the three outputs ---- */

/* Percentiles in order, none negative; fills pct[4]. */
static void check_pcts(const char *obj, const char *name, double *pct)
{
    static const char *const keys[] = {"p50", "p90", "p99", "p999"};
    ck_assert_int_eq(obj_each(obj, NULL, NULL), 4);
    for (int i = 0; i < 4; i++) {
        pct[i] = get_num(obj, keys[i]);
        ck_assert_msg(pct[i] >= 0, "%s %s < 0", name, keys[i]);
        if (i)
            ck_assert_msg(pct[i] >= pct[i - 1], "%s: %s < %s", name, keys[i], keys[i - 1]);
    }
}

static void check_json(const char *path, const char *const *names, size_t n)
{
    char *json = slurp(path);
    const char *end = skip_value(json, 0);
    ck_assert_msg(end != NULL, "%s: not JSON:\n%s", path, json);
    ck_assert_msg(*ws(end) == '\0', "%s: trailing text: %s", path, end);

    const char *vars = get(json, "variants");
    ck_assert_int_eq(obj_each(vars, NULL, NULL), (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *v = get(vars, names[i]);
        double qd[4], tl[4];
        check_pcts(get(v, "queue_delay_us"), names[i], qd);
        check_pcts(get(v, "total_latency_us"), names[i], tl);
        /* every task's total latency >= its queue delay + >= 100 us of CPU */
        for (int k = 0; k < 4; k++)
            ck_assert_msg(tl[k] >= qd[k], "%s: total latency below queue delay", names[i]);
        ck_assert_msg(tl[0] >= 100, "%s: p50 total latency %g us < one CPU segment", names[i],
                      tl[0]);
        double bg = get_num(v, "bg_iter_per_s");
        ck_assert_msg(bg >= 0, "%s: bg_iter_per_s %g", names[i], bg);
        if (strstr(names[i], "_fg") && !strstr(names[i], "fgbg"))
            ck_assert_msg(bg == 0, "%s: background work in a foreground-only variant", names[i]);
        ck_assert_msg(get_num(v, "fg_completed") == SMOKE_COUNT, "%s: fg_completed %g, not %d",
                      names[i], get_num(v, "fg_completed"), SMOKE_COUNT);
    }
    free(json);
}

static void check_csv(const char *path, const char *const *names, size_t n)
{
    char *csv = slurp(path);
    static const char header[] = "variant,run,task,submit_us,queue_delay_us,total_latency_us\n";
    ck_assert_msg(strncmp(csv, header, sizeof header - 1) == 0, "CSV header: %.100s", csv);
    unsigned rows[NVAR] = {0};
    static bool seen[NVAR][SMOKE_COUNT];
    memset(seen, 0, sizeof seen);
    char *save = NULL;
    for (char *line = strtok_r(csv + sizeof header - 1, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        unsigned run, task;
        double submit, qd, tl;
        int used = 0;
        ck_assert_msg(sscanf(line, "%63[^,],%u,%u,%lf,%lf,%lf%n", name, &run, &task, &submit, &qd,
                             &tl, &used) == 6
                          && line[used] == '\0',
                      "bad CSV row: \"%s\"", line);
        size_t v = 0;
        while (v < n && strcmp(names[v], name) != 0)
            v++;
        ck_assert_msg(v < n, "CSV row of an unexpected variant: \"%s\"", line);
        ck_assert_uint_eq(run, 1);
        ck_assert_uint_lt(task, SMOKE_COUNT);
        ck_assert_msg(!seen[v][task], "task %u of %s twice", task, name);
        seen[v][task] = true;
        ck_assert_msg(qd >= 0 && tl >= qd + 100 && submit >= 0, "implausible row: \"%s\"", line);
        rows[v]++;
    }
    for (size_t v = 0; v < n; v++)
        ck_assert_msg(rows[v] == SMOKE_COUNT, "%s: %u CSV rows, not %d", names[v], rows[v],
                      SMOKE_COUNT);
    free(csv);
}

/* The table's header line: "| Metric | <variant> | ... |", one column per
 * variant in order, then a row per metric with as many cells. */
static void check_table(const struct run *res, const char *const *names, size_t n)
{
    const char *p = strstr(res->out, "| Metric ");
    ck_assert_msg(p != NULL && (p == res->out || p[-1] == '\n'), "no table in:\n%s", res->out);
    int lines = 0;
    while (*p == '|') {
        const char *eol = strchr(p, '\n');
        ck_assert_ptr_nonnull(eol);
        char line[1024];
        ck_assert_uint_lt((size_t)(eol - p), sizeof line);
        memcpy(line, p, (size_t)(eol - p));
        line[eol - p] = '\0';
        size_t cells = 0;
        char *save = NULL;
        for (char *c = strtok_r(line, "|", &save); c; c = strtok_r(NULL, "|", &save)) {
            while (*c == ' ')
                c++;
            size_t len = strlen(c);
            while (len && c[len - 1] == ' ')
                c[--len] = '\0';
            if (lines == 0 && cells > 0) {
                ck_assert_uint_le(cells, n);
                ck_assert_str_eq(c, names[cells - 1]);
            }
            cells++;
        }
        ck_assert_msg(cells == n + 1, "table line %d has %zu cells, not %zu", lines, cells, n + 1);
        lines++;
        p = eol + 1;
    }
    /* header, separator, 8 latency rows, the background row */
    ck_assert_int_eq(lines, 11);
}

START_TEST(smoke_runs_every_variant_with_json_csv_and_table)
{
    char json[4096], csv[4096];
    temp_name(json, sizeof json, "json");
    temp_name(csv, sizeof csv, "csv");
    const char *args[] = {"--smoke", "--json", json, "--csv", csv, NULL};
    run_fgbg(args, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg exited %d; output:\n%s", r.exit_code, r.out);
    check_table(&r, all_variants, NVAR);
    check_json(json, all_variants, NVAR);
    check_csv(csv, all_variants, NVAR);
    unlink(json);
    unlink(csv);
}
END_TEST

START_TEST(variants_option_picks_the_columns)
{
    static const char *const names[] = {"libevent_fg", "cw_fgbg"};
    char json[4096], csv[4096];
    temp_name(json, sizeof json, "json");
    temp_name(csv, sizeof csv, "csv");
    const char *args[] = {"--smoke", "--variants", "cw_fgbg,libevent_fg", "--json", json,
                          "--csv",   csv,          NULL};
    run_fgbg(args, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg exited %d; output:\n%s", r.exit_code, r.out);
    check_table(&r, names, 2);
    check_json(json, names, 2);
    check_csv(csv, names, 2);
    unlink(json);
    unlink(csv);
}
END_TEST

/* --bg-chunk-us and --lev-refresh change how the tasks are written: the
 * run says so on stdout and in the JSON's config. */
START_TEST(chunk_and_refresh_options_are_reported)
{
    char json[4096];
    temp_name(json, sizeof json, "json");
    const char *dflt[] = {"--smoke", "--variants", "cw_fgbg", "--json", json, NULL};
    run_fgbg(dflt, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg exited %d; output:\n%s", r.exit_code, r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "call cw_should_yield() every 10 us"));
    ck_assert_ptr_null(strstr(r.out, "--lev-refresh"));
    char *j = slurp(json);
    ck_assert_ptr_nonnull(strstr(j, "\"bg_chunk_us\": 10,"));
    ck_assert_ptr_nonnull(strstr(j, "\"lev_refresh\": false}"));
    ck_assert_ptr_nonnull(strstr(j, "\"fg_latency_us\": \"default\", \"idle_queue\": false,"));
    free(j);
    ck_assert_ptr_null(strstr(r.out, "--fg-latency-us"));
    ck_assert_ptr_null(strstr(r.out, "--idle-queue"));
    const char *set[] = {"--smoke", "--variants", "cw_fgbg,libevent_fg", "--bg-chunk-us", "0",
                         "--lev-refresh", "--fg-latency-us", "120", "--idle-queue",
                         "--json", json, NULL};
    run_fgbg(set, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg exited %d; output:\n%s", r.exit_code, r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "run each segment in one poll (--bg-chunk-us 0)"));
    ck_assert_ptr_nonnull(strstr(r.out, "when they end (--lev-refresh)"));
    j = slurp(json);
    ck_assert_ptr_nonnull(strstr(j, "\"bg_chunk_us\": 0,"));
    ck_assert_ptr_nonnull(strstr(j, "\"lev_refresh\": true}"));
    ck_assert_ptr_nonnull(strstr(j, "\"fg_latency_us\": 120, \"idle_queue\": true,"));
    free(j);
    ck_assert_ptr_nonnull(strstr(r.out, "latency target 120 us (--fg-latency-us)"));
    ck_assert_ptr_nonnull(strstr(r.out, "never used queue of weight 1000 (--idle-queue)"));
    const char *none[] = {"--smoke", "--variants", "cw_fgbg", "--fg-latency-us", "none",
                          "--json", json, NULL};
    run_fgbg(none, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg exited %d; output:\n%s", r.exit_code, r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "no latency target (--fg-latency-us none)"));
    j = slurp(json);
    ck_assert_ptr_nonnull(strstr(j, "\"fg_latency_us\": \"none\","));
    free(j);
    unlink(json);
}
END_TEST

START_TEST(bad_arguments_exit_2_with_nothing_on_stdout)
{
    const char *bad[][4] = {
        {"--variants", "nope", NULL},  {"--variants", "", NULL},     {"--fg-count", "0", NULL},
        {"--fg-count", "-3", NULL},    {"--rps", "abc", NULL},       {"--rps", "0", NULL},
        {"--repeat", NULL, NULL},      {"--frobnicate", NULL, NULL}, {"--bg", "1x", NULL},
        {"--json", "", NULL},          {"--bg-chunk-us", "x", NULL}, {"--bg-chunk-us", NULL, NULL},
        {"--fg-latency-us", "0", NULL}, {"--fg-latency-us", "soon", NULL},
        {"--fg-latency-us", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_fgbg(bad[i], &r);
        ck_assert_msg(r.exit_code == 2, "%s %s: exit %d", bad[i][0], bad[i][1] ? bad[i][1] : "",
                      r.exit_code);
        ck_assert_str_eq(r.out, ""); /* the usage goes to stderr */
    }
}
END_TEST

/* --loop NAME: the same table, JSON and CSV, with the loop's raw variants
 * (NAME_fg, NAME_fgbg) in place of libevent's; the libevent-only variants
 * (libevent_prio, two_bases) are not there. */
static void check_loop(const char *loop)
{
    char fg[32], fgbg[32];
    snprintf(fg, sizeof fg, "%s_fg", loop);
    snprintf(fgbg, sizeof fgbg, "%s_fgbg", loop);
    const char *const names[] = {fg, fgbg, "cw_fg", "cw_fgbg"};
    char json[4096], csv[4096];
    temp_name(json, sizeof json, "json");
    temp_name(csv, sizeof csv, "csv");
    const char *args[] = {"--smoke", "--loop", loop, "--json", json, "--csv", csv, NULL};
    run_fgbg(args, &r);
    ck_assert_msg(r.exit_code == 0, "fgbg --loop %s exited %d; output:\n%s", loop, r.exit_code,
                  r.out);
    check_table(&r, names, 4);
    check_json(json, names, 4);
    check_csv(csv, names, 4);
    char *j = slurp(json);
    char key[64];
    snprintf(key, sizeof key, "\"loop\": \"%s\"}", loop);
    ck_assert_msg(strstr(j, key) != NULL, "no %s in the JSON's config", key);
    free(j);
    ck_assert_ptr_nonnull(strstr(r.out, "Targets "));
    unlink(json);
    unlink(csv);
}

START_TEST(loop_embed_has_the_same_shape)
{
    check_loop("embed");
}
END_TEST

START_TEST(loop_libuv_has_the_same_shape)
{
#ifdef CW_TEST_LIBUV
    check_loop("libuv");
#else
    const char *args[] = {"--smoke", "--loop", "libuv", NULL};
    run_fgbg(args, &r);
    ck_assert_msg(r.exit_code == 2, "--loop libuv without libuv: exit %d", r.exit_code);
    ck_assert_str_eq(r.out, "");
#endif
}
END_TEST

/* --loop uring when the io_uring driver is built: the same shape; where
 * the kernel refuses a ring (no io_uring, seccomp, io_uring_disabled),
 * exit 2 with nothing on stdout, and the shape is not checked. Without the
 * driver: exit 2. */
START_TEST(loop_uring_has_the_same_shape)
{
#ifdef CW_TEST_URING
    struct io_uring ring;
    int err = io_uring_queue_init(4, &ring, 0);
    if (err == 0) {
        io_uring_queue_exit(&ring);
        check_loop("uring");
        return;
    }
    printf("SKIP: --loop uring: no io_uring here (%s)\n", strerror(-err));
#endif
    const char *args[] = {"--smoke", "--loop", "uring", NULL};
    run_fgbg(args, &r);
    ck_assert_msg(r.exit_code == 2, "--loop uring without a ring: exit %d", r.exit_code);
    ck_assert_str_eq(r.out, "");
}
END_TEST

/* An unknown loop, or a libevent-only variant on another loop: exit 2,
 * nothing on stdout (stderr says why; an unbuilt loop:
 * loop_*_has_the_same_shape). */
START_TEST(unbuilt_or_unknown_loop_exits_2)
{
    const char *bad[][6] = {
        {"--smoke", "--loop", "nope", NULL},
        {"--smoke", "--loop", NULL},
        {"--smoke", "--loop", "embed", "--variants", "two_bases", NULL},
        {"--smoke", "--loop", "embed", "--variants", "libevent_fg", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_fgbg(bad[i], &r);
        ck_assert_msg(r.exit_code == 2, "case %zu: exit %d", i, r.exit_code);
        ck_assert_str_eq(r.out, "");
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fgbg");
    TCase *tc = tcase_create("fgbg");
    /* generous: the machine may be busy, or a sanitizer slows the program
     * down (no test asserts a duration) */
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, smoke_runs_every_variant_with_json_csv_and_table);
    tcase_add_test(tc, variants_option_picks_the_columns);
    tcase_add_test(tc, chunk_and_refresh_options_are_reported);
    tcase_add_test(tc, bad_arguments_exit_2_with_nothing_on_stdout);
    tcase_add_test(tc, loop_embed_has_the_same_shape);
    tcase_add_test(tc, loop_libuv_has_the_same_shape);
    tcase_add_test(tc, loop_uring_has_the_same_shape);
    tcase_add_test(tc, unbuilt_or_unknown_loop_exits_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
