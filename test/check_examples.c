/* check_examples.c - the example programs do what the README says they do.
 *
 * Each test runs a built example (fork + exec, stdout through a pipe,
 * stderr left to the test log) from $top_builddir/examples (default ".",
 * the build directory `make check` runs in) and checks its exit status and
 * its output. Nothing here depends on timing: weighted is checked for the
 * format of its result and for counts above zero, never for its ratio,
 * and cancel for the consistency of its tick lines, not their number;
 * embed_poll runs on a clock of its own, so its whole output is checked.
 *
 * hello and weighted run once more on each loop this build has
 * (--loop NAME, exloops.h) and must print what they print on libevent;
 * a loop name that is unknown, or a loop not built, is refused with
 * exit status 2 and a message saying why.
 *
 * The README's excerpts of the examples are checked against the files, so
 * that they stay in sync: the "### <name>:" sections' code, and the lines
 * that differ between kvd --plain and kvd --callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exloops.h"
#include "testutil.h"

/* What a run of an example gave. */
struct run {
    int exit_code; /* exit status, or -1 if it did not exit normally */
    char out[64 * 1024];
    size_t len;
};

/* Run examples/<name> with the given arguments (NULL-terminated, argv[0]
 * excluded) and collect its stdout. Fails the test on a system error. */
static void run_example(const char *name, const char *const *args, struct run *r)
{
    char rel[256];
    ck_assert_int_lt(snprintf(rel, sizeof rel, "examples/%s", name), (int)sizeof rel);
    r->exit_code = run_built(rel, args, 1, r->out, sizeof r->out, &r->len);
}

/* The last line of the output, without its newline, copied to buf. */
static const char *last_line(const struct run *r, char *buf, size_t size)
{
    size_t end = r->len;
    if (end > 0 && r->out[end - 1] == '\n')
        end--;
    size_t start = end;
    while (start > 0 && r->out[start - 1] != '\n')
        start--;
    ck_assert_uint_lt(end - start, size);
    memcpy(buf, r->out + start, end - start);
    buf[end - start] = '\0';
    return buf;
}

/* Whether the output has exactly this line. */
static int has_line(const struct run *r, const char *line)
{
    size_t n = strlen(line);
    const char *p = r->out;
    while (*p) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
        if (!(p = strchr(p, '\n')))
            break;
        p++;
    }
    return 0;
}

static struct run r; /* static: 64 KiB is much for a stack */

START_TEST(hello_prints_exactly_42_and_exits_0)
{
    run_example("hello", NULL, &r);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_str_eq(r.out, "42\n");
}
END_TEST

/* Whether loop can run here; if not, the example must have failed to
 * create its executor (exit 1), and the test has nothing more to check. */
static bool loop_ran(const char *loop, const char *example)
{
    if (ex_loop_usable(loop))
        return true;
    ck_assert_int_eq(r.exit_code, 1);
    fprintf(stderr, "%s --loop %s: the kernel refuses this loop here: not checked\n", example,
            loop);
    return false;
}

START_TEST(hello_prints_42_on_every_loop)
{
    const char *args[] = {"--loop", ex_loops[_i], NULL};
    run_example("hello", args, &r);
    if (!loop_ran(ex_loops[_i], "hello"))
        return;
    ck_assert_msg(r.exit_code == 0, "hello --loop %s exited %d", ex_loops[_i], r.exit_code);
    ck_assert_str_eq(r.out, "42\n");
}
END_TEST

/* weighted's output on loop (NULL: no --loop): the counts line and the
 * last line in their format, work on both queues. */
