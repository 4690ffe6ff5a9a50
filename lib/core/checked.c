/*
 * checked.c - the checked build's misuse checks (./configure
 * --enable-debug: CW_CHECKED), out of line: a handle whose reference was
 * given back (tasks.h, "handles"). Nothing here is compiled into other
 * builds.
 */
#include "config.h"

#include "internal.h"

#ifdef CW_CHECKED

#include <stdint.h>

void cw__handle_check(const void *h, const cw__task *t, const char *call, bool join)
{
    unsigned g = atomic_load_explicit(&t->gen, memory_order_relaxed);
    if (g == 0)
        cw__misuse_abort(call, h, join ? "join handle already freed (freed twice, or used after "
                                         "cw_join_free())"
                                       : "waker already released (used after its task's last "
                                         "reference was given back)");
#ifdef CW__TAG_SHIFT
    if ((g & 0xffffu) != (uintptr_t)h >> CW__TAG_SHIFT)
        cw__misuse_abort(call, h, join ? "stale join handle: its task's block now holds another "
                                         "task (used after cw_join_free())"
                                       : "stale waker: its task's block now holds another task "
                                         "(used after its last reference was given back)");
#endif
}

#else
typedef int cw__checked_unused; /* (an empty file is not ISO C) */
#endif
