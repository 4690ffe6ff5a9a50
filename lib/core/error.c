/* error.c - names for the error codes (one X-macro table in error.h). */
#include "config.h"

#include "clockworker/error.h"

const char *cw_strerror(int err)
{
#define XX(name, value, text) \
    if (err == (value))       \
        return text;
    CW_ERRNO_MAP(XX)
#undef XX
    return "unknown error";
}

const char *cw_err_name(int err)
{
#define XX(name, value, text) \
    if (err == (value))       \
        return #name;
    CW_ERRNO_MAP(XX)
#undef XX
    return "UNKNOWN";
}