static void check_weighted(const char *loop)
{
    const char *args[] = {"--duration-ms", "200", loop ? "--loop" : NULL, loop, NULL};
    run_example("weighted", args, &r);
    if (loop && !loop_ran(loop, "weighted"))
        return;
    ck_assert_msg(r.exit_code == 0, "weighted --loop %s exited %d; output:\n%s",
                  loop ? loop : "(default)", r.exit_code, r.out);
    ck_assert_msg(strncmp(r.out, "cpu_ms: high=", 13) == 0, "first line: %s", r.out);

    char line[256];
    last_line(&r, line, sizeof line);
    regex_t re;
    regmatch_t m[4];
    ck_assert_int_eq(regcomp(&re, "^high=([0-9]+) low=([0-9]+) ratio=([0-9]+\\.[0-9][0-9])$",
                             REG_EXTENDED),
                     0);
    int nomatch = regexec(&re, line, 4, m, 0);
    regfree(&re);
    ck_assert_msg(nomatch == 0, "last line does not match: \"%s\"", line);

    unsigned long long high = strtoull(line + m[1].rm_so, NULL, 10);
    unsigned long long low = strtoull(line + m[2].rm_so, NULL, 10);
    double ratio = strtod(line + m[3].rm_so, NULL);
    ck_assert_uint_gt(high, 0);
    ck_assert_uint_gt(low, 0);
    /* the printed ratio is high/low rounded to 2 decimals (no bound on it) */
    char expect[32];
    snprintf(expect, sizeof expect, "%.2f", (double)high / (double)low);
    ck_assert_double_eq_tol(ratio, strtod(expect, NULL), 0.001);
}

START_TEST(weighted_last_line_is_high_low_ratio_with_work_on_both_queues)
{
    check_weighted(NULL);
}
END_TEST

START_TEST(weighted_prints_the_same_lines_on_every_loop)
{
    check_weighted(ex_loops[_i]);
}
END_TEST

/* The examples that take --loop. */
static const char *const loop_examples[] = {"hello", "weighted", "echo_server"};

START_TEST(an_unknown_loop_is_refused_with_exit_2)
{
    const char *unknown[] = {"--loop", "nosuch", NULL};
    const char *noname[] = {"--loop", NULL};
    for (size_t i = 0; i < sizeof loop_examples / sizeof loop_examples[0]; i++) {
        const char *ex = loop_examples[i];
        char want[128];
        snprintf(want, sizeof want, "%s: --loop: unknown loop \"nosuch\"", ex);
        char rel[64];
        snprintf(rel, sizeof rel, "examples/%s", ex);
        r.exit_code = run_built(rel, unknown, 2, r.out, sizeof r.out, &r.len);
        ck_assert_msg(r.exit_code == 2, "%s --loop nosuch exited %d", ex, r.exit_code);
        ck_assert_msg(strstr(r.out, want) != NULL, "%s: stderr lacks \"%s\": %s", ex, want,
                      r.out);
        r.exit_code = run_built(rel, noname, 2, r.out, sizeof r.out, &r.len);
        ck_assert_msg(r.exit_code == 2, "%s --loop (no name) exited %d", ex, r.exit_code);
        ck_assert_msg(strstr(r.out, "--loop needs a name") != NULL, "%s: stderr: %s", ex, r.out);
    }
}
END_TEST

/* A loop this build has no driver for: exit 2 and the reason. In a build
 * with every driver, each is accepted instead (hello runs on it). */
START_TEST(a_loop_not_built_is_refused_with_exit_2_and_why)
{
    static const struct {
        const char *loop, *library;
        bool built;
    } opt[] = {
#ifdef HAVE_LIBUV
        {"libuv", "libuv", true},
#else
        {"libuv", "libuv", false},
#endif
#ifdef HAVE_LIBURING
        {"uring", "liburing", true},
#else
        {"uring", "liburing", false},
#endif
    };
    for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++) {
        const char *args[] = {"--loop", opt[k].loop, NULL};
        if (opt[k].built) {
            run_example("hello", args, &r);
            if (ex_loop_usable(opt[k].loop))
                ck_assert_int_eq(r.exit_code, 0);
            continue;
        }
        for (size_t i = 0; i < sizeof loop_examples / sizeof loop_examples[0]; i++) {
            char rel[64], want[256];
            snprintf(rel, sizeof rel, "examples/%s", loop_examples[i]);
            snprintf(want, sizeof want,
                     "%s: this build has no %s driver (configure found no %s)\n",
                     loop_examples[i], opt[k].loop, opt[k].library);
            r.exit_code = run_built(rel, args, 2, r.out, sizeof r.out, &r.len);
            ck_assert_int_eq(r.exit_code, 2);
            ck_assert_str_eq(r.out, want);
        }
    }
}
END_TEST

START_TEST(help_mentions_the_loop_option)
{
    const char *args[] = {"--help", NULL};
    for (size_t i = 0; i < sizeof loop_examples / sizeof loop_examples[0]; i++) {
        run_example(loop_examples[i], args, &r);
        ck_assert_msg(r.exit_code == 0, "%s --help exited %d", loop_examples[i], r.exit_code);
        ck_assert_msg(strstr(r.out, "--loop libevent|libuv|uring|embed") != NULL,
                      "%s --help: %s", loop_examples[i], r.out);
    }
}
END_TEST

