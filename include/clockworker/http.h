/**
 * @file clockworker/http.h
 * @brief evhttp adapter: run each HTTP request's handler as a task on a
 *        queue of your choice.
 *
 * evhttp calls a callback per request and lets the callback reply later.
 * cw_http_set_cb() (one path, like evhttp_set_cb()) and cw_http_set_gencb()
 * (every other path, like evhttp_set_gencb()) register a handler instead:
 * for each request the adapter spawns a task on the chosen queue whose
 * poll function is the handler's. The task owns the evhttp_request until
 * it replies with cw_http_reply() or cw_http_send_error(); meanwhile the
 * handler awaits whatever it likes (sleeps, joins, fd waits) and its
 * queue's weight decides how much CPU request handling gets next to the
 * other queues.
 *
 * @code
 * typedef struct get_state {
 *     cw_pt pt;
 *     cw_sleep delay;
 * } get_state;
 *
 * static cw_poll get_poll(void *state, cw_http_req *hr, cw_cx *cx)
 * {
 *     get_state *g = state;                 // zeroed at the first poll
 *     CW_BEGIN(&g->pt);
 *     cw_sleep_init(&g->delay, 1000000);
 *     CW_AWAIT(&g->pt, cw_sleep_poll(&g->delay, cx));
 *     struct evbuffer *body = evbuffer_new();
 *     evbuffer_add_printf(body, "%s\n", evhttp_request_get_uri(cw_http_req_request(hr)));
 *     cw_http_reply(hr, 200, "OK", body);
 *     evbuffer_free(body);
 *     CW_END(&g->pt);
 * }
 *
 * static void get_drop(void *state)
 * {
 *     cw_sleep_drop(&((get_state *)state)->delay);   // may be cancelled asleep
 * }
 *
 * cw_http_handler h = {.poll = get_poll, .drop = get_drop,
 *                      .state_size = sizeof(get_state)};
 * cw_http_route *route;
 * err = cw_http_set_cb(http, "/hello", fg_queue, &h, &route);
 * ...
 * cw_http_route_free(route);    // before evhttp_free(http)
 * @endcode
 *
 * A request's life:
 * - evhttp has read the whole request (headers and body) when the task is
 *   spawned. If the spawn fails (out of memory, executor shutting down)
 *   the adapter answers 503 at once.
 * - The task's state starts zeroed (a ::cw_pt
 *   in it is at its start), then the optional init function runs on it,
 *   in place, just before the handler's first poll.
 * - The handler replies once, with cw_http_reply() or cw_http_send_error();
 *   after that cw_http_req_request() returns NULL (evhttp owns and frees
 *   the request) and the task may go on (say, to update statistics).
 * - A task that completes without replying gets a 500 reply; so does one
 *   cancelled (cw_executor_free()) or panicking while its connection is
 *   open.
 * - Client gone: while the task holds the request the adapter watches the
 *   connection. When the client closes it (EOF or an error on the socket:
 *   a client that half-closes after its request counts as gone, as it
 *   does for evhttp while it reads a request), or evhttp closes it
 *   (evhttp_free()), the task is cancelled: it is not polled again, its
 *   drop function runs, and no reply is ever sent into the freed request;
 *   the adapter frees the connection and the request. A client that
 *   pipelines its next request before the reply stops the watch for this
 *   one (its bytes are not consumed).
 * - The adapter sets the connection's close callback
 *   (evhttp_connection_set_closecb()) while a task holds one of its
 *   requests, and clears it when the task replies or ends: do not set
 *   your own on those connections.
 *
 * Order at shutdown: free the routes (cw_http_route_free()) before
 * evhttp_free(), and evhttp_free() before cw_executor_free() (which
 * otherwise answers in-flight requests with 500 first). A task still
 * running when evhttp_free() is called is cancelled then.
 *
 * Threads: executor thread only; the evhttp must run on the executor's
 * event_base.
 */
#ifndef CLOCKWORKER_HTTP_H
#define CLOCKWORKER_HTTP_H

#include "common.h"
#include "task.h"

struct evhttp;
struct evhttp_request;
struct evbuffer;

