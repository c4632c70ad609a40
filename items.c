/*
 * items.c - the one storage path: allocation with eviction, link/unlink,
 * reference counts, versions (CAS), the per-class LRU, expiry and flush.
 * Protocol handlers and the replication stream call the item_* functions;
 * the hash table (assoc.c) and the allocator (slabs.c) are used only from
 * here.  The mutation hook observes every applied change.
 *
 * Locking: public functions take the key's stripe lock (item_lock) and
 * call do_* helpers that expect it held.  LRU lists have one mutex per
 * class, taken after the stripe lock.  Eviction walks an LRU tail holding
 * that class's LRU lock and only trylocks stripes, so it never waits on a
 * lock out of order.
 */
#include "memcached.h"
#include "items.h"
#include "assoc.h"
#include "hash.h"
#include "log.h"
#include "settings.h"
#include "slabs.h"
#include "item_locks.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PULL_SEARCH_DEPTH 5     /* tail items examined per tail pull */
#define ALLOC_TRIES 10          /* tail pulls attempted per allocation */
#define JUGGLE_MAX 500          /* moves per list per pull of a juggle */
#define JUGGLE_ROUNDS 8         /* pulls per list per juggle */

/* One list of a class's segmented LRU. */
struct lru_list {
    struct item *head;          /* most recently linked */
    struct item *tail;          /* oldest: next to move or evict */
    uint64_t number;            /* items on it */
    uint64_t bytes;             /* their ITEM_ntotal() */
};

struct lru {
    struct lru_list seg[LRU_NSEGS]; /* HOT, WARM, COLD, TEMP */
    struct lru_stats st;        /* counters for stats items */
    pthread_mutex_t lock;       /* guards the lists and counters */
};

static struct lru lrus[SLABS_MAX_CLASSES];
static item_mutation_fn mutation_hook;
static struct item_events events;
static uint64_t curr_items;     /* atomic; includes tombstones */
static uint64_t tombstones;     /* atomic; linked tombstones */
static uint32_t tombstone_ttl;  /* seconds; 0 = deletes just unlink */
static uint64_t total_items;    /* atomic */

/* --- versions (hybrid logical clock) ------------------------------------
 *
 * A version is (wall-clock ms << 20) | (counter << 8) | node id.  It only
 * grows: when the clock stalls or steps back, the counter (and past it the
 * ms field) keeps climbing.  Remote versions are folded in so that a local
 * write after a replicated one always carries a higher version.
 */
#define VERSION_NODE_MASK 0xFFULL
#define VERSION_TICK 0x100ULL
static uint64_t last_version;   /* atomic */
static uint64_t node_id;

void items_set_node_id(unsigned id)
{
    node_id = id & VERSION_NODE_MASK;
}

