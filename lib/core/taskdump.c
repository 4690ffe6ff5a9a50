/*
 * taskdump.c - cw_executor_dump_tasks(): one line per live task (the
 * format is documented at the declaration, clockworker/stats.h).
 *
 * The live tasks are found by walking the slabs, as
 * cw__tasks_cancel_all() does: every block handed out at least once,
 * skipping free ones, ended ones (a join handle may keep a block after
 * its task ended) and remote spawns not taken in yet.
 *
 * What a waiting task waits on is read from the structures that hold
 * its waker: the executor's sleep heap (cw_sleep), its fd waits
 * (cw_fdwait), and the join slots of other tasks (a task awaiting a
 * join handle). They are gathered first into one table of (task, kind)
 * sorted by task, then each waiting task is looked up: O((t + k) log k)
 * for t tasks and k registrations, and the table is the one allocation.
 * A clone held anywhere else (a sync.h wait, a bev wait, the program)
 * reads as "other"; no clone at all as "none", flagged
 * (cw__task_wake_arranged(), tasks.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#include "internal.h"

enum { K_SLEEP = 1, K_FD = 2, K_JOIN = 4 };

struct reg {
    const cw__task *t;
    unsigned kind;
};

static int cmp_reg(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct reg *)a)->t, y = (uintptr_t)((const struct reg *)b)->t;
    return x < y ? -1 : x > y;
}

/* Calls fn(t, arg) for every live task, in slab order. */
static void each_live(const cw_executor *ex, void (*fn)(const cw__task *, void *), void *arg)
{
    const cw__list *h = &ex->shared->slabs;
    for (const cw__list *l = h->next; l != h; l = l->next) {
        const cw__slab *s = cw__container_of(l, cw__slab, all);
        for (uint32_t i = 0; i < s->nused; i++) {
            const cw__task *t = (const cw__task *)(const void *)(s->blocks + (size_t)i * s->size);
            if (!(t->flags & (CW__T_FREE | CW__T_DONE | CW__T_SPAWNING)))
                fn(t, arg);
        }
    }
}

struct gather {
    struct reg *regs; /* NULL: count only */
    size_t n;
};

static void add(struct gather *g, const cw_waker *w, unsigned kind)
{
    if (!w)
        return;
    if (g->regs)
        g->regs[g->n] = (struct reg){cw__task_of_waker(w), kind};
    g->n++;
}

static void gather_join(const cw__task *t, void *arg)
{
    if ((t->flags & (CW__T_X_JOIN | CW__T_RJOIN)) == CW__T_X_JOIN)
        add(arg, cw__task_join(t)->waiter, K_JOIN);
}

static void gather(const cw_executor *ex, struct gather *g)
{
    for (uint32_t i = 0; i < ex->timers.n; i++)
        add(g, ex->timers.heap[i]->cw__waker, K_SLEEP);
    for (const cw_fdwait *w = ex->fdwaits; w; w = w->cw__next)
        add(g, w->cw__waker, K_FD);
    each_live(ex, gather_join, g);
}

struct dump {
    const cw_executor *ex;
    cw__out *o;
    const struct reg *regs;
    size_t nregs;
    uint64_t now;
    uint64_t n;
};

static unsigned kinds_of(const struct dump *d, const cw__task *t)
{
    struct reg key = {t, 0};
    const struct reg *r = d->nregs ? bsearch(&key, d->regs, d->nregs, sizeof key, cmp_reg) : NULL;
    if (!r)
        return 0;
    while (r > d->regs && r[-1].t == t)
        r--;
    unsigned k = 0;
    for (; r < d->regs + d->nregs && r->t == t; r++)
        k |= r->kind;
    return k;
}

/* The state field, into buf; *lost when nothing will wake it. */
static const char *state_of(const struct dump *d, const cw__task *t, char *buf, size_t n,
                            bool *lost)
{
    *lost = false;
    if (t->flags & CW__T_RUNNING)
        return "running";
    if (t->flags & CW__T_CANCEL)
        return "cancelling";
    if (t->flags & CW__T_SCHEDULED)
        return "runnable";
    if (atomic_load_explicit(&t->refs, memory_order_relaxed) & CW__REF_INBOX)
        return "woken";
    unsigned k = kinds_of(d, t);
    if (k) {
        snprintf(buf, n, "waiting:%s%s%s%s%s", (k & K_SLEEP) ? "sleep" : "",
                 (k & K_SLEEP) && (k & (K_FD | K_JOIN)) ? "+" : "", (k & K_FD) ? "fd" : "",
                 (k & K_FD) && (k & K_JOIN) ? "+" : "", (k & K_JOIN) ? "join" : "");
        return buf;
    }
    if (cw__task_wake_arranged(t))
        return "waiting:other";
    *lost = true;
    return "waiting:none";
}

/* A time field: "12.345" us, or "-". */
static const char *us(char *buf, size_t n, bool known, uint64_t ns)
{
    if (!known)
        return "-";
    snprintf(buf, n, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
    return buf;
}

static void dump_one(const cw__task *t, void *arg)
{
    struct dump *d = arg;
    char st[64], name[256], age[32], cpu[32], since[32], polls[24];
    bool lost;
    const char *state = state_of(d, t, st, sizeof st, &lost);
    bool acct = (t->flags & CW__T_X_ACCT) != 0;
    const cw__acct *a = acct ? cw__task_acct(t) : NULL;
    bool polled = acct && a->polls && !(t->flags & CW__T_RUNNING);
    if (acct)
        snprintf(polls, sizeof polls, "%" PRIu64, a->polls);
    cw__put(d->o, "  0x%-16" PRIxPTR " %5" PRIu32 " %-18s %12s %8s %12s %12s %s%s\n",
        (uintptr_t)t->state, cw__task_queue(d->ex, t)->id, state,
        us(age, sizeof age, acct, acct ? d->now - a->spawned : 0), acct ? polls : "-",
        us(cpu, sizeof cpu, acct, acct ? a->cpu_ns : 0),
        us(since, sizeof since, polled, polled ? d->now - a->last_poll : 0),
        cw__fn_name((const void *)(uintptr_t)t->poll, name, sizeof name), lost ? " NO-WAKE" : "");
    d->n++;
}

static void count_one(const cw__task *t, void *arg)
{
    (void)t;
    ++*(uint64_t *)arg;
}

int cw_executor_dump_tasks(const cw_executor *ex, FILE *f)
{
    if (!ex || !f)
        return -EINVAL;
    if (!cw__on_thread(ex->shared))
        return -EPERM;
    struct gather g = {NULL, 0};
    gather(ex, &g);
    if (g.n) {
        size_t cap = g.n;
        if (!(g.regs = cw__malloc(cap * sizeof *g.regs)))
            return -ENOMEM;
        g.n = 0;
        gather(ex, &g);
        qsort(g.regs, g.n, sizeof *g.regs, cmp_reg);
    }
    uint64_t live = 0;
    each_live(ex, count_one, &live);
    cw__out o = {f, false};
    struct dump d = {ex, &o, g.regs, g.n, cw__now(ex), 0};
    cw__put(&o, "clockworker tasks: %" PRIu64 " live, accounting %s\n", live,
        ex->acct_on ? "on" : "off");
    cw__put(&o, "  %-18s %5s %-18s %12s %8s %12s %12s %s\n", "task", "queue", "state", "age_us",
        "polls", "cpu_us", "since_us", "poll");
    each_live(ex, dump_one, &d);
    cw__free(g.regs);
    if (fflush(f) != 0)
        o.failed = true;
    return o.failed ? -EIO : 0;
}
