/*
 * alloc.c - the one place the library allocates memory.
 *
 * Global state (documented in alloc.h): the three allocator functions, and
 * a count of live configs and executors so that the allocator is not
 * swapped under objects that another one allocated.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "clockworker/alloc.h"
#include "util.h"

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void (*g_free)(void *) = free;
static atomic_size_t g_owners; /* live configs + executors */

int cw_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                     void (*free_fn)(void *))
{
    bool none = !malloc_fn && !realloc_fn && !free_fn;
    if (!none && (!malloc_fn || !realloc_fn || !free_fn))
        return -EINVAL;
    if (atomic_load(&g_owners))
        return -EBUSY;
    g_malloc = none ? malloc : malloc_fn;
    g_realloc = none ? realloc : realloc_fn;
    g_free = none ? free : free_fn;
    return 0;
}

void cw__alloc_hold(void)
{
    atomic_fetch_add(&g_owners, 1);
}

void cw__alloc_unhold(void)
{
    atomic_fetch_sub(&g_owners, 1);
}

void *cw__malloc(size_t n)
{
    return g_malloc(n ? n : 1);
}

void *cw__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = cw__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *cw__realloc(void *p, size_t n)
{
    return g_realloc(p, n ? n : 1);
}

void cw__free(void *p)
{
    if (p)
        g_free(p);
}
