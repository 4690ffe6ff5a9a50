/* tdrv_embed.c - the embed driver for the shared harness (tdrv.h): the
 * executor hosted by the hand-written poll() loop of embed_host.c. A turn
 * is one poll with a zero timeout over the watched fds, the reports, and
 * one tick (which fires a due timer and runs at most one round). */
#include <stdlib.h>

#include "embed_host.h"
#include "testutil.h"

static int embed_init(tenv *env, cw_config *cfg)
{
    ehost *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    ehost_init(h, EHOST_POLL);
    int err = ehost_executor(h, cfg);
    if (err < 0) {
        ehost_free(h);
        free(h);
        return err;
    }
    env->ex = h->ex;
    env->loop = h;
    env->base = NULL;
    return 0;
}

/* After cw_executor_free() (env->ex NULL) the host has nothing left to
 * report to: its list and timer say what the executor left behind. */
static void embed_turn(tenv *env)
{
    ehost *h = env->loop;
    h->ex = env->ex;
    ehost_turn(h, 0);
}

static int embed_run_once(tenv *env)
{
    ehost *h = env->loop;
    h->ex = env->ex;
    if (!h->nfds && (h->ex ? cw_embed_next_ns(h->ex) : h->timer) < 0)
        return 1;
    ehost_turn(h, h->ex ? cw_embed_next_ms(h->ex) : -1);
    return 0;
}

static int embed_dispatch(tenv *env)
{
    ehost *h = env->loop;
    h->ex = env->ex;
    ehost_run(h);
    return 1;
}

static void embed_free(tenv *env)
{
    ehost *h = env->loop;
    if (h) {
        ehost_free(h);
        free(h);
    }
    env->loop = NULL;
}

const tdriver tdrv_embed = {
    .name = "embed",
    .init = embed_init,
    .turn = embed_turn,
    .run_once = embed_run_once,
    .dispatch = embed_dispatch,
    .free = embed_free,
};
