/*
 * http.c - the evhttp adapter: a task per request.
 *
 * Objects:
 * - cw_http_route: the handler, the queue, a zeroed template of the task
 *   state (cw_spawn() copies it: the task's state is one allocation, with
 *   the user's state inside), counters, and a reference count: the owner
 *   (until cw_http_route_free()) plus one per live request task.
 * - cw_http_req (one allocation per request): the request, its
 *   connection, the task's join handle (kept to cancel the task) and an
 *   event, assigned in place, that watches the connection's socket while
 *   the task holds the request.
 * - the task's state: struct http_task, a pointer to its cw_http_req and
 *   the user's state.
 *
 * Ownership: the task owns its cw_http_req; the task's drop function
 * frees it (after the user's drop). The join handle is freed by the task
 * itself when it completes (cw_join_free() from inside its own poll
 * detaches it), else by the drop function (cancel, panic): in both cases
 * the executor still holds its own reference, so the block outlives the
 * call.
 *
 * Why a watch of our own: libevent 2.1's evhttp stops reading a
 * connection once it has read a request, until the reply is sent, so it
 * does not notice a client that goes away meanwhile (its close callback
 * runs only when the connection is freed: evhttp_free(), or a failed
 * write of the reply). Enabling reading on evhttp's bufferevent is not an
 * option (a byte arriving in that state is a fatal error in evhttp), so
 * the adapter adds a one-shot EV_READ event on the socket and peeks:
 * EOF or an error means the client is gone; data means a pipelined
 * request, and the watch stops (it would fire forever otherwise).
 *
 * The callback form (cw_evhttp_set_cb(), at the end) is a route whose
 * task has no user state and one poll: it lets go of the request and
 * calls evhttp's kind of callback with it. Until then the close callback
 * guards the request, as for a task (no watch: the callback runs soon,
 * and replying into a connection the client closed is evhttp's usual
 * path). Its routes are owned by a registry (cb_routes), found by evhttp
 * and path, freed by cw_evhttp_del_cb() and cw_evhttp_free().
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "cbq.h"
#include "clockworker/http.h"

#define HTTP_MAX_STATE ((size_t)1 << 30)

struct cw_http_route {
    struct evhttp *http;
    char *path;              /* NULL: the generic callback */
    cw_queue *q;
    cw_http_handler h;       /* zeroed for the callback form */
    cw_evhttp_cb cb;         /* the callback form: evhttp's callback */
    void *cbarg;
    cw__shared *sh;          /* the callback form: held, to tell that the
                                executor is gone */
    struct cw_http_route *cb_next; /* in cb_routes (the callback form) */
    size_t refs;             /* the owner + one per live request task */
    bool registered;
    struct cw_http_route *gen_next; /* in gen_routes while the generic one */
    cw_http_route_stats st;
    unsigned char *tmpl;     /* zeroed struct http_task + user state */
    size_t tmpl_size;
};

struct cw_http_req {
    cw_http_route *route;
    struct evhttp_request *req;       /* NULL once replied or gone */
    struct evhttp_connection *evcon;
    cw_join *join;                    /* NULL once freed */
    bool replied;
    bool watching;                    /* the watch event is added */
    bool watch_tried;                 /* watch_start() ran (once) */
    alignas(max_align_t) unsigned char watch[]; /* a struct event */
};

struct http_task {
    cw_http_req *hr;
    bool inited;
    alignas(max_align_t) unsigned char user[];
};

static void route_release(cw_http_route *r)
{
    if (--r->refs)
        return;
    if (r->sh)
        cw__shared_release(r->sh, 1);
    cw__free(r->path);
    cw__free(r->tmpl);
    cw__free(r);
}

static struct event *watch_ev(cw_http_req *hr)
{
    return (struct event *)(void *)hr->watch;
}

