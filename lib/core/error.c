/* error.c - names for the error codes (one X-macro table in error.h),
 * and the system's for the errno values the library passes through. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A negated errno value the system may have a text for. */
static int sys_errno(int err)
{
    return err < 0 && err > -4096 ? -err : 0;
}

#if !defined(HAVE_STRERRORDESC_NP)
/* The system's text through strerror_r(), into a per-thread buffer (the
 * result stays valid until the thread's next call for another code). */
static const char *sys_text(int e)
{
    static _Thread_local char buf[128];
#if defined(STRERROR_R_CHAR_P)
    const char *r = strerror_r(e, buf, sizeof buf);
    return r && strncmp(r, "Unknown error", 13) ? r : NULL;
#else
    if (strerror_r(e, buf, sizeof buf) != 0 || !strncmp(buf, "Unknown error", 13))
        return NULL;
    return buf;
#endif
}
#endif

const char *cw_strerror(int err)
{
#define XX(name, value, text) \
    if (err == (value))       \
        return text;
    CW_ERRNO_MAP(XX)
#undef XX
    int e = sys_errno(err);
    if (e) {
#if defined(HAVE_STRERRORDESC_NP)
        const char *t = strerrordesc_np(e); /* static; NULL if unknown */
#else
        const char *t = sys_text(e);
#endif
        if (t)
            return t;
    }
    return "unknown error";
}

const char *cw_err_name(int err)
{
#define XX(name, value, text) \
    if (err == (value))       \
        return #name;
    CW_ERRNO_MAP(XX)
#undef XX
#if defined(HAVE_STRERRORNAME_NP)
    int e = sys_errno(err);
    const char *n = e ? strerrorname_np(e) : NULL;
    if (n)
        return n;
#endif
    return "UNKNOWN";
}

void cw__misuse(const char *call, const char *what)
{
    fprintf(stderr, "clockworker: %s: %s\n", call, what);
    fflush(stderr);
}

void cw__misuse_abort(const char *call, const void *obj, const char *what)
{
    fprintf(stderr, "clockworker: %s(%p): %s\n", call, obj, what);
    fflush(stderr);
    abort();
}
