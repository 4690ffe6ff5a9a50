/**
 * @file clockworker/libevent.h
 * @brief The executor on a libevent event_base: the default loop.
 *
 * Needs no libevent header itself (struct event_base is only named), so
 * <clockworker.h> includes it. The bufferevent and evhttp adapters, which
 * do need libevent's headers, are separate: clockworker/bev.h and
 * clockworker/http.h.
 *
 * How the executor lives in the base: a round is a zero-timeout timer,
 * so libevent polls I/O (epoll_wait with a zero timeout) before each
 * round and runs the I/O callbacks between two rounds; the executor's
 * timer, remote-wake fd and each cw_fdwait are events of the base, added
 * only while they have work (executor.h).
 */
#ifndef CLOCKWORKER_LIBEVENT_H
#define CLOCKWORKER_LIBEVENT_H

#include "common.h"

struct event_base;

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Create an executor on a libevent base.
 *
 * @param base libevent base the executor runs in; it must outlive the
 *             executor. It needs no evthread setup: remote wakes use the
 *             executor's own notification fd.
 * @param cfg  the settings; copied, so cfg may be freed right after.
 * @param out  receives the executor, to free with cw_executor_free().
 * @return 0; -EINVAL if base, cfg or out is NULL or cfg has no queue
 *         (*out is then set to NULL when out is not NULL); -ENOMEM; or a
 *         negative errno from creating the notification fd (eventfd() or
 *         pipe(): -EMFILE, -ENFILE ...).
 */
CW_EXTERN int cw_executor_new(struct event_base *base, const cw_config *cfg, cw_executor **out);

/** The event_base the executor runs in; NULL if ex is NULL or runs on
 *  another loop. */
CW_EXTERN struct event_base *cw_executor_base(const cw_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