START_TEST(weighted_rejects_a_bad_duration_with_exit_2)
{
    const char *bad[][3] = {
        {"--duration-ms", "abc", NULL},
        {"--duration-ms", "-5", NULL},
        {"--duration-ms", NULL, NULL},
        {"--frobnicate", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_example("weighted", bad[i], &r);
        ck_assert_int_eq(r.exit_code, 2);
        ck_assert_str_eq(r.out, ""); /* the usage goes to stderr */
    }
}
END_TEST

START_TEST(cancel_prints_cancelled_status_and_its_tick_count_and_exits_0)
{
    run_example("cancel", NULL, &r);
    ck_assert_msg(r.exit_code == 0, "cancel exited %d; output:\n%s", r.exit_code, r.out);

    char want[128];
    snprintf(want, sizeof want, "status: %s", cw_strerror(-ECANCELED));
    ck_assert_msg(has_line(&r, want), "no \"%s\" line in:\n%s", want, r.out);

    /* "ticks: n" is the last line, and n "tick k" lines (k = 1..n) precede
     * it: the count main prints is the ticks the task made before the
     * abort, none after. */
    char line[128];
    int n = -1, end = 0;
    last_line(&r, line, sizeof line);
    ck_assert_msg(sscanf(line, "ticks: %d%n", &n, &end) == 1 && line[end] == '\0',
                  "last line: \"%s\"", line);
    ck_assert_int_ge(n, 0);
    for (int k = 1; k <= n + 1; k++) {
        char tick[32];
        snprintf(tick, sizeof tick, "tick %d", k);
        ck_assert_msg(has_line(&r, tick) == (k <= n), "\"%s\" %s in:\n%s", tick,
                      k <= n ? "missing" : "after the abort", r.out);
    }
}
END_TEST

START_TEST(panic_prints_epanic_status_and_the_message_and_exits_0)
{
    run_example("panic", NULL, &r);
    ck_assert_msg(r.exit_code == 0, "panic exited %d; output:\n%s", r.exit_code, r.out);
    char want[256];
    snprintf(want, sizeof want, "status: %s\nmessage: something went wrong: 7\n",
             cw_strerror(CW_EPANIC));
    ck_assert_str_eq(r.out, want);
}
END_TEST

/* ---- README excerpts --------------------------------------------------- */

/* The whole file, NUL-terminated (free it), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - 1 - len, f)) > 0) {
        len += n;
        if (len == cap - 1) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    ck_assert(!ferror(f));
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* The source directory: $srcdir (set by `make check`), else the build
 * directory or its parent, whichever holds the README and the examples. */
static const char *source_dir(char *buf, size_t size)
{
    const char *top = getenv("top_builddir");
    const char *srcdir = getenv("srcdir");
    if (!top || !*top)
        top = ".";
    const struct {
        const char *dir, *suffix;
    } cand[] = {{srcdir && *srcdir ? srcdir : top, ""}, {top, ""}, {top, "/.."}};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        char a[4096], b[4096];
        if (snprintf(buf, size, "%s%s", cand[i].dir, cand[i].suffix) >= (int)size
            || snprintf(a, sizeof a, "%s/README", buf) >= (int)sizeof a
            || snprintf(b, sizeof b, "%s/examples/hello.c", buf) >= (int)sizeof b)
            continue;
        if (access(a, R_OK) == 0 && access(b, R_OK) == 0)
            return buf;
    }
    ck_abort_msg("README and examples/hello.c not found (srcdir=%s, top_builddir=%s)",
                 srcdir ? srcdir : "(unset)", top);
    return NULL;
}

