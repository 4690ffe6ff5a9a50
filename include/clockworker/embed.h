/**
 * @file clockworker/embed.h
 * @brief The executor hosted by any event loop (GLib, Redis' ae, a
 *        hand-written poll() or epoll loop): the library tells the host
 *        what to watch, the host tells the library what happened.
 *
 * In the shape of libcurl's multi-socket API and c-ares' socket-state
 * callback. The executor calls two hooks of the host:
 *   - watch_fd(fd, what): watch fd for ::CW_FD_READ and/or ::CW_FD_WRITE,
 *     or (what == 0) stop watching it. Per fd, only when its interest
 *     changes: the union of everything waiting on that fd (several tasks
 *     may wait on one fd; the executor's own remote-wake fd is one of the
 *     fds).
 *   - set_timer(delay_ns): call cw_embed_tick() in delay_ns; 0: a round is
 *     due, tick after the next I/O poll; -1: no timer. Only when the
 *     deadline changes; a new value replaces the previous one (as
 *     libcurl's CURLMOPT_TIMERFUNCTION).
 *
 * The host reports each ready fd with cw_embed_fd_ready() and then calls
 * cw_embed_tick(), which fires the timer if due and runs at most one
 * scheduling round. cw_embed_next_ns() (or cw_embed_next_ms() for poll())
 * says how long the host may block; a host that reads it before each
 * poll needs no set_timer bookkeeping of its own. The rule every loop of
 * the library keeps, "the loop polls I/O between two rounds", holds when
 * the host does poll -> report -> tick, in that order, each turn.
 *
 * The hooks may be called from inside cw_embed_tick(),
 * cw_embed_fd_ready() and any call that changes what the executor waits
 * for (cw_spawn(), cw_executor_free()...): they only update the host's
 * lists. They must not call back into cw_embed_* functions. A report
 * for an fd the executor does not watch (any more) is ignored, so a
 * host may deliver a readiness list it collected before a watch_fd(fd,
 * 0) from the same turn.
 *
 * The loop ends by itself: with no task alive and no sleep pending, no
 * fd is watched and no timer is set (the host's loop may then return,
 * as event_base_dispatch() does).
 *
 * A poll() host, in full (error handling left out; fds/evs/n are the
 * host's list, updated by watch_fd):
 * @code
 * static struct pollfd fds[64];
 * static int nfds;
 *
 * static void watch_fd(void *arg, int fd, short what)
 * {
 *     int i = 0;
 *     while (i < nfds && fds[i].fd != fd)
 *         i++;
 *     if (!what) {                       // stop watching: remove it
 *         if (i < nfds)
 *             fds[i] = fds[--nfds];
 *         return;
 *     }
 *     if (i == nfds)
 *         nfds++;
 *     fds[i].fd = fd;
 *     fds[i].events = (short)(((what & CW_FD_READ) ? POLLIN : 0)
 *                             | ((what & CW_FD_WRITE) ? POLLOUT : 0));
 * }
 *
 * // this loop reads cw_embed_next_ms() before each poll instead
 * static void set_timer(void *arg, int64_t delay_ns) { (void)arg; (void)delay_ns; }
 *
 * static const cw_embed_hooks hooks = {.watch_fd = watch_fd, .set_timer = set_timer};
 *
 * cw_executor *ex;
 * cw_executor_new_embed(&hooks, NULL, cfg, &ex);
 * ... cw_spawn() tasks ...
 * while (nfds > 0 || cw_embed_next_ns(ex) >= 0) {  // until nothing is left
 *     int n = poll(fds, (nfds_t)nfds, cw_embed_next_ms(ex));
 *     struct pollfd seen[64];          // a copy: watch_fd may edit fds
 *     int m = nfds;
 *     memcpy(seen, fds, sizeof seen);
 *     for (int i = 0; n > 0 && i < m; i++) {
 *         short what = 0;
 *         if (seen[i].revents & (POLLIN | POLLHUP | POLLERR))
 *             what |= CW_FD_READ;
 *         if (seen[i].revents & (POLLOUT | POLLHUP | POLLERR))
 *             what |= CW_FD_WRITE;
 *         if (what)
 *             cw_embed_fd_ready(ex, seen[i].fd, what);
 *     }
 *     cw_embed_tick(ex);
 * }
 * cw_executor_free(ex);
 * @endcode
 *
 * Part of libclockworker (no other library needed). Executor thread only,
 * like everything of executor.h; remote wakes from other threads reach
 * the host through the remote-wake fd.
 */
