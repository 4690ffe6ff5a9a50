/* check_overhead.c - bench/overhead works: a --smoke run exits 0, prints
 * its table and writes every JSON figure as a positive number.
 *
 * The benchmark runs as a child (fork + exec, stdout through a pipe) from
 * $top_builddir/bench (default ".", where `make check` runs). Nothing here
 * looks at a figure's size: only that each is there and positive. No
 * timing assertion.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CW_TEST_URING
#include <liburing.h>
#endif

#include "testutil.h"

/* What a run gave. */
struct run {
    int exit_code; /* exit status, or -1 if it did not exit normally */
    char out[64 * 1024];
    size_t len;
};

static struct run r; /* static: 64 KiB is much for a stack */

/* Run bench/overhead with the given arguments (NULL-terminated, argv[0]
 * excluded) and collect its stdout. Fails the test on a system error. */
static void run_bench(const char *const *args)
{
    r.exit_code = run_built("bench/overhead", args, 1, r.out, sizeof r.out, &r.len);
}

/* ---- a small JSON reader: objects, strings, numbers ----------------------
 * Flattens {"a": {"b": 1}} into the path "a.b" with the value 1. Enough
 * for the benchmark's output; anything else fails the test. */

#define MAX_FIGS 128

struct figs {
    char path[MAX_FIGS][64];
    double val[MAX_FIGS];
    int n;
};

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* A string at p (after its opening quote) into buf; returns the char
 * after the closing quote, or NULL. */
static const char *parse_string(const char *p, char *buf, size_t size)
{
    size_t n = 0;
    while (*p && *p != '"') {
        if (*p == '\\' || n + 1 >= size)
            return NULL; /* the benchmark writes no escapes or long keys */
        buf[n++] = *p++;
    }
    if (*p != '"')
        return NULL;
    buf[n] = '\0';
    return p + 1;
}

static const char *parse_value(const char *p, const char *prefix, struct figs *f);

static const char *parse_object(const char *p, const char *prefix, struct figs *f)
{
    p = skip_ws(p);
    if (*p == '}')
        return p + 1;
    for (;;) {
        char key[64], path[64];
        p = skip_ws(p);
        if (*p != '"' || !(p = parse_string(p + 1, key, sizeof key)))
            return NULL;
        if (snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key)
            >= (int)sizeof path)
            return NULL;
        p = skip_ws(p);
        if (*p != ':')
            return NULL;
        if (!(p = parse_value(p + 1, path, f)))
            return NULL;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}')
            return p + 1;
        return NULL;
    }
}

static const char *parse_value(const char *p, const char *prefix, struct figs *f)
{
    p = skip_ws(p);
    if (*p == '{')
        return parse_object(p + 1, prefix, f);
    char *end;
    double v = strtod(p, &end);
    if (end == p || f->n >= MAX_FIGS)
        return NULL;
    snprintf(f->path[f->n], sizeof f->path[f->n], "%s", prefix);
    f->val[f->n++] = v;
    return end;
}

static void parse_json(const char *text, struct figs *f)
{
    f->n = 0;
    const char *p = skip_ws(text);
    ck_assert_msg(*p == '{', "JSON does not start with an object:\n%s", text);
    p = parse_object(p + 1, "", f);
    ck_assert_msg(p != NULL, "JSON does not parse:\n%s", text);
    ck_assert_msg(*skip_ws(p) == '\0', "JSON has trailing text:\n%s", text);
}

/* The value at path, or NULL. */
static const double *fig(const struct figs *f, const char *path)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->path[i], path))
            return &f->val[i];
    return NULL;
}

static char *read_file_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
    static char buf[16 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    ck_assert_msg(!ferror(fp) && feof(fp), "%s: read error or too long", path);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

/* A fresh temporary file name (the file exists, empty). */
static void temp_path(char *buf, size_t size)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    ck_assert_int_lt(snprintf(buf, size, "%s/check_overhead.XXXXXX", dir), (int)size);
    int fd = mkstemp(buf);
    ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
    close(fd);
}

/* Whether some line of the output starts with prefix. */
static bool has_line_starting(const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = r.out;
    while (*p) {
        if (!strncmp(p, prefix, n))
            return true;
        if (!(p = strchr(p, '\n')))
            break;
        p++;
    }
    return false;
}

