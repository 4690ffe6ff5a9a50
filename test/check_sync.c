/* check_sync.c - cw_oneshot, cw_chan, cw_remote_chan, cw_notify, cw_sem,
 * cw_spawn_remote (clockworker/sync.h), and examples/pipeline.
 *
 * Single-thread tests run on the fake clock and drive the loop with
 * non-blocking turns; each asserts an order or a count the header
 * promises (FIFO service, wake-once, capacity, -EPIPE on close, nothing
 * lost when a waiter is aborted). Cross-thread tests assert exact totals
 * (nothing lost or duplicated) and per-sender order, never timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clockworker/sync.h"
#include "testutil.h"

enum { Q = 0 };

static void env_up(tenv *e)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    tenv_init(e, cfg, 1);
}

static cw_queue *queue(tenv *e)
{
    return cw_executor_queue(e->ex, Q);
}

/* ---- one generic waiting task ---------------------------------------------
 * Waits once on one primitive (the future is initialised at the first
 * poll, so that its buffers are in the task's own state), records the
 * result and the value, and appends its tag to a completion log. */

enum kind { K_CHAN_RECV, K_CHAN_SEND, K_NOTIFY, K_SEM, K_ONESHOT, K_RCHAN_RECV };

static int logv[64];
static int nlog;

struct waiter {
    enum kind kind;
    int tag;
    void *obj;
    uint64_t n;    /* K_SEM: permits */
    int value;     /* K_CHAN_SEND: sent; receivers: received */
    int result;    /* output */
    bool inited;
    union {
        cw_chan_recv crx;
        cw_chan_send ctx;
        cw_notify_wait nw;
        cw_sem_acquire sa;
        cw_oneshot_recv orx;
        cw_remote_chan_recv rrx;
    } f;
};

static cw_poll waiter_poll(void *state, cw_cx *cx)
{
    struct waiter *w = state;
    cw_poll r = CW_READY;
    if (!w->inited) {
        w->inited = true;
        switch (w->kind) {
        case K_CHAN_RECV: cw_chan_recv_init(&w->f.crx, w->obj, &w->value); break;
        case K_CHAN_SEND: cw_chan_send_init(&w->f.ctx, w->obj, &w->value); break;
        case K_NOTIFY: cw_notify_wait_init(&w->f.nw, w->obj); break;
        case K_SEM: cw_sem_acquire_init(&w->f.sa, w->obj, w->n); break;
        case K_ONESHOT: cw_oneshot_recv_init(&w->f.orx, w->obj, &w->value); break;
        case K_RCHAN_RECV: cw_remote_chan_recv_init(&w->f.rrx, w->obj, &w->value); break;
        }
    }
    switch (w->kind) {
    case K_CHAN_RECV: r = cw_chan_recv_poll(&w->f.crx, cx); w->result = cw_chan_recv_result(&w->f.crx); break;
    case K_CHAN_SEND: r = cw_chan_send_poll(&w->f.ctx, cx); w->result = cw_chan_send_result(&w->f.ctx); break;
    case K_NOTIFY: r = cw_notify_wait_poll(&w->f.nw, cx); w->result = cw_notify_wait_result(&w->f.nw); break;
    case K_SEM: r = cw_sem_acquire_poll(&w->f.sa, cx); w->result = cw_sem_acquire_result(&w->f.sa); break;
    case K_ONESHOT: r = cw_oneshot_recv_poll(&w->f.orx, cx); w->result = cw_oneshot_recv_result(&w->f.orx); break;
    case K_RCHAN_RECV: r = cw_remote_chan_recv_poll(&w->f.rrx, cx); w->result = cw_remote_chan_recv_result(&w->f.rrx); break;
    }
    if (r == CW_PENDING) {
        ck_assert_int_eq(w->result, -EAGAIN);
        return CW_PENDING;
    }
    ck_assert_int_lt(nlog, 64);
    logv[nlog++] = w->tag;
    return CW_READY;
}

static void waiter_drop(void *state)
{
    struct waiter *w = state;
    switch (w->kind) {
    case K_CHAN_RECV: cw_chan_recv_drop(&w->f.crx); break;
    case K_CHAN_SEND: cw_chan_send_drop(&w->f.ctx); break;
    case K_NOTIFY: cw_notify_wait_drop(&w->f.nw); break;
    case K_SEM: cw_sem_acquire_drop(&w->f.sa); break;
    case K_ONESHOT: cw_oneshot_recv_drop(&w->f.orx); break;
    case K_RCHAN_RECV: cw_remote_chan_recv_drop(&w->f.rrx); break;
    }
}

static cw_join *spawn_w(tenv *e, enum kind kind, void *obj, int tag, int value, uint64_t n)
{
    struct waiter w = {.kind = kind, .obj = obj, .tag = tag, .value = value, .n = n};
    cw_join *j = NULL;
    ck_assert_int_eq(cw_spawn(queue(e), waiter_poll, &w, sizeof w, waiter_drop, &j), 0);
    return j;
}

static bool pending(cw_join *j)
{
    return cw_join_status(j) == -EAGAIN;
}

static const struct waiter *done(cw_join *j)
{
    ck_assert_int_eq(cw_join_status(j), 0);
    const struct waiter *w = cw_join_state(j);
    ck_assert_ptr_nonnull(w);
    return w;
}

static void free_joins(cw_join **j, int n)
{
    for (int i = 0; i < n; i++)
        cw_join_free(j[i]);
}

/* ======================================================================== */
/* cw_chan */

START_TEST(chan_try_send_fills_exactly_capacity_and_try_recv_is_fifo)
{
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(4, sizeof(int), &ch), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(cw_chan_try_send(ch, &i), 0);
    int x = 99;
    ck_assert_int_eq(cw_chan_try_send(ch, &x), -EAGAIN);
    ck_assert_uint_eq(cw_chan_len(ch), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
    }
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), -EAGAIN);
    /* the ring wraps: another lap keeps the order */
    for (int i = 10; i < 13; i++)
        ck_assert_int_eq(cw_chan_try_send(ch, &i), 0);
    for (int i = 10; i < 13; i++) {
        ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
        ck_assert_int_eq(x, i);
    }
    cw_chan_free(ch);
}
END_TEST

START_TEST(chan_bad_arguments_give_einval)
{
    cw_chan *ch = NULL;
    int x = 0;
    ck_assert_int_eq(cw_chan_new(0, 4, &ch), -EINVAL);
    ck_assert_int_eq(cw_chan_new(4, 4, NULL), -EINVAL);
    ck_assert_int_eq(cw_chan_new(SIZE_MAX / 2, 4, &ch), -EINVAL);
    ck_assert_int_eq(cw_chan_try_send(NULL, &x), -EINVAL);
    ck_assert_int_eq(cw_chan_try_recv(NULL, &x), -EINVAL);
    ck_assert_int_eq(cw_chan_new(1, sizeof x, &ch), 0);
    ck_assert_int_eq(cw_chan_try_send(ch, NULL), -EINVAL);
    ck_assert_int_eq(cw_chan_try_recv(ch, NULL), -EINVAL);
    /* a future on NULL, or never initialised, is ready with -EINVAL */
    cw_chan_recv rx;
    cw_chan_recv_init(&rx, NULL, &x);
    ck_assert_int_eq(cw_chan_recv_poll(&rx, NULL), CW_READY);
    ck_assert_int_eq(cw_chan_recv_result(&rx), -EINVAL);
    cw_chan_recv zero = {0};
    ck_assert_int_eq(cw_chan_recv_result(&zero), -EINVAL);
    ck_assert_int_eq(cw_chan_recv_poll(&zero, NULL), CW_READY);
    cw_chan_recv_drop(&zero);
    cw_chan_recv_drop(NULL);
    cw_chan_close(NULL);
    cw_chan_free(NULL);
    cw_chan_free(ch);
}
END_TEST