#ifndef CLOCKWORKER_EMBED_H
#define CLOCKWORKER_EMBED_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The host's side: the hooks the executor calls. */
typedef struct cw_embed_hooks {
    /**
     * Watch fd for what (::CW_FD_READ and/or ::CW_FD_WRITE, the union of
     * every wait on fd), replacing what was asked for fd before; what 0:
     * stop watching fd. Called only when fd's interest changes. Report
     * readiness with cw_embed_fd_ready(), level-triggered (the executor
     * stops watching what it no longer needs). Must not fail: a host
     * with a fixed-size list sizes it for every fd its tasks wait on,
     * plus one. Required.
     */
    void (*watch_fd)(void *arg, int fd, short what);
    /**
     * When the host must next call cw_embed_tick(): in delay_ns (a
     * one-shot timer, replacing the previous one; round the delay UP to
     * the host's resolution: early is harmless, late delays sleeps);
     * 0: a round is due: tick after the next I/O poll (a zero-timeout
     * poll, an idle callback), not from inside this hook; -1: no timer.
     * Called only when that changes (a re-armed timer is a new
     * deadline, even at the same delay). Required (it may do nothing
     * when the host reads cw_embed_next_ns() before each poll).
     */
    void (*set_timer)(void *arg, int64_t delay_ns);
    /**
     * Optional (NULL): one blocking turn of the host's loop (poll,
     * cw_embed_fd_ready(), cw_embed_tick()), for cw_executor_run_until().
     * @return 0; > 0 if the loop had nothing to wait for; < 0 on error.
     */
    int (*run_once)(void *arg);
} cw_embed_hooks;

/**
 * Create an executor hosted by the caller's loop.
 *
 * The hooks may be called before this returns (the remote-wake fd is not
 * watched until a task is alive, so usually they are not).
 *
 * @param hooks the host's hooks; copied. watch_fd and set_timer required.
 * @param arg   passed to every hook (cw_embed_arg() returns it).
 * @param cfg   the settings; copied, so cfg may be freed right after.
 * @param out   receives the executor, to free with cw_executor_free(),
 *              which tells the host to stop watching every fd and drops
 *              the timer (watch_fd(fd, 0), set_timer(-1)) before it
 *              returns.
 * @return 0; -EINVAL if hooks, a required hook, cfg or out is NULL or
 *         cfg has no queue (*out is then NULL when out is not NULL);
 *         -ENOMEM; or a negative errno from creating the remote-wake fd.
 */
CW_EXTERN int cw_executor_new_embed(const cw_embed_hooks *hooks, void *arg,
                                    const cw_config *cfg, cw_executor **out);

/**
 * The host saw fd ready: what is ::CW_FD_READ and/or ::CW_FD_WRITE (for an
 * error or a hang-up, report both: the waiting task's next syscall sees
 * the error). Wakes the tasks waiting on fd for what (each is woken once:
 * a wait is one-shot); runs no task (cw_embed_tick() does). An fd nobody
 * waits on, what 0, or ex not an embed executor: ignored.
 * May call the hooks. Executor thread.
 */
CW_EXTERN void cw_embed_fd_ready(cw_executor *ex, int fd, short what);

/**
 * One tick: wake the sleeps that are due (if the timer has expired), take
 * the remote wakes, then run at most one scheduling round if one is due.
 * Call it after each I/O poll of the host (after reporting what that poll
 * saw) and whenever set_timer's timer fires; an extra tick is harmless.
 * Ignored when called from inside a task or a hook, or when ex is not an
 * embed executor. May call the hooks. Executor thread.
 */
CW_EXTERN void cw_embed_tick(cw_executor *ex);

/**
 * How long the host may block in its next I/O poll: 0 if a round is due
 * (poll without blocking, then tick), -1 if the executor has no timer
 * (block until an fd is ready), else the ns until the timer is due. The
 * same information as set_timer, as a value to read. -1 if ex is NULL
 * or not an embed executor. Executor thread.
 */
CW_EXTERN int64_t cw_embed_next_ns(const cw_executor *ex);

/** cw_embed_next_ns() as a poll()/epoll_wait() timeout: ms rounded up,
 *  at most INT_MAX; 0 and -1 as there. */
CW_EXTERN int cw_embed_next_ms(const cw_executor *ex);

/** The arg given to cw_executor_new_embed(); NULL if ex is NULL or is not
 *  an embed executor. */
CW_EXTERN void *cw_embed_arg(const cw_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