/* s[0..n) without leading and trailing blanks, into out. */
static void trim(const char *s, size_t n, char *out, size_t size)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    ck_assert_uint_lt(n, size);
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Whether text has a line equal to want once both are trimmed. */
static bool has_trimmed_line(const char *text, const char *want)
{
    char line[1024];
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n < sizeof line) {
            trim(p, n, line, sizeof line);
            if (strcmp(line, want) == 0)
                return true;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* Its clock is advanced by the work only: the whole output is fixed. */
START_TEST(embed_poll_prints_the_same_run_every_time)
{
    run_example("embed_poll", NULL, &r);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_str_eq(r.out,
                     "embed_poll: a poll() loop hosts the executor (embed)\n"
                     "reader: waiting for the pipe\n"
                     "stopper: 100 ms passed, stop\n"
                     "reader: got high=75 low=25\n"
                     "host: every task ended, nothing watched: the loop returned\n"
                     "high/low = 3.0 (weights 3:1)\n");
}
END_TEST

/* A whole line of out matches the extended regular expression re. */
static bool has_line_matching(const char *out, const char *re)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
    bool ok = regexec(&r, out, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

START_TEST(stall_reports_the_blocked_poll_with_its_stack_then_dumps_the_tasks)
{
    struct run r;
    run_example("stall", NULL, &r);
    ck_assert_msg(r.exit_code == 0, "stall exited %d:\n%s", r.exit_code, r.out);
    /* the watchdog, while the poll blocks: where it is stuck */
    const char *wd = strstr(r.out, ", poll lookup_poll: running for ");
    ck_assert_msg(wd && has_line_matching(r.out, "^clockworker: stall: queue 1, task 0x[0-9a-f]+, "
                                                 "poll lookup_poll: running for [0-9]+\\.[0-9]{3} "
                                                 "ms \\(threshold 20\\.000 ms\\), stack:$"),
                  "no watchdog report in:\n%s", r.out);
    const char *in_lookup = strstr(wd, "(blocking_lookup+0x");
    const char *in_poll = strstr(wd, "(lookup_poll+0x");
    ck_assert_msg(in_lookup && in_poll && in_lookup < in_poll, "stack:\n%s", wd);
    /* after the poll: at least the 100 ms it blocked */
    unsigned long ms;
    const char *ran = strstr(r.out, ", poll lookup_poll: ran ");
    ck_assert_msg(ran && sscanf(ran, ", poll lookup_poll: ran %lu.", &ms) == 1 && ms >= 100,
                  "no after-poll report in:\n%s", r.out);
    /* the dump: the ticker asleep (overdue), the forgetful task flagged */
    ck_assert_msg(has_line_matching(r.out, "^clockworker tasks: 2 live, accounting on$"), "%s",
                  r.out);
    ck_assert_msg(has_line_matching(r.out, "^  0x[0-9a-f]+ +2 waiting:sleep +[0-9.]+ +1 +[0-9.]+ "
                                           "+[0-9.]+ ticker_poll$"),
                  "no ticker line in:\n%s", r.out);
    ck_assert_msg(has_line_matching(r.out, "^  0x[0-9a-f]+ +2 waiting:none +[0-9.]+ +1 +[0-9.]+ "
                                           "+[0-9.]+ forgetful_poll NO-WAKE$"),
                  "no forgetful line in:\n%s", r.out);
    ck_assert_msg(has_line_matching(r.out, "^stalls: 1$"), "%s", r.out);
}
END_TEST

START_TEST(readme_excerpts_are_lines_of_the_example_files)
{
    static const char *const names[] = {"hello", "weighted", "cancel", "panic"};
    char dir[2048], path[4096], line[1024];
    source_dir(dir, sizeof dir);
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/README", dir), (int)sizeof path);
    char *readme = slurp(path);
    ck_assert_ptr_nonnull(readme);

    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        /* The section "### <name>: ..." runs to the next heading. */
        char head[64];
        snprintf(head, sizeof head, "\n### %s:", names[k]);
        const char *sec = strstr(readme, head);
        ck_assert_msg(sec != NULL, "README has no \"### %s:\" section", names[k]);
        sec += strlen(head);
        const char *end = strstr(sec, "\n### ");
        const char *end2 = strstr(sec, "\n---");
        if (!end || (end2 && end2 < end))
            end = end2;
        ck_assert_ptr_nonnull(end);

        ck_assert_int_lt(snprintf(path, sizeof path, "%s/examples/%s.c", dir, names[k]),
                         (int)sizeof path);
        char *src = slurp(path);
        ck_assert_msg(src != NULL, "cannot read %s", path);

        /* Each indented (code) line, but the placeholders, is a line of
         * the file; "{ ... }" stands for a block the file opens there. */
        int checked = 0;
        for (const char *p = sec; p < end;) {
            const char *e = memchr(p, '\n', (size_t)(end - p));
            size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
            if (n > 4 && strncmp(p, "    ", 4) == 0) {
                trim(p, n, line, sizeof line);
                char *dots = strstr(line, "{ ... }");
                if (dots)
                    strcpy(dots, "{");
                if (strcmp(line, "...") != 0 && strcmp(line, "/* in main: */") != 0) {
                    ck_assert_msg(has_trimmed_line(src, line),
                                  "README excerpt of %s.c has a line the file lacks: %s",
                                  names[k], line);
                    checked++;
                }
            }
            if (!e)
                break;
            p = e + 1;
        }
        ck_assert_msg(checked >= 8, "README: only %d code lines for %s", checked, names[k]);
        free(src);
    }
    free(readme);
}
END_TEST

/* The README shows, after a line holding KVD_DIFF, the lines of
 * examples/kvd.c that differ between --plain ("- ") and --callbacks
 * ("+ "): each must be a line of the file ("{ ... }" stands for a block
 * the file opens there; "..." for lines left out). */
#define KVD_DIFF "The lines that differ in examples/kvd.c"

START_TEST(readme_kvd_diff_lines_are_lines_of_kvd)
{
    char dir[2048], path[4096], line[1024];
    source_dir(dir, sizeof dir);
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/README", dir), (int)sizeof path);
    char *readme = slurp(path);
    ck_assert_ptr_nonnull(readme);
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/examples/kvd.c", dir), (int)sizeof path);
    char *src = slurp(path);
    ck_assert_msg(src != NULL, "cannot read %s", path);

    const char *p = strstr(readme, KVD_DIFF);
    ck_assert_msg(p != NULL, "README has no \"%s\"", KVD_DIFF);
    /* The paragraph runs to its blank line; the excerpt is the indented
     * block after it, up to the next line that is not indented. */
    p = strstr(p, "\n\n");
    ck_assert_ptr_nonnull(p);
    p += 2;
    int minus = 0, plus = 0;
    for (;;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n < 4 || strncmp(p, "    ", 4) != 0)
            break;
        trim(p, n, line, sizeof line);
        if (strcmp(line, "...") != 0) {
            ck_assert_msg((line[0] == '-' || line[0] == '+') && line[1] == ' ',
                          "README kvd excerpt: a line without \"- \" or \"+ \": %s", line);
            char *code = line + 2;
            while (*code == ' ')
                code++;
            char *dots = strstr(code, "{ ... }");
            if (dots)
                strcpy(dots, "{");
            ck_assert_msg(has_trimmed_line(src, code),
                          "README kvd excerpt has a line examples/kvd.c lacks: %s", code);
            if (line[0] == '-')
                minus++;
            else
                plus++;
        }
        if (!e)
            break;
        p = e + 1;
    }
    ck_assert_msg(minus >= 4 && plus >= 4, "README kvd excerpt: only %d - and %d + lines", minus,
                  plus);
    free(src);
    free(readme);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");
    /* generous: the machine may be busy (no test asserts a duration) */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hello_prints_exactly_42_and_exits_0);
    tcase_add_test(tc, weighted_last_line_is_high_low_ratio_with_work_on_both_queues);
    tcase_add_test(tc, weighted_rejects_a_bad_duration_with_exit_2);
    tcase_add_loop_test(tc, hello_prints_42_on_every_loop, 0, EX_NLOOPS);
    tcase_add_loop_test(tc, weighted_prints_the_same_lines_on_every_loop, 0, EX_NLOOPS);
    tcase_add_test(tc, an_unknown_loop_is_refused_with_exit_2);
    tcase_add_test(tc, a_loop_not_built_is_refused_with_exit_2_and_why);
    tcase_add_test(tc, help_mentions_the_loop_option);
    tcase_add_test(tc, cancel_prints_cancelled_status_and_its_tick_count_and_exits_0);
    tcase_add_test(tc, panic_prints_epanic_status_and_the_message_and_exits_0);
    tcase_add_test(tc, embed_poll_prints_the_same_run_every_time);
    tcase_add_test(tc, stall_reports_the_blocked_poll_with_its_stack_then_dumps_the_tasks);
    tcase_add_test(tc, readme_excerpts_are_lines_of_the_example_files);
    tcase_add_test(tc, readme_kvd_diff_lines_are_lines_of_kvd);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