#ifdef __cplusplus
extern "C" {
#endif

/** One request served by a task: the handler's view of its request.
 *  Owned by the adapter; valid while the task is alive. */
typedef struct cw_http_req cw_http_req;

/** A registered handler (one path, or the generic one). */
typedef struct cw_http_route cw_http_route;

/**
 * A handler's poll function: as a task's (::cw_poll_fn), with the request.
 * @param state the task's state (state_size bytes, zeroed before init).
 * @param hr    the request; valid during the task's life.
 * @param cx    the poll's context.
 */
typedef cw_poll (*cw_http_poll_fn)(void *state, cw_http_req *hr, cw_cx *cx);

/** Sets up a new task's state, in place, before its first poll. */
typedef void (*cw_http_init_fn)(void *state, cw_http_req *hr);

/** What a route runs for each request; copied at registration. */
typedef struct cw_http_handler {
    cw_http_poll_fn poll; /**< required */
    size_t state_size;    /**< bytes of task state, zeroed (0: none) */
    cw_http_init_fn init; /**< optional: runs before the first poll */
    cw_drop_fn drop;      /**< optional: runs once, as a task's drop */
    void *arg;            /**< for the handler: cw_http_req_arg() */
} cw_http_handler;

/**
 * Serve one path (an exact match, as evhttp_set_cb()) with tasks on q.
 *
 * @param http  the evhttp (on the executor's base).
 * @param path  the path; copied by evhttp.
 * @param q     the queue the request tasks run on.
 * @param h     the handler (copied); h->poll is required.
 * @param route receives the route, to free with cw_http_route_free().
 * @return 0; -ENOENT if q is NULL (no such queue); -EINVAL if another
 *         argument is NULL, h->poll is NULL, or h->state_size > 2^30; -ENOMEM; -EEXIST if evhttp refuses the
 *         path (it is taken; libevent reports its own out-of-memory the
 *         same way). On error nothing is registered and *route is
 *         untouched. Executor thread.
 */
CW_EXTERN int cw_http_set_cb(struct evhttp *http, const char *path, cw_queue *q,
                             const cw_http_handler *h, cw_http_route **route);

/**
 * Serve every request no path callback takes (evhttp_set_gencb()) with
 * tasks on q. Replaces any generic callback evhttp had.
 * @return 0; -ENOENT, -EINVAL (as cw_http_set_cb()); -ENOMEM. Executor
 *         thread.
 */
CW_EXTERN int cw_http_set_gencb(struct evhttp *http, cw_queue *q, const cw_http_handler *h,
                                cw_http_route **route);

/**
 * Unregister a route from its evhttp (evhttp_del_cb(), or the generic
 * callback cleared) and release it. Tasks it spawned run on; its memory
 * goes when the last of them ends. Call it before evhttp_free() of the
 * route's evhttp. NULL is a no-op. Executor thread.
 */
CW_EXTERN void cw_http_route_free(cw_http_route *route);

/** A route's counters (cw_http_route_stats()). */
typedef struct cw_http_route_stats {
    uint64_t requests;   /**< tasks spawned */
    uint64_t replied;    /**< replies the handlers sent */
    uint64_t auto_500;   /**< 500s sent for tasks that ended without one */
    uint64_t refused;    /**< 503s sent because a spawn failed */
    uint64_t gone;       /**< tasks cancelled: the connection closed */
    uint64_t in_flight;  /**< tasks holding their request now */
} cw_http_route_stats;

/** Read a route's counters. 0; -EINVAL if route or out is NULL. */
CW_EXTERN int cw_http_route_stats_get(const cw_http_route *route, cw_http_route_stats *out);

/**
 * The request, for reading (evhttp_request_get_uri(),
 * evhttp_request_get_input_buffer(), ...) and for adding output headers.
 * NULL once the handler has replied (or for NULL hr). Do not free it or
 * reply to it with evhttp_send_*() directly: use cw_http_reply().
 */
CW_EXTERN struct evhttp_request *cw_http_req_request(const cw_http_req *hr);

/** The handler's arg (cw_http_handler.arg); NULL for NULL hr. */
CW_EXTERN void *cw_http_req_arg(const cw_http_req *hr);

/** Whether the handler has replied (false for NULL hr). */
CW_EXTERN bool cw_http_req_replied(const cw_http_req *hr);

/**
 * Reply (evhttp_send_reply()): status code, reason phrase, optional body
 * (drained into the reply; NULL: empty). The request then belongs to
 * evhttp again, which sends the reply and frees it.
 * @return 0; -EINVAL if hr or reason is NULL; -EALREADY if it has
 *         replied already; -EPIPE if the client went away (the task is
 *         being cancelled). Executor thread, from the request's task.
 */
CW_EXTERN int cw_http_reply(cw_http_req *hr, int code, const char *reason, struct evbuffer *body);

/**
 * Reply with an error page (evhttp_send_error()); reason may be NULL (the
 * standard phrase). Same returns as cw_http_reply() (reason may be NULL).
 */
CW_EXTERN int cw_http_send_error(cw_http_req *hr, int code, const char *reason);

#ifdef __cplusplus
}
#endif
#endif