START_TEST(chan_waiting_receiver_gets_value_sent_later)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(2, sizeof(int), &ch), 0);
    cw_join *j = spawn_w(&e, K_CHAN_RECV, ch, 1, 0, 0);
    turns(&e, 3);
    ck_assert(pending(j));
    int v = 42;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    turns(&e, 2);
    ck_assert_int_eq(done(j)->result, 0);
    ck_assert_int_eq(done(j)->value, 42);
    ck_assert_uint_eq(cw_chan_len(ch), 0);
    cw_join_free(j);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

START_TEST(chan_waiting_senders_enter_in_the_order_they_began_to_wait)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &ch), 0);
    int v = 100;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    cw_join *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = spawn_w(&e, K_CHAN_SEND, ch, i + 1, i + 1, 0);
    turns(&e, 3);
    for (int i = 0; i < 3; i++)
        ck_assert(pending(j[i]));
    /* a full ring with senders waiting: try_send may not overtake them */
    int x = 7;
    ck_assert_int_eq(cw_chan_try_send(ch, &x), -EAGAIN);
    /* each freed slot takes the next waiting sender's value at once */
    int want[] = {100, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
        ck_assert_int_eq(x, want[i]);
    }
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), -EAGAIN);
    turns(&e, 2);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(done(j[i])->result, 0);
    free_joins(j, 3);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

START_TEST(chan_receivers_are_served_in_fifo_order)
{
    tenv e;
    env_up(&e);
    nlog = 0;
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(4, sizeof(int), &ch), 0);
    cw_join *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = spawn_w(&e, K_CHAN_RECV, ch, i + 1, 0, 0);
    turns(&e, 3);
    int a = 10, b = 20;
    ck_assert_int_eq(cw_chan_try_send(ch, &a), 0);
    ck_assert_int_eq(cw_chan_try_send(ch, &b), 0);
    /* both values are reserved for the first two receivers */
    ck_assert_int_eq(cw_chan_try_recv(ch, &a), -EAGAIN);
    turns(&e, 3);
    ck_assert_int_eq(done(j[0])->value, 10);
    ck_assert_int_eq(done(j[1])->value, 20);
    ck_assert(pending(j[2]));
    ck_assert_int_eq(nlog, 2);
    ck_assert_int_eq(logv[0], 1);
    ck_assert_int_eq(logv[1], 2);
    free_joins(j, 3);
    cw_chan_free(ch); /* j[2] is still waiting: detached, completes -EPIPE */
    tenv_free(&e);
}
END_TEST

START_TEST(chan_close_wakes_every_waiter_with_epipe_and_keeps_values_for_receivers)
{
    tenv e;
    env_up(&e);
    cw_chan *full, *empty;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &full), 0);
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &empty), 0);
    int v = 5;
    ck_assert_int_eq(cw_chan_try_send(full, &v), 0);
    cw_join *j[4];
    j[0] = spawn_w(&e, K_CHAN_SEND, full, 1, 1, 0);
    j[1] = spawn_w(&e, K_CHAN_SEND, full, 2, 2, 0);
    j[2] = spawn_w(&e, K_CHAN_RECV, empty, 3, 0, 0);
    j[3] = spawn_w(&e, K_CHAN_RECV, empty, 4, 0, 0);
    turns(&e, 3);
    for (int i = 0; i < 4; i++)
        ck_assert(pending(j[i]));
    cw_chan_close(full);
    cw_chan_close(empty);
    cw_chan_close(empty); /* twice: nothing more */
    turns(&e, 3);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(done(j[i])->result, -EPIPE);
    /* the value sent before the close is still received, then -EPIPE */
    int x;
    ck_assert_int_eq(cw_chan_try_send(full, &v), -EPIPE);
    ck_assert_int_eq(cw_chan_try_recv(full, &x), 0);
    ck_assert_int_eq(x, 5);
    ck_assert_int_eq(cw_chan_try_recv(full, &x), -EPIPE);
    free_joins(j, 4);
    cw_chan_free(full);
    cw_chan_free(empty);
    tenv_free(&e);
}
END_TEST

START_TEST(chan_value_reserved_for_aborted_receiver_goes_to_the_next)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(2, sizeof(int), &ch), 0);
    cw_join *r1 = spawn_w(&e, K_CHAN_RECV, ch, 1, 0, 0);
    cw_join *r2 = spawn_w(&e, K_CHAN_RECV, ch, 2, 0, 0);
    turns(&e, 3);
    int v = 7;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0); /* reserved for r1, woken */
    cw_join_abort(r1);                            /* before r1 runs */
    ck_assert_int_eq(cw_join_status(r1), -ECANCELED);
    turns(&e, 3);
    ck_assert_int_eq(done(r2)->value, 7);
    ck_assert_uint_eq(cw_chan_len(ch), 0);

    /* with nobody else waiting, the value stays in the channel */
    cw_join *r3 = spawn_w(&e, K_CHAN_RECV, ch, 3, 0, 0);
    turns(&e, 3);
    v = 8;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    cw_join_abort(r3);
    ck_assert_uint_eq(cw_chan_len(ch), 1);
    int x;
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
    ck_assert_int_eq(x, 8);
    cw_join_free(r1);
    cw_join_free(r2);
    cw_join_free(r3);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

START_TEST(chan_aborted_sender_leaves_the_wait_list_and_sends_nothing)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &ch), 0);
    int v = 100;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    cw_join *s1 = spawn_w(&e, K_CHAN_SEND, ch, 1, 1, 0);
    cw_join *s2 = spawn_w(&e, K_CHAN_SEND, ch, 2, 2, 0);
    turns(&e, 3);
    cw_join_abort(s1);
    int x;
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
    ck_assert_int_eq(x, 100);
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0);
    ck_assert_int_eq(x, 2);
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), -EAGAIN);
    turns(&e, 2);
    ck_assert_int_eq(done(s2)->result, 0);
    cw_join_free(s1);
    cw_join_free(s2);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

START_TEST(chan_free_with_waiters_completes_them_with_epipe)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &ch), 0);
    cw_join *r = spawn_w(&e, K_CHAN_RECV, ch, 1, 0, 0);
    turns(&e, 2);
    cw_chan_free(ch);
    turns(&e, 2);
    ck_assert_int_eq(done(r)->result, -EPIPE);
    cw_join_free(r);
    tenv_free(&e);
}
END_TEST

/* A task sends 1..n through a cap-2 channel, another receives them: the
 * sequence arrives whole and in order, through many waits each side. */
struct pump {
    cw_pt pt;
    cw_chan *ch;
    int i, n, x;
    long sum;          /* receiver: output */
    int last;          /* receiver: output */
    cw_chan_send tx;
    cw_chan_recv rx;
};

static cw_poll pump_send(void *state, cw_cx *cx)
{
    struct pump *p = state;
    CW_BEGIN(&p->pt);
    for (p->i = 1; p->i <= p->n; p->i++) {
        p->x = p->i;
        cw_chan_send_init(&p->tx, p->ch, &p->x);
        CW_AWAIT(&p->pt, cw_chan_send_poll(&p->tx, cx));
        ck_assert_int_eq(cw_chan_send_result(&p->tx), 0);
    }
    cw_chan_close(p->ch);
    CW_END(&p->pt);
}

static cw_poll pump_recv(void *state, cw_cx *cx)
{
    struct pump *p = state;
    CW_BEGIN(&p->pt);
    for (;;) {
        cw_chan_recv_init(&p->rx, p->ch, &p->x);
        CW_AWAIT(&p->pt, cw_chan_recv_poll(&p->rx, cx));
        if (cw_chan_recv_result(&p->rx) < 0)
            break;
        ck_assert_int_eq(p->x, p->last + 1);
        p->last = p->x;
        p->sum += p->x;
    }
    ck_assert_int_eq(cw_chan_recv_result(&p->rx), -EPIPE);
    CW_END(&p->pt);
}

