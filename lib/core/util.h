/*
 * util.h - what every file of the core uses: the limits, the hot-path assert,
 * allocation through the user's allocator, an intrusive list, deadlines
 * and histogram records. Not installed.
 */
#ifndef CW_CORE_UTIL_H
#define CW_CORE_UTIL_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#include "clockworker.h"

#define CW__MAX_SLICE_NS ((uint64_t)1 << 40)

/* Largest state cw_spawn() and cw_spawn_remote() accept: keeps size
 * arithmetic far from overflow. */
#define CW__MAX_STATE ((size_t)1 << 40)

/* An internal invariant on the poll path, where it would cost a compare
 * and a branch per poll: checked in the test build (CW_DEBUG, which runs
 * every suite) and compiled out of the installed library. Everywhere
 * else, plain assert(). */
#ifdef CW_DEBUG
#define CW_ASSERT_HOT(x) assert(x)
#else
#define CW_ASSERT_HOT(x) ((void)sizeof(!(x)))
#endif


/* Misuse that a void function cannot report (another thread, a free
 * from inside a round): one line on stderr, "clockworker: <call>: <what>",
 * then the caller returns having done nothing. Cold; never on the poll
 * path. (error.c) */
__attribute__((cold)) void cw__misuse(const char *call, const char *what);
/* Misuse the checked build (--enable-debug, CW_CHECKED) detects: one
 * line, "clockworker: <call>(<obj>): <what>", then abort(). */
CW_NORETURN __attribute__((cold)) void cw__misuse_abort(const char *call, const void *obj,
                                                        const char *what);

/* A function's name for a report (the stall detector, the task dump):
 * its symbol if dladdr(3) finds an exported one ("name", or
 * "name+0x<off>" inside it), else "<object>+0x<offset>" (the object's
 * base name: addr2line -e <object> <offset> gives the line), else
 * "0x<address>"; never a space in it. Writes at most n bytes, NUL
 * included; returns buf. Any thread (stall.c). */
char *cw__fn_name(const void *fn, char *buf, size_t n);

/* A report's writer (stats_dump.c, taskdump.c): cw__put() writes on
 * after a failure without doing anything, and failed says there was
 * one. */
typedef struct cw__out {
    FILE *f;
    bool failed;
} cw__out;
CW_PRINTF(2, 3) void cw__put(cw__out *o, const char *fmt, ...);

/* ---- allocation: every allocation in the library goes through here ---- */
void *cw__malloc(size_t n);
void *cw__calloc(size_t n, size_t size);
void *cw__realloc(void *p, size_t n);
void cw__free(void *p);
/* Held by each config and each executor's shared part (which lives until
 * the last task block is freed): cw_set_allocator() says -EBUSY meanwhile. */
void cw__alloc_hold(void);
void cw__alloc_unhold(void);

/* ---- intrusive circular doubly-linked list (as libuv's queue.h) -------- */
/* Every operation is O(1); no allocation. */
typedef struct cw__list {
    struct cw__list *prev, *next;
} cw__list;

#define cw__container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void cw__list_init(cw__list *h)
{
    h->prev = h->next = h;
}

static inline bool cw__list_empty(const cw__list *h)
{
    return h->next == h;
}

static inline void cw__list_push_back(cw__list *h, cw__list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Take n out of its list, leaving n's own links stale (the poll loop
 * relinks the task or ends it; cw__list_remove() when they are read). */
static inline void cw__list_unlink(cw__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static inline void cw__list_remove(cw__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- deadlines and histograms ------------------------------------------ */
/* Longest span a deadline may be ahead of now: virtual and wall times are
 * compared by signed difference, so anything beyond 2^63 would read as
 * past. 2^62 ns is 146 years: settings larger than that mean "never". */
#define CW__MAX_SPAN_NS ((uint64_t)1 << 62)

static inline uint64_t cw__deadline(uint64_t now, uint64_t span)
{
    return now + (span < CW__MAX_SPAN_NS ? span : CW__MAX_SPAN_NS);
}

/* Record v in h: a few instructions, inlined on the poll path. */
static inline void cw__hist_record(cw_hist *h, uint64_t v)
{
    unsigned b = v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
    h->buckets[b < CW_HIST_BUCKETS ? b : CW_HIST_BUCKETS - 1]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

#endif
