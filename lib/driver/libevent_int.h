/*
 * libevent_int.h - the libevent driver's state, for the tests that look
 * at its events (the model test checks each is pending exactly while the
 * core says it has work). Not installed.
 */
#ifndef CW_DRIVER_LIBEVENT_INT_H
#define CW_DRIVER_LIBEVENT_INT_H

#include "clockworker/driver.h"

struct event;
struct event_base;

struct levdrv {
    cw_executor *ex;
    struct event_base *base;
    struct event *round_ev;  /* the round: a zero-timeout timer */
    struct event *notify_ev; /* the remote-wake fd, persistent */
    struct event *timer_ev;  /* the one timer */
};

/* The ops (cw_driver_state(ex, &cw__libevent_ops) is a struct levdrv *). */
extern const cw_driver_ops cw__libevent_ops __attribute__((visibility("hidden")));

#endif