START_TEST(chan_task_to_task_stream_arrives_whole_and_in_order)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(2, sizeof(int), &ch), 0);
    struct pump p = {.ch = ch, .n = 1000};
    cw_join *js, *jr;
    ck_assert_int_eq(cw_spawn(queue(&e), pump_recv, &p, sizeof p, NULL, &jr), 0);
    ck_assert_int_eq(cw_spawn(queue(&e), pump_send, &p, sizeof p, NULL, &js), 0);
    ck_assert_int_eq(cw_executor_run_until(e.ex, jr), 0);
    const struct pump *r = cw_join_state(jr);
    ck_assert_int_eq(r->last, 1000);
    ck_assert_int_eq(r->sum, 1000L * 1001 / 2);
    ck_assert_int_eq(cw_join_status(js), 0);
    cw_join_free(js);
    cw_join_free(jr);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* cw_oneshot */

START_TEST(oneshot_waiting_receiver_gets_the_value)
{
    tenv e;
    env_up(&e);
    cw_oneshot *os;
    ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
    cw_join *j = spawn_w(&e, K_ONESHOT, os, 1, 0, 0);
    turns(&e, 3);
    ck_assert(pending(j));
    int v = 31;
    ck_assert_int_eq(cw_oneshot_send(os, &v), 0);
    turns(&e, 2);
    ck_assert_int_eq(done(j)->result, 0);
    ck_assert_int_eq(done(j)->value, 31);
    /* the value was taken: a second take says so */
    int x;
    ck_assert_int_eq(cw_oneshot_try_recv(os, &x), -EPIPE);
    cw_oneshot_receiver_free(os);
    cw_join_free(j);
    tenv_free(&e);
}
END_TEST

START_TEST(oneshot_sender_freed_unsent_wakes_receiver_with_epipe)
{
    tenv e;
    env_up(&e);
    cw_oneshot *os;
    ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
    cw_join *j = spawn_w(&e, K_ONESHOT, os, 1, 0, 0);
    turns(&e, 3);
    ck_assert(pending(j));
    cw_oneshot_sender_free(os);
    turns(&e, 2);
    ck_assert_int_eq(done(j)->result, -EPIPE);
    cw_oneshot_receiver_free(os);
    cw_join_free(j);
    tenv_free(&e);
}
END_TEST

START_TEST(oneshot_try_recv_and_send_to_a_freed_receiver)
{
    cw_oneshot *os;
    int v = 3, x = 0;
    ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
    ck_assert_int_eq(cw_oneshot_try_recv(os, &x), -EAGAIN);
    ck_assert_int_eq(cw_oneshot_send(os, &v), 0);
    ck_assert_int_eq(cw_oneshot_try_recv(os, &x), 0);
    ck_assert_int_eq(x, 3);
    ck_assert_int_eq(cw_oneshot_try_recv(os, &x), -EPIPE);
    cw_oneshot_receiver_free(os);

    ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
    cw_oneshot_receiver_free(os);
    ck_assert_int_eq(cw_oneshot_send(os, &v), -EPIPE); /* frees it */

    ck_assert_int_eq(cw_oneshot_new(0, &os), 0); /* a bare signal */
    ck_assert_int_eq(cw_oneshot_send(os, NULL), 0);
    ck_assert_int_eq(cw_oneshot_try_recv(os, NULL), 0);
    cw_oneshot_receiver_free(os);
    ck_assert_int_eq(cw_oneshot_new(4, NULL), -EINVAL);
    ck_assert_int_eq(cw_oneshot_send(NULL, &v), -EINVAL);
}
END_TEST

struct os_thread {
    cw_oneshot *os;
    int value;
    int err;
};

static void *oneshot_sender_thread(void *arg)
{
    struct os_thread *t = arg;
    t->err = cw_oneshot_send(t->os, &t->value);
    return NULL;
}

START_TEST(oneshot_value_sent_from_another_thread_wakes_the_task)
{
    tenv e;
    env_up(&e);
    for (int round = 0; round < 50; round++) {
        cw_oneshot *os;
        ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
        cw_join *j = spawn_w(&e, K_ONESHOT, os, 1, 0, 0);
        if (round % 2 == 0)
            turns(&e, 2); /* waiting before the send, or racing with it */
        struct os_thread t = {.os = os, .value = 1000 + round};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, oneshot_sender_thread, &t), 0);
        ck_assert_int_eq(cw_executor_run_until(e.ex, j), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_int_eq(t.err, 0);
        ck_assert_int_eq(done(j)->value, 1000 + round);
        cw_oneshot_receiver_free(os);
        cw_join_free(j);
    }
    tenv_free(&e);
}
END_TEST

