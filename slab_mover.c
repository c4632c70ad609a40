/*
 * slab_mover.c - slabs reassign: a thread that empties one slab page of
 * a class, rescuing or evicting the items still in it (items.c links and
 * unlinks them), then hands the page to another class (slabs.c).
 */
#include "memcached.h"
#include "slab_mover.h"
#include "hash.h"
#include "item_chunk.h"
#include "items.h"
#include "item_locks.h"
#include "log.h"
#include "slabs.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* The mover thread empties one page: every chunk still holding a live
 * linked item is copied into a free chunk of the same class elsewhere
 * and the copy takes its place (a rescue: same key, value, version and
 * deadline, so nothing is replicated), or, with no free chunk left, the
 * item is evicted, as memcached does; dead items are just unlinked.
 * Chunks in use by a request in flight are waited for.  Freed chunks of
 * the page stay off the free list (slabs_free), so nothing in the page
 * is reused while it is emptied.
 */
#define MOVE_WAIT_US 1000
#define MOVE_MAX_WAITS 30000    /* give up on a stuck page after ~30 s */

struct move_req {
    unsigned src;               /* class giving the page */
    unsigned dst;               /* class getting it */
    char *page;                 /* the page */
    size_t chunk;               /* chunk size in src */
    unsigned count;             /* chunks in the page */
};

static bool mover_running;      /* atomic */
static uint64_t slabs_moved;    /* atomic */
static uint64_t move_rescues;   /* atomic: items copied out of a page */
static uint64_t move_chunk_rescues; /* atomic: chunks of chunked items */
static uint64_t move_evictions; /* atomic: live items evicted, no room */

static void count_out(enum page_out out)
{
    if (out == PAGE_OUT_RESCUED) {
        __atomic_add_fetch(&move_rescues, 1, __ATOMIC_RELAXED);
    } else if (out == PAGE_OUT_CHUNK_RESCUED) {
        __atomic_add_fetch(&move_chunk_rescues, 1, __ATOMIC_RELAXED);
    } else if (out == PAGE_OUT_EVICTED) {
        __atomic_add_fetch(&move_evictions, 1, __ATOMIC_RELAXED);
    }
}

/* A chunk of a chunked item (nkey 0): found through its header, whose
 * stripe guards the chain.  The header may be gone or reused meanwhile:
 * item_move_chunk_locked checks it owns the chunk before moving it. */
static void empty_value_chunk(struct item_chunk *ch)
{
    struct item *head = __atomic_load_n(&ch->head, __ATOMIC_ACQUIRE);
    uint8_t nkey;
    uint32_t hv;

    /* Only what looks like a linked chunked header is hashed, so that a
     * stale pointer never makes us read a key past a small chunk. */
    if (head == NULL ||
        !(__atomic_load_n(&head->it_flags, __ATOMIC_ACQUIRE) & ITEM_LINKED) ||
        head->slabs_clsid != item_chunk_clsid) {
        return;
    }
    nkey = __atomic_load_n(&head->nkey, __ATOMIC_ACQUIRE);
    if (nkey == 0 || nkey > KEY_MAX_LENGTH) {
        return;
    }
    hv = hash(ITEM_key(head), nkey);
    item_lock(hv);
    count_out(item_move_chunk_locked(ch, head, hv));
    item_unlock(hv);
}

/* Try to empty chunk `it` of the moving page; true if it is free now. */
static bool empty_chunk(struct item *it)
{
    uint8_t fl = __atomic_load_n(&it->it_flags, __ATOMIC_ACQUIRE);
    uint32_t hv;

    if (fl & ITEM_SLABBED) {
        return true;
    }
    if (fl == 0 && __atomic_load_n(&it->nkey, __ATOMIC_ACQUIRE) == 0) {
        empty_value_chunk((struct item_chunk *)it);
    } else if (!(fl & ITEM_LINKED)) {
        return false;           /* being filled or sent: wait */
    } else {
        hv = hash(ITEM_key(it), it->nkey);
        item_lock(hv);
        count_out(item_move_out_locked(it, hv));
        item_unlock(hv);
    }
    return (__atomic_load_n(&it->it_flags, __ATOMIC_ACQUIRE) &
            ITEM_SLABBED) != 0;
}

static void *mover_main(void *arg)
{
    struct move_req *m = arg;
    unsigned waits;

    pthread_setname_np(pthread_self(), "mc-slabmover");

    for (waits = 0; waits < MOVE_MAX_WAITS; waits++) {
        unsigned i, busy = 0;
        for (i = 0; i < m->count; i++) {
            if (!empty_chunk((struct item *)(m->page + (size_t)i * m->chunk))) {
                busy++;
            }
        }
        if (busy == 0 && slabs_reassign_finish(m->src, m->dst)) {
            break;
        }
        usleep(MOVE_WAIT_US);
    }
    if (waits == MOVE_MAX_WAITS) {
        log_warn("slabs reassign: page of class %u still busy after %d s; "
                 "giving up, the page stays", m->src,
                 MOVE_MAX_WAITS * MOVE_WAIT_US / 1000000);
        slabs_reassign_cancel(m->src);
    } else {
        __atomic_add_fetch(&slabs_moved, 1, __ATOMIC_RELAXED);
    }
    free(m);
    __atomic_store_n(&mover_running, false, __ATOMIC_RELEASE);
    return NULL;
}

enum reassign_result items_reassign(int src, unsigned dst, bool *busy)
{
    struct move_req *m;
    enum reassign_result r;
    pthread_t tid;
    bool expected = false;

    *busy = false;
    if (!__atomic_compare_exchange_n(&mover_running, &expected, true, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        *busy = true;
        return REASSIGN_OK;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        __atomic_store_n(&mover_running, false, __ATOMIC_RELEASE);
        *busy = true;
        return REASSIGN_OK;
    }
    m->dst = dst;
    r = slabs_reassign_begin(src, dst, &m->src, &m->page, &m->chunk,
                             &m->count);
    if (r != REASSIGN_OK ||
        pthread_create(&tid, NULL, mover_main, m) != 0) {
        free(m);
        __atomic_store_n(&mover_running, false, __ATOMIC_RELEASE);
        return r;
    }
    pthread_detach(tid);
    return REASSIGN_OK;
}

bool items_reassign_running(void)
{
    return __atomic_load_n(&mover_running, __ATOMIC_ACQUIRE);
}

uint64_t items_slabs_moved(void)
{
    return __atomic_load_n(&slabs_moved, __ATOMIC_RELAXED);
}

void items_reassign_stats(uint64_t *rescues, uint64_t *chunk_rescues,
                          uint64_t *evictions_nomem)
{
    *rescues = __atomic_load_n(&move_rescues, __ATOMIC_RELAXED);
    *chunk_rescues = __atomic_load_n(&move_chunk_rescues, __ATOMIC_RELAXED);
    *evictions_nomem = __atomic_load_n(&move_evictions, __ATOMIC_RELAXED);
}
