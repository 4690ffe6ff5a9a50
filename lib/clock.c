/*
 * clock.c - the executor's default clock: CLOCK_MONOTONIC, read through
 * the CPU's time-stamp counter between readings of the real thing.
 *
 * The executor reads its clock after every poll. clock_gettime() costs
 * 20-50 ns on the VMs we measured (bench/overhead prints it), more than a
 * whole libevent callback; rdtsc costs a third of that. Where the kernel
 * itself keeps time with the TSC (its clocksource is "tsc": the counter is
 * invariant and synchronised across CPUs, or the kernel would not use
 * it), a reading is
 *
 *     anchor_ns + (rdtsc() - anchor_tsc) * ns_per_tick
 *
 * with the anchor taken from clock_gettime() at least every millisecond of
 * counter time, and ns_per_tick measured over the whole time since the
 * clock started (so its error shrinks as the process runs). Readings never
 * go backwards (a re-anchoring that would step back a few ns is clamped).
 * Until the first millisecond has passed, and on any other machine, every
 * reading is clock_gettime(). An injected clock (cw_config_set_clock())
 * replaces all of this.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <x86intrin.h>
#define CW__HAVE_TSC 1
#endif

#define ANCHOR_NS 1000000u /* re-anchor after this much counter time */

uint64_t cw__monotonic_ns(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef CW__HAVE_TSC
static bool tsc_usable;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static void tsc_probe(void)
{
    char buf[32] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    tsc_usable = n >= 3 && strncmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
}

/* ns since the anchor for ticks, by the measured rate (2^32 fixed point). */
static inline uint64_t ticks_to_ns(const struct cw__clock *c, uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * c->ns_per_tick_q32) >> 32);
}

static uint64_t anchor(struct cw__clock *c)
{
    uint64_t tsc = __rdtsc();
    uint64_t ns = cw__monotonic_ns(NULL);
    uint64_t dticks = tsc - c->start_tsc, dns = ns - c->start_ns;
    if (dticks > 0 && dns >= ANCHOR_NS) {
        c->ns_per_tick_q32 = (uint64_t)(((unsigned __int128)dns << 32) / dticks);
        c->anchor_ticks = (uint64_t)(((unsigned __int128)ANCHOR_NS << 32) / c->ns_per_tick_q32);
        c->calibrated = true;
    }
    c->anchor_ns = ns;
    c->anchor_tsc = tsc;
    return ns;
}

uint64_t cw__clock_now(void *arg)
{
    struct cw__clock *c = arg;
    uint64_t ns;
    if (__builtin_expect(c->calibrated, 1)) {
        uint64_t ticks = __rdtsc() - c->anchor_tsc;
        ns = ticks < c->anchor_ticks ? c->anchor_ns + ticks_to_ns(c, ticks) : anchor(c);
    } else {
        ns = anchor(c);
    }
    if ((int64_t)(ns - c->last_ns) < 0)
        ns = c->last_ns; /* never backwards */
    c->last_ns = ns;
    return ns;
}

bool cw__clock_init(struct cw__clock *c)
{
    pthread_once(&tsc_once, tsc_probe);
    if (!tsc_usable)
        return false;
    memset(c, 0, sizeof *c);
    c->start_tsc = c->anchor_tsc = __rdtsc();
    c->start_ns = c->anchor_ns = c->last_ns = cw__monotonic_ns(NULL);
    return true;
}
#else
uint64_t cw__clock_now(void *arg)
{
    return cw__monotonic_ns(arg);
}

bool cw__clock_init(struct cw__clock *c)
{
    (void)c;
    return false;
}
#endif