START_TEST(oneshot_receiver_aborted_while_waiting_leaves_the_value)
{
    tenv e;
    env_up(&e);
    cw_oneshot *os;
    ck_assert_int_eq(cw_oneshot_new(sizeof(int), &os), 0);
    cw_join *j = spawn_w(&e, K_ONESHOT, os, 1, 0, 0);
    turns(&e, 2);
    cw_join_abort(j);
    int v = 9, x = 0;
    ck_assert_int_eq(cw_oneshot_send(os, &v), 0);
    ck_assert_int_eq(cw_oneshot_try_recv(os, &x), 0);
    ck_assert_int_eq(x, 9);
    cw_oneshot_receiver_free(os);
    cw_join_free(j);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* cw_notify */

START_TEST(notify_one_before_any_wait_is_kept_once)
{
    tenv e;
    env_up(&e);
    cw_notify *n;
    ck_assert_int_eq(cw_notify_new(&n), 0);
    cw_notify_one(n);
    cw_notify_one(n); /* still one stored */
    cw_join *w1 = spawn_w(&e, K_NOTIFY, n, 1, 0, 0);
    cw_join *w2 = spawn_w(&e, K_NOTIFY, n, 2, 0, 0);
    turns(&e, 3);
    ck_assert_int_eq(done(w1)->result, 0);
    ck_assert(pending(w2));
    cw_notify_one(n);
    turns(&e, 2);
    ck_assert_int_eq(done(w2)->result, 0);
    cw_join_free(w1);
    cw_join_free(w2);
    cw_notify_free(n);
    tenv_free(&e);
}
END_TEST

START_TEST(notify_one_wakes_only_the_first_waiter)
{
    tenv e;
    env_up(&e);
    nlog = 0;
    cw_notify *n;
    ck_assert_int_eq(cw_notify_new(&n), 0);
    cw_join *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = spawn_w(&e, K_NOTIFY, n, i + 1, 0, 0);
    turns(&e, 3);
    cw_notify_one(n);
    turns(&e, 3);
    ck_assert_int_eq(nlog, 1);
    ck_assert_int_eq(logv[0], 1);
    ck_assert(pending(j[1]) && pending(j[2]));
    cw_notify_one(n);
    turns(&e, 3);
    ck_assert_int_eq(nlog, 2);
    ck_assert_int_eq(logv[1], 2);
    ck_assert(pending(j[2]));
    free_joins(j, 3);
    cw_notify_free(n); /* j[2] detached with -EPIPE */
    tenv_free(&e);
}
END_TEST

START_TEST(notify_all_wakes_every_waiter_and_stores_nothing)
{
    tenv e;
    env_up(&e);
    cw_notify *n;
    ck_assert_int_eq(cw_notify_new(&n), 0);
    cw_join *j[4];
    for (int i = 0; i < 3; i++)
        j[i] = spawn_w(&e, K_NOTIFY, n, i + 1, 0, 0);
    turns(&e, 3);
    cw_notify_all(n);
    turns(&e, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(done(j[i])->result, 0);
    j[3] = spawn_w(&e, K_NOTIFY, n, 4, 0, 0);
    turns(&e, 3);
    ck_assert(pending(j[3]));
    cw_notify_all(n);
    turns(&e, 2);
    ck_assert_int_eq(done(j[3])->result, 0);
    free_joins(j, 4);
    cw_notify_free(n);
    tenv_free(&e);
}
END_TEST

START_TEST(notify_one_to_an_aborted_waiter_is_passed_on)
{
    tenv e;
    env_up(&e);
    cw_notify *n;
    ck_assert_int_eq(cw_notify_new(&n), 0);
    cw_join *w1 = spawn_w(&e, K_NOTIFY, n, 1, 0, 0);
    cw_join *w2 = spawn_w(&e, K_NOTIFY, n, 2, 0, 0);
    turns(&e, 3);
    cw_notify_one(n);   /* for w1 */
    cw_join_abort(w1);  /* before w1 ran: the notification goes to w2 */
    turns(&e, 2);
    ck_assert_int_eq(done(w2)->result, 0);

    /* aborted with nobody waiting: it is stored for the next wait */
    cw_join *w3 = spawn_w(&e, K_NOTIFY, n, 3, 0, 0);
    turns(&e, 2);
    cw_notify_one(n);
    cw_join_abort(w3);
    cw_join *w4 = spawn_w(&e, K_NOTIFY, n, 4, 0, 0);
    turns(&e, 2);
    ck_assert_int_eq(done(w4)->result, 0);
    /* an aborted plain waiter just leaves the list */
    cw_join *w5 = spawn_w(&e, K_NOTIFY, n, 5, 0, 0);
    cw_join *w6 = spawn_w(&e, K_NOTIFY, n, 6, 0, 0);
    turns(&e, 2);
    cw_join_abort(w5);
    cw_notify_one(n);
    turns(&e, 2);
    ck_assert_int_eq(done(w6)->result, 0);
    cw_join *all[] = {w1, w2, w3, w4, w5, w6};
    free_joins(all, 6);
    cw_notify_free(n);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* cw_sem */

START_TEST(sem_acquirers_are_served_fifo_without_overtaking)
{
    tenv e;
    env_up(&e);
    nlog = 0;
    cw_sem *s;
    ck_assert_int_eq(cw_sem_new(0, &s), 0);
    cw_join *a = spawn_w(&e, K_SEM, s, 1, 0, 2);
    cw_join *b = spawn_w(&e, K_SEM, s, 2, 0, 1);
    turns(&e, 3);
    ck_assert_int_eq(cw_sem_release(s, 1), 0);
    turns(&e, 3);
    ck_assert(pending(a) && pending(b)); /* b (1) may not pass a (2) */
    ck_assert_int_eq(cw_sem_try_acquire(s, 1), -EAGAIN);
    ck_assert_uint_eq(cw_sem_available(s), 1);
    ck_assert_int_eq(cw_sem_release(s, 1), 0);
    turns(&e, 3);
    ck_assert_int_eq(done(a)->result, 0);
    ck_assert(pending(b));
    ck_assert_int_eq(cw_sem_release(s, 1), 0);
    turns(&e, 3);
    ck_assert_int_eq(done(b)->result, 0);
    ck_assert_int_eq(nlog, 2);
    ck_assert_int_eq(logv[0], 1);
    ck_assert_int_eq(logv[1], 2);
    ck_assert_uint_eq(cw_sem_available(s), 0);
    ck_assert_int_eq(cw_sem_try_acquire(s, 0), 0);
    ck_assert_int_eq(cw_sem_release(s, UINT64_MAX), 0);
    ck_assert_int_eq(cw_sem_release(s, 1), -EOVERFLOW); /* would overflow */
    ck_assert_uint_eq(cw_sem_available(s), UINT64_MAX);
    cw_join_free(a);
    cw_join_free(b);
    cw_sem_free(s);
    tenv_free(&e);
}
END_TEST

START_TEST(sem_aborted_waiter_at_the_head_lets_the_next_one_in)
{
    tenv e;
    env_up(&e);
    cw_sem *s;
    ck_assert_int_eq(cw_sem_new(1, &s), 0);
    cw_join *a = spawn_w(&e, K_SEM, s, 1, 0, 2);
    cw_join *b = spawn_w(&e, K_SEM, s, 2, 0, 1);
    turns(&e, 3);
    ck_assert(pending(a) && pending(b));
    cw_join_abort(a);
    turns(&e, 3);
    ck_assert_int_eq(done(b)->result, 0);
    ck_assert_uint_eq(cw_sem_available(s), 0);
    cw_join_free(a);
    cw_join_free(b);
    cw_sem_free(s);
    tenv_free(&e);
}
END_TEST

START_TEST(sem_permits_granted_to_an_aborted_waiter_go_back)
{
    tenv e;
    env_up(&e);
    cw_sem *s;
    ck_assert_int_eq(cw_sem_new(0, &s), 0);
    cw_join *a = spawn_w(&e, K_SEM, s, 1, 0, 2);
    cw_join *b = spawn_w(&e, K_SEM, s, 2, 0, 3);
    turns(&e, 3);
    ck_assert_int_eq(cw_sem_release(s, 3), 0); /* a gets 2; b waits for 3 */
    ck_assert_uint_eq(cw_sem_available(s), 1);
    cw_join_abort(a); /* before a ran: its 2 go back, and b now fits */
    ck_assert_uint_eq(cw_sem_available(s), 0);
    turns(&e, 3);
    ck_assert_int_eq(done(b)->result, 0);
    cw_join_free(a);
    cw_join_free(b);
    cw_sem_free(s);
    tenv_free(&e);
}
END_TEST

/* Was issue 17: cw_sem_release() checked only the free permits, so with
 * permits granted to a waiter that had not run yet it could fill the
 * count to 2^64 - 1, and that waiter's abort then dropped its permits on
 * the floor (the count saturated silently). Now the release that would
 * overflow free + granted fails with -EOVERFLOW and changes nothing. */
START_TEST(sem_release_past_the_limit_fails_with_eoverflow_and_changes_nothing)
{
    tenv e;
    env_up(&e);
    cw_sem *s;
    ck_assert_int_eq(cw_sem_new(0, &s), 0);
    cw_join *a = spawn_w(&e, K_SEM, s, 1, 0, 5);
    turns(&e, 3);
    ck_assert_int_eq(cw_sem_release(s, 5), 0); /* granted to a, not yet run */
    ck_assert_uint_eq(cw_sem_available(s), 0);
    ck_assert_int_eq(cw_sem_release(s, UINT64_MAX), -EOVERFLOW);
    ck_assert_uint_eq(cw_sem_available(s), 0); /* nothing changed */
    ck_assert_int_eq(cw_sem_release(s, UINT64_MAX - 4), -EOVERFLOW);
    ck_assert_int_eq(cw_sem_release(s, UINT64_MAX - 5), 0); /* exactly full */
    ck_assert_uint_eq(cw_sem_available(s), UINT64_MAX - 5);
    cw_join_abort(a); /* its 5 go back: all of them fit */
    ck_assert_uint_eq(cw_sem_available(s), UINT64_MAX);
    ck_assert_int_eq(cw_sem_release(s, 1), -EOVERFLOW);
    ck_assert_int_eq(cw_sem_release(s, 0), 0);
    /* once a waiter has run, its permits are the task's: not counted */
    ck_assert_int_eq(cw_sem_try_acquire(s, UINT64_MAX), 0);
    cw_join *b = spawn_w(&e, K_SEM, s, 2, 0, 7);
    turns(&e, 3);
    ck_assert_int_eq(cw_sem_release(s, 7), 0);
    turns(&e, 3);
    ck_assert_int_eq(done(b)->result, 0);
    ck_assert_int_eq(cw_sem_release(s, UINT64_MAX), 0);
    ck_assert_int_eq(cw_sem_release(NULL, 1), -EINVAL);
    cw_join_free(a);
    cw_join_free(b);
    cw_sem_free(s);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* cw_remote_chan */

START_TEST(remote_chan_capacity_fifo_close_and_bad_arguments)
{
    cw_remote_chan *ch;
    int x;
    ck_assert_int_eq(cw_remote_chan_new(0, 4, &ch), -EINVAL);
    ck_assert_int_eq(cw_remote_chan_new(4, 4, NULL), -EINVAL);
    ck_assert_int_eq(cw_remote_chan_send(NULL, &x), -EINVAL);
    ck_assert_int_eq(cw_remote_chan_try_recv(NULL, &x), -EINVAL);
    ck_assert_int_eq(cw_remote_chan_new(3, sizeof(int), &ch), 0);
    for (int lap = 0; lap < 3; lap++) {
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(cw_remote_chan_send(ch, &(int){lap * 10 + i}), 0);
        ck_assert_int_eq(cw_remote_chan_send(ch, &(int){99}), -EAGAIN);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), 0);
            ck_assert_int_eq(x, lap * 10 + i);
        }
        ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), -EAGAIN);
    }
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){1}), 0);
    cw_remote_chan_close(ch);
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){2}), -EPIPE);
    ck_assert_int_eq(cw_remote_chan_send_wait(ch, &(int){2}), -EPIPE);
    ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), 0); /* sent before the close */
    ck_assert_int_eq(x, 1);
    ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), -EPIPE);
    cw_remote_chan_close(ch);
    cw_remote_chan_free(ch);
    cw_remote_chan_free(NULL);
}
END_TEST

