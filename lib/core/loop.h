/*
 * loop.h - the core's side of the driver seam (loop.c). Not installed.
 */
#ifndef CW_CORE_LOOP_H
#define CW_CORE_LOOP_H

#include "clockworker/driver.h"
#include "util.h"

/* ---- the loop (loop.c): the one file that calls the driver ------------
 * Each is the driver op of the same name (driver.h) with the core's
 * bookkeeping around it. */
void cw__loop_schedule(cw_executor *ex);          /* a round after I/O */
void cw__loop_idle(cw_executor *ex);              /* a round left no work */
/* Watch the remote-wake fd or not: 0, or -1 when the loop refuses (out of
 * memory: watching may allocate inside the loop). */
int cw__loop_watch_notify(cw_executor *ex, bool on);
void cw__loop_arm_timer(cw_executor *ex, uint64_t delay_ns);
void cw__loop_disarm_timer(cw_executor *ex);
void *cw__loop_fd_new(cw_executor *ex, int fd, short what, cw_fdwait *w);
int cw__loop_fd_arm(cw_executor *ex, void *rec);
void cw__loop_fd_free(cw_executor *ex, void *rec);
int cw__loop_run_once(cw_executor *ex);
void cw__loop_free(cw_executor *ex);

#endif
