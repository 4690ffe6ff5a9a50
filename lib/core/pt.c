/* pt.c - cw_yield, the yield-once leaf future. The protothread macros
 * themselves live entirely in clockworker/pt.h. */
#include "config.h"

#include "internal.h"

void cw_yield_init(cw_yield *y)
{
    if (y)
        y->cw__yielded = false;
}

cw_poll cw_yield_poll(cw_yield *y, cw_cx *cx)
{
    cw_waker *self = cw_cx_waker(cx); /* NULL: no cx, or not inside a poll */

    if (!y || !self || y->cw__yielded)
        return CW_READY;
    y->cw__yielded = true;
    cw_waker_wake_by_ref(self);
    return CW_PENDING;
}
