/* check_model.c - the model-based random test (model.c) as a Check suite.
 *
 * A fixed seed of 1,000,000 operations (fewer under sanitizers or
 * valgrind, see fixed_ops()), a few smaller seeds, and the byte-input
 * path the fuzzer uses. By hand, for long runs:
 *
 *     test/check_model --seed N --ops N [--verbose]
 *
 * runs that one seed instead (and prints what it covered).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

/* How much slower the build runs the model: ThreadSanitizer ~5x (with
 * the helper thread's hand-offs, more), AddressSanitizer ~1.2-2x. */
#if defined(__SANITIZE_THREAD__)
#define SLOWDOWN 10
#elif defined(__SANITIZE_ADDRESS__)
#define SLOWDOWN 5
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLOWDOWN 10
#elif __has_feature(address_sanitizer)
#define SLOWDOWN 5
#endif
#endif
#ifndef SLOWDOWN
#define SLOWDOWN 1
#endif

#define FIXED_SEED 20241125u
#define FIXED_OPS 1000000u

static uint64_t g_seed = FIXED_SEED, g_ops;
static int g_by_hand, g_verbose;

static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

/* Operations for the fixed seed: the full million (about 25 s on the
 * CI machine, gcc -O2) unless instrumented: 1/5 under ASan (~30 s), 1/10
 * under TSan (~65 s), 1/50 under valgrind (~15 s). */
static uint64_t fixed_ops(void)
{
    if (under_valgrind())
        return FIXED_OPS / 50;
    return FIXED_OPS / SLOWDOWN;
}

static model_result run_seed(uint64_t seed, uint64_t ops)
{
    model_opts o = {.verbose = g_verbose, .count_allocs = 1};
    model_result r;
    ck_assert_int_eq(model_run_seed(seed, ops, &o, &r), 0);
    ck_assert_uint_eq(r.ops, ops);
    return r;
}

START_TEST(fixed_seed)
{
    uint64_t ops = fixed_ops();
    model_result r = run_seed(FIXED_SEED, ops);
    /* the run covered what it is meant to check */
    ck_assert_uint_gt(r.polls, ops);
    ck_assert_uint_gt(r.executors, ops / 20000);
    ck_assert_uint_gt(r.preemptions, 0);
    ck_assert_uint_gt(r.wakes_remote, ops / 100);
    ck_assert_uint_gt(r.sleeps_fired, ops / 100);
    ck_assert_uint_gt(r.panics, ops / 1000);
    ck_assert_uint_gt(r.aborts, ops / 1000);
    ck_assert_uint_gt(r.long_windows, ops / 10000);
}
END_TEST

START_TEST(small_seeds)
{
    static const uint64_t seeds[] = {1, 2, 0xdeadbeef, 77777};
    for (unsigned i = 0; i < sizeof seeds / sizeof *seeds; i++)
        run_seed(seeds[i], fixed_ops() / 20);
}
END_TEST

START_TEST(byte_inputs)
{
    /* the fuzzer's path: empty, constant and short inputs end cleanly */
    static uint8_t buf[4096];
    model_opts o = {.count_allocs = 1};
    ck_assert_int_eq(model_run(NULL, 0, &o, NULL), 0);
    for (int v = 0; v < 256; v += 15) {
        memset(buf, v, sizeof buf);
        ck_assert_int_eq(model_run(buf, sizeof buf, &o, NULL), 0);
    }
    uint64_t s = 12345;
    for (int k = 0; k < 50; k++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (uint8_t)(s >> 56);
        }
        ck_assert_int_eq(model_run(buf, (size_t)(k * 81) % sizeof buf, &o, NULL), 0);
    }
}
END_TEST

START_TEST(by_hand)
{
    run_seed(g_seed, g_ops);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    if (g_by_hand) {
        /* generous: about 20 s per million operations unsanitized */
        uint64_t t = 120 + g_ops / 10000;
        tcase_set_timeout(tc, (double)t);
        tcase_add_test(tc, by_hand);
    } else {
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, fixed_seed);
        tcase_add_test(tc, small_seeds);
        tcase_add_test(tc, byte_inputs);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            g_seed = strtoull(argv[++i], NULL, 0);
            g_by_hand = 1;
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            g_ops = strtoull(argv[++i], NULL, 0);
            g_by_hand = 1;
        } else if (!strcmp(argv[i], "--verbose")) {
            g_verbose = 1;
        } else {
            fprintf(stderr, "usage: %s [--seed N] [--ops N] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    if (g_by_hand && !g_ops)
        g_ops = FIXED_OPS;
    return run_suite(suite());
}
