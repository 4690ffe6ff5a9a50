/* alloc.c - the one place the library allocates memory. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

void *cw__malloc(size_t n)
{
    return malloc(n);
}

void *cw__calloc(size_t n, size_t size)
{
    return calloc(n, size);
}

void *cw__realloc(void *p, size_t n)
{
    return realloc(p, n);
}

void cw__free(void *p)
{
    free(p);
}
