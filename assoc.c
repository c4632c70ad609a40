/*
 * assoc.c - the hash table from key to item, with chained buckets and an
 * incremental expansion that never stops the world for more than the
 * moment it takes to swap the table pointers.
 *
 * Why it is safe: item lock stripes are chosen by the low bits of the hash,
 * and there are never more stripes than buckets.  All keys of one bucket,
 * in the old table or in the new one, therefore share a stripe, and the
 * caller's item lock also guards the bucket its key lives in.  The
 * expander moves old bucket b while holding the stripe lock for b, so a
 * reader holding its key's lock sees the bucket either wholly moved
 * (b < expand_bucket: look in the new table) or not at all.  The table
 * swap at the start and the free at the end take every stripe lock.
 */
#include "memcached.h"
#include "assoc.h"
#include "hash.h"
#include "log.h"
#include "item_locks.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASHPOWER_DEFAULT 16
#define HASHPOWER_MAX 32

static struct item **primary;   /* the table new inserts go to */
static struct item **old;       /* the table being drained, or NULL */
static unsigned hashpower;      /* log2 of primary's bucket count */
static bool expanding;          /* old != NULL */
static uint64_t expand_bucket;  /* old buckets below this have moved */
static uint64_t hash_items;     /* items in the table; atomic */
static uint64_t reserved;       /* items announced (assoc_reserve) */

static pthread_t expander_tid;
static bool expander_running;
static bool expander_stop;
static pthread_mutex_t maint_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t maint_cond = PTHREAD_COND_INITIALIZER;
/* Held for a whole expansion, and for a whole walk. */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

#define hashsize(p) ((uint64_t)1 << (p))
#define hashmask(p) (hashsize(p) - 1)
#define WALK_AHEAD 64           /* buckets prefetched ahead of a walk */
#define EXPAND_YIELD 256        /* buckets moved per preemption point */

int assoc_init(int power)
{
    if (power <= 0) {
        power = HASHPOWER_DEFAULT;
    }
    if (power > HASHPOWER_MAX) {
        return -1;
    }
    hashpower = (unsigned)power;
    primary = calloc(hashsize(hashpower), sizeof(*primary));
    if (primary == NULL) {
        return -1;
    }
    old = NULL;
    expanding = false;
    expand_bucket = 0;
    hash_items = 0;
    return 0;
}

void assoc_destroy(void)
{
    free(primary);
    free(old);
    primary = NULL;
    old = NULL;
    expanding = false;
}

/* The bucket head pointer for hv; caller holds hv's stripe lock. */
static struct item **bucket_for(uint32_t hv)
{
    if (expanding) {
        uint64_t ob = hv & hashmask(hashpower - 1);
        if (ob >= expand_bucket) {
            return &old[ob];
        }
    }
    return &primary[hv & hashmask(hashpower)];
}

struct item *assoc_peek(uint32_t hv)
{
    return __atomic_load_n(bucket_for(hv), __ATOMIC_RELAXED);
}

struct item *assoc_find(const char *key, size_t nkey, uint32_t hv)
{
    struct item *it = *bucket_for(hv);

    while (it != NULL) {
        if (it->nkey == nkey && memcmp(ITEM_key(it), key, nkey) == 0) {
            return it;
        }
        it = it->h_next;
    }
    return NULL;
}

void assoc_insert(struct item *it, uint32_t hv)
{
    struct item **b = bucket_for(hv);
    uint64_t n;

    it->h_next = *b;
    *b = it;
    n = __atomic_add_fetch(&hash_items, 1, __ATOMIC_RELAXED);
    if (!expanding && n > (hashsize(hashpower) * 3) / 2 &&
        expander_running && hashpower < HASHPOWER_MAX) {
        /* Signal under the lock so the wakeup cannot fall between the
         * expander's check and its wait. */
        pthread_mutex_lock(&maint_lock);
        pthread_cond_signal(&maint_cond);
        pthread_mutex_unlock(&maint_lock);
    }
}

void assoc_delete(const char *key, size_t nkey, uint32_t hv)
{
    struct item **pp = bucket_for(hv);

    while (*pp != NULL) {
        struct item *it = *pp;
        if (it->nkey == nkey && memcmp(ITEM_key(it), key, nkey) == 0) {
            *pp = it->h_next;
            it->h_next = NULL;
            __atomic_sub_fetch(&hash_items, 1, __ATOMIC_RELAXED);
            return;
        }
        pp = &it->h_next;
    }
}

void assoc_replace(struct item *was, struct item *it, uint32_t hv)
{
    struct item **pp = bucket_for(hv);

    while (*pp != NULL && *pp != was) {
        pp = &(*pp)->h_next;
    }
    if (*pp == NULL) {
        /* not in the table after all: a plain insert */
        assoc_delete(ITEM_key(it), it->nkey, hv);
        assoc_insert(it, hv);
        return;
    }
    it->h_next = was->h_next;
    *pp = it;
    was->h_next = NULL;
}

/* Move old bucket ob into the new table; caller holds its stripe lock. */
static void move_bucket(uint64_t ob)
{
    struct item *it = old[ob];

    while (it != NULL) {
        struct item *next = it->h_next;
        uint32_t hv = hash(ITEM_key(it), it->nkey);
        struct item **nb = &primary[hv & hashmask(hashpower)];
        it->h_next = *nb;
        *nb = it;
        it = next;
    }
    old[ob] = NULL;
}