#define RC_THREADS 3
#define RC_ITEMS 5000

struct rc_item {
    int producer;
    int seq;
};

struct rc_prod {
    cw_remote_chan *ch;
    int id;
    atomic_int *finished;
    int eagains; /* non-blocking producer: full-channel retries */
};

static void *rc_producer(void *arg)
{
    struct rc_prod *p = arg;
    for (int i = 1; i <= RC_ITEMS; i++) {
        struct rc_item it = {p->id, i};
        int err;
        if (p->id == RC_THREADS - 1) { /* the last one never blocks */
            while ((err = cw_remote_chan_send(p->ch, &it)) == -EAGAIN) {
                p->eagains++;
                sched_yield();
            }
        } else {
            err = cw_remote_chan_send_wait(p->ch, &it);
        }
        ck_assert_int_eq(err, 0);
    }
    if (atomic_fetch_add(p->finished, 1) + 1 == RC_THREADS)
        cw_remote_chan_close(p->ch); /* the last producer closes */
    return NULL;
}

struct rc_consumer {
    cw_pt pt;
    cw_remote_chan *ch;
    cw_remote_chan_recv rx;
    struct rc_item it;
    int last[RC_THREADS]; /* output */
    long count;           /* output */
    long long sum;        /* output */
    int result;           /* output */
};

static cw_poll rc_consumer_poll(void *state, cw_cx *cx)
{
    struct rc_consumer *c = state;
    CW_BEGIN(&c->pt);
    for (;;) {
        cw_remote_chan_recv_init(&c->rx, c->ch, &c->it);
        CW_AWAIT(&c->pt, cw_remote_chan_recv_poll(&c->rx, cx));
        c->result = cw_remote_chan_recv_result(&c->rx);
        if (c->result < 0)
            break;
        ck_assert_int_lt(c->it.producer, RC_THREADS);
        /* FIFO per sender: no loss, no duplicate, no reordering */
        ck_assert_int_eq(c->it.seq, c->last[c->it.producer] + 1);
        c->last[c->it.producer] = c->it.seq;
        c->count++;
        c->sum += c->it.seq;
    }
    CW_END(&c->pt);
}

static void rc_consumer_drop(void *state)
{
    cw_remote_chan_recv_drop(&((struct rc_consumer *)state)->rx);
}

START_TEST(remote_chan_three_threads_deliver_exact_totals_in_order)
{
    tenv e;
    env_up(&e);
    cw_remote_chan *ch;
    ck_assert_int_eq(cw_remote_chan_new(8, sizeof(struct rc_item), &ch), 0);
    struct rc_consumer c = {.ch = ch};
    cw_join *j;
    ck_assert_int_eq(cw_spawn(queue(&e), rc_consumer_poll, &c, sizeof c, rc_consumer_drop, &j),
                     0);
    atomic_int finished = 0;
    pthread_t th[RC_THREADS];
    struct rc_prod p[RC_THREADS];
    for (int i = 0; i < RC_THREADS; i++) {
        p[i] = (struct rc_prod){.ch = ch, .id = i, .finished = &finished};
        ck_assert_int_eq(pthread_create(&th[i], NULL, rc_producer, &p[i]), 0);
    }
    ck_assert_int_eq(cw_executor_run_until(e.ex, j), 0);
    for (int i = 0; i < RC_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    const struct rc_consumer *r = cw_join_state(j);
    ck_assert_int_eq(r->result, -EPIPE);
    ck_assert_int_eq(r->count, (long)RC_THREADS * RC_ITEMS);
    ck_assert_int_eq(r->sum, (long long)RC_THREADS * RC_ITEMS * (RC_ITEMS + 1) / 2);
    for (int i = 0; i < RC_THREADS; i++)
        ck_assert_int_eq(r->last[i], RC_ITEMS);
    cw_join_free(j);
    cw_remote_chan_free(ch);
    tenv_free(&e);
}
END_TEST

struct blocked_sender {
    cw_remote_chan *ch;
    int err;
};

static void *blocked_sender_thread(void *arg)
{
    struct blocked_sender *b = arg;
    b->err = cw_remote_chan_send_wait(b->ch, &(int){2});
    return NULL;
}

START_TEST(remote_chan_close_releases_a_blocked_sender_with_epipe)
{
    cw_remote_chan *ch;
    ck_assert_int_eq(cw_remote_chan_new(1, sizeof(int), &ch), 0);
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){1}), 0);
    struct blocked_sender b = {.ch = ch, .err = 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_sender_thread, &b), 0);
    usleep(20000); /* most likely blocked by now; correct either way */
    cw_remote_chan_close(ch);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(b.err, -EPIPE);
    int x;
    ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), 0);
    ck_assert_int_eq(x, 1);
    ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), -EPIPE);
    cw_remote_chan_free(ch);
}
END_TEST

START_TEST(remote_chan_blocked_sender_gets_in_when_the_task_receives)
{
    tenv e;
    env_up(&e);
    cw_remote_chan *ch;
    ck_assert_int_eq(cw_remote_chan_new(1, sizeof(int), &ch), 0);
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){1}), 0);
    struct blocked_sender b = {.ch = ch, .err = 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_sender_thread, &b), 0);
    usleep(20000);
    cw_join *r1 = spawn_w(&e, K_RCHAN_RECV, ch, 1, 0, 0);
    ck_assert_int_eq(cw_executor_run_until(e.ex, r1), 0);
    ck_assert_int_eq(done(r1)->value, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(b.err, 0);
    cw_join *r2 = spawn_w(&e, K_RCHAN_RECV, ch, 2, 0, 0);
    ck_assert_int_eq(cw_executor_run_until(e.ex, r2), 0);
    ck_assert_int_eq(done(r2)->value, 2);
    cw_join_free(r1);
    cw_join_free(r2);
    cw_remote_chan_free(ch);
    tenv_free(&e);
}
END_TEST

START_TEST(remote_chan_aborted_receiver_leaves_values_for_the_next)
{
    tenv e;
    env_up(&e);
    cw_remote_chan *ch;
    ck_assert_int_eq(cw_remote_chan_new(4, sizeof(int), &ch), 0);
    cw_join *r1 = spawn_w(&e, K_RCHAN_RECV, ch, 1, 0, 0);
    turns(&e, 3);
    ck_assert(pending(r1));
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){5}), 0); /* wakes r1 */
    cw_join_abort(r1);                                     /* before it ran */
    cw_join *r2 = spawn_w(&e, K_RCHAN_RECV, ch, 2, 0, 0);
    turns(&e, 3);
    ck_assert_int_eq(done(r2)->value, 5);
    /* and a waiting receiver that is aborted leaves no registration that
     * a later send could trip on */
    cw_join *r3 = spawn_w(&e, K_RCHAN_RECV, ch, 3, 0, 0);
    turns(&e, 3);
    cw_join_abort(r3);
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){6}), 0);
    int x;
    ck_assert_int_eq(cw_remote_chan_try_recv(ch, &x), 0);
    ck_assert_int_eq(x, 6);
    cw_join_free(r1);
    cw_join_free(r2);
    cw_join_free(r3);
    cw_remote_chan_free(ch);
    tenv_free(&e);
}
END_TEST

/* A waiting receiver's future polled without a task (a cx whose poll has
 * returned) completes with -EINVAL and, like a drop, passes the value
 * reserved for it on: the channel is not wedged. */
static cw_cx *g_cx;
static cw_chan_recv *g_rx;

static cw_poll capture_poll(void *state, cw_cx *cx)
{
    struct waiter *w = state;
    g_cx = cx;
    g_rx = &w->f.crx;
    return waiter_poll(state, cx);
}

