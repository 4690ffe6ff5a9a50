/*
 * clock.c - the executor's default clock: CLOCK_MONOTONIC, read through
 * the CPU's time-stamp counter between readings of the real thing.
 *
 * The executor reads its clock after every poll. clock_gettime() costs
 * 20-50 ns on the VMs we measured (bench/overhead prints it), more than a
 * whole libevent callback; rdtsc costs a third of that. Where the counter
 * is invariant (the CPU says so: CPUID 0x80000007 EDX bit 8, it ticks at
 * one rate through P-, C- and T-states), or where the kernel itself keeps
 * time with it (its clocksource is "tsc"), a reading is
 *
 *     anchor_ns + (rdtsc() - anchor_tsc) * ns_per_tick
 *
 * with the anchor taken from clock_gettime() at least every millisecond of
 * counter time, and ns_per_tick measured over the whole time since the
 * clock started (so its error shrinks as the process runs). At each
 * anchor the counter is checked against the clock: if it went backwards,
 * or predicted the time since the last anchor off by more than 1% (a
 * suspend during which the counter ran), the rate is measured again from
 * there. Readings never go backwards (a re-anchoring that would step back
 * a few ns is clamped).
 *
 * Why an invariant counter is enough when the kernel keeps time with
 * something else: the kernel picks its clocksource for its own reasons.
 * Guests prefer kvm-clock (or are booted with tsc=unstable) because the
 * VM may be migrated or restored on a host whose counter runs at another
 * rate or from another offset, and the kernel's own time must never
 * jump. Ours only interpolates between clock_gettime() readings at most
 * 1 ms of counter time apart: a counter that jumps back or more than 1 ms
 * ahead forces an anchor at the next reading, and one that jumps less,
 * or changes rate by more than 1%, is caught by the check at the next
 * anchor, so a reading is at most about a millisecond off, and never
 * goes back. (In a VM the bit is what the hypervisor reports.) The
 * kernel's using the TSC as its clocksource is kept as a second reason,
 * sufficient alone: it checked the counter itself, and older CPUs and
 * some hypervisors do not set the bit.
 * Until the first millisecond has passed, and on any other machine (or
 * any other architecture), every reading is clock_gettime(). An injected
 * clock (cw_config_set_clock()) replaces all of this.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#ifdef CW__HAVE_TSC
#include <cpuid.h>
#include <x86intrin.h>
#endif

#define ANCHOR_NS 1000000u /* re-anchor after this much counter time */

uint64_t cw__monotonic_ns(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ns since the anchor for ticks, by the measured rate (2^32 fixed point). */
static inline uint64_t ticks_to_ns(const struct cw__clock *c, uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * c->ns_per_tick_q32) >> 32);
}

/* Start measuring the rate again from (tsc, ns): readings come from
 * clock_gettime() until a millisecond has passed. */
static void recalibrate(struct cw__clock *c, uint64_t tsc, uint64_t ns)
{
    c->calibrated = false;
    c->start_tsc = tsc;
    c->start_ns = ns;
}

/* A (counter, clock) pair as tight as we can get it. An interrupt, or the
 * hypervisor taking the CPU, between the counter read and clock_gettime()
 * skews the pair by microseconds, and with it the rate measured from it:
 * 5 us in a 1 ms window makes the extrapolation run 0.5% fast. So the
 * counter is read again after the clock, and when the pair is not tight
 * (over 0.5 us), or is the one the rate is first measured from, two more
 * are taken; the one with the narrowest bracket wins, at its bracket's
 * middle. (Before the first calibration every reading is an anchor: those
 * that measure nothing take no extra pair.) */
static uint64_t anchor_pair(struct cw__clock *c, uint64_t *tsc, uint64_t (*mono)(void *))
{
    uint64_t ns = mono(NULL);
    if (!c->counter)
        return ns;
    uint64_t width = c->counter() - *tsc;
    if ((int64_t)width < 0)
        width = UINT64_MAX; /* the counter went back: no bracket at all */
    else
        *tsc += width / 2;
    if (c->calibrated ? width <= c->anchor_ticks / 2000 : ns - c->start_ns < ANCHOR_NS)
        return ns;
    for (int i = 0; i < 2; i++) {
        uint64_t a = c->counter(), n = mono(NULL), b = c->counter();
        if ((int64_t)(b - a) >= 0 && b - a < width) {
            width = b - a;
            *tsc = a + width / 2;
            ns = n;
        }
    }
    return ns;
}

