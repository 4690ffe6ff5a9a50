/**
 * @file clockworker/error.h
 * @brief Error codes: every fallible call returns 0 or a negative errno.
 *
 * A call that fails has no effect: nothing is spawned, polled, changed or
 * leaked. The codes are the system's errno values, negated, plus
 * ::CW_EPANIC, which is clockworker's own.
 *
 * The thread rule is checked in every build: a function documented as
 * "executor thread" that returns an int answers -EPERM when called from
 * another thread, and changes nothing. One that returns void
 * (cw_executor_free(), cw_join_abort(), cw_join_free()) cannot answer:
 * it writes one line naming the call to stderr and does nothing.
 */
#ifndef CLOCKWORKER_ERROR_H
#define CLOCKWORKER_ERROR_H

#include <errno.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A task called cw_panic() and the executor caught it (catch_panics on).
 *  Negative, and outside the range of system errno values. */
#define CW_EPANIC (-4200)

/**
 * The codes clockworker returns, with their text: XX(name, value, text).
 * cw_strerror() is generated from this list.
 */
#define CW_ERRNO_MAP(XX)                                                    \
    XX(OK, 0, "success")                                                    \
    XX(EINVAL, -EINVAL, "invalid argument")                                 \
    XX(ENOMEM, -ENOMEM, "out of memory")                                    \
    XX(ENOENT, -ENOENT, "no such queue")                                    \
    XX(EEXIST, -EEXIST, "queue id already exists")                          \
    XX(ECANCELED, -ECANCELED, "task cancelled")                             \
    XX(ESHUTDOWN, -ESHUTDOWN, "executor is shutting down")                  \
    XX(EAGAIN, -EAGAIN, "not ready yet (task running, channel full or empty)") \
    XX(EBUSY, -EBUSY, "busy (executor inside a task, already awaited, or signal in use)") \
    XX(EPIPE, -EPIPE, "peer closed")                                        \
    XX(EIO, -EIO, "event loop failed")                                      \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                  \
    XX(EMSGSIZE, -EMSGSIZE, "message too long")                             \
    XX(EALREADY, -EALREADY, "already done (request replied)")               \
    XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                 \
    XX(ENOTSUP, -ENOTSUP, "not supported (embed host without run_once, or no backtrace(3))") \
    XX(EOVERFLOW, -EOVERFLOW, "count would overflow (semaphore permits)")   \
    XX(EPERM, -EPERM, "not the executor's thread (or, from "               \
                      "cw_executor_new_uring(), io_uring not permitted)")   \
    XX(EPANIC, CW_EPANIC, "task panicked")

/**
 * The text for an error code returned by clockworker.
 *
 * The codes in ::CW_ERRNO_MAP have clockworker's text. Any other negative
 * errno has the system's (strerror()'s) text: clockworker passes some
 * through, e.g. a socket error from cw_bev_result() (-ECONNREFUSED,
 * -ENOTSOCK ...) or -EMFILE/-ENFILE when cw_executor_new() cannot create
 * its notification fd.
 *
 * @param err 0, a negative errno, or ::CW_EPANIC.
 * @return a string, never NULL, that the caller must not free: static
 *         (with glibc >= 2.32, and for the codes in ::CW_ERRNO_MAP), or
 *         else the system's text in a per-thread buffer, valid until the
 *         thread's next cw_strerror() call. "unknown error" for a
 *         positive value, or a negative one the system has no text for.
 *         Any thread.
 */
CW_EXTERN const char *cw_strerror(int err);

/**
 * The symbolic name of an error code ("EINVAL", "EPANIC", "OK"; for a
 * negative errno outside ::CW_ERRNO_MAP the system's name, e.g.
 * "ECONNREFUSED", where the C library provides strerrorname_np()), or
 * "UNKNOWN". Static string; any thread.
 */
CW_EXTERN const char *cw_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
