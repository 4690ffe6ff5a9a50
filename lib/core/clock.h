/*
 * clock.h - the default clock's state and its pure parts (clock.c). Not
 * installed.
 */
#ifndef CW_CORE_CLOCK_H
#define CW_CORE_CLOCK_H

#include "util.h"

/* ---- the default clock (clock.c) ------------------------------------------
 * CLOCK_MONOTONIC read through the TSC between anchors where the TSC is
 * invariant or the kernel keeps time with it; clock_gettime() elsewhere. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CW__HAVE_TSC 1 /* rdtsc and <cpuid.h> */
#endif
struct cw__clock {
    uint64_t start_ns, start_tsc;   /* calibration window start */
    uint64_t anchor_ns, anchor_tsc; /* latest clock_gettime() and its TSC */
    uint64_t anchor_ticks;          /* re-anchor after this many ticks */
    uint64_t ns_per_tick_q32;       /* measured rate, 32.32 fixed point */
    uint64_t last_ns;               /* the latest reading: never go back */
    uint64_t (*counter)(void);      /* re-reads it at an anchor; NULL: no */
    bool calibrated;
};

uint64_t cw__monotonic_ns(void *arg);   /* clock_gettime(CLOCK_MONOTONIC) */
uint64_t cw__clock_now(void *clock);    /* arg: struct cw__clock * */
/* The same from a counter value and a clock (tests drive them). */
uint64_t cw__clock_read(struct cw__clock *c, uint64_t tsc, uint64_t (*mono)(void *));
/* Start from the pair (tsc, ns), with no counter to re-read (set it after). */
void cw__clock_start(struct cw__clock *c, uint64_t tsc, uint64_t ns);
/* Whether to read the TSC, from what the machine reports: true when
 * CPUID leaf 0x80000007 exists (max_ext_leaf, EAX of leaf 0x80000000, is
 * at least 0x80000007) and its EDX has bit 8 (invariant TSC) set, or when
 * clocksource (the contents of .../clocksource0/current_clocksource, a
 * trailing newline allowed; NULL: unreadable) is "tsc". Pure: the tests
 * drive it with simulated inputs. */
bool cw__tsc_decide(uint32_t max_ext_leaf, uint32_t edx_80000007, const char *clocksource);
/* cw__tsc_decide() on this machine's CPUID and clocksource, probed once
 * per process (thread-safe); false where CW__HAVE_TSC is not defined. */
bool cw__tsc_usable(void);
/* Start *c on the TSC if use_tsc (and CW__HAVE_TSC): true, and the
 * executor reads cw__clock_now(c). False: it reads cw__monotonic_ns. */
bool cw__clock_init(struct cw__clock *c, bool use_tsc);

#endif