static uint64_t anchor(struct cw__clock *c, uint64_t tsc, uint64_t (*mono)(void *))
{
    uint64_t ns = anchor_pair(c, &tsc, mono);
    if (c->calibrated) {
        /* Does the counter still agree with the clock since the last
         * anchor? It may not: it went backwards (reset on resume, another
         * CPU's counter), or it ran while the clock stood (suspend). Then
         * the rate measured so far is wrong: measure it again. */
        uint64_t wticks = tsc - c->anchor_tsc, wns = ns - c->anchor_ns;
        uint64_t predicted = ticks_to_ns(c, wticks);
        uint64_t diff = predicted > wns ? predicted - wns : wns - predicted;
        if ((int64_t)wticks < 0 || diff > wns / 100 + 1000)
            recalibrate(c, tsc, ns);
    }
    uint64_t dticks = tsc - c->start_tsc, dns = ns - c->start_ns;
    if ((int64_t)dticks > 0 && dns >= ANCHOR_NS) {
        c->ns_per_tick_q32 = (uint64_t)(((unsigned __int128)dns << 32) / dticks);
        if (c->ns_per_tick_q32 == 0) {
            recalibrate(c, tsc, ns); /* a counter far faster than 4 GHz/ns: no */
        } else {
            c->anchor_ticks = (uint64_t)(((unsigned __int128)ANCHOR_NS << 32) / c->ns_per_tick_q32);
            c->calibrated = true;
        }
    } else if ((int64_t)dticks < 0) {
        recalibrate(c, tsc, ns);
    }
    c->anchor_ns = ns;
    c->anchor_tsc = tsc;
    return ns;
}

uint64_t cw__clock_read(struct cw__clock *c, uint64_t tsc, uint64_t (*mono)(void *))
{
    uint64_t ns;
    if (__builtin_expect(c->calibrated, 1)) {
        uint64_t ticks = tsc - c->anchor_tsc;
        ns = ticks < c->anchor_ticks ? c->anchor_ns + ticks_to_ns(c, ticks) : anchor(c, tsc, mono);
    } else {
        ns = anchor(c, tsc, mono);
    }
    if ((int64_t)(ns - c->last_ns) < 0)
        ns = c->last_ns; /* never backwards */
    c->last_ns = ns;
    return ns;
}

void cw__clock_start(struct cw__clock *c, uint64_t tsc, uint64_t ns)
{
    memset(c, 0, sizeof *c);
    c->anchor_tsc = tsc;
    c->anchor_ns = c->last_ns = ns;
    recalibrate(c, tsc, ns);
}

bool cw__tsc_decide(uint32_t max_ext_leaf, uint32_t edx_80000007, const char *clocksource)
{
    if (max_ext_leaf >= 0x80000007u && (edx_80000007 & (1u << 8)))
        return true; /* invariant TSC */
    return clocksource && strncmp(clocksource, "tsc", 3) == 0 &&
           (clocksource[3] == '\0' || strcmp(clocksource + 3, "\n") == 0);
}

#ifdef CW__HAVE_TSC
static bool tsc_usable;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static void tsc_probe(void)
{
    unsigned int max_ext, edx, a, b, c;
    char buf[32] = {0};
    const char *cs = NULL;

    /* __get_cpuid() returns 0 for a leaf past the maximum it reports */
    if (!__get_cpuid(0x80000000u, &max_ext, &b, &c, &edx))
        max_ext = 0;
    if (max_ext < 0x80000007u || !__get_cpuid(0x80000007u, &a, &b, &c, &edx))
        edx = 0;
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, buf, sizeof buf - 1) > 0)
            cs = buf;
        close(fd);
    }
    tsc_usable = cw__tsc_decide(max_ext, edx, cs);
}

bool cw__tsc_usable(void)
{
    pthread_once(&tsc_once, tsc_probe);
    return tsc_usable;
}

uint64_t cw__clock_now(void *arg)
{
    return cw__clock_read(arg, __rdtsc(), cw__monotonic_ns);
}

static uint64_t read_tsc(void)
{
    return __rdtsc();
}

bool cw__clock_init(struct cw__clock *c, bool use_tsc)
{
    if (!use_tsc)
        return false;
    struct cw__clock probe = {.counter = read_tsc};
    uint64_t tsc = __rdtsc(), ns = anchor_pair(&probe, &tsc, cw__monotonic_ns);
    cw__clock_start(c, tsc, ns);
    c->counter = read_tsc;
    return true;
}
#else
bool cw__tsc_usable(void)
{
    return false;
}

uint64_t cw__clock_now(void *arg)
{
    return cw__monotonic_ns(arg);
}

bool cw__clock_init(struct cw__clock *c, bool use_tsc)
{
    (void)c;
    (void)use_tsc;
    return false;
}
#endif
