/**
 * @file clockworker/alloc.h
 * @brief Replace the allocator clockworker uses (process-wide).
 *
 * Every allocation the library makes (configs, executors, task blocks,
 * the timer heap, panic messages) goes through three functions, by default
 * malloc, realloc and free. A program may route them elsewhere (a pool, an
 * accounting wrapper, a test that fails the Nth allocation). libevent's own
 * allocations (events) are separate: see event_set_mem_functions().
 */
#ifndef CLOCKWORKER_ALLOC_H
#define CLOCKWORKER_ALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Set the allocator. Process-wide global state: call it before any
 * clockworker object exists (no config, no executor), typically at the top
 * of main(); memory allocated by one allocator must not be freed by
 * another. All three NULL restores malloc/realloc/free.
 *
 * The functions must behave as their C counterparts: malloc_fn(n) returns
 * n bytes aligned for any type or NULL; realloc_fn(NULL, n) acts as
 * malloc_fn(n); free_fn(NULL) does nothing. Wakers may be freed on any
 * thread, so free_fn must be thread-safe.
 *
 * @return 0; -EINVAL if only some of the three are NULL; -EBUSY if a
 *         config or an executor exists, or a task block that outlived its
 *         executor (a join handle or waker not yet freed): the allocator is
 *         unchanged.
 *         Thread: not concurrently with any other clockworker call.
 */
CW_EXTERN int cw_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                               void (*free_fn)(void *));

#ifdef __cplusplus
}
#endif
#endif
