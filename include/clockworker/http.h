/**
 * @file clockworker/http.h
 * @brief evhttp adapter: run each HTTP request's handler as a task on a
 *        queue of your choice, or evhttp's own request callback on it.
 *
 * Two forms. An existing evhttp callback runs on a queue with
 * cw_evhttp_set_cb() (evhttp_set_cb() with a queue in front: see "The
 * callback form" at the end of this header). A new handler is best
 * written as a task, with cw_http_set_cb() below: it may await things
 * before it replies.
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

/**
 * @name The callback form
 * evhttp's request callbacks, each run on a queue: evhttp_set_cb(http,
 * path, cb, arg) becomes cw_evhttp_set_cb(q, http, path, cb, arg), and
 * the callback is the same function. When evhttp has read a request, the
 * callback does not run there and then: it runs when EEVDF picks q,
 * behind the work queued there before, with q charged for its time.
 *
 * @code
 * static void on_get(struct evhttp_request *req, void *arg)   // unchanged
 * {
 *     struct evbuffer *body = evbuffer_new();
 *     evbuffer_add_printf(body, "%s
", evhttp_request_get_uri(req));
 *     evhttp_send_reply(req, 200, "OK", body);
 *     evbuffer_free(body);
 * }
 * ...
 * cw_evhttp_set_cb(fg_queue, http, "/hello", on_get, NULL); // was evhttp_set_cb()
 * ...
 * cw_evhttp_free(http);                                     // was evhttp_free()
 * @endcode
 *
 * The request while it waits: it stays evhttp's, and valid until the
 * callback has run, which replies as with evhttp (at once, or later:
 * from then on the request is the callback's business, as with evhttp).
 * If evhttp frees the connection first (evhttp_free(), cw_evhttp_free()),
 * the callback never runs for it and nothing is left behind. A client
 * that closes its connection meanwhile is not noticed before the reply
 * (evhttp 2.1 does not read while a request is being served): the
 * callback runs and the reply fails as evhttp handles it. If the executor
 * is freed with requests waiting, they are answered 503 and their
 * callbacks never run. A request that comes when no task can be spawned
 * for it (out of memory), or once the executor is freed, runs its
 * callback at once, as evhttp would. After a callback the round ends
 * soon (within 50 us), so that libevent writes the reply: no
 * cw_cx_yield_to_loop() is needed.
 *
 * The adapter sets a waiting request's connection close callback
 * (evhttp_connection_set_closecb()) and clears it before the callback
 * runs: do not set your own on connections of these requests.
 *
 * Ownership: each registration is a small route the adapter keeps, found
 * by the evhttp and the path; cw_evhttp_del_cb() frees it, so does a
 * replacing or cleared generic callback, and cw_evhttp_free() frees
 * every one of its evhttp's. Free the evhttp with cw_evhttp_free() (plain
 * evhttp_free() leaks the routes left registered on it). Requests waiting
 * keep their route until they are done. Threads: executor thread only
 * (the registry itself takes a lock, so that evhttps of several
 * executors may run on their threads).
 * @{
 */

/** evhttp's request callback (the callback of evhttp_set_cb()). */
typedef void (*cw_evhttp_cb)(struct evhttp_request *req, void *arg);

/**
 * Run http's callback for one path (an exact match, as evhttp_set_cb())
 * on q.
 * @param q     the queue the callback runs on.
 * @param http  the evhttp, on q's executor's event_base.
 * @param path  the path; copied.
 * @param cb    the callback; cb(req, cbarg).
 * @param cbarg its argument.
 * @return 0; -ENOENT if q is NULL (no such queue); -EINVAL if another
 *         argument is NULL; -EPERM if not on q's
 *         executor thread; -EEXIST if the path has a callback already (as
 *         evhttp_set_cb()'s -1); -ENOMEM. On error nothing is
 *         registered.
 */
CW_EXTERN int cw_evhttp_set_cb(cw_queue *q, struct evhttp *http, const char *path,
                               cw_evhttp_cb cb, void *cbarg);

/**
 * Remove a path's callback, as evhttp_del_cb(), and free its route
 * (requests waiting for it still run it). Works for a path set with plain
 * evhttp_set_cb() too.
 * @return 0; -EINVAL if http or path is NULL; -ENOENT if the path has no
 *         callback. Executor thread.
 */
CW_EXTERN int cw_evhttp_del_cb(struct evhttp *http, const char *path);

/**
 * Run http's generic callback (every path no other callback takes, as
 * evhttp_set_gencb()) on q; it replaces the generic callback or route
 * http had (a route of cw_http_set_gencb() is left to its owner to
 * free). cb NULL clears it (q may then be NULL).
 * @return 0; -EINVAL if http is NULL; -ENOENT if q is NULL with a
 *         callback (no such queue);
 *         -EPERM if not on q's executor thread; -ENOMEM (nothing
 *         changed). Executor thread.
 */
CW_EXTERN int cw_evhttp_set_gencb(cw_queue *q, struct evhttp *http, cw_evhttp_cb cb,
                                  void *cbarg);

/**
 * Free an evhttp, as evhttp_free(), with every route of the callback
 * form registered on it: its connections close, requests waiting for a
 * callback are dropped (the callbacks never run). Free the task form's
 * routes (cw_http_route_free()) first. Before or after
 * cw_executor_free(): both work. NULL is a no-op. Executor thread.
 */
CW_EXTERN void cw_evhttp_free(struct evhttp *http);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