static const char *const required[] = {
    "spawn_ns.cw",
    "spawn_ns.libevent_once",
    "spawn_ns.libevent_active",
    "yield_ns.cw",
    "yield_ns.libevent",
    "pingpong_ns.cw",
    "pingpong_ns.libevent",
    "timer_overshoot_us.cw",
    "timer_overshoot_us.libevent",
    "pick_ns.1",
    "pick_ns.2",
    "pick_ns.8",
    "pick_ns.64",
    "pick_ns.256",
    "pick_ns.1024",
    "task_overhead_bytes",
    "task_overhead_bytes_accounting",
    "yield_ns_stall.on",
    "yield_ns_stall.off",
    "yield_ns_stall_watchdog.on",
    "yield_ns_accounting.on",
    "remote_wakes_per_s.1",
    "remote_wakes_per_s.2",
    "remote_wakes_per_s.3",
};

/* One row per figure: the start of its first column. */
static const char *const rows[] = {
    "spawn->complete N=", "spawn chain N=",       "yield ",
    "ping-pong ",         "timer overshoot p50 ", "pick pure N=256",
    "pick exec N=256",    "task overhead bytes",  "remote wakes/s, 3 threads",
};

START_TEST(smoke_run_prints_the_table_and_writes_every_figure_positive)
{
    char json[4096];
    temp_path(json, sizeof json);
    const char *args[] = {"--smoke", "--json", json, NULL};
    run_bench(args);
    ck_assert_msg(r.exit_code == 0, "overhead --smoke exited %d; output:\n%s", r.exit_code, r.out);

    /* the table: its title, its column header, a row per figure */
    ck_assert_msg(has_line_starting("clockworker overhead vs raw libevent"), "no title in:\n%s",
                  r.out);
    const char *header = strstr(r.out, "\nfigure ");
    ck_assert_msg(header != NULL, "no column header in:\n%s", r.out);
    const char *eol = strchr(header + 1, '\n');
    ck_assert_ptr_nonnull(eol);
    const char *cols[] = {" cw ", " libevent ", " ratio ", " target ", " met?"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        const char *c = strstr(header, cols[i]);
        ck_assert_msg(c && c < eol, "column \"%s\" missing from the header", cols[i]);
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_msg(has_line_starting(rows[i]), "no \"%s\" row in:\n%s", rows[i], r.out);

    struct figs f;
    parse_json(read_file_text(json), &f);
    unlink(json);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const double *v = fig(&f, required[i]);
        ck_assert_msg(v != NULL, "JSON has no %s", required[i]);
        ck_assert_msg(*v > 0, "JSON %s = %g, not positive", required[i], *v);
    }
}
END_TEST

START_TEST(only_runs_the_named_figures)
{
    char json[4096];
    temp_path(json, sizeof json);
    const char *args[] = {"--smoke", "--reps", "1", "--only", "pick,spawn", "--json", json, NULL};
    run_bench(args);
    ck_assert_msg(r.exit_code == 0, "exited %d; output:\n%s", r.exit_code, r.out);
    struct figs f;
    parse_json(read_file_text(json), &f);
    unlink(json);
    ck_assert_ptr_nonnull(fig(&f, "pick_ns.1024"));
    ck_assert_ptr_nonnull(fig(&f, "spawn_ns.cw"));
    ck_assert_ptr_null(fig(&f, "yield_ns.cw"));
    ck_assert_ptr_null(fig(&f, "task_overhead_bytes"));
    ck_assert_ptr_null(fig(&f, "remote_wakes_per_s.1"));
    ck_assert_msg(!has_line_starting("yield "), "a yield row in:\n%s", r.out);
}
END_TEST