START_TEST(chan_receiver_polled_without_a_task_passes_its_value_on)
{
    tenv e;
    env_up(&e);
    cw_chan *ch;
    ck_assert_int_eq(cw_chan_new(1, sizeof(int), &ch), 0);
    struct waiter w0 = {.kind = K_CHAN_RECV, .obj = ch, .tag = 1};
    cw_join *r1;
    ck_assert_int_eq(cw_spawn(queue(&e), capture_poll, &w0, sizeof w0, waiter_drop, &r1), 0);
    turns(&e, 3);
    ck_assert(pending(r1));
    int v = 42;
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0); /* reserved for r1 */
    ck_assert_int_eq(cw_chan_recv_poll(g_rx, g_cx), CW_READY); /* no task now */
    ck_assert_int_eq(cw_chan_recv_result(g_rx), -EINVAL);
    int x = 0;
    ck_assert_int_eq(cw_chan_try_recv(ch, &x), 0); /* not lost, not wedged */
    ck_assert_int_eq(x, 42);
    ck_assert_int_eq(cw_chan_try_send(ch, &v), 0);
    cw_join_free(r1);
    cw_chan_free(ch);
    tenv_free(&e);
}
END_TEST

/* A zero-permit acquire is ready at once, even behind a waiting one. */
START_TEST(sem_acquire_of_zero_is_ready_at_once_while_others_wait)
{
    tenv e;
    env_up(&e);
    cw_sem *sem;
    ck_assert_int_eq(cw_sem_new(0, &sem), 0);
    cw_join *big = spawn_w(&e, K_SEM, sem, 1, 0, 5);
    turns(&e, 3);
    ck_assert(pending(big));
    cw_join *zero = spawn_w(&e, K_SEM, sem, 2, 0, 0);
    turns(&e, 3);
    ck_assert_int_eq(done(zero)->result, 0);
    ck_assert(pending(big));
    cw_join_abort(big);
    cw_join_free(big);
    cw_join_free(zero);
    cw_sem_free(sem);
    tenv_free(&e);
}
END_TEST

/* A receiver whose registration was replaced by a second one does not
 * take the second one's registration away when it is dropped. */
START_TEST(remote_chan_dropping_a_replaced_receiver_keeps_the_new_registration)
{
    tenv e;
    env_up(&e);
    cw_remote_chan *ch;
    ck_assert_int_eq(cw_remote_chan_new(4, sizeof(int), &ch), 0);
    cw_join *a = spawn_w(&e, K_RCHAN_RECV, ch, 1, 0, 0);
    turns(&e, 3);
    cw_join *b = spawn_w(&e, K_RCHAN_RECV, ch, 2, 0, 0); /* replaces a's */
    turns(&e, 3);
    ck_assert(pending(a) && pending(b));
    cw_join_abort(a); /* its drop must leave b registered */
    ck_assert_int_eq(cw_remote_chan_send(ch, &(int){9}), 0);
    turns(&e, 5);
    ck_assert_int_eq(done(b)->value, 9);
    cw_join_free(a);
    cw_join_free(b);
    cw_remote_chan_free(ch);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* cw_spawn_remote */

static int g_hook_spawns, g_hook_completes;

static void count_spawn(void *arg, cw_queue *q, void *state)
{
    (void)arg, (void)q, (void)state;
    g_hook_spawns++;
}

static void count_complete(void *arg, cw_queue *q, void *state, int status)
{
    (void)arg, (void)q, (void)state, (void)status;
    g_hook_completes++;
}

static cw_poll ready_poll(void *state, cw_cx *cx)
{
    (void)state, (void)cx;
    return CW_READY;
}

/* A spawner is the library's business: no statistic counts it as a task
 * and the spawn/complete hooks do not see it, yet it keeps the remote-wake
 * fd watched (a remote spawn into an executor whose only "task" is the
 * spawner is seen). */
START_TEST(spawner_is_not_in_the_stats_or_hooks_yet_keeps_the_fd_watched)
{
    tenv e;
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    cw_hooks h = {.spawn = count_spawn, .complete = count_complete};
    ck_assert_int_eq(cw_config_set_hooks(cfg, &h, NULL), 0);
    tenv_init(&e, cfg, 1);
    g_hook_spawns = g_hook_completes = 0;
    cw_spawner *sp;
    ck_assert_int_eq(cw_spawner_new(queue(&e), &sp), 0);
    turns(&e, 3);
    struct cw_executor_stats st = stats_of(e.ex);
    struct cw_queue_stats qs;
    ck_assert_int_eq(cw_queue_stats(queue(&e), &qs), 0);
    ck_assert_uint_eq(st.tasks_spawned, 0);
    ck_assert_uint_eq(st.tasks_live, 0);
    ck_assert_uint_eq(qs.tasks_spawned, 0);
    ck_assert_int_eq(g_hook_spawns, 0);

    /* tasks_live is 0 before each remote spawn and after it ends, yet the
     * fd must stay watched: a loop turn sees the next remote spawn */
    for (uint64_t n = 1; n <= 2; n++) {
        cw_remote_join *rj;
        ck_assert_int_eq(cw_spawn_remote(sp, ready_poll, NULL, 0, NULL, &rj), 0);
        for (int i = 0; i < 100 && cw_remote_join_status(rj) == -EAGAIN; i++)
            ck_assert_int_ge(tenv_run_once(&e), 0);
        ck_assert_int_eq(cw_remote_join_status(rj), 0);
        cw_remote_join_free(rj);
        st = stats_of(e.ex);
        ck_assert_uint_eq(st.tasks_spawned, n);
        ck_assert_uint_eq(st.tasks_completed, n);
        ck_assert_uint_eq(st.tasks_live, 0);
    }

    cw_spawner_free(sp);
    turns(&e, 3);
    st = stats_of(e.ex);
    ck_assert_int_eq(cw_queue_stats(queue(&e), &qs), 0);
    ck_assert_uint_eq(st.tasks_spawned, 2);
    ck_assert_uint_eq(st.tasks_completed + st.tasks_cancelled, 2);
    ck_assert_uint_eq(qs.tasks_completed + qs.tasks_cancelled, 2);
    ck_assert_int_eq(g_hook_spawns, 2);
    ck_assert_int_eq(g_hook_completes, 2);
    tenv_free(&e);
}
END_TEST

#define SR_THREADS 4
#define SR_TASKS 50

static pthread_t exec_thread;

struct sum_task {
    int a, b;
    int sum;          /* output */
    bool on_executor; /* output */
    atomic_int *ran;
};

static cw_poll sum_poll(void *state, cw_cx *cx)
{
    struct sum_task *s = state;
    (void)cx;
    s->sum = s->a + s->b;
    s->on_executor = pthread_equal(pthread_self(), exec_thread);
    atomic_fetch_add(s->ran, 1);
    return CW_READY;
}

struct sr_thread {
    cw_spawner *sp;
    int id;
    atomic_int *ran;
    int ok; /* handles that checked out */
};

static void *sr_spawner_thread(void *arg)
{
    struct sr_thread *t = arg;
    cw_remote_join *j[SR_TASKS];
    for (int i = 0; i < SR_TASKS; i++) {
        struct sum_task s = {.a = t->id * 1000, .b = i, .ran = t->ran};
        ck_assert_int_eq(cw_spawn_remote(t->sp, sum_poll, &s, sizeof s, NULL, &j[i]), 0);
    }
    for (int i = 0; i < SR_TASKS; i++) {
        int st = i % 2 ? cw_remote_join_wait(j[i]) : -EAGAIN;
        while (st == -EAGAIN) { /* the other half: poll the status */
            sched_yield();
            st = cw_remote_join_status(j[i]);
        }
        ck_assert_int_eq(st, 0);
        const struct sum_task *r = cw_remote_join_state(j[i]);
        ck_assert_ptr_nonnull(r);
        if (r->sum == t->id * 1000 + i && r->on_executor)
            t->ok++;
        cw_remote_join_free(j[i]);
    }
    return NULL;
}

START_TEST(spawn_remote_from_four_threads_runs_every_task_on_the_executor)
{
    tenv e;
    env_up(&e);
    exec_thread = pthread_self();
    uint64_t spawned0 = stats_of(e.ex).tasks_spawned;
    cw_spawner *sp;
    ck_assert_int_eq(cw_spawner_new(queue(&e), &sp), 0);
    atomic_int ran = 0;
    pthread_t th[SR_THREADS];
    struct sr_thread t[SR_THREADS];
    for (int i = 0; i < SR_THREADS; i++) {
        t[i] = (struct sr_thread){.sp = sp, .id = i, .ran = &ran};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sr_spawner_thread, &t[i]), 0);
    }
    /* The spawner keeps the remote-wake fd in the base, so each loop turn
     * blocks until some work arrives. */
    while (atomic_load(&ran) < SR_THREADS * SR_TASKS)
        ck_assert_int_ge(tenv_run_once(&e), 0);
    for (int i = 0; i < SR_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(t[i].ok, SR_TASKS);
    }
    ck_assert_int_eq(atomic_load(&ran), SR_THREADS * SR_TASKS);
    struct cw_executor_stats st = stats_of(e.ex);
    /* every remote task, and nothing of the spawner's */
    ck_assert_uint_eq(st.tasks_spawned - spawned0, SR_THREADS * SR_TASKS);
    ck_assert_uint_eq(st.tasks_live, 0);
    cw_spawner_free(sp);
    turns(&e, 3);
    ck_assert_uint_eq(stats_of(e.ex).tasks_live, 0);
    tenv_free(&e);
}
END_TEST