/* One full expansion: swap in a table twice the size, then drain the old
 * one bucket by bucket.  Returns -1 when the new table cannot be had. */
static int expand(void)
{
    struct item **bigger;
    uint64_t nold;
    uint64_t ob;
    uint64_t yield_us = 0;

    bigger = calloc(hashsize(hashpower + 1), sizeof(*bigger));
    if (bigger == NULL) {
        log_warn("hash table expansion failed: out of memory");
        return -1;
    }
    pthread_mutex_lock(&walk_lock);
    item_lock_all();
    old = primary;
    primary = bigger;
    hashpower++;
    expand_bucket = 0;
    expanding = true;
    item_unlock_all();
    nold = hashsize(hashpower - 1);
    for (ob = 0; ob < nold; ob++) {
        item_lock((uint32_t)ob);
        move_bucket(ob);
        expand_bucket = ob + 1;
        item_unlock((uint32_t)ob);
        if ((ob + 1) % EXPAND_YIELD == 0) {
            util_preempt_point(&yield_us);
        }
    }
    item_lock_all();
    free(old);
    old = NULL;
    expanding = false;
    item_unlock_all();
    pthread_mutex_unlock(&walk_lock);
    log_info("hash table expanded to 2^%u buckets", hashpower);
    return 0;
}

void assoc_expand_now(void)
{
    expand();
}

void assoc_reserve(uint64_t items)
{
    pthread_mutex_lock(&maint_lock);
    reserved = items;
    pthread_cond_signal(&maint_cond);
    pthread_mutex_unlock(&maint_lock);
}

static void *expander_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "mc-hashexp");
    pthread_mutex_lock(&maint_lock);
    while (!expander_stop) {
        uint64_t n = __atomic_load_n(&hash_items, __ATOMIC_RELAXED);
        if (reserved > n) {
            n = reserved;
        }
        if (n > (hashsize(hashpower) * 3) / 2 && hashpower < HASHPOWER_MAX) {
            pthread_mutex_unlock(&maint_lock);
            if (expand() != 0) {
                /* Keep serving with longer chains; retry much later. */
                pthread_mutex_lock(&maint_lock);
                break;
            }
            pthread_mutex_lock(&maint_lock);
            continue;
        }
        pthread_cond_wait(&maint_cond, &maint_lock);
    }
    pthread_mutex_unlock(&maint_lock);
    return NULL;
}

int assoc_start_expander(void)
{
    expander_stop = false;
    if (pthread_create(&expander_tid, NULL, expander_main, NULL) != 0) {
        return -1;
    }
    expander_running = true;
    return 0;
}

void assoc_stop_expander(void)
{
    if (!expander_running) {
        return;
    }
    pthread_mutex_lock(&maint_lock);
    expander_stop = true;
    pthread_cond_signal(&maint_cond);
    pthread_mutex_unlock(&maint_lock);
    pthread_join(expander_tid, NULL);
    expander_running = false;
}

unsigned assoc_hashpower(void)
{
    return hashpower;
}

bool assoc_is_expanding(void)
{
    return expanding;
}

uint64_t assoc_count(void)
{
    return __atomic_load_n(&hash_items, __ATOMIC_RELAXED);
}

/* Walk buckets [b, end) with walk_lock held; returns where it stopped. */
static uint64_t walk_range(uint64_t b, uint64_t end, assoc_walk_fn fn,
                           void *arg, bool *more)
{
    bool go = true;
    uint64_t size = hashsize(hashpower);

    for (; b < end && go; b++) {
        struct item *it;
        /* Items sit at random places in memory, so a walk is bound by
         * cache and TLB misses.  Start loading the chain heads a few
         * buckets ahead; reading a head without its lock is only a hint
         * (a stale pointer still points into slab memory). */
        if (b + WALK_AHEAD < size) {
            struct item *ahead = __atomic_load_n(&primary[b + WALK_AHEAD],
                                                 __ATOMIC_RELAXED);
            if (ahead != NULL) {
                /* the header, and the key and value after it, which
                 * usually run into the next line */
                __builtin_prefetch(ahead);
                __builtin_prefetch((const char *)ahead + 64);
            }
        }
        /* An empty bucket is skipped without its lock.  Seeing it empty
         * is the same as locking it a moment earlier: an item linked
         * right after is one the walk could have missed anyway (a copy
         * gets it from the live stream; the crawler on its next pass). */
        if (__atomic_load_n(&primary[b], __ATOMIC_RELAXED) == NULL) {
            continue;
        }
        item_lock((uint32_t)b);
        it = primary[b];
        while (it != NULL && go) {
            struct item *next = it->h_next;
            go = fn(it, arg);
            it = next;
        }
        item_unlock((uint32_t)b);
    }
    *more = go;
    return b;
}

void assoc_walk(assoc_walk_fn fn, void *arg)
{
    bool more;

    pthread_mutex_lock(&walk_lock);
    walk_range(0, hashsize(hashpower), fn, arg, &more);
    pthread_mutex_unlock(&walk_lock);
}

uint64_t assoc_walk_buckets(uint64_t start, uint64_t n, assoc_walk_fn fn,
                            void *arg)
{
    uint64_t size, end, next;
    bool more;

    pthread_mutex_lock(&walk_lock);
    size = hashsize(hashpower);
    end = start + n > size ? size : start + n;
    next = start < size ? walk_range(start, end, fn, arg, &more) : size;
    pthread_mutex_unlock(&walk_lock);
    return (next >= size || !more) ? 0 : next;
}
