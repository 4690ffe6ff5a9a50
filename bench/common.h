/* common.h - what bench/fgbg and bench/overhead both use: clocks, the
 * statistics of their tables, option and JSON helpers, and the raw event
 * loop they measure against.
 *
 * The scenarios stay in each program; this is machinery only. Everything
 * here but the last section knows no event loop, so that a later --loop
 * (libevent, libuv, io_uring, an embed driver) has one place to grow: a
 * constructor per loop next to bench_base_new(), each program keeping its
 * own raw baseline per loop.
 */
#ifndef CW_BENCH_COMMON_H
#define CW_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- clocks ----------------------------------------------------------------
 * Inline: the benches time loops and spin on these, and a call into
 * another object (no LTO here) would add its cost to every figure that
 * reads them, "one clock_gettime" in bench/overhead among them. */

static inline uint64_t bench_ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/* CLOCK_MONOTONIC in ns: what every bench time is measured with. */
static inline uint64_t bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return bench_ts_ns(&ts);
}

/* The CPU time this thread has used, in ns (a syscall, ~0.5 us). */
static inline uint64_t bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return bench_ts_ns(&ts);
}

/* ---- statistics ------------------------------------------------------------ */

/* qsort() comparators, ascending. */
int bench_cmp_double(const void *a, const void *b);
int bench_cmp_u64(const void *a, const void *b);

/* The median of v[0..n-1] (the mean of the middle two when n is even), 0
 * when n is 0. Sorts v in place: the callers' arrays are scratch. */
double bench_median(double *v, size_t n);

/* Nearest-rank percentile q (0..1] of sorted[0..n-1], 0 when n is 0: a
 * value that was measured, never one between two. */
uint64_t bench_pct(const uint64_t *sorted, size_t n, double q);

/* ---- options ----------------------------------------------------------------- */

/* A decimal number in 0..max with nothing around it (no sign): true and
 * *out set, or false and *out untouched. */
bool bench_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* Walks a comma-separated list: *p starts at the list and moves on; each
 * call gives the next item (*item, *len; an item may be empty, as in
 * "a,,b" or ",a", but a last comma ends the list), false at the end. The
 * caller says what an empty item means. */
bool bench_list_next(const char **p, const char **item, size_t *len);

/* The index of the name tok[0..len-1] among n names, or -1. The names are
 * members of a table of structs, stride bytes apart; name points at the
 * first one (BENCH_NAMES gives the three arguments). */
long bench_name_index(const char *tok, size_t len, const char *const *name, size_t stride,
                      size_t n);
#define BENCH_NAMES(table, member) \
    (&(table)[0].member), sizeof(table)[0], (sizeof(table) / sizeof(table)[0])

/* ---- JSON ---------------------------------------------------------------------- */

/* Writes {"k0": v0, "k1": v1, ...}, each value with prec decimals. */
void bench_json_nums(FILE *f, const char *const *keys, const double *v, size_t n, int prec);

/* ---- the raw event loop -----------------------------------------------------------
 * libevent's base; bench/loops.h builds every loop (--loop) on it. */

struct event_base;

/* A new base, EVENT_BASE_FLAG_PRECISE_TIMER when precise (and then only if
 * the flag is honoured), or NULL. */
struct event_base *bench_base_new(bool precise);

#endif