/* The task lets go of the request: no watch, no close callback. */
static struct evhttp_request *let_go(cw_http_req *hr)
{
    struct evhttp_request *req = hr->req;
    if (!req)
        return NULL;
    if (hr->watching) {
        event_del(watch_ev(hr));
        hr->watching = false;
    }
    if (hr->evcon)
        evhttp_connection_set_closecb(hr->evcon, NULL, NULL);
    hr->req = NULL;
    hr->route->st.in_flight--;
    return req;
}

/* The connection is going away under the task: cancel it. The caller
 * has taken the request from hr (hr->req is NULL). May free hr. */
static void cancel_task(cw_http_req *hr)
{
    hr->route->st.gone++;
    cw_join_abort(hr->join); /* the drop function runs (now, or after the
                                poll in progress) and frees hr */
}

/* evhttp frees the connection (evhttp_free(), a failed write, ...):
 * the request goes with it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    cw_http_req *hr = arg;
    (void)evcon;
    let_go(hr);
    cancel_task(hr);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    cw_http_req *hr = arg;
    char c;
    (void)what;
    hr->watching = false; /* one-shot: not pending any more */
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return; /* a pipelined request: we cannot see past it */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (event_add(watch_ev(hr), NULL) == 0)
            hr->watching = true;
        return;
    }
    /* EOF or a socket error: the client is gone. */
    struct evhttp_connection *evcon = hr->evcon;
    let_go(hr);
    cancel_task(hr);
    /* Frees the request too (it is still queued on the connection). */
    evhttp_connection_free(evcon);
}

/* Watch the connection while the task holds the request. Without a
 * watch (no fd, or libevent out of memory) the request is still served;
 * only a disconnect goes unnoticed until the reply fails. */
static void watch_start(cw_http_req *hr)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(hr->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    hr->watch_tried = true;
    if (fd >= 0 &&
        event_assign(watch_ev(hr), evhttp_connection_get_base(hr->evcon), fd, EV_READ, on_watch,
                     hr) == 0 &&
        event_add(watch_ev(hr), NULL) == 0)
        hr->watching = true;
}

/* The callback form's one poll: the request goes to the callback. */
static cw_poll cb_task_poll(void *state, cw_cx *cx)
{
    struct http_task *t = state;
    cw_http_req *hr = t->hr;
    cw_http_route *r = hr->route;
    struct evhttp_request *req = let_go(hr);
    cw_join *j = hr->join;
    hr->join = NULL;
    cw_join_free(j); /* detaches: the drop runs when this poll returns */
    if (req) {
        r->cb(req, r->cbarg);
        /* the reply (if the callback sent one) waits in libevent's
         * buffers: let it write them soon, as cw_http_reply() does */
        cw__executor_flush_soon(cw_cx_executor(cx));
    }
    return CW_READY;
}

static cw_poll task_poll(void *state, cw_cx *cx)
{
    struct http_task *t = state;
    cw_http_req *hr = t->hr;
    const cw_http_handler *h = &hr->route->h;
    if (!t->inited) {
        t->inited = true;
        if (h->init)
            h->init(t->user, hr);
    }
    if (h->poll(t->user, hr, cx) == CW_PENDING) {
        /* Still holding the request after a poll: watch the connection
         * from now on (a request answered in its first poll, the usual
         * case, costs no watch: two epoll_ctl() calls fewer). */
        if (hr->req && !hr->watch_tried && hr->evcon)
            watch_start(hr);
        return CW_PENDING;
    }
    struct evhttp_request *req = let_go(hr);
    if (req) { /* completed without replying */
        hr->route->st.auto_500++;
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
    }
    cw_join *j = hr->join;
    hr->join = NULL;
    cw_join_free(j); /* detaches: the drop runs when this poll returns */
    return CW_READY;
}

