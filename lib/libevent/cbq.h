/*
 * cbq.h - what the callback forms of the libevent adapters share
 * (event.c, bev.c, http.c): libevent callbacks that run on a queue.
 * Not installed.
 *
 * Each of them runs a user's callback from a small internal task on the
 * user's queue, and may outlive the executor: an object that does holds
 * the executor's shared part (cw__shared_hold()) and asks it whether the
 * executor can still take work.
 */
#ifndef CW_LIBEVENT_CBQ_H
#define CW_LIBEVENT_CBQ_H

#include "internal.h"

/* Whether the executor behind sh can take an activation: not freed and
 * not being freed. Executor thread. */
static inline bool cw__cbq_alive(const cw__shared *sh)
{
    return sh->ex && !sh->ex->freeing;
}

#endif
