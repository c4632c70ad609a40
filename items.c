/*
 * items.c - the one storage path: allocation, link/unlink, reference
 * counts, versions (CAS), expiry and flush.  The per-class LRU and
 * eviction are items_lru.c's, applying the peer's stream items_apply.c's,
 * the pair digest items_digest.c's (shared internals: items_internal.h).
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
#include "items_internal.h"
#include "item_chunk.h"
#include "items_lru.h"
#include "assoc.h"
#include "hash.h"
#include "log.h"
#include "settings.h"
#include "slabs.h"
#include "item_locks.h"
#include "crawler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static item_mutation_fn mutation_hook;
static struct item_events events;
static uint64_t curr_items;     /* atomic; includes tombstones */
static uint64_t tombstones;     /* atomic; linked tombstones */
static uint32_t tombstone_ttl;  /* seconds; 0 = deletes just unlink */
uint64_t total_items;           /* atomic */

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
 * loses is answered as done: it was, and was then replaced.  A late incr
 * or decr read the key as it stood on arrival: over a key written since,
 * that value is gone, and adding to the newer one would undo the newer
 * write (a session lock that pecl memcache took with incr and released on
 * the peer would be taken again, for a client that gave up long ago), so
 * it is refused (DELTA_SUPERSEDED); over a key not written since it
 * applies, with its arrival's version as a late set, so that a write the
 * peer made after that arrival (and sent after the hold's PONG) still
 * wins when it comes.
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
#define STALLED_LOCK_MS 500     /* see stalled_lock() */
#define CLOCK_SAMPLES 64        /* 6.4 s of 100 ms samples */
struct clock_sample {
    uint64_t ms;                /* unix ms of the sample (atomic) */
    uint64_t version;           /* last_version then (atomic) */
};
static struct clock_sample samples[CLOCK_SAMPLES];
static unsigned sample_next;    /* next slot; written by one thread */
static uint64_t late_writes;    /* atomic */
static uint64_t late_superseded; /* atomic */
static uint64_t stalled_locks;  /* atomic */
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

uint64_t items_stalled_locks(void)
{
    return __atomic_load_n(&stalled_locks, __ATOMIC_RELAXED);
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

static bool is_late(const struct write_origin *o, uint64_t now)
{
    return o != NULL && o->rx_ms != 0 && now >= o->rx_ms + LATE_MS;
}

/* The version of a plain write (set, add, delete) from this thread's
 * origin; *late tells whether it is a late one. */
static uint64_t write_version(bool *late)
{
    struct write_origin *o = origin;
    uint64_t now = util_now_ms();

    *late = is_late(o, now);
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

/* A command that takes a lock (add, incr, decr) whose bytes waited for
 * a stall's hold STALLED_LOCK_MS or more is not run: its client's
 * timeout (pecl memcache: 1 s) may run out before the answer reaches it,
 * and the lock it took, replicated, would then stop that client on the
 * peer, where it goes next, until the lock expires.  An add answers
 * NOT_STORED, as for a lock someone holds (the client waits and asks
 * again); an incr or decr DELTA_SUPERSEDED. */
static bool stalled_lock(void)
{
    struct write_origin *o = origin;

    if (o == NULL || !o->stalled ||
        util_now_ms() < o->rx_ms + STALLED_LOCK_MS) {
        return false;
    }
    __atomic_add_fetch(&stalled_locks, 1, __ATOMIC_RELAXED);
    return true;
}

/* An incr/decr of it (the key's live item) from this thread's origin:
 * *v = 0 (a fresh version) unless it is a late one, which takes its
 * arrival's version; false when a late one is superseded. */
static bool delta_version(const struct item *it, uint64_t *v)
{
    struct write_origin *o = origin;

    *v = 0;
    if (o == NULL || o->rx_ms == 0 || !is_late(o, util_now_ms())) {
        return true;
    }
    *v = late_version(o);
    if (it->version < *v) {
        return true;
    }
    __atomic_add_fetch(&late_superseded, 1, __ATOMIC_RELAXED);
    return false;
}

uint64_t item_cas(const struct item *it)
{
    return settings.use_cas ? it->version : 0;
}

/* --- flush --------------------------------------------------------------
 * flush_all records a cutoff version and the second it takes effect; an
 * item older than the cutoff is dead once that second has come.
 */
uint64_t flush_cutoff;          /* atomic; 0 = no flush */
uint32_t flush_at;              /* unix time the cutoff applies from */

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
    crawler_note_deadline(at);
    if (mutation_hook != NULL) {
        mutation_hook(MUT_FLUSH, NULL, cutoff, at);
    }
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
        crawler_note_deadline(at);
    }
}

int items_init(void)
{
    items_lru_init();
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
    items_lru_set_evicted(ev->evicted);
}

/* --- references, link, unlink ------------------------------------------ */

static void item_free(struct item *it)
{
    if (item_is_chunked(it)) {
        items_free_chunked(it);
        return;
    }
    slabs_free(it, ITEM_ntotal(it), it->slabs_clsid);
}

void item_remove(struct item *it)
{
    if (__atomic_sub_fetch(&it->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        item_free(it);
    }
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

/* What every item becoming linked gets, whether it is new in the hash
 * table (do_item_link_in) or takes an old one's place (do_item_replace):
 * the flag, its time and LRU segment, the table's reference, the
 * tombstone count, and its deadline for the crawler. */
static void mark_linked(struct item *it)
{
    it->it_flags |= ITEM_LINKED;
    it->atime = current_time;
    it->lru = initial_seg(it);
    crawler_note_deadline(it->exptime);
    __atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
    if (it->it_flags & ITEM_TOMBSTONE) {
        __atomic_add_fetch(&tombstones, 1, __ATOMIC_RELAXED);
    }
}

void do_item_link_in(struct item *it, uint32_t hv, bool cold)
{
    struct lru *l = &lrus[it->slabs_clsid];

    mark_linked(it);
    if (cold && it->lru == LRU_HOT) {
        it->lru = LRU_COLD;
    }
    assoc_insert(it, hv);
    pthread_mutex_lock(&l->lock);
    items_lru_link_locked(l, it);
    pthread_mutex_unlock(&l->lock);
    __atomic_add_fetch(&curr_items, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_items, 1, __ATOMIC_RELAXED);
}

void do_item_link(struct item *it, uint32_t hv)
{
    do_item_link_in(it, hv, false);
}

/* Unlink with the class's LRU lock already held (eviction path). */
void do_item_unlink_lru_locked(struct item *it, uint32_t hv)
{
    if (!(it->it_flags & ITEM_LINKED)) {
        return;
    }
    it->it_flags &= ~ITEM_LINKED;
    assoc_delete(ITEM_key(it), it->nkey, hv);
    items_lru_unlink_locked(&lrus[it->slabs_clsid], it);
    __atomic_sub_fetch(&curr_items, 1, __ATOMIC_RELAXED);
    if (it->it_flags & ITEM_TOMBSTONE) {
        __atomic_sub_fetch(&tombstones, 1, __ATOMIC_RELAXED);
    }
    item_remove(it);
}

void do_item_unlink(struct item *it, uint32_t hv)
{
    struct lru *l = &lrus[it->slabs_clsid];

    if (!(it->it_flags & ITEM_LINKED)) {
        return;
    }
    pthread_mutex_lock(&l->lock);
    do_item_unlink_lru_locked(it, hv);
    pthread_mutex_unlock(&l->lock);
}

/* Replace old (linked) by new (unlinked) under the key's lock.  In the
 * same class (a set of a value of about the same size) this is
 * do_item_unlink + do_item_link with one taking of the LRU lock, the new
 * item put in the old one's place in the hash chain and curr_items left
 * as it is. */
void do_item_replace(struct item *old, struct item *it, uint32_t hv)
{
    struct lru *l = &lrus[it->slabs_clsid];

    if (!(old->it_flags & ITEM_LINKED) ||
        old->slabs_clsid != it->slabs_clsid) {
        do_item_unlink(old, hv);
        do_item_link(it, hv);
        return;
    }
    old->it_flags &= ~ITEM_LINKED;
    if (old->it_flags & ITEM_TOMBSTONE) {
        __atomic_sub_fetch(&tombstones, 1, __ATOMIC_RELAXED);
    }
    mark_linked(it);
    assoc_replace(old, it, hv);
    pthread_mutex_lock(&l->lock);
    items_lru_unlink_locked(l, old);
    items_lru_link_locked(l, it);
    pthread_mutex_unlock(&l->lock);
    __atomic_add_fetch(&total_items, 1, __ATOMIC_RELAXED);
    item_remove(old);
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
    size_t ntotal = ITEM_HDR_SIZE + nkey + nbytes;

    return slabs_clsid(ntotal) != 0 ||
           (ntotal > item_chunk_limit && ntotal <= item_chunks_item_max());
}

struct item *item_alloc(const char *key, size_t nkey, uint32_t flags,
                        uint32_t exptime, size_t nbytes,
                        enum alloc_result *why)
{
    size_t ntotal = ITEM_HDR_SIZE + nkey + nbytes;
    unsigned id = slabs_clsid(ntotal);
    struct item *it = NULL;

    if (id == 0 || nkey > KEY_MAX_LENGTH) {
        if (nkey > KEY_MAX_LENGTH || ntotal <= item_chunk_limit ||
            ntotal > item_chunks_item_max()) {
            *why = ALLOC_TOO_LARGE;
            return NULL;
        }
        it = items_alloc_chunked(nkey, nbytes);
    } else {
        it = items_alloc_pull(ntotal, id, 0, id);
    }
    if (it == NULL) {
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
void do_item_bury(struct item *old, const char *key, size_t nkey,
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
        items_lru_bump(it);
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
        crawler_note_deadline(exptime);
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
        item_value_copy(n, 0, old, 0, olen);
        item_value_copy(n, olen, it, 0, nlen + 2);
    } else {
        item_value_copy(n, 0, it, 0, nlen);
        item_value_copy(n, nlen, old, 0, olen + 2);
    }
    return n;
}

/* Whether mode lets it be stored over old (NULL: none); when not, *res
 * is the answer (NOT_STORED unless set here).  For append and prepend,
 * *linked becomes the joined item. */
static bool store_allowed(struct item *it, struct item *old,
                          enum store_mode mode, uint64_t cas,
                          bool invalidate, struct item **linked,
                          enum store_result *res)
{
    switch (mode) {
    case STORE_MODE_ADD:
        if (old != NULL) {
            /* memcached refreshes the existing item on a failed add. */
            items_lru_bump(old);
            return false;
        }
        if (stalled_lock()) {
            return false;
        }
        break;
    case STORE_MODE_REPLACE:
        if (old == NULL) {
            return false;
        }
        break;
    case STORE_MODE_CAS:
        if (old == NULL) {
            *res = STORE_NOT_FOUND;
            return false;
        }
        if (invalidate && cas < old->version) {
            /* An older writer: keep its value, but stale, with the
             * current deadline and any recache token already handed out. */
            it->it_flags |= ITEM_STALE | (old->it_flags & ITEM_TOKEN_SENT);
            it->exptime = old->exptime;
            break;
        }
        if (old->version != cas) {
            *res = STORE_EXISTS;
            return false;
        }
        break;
    case STORE_MODE_APPEND:
    case STORE_MODE_PREPEND:
        if (old == NULL) {
            return false;
        }
        if (cas != 0 && old->version != cas) {
            *res = STORE_EXISTS;
            return false;
        }
        *linked = concat(old, it, mode == STORE_MODE_APPEND);
        if (*linked == NULL) {
            /* memcached answers NOT_STORED when the result cannot be
             * allocated, whether too large or out of memory. */
            return false;
        }
        break;
    case STORE_MODE_SET:
        break;
    }
    return true;
}

static enum store_result do_item_store(struct item *it, enum store_mode mode,
                                       uint64_t *cas, uint32_t hv,
                                       bool invalidate)
{
    enum get_result why;
    struct item *old = do_item_get(ITEM_key(it), it->nkey, hv, &why);
    struct item *linked = it;
    enum store_result res = STORE_NOT_STORED;

    if (!store_allowed(it, old, mode, *cas, invalidate, &linked, &res)) {
        goto out;
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
            crawler_note_deadline(exptime);
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

/* version: the new value's, or 0 for a fresh one. */
static enum delta_result do_item_delta(struct item *it, bool incr,
                                       uint64_t delta, uint64_t *value,
                                       char *buf, uint64_t *cas, uint32_t hv,
                                       uint64_t version)
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
        it->version = version != 0 ? version : item_next_version();
        notify(MUT_STORE, it);
    } else {
        enum alloc_result why;
        struct item *n = item_alloc(ITEM_key(it), it->nkey, it->flags,
                                    it->exptime, len + 2, &why);
        if (n == NULL) {
            return DELTA_NO_MEMORY;
        }
        set_value(n, buf, len);
        n->version = version != 0 ? version : item_next_version();
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
    uint64_t version;
    struct item *it;

    item_lock(hv);
    it = do_item_get(key, nkey, hv, &why);
    if (it == NULL) {
        res = DELTA_NOT_FOUND;
    } else if (stalled_lock() || !delta_version(it, &version)) {
        res = DELTA_SUPERSEDED;
        item_remove(it);
    } else {
        res = do_item_delta(it, incr, delta, value, buf, cas, hv, version);
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

/* --- crawler support ----------------------------------------------------- */

bool item_reclaim_if_dead(struct item *it, uint32_t hv)
{
    if (!(it->it_flags & ITEM_LINKED) || !item_is_dead(it)) {
        return false;
    }
    do_item_unlink(it, hv);
    return true;
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

/* --- slabs reassign: the items of a page being moved (slab_mover.c) ----- */

struct item *do_item_copy_out(const struct item *it, size_t n, unsigned id)
{
    struct item *copy = slabs_alloc_free(n, id);

    if (copy != NULL) {
        memcpy(copy, it, n);
        copy->next = copy->prev = copy->h_next = NULL;
        copy->refcount = 1;
        copy->it_flags &= ~ITEM_LINKED;
    }
    return copy;
}

void do_item_move_to(struct item *it, struct item *copy, uint32_t hv)
{
    uint32_t atime = it->atime;

    do_item_replace(it, copy, hv);
    copy->atime = atime;
    item_remove(copy);
}

/* Copy linked item `it` (stripe hv held) into a free chunk of its class
 * outside the moving page and link the copy in its place.  False when
 * the class has no free chunk. */
static bool rescue(struct item *it, uint32_t hv)
{
    struct item *copy = do_item_copy_out(it, ITEM_ntotal(it),
                                         it->slabs_clsid);

    if (copy == NULL) {
        return false;
    }
    do_item_move_to(it, copy, hv);
    return true;
}

/* A chunked item is moved only while no request holds it: a reader
 * walks the chain from the header it holds (items_chunked.c). */
enum page_out item_move_out_locked(struct item *it, uint32_t hv)
{
    bool chunked;

    if (!(it->it_flags & ITEM_LINKED) ||
        assoc_find(ITEM_key(it), it->nkey, hv) != it) {
        return PAGE_OUT_NONE;
    }
    if (item_is_dead(it)) {
        do_item_unlink(it, hv);
        return PAGE_OUT_DEAD;
    }
    chunked = item_is_chunked(it);
    if (chunked && __atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) != 1) {
        return PAGE_OUT_BUSY;
    }
    if (chunked ? items_rescue_header(it, hv) : rescue(it, hv)) {
        return PAGE_OUT_RESCUED;
    }
    do_item_unlink(it, hv);
    return PAGE_OUT_EVICTED;
}

