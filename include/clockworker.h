/**
 * @file clockworker.h
 * @brief clockworker: a single-threaded, stackless executor with fair
 *        scheduling across weighted queues, inside an event loop
 *        (libevent by default; libuv, io_uring or a loop of your own).
 *
 * Include this header; it includes one header per concept, and none of
 * them needs libevent's headers:
 * - clockworker/error.h    error codes, cw_strerror()
 * - clockworker/config.h   queues, weights, slices, scheduler knobs
 * - clockworker/executor.h the executor and its queues, the loop kinds
 * - clockworker/libevent.h cw_executor_new() on a libevent event_base
 * - clockworker/embed.h    cw_executor_new_embed(): hosted by any loop
 * - clockworker/task.h     tasks, spawning, cw_should_yield(), cw_panic()
 * - clockworker/waker.h    wakers (any thread)
 * - clockworker/join.h     join handles
 * - clockworker/stats.h    counters and histograms
 * - clockworker/time.h     cw_sleep: timers on the executor's clock
 * - clockworker/io.h       cw_fdwait: fd readiness
 * - clockworker/alloc.h    cw_set_allocator()
 * - clockworker/pt.h       protothread macros: tasks that read top to bottom
 * - clockworker/sync.h     oneshot, channels, notify, semaphore, remote spawn
 * - clockworker/version.h  CW_VERSION_* macros, cw_version()
 *
 * Included on purpose, each for one loop or adapter:
 * - clockworker/bev.h      awaiting bufferevents (libevent's headers)
 * - clockworker/http.h     evhttp request handlers as tasks (libevent's)
 * - clockworker/driver.h   the driver seam, for writing a loop driver
 */
#ifndef CLOCKWORKER_H
#define CLOCKWORKER_H

#include "clockworker/common.h"
#include "clockworker/error.h"
#include "clockworker/config.h"
#include "clockworker/executor.h"
#include "clockworker/libevent.h"
#include "clockworker/embed.h"
#include "clockworker/task.h"
#include "clockworker/waker.h"
#include "clockworker/join.h"
#include "clockworker/stats.h"
#include "clockworker/time.h"
#include "clockworker/io.h"
#include "clockworker/alloc.h"
#include "clockworker/pt.h"
#include "clockworker/sync.h"
#include "clockworker/version.h"

#endif