static int drops;

static void count_drop(void *state)
{
    (void)state;
    drops++;
}

static cw_poll never_poll(void *state, cw_cx *cx)
{
    (void)state;
    (void)cx;
    return CW_PENDING;
}

START_TEST(spawn_remote_survives_executor_free_cancelling_and_refusing)
{
    tenv e;
    env_up(&e);
    drops = 0;
    exec_thread = pthread_self();
    cw_spawner *sp;
    ck_assert_int_eq(cw_spawner_new(queue(&e), &sp), 0);
    atomic_int ran = 0;
    struct sum_task s = {.a = 1, .b = 2, .ran = &ran};
    cw_remote_join *jdone, *jlive, *jqueued;
    ck_assert_int_eq(cw_spawn_remote(sp, sum_poll, &s, sizeof s, NULL, &jdone), 0);
    ck_assert_int_eq(cw_spawn_remote(sp, never_poll, NULL, 0, count_drop, &jlive), 0);
    /* not started before the executor's next scheduling decision */
    ck_assert_int_eq(cw_remote_join_status(jdone), -EAGAIN);
    ck_assert_ptr_null(cw_remote_join_state(jdone));
    ck_assert_int_eq(cw_remote_join_wait(jdone), -EBUSY); /* would deadlock */
    turns(&e, 3);
    ck_assert_int_eq(cw_remote_join_status(jdone), 0);
    ck_assert_int_eq(((const struct sum_task *)cw_remote_join_state(jdone))->sum, 3);
    ck_assert_int_eq(cw_remote_join_wait(jdone), 0); /* ended: no wait */
    ck_assert_int_eq(cw_remote_join_status(jlive), -EAGAIN);
    /* one more that is still in the inbox when the executor goes */
    ck_assert_int_eq(cw_spawn_remote(sp, never_poll, NULL, 0, count_drop, &jqueued), 0);
    ck_assert_int_eq(cw_spawn_remote(sp, never_poll, NULL, 0, count_drop, NULL), 0);
    ck_assert_int_eq(drops, 0);
    tenv_free(&e);
    ck_assert_int_eq(drops, 3); /* each drop ran, on this thread, in the free */
    ck_assert_int_eq(cw_remote_join_status(jlive), -ECANCELED);
    ck_assert_int_eq(cw_remote_join_status(jqueued), -ECANCELED);
    ck_assert_ptr_null(cw_remote_join_state(jlive));
    cw_remote_join *j = NULL;
    ck_assert_int_eq(cw_spawn_remote(sp, sum_poll, &s, sizeof s, NULL, &j), -ESHUTDOWN);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(drops, 3);
    cw_spawner_free(sp);
    cw_remote_join_free(jdone);
    cw_remote_join_free(jlive);
    cw_remote_join_free(jqueued);
}
END_TEST

static cw_poll panicky_poll(void *state, cw_cx *cx)
{
    cw_panic(cx, "remote %d", *(int *)state);
}

START_TEST(spawn_remote_bad_arguments_and_panic_status)
{
    cw_config *cfg = cw_config_new();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cw_config_add_queue(cfg, Q, 1), 0);
    cw_config_set_catch_panics(cfg, true);
    tenv e;
    tenv_init(&e, cfg, 1);
    cw_spawner *sp = NULL;
    ck_assert_int_eq(cw_spawner_new(NULL, &sp), -ENOENT);
    ck_assert_int_eq(cw_spawner_new(queue(&e), NULL), -EINVAL);
    ck_assert_int_eq(cw_spawner_new(queue(&e), &sp), 0);
    int x = 5;
    cw_remote_join *j;
    ck_assert_int_eq(cw_spawn_remote(NULL, panicky_poll, &x, sizeof x, NULL, &j), -EINVAL);
    ck_assert_int_eq(cw_spawn_remote(sp, NULL, &x, sizeof x, NULL, &j), -EINVAL);
    ck_assert_int_eq(cw_spawn_remote(sp, panicky_poll, NULL, 4, NULL, &j), -EINVAL);
    ck_assert_int_eq(cw_remote_join_wait(NULL), -EINVAL);
    ck_assert_int_eq(cw_remote_join_status(NULL), -EINVAL);
    ck_assert_int_eq(cw_spawn_remote(sp, panicky_poll, &x, sizeof x, NULL, &j), 0);
    turns(&e, 3);
    ck_assert_int_eq(cw_remote_join_status(j), CW_EPANIC);
    ck_assert_str_eq(cw_remote_join_panic_message(j), "remote 5");
    ck_assert_ptr_null(cw_remote_join_state(j));
    cw_remote_join_free(j);
    cw_spawner_free(sp);
    cw_spawner_free(NULL);
    cw_remote_join_free(NULL);
    tenv_free(&e);
}
END_TEST

/* ======================================================================== */
/* out of memory: fail the Nth allocation, N = 0, 1, ... until the call
 * succeeds; every failure is -ENOMEM and leaves no block behind. */

static atomic_long oom_countdown = -1; /* allocations left before failing */
static atomic_long oom_live;

static void *oom_malloc(size_t n)
{
    long c = atomic_load(&oom_countdown);
    if (c == 0)
        return NULL;
    if (c > 0)
        atomic_fetch_sub(&oom_countdown, 1);
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&oom_live, 1);
    return p;
}

static void *oom_realloc(void *p, size_t n)
{
    if (!p)
        return oom_malloc(n);
    return realloc(p, n);
}

static void oom_free(void *p)
{
    if (p)
        atomic_fetch_sub(&oom_live, 1);
    free(p);
}

static int make_each(int which)
{
    cw_chan *ch;
    cw_remote_chan *rc;
    cw_oneshot *os;
    cw_notify *n;
    cw_sem *s;
    int err;
    switch (which) {
    case 0:
        if ((err = cw_chan_new(4, 8, &ch)) == 0)
            cw_chan_free(ch);
        return err;
    case 1:
        if ((err = cw_remote_chan_new(4, 8, &rc)) == 0)
            cw_remote_chan_free(rc);
        return err;
    case 2:
        if ((err = cw_oneshot_new(8, &os)) == 0) {
            cw_oneshot_sender_free(os);
            cw_oneshot_receiver_free(os);
        }
        return err;
    case 3:
        if ((err = cw_notify_new(&n)) == 0)
            cw_notify_free(n);
        return err;
    default:
        if ((err = cw_sem_new(1, &s)) == 0)
            cw_sem_free(s);
        return err;
    }
}