static uint64_t next_version(uint64_t now_ms)
{
    uint64_t pt = now_ms << 20;
    uint64_t last = __atomic_load_n(&last_version, __ATOMIC_RELAXED);
    uint64_t next;

    do {
        uint64_t base = last & ~VERSION_NODE_MASK;
        next = (pt > base) ? pt : base + VERSION_TICK;
        next |= node_id;
    } while (!__atomic_compare_exchange_n(&last_version, &last, next, true,
                                          __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return next;
}

uint64_t item_next_version(void)
{
    return next_version(util_now_ms());
}

void item_observe_version(uint64_t v)
{
    uint64_t last = __atomic_load_n(&last_version, __ATOMIC_RELAXED);

    while (v > last &&
           !__atomic_compare_exchange_n(&last_version, &last, v, true,
                                        __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
}

/* --- late writes ----------------------------------------------------------
 *
 * A write whose bytes waited in the kernel for LATE_MS or more (the
 * process was stopped, paused or starved) is versioned by the time they
 * arrived, not by the time it runs: its client may have given up on it
 * long ago and written elsewhere since.  Such a write (set, add, delete;
 * the conditional and read-modify-write commands follow the item they
 * read and keep a fresh version) then applies as a replicated record
 * does: only over a key whose version (item or tombstone) is lower, so
 * the pair converges on the newest write by arrival.  A late write that
 * loses is answered as done: it was, and was then replaced.
 *
 * Its version is max(just below receive ms << 20, what the clock stood at
 * then + 1 tick, the connection's previous late write + 1 tick): the
 * clock's past comes from the samples the replication timer takes every
 * 100 ms (the newest one not after the receive time; a version folded
 * in during the 100 ms before it may be missed), so a late write still
 * follows what the node had seen when it arrived.  The version is folded
 * into the clock, so no later write of the key can reuse it as a CAS.
 * The sample ring is read without a lock: a torn pair only moves the
 * floor to a neighbouring sample.
 */
#define LATE_MS 1000            /* a write this late takes its rx time */
#define CLOCK_SAMPLES 64        /* 6.4 s of 100 ms samples */
struct clock_sample {
    uint64_t ms;                /* unix ms of the sample (atomic) */
    uint64_t version;           /* last_version then (atomic) */
};
static struct clock_sample samples[CLOCK_SAMPLES];
static unsigned sample_next;    /* next slot; written by one thread */
static uint64_t late_writes;    /* atomic */
static uint64_t late_superseded; /* atomic */
static __thread struct write_origin *origin;

struct write_origin *item_set_origin(struct write_origin *o)
{
    struct write_origin *prev = origin;

    origin = o;
    return prev;
}

uint64_t item_clock_sample(void)
{
    struct clock_sample *s = &samples[sample_next % CLOCK_SAMPLES];
    uint64_t now = util_now_ms();

    __atomic_store_n(&s->ms, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&s->version,
                     __atomic_load_n(&last_version, __ATOMIC_RELAXED),
                     __ATOMIC_RELEASE);
    __atomic_store_n(&s->ms, now, __ATOMIC_RELEASE);
    sample_next++;
    return now;
}

uint64_t items_late_writes(void)
{
    return __atomic_load_n(&late_writes, __ATOMIC_RELAXED);
}

uint64_t items_late_superseded(void)
{
    return __atomic_load_n(&late_superseded, __ATOMIC_RELAXED);
}

/* The clock as it stood at unix ms t: the newest sample not after t, or
 * the oldest one when all are after it (an over-estimate). */
static uint64_t clock_at(uint64_t t)
{
    uint64_t best_ms = 0, best = 0, oldest_ms = UINT64_MAX, oldest = 0;
    unsigned i;

    for (i = 0; i < CLOCK_SAMPLES; i++) {
        uint64_t ms = __atomic_load_n(&samples[i].ms, __ATOMIC_ACQUIRE);
        uint64_t v = __atomic_load_n(&samples[i].version, __ATOMIC_ACQUIRE);
        if (ms == 0) {
            continue;
        }
        if (ms <= t && ms >= best_ms) {
            best_ms = ms;
            best = v;
        }
        if (ms < oldest_ms) {
            oldest_ms = ms;
            oldest = v;
        }
    }
    return best_ms != 0 ? best : oldest;
}

static uint64_t late_version(struct write_origin *o)
{
    /* The last counter value of the ms before: a write of any node in
     * the receive ms (ordered against it only by node id otherwise)
     * wins over it. */
    uint64_t v = ((o->rx_ms << 20) - VERSION_TICK) | node_id;
    uint64_t floor = (clock_at(o->rx_ms) & ~VERSION_NODE_MASK)
                     + VERSION_TICK;

    floor |= node_id;
    v = v > floor ? v : floor;
    v = v > o->next_late ? v : o->next_late;
    o->next_late = v + VERSION_TICK;
    item_observe_version(v);
    __atomic_add_fetch(&late_writes, 1, __ATOMIC_RELAXED);
    return v;
}

/* The version of a plain write (set, add, delete) from this thread's
 * origin; *late tells whether it is a late one. */
static uint64_t write_version(bool *late)
{
    struct write_origin *o = origin;
    uint64_t now = util_now_ms();

    *late = o != NULL && o->rx_ms != 0 && now >= o->rx_ms + LATE_MS;
    return *late ? late_version(o) : next_version(now);
}

/* A late write of version v loses to what the key holds (item,
 * tombstone or expired item not reclaimed yet) when that is newer. */
static bool superseded(const char *key, size_t nkey, uint32_t hv,
                       uint64_t v)
{
    struct item *cur = assoc_find(key, nkey, hv);

    if (cur == NULL || cur->version < v) {
        return false;
    }
    __atomic_add_fetch(&late_superseded, 1, __ATOMIC_RELAXED);
    return true;
}

uint64_t item_cas(const struct item *it)
{
    return settings.use_cas ? it->version : 0;
}

/* --- flush --------------------------------------------------------------
 * flush_all records a cutoff version and the second it takes effect; an
 * item older than the cutoff is dead once that second has come.
 */
static uint64_t flush_cutoff;   /* atomic; 0 = no flush */
static uint32_t flush_at;       /* unix time the cutoff applies from */

bool item_is_dead(const struct item *it)
{
    uint64_t cutoff;

    if (it->exptime != 0 && it->exptime <= current_time) {
        return true;
    }
    cutoff = __atomic_load_n(&flush_cutoff, __ATOMIC_ACQUIRE);
    if (cutoff == 0 || flush_at > current_time) {
        return false;
    }
    /* With -C memcached has no version to draw the line with and drops
     * everything touched up to the flush's second, so a set in that same
     * second is lost too (its flush-all.t checks this): do the same. */
    return it->version < cutoff ||
           (!settings.use_cas && it->atime <= flush_at);
}

void item_flush(uint32_t when)
{
    uint64_t cutoff;
    uint32_t at;

    /* As memcached: a deadline T takes effect at second T - 1 and covers
     * everything stored up to the end of that second. */
    if (when == 0 || when - 1 <= current_time) {
        cutoff = item_next_version();
        at = current_time;
    } else {
        cutoff = ((uint64_t)when * 1000) << 20;
        at = when - 1;
    }
    flush_at = at;
    __atomic_store_n(&flush_cutoff, cutoff, __ATOMIC_RELEASE);
    if (mutation_hook != NULL) {
        mutation_hook(MUT_FLUSH, NULL, cutoff, at);
    }
}

/* --- LRU ----------------------------------------------------------------
 * Each class has four lists (enum lru_seg); it->lru says which one a
 * linked item is on.  All four share the class's lock: the maintainer
 * moves items between them without dropping it.
 */
static void list_unlink(struct lru_list *q, struct item *it, size_t n)
{
    if (it->prev != NULL) {
        it->prev->next = it->next;
    } else {
        q->head = it->next;
    }
    if (it->next != NULL) {
        it->next->prev = it->prev;
    } else {
        q->tail = it->prev;
    }
    it->next = it->prev = NULL;
    q->number--;
    q->bytes -= n;
}

static void list_link(struct lru_list *q, struct item *it, size_t n)
{
    it->prev = NULL;
    it->next = q->head;
    if (q->head != NULL) {
        q->head->prev = it;
    }
    q->head = it;
    if (q->tail == NULL) {
        q->tail = it;
    }
    q->number++;
    q->bytes += n;
}

static void lru_unlink_locked(struct lru *l, struct item *it)
{
    size_t n = ITEM_ntotal(it);

    list_unlink(&l->seg[it->lru], it, n);
    l->st.number--;
    l->st.bytes -= n;
}

static void lru_link_locked(struct lru *l, struct item *it)
{
    size_t n = ITEM_ntotal(it);

    list_link(&l->seg[it->lru], it, n);
    l->st.number++;
    l->st.bytes += n;
}

/* Move a linked item to the head of list `to` of its class. */
static void lru_move_locked(struct lru *l, struct item *it, enum lru_seg to)
{
    size_t n = ITEM_ntotal(it);

    list_unlink(&l->seg[it->lru], it, n);
    it->lru = (uint8_t)to;
    list_link(&l->seg[to], it, n);
}

/* Where a newly linked item goes (memcached's rule): TEMP when temp_lru
 * is on and it expires within temporary_ttl, else HOT, or COLD when the
 * LRU is flat.  An item already past its deadline is not "short". */
static uint8_t initial_seg(const struct item *it)
{
    if (settings.temp_lru && it->exptime != 0 &&
        it->exptime - current_time <= (uint32_t)settings.temporary_ttl) {
        return LRU_TEMP;
    }
    return settings.lru_segmented ? LRU_HOT : LRU_COLD;
}

/* Refresh an item on access (memcached's do_item_update).  Segmented:
 * only the access time; the lists are the maintainer's.  Flat: move to
 * the head if not done in the last ITEM_UPDATE_INTERVAL seconds, skipped
 * when the LRU is busy (a bump is only a hint). */
static void lru_bump(struct item *it)
{
    struct lru *l = &lrus[it->slabs_clsid];

    if (settings.lru_segmented ||
        it->atime + ITEM_UPDATE_INTERVAL >= current_time) {
        it->atime = current_time;
        return;
    }
    if (pthread_mutex_trylock(&l->lock) != 0) {
        return;
    }
    if (it->it_flags & ITEM_LINKED) {
        lru_unlink_locked(l, it);
        lru_link_locked(l, it);
        l->st.moves_within_lru++;
    }
    it->atime = current_time;
    pthread_mutex_unlock(&l->lock);
}

int items_init(void)
{
    unsigned i;

    for (i = 0; i < SLABS_MAX_CLASSES; i++) {
        memset(&lrus[i], 0, sizeof(lrus[i]));
        pthread_mutex_init(&lrus[i].lock, NULL);
    }
    curr_items = 0;
    total_items = 0;
    flush_cutoff = 0;
    flush_at = 0;
    last_version = 0;
    return 0;
}

void items_set_mutation_hook(item_mutation_fn fn)
{
    mutation_hook = fn;
}

void items_set_events(const struct item_events *ev)
{
    events = *ev;
}

/* --- references, link, unlink ------------------------------------------ */

static void item_free(struct item *it)
{
    slabs_free(it, ITEM_ntotal(it), it->slabs_clsid);
}

void item_remove(struct item *it)
{
    if (__atomic_sub_fetch(&it->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        item_free(it);
    }
}

/* cold: link it into COLD where it would go to HOT (an item that has not
 * been used here, from a full copy). */
static void do_item_link_in(struct item *it, uint32_t hv, bool cold)
{
    struct lru *l = &lrus[it->slabs_clsid];

    it->it_flags |= ITEM_LINKED;
    it->atime = current_time;
    it->lru = initial_seg(it);
    if (cold && it->lru == LRU_HOT) {
        it->lru = LRU_COLD;
    }
    __atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
    if (it->it_flags & ITEM_TOMBSTONE) {
        __atomic_add_fetch(&tombstones, 1, __ATOMIC_RELAXED);
    }
    assoc_insert(it, hv);
    pthread_mutex_lock(&l->lock);
    lru_link_locked(l, it);
    pthread_mutex_unlock(&l->lock);
    __atomic_add_fetch(&curr_items, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_items, 1, __ATOMIC_RELAXED);
}

static void do_item_link(struct item *it, uint32_t hv)
{
    do_item_link_in(it, hv, false);
}

/* Unlink with the class's LRU lock already held (eviction path). */
static void do_item_unlink_lru_locked(struct item *it, uint32_t hv)
{
    if (!(it->it_flags & ITEM_LINKED)) {
        return;
    }
    it->it_flags &= ~ITEM_LINKED;
    assoc_delete(ITEM_key(it), it->nkey, hv);
    lru_unlink_locked(&lrus[it->slabs_clsid], it);
    __atomic_sub_fetch(&curr_items, 1, __ATOMIC_RELAXED);
    if (it->it_flags & ITEM_TOMBSTONE) {
        __atomic_sub_fetch(&tombstones, 1, __ATOMIC_RELAXED);
    }
    item_remove(it);
}

static void do_item_unlink(struct item *it, uint32_t hv)
{
    struct lru *l = &lrus[it->slabs_clsid];

    if (!(it->it_flags & ITEM_LINKED)) {
        return;
    }
    pthread_mutex_lock(&l->lock);
    do_item_unlink_lru_locked(it, hv);
    pthread_mutex_unlock(&l->lock);
}

/* Replace old (linked) by new (unlinked) under the key's lock, giving the
 * new item a fresh version unless it already carries one. */
static void do_item_replace(struct item *old, struct item *it, uint32_t hv)
{
    do_item_unlink(old, hv);
    do_item_link(it, hv);
}

static void notify(enum mutation_op op, const struct item *it)
{
    if (mutation_hook != NULL) {
        mutation_hook(op, it, it->version, it->exptime);
    }
}

/* --- allocation and eviction --------------------------------------------- */

bool item_size_ok(size_t nkey, size_t nbytes)
{
    return slabs_clsid(ITEM_HDR_SIZE + nkey + nbytes) != 0;
}

/* Count a tail item about to be reclaimed (dead) or evicted (live);
 * caller holds the class's LRU lock. */
static void count_removal(struct lru *l, struct item *it, bool dead)
{
    if (dead) {
        l->st.reclaimed++;
        if (!(it->it_flags & ITEM_FETCHED)) {
            l->st.expired_unfetched++;
        }
        return;
    }
    l->st.evicted++;
    l->st.evicted_time = current_time - it->atime;
    if (it->exptime != 0) {
        l->st.evicted_nonzero++;
    }
    if (!(it->it_flags & ITEM_FETCHED)) {
        l->st.evicted_unfetched++;
    }
    if (it->it_flags & ITEM_ACTIVE) {
        l->st.evicted_active++;
    }
    l->st.direct_reclaims++;
    if (events.evicted != NULL) {
        events.evicted(it);
    }
}

#define PULL_EVICT 0x1           /* COLD: evict a live tail item */
#define RESCUES_MAX 1000        /* active COLD items sent to WARM per pull */

/* Clear ACTIVE without the item's stripe lock (the tail pulls below hold
 * only the LRU lock): atomic, so no other bit set meanwhile is lost; a
 * reader setting ACTIVE again at the same moment may win, which only
 * keeps the item active. */
static void clear_active(struct item *it)
{
    __atomic_fetch_and(&it->it_flags, (uint8_t)~ITEM_ACTIVE,
                       __ATOMIC_RELAXED);
}

/* Send a HOT or WARM tail item on: ACTIVE ones to WARM (from WARM: back
 * to its head), others to COLD when the list is over `limit` bytes or
 * the item is older than max_age.  Returns true if it moved. */
static bool pull_hot_warm(struct lru *l, struct item *it, enum lru_seg seg,
                          uint64_t limit, uint32_t max_age)
{
    if (it->it_flags & ITEM_ACTIVE) {
        clear_active(it);
        lru_move_locked(l, it, LRU_WARM);
        if (seg == LRU_WARM) {
            l->st.moves_within_lru++;
        } else {
            l->st.moves_to_warm++;
        }
        return true;
    }
    if (l->seg[seg].bytes > limit || current_time - it->atime > max_age) {
        lru_move_locked(l, it, LRU_COLD);
        l->st.moves_to_cold++;
        return true;
    }
    return false;
}

enum tail_take {
    TAKE_DONE,                  /* reclaimed or evicted */
    TAKE_ALIVE,                 /* not dead after all (reclaim only) */
    TAKE_BUSY                   /* stripe locked or item in use: skip */
};

/* Unlink a tail item under its stripe lock (trylock: we hold the LRU
 * lock): a dead one is reclaimed; a live one evicted when `evict`.
 * Caller holds the class's LRU lock. */
static enum tail_take take_tail(struct lru *l, struct item *it, bool evict)
{
    uint32_t hv = hash(ITEM_key(it), it->nkey);
    bool dead;

    if (!item_trylock(hv)) {
        return TAKE_BUSY;
    }
    if (__atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) != 1) {
        /* Someone is sending it; leave it be. */
        item_unlock(hv);
        l->st.lrutail_reflocked++;
        return TAKE_BUSY;
    }
    dead = item_is_dead(it);
    if (!dead && !evict) {
        item_unlock(hv);
        return TAKE_ALIVE;
    }
    count_removal(l, it, dead);
    do_item_unlink_lru_locked(it, hv);
    item_unlock(hv);
    return TAKE_DONE;
}

/*
 * Look at up to PULL_SEARCH_DEPTH items at the tail of list `seg` of
 * class id (memcached's lru_pull_tail): dead (expired/flushed) ones are
 * reclaimed and the walk goes on; the first live one ends it, after
 * being moved on (HOT/WARM: pull_hot_warm; COLD: sent to WARM if
 * ACTIVE, else evicted with PULL_EVICT) or left where it is.  With
 * batch > 1 (the maintainer) the walk goes on after a move, up to batch
 * moves, under one taking of the lock.  Items
 * whose stripe is busy or that someone holds are passed over.  Returns
 * how many items were reclaimed, evicted or moved.  total_bytes is the
 * class's HOT+WARM+COLD size the segment shares are taken of.
 *
 * Moving between lists needs only the LRU lock, so a live item is
 * judged without hashing its key or taking its stripe: an idle pass
 * costs a lock and a look at the tail.  Deadness read here is a hint,
 * checked again under the stripe lock before anything is unlinked.
 * Where memcached evicts an ACTIVE COLD tail item (it has moved items
 * read in COLD to WARM as they were read, through a queue), this
 * rescues it to WARM instead: reads here never take the LRU lock.
 */
static int pull_tail_locked(struct lru *l, enum lru_seg seg,
                            uint64_t total_bytes, int flags,
                            uint32_t max_age, int batch)
{
    struct item *it;
    struct item *prev;
    uint64_t limit;
    int tries;
    int removed = 0;
    int rescues = 0;

    limit = total_bytes * (uint64_t)(seg == LRU_HOT ? settings.hot_lru_pct
                                     : settings.warm_lru_pct) / 100;
    for (it = l->seg[seg].tail, tries = PULL_SEARCH_DEPTH;
         it != NULL && tries > 0; it = prev, tries--) {
        prev = it->prev;
        if (item_is_dead(it)) {
            enum tail_take t = take_tail(l, it, false);
            if (t == TAKE_DONE && ++removed < batch) {
                tries = PULL_SEARCH_DEPTH + 1;
            }
            if (t != TAKE_ALIVE) {
                continue;
            }
        }
        if (seg == LRU_HOT || seg == LRU_WARM) {
            if (!pull_hot_warm(l, it, seg, limit, max_age) ||
                ++removed >= batch) {
                break;
            }
            tries = PULL_SEARCH_DEPTH + 1;
            continue;
        }
        if (seg == LRU_TEMP) {
            break;
        }
        if ((it->it_flags & ITEM_ACTIVE) && settings.lru_segmented) {
            clear_active(it);
            lru_move_locked(l, it, LRU_WARM);
            l->st.moves_to_warm++;
            removed++;
            if (!(flags & PULL_EVICT)) {
                if (removed >= batch) {
                    break;
                }
                tries = PULL_SEARCH_DEPTH + 1;
                continue;
            }
            if (++rescues < RESCUES_MAX) {
                tries++;        /* a rescue is not a failed look */
            }
            continue;
        }
        if (!(flags & PULL_EVICT) || !settings.evict_to_free) {
            break;
        }
        if (take_tail(l, it, true) == TAKE_DONE) {
            removed++;
            break;
        }
    }
    return removed;
}

static int lru_pull_tail(unsigned id, enum lru_seg seg, int flags)
{
    struct lru *l = &lrus[id];
    int n;

    pthread_mutex_lock(&l->lock);
    n = pull_tail_locked(l, seg, 0, flags, 0, 1);
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* Make room in class id for one allocation (memcached's
 * do_item_alloc_pull): evict COLD's tail; when COLD has nothing to
 * give, push HOT's (then WARM's) tail down to COLD for the next try.
 * Returns false when nothing more can be done. */
static bool make_room(unsigned id)
{
    if (lru_pull_tail(id, LRU_COLD, PULL_EVICT) > 0) {
        return true;
    }
    if (!settings.lru_segmented) {
        return false;
    }
    return lru_pull_tail(id, LRU_HOT, 0) > 0 ||
           lru_pull_tail(id, LRU_WARM, 0) > 0;
}

/* Flat LRU: reclaim dead items at COLD's tail before taking new memory,
 * as memcached does (the segmented LRU leaves that to the maintainer).
 * Peeks first so that a set pays no hash when the tail is alive. */
static void reclaim_cold_tail(unsigned id)
{
    struct lru *l = &lrus[id];
    bool dead;

    pthread_mutex_lock(&l->lock);
    dead = l->seg[LRU_COLD].tail != NULL &&
           item_is_dead(l->seg[LRU_COLD].tail);
    pthread_mutex_unlock(&l->lock);
    if (dead) {
        (void)lru_pull_tail(id, LRU_COLD, 0);
    }
}

struct item *item_alloc(const char *key, size_t nkey, uint32_t flags,
                        uint32_t exptime, size_t nbytes,
                        enum alloc_result *why)
{
    size_t ntotal = ITEM_HDR_SIZE + nkey + nbytes;
    unsigned id = slabs_clsid(ntotal);
    struct item *it = NULL;
    int tries;

    if (id == 0 || nkey > KEY_MAX_LENGTH) {
        *why = ALLOC_TOO_LARGE;
        return NULL;
    }
    for (tries = 0; tries < ALLOC_TRIES; tries++) {
        if (!settings.lru_segmented) {
            reclaim_cold_tail(id);
        }
        it = slabs_alloc(ntotal, id);
        if (it != NULL || !make_room(id)) {
            break;
        }
    }
    if (it == NULL) {
        pthread_mutex_lock(&lrus[id].lock);
        lrus[id].st.outofmemory++;
        pthread_mutex_unlock(&lrus[id].lock);
        *why = ALLOC_NO_MEMORY;
        return NULL;
    }
    it->next = it->prev = it->h_next = NULL;
    it->refcount = 1;
    it->it_flags = 0;
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    it->flags = flags;
    it->exptime = exptime;
    it->version = 0;
    it->atime = current_time;
    memcpy(ITEM_key(it), key, nkey);
    *why = ALLOC_OK;
    return it;
}

/* Fill an item's value: the data and the "\r\n" every value ends with. */
static void set_value(struct item *it, const char *data, size_t len)
{
    memcpy(ITEM_data(it), data, len);
    memcpy(ITEM_data(it) + len, "\r\n", 2);
}

/* --- lookups ------------------------------------------------------------- */

/* Find a live item under the caller's stripe lock, reclaiming a dead one.
 * Returns it with a new reference. */
static struct item *do_item_get(const char *key, size_t nkey, uint32_t hv,
                                enum get_result *why)
{
    struct item *it = assoc_find(key, nkey, hv);

    if (it == NULL) {
        *why = GET_MISS;
        return NULL;
    }
    if (item_is_dead(it)) {
        bool expired = it->exptime != 0 && it->exptime <= current_time;
        bool tomb = (it->it_flags & ITEM_TOMBSTONE) != 0;
        do_item_unlink(it, hv);
        *why = tomb ? GET_MISS : expired ? GET_EXPIRED : GET_FLUSHED;
        return NULL;
    }
    if (it->it_flags & ITEM_TOMBSTONE) {
        *why = GET_MISS;
        return NULL;
    }
    __atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
    *why = GET_HIT;
    return it;
}

/* Link it, replacing whatever the table holds for its key (a tombstone,
 * or a dead item not yet reclaimed). */
static void do_item_link_replacing(struct item *it, uint32_t hv)
{
    struct item *raw = assoc_find(ITEM_key(it), it->nkey, hv);

    if (raw != NULL) {
        do_item_replace(raw, it, hv);
    } else {
        do_item_link(it, hv);
    }
}

/* A tombstone for key with version v, or NULL when out of memory. */
static struct item *make_tombstone(const char *key, size_t nkey, uint64_t v)
{
    enum alloc_result why;
    struct item *t = item_alloc(key, nkey, 0, current_time + tombstone_ttl,
                                2, &why);

    if (t == NULL) {
        return NULL;
    }
    memcpy(ITEM_data(t), "\r\n", 2);
    t->it_flags |= ITEM_TOMBSTONE;
    t->version = v;
    return t;
}

/* Remove the key: with tombstones on, put one in its place carrying
 * version v; else just unlink.  Caller holds the stripe lock; old may be
 * NULL (remote deletes of keys we never had). */
static void do_item_bury(struct item *old, const char *key, size_t nkey,
                         uint64_t v, uint32_t hv)
{
    struct item *t = tombstone_ttl ? make_tombstone(key, nkey, v) : NULL;

    if (t == NULL) {
        if (old != NULL) {
            do_item_unlink(old, hv);
        }
        return;
    }
    if (old != NULL) {
        do_item_replace(old, t, hv);
    } else {
        do_item_link(t, hv);
    }
    item_remove(t);
}

void items_set_tombstone_ttl(uint32_t ttl)
{
    tombstone_ttl = ttl;
}

uint64_t items_tombstones(void)
{
    return __atomic_load_n(&tombstones, __ATOMIC_RELAXED);
}

/* A read (memcached's do_item_bump).  Segmented: the first read sets
 * FETCHED, the second ACTIVE, which sends the item to WARM when it
 * reaches the tail of HOT or COLD instead of on towards eviction; no
 * LRU lock is taken.  Flat: FETCHED and a bump.  Either way the access
 * time is recorded (meta l). */
static void mark_fetched(struct item *it)
{
    uint8_t fl = it->it_flags;

    if (!settings.lru_segmented) {
        it->it_flags = fl | ITEM_FETCHED;
        lru_bump(it);
        return;
    }
    it->atime = current_time;
    if (fl & ITEM_ACTIVE) {
        return;
    }
    if (!(fl & ITEM_FETCHED)) {
        it->it_flags = fl | ITEM_FETCHED;
        return;
    }
    it->it_flags = fl | ITEM_ACTIVE;
}

struct item *item_get(const char *key, size_t nkey, enum get_result *why)
{
    uint32_t hv = hash(key, nkey);
    struct item *it;

    item_lock(hv);
    it = do_item_get(key, nkey, hv, why);
    if (it != NULL) {
        mark_fetched(it);
    }
    item_unlock(hv);
    return it;
}

struct item *item_touch(const char *key, size_t nkey, uint32_t exptime,
                        enum get_result *why)
{
    uint32_t hv = hash(key, nkey);
    struct item *it;

    item_lock(hv);
    it = do_item_get(key, nkey, hv, why);
    if (it != NULL) {
        it->exptime = exptime;
        mark_fetched(it);
        notify(MUT_TOUCH, it);
    }
    item_unlock(hv);
    return it;
}

/* --- stores -------------------------------------------------------------- */

/* Build old+new (append) or new+old (prepend) as a fresh item with old's
 * flags and deadline.  NULL when out of memory. */
static struct item *concat(struct item *old, struct item *it, bool append)
{
    size_t olen = old->nbytes - 2;
    size_t nlen = it->nbytes - 2;
    enum alloc_result why;
    struct item *n;

    n = item_alloc(ITEM_key(it), it->nkey, old->flags, old->exptime,
                   olen + nlen + 2, &why);
    if (n == NULL) {
        return NULL;
    }
    if (append) {
        memcpy(ITEM_data(n), ITEM_data(old), olen);
        memcpy(ITEM_data(n) + olen, ITEM_data(it), nlen + 2);
    } else {
        memcpy(ITEM_data(n), ITEM_data(it), nlen);
        memcpy(ITEM_data(n) + nlen, ITEM_data(old), olen + 2);
    }
    return n;
}

static enum store_result do_item_store(struct item *it, enum store_mode mode,
                                       uint64_t *cas, uint32_t hv,
                                       bool invalidate)
{
    enum get_result why;
    struct item *old = do_item_get(ITEM_key(it), it->nkey, hv, &why);
    struct item *linked = it;
    enum store_result res = STORE_NOT_STORED;

    switch (mode) {
    case STORE_MODE_ADD:
        if (old != NULL) {
            /* memcached refreshes the existing item on a failed add. */
            lru_bump(old);
            goto out;
        }
        break;
    case STORE_MODE_REPLACE:
        if (old == NULL) {
            goto out;
        }
        break;
    case STORE_MODE_CAS:
        if (old == NULL) {
            res = STORE_NOT_FOUND;
            goto out;
        }
        if (invalidate && *cas < old->version) {
            /* An older writer: keep its value, but stale, with the
             * current deadline and any recache token already handed out. */
            it->it_flags |= ITEM_STALE | (old->it_flags & ITEM_TOKEN_SENT);
            it->exptime = old->exptime;
            break;
        }
        if (old->version != *cas) {
            res = STORE_EXISTS;
            goto out;
        }
        break;
    case STORE_MODE_APPEND:
    case STORE_MODE_PREPEND:
        if (old == NULL) {
            goto out;
        }
        if (*cas != 0 && old->version != *cas) {
            res = STORE_EXISTS;
            goto out;
        }
        linked = concat(old, it, mode == STORE_MODE_APPEND);
        if (linked == NULL) {
            /* memcached answers NOT_STORED when the result cannot be
             * allocated, whether too large or out of memory. */
            goto out;
        }
        break;
    case STORE_MODE_SET:
        break;
    }
    if (mode == STORE_MODE_SET || mode == STORE_MODE_ADD) {
        bool late;
        linked->version = write_version(&late);
        if (late && superseded(ITEM_key(it), it->nkey, hv,
                               linked->version)) {
            /* No CAS token: the item a token would match is not this
             * write (its version may even be the same, a tie). */
            *cas = 0;
            res = STORE_STORED;
            goto out;
        }
    } else {
        linked->version = item_next_version();
    }
    if (old != NULL) {
        do_item_replace(old, linked, hv);
    } else {
        do_item_link_replacing(linked, hv);
    }
    *cas = item_cas(linked);
    notify(MUT_STORE, linked);
    if (linked != it) {
        item_remove(linked);
    }
    res = STORE_STORED;
out:
    if (old != NULL) {
        item_remove(old);
    }
    return res;
}

enum store_result item_store(struct item *it, enum store_mode mode,
                             uint64_t *cas)
{
    uint32_t hv = hash(ITEM_key(it), it->nkey);
    enum store_result res;

    item_lock(hv);
    res = do_item_store(it, mode, cas, hv, false);
    item_unlock(hv);
    return res;
}

enum store_result item_store_meta(struct item *it, enum store_mode mode,
                                  uint64_t *cas, bool invalidate)
{
    uint32_t hv = hash(ITEM_key(it), it->nkey);
    enum store_result res;

    item_lock(hv);
    res = do_item_store(it, mode, cas, hv, invalidate);
    item_unlock(hv);
    return res;
}

bool item_delete_meta(const char *key, size_t nkey, uint64_t cas,
                      bool invalidate, bool set_ttl, uint32_t exptime,
                      bool *exists, unsigned *clsid)
{
    uint32_t hv;
    enum get_result why;
    struct item *it;
    bool done = false;

    if (!invalidate) {
        return item_delete_cls(key, nkey, cas, exists, clsid);
    }
    *clsid = 0;
    hv = hash(key, nkey);
    item_lock(hv);
    it = do_item_get(key, nkey, hv, &why);
    *exists = it != NULL;
    if (it != NULL && (cas == 0 || cas == it->version)) {
        it->it_flags |= ITEM_STALE;
        it->it_flags &= ~ITEM_TOKEN_SENT;
        it->version = item_next_version();
        if (set_ttl) {
            it->exptime = exptime;
        }
        notify(MUT_STORE, it);
        done = true;
    }
    item_unlock(hv);
    if (it != NULL) {
        item_remove(it);
    }
    return done;
}

struct item *item_peek(const char *key, size_t nkey)
{
    uint32_t hv = hash(key, nkey);
    enum get_result why;
    struct item *it;

    item_lock(hv);
    it = do_item_get(key, nkey, hv, &why);
    item_unlock(hv);
    return it;
}

/* A miss with N: link an empty item this client is told to fill. */
static struct item *vivify(const char *key, size_t nkey, uint32_t exptime,
                           uint32_t hv)
{
    enum alloc_result why;
    struct item *it = item_alloc(key, nkey, 0, exptime, 2, &why);

    if (it == NULL) {
        return NULL;
    }
    memcpy(ITEM_data(it), "\r\n", 2);
    it->version = item_next_version();
    do_item_link_replacing(it, hv);
    notify(MUT_STORE, it);
    return it;
}

struct item *item_get_meta(const char *key, size_t nkey,
                           const struct meta_get_opts *o,
                           struct meta_get_info *r, enum get_result *why)
{
    uint32_t hv = hash(key, nkey);
    struct item *it;
    bool created = false;

    memset(r, 0, sizeof(*r));
    item_lock(hv);
    it = do_item_get(key, nkey, hv, why);
    if (it == NULL && o->vivify) {
        it = vivify(key, nkey, o->viv_exptime, hv);
        created = it != NULL;
    }
    if (it == NULL) {
        item_unlock(hv);
        return NULL;
    }
    r->fetched_before = (it->it_flags & ITEM_FETCHED) != 0;
    r->last_access = current_time - it->atime;
    r->exptime_before = it->exptime;
    r->won = created;
    if (o->recache && !o->recache_after_touch && !created &&
        it->exptime != 0 && it->exptime < o->recache_before) {
        r->won = true;
    }
    if (o->touch) {
        it->exptime = o->exptime;
        notify(MUT_TOUCH, it);
    }
    if (o->recache && o->recache_after_touch && !created &&
        it->exptime != 0 && it->exptime < o->recache_before) {
        r->won = true;
    }
    r->token_sent = (it->it_flags & ITEM_TOKEN_SENT) != 0;
    r->stale = (it->it_flags & ITEM_STALE) != 0;
    if (r->token_sent) {
        r->won = false;
    } else if (r->stale) {
        r->won = true;
    }
    if (r->won) {
        /* Not set before (won is false then): the peer must know, so
         * that its clients are told Z, not W. */
        it->it_flags |= ITEM_TOKEN_SENT;
        notify(MUT_META, it);
    }
    if (!o->no_bump) {
        mark_fetched(it);
    }
    item_unlock(hv);
    *why = GET_HIT;
    return it;
}

bool item_delete(const char *key, size_t nkey, uint64_t cas, bool *exists)
{
    unsigned clsid;

    return item_delete_cls(key, nkey, cas, exists, &clsid);
}

bool item_delete_cls(const char *key, size_t nkey, uint64_t cas,
                     bool *exists, unsigned *clsid)
{
    uint32_t hv = hash(key, nkey);
    enum get_result why;
    struct item *it;
    bool deleted = false;

    *clsid = 0;
    item_lock(hv);
    it = do_item_get(key, nkey, hv, &why);
    *exists = it != NULL;
    if (it != NULL && cas == 0) {
        bool late;
        uint64_t v = write_version(&late);
        *clsid = it->slabs_clsid;
        if (late && superseded(key, nkey, hv, v)) {
            deleted = true;     /* done, then replaced by a newer write */
        } else {
            do_item_bury(it, key, nkey, v, hv);
            if (mutation_hook != NULL) {
                mutation_hook(MUT_DELETE, it, v, 0);
            }
            deleted = true;
        }
    } else if (it != NULL && cas == it->version) {
        uint64_t v = item_next_version();
        *clsid = it->slabs_clsid;
        do_item_bury(it, key, nkey, v, hv);
        if (mutation_hook != NULL) {
            mutation_hook(MUT_DELETE, it, v, 0);
        }
        deleted = true;
    }
    item_unlock(hv);
    if (it != NULL) {
        item_remove(it);
    }
    return deleted;
}

/* --- incr / decr --------------------------------------------------------- */

static enum delta_result do_item_delta(struct item *it, bool incr,
                                       uint64_t delta, uint64_t *value,
                                       char *buf, uint64_t *cas, uint32_t hv)
{
    uint64_t v;
    size_t len;

    if (it->nbytes <= 2 || it->nbytes - 2 > MAX_NUMBER_LEN + 20) {
        return DELTA_NON_NUMERIC;
    }
    if (*cas != 0 && it->version != *cas) {
        return DELTA_EXISTS;
    }
    /* The value ends in "\r\n", which stops the parse. */
    if (!safe_strtoull(ITEM_data(it), &v)) {
        return DELTA_NON_NUMERIC;
    }
    if (incr) {
        v += delta;
    } else {
        v = delta > v ? 0 : v - delta;
    }
    len = (size_t)util_u64toa(v, buf);
    if (len + 2 <= it->nbytes &&
        __atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) == 2) {
        /* Only the table and we hold it: rewrite in place, padding with
         * spaces as memcached does. */
        memcpy(ITEM_data(it), buf, len);
        memset(ITEM_data(it) + len, ' ', it->nbytes - len - 2);
        it->version = item_next_version();
        notify(MUT_STORE, it);
    } else {
        enum alloc_result why;
        struct item *n = item_alloc(ITEM_key(it), it->nkey, it->flags,
                                    it->exptime, len + 2, &why);
        if (n == NULL) {
            return DELTA_NO_MEMORY;
        }
        set_value(n, buf, len);
        n->version = item_next_version();
        do_item_replace(it, n, hv);
        notify(MUT_STORE, n);
        item_remove(n);
        it = n;
    }
    *value = v;
    *cas = item_cas(it);
    return DELTA_OK;
}

enum delta_result item_delta(const char *key, size_t nkey, bool incr,
                             uint64_t delta, uint64_t *value, char *buf,
                             uint64_t *cas)
{
    uint32_t hv = hash(key, nkey);
    enum get_result why;
    enum delta_result res;
    struct item *it;

    item_lock(hv);
    it = do_item_get(key, nkey, hv, &why);
    if (it == NULL) {
        res = DELTA_NOT_FOUND;
    } else {
        res = do_item_delta(it, incr, delta, value, buf, cas, hv);
        if (res == DELTA_OK) {
            if (events.delta_hit != NULL) {
                events.delta_hit(it->slabs_clsid, incr);
            }
        }
        item_remove(it);
    }
    item_unlock(hv);
    return res;
}

enum delta_result item_create_counter(const char *key, size_t nkey,
                                      uint64_t initial, uint32_t exptime,
                                      uint64_t *cas)
{
    char buf[MAX_NUMBER_LEN + 1];
    enum alloc_result why;
    enum store_result r;
    struct item *it;
    int len = util_u64toa(initial, buf);

    it = item_alloc(key, nkey, 0, exptime, (size_t)len + 2, &why);
    if (it == NULL) {
        return DELTA_NO_MEMORY;
    }
    set_value(it, buf, (size_t)len);
    *cas = 0;
    r = item_store(it, STORE_MODE_ADD, cas);
    item_remove(it);
    return r == STORE_STORED ? DELTA_OK : DELTA_NOT_FOUND;
}

/* --- pair digest -----------------------------------------------------------
 * Each live item hashes to 64 bits; the digest is their sum modulo 2^64,
 * so it does not depend on the order of the walk.  Each slice takes the
 * walk lock and one stripe lock at a time (assoc_walk_buckets).
 */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Dead by unix time t: expired, or flushed, by then. */
static bool dead_by(const struct item *it, uint32_t t)
{
    uint64_t cutoff = __atomic_load_n(&flush_cutoff, __ATOMIC_ACQUIRE);

    return (it->exptime != 0 && it->exptime <= t) ||
           (cutoff != 0 && it->version < cutoff && flush_at <= t);
}

static bool digest_cb(struct item *it, void *arg)
{
    struct digest_walk *d = arg;
    uint64_t h;

    if ((it->it_flags & ITEM_TOMBSTONE) ||
        (d->until == 0 ? item_is_dead(it) : dead_by(it, d->until))) {
        return true;
    }
    /* murmur3 whatever -o hash_algorithm says: both nodes must agree. */
    h = mix64(((uint64_t)hash_murmur3(ITEM_key(it), it->nkey) << 32) |
              hash_murmur3(ITEM_data(it), it->nbytes - 2));
    h = mix64(h ^ it->version);
    h = mix64(h ^ (((uint64_t)it->flags << 32) | it->exptime));
    h = mix64(h ^ it->nbytes);
    d->sum += h;
    d->count++;
    return true;
}

void items_digest_begin(struct digest_walk *d)
{
    d->sum = 0;
    d->count = 0;
    d->next = 0;
    d->power = assoc_hashpower();
    d->until = 0;
}

/* Start over (the table doubled), keeping d->until. */
static void digest_restart(struct digest_walk *d)
{
    uint32_t until = d->until;

    items_digest_begin(d);
    d->until = until;
}

bool items_digest_step(struct digest_walk *d, uint64_t buckets)
{
    uint64_t next;

    if (assoc_hashpower() != d->power) {
        digest_restart(d);
    }
    next = assoc_walk_buckets(d->next, buckets, digest_cb, d);
    if (assoc_hashpower() != d->power) {
        /* The table doubled before this slice took the walk lock: its
         * buckets were numbered anew, and items already summed may have
         * moved ahead of the walk.  Only a fresh walk counts each once. */
        digest_restart(d);
        return false;
    }
    d->next = next;
    return next == 0;
}

/* --- crawler support ----------------------------------------------------- */

bool item_reclaim_if_dead(struct item *it, uint32_t hv)
{
    if (!(it->it_flags & ITEM_LINKED) || !item_is_dead(it)) {
        return false;
    }
    do_item_unlink(it, hv);
    return true;
}

void items_count_crawl(unsigned id, uint64_t checked, uint64_t reclaimed)
{
    struct lru *l = &lrus[id];

    pthread_mutex_lock(&l->lock);
    l->st.crawler_items_checked += checked;
    l->st.crawler_reclaimed += reclaimed;
    pthread_mutex_unlock(&l->lock);
}

/* --- stats --------------------------------------------------------------- */

/* Seconds since the tail of list q was accessed (0 when empty). */
static uint64_t tail_age(const struct lru_list *q)
{
    return q->tail != NULL ? current_time - q->tail->atime : 0;
}

void items_lru_stats(unsigned id, struct lru_stats *out)
{
    struct lru *l = &lrus[id];
    unsigned i;

    pthread_mutex_lock(&l->lock);
    *out = l->st;
    for (i = 0; i < LRU_NSEGS; i++) {
        out->number_seg[i] = l->seg[i].number;
    }
    out->age = tail_age(&l->seg[LRU_COLD]);
    out->age_hot = tail_age(&l->seg[LRU_HOT]);
    out->age_warm = tail_age(&l->seg[LRU_WARM]);
    pthread_mutex_unlock(&l->lock);
}

void items_reset_lru_stats(void)
{
    unsigned id;

    for (id = 0; id < SLABS_MAX_CLASSES; id++) {
        struct lru *l = &lrus[id];
        uint64_t number, bytes;

        pthread_mutex_lock(&l->lock);
        number = l->st.number;
        bytes = l->st.bytes;
        memset(&l->st, 0, sizeof(l->st));
        l->st.number = number;
        l->st.bytes = bytes;
        pthread_mutex_unlock(&l->lock);
    }
}

/* --- the LRU maintainer's pass (lru_maintainer.c runs it) -----------------
 * memcached's lru_maintainer_juggle: reclaim TEMP's dead tail items, then
 * pull the HOT, WARM and COLD tails until nothing moves.  HOT and WARM
 * may hold hot_lru_pct and warm_lru_pct of the class's bytes, and items
 * no older than hot_max_factor and warm_max_factor times COLD's tail age
 * (0 when the LRU is flat, which drains them into COLD).
 */
/* The maintainer's last yield (util_preempt_point); it alone juggles. */
static uint64_t juggle_yield_us;

int items_lru_juggle(unsigned id)
{
    struct lru *l = &lrus[id];
    uint64_t total;
    uint32_t hot_age = 0, warm_age = 0;
    int did = 0;
    int i;

    /* The lock is taken once per round, not per move: a pass moves a
     * few items each time under a steady load, and the lock round trips
     * would cost more than the moves.  After a bulk load a pass can move
     * thousands (8 rounds of up to 500 per list, milliseconds with cold
     * items): between rounds the lock is let go and the CPU given away
     * at most once a millisecond (doc/threads.txt, "Yield points"), so a
     * worker storing into this class, or woken on this CPU, is not held
     * up for the whole pass. */
    pthread_mutex_lock(&l->lock);
    if (settings.temp_lru) {
        did += pull_tail_locked(l, LRU_TEMP, 0, 0, 0, JUGGLE_MAX);
    }
    /* Flat (`lru mode flat` after segmented): shares and ages of 0
     * drain HOT and WARM into COLD, as memcached. */
    total = 0;
    if (settings.lru_segmented) {
        uint32_t cold_age = (uint32_t)tail_age(&l->seg[LRU_COLD]);
        total = l->seg[LRU_HOT].bytes + l->seg[LRU_WARM].bytes +
                l->seg[LRU_COLD].bytes;
        hot_age = (uint32_t)(cold_age * settings.hot_max_factor);
        warm_age = (uint32_t)(cold_age * settings.warm_max_factor);
    }
    /* A pull that met a busy or dead item returns early: go round again
     * while anything happens, a few times at most. */
    for (i = 0; i < JUGGLE_ROUNDS; i++) {
        int more;

        if (i > 0) {
            pthread_mutex_unlock(&l->lock);
            util_preempt_point(&juggle_yield_us);
            pthread_mutex_lock(&l->lock);
        }
        more = pull_tail_locked(l, LRU_HOT, total, 0, hot_age, JUGGLE_MAX) +
               pull_tail_locked(l, LRU_WARM, total, 0, warm_age, JUGGLE_MAX);
        if (settings.lru_segmented) {
            more += pull_tail_locked(l, LRU_COLD, total, 0, 0, JUGGLE_MAX);
        }
        if (more == 0) {
            break;
        }
        did += more;
    }
    pthread_mutex_unlock(&l->lock);
    return did;
}

void items_lru_totals(struct lru_stats *out)
{
    unsigned id;

    memset(out, 0, sizeof(*out));
    for (id = 1; id < SLABS_MAX_CLASSES; id++) {
        struct lru_stats s;
        items_lru_stats(id, &s);
        out->number += s.number;
        out->evicted += s.evicted;
        out->evicted_unfetched += s.evicted_unfetched;
        out->evicted_active += s.evicted_active;
        out->outofmemory += s.outofmemory;
        out->reclaimed += s.reclaimed;
        out->expired_unfetched += s.expired_unfetched;
        out->crawler_reclaimed += s.crawler_reclaimed;
        out->crawler_items_checked += s.crawler_items_checked;
        out->lrutail_reflocked += s.lrutail_reflocked;
        out->moves_within_lru += s.moves_within_lru;
        out->moves_to_cold += s.moves_to_cold;
        out->moves_to_warm += s.moves_to_warm;
        out->direct_reclaims += s.direct_reclaims;
        out->bytes += s.bytes;
    }
}

uint64_t items_curr(void)
{
    return __atomic_load_n(&curr_items, __ATOMIC_RELAXED) -
           __atomic_load_n(&tombstones, __ATOMIC_RELAXED);
}

void items_reset_total(void)
{
    __atomic_store_n(&total_items, 0, __ATOMIC_RELAXED);
}

uint64_t items_total(void)
{
    return __atomic_load_n(&total_items, __ATOMIC_RELAXED);
}

#define ITEM_STAT(field, value) \
    do { \
        snprintf(name, sizeof(name), "items:%u:%s", id, field); \
        sb_stat(sb, name, "%llu", (unsigned long long)(value)); \
    } while (0)

void items_stats(struct strbuf *sb)
{
    char name[64];
    unsigned id;

    for (id = 1; id <= slabs_count(); id++) {
        struct lru_stats s;
        uint64_t used, nfree, requested;

        items_lru_stats(id, &s);
        if (s.number == 0 && s.evicted == 0 && s.outofmemory == 0) {
            continue;
        }
        slabs_class_stats(id, &used, &nfree, &requested);
        ITEM_STAT("number", s.number);
        ITEM_STAT("number_hot", s.number_seg[LRU_HOT]);
        ITEM_STAT("number_warm", s.number_seg[LRU_WARM]);
        ITEM_STAT("number_cold", s.number_seg[LRU_COLD]);
        if (settings.temp_lru) {
            ITEM_STAT("number_temp", s.number_seg[LRU_TEMP]);
        }
        ITEM_STAT("age_hot", s.age_hot);
        ITEM_STAT("age_warm", s.age_warm);
        ITEM_STAT("age", s.age);
        ITEM_STAT("mem_requested", requested);
        ITEM_STAT("evicted", s.evicted);
        ITEM_STAT("evicted_nonzero", s.evicted_nonzero);
        ITEM_STAT("evicted_time", s.evicted_time);
        ITEM_STAT("outofmemory", s.outofmemory);
        ITEM_STAT("tailrepairs", s.tailrepairs);
        ITEM_STAT("reclaimed", s.reclaimed);
        ITEM_STAT("expired_unfetched", s.expired_unfetched);
        ITEM_STAT("evicted_unfetched", s.evicted_unfetched);
        ITEM_STAT("evicted_active", s.evicted_active);
        ITEM_STAT("crawler_reclaimed", s.crawler_reclaimed);
        ITEM_STAT("crawler_items_checked", s.crawler_items_checked);
        ITEM_STAT("lrutail_reflocked", s.lrutail_reflocked);
        ITEM_STAT("moves_to_cold", s.moves_to_cold);
        ITEM_STAT("moves_to_warm", s.moves_to_warm);
        ITEM_STAT("moves_within_lru", s.moves_within_lru);
        ITEM_STAT("direct_reclaims", s.direct_reclaims);
        ITEM_STAT("hits_to_hot", 0);
        ITEM_STAT("hits_to_warm", 0);
        ITEM_STAT("hits_to_cold", 0);
        ITEM_STAT("hits_to_temp", 0);
    }
}

void items_stats_sizes(struct strbuf *sb)
{
    sb_stat(sb, "sizes_status", "disabled");
}

/* --- slabs reassign: the items of a page being moved (slab_mover.c) ----- */

/* Copy linked item `it` (stripe hv held) into a free chunk of its class
 * outside the moving page and link the copy in its place.  False when
 * the class has no free chunk. */
static bool rescue(struct item *it, uint32_t hv)
{
    size_t n = ITEM_ntotal(it);
    struct item *copy = slabs_alloc_free(n, it->slabs_clsid);
    uint32_t atime = it->atime;

    if (copy == NULL) {
        return false;
    }
    memcpy(copy, it, n);
    copy->next = copy->prev = copy->h_next = NULL;
    copy->refcount = 1;
    copy->it_flags &= ~ITEM_LINKED;
    do_item_replace(it, copy, hv);
    copy->atime = atime;
    item_remove(copy);
    return true;
}

enum page_out item_move_out_locked(struct item *it, uint32_t hv)
{
    if (!(it->it_flags & ITEM_LINKED) ||
        assoc_find(ITEM_key(it), it->nkey, hv) != it) {
        return PAGE_OUT_NONE;
    }
    if (item_is_dead(it)) {
        do_item_unlink(it, hv);
        return PAGE_OUT_DEAD;
    }
    if (rescue(it, hv)) {
        return PAGE_OUT_RESCUED;
    }
    do_item_unlink(it, hv);
    return PAGE_OUT_EVICTED;
}

/* --- stats cachedump --------------------------------------------------- */

bool items_cachedump(unsigned id, unsigned limit, struct strbuf *sb)
{
    struct lru *l;
    struct item *it;
    unsigned n = 0;
    unsigned q;

    if (id < 1 || id > slabs_count()) {
        return false;
    }
    l = &lrus[id];
    pthread_mutex_lock(&l->lock);
    for (q = 0; q < LRU_NSEGS; q++) {
        for (it = l->seg[q].head; it != NULL && (limit == 0 || n < limit) &&
             sb->len < 2 * 1024 * 1024; it = it->next) {
            if (it->it_flags & ITEM_TOMBSTONE) {
                continue;
            }
            n++;
            sb_append(sb, "ITEM ", 5);
            sb_append(sb, ITEM_key(it), it->nkey);
            sb_printf(sb, " [%u b; %u s]\r\n", it->nbytes - 2,
                      it->exptime);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return true;
}

/*
 * Overwrite `old` where it lies when nobody else holds it and the new
 * value needs the same slab class: no allocation, no free, and no hash
 * or LRU relinking, which on a replica receiving a stream of sets are
 * most of its cost (cache misses on the neighbours).  The item keeps its
 * LRU position; ACTIVE gives it another trip round the LRU should it
 * reach the tail before being read.  Caller holds the stripe lock.
 */
static bool rewrite_in_place(struct item *old, uint32_t flags,
                             uint32_t exptime, uint64_t version,
                             const char *data, size_t len, uint8_t marks)
{
    size_t was = ITEM_ntotal(old);
    size_t now = ITEM_HDR_SIZE + old->nkey + len + 2;

    if (__atomic_load_n(&old->refcount, __ATOMIC_ACQUIRE) != 1 ||
        (old->it_flags & (ITEM_LINKED | ITEM_TOMBSTONE)) != ITEM_LINKED ||
        slabs_clsid(now) != old->slabs_clsid) {
        return false;
    }
    if (now != was) {
        struct lru *l = &lrus[old->slabs_clsid];
        slabs_resize(old->slabs_clsid, was, now);
        pthread_mutex_lock(&l->lock);
        l->st.bytes = l->st.bytes - was + now;
        l->seg[old->lru].bytes = l->seg[old->lru].bytes - was + now;
        old->nbytes = (uint32_t)(len + 2);
        pthread_mutex_unlock(&l->lock);
    }
    set_value(old, data, len);
    old->flags = flags;
    old->exptime = exptime;
    old->version = version;
    old->atime = current_time;
    old->it_flags = ITEM_LINKED | ITEM_ACTIVE | marks;
    __atomic_add_fetch(&total_items, 1, __ATOMIC_RELAXED);
    return true;
}

/*
 * The replication thread applies records one after another, each costing
 * cache misses that depend on each other (bucket, then item).  It hides
 * them by prefetching the next record's bucket head while it applies this
 * one, under this one's stripe lock.
 */
static void prefetch_next(uint32_t hv)
{
    struct item *it = assoc_peek(hv);

    if (it != NULL) {
        __builtin_prefetch(it);
        __builtin_prefetch(ITEM_key(it) + 8);
    }
}

/* --- applying the peer's stream --------------------------------------------
 * Called by the replication thread only.  The local item is looked up raw
 * (dead or alive): a dead item with a higher version still wins over an
 * older record, so that an expiry or delete seen here first is not undone
 * by a late copy of what it replaced.
 */
enum apply_result item_apply_store(const char *key, size_t nkey,
                                   uint32_t hv,
                                   uint32_t flags, uint32_t exptime,
                                   uint64_t version, const char *data,
                                   size_t len, uint8_t marks,
                                   const uint32_t *next_hv, bool copy)
{
    enum alloc_result why;
    struct item *old, *it;

    item_observe_version(version);
    if (exptime != 0 && exptime <= current_time) {
        /* Dead on arrival: it only removes older local state. */
        return item_apply_delete(key, nkey, version);
    }
    item_lock(hv);
    if (next_hv != NULL) {
        prefetch_next(*next_hv);
    }
    old = assoc_find(key, nkey, hv);
    if (old != NULL && old->version >= version) {
        item_unlock(hv);
        return APPLY_STALE;
    }
    marks &= ITEM_KEY_BINARY | ITEM_STALE | ITEM_TOKEN_SENT;
    if (old != NULL && rewrite_in_place(old, flags, exptime, version, data,
                                        len, marks)) {
        item_unlock(hv);
        return APPLY_DONE;
    }
    /* Allocated under the lock, so the key is looked up once: eviction
     * only ever trylocks other items' stripes. */
    it = item_alloc(key, nkey, flags, exptime, len + 2, &why);
    if (it == NULL && old != NULL) {
        /* The old value must go whatever happens: its chunk may be the
         * room the new one needs. */
        do_item_unlink(old, hv);
        old = NULL;
        it = item_alloc(key, nkey, flags, exptime, len + 2, &why);
    }
    if (it == NULL) {
        /* Not stored: the stale value is gone, and a tombstone just
         * below this version keeps anything older from coming back,
         * while this record (or a copy of it) still wins over it. */
        do_item_bury(NULL, key, nkey, version - 1, hv);
        item_unlock(hv);
        return APPLY_NO_MEMORY;
    }
    set_value(it, data, len);
    it->version = version;
    it->it_flags |= marks;
    if (old != NULL) {
        do_item_unlink(old, hv);
    }
    do_item_link_in(it, hv, copy);
    item_unlock(hv);
    item_remove(it);
    return APPLY_DONE;
}

enum apply_result item_apply_delete(const char *key, size_t nkey,
                                    uint64_t version)
{
    uint32_t hv = hash(key, nkey);
    enum apply_result r = APPLY_STALE;
    struct item *old;

    item_observe_version(version);
    item_lock(hv);
    old = assoc_find(key, nkey, hv);
    if (old == NULL || old->version < version) {
        /* A tombstone even for a key we never had: an older copy of it
         * arriving later must not bring it back. */
        do_item_bury(old, key, nkey, version, hv);
        r = old != NULL ? APPLY_DONE : APPLY_STALE;
    }
    item_unlock(hv);
    return r;
}

enum apply_result item_apply_touch(const char *key, size_t nkey,
                                   uint32_t exptime, uint64_t version)
{
    uint32_t hv = hash(key, nkey);
    enum apply_result r = APPLY_STALE;
    struct item *old;

    item_lock(hv);
    old = assoc_find(key, nkey, hv);
    if (old != NULL && old->version == version) {
        old->exptime = exptime;
        r = APPLY_DONE;
    }
    item_unlock(hv);
    return r;
}

enum apply_result item_apply_marks(const char *key, size_t nkey,
                                   uint64_t version, uint8_t marks)
{
    uint32_t hv = hash(key, nkey);
    enum apply_result r = APPLY_STALE;
    struct item *old;

    item_lock(hv);
    old = assoc_find(key, nkey, hv);
    if (old != NULL && old->version == version &&
        !(old->it_flags & ITEM_TOMBSTONE)) {
        old->it_flags |= marks & (ITEM_STALE | ITEM_TOKEN_SENT);
        r = APPLY_DONE;
    }
    item_unlock(hv);
    return r;
}

void items_flush_state(uint64_t *cutoff, uint32_t *at)
{
    *cutoff = __atomic_load_n(&flush_cutoff, __ATOMIC_ACQUIRE);
    *at = flush_at;
}

void item_apply_flush(uint64_t cutoff, uint32_t at)
{
    item_observe_version(cutoff);
    if (cutoff > __atomic_load_n(&flush_cutoff, __ATOMIC_ACQUIRE)) {
        flush_at = at;
        __atomic_store_n(&flush_cutoff, cutoff, __ATOMIC_RELEASE);
    }
}
