/*
 * internal.h - every header of the core, for the files that need the
 * whole executor (and the tests). Not installed. By concept:
 *   util.h    limits, asserts, allocation, lists, deadlines, histograms
 *   conf.h    cw_config
 *   shared.h  what other threads touch (inbox, notification fd)
 *   tasks.h   task blocks, slabs, the task functions; ownership
 *   clock.h   the default clock
 *   loop.h    the core's side of the driver seam (loop.c)
 *   exec.h    the executor, its queues, timers and fd waits
 *   eevdf.h   the scheduler (pure)
 */
#ifndef CW_INTERNAL_H
#define CW_INTERNAL_H

#include "exec.h"

#endif
