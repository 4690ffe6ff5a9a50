/* common.c - the machinery bench/fgbg and bench/overhead share (see
 * common.h). */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

/* ---- statistics ------------------------------------------------------------ */

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t bench_pct(const uint64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)ceil(q * (double)n);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

/* ---- options ----------------------------------------------------------------- */

bool bench_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    /* strtoull() would take a sign, and turn "-1" into a huge number */
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x > max)
        return false;
    *out = x;
    return true;
}

bool bench_list_next(const char **p, const char **item, size_t *len)
{
    if (!**p)
        return false;
    *item = *p;
    *len = strcspn(*p, ",");
    *p += *len;
    if (**p == ',')
        ++*p;
    return true;
}

long bench_name_index(const char *tok, size_t len, const char *const *name, size_t stride,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = *(const char *const *)((const char *)name + i * stride);
        if (strlen(s) == len && strncmp(tok, s, len) == 0)
            return (long)i;
    }
    return -1;
}

/* ---- JSON ---------------------------------------------------------------------- */

void bench_json_nums(FILE *f, const char *const *keys, const double *v, size_t n, int prec)
{
    fputc('{', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\"%s\": %.*f", i ? ", " : "", keys[i], prec, v[i]);
    fputc('}', f);
}

/* ---- the raw event loop ----------------------------------------------------------- */

struct event_base *bench_base_new(bool precise)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;
    if (ec && (!precise || event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER) == 0))
        base = event_base_new_with_config(ec);
    if (ec)
        event_config_free(ec);
    return base;
}
