/* embed_host.c - the poll() and epoll host loops of embed_host.h. */
#include "embed_host.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int find(const ehost *h, int fd)
{
    for (int i = 0; i < h->nfds; i++)
        if (h->fds[i] == fd)
            return i;
    return -1;
}

short ehost_watching(const ehost *h, int fd)
{
    int i = find(h, fd);
    return i < 0 ? 0 : h->what[i];
}

static uint32_t ep_events(short what)
{
    return ((what & CW_FD_READ) ? EPOLLIN : 0u) | ((what & CW_FD_WRITE) ? EPOLLOUT : 0u);
}

static void watch_fd(void *arg, int fd, short what)
{
    ehost *h = arg;
    if (h->nwatch < EHOST_LOG) {
        h->watch_fd_log[h->nwatch] = fd;
        h->watch_what_log[h->nwatch] = what;
    }
    h->nwatch++;
    int i = find(h, fd);
    if ((i < 0 && !what) || (i >= 0 && h->what[i] == what)) {
        h->redundant++;
        return;
    }
    if (!what) {
        if (h->kind == EHOST_EPOLL)
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
        h->nfds--;
        h->fds[i] = h->fds[h->nfds];
        h->what[i] = h->what[h->nfds];
        return;
    }
    if (h->kind == EHOST_EPOLL) {
        struct epoll_event ev = {.events = ep_events(what), .data.fd = fd};
        epoll_ctl(h->epfd, i < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    }
    if (i < 0) {
        if (h->nfds == EHOST_MAXFD) {
            h->redundant++; /* the test's list is full: fails the test */
            return;
        }
        i = h->nfds++;
        h->fds[i] = fd;
    }
    h->what[i] = what;
}

static void set_timer(void *arg, int64_t delay_ns)
{
    ehost *h = arg;
    if (h->ntimer < EHOST_LOG)
        h->timer_log[h->ntimer] = delay_ns;
    h->ntimer++;
    /* -1 twice in a row, or 0 twice, changed nothing (a delay may repeat:
     * a new deadline the same distance away) */
    if (delay_ns == h->timer && delay_ns <= 0)
        h->redundant++;
    h->timer = delay_ns;
}

static int run_once(void *arg)
{
    ehost *h = arg;
    if (!h->nfds && cw_embed_next_ns(h->ex) < 0)
        return 1;
    ehost_turn(h, cw_embed_next_ms(h->ex));
    return 0;
}

const cw_embed_hooks ehost_hooks = {
    .watch_fd = watch_fd,
    .set_timer = set_timer,
    .run_once = run_once,
};

void ehost_init(ehost *h, int kind)
{
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->timer = -1;
    h->epfd = kind == EHOST_EPOLL ? epoll_create1(EPOLL_CLOEXEC) : -1;
}

void ehost_free(ehost *h)
{
    if (h->epfd >= 0)
        close(h->epfd);
    h->epfd = -1;
}

int ehost_executor(ehost *h, const cw_config *cfg)
{
    return cw_executor_new_embed(&ehost_hooks, h, cfg, &h->ex);
}

static short from_poll(short re)
{
    short what = 0;
    if (re & (POLLIN | POLLHUP | POLLERR))
        what |= CW_FD_READ;
    if (re & (POLLOUT | POLLHUP | POLLERR))
        what |= CW_FD_WRITE;
    return what;
}

int ehost_turn(ehost *h, int timeout_ms)
{
    int fds[EHOST_MAXFD];
    short seen[EHOST_MAXFD];
    int n = 0;
    h->turns++;
    if (h->kind == EHOST_POLL) {
        struct pollfd p[EHOST_MAXFD];
        int m = h->nfds;
        for (int i = 0; i < m; i++)
            p[i] = (struct pollfd){.fd = h->fds[i], .events = (short)ep_events(h->what[i])};
        int r = poll(p, (nfds_t)m, timeout_ms);
        for (int i = 0; r > 0 && i < m; i++)
            if (p[i].revents) {
                fds[n] = p[i].fd;
                seen[n++] = from_poll(p[i].revents);
            }
    } else {
        struct epoll_event ev[EHOST_MAXFD];
        int r = epoll_wait(h->epfd, ev, EHOST_MAXFD, timeout_ms);
        for (int i = 0; i < r; i++) {
            uint32_t e = ev[i].events;
            short what = 0;
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                what |= CW_FD_READ;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                what |= CW_FD_WRITE;
            fds[n] = ev[i].data.fd;
            seen[n++] = what;
        }
    }
    /* report from the copy: watch_fd may change the list meanwhile */
    for (int i = 0; i < n; i++)
        cw_embed_fd_ready(h->ex, fds[i], seen[i]);
    cw_embed_tick(h->ex);
    return n;
}

int ehost_run(ehost *h)
{
    int n = 0;
    while (h->nfds || cw_embed_next_ns(h->ex) >= 0) {
        ehost_turn(h, cw_embed_next_ms(h->ex));
        n++;
    }
    return n;
}