START_TEST(constructors_out_of_memory_give_enomem_and_leak_nothing)
{
    ck_assert_int_eq(cw_set_allocator(oom_malloc, oom_realloc, oom_free), 0);
    for (int which = 0; which < 5; which++) {
        int err;
        long n = 0;
        do {
            atomic_store(&oom_countdown, n++);
            err = make_each(which);
            atomic_store(&oom_countdown, -1);
            ck_assert_msg(err == 0 || err == -ENOMEM, "constructor %d: %d", which, err);
            ck_assert_int_eq(atomic_load(&oom_live), 0);
        } while (err == -ENOMEM);
        ck_assert_int_gt(n, 1); /* it did allocate, and failed cleanly first */
    }
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(spawn_remote_out_of_memory_spawns_nothing)
{
    ck_assert_int_eq(cw_set_allocator(oom_malloc, oom_realloc, oom_free), 0);
    tenv e;
    env_up(&e);
    cw_spawner *sp;
    ck_assert_int_eq(cw_spawner_new(queue(&e), &sp), 0);
    uint64_t spawned0 = stats_of(e.ex).tasks_spawned;
    atomic_int ran = 0;
    struct sum_task s = {.a = 2, .b = 3, .ran = &ran};
    exec_thread = pthread_self();
    cw_remote_join *j = NULL;
    int err;
    long n = 0;
    do {
        atomic_store(&oom_countdown, n++);
        err = cw_spawn_remote(sp, sum_poll, &s, sizeof s, NULL, &j);
        atomic_store(&oom_countdown, -1);
        if (err == -ENOMEM)
            ck_assert_ptr_null(j);
    } while (err == -ENOMEM);
    ck_assert_int_eq(err, 0);
    ck_assert_int_gt(n, 2); /* join handle and task block each failed once */
    turns(&e, 3);
    ck_assert_int_eq(cw_remote_join_status(j), 0);
    ck_assert_int_eq(atomic_load(&ran), 1);
    ck_assert_uint_eq(stats_of(e.ex).tasks_spawned - spawned0, 1);
    cw_remote_join_free(j);
    cw_spawner_free(sp);
    tenv_free(&e);
    ck_assert_int_eq(atomic_load(&oom_live), 0);
    ck_assert_int_eq(cw_set_allocator(NULL, NULL, NULL), 0);
}
END_TEST

/* ======================================================================== */
/* examples/pipeline */

static uint64_t field(const char *out, const char *prefix, const char *what)
{
    const char *p = strstr(out, prefix);
    ck_assert_msg(p != NULL, "no \"%s\" line in:\n%s", prefix, out);
    p = strstr(p, what);
    ck_assert_ptr_nonnull(p);
    return strtoull(p + strlen(what), NULL, 10);
}

START_TEST(pipeline_example_aggregates_exactly_what_was_produced)
{
    const char *top = getenv("top_builddir");
    char path[4096];
    static char out[8192];
    int fds[2];
    if (!top || !*top)
        top = ".";
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/examples/pipeline", top), (int)sizeof path);
    ck_assert_msg(access(path, X_OK) == 0, "%s: not built", path);
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(126);
        close(fds[0]);
        close(fds[1]);
        execl(path, path, "--items", "30000", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    int status;
    pid_t w;
    size_t len = collect_child(pid, fds[0], out, sizeof out, &status, &w);
    ck_assert_uint_lt(len, sizeof out - 1);
    ck_assert_int_eq(w, pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pipeline failed:\n%s", out);
    uint64_t produced = field(out, "produced:", "produced:");
    uint64_t psum = field(out, "produced:", "sum ");
    uint64_t got = field(out, "aggregated:", "aggregated:");
    uint64_t gsum = field(out, "aggregated:", "sum ");
    ck_assert_uint_eq(produced, 30000);
    ck_assert_uint_eq(got, produced);
    ck_assert_uint_eq(gsum, psum);
    ck_assert_uint_gt(psum, 0);
    /* the handlers' counts add up to the items */
    const char *h = strstr(out, "handled:");
    ck_assert_ptr_nonnull(h);
    h += strlen("handled:");
    uint64_t total = 0;
    for (int i = 0; i < 3; i++) {
        char *end;
        total += strtoull(h, &end, 10);
        ck_assert_ptr_ne(end, h);
        h = end;
    }
    ck_assert_uint_eq(total, produced);
    ck_assert_ptr_nonnull(strstr(out, "totals match\n"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("tasks");
    tcase_add_test(tc, chan_try_send_fills_exactly_capacity_and_try_recv_is_fifo);
    tcase_add_test(tc, chan_bad_arguments_give_einval);
    tcase_add_test(tc, chan_waiting_receiver_gets_value_sent_later);
    tcase_add_test(tc, chan_waiting_senders_enter_in_the_order_they_began_to_wait);
    tcase_add_test(tc, chan_receivers_are_served_in_fifo_order);
    tcase_add_test(tc, chan_close_wakes_every_waiter_with_epipe_and_keeps_values_for_receivers);
    tcase_add_test(tc, chan_value_reserved_for_aborted_receiver_goes_to_the_next);
    tcase_add_test(tc, chan_aborted_sender_leaves_the_wait_list_and_sends_nothing);
    tcase_add_test(tc, chan_free_with_waiters_completes_them_with_epipe);
    tcase_add_test(tc, chan_task_to_task_stream_arrives_whole_and_in_order);
    tcase_add_test(tc, oneshot_waiting_receiver_gets_the_value);
    tcase_add_test(tc, oneshot_sender_freed_unsent_wakes_receiver_with_epipe);
    tcase_add_test(tc, oneshot_try_recv_and_send_to_a_freed_receiver);
    tcase_add_test(tc, oneshot_receiver_aborted_while_waiting_leaves_the_value);
    tcase_add_test(tc, notify_one_before_any_wait_is_kept_once);
    tcase_add_test(tc, notify_one_wakes_only_the_first_waiter);
    tcase_add_test(tc, notify_all_wakes_every_waiter_and_stores_nothing);
    tcase_add_test(tc, notify_one_to_an_aborted_waiter_is_passed_on);
    tcase_add_test(tc, sem_acquirers_are_served_fifo_without_overtaking);
    tcase_add_test(tc, sem_aborted_waiter_at_the_head_lets_the_next_one_in);
    tcase_add_test(tc, sem_permits_granted_to_an_aborted_waiter_go_back);
    tcase_add_test(tc, sem_release_past_the_limit_fails_with_eoverflow_and_changes_nothing);
    tcase_add_test(tc, remote_chan_capacity_fifo_close_and_bad_arguments);
    tcase_add_test(tc, remote_chan_aborted_receiver_leaves_values_for_the_next);
    tcase_add_test(tc, chan_receiver_polled_without_a_task_passes_its_value_on);
    tcase_add_test(tc, sem_acquire_of_zero_is_ready_at_once_while_others_wait);
    tcase_add_test(tc, remote_chan_dropping_a_replaced_receiver_keeps_the_new_registration);
    tcase_add_test(tc, spawn_remote_survives_executor_free_cancelling_and_refusing);
    tcase_add_test(tc, spawn_remote_bad_arguments_and_panic_status);
    tcase_add_test(tc, constructors_out_of_memory_give_enomem_and_leak_nothing);
    tcase_add_test(tc, spawn_remote_out_of_memory_spawns_nothing);
    suite_add_tcase(s, tc);

    TCase *th = tcase_create("threads");
    tcase_set_timeout(th, 60); /* sanitizer and valgrind builds are slow */
    tcase_add_test(th, oneshot_value_sent_from_another_thread_wakes_the_task);
    tcase_add_test(th, remote_chan_three_threads_deliver_exact_totals_in_order);
    tcase_add_test(th, remote_chan_close_releases_a_blocked_sender_with_epipe);
    tcase_add_test(th, remote_chan_blocked_sender_gets_in_when_the_task_receives);
    tcase_add_test(th, spawn_remote_from_four_threads_runs_every_task_on_the_executor);
    tcase_add_test(th, spawner_is_not_in_the_stats_or_hooks_yet_keeps_the_fd_watched);
    tcase_add_test(th, pipeline_example_aggregates_exactly_what_was_produced);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
