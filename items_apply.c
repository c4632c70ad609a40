/*
 * items_apply.c - applying the peer's stream: last writer wins, by
 * version, for stores, deletes, touches and meta marks, with the
 * in-place rewrite that keeps a replica's sets cheap.  The flush cutoff
 * (item_apply_flush) stays with flush in items.c.
 */
#include "memcached.h"
#include "items.h"
#include "items_apply.h"
#include "items_internal.h"
#include "assoc.h"
#include "hash.h"
#include "slabs.h"
#include "item_locks.h"
#include "crawler.h"

#include <pthread.h>
#include <string.h>

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
        now > item_chunk_limit || was > item_chunk_limit ||
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
    crawler_note_deadline(exptime);
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
        crawler_note_deadline(exptime);
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