static void task_drop(void *state)
{
    struct http_task *t = state;
    cw_http_req *hr = t->hr;
    cw_http_route *r = hr->route;
    if (r->h.drop)
        r->h.drop(t->user);
    struct evhttp_request *req = let_go(hr);
    if (req && r->cb) { /* the callback form, cancelled before it ran */
        r->st.refused++;
        evhttp_send_error(req, 503, NULL);
    } else if (req) { /* cancelled or panicked with the connection open */
        r->st.auto_500++;
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
    }
    if (hr->join) {
        cw_join *j = hr->join;
        hr->join = NULL;
        cw_join_free(j); /* the executor's reference keeps the block */
    }
    cw__free(hr);
    route_release(r);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    cw_http_route *r = arg;
    if (r->cb && !cw__cbq_alive(r->sh))
        goto at_once; /* the callback form without an executor */
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    size_t evsize = event_get_struct_event_size();
    cw_http_req *hr = cw__calloc(1, sizeof *hr + evsize);
    if (!hr)
        goto refuse;
    hr->route = r;
    hr->req = req;
    hr->evcon = evcon;
    struct http_task *t = (struct http_task *)(void *)r->tmpl;
    t->hr = hr;
    int err = cw_spawn(r->q, r->cb ? cb_task_poll : task_poll, r->tmpl, r->tmpl_size, task_drop,
                       &hr->join);
    t->hr = NULL;
    if (err < 0) {
        cw__free(hr);
        goto refuse;
    }
    r->refs++;
    r->st.requests++;
    r->st.in_flight++;
    if (evcon)
        evhttp_connection_set_closecb(evcon, on_close, hr);
    return;
refuse:
    if (r->cb)
        goto at_once;
    r->st.refused++;
    evhttp_send_error(req, 503, NULL);
    return;
at_once: /* the callback form: as evhttp would run it */
    r->cb(req, r->cbarg);
}

/* A route of either form: a handler h (the task form) or, h NULL, the
 * callback cb (the callback form). */
