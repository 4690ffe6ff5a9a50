/**
 * @file clockworker/driver.h
 * @brief The seam between the executor and an event loop: what a driver
 *        provides (cw_driver_ops) and the entry points it calls back.
 *
 * Users pick a loop with its constructor (cw_executor_new() for libevent,
 * cw_executor_new_embed(), cw_executor_new_uv(), cw_executor_new_uring())
 * and never need this header. It is for the library's own drivers, which
 * live in their own libraries (libclockworker-uv, libclockworker-uring),
 * and for a driver of your own when the embed API (embed.h) is not enough.
 *
 * What the core asks of a loop, and nothing more:
 *   - schedule: run cw_driver_round() soon, after the loop has polled I/O
 *     (so I/O callbacks run between two rounds: a round never starves the
 *     loop). Called at most once until that round has run.
 *   - a single one-shot timer: arm (relative delay, on any clock: the core
 *     re-arms if it fires early), disarm; it calls cw_driver_timer().
 *   - the remote-wake fd (cw_driver_notify_fd()) watched for reading or
 *     not; readable, it calls cw_driver_notified(). The core watches it
 *     while tasks are alive, so that a loop that stops when nothing is
 *     watched ends with the last task.
 *   - per cw_fdwait: a record for (fd, interest) created once, armed for
 *     one readiness report at a time (one-shot), freed; a report calls
 *     cw_driver_fd_ready() with what was seen.
 *   - one turn of the loop, blocking until something happened, for
 *     cw_executor_run_until().
 *
 * Every op is called on the executor thread, never from inside a round's
 * poll unless said, and never re-entrantly.
 */
#ifndef CLOCKWORKER_DRIVER_H
#define CLOCKWORKER_DRIVER_H

#include "common.h"
#include "executor.h"
#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI of cw_driver_ops this library speaks; a driver sets .abi to it. */
#define CW_DRIVER_ABI 1

/** What a driver provides. Every member is required unless said. */
typedef struct cw_driver_ops {
    unsigned abi;      /**< ::CW_DRIVER_ABI */
    cw_loop_kind kind; /**< what cw_executor_loop() answers */
    /**
     * Set up for ex (the remote-wake fd is open: cw_driver_notify_fd());
     * store the driver's state in *drv. arg is the constructor's.
     * @return 0 or a negative errno (the executor is then freed).
     */
    int (*init)(cw_executor *ex, void *arg, void **drv);
    /** Release everything init made; the executor is going. */
    void (*free)(void *drv);
    /** Run cw_driver_round() after the loop next polls I/O. Must not
     *  fail: out of memory, run it on the next turn by any means. */
    void (*schedule)(void *drv);
    /** The round left no runnable task (the loop may now block). May be
     *  NULL. */
    void (*idle)(void *drv);
    /** Watch the remote-wake fd (on) or stop. @return 0, or -1 if the
     *  loop refused (out of memory): the core asks again later. */
    int (*watch_notify)(void *drv, bool on);
    /** (Re)arm the one timer delay_ns from now; replaces an armed one. */
    void (*arm_timer)(void *drv, uint64_t delay_ns);
    /** Disarm the timer (no-op when not armed). */
    void (*disarm_timer)(void *drv);
    /** A record for waits on fd with interest what (::CW_FD_READ and/or
     *  ::CW_FD_WRITE); token goes back in cw_driver_fd_ready().
     *  @return the record, or NULL when out of memory. */
    void *(*fd_new)(void *drv, int fd, short what, cw_fdwait *token);
    /** Arm the record for one report. @return 0; -ENOMEM (worth a retry);
     *  another negative value when the loop refuses the fd. */
    int (*fd_arm)(void *drv, void *rec);
    /** Disarm and free the record: no report follows. */
    void (*fd_free)(void *drv, void *rec);
    /** One turn of the loop, blocking until something was handled.
     *  @return 0; > 0 if the loop had nothing to wait for; < 0 on error. */
    int (*run_once)(void *drv);
} cw_driver_ops;

/**
 * Create an executor on a driver: the core is built from cfg, then
 * ops->init(ex, arg, &drv) runs. cw_executor_free() calls ops->free.
 * @return 0; -EINVAL (NULL argument, cfg without queues, ops of another
 *         ABI or missing a member); -ENOMEM; the error of init or of
 *         opening the remote-wake fd. *out is NULL on error.
 */
CW_EXTERN int cw_driver_executor_new(const cw_driver_ops *ops, void *arg, const cw_config *cfg,
                                     cw_executor **out);

/** Zeroed memory from the library's allocator (cw_set_allocator()), for
 *  a driver's state and records; NULL when out of memory. */
CW_EXTERN void *cw_driver_alloc(size_t size);

/** Free what cw_driver_alloc() returned; NULL is a no-op. */
CW_EXTERN void cw_driver_dealloc(void *p);

/** The state init stored, if ex runs on ops; NULL otherwise. */
CW_EXTERN void *cw_driver_state(const cw_executor *ex, const cw_driver_ops *ops);

/** The remote-wake fd (an eventfd or a pipe's read end; never closed
 *  by the driver). */
CW_EXTERN int cw_driver_notify_fd(const cw_executor *ex);

/** The round schedule() asked for is due: run it. */
CW_EXTERN void cw_driver_round(cw_executor *ex);

/** The timer fired: wake the sleeps that are due (re-arms if early).
 *  @return true if that made a round due; the driver may run it in this
 *  turn with cw_driver_round() rather than wait for schedule's. */
CW_EXTERN bool cw_driver_timer(cw_executor *ex);

/** The remote-wake fd is readable: drain it, take the remote wakes and
 *  run a round now unless one is scheduled already. */
CW_EXTERN void cw_driver_notified(cw_executor *ex);

/** The fd of an armed record is ready: what is ::CW_FD_READ and/or
 *  ::CW_FD_WRITE (for an error or a hang-up, the record's interest: the
 *  task's next syscall sees the error). The waiting task is woken; the
 *  record is disarmed. */
CW_EXTERN void cw_driver_fd_ready(cw_fdwait *token, short what);

#ifdef __cplusplus
}
#endif
#endif
