/* version.c - the version of the library, as its headers give it. */
#include "config.h"

#include "clockworker/version.h"

const char *cw_version(void)
{
    return CW_VERSION_STRING;
}

uint32_t cw_version_number(void)
{
    return CW_VERSION_NUMBER;
}