static int route_new(struct evhttp *http, const char *path, cw_queue *q,
                     const cw_http_handler *h, cw_evhttp_cb cb, void *cbarg, cw_http_route **out)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (!http || !out || (h ? !h->poll || h->state_size > HTTP_MAX_STATE : !cb))
        return -EINVAL;
    cw_http_route *r = cw__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->http = http;
    r->q = q;
    if (h)
        r->h = *h;
    r->cb = cb;
    r->cbarg = cbarg;
    if (cb) {
        r->sh = cw_queue_executor(q)->shared;
        cw__shared_hold(r->sh);
    }
    r->refs = 1;
    r->tmpl_size = sizeof(struct http_task) + (h ? h->state_size : 0);
    r->tmpl = cw__calloc(1, r->tmpl_size);
    if (path) {
        size_t n = strlen(path) + 1;
        r->path = cw__malloc(n);
        if (r->path)
            memcpy(r->path, path, n);
    }
    if (!r->tmpl || (path && !r->path)) {
        route_release(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

int cw_http_set_cb(struct evhttp *http, const char *path, cw_queue *q, const cw_http_handler *h,
                   cw_http_route **route)
{
    if (!q)
        return -ENOENT;
    if (!path || !route)
        return -EINVAL;
    cw_http_route *r;
    int err = route_new(http, path, q, h, NULL, NULL, &r);
    if (err < 0)
        return err;
    if (evhttp_set_cb(http, path, on_request, r) != 0) {
        route_release(r);
        return -EEXIST;
    }
    r->registered = true;
    *route = r;
    return 0;
}

/* The generic route registered on each evhttp, so that setting a new one
 * marks the one it replaces as unregistered (freeing that one must not
 * unset the new one). Any thread may run its own evhttp: a lock. It also
 * guards cb_routes: the callback form's routes (path and generic), which
 * the registry owns (one reference each) until cw_evhttp_del_cb(), a
 * replacing generic callback, or cw_evhttp_free(). */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static cw_http_route *gen_routes;
static cw_http_route *cb_routes;

static void cb_unlink(cw_http_route *r)
{
    for (cw_http_route **p = &cb_routes; *p; p = &(*p)->cb_next)
        if (*p == r) {
            *p = r->cb_next;
            r->cb_next = NULL;
            return;
        }
}

static void gen_unlink(cw_http_route *r)
{
    for (cw_http_route **p = &gen_routes; *p; p = &(*p)->gen_next)
        if (*p == r) {
            *p = r->gen_next;
            r->gen_next = NULL;
            return;
        }
}

/* Mark http's generic route (if any) unregistered, under gen_lock; the
 * registry's reference on it, if it is of the callback form, is
 * returned, for the caller to release after unlocking. */
static cw_http_route *gen_unset_locked(struct evhttp *http)
{
    cw_http_route *owned = NULL;
    for (cw_http_route **p = &gen_routes; *p;) {
        cw_http_route *old = *p;
        if (old->http == http) { /* replaced */
            old->registered = false;
            *p = old->gen_next;
            old->gen_next = NULL;
            if (old->cb) {
                cb_unlink(old);
                owned = old;
            }
        } else {
            p = &old->gen_next;
        }
    }
    return owned;
}

/* r becomes http's generic route; returns as gen_unset_locked(). */
static cw_http_route *gen_register(cw_http_route *r)
{
    pthread_mutex_lock(&gen_lock);
    cw_http_route *owned = gen_unset_locked(r->http);
    r->gen_next = gen_routes;
    gen_routes = r;
    if (r->cb) {
        r->cb_next = cb_routes;
        cb_routes = r;
    }
    pthread_mutex_unlock(&gen_lock);
    return owned;
}

static void route_release_owned(cw_http_route *r)
{
    if (r)
        route_release(r);
}

int cw_http_set_gencb(struct evhttp *http, cw_queue *q, const cw_http_handler *h,
                      cw_http_route **route)
{
    if (!q)
        return -ENOENT;
    if (!route)
        return -EINVAL;
    cw_http_route *r;
    int err = route_new(http, NULL, q, h, NULL, NULL, &r);
    if (err < 0)
        return err;
    cw_http_route *replaced = gen_register(r);
    evhttp_set_gencb(http, on_request, r);
    r->registered = true;
    route_release_owned(replaced);
    *route = r;
    return 0;
}

void cw_http_route_free(cw_http_route *r)
{
    if (!r)
        return;
    if (r->registered) {
        if (r->path) {
            evhttp_del_cb(r->http, r->path);
        } else {
            pthread_mutex_lock(&gen_lock);
            gen_unlink(r);
            pthread_mutex_unlock(&gen_lock);
            evhttp_set_gencb(r->http, NULL, NULL);
        }
        r->registered = false;
    }
    route_release(r);
}

int cw_http_route_stats_get(const cw_http_route *r, cw_http_route_stats *out)
{
    if (!r || !out)
        return -EINVAL;
    *out = r->st;
    return 0;
}

struct evhttp_request *cw_http_req_request(const cw_http_req *hr)
{
    return hr ? hr->req : NULL;
}

void *cw_http_req_arg(const cw_http_req *hr)
{
    return hr ? hr->route->h.arg : NULL;
}

bool cw_http_req_replied(const cw_http_req *hr)
{
    return hr && hr->replied;
}

/* Take the request for a reply: 0, or why not. */
static int take_for_reply(cw_http_req *hr, struct evhttp_request **req)
{
    if (!hr)
        return -EINVAL;
    if (hr->replied)
        return -EALREADY;
    if (!hr->req)
        return -EPIPE; /* the client went away; the task is being cancelled */
    hr->replied = true;
    hr->route->st.replied++;
    *req = let_go(hr);
    /* the reply waits in libevent's buffers: let it write them soon
     * (after the requests queued behind this one, within 50 us) */
    cw__executor_flush_soon(cw_queue_executor(hr->route->q));
    return 0;
}

int cw_http_reply(cw_http_req *hr, int code, const char *reason, struct evbuffer *body)
{
    struct evhttp_request *req;
    if (!reason)
        return -EINVAL;
    int err = take_for_reply(hr, &req);
    if (err < 0)
        return err;
    evhttp_send_reply(req, code, reason, body);
    return 0;
}

int cw_http_send_error(cw_http_req *hr, int code, const char *reason)
{
    struct evhttp_request *req;
    int err = take_for_reply(hr, &req);
    if (err < 0)
        return err;
    evhttp_send_error(req, code, reason);
    return 0;
}

/* ---- the callback form ---------------------------------------------------- */

static int cb_args(cw_queue *q, struct evhttp *http, cw_evhttp_cb cb)
{
    if (!q) /* what cw_executor_queue() gives for an unknown id */
        return -ENOENT;
    if (!http || !cb)
        return -EINVAL;
    if (!cw__on_thread(cw_queue_executor(q)->shared))
        return -EPERM;
    return 0;
}

int cw_evhttp_set_cb(cw_queue *q, struct evhttp *http, const char *path, cw_evhttp_cb cb,
                     void *cbarg)
{
    int err = path ? cb_args(q, http, cb) : -EINVAL;
    if (err < 0)
        return err;
    cw_http_route *r;
    if ((err = route_new(http, path, q, NULL, cb, cbarg, &r)) < 0)
        return err;
    int rc = evhttp_set_cb(http, path, on_request, r);
    if (rc != 0) {
        route_release(r);
        return rc == -1 ? -EEXIST : -ENOMEM;
    }
    r->registered = true;
    pthread_mutex_lock(&gen_lock);
    r->cb_next = cb_routes;
    cb_routes = r;
    pthread_mutex_unlock(&gen_lock);
    return 0;
}

int cw_evhttp_del_cb(struct evhttp *http, const char *path)
{
    if (!http || !path)
        return -EINVAL;
    cw_http_route *r = NULL;
    pthread_mutex_lock(&gen_lock);
    for (cw_http_route *p = cb_routes; p; p = p->cb_next)
        if (p->http == http && p->path && strcmp(p->path, path) == 0) {
            r = p;
            break;
        }
    if (r)
        cb_unlink(r);
    pthread_mutex_unlock(&gen_lock);
    int rc = evhttp_del_cb(http, path);
    if (!r)
        return rc == 0 ? 0 : -ENOENT;
    r->registered = false;
    route_release(r); /* requests still queued keep it */
    return 0;
}

int cw_evhttp_set_gencb(cw_queue *q, struct evhttp *http, cw_evhttp_cb cb, void *cbarg)
{
    if (http && !cb) { /* cleared */
        pthread_mutex_lock(&gen_lock);
        cw_http_route *owned = gen_unset_locked(http);
        pthread_mutex_unlock(&gen_lock);
        evhttp_set_gencb(http, NULL, NULL);
        route_release_owned(owned);
        return 0;
    }
    int err = cb_args(q, http, cb);
    if (err < 0)
        return err;
    cw_http_route *r;
    if ((err = route_new(http, NULL, q, NULL, cb, cbarg, &r)) < 0)
        return err;
    cw_http_route *replaced = gen_register(r);
    evhttp_set_gencb(http, on_request, r);
    r->registered = true;
    route_release_owned(replaced);
    return 0;
}

void cw_evhttp_free(struct evhttp *http)
{
    if (!http)
        return;
    cw_http_route *mine = NULL; /* linked by cb_next */
    pthread_mutex_lock(&gen_lock);
    for (cw_http_route **p = &cb_routes; *p;) {
        cw_http_route *r = *p;
        if (r->http != http) {
            p = &r->cb_next;
            continue;
        }
        *p = r->cb_next;
        if (!r->path && r->registered)
            gen_unlink(r);
        r->cb_next = mine;
        mine = r;
    }
    pthread_mutex_unlock(&gen_lock);
    /* requests still queued are cancelled now (their connections close) */
    evhttp_free(http);
    while (mine) {
        cw_http_route *r = mine;
        mine = r->cb_next;
        r->registered = false;
        route_release(r);
    }
}
