/* embed_host.h - hand-written host loops for the embed driver's tests
 * (clockworker/embed.h): one on poll(), one on epoll. Each keeps the list
 * watch_fd builds, logs every hook call, and counts calls that changed
 * nothing (the driver promises there are none). */
#ifndef CW_TEST_EMBED_HOST_H
#define CW_TEST_EMBED_HOST_H

#include <stdint.h>

#include "clockworker.h"

enum { EHOST_POLL = 0, EHOST_EPOLL = 1 };
enum { EHOST_MAXFD = 64, EHOST_LOG = 256 };

typedef struct ehost {
    int kind;          /* EHOST_POLL or EHOST_EPOLL */
    cw_executor *ex;   /* set by the test after cw_executor_new_embed() */
    int epfd;          /* EHOST_EPOLL */
    int nfds;          /* the watched fds and what for */
    int fds[EHOST_MAXFD];
    short what[EHOST_MAXFD];
    int64_t timer;     /* the last set_timer value (-1 at first) */
    int nwatch;        /* watch_fd calls, logged below */
    int watch_fd_log[EHOST_LOG];
    short watch_what_log[EHOST_LOG];
    int ntimer;        /* set_timer calls, logged below */
    int64_t timer_log[EHOST_LOG];
    int redundant;     /* hook calls that changed nothing */
    int turns;         /* ehost_turn() calls */
} ehost;

/* The hooks, run_once included (arg: the ehost). */
extern const cw_embed_hooks ehost_hooks;

/* A host of the kind; no executor yet. ehost_free() closes what it made. */
void ehost_init(ehost *h, int kind);
void ehost_free(ehost *h);

/* Create h->ex on h from cfg (not freed); a cw error. */
int ehost_executor(ehost *h, const cw_config *cfg);

/* One turn: poll (poll() or epoll_wait()) for at most timeout_ms (-1:
 * until an fd is ready), report each ready fd, tick. Returns how many fds
 * were reported. */
int ehost_turn(ehost *h, int timeout_ms);

/* Turns, each blocking for cw_embed_next_ms(), until nothing is watched
 * and no timer is set (as event_base_dispatch()); returns the turns. */
int ehost_run(ehost *h);

/* What the host watches fd for (0: not watched). */
short ehost_watching(const ehost *h, int fd);

#endif