START_TEST(bad_usage_exits_2)
{
    const char *bad[][4] = {
        {"--only", "bogus", NULL, NULL},
        {"--reps", "0", NULL, NULL},
        {"--reps", "x", NULL, NULL},
        {"--quick", "--smoke", NULL, NULL},
        {"--json", NULL, NULL, NULL},
        {"--frobnicate", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_bench(bad[i]);
        ck_assert_msg(r.exit_code == 2, "%s %s: exit %d", bad[i][0], bad[i][1] ? bad[i][1] : "",
                      r.exit_code);
        ck_assert_str_eq(r.out, ""); /* the usage goes to stderr */
    }
}
END_TEST

/* --loop NAME: the same table shape (title, columns, the spawn, yield and
 * ping-pong rows) and the same JSON keys, the loop's name where
 * libevent's say "libevent" ("libevent_active": NAME_rearm). */
static void check_loop(const char *loop)
{
    char json[4096], title[128], col[32], key[64];
    temp_path(json, sizeof json);
    const char *args[] = {"--smoke", "--loop", loop, "--json", json, NULL};
    run_bench(args);
    ck_assert_msg(r.exit_code == 0, "overhead --loop %s exited %d; output:\n%s", loop,
                  r.exit_code, r.out);
    snprintf(title, sizeof title, "clockworker overhead vs raw %s ", loop);
    ck_assert_msg(has_line_starting(title), "no title in:\n%s", r.out);
    const char *header = strstr(r.out, "\nfigure ");
    ck_assert_msg(header != NULL, "no column header in:\n%s", r.out);
    const char *eol = strchr(header + 1, '\n');
    ck_assert_ptr_nonnull(eol);
    snprintf(col, sizeof col, " %s ", loop);
    const char *cols[] = {" cw ", col, " ratio ", " target ", " met?"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        const char *c = strstr(header, cols[i]);
        ck_assert_msg(c && c < eol, "column \"%s\" missing from the header", cols[i]);
    }
    const char *rows_l[] = {"spawn->complete N=", "spawn chain N=", "yield ", "ping-pong ",
                            "cw_chan send->recv hop"};
    for (size_t i = 0; i < sizeof rows_l / sizeof rows_l[0]; i++)
        ck_assert_msg(has_line_starting(rows_l[i]), "no \"%s\" row in:\n%s", rows_l[i], r.out);
    ck_assert_msg(!has_line_starting("timer ") && !has_line_starting("pick "),
                  "a libevent-only row in:\n%s", r.out);

    struct figs f;
    parse_json(read_file_text(json), &f);
    unlink(json);
    const char *req[] = {"spawn_ns.cw", "spawn_chain_ns.cw", "yield_ns.cw", "pingpong_ns.cw",
                         "chan_hop_ns"};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        const double *v = fig(&f, req[i]);
        ck_assert_msg(v != NULL && *v > 0, "JSON %s missing or not positive", req[i]);
    }
    const char *fmt[] = {"spawn_ns.%s_rearm", "spawn_chain_ns.%s_rearm", "yield_ns.%s",
                         "pingpong_ns.%s", "yield_ns_by_k.5.%s", "spawn_ns_by_size.300.%s_rearm"};
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        snprintf(key, sizeof key, fmt[i], loop);
        const double *v = fig(&f, key);
        ck_assert_msg(v != NULL && *v > 0, "JSON %s missing or not positive", key);
    }
    ck_assert_ptr_null(fig(&f, "task_overhead_bytes"));
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
    run_bench(args);
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
    run_bench(args);
    ck_assert_msg(r.exit_code == 2, "--loop uring without a ring: exit %d", r.exit_code);
    ck_assert_str_eq(r.out, "");
}
END_TEST

/* An unknown loop, a figure the loop does not measure: exit 2, nothing
 * on stdout (an unbuilt one: loop_*_has_the_same_shape). */
START_TEST(unbuilt_or_unknown_loop_exits_2)
{
    const char *bad[][6] = {
        {"--smoke", "--loop", "nope", NULL},
        {"--smoke", "--loop", NULL},
        {"--smoke", "--loop", "embed", "--only", "timer", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_bench(bad[i]);
        ck_assert_msg(r.exit_code == 2, "case %zu: exit %d", i, r.exit_code);
        ck_assert_str_eq(r.out, "");
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("overhead");
    TCase *tc = tcase_create("overhead");
    /* generous: the machine may be busy or the build instrumented (no test
     * asserts a duration) */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, smoke_run_prints_the_table_and_writes_every_figure_positive);
    tcase_add_test(tc, only_runs_the_named_figures);
    tcase_add_test(tc, bad_usage_exits_2);
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
